"""Normalization-statistics adaptation: BN adapt, alpha-BN and Tent."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from unseen.core.errors import HyperparameterError
from unseen.core.registry import HParam
from unseen.methods.registry import TTA
from unseen.methods.tta.base import TTAMethod, softmax_entropy


class MixedBatchNorm(nn.Module):
    """Batch normalization with statistics ``alpha * source + (1 - alpha) * test batch``.

    ``alpha = 0`` normalizes with the test batch's own statistics (BN adapt); ``alpha = 1`` is the
    frozen source model. Source statistics are the trained layer's running estimates; the affine
    parameters are the trained ones and stay trainable (Tent updates them).
    """

    def __init__(self, bn: nn.modules.batchnorm._BatchNorm, alpha: float) -> None:
        super().__init__()
        if bn.running_mean is None or bn.running_var is None:
            raise HyperparameterError(
                "batch-norm adaptation needs BatchNorm layers that tracked running statistics "
                "during training (track_running_stats=True)."
            )
        self.alpha = float(alpha)
        self.eps = bn.eps
        self.register_buffer("source_mean", bn.running_mean.detach().clone())
        self.register_buffer("source_var", bn.running_var.detach().clone())
        self.weight = None if bn.weight is None else nn.Parameter(bn.weight.detach().clone())
        self.bias = None if bn.bias is None else nn.Parameter(bn.bias.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.alpha == 0.0:  # plain test-batch statistics: the fused kernel, gradients included
            return F.batch_norm(x, None, None, self.weight, self.bias, training=True, eps=self.eps)
        var, mean = torch.var_mean(x, dim=[0, *range(2, x.dim())], unbiased=False)
        mean = self.alpha * self.source_mean + (1 - self.alpha) * mean
        var = self.alpha * self.source_var + (1 - self.alpha) * var
        if not torch.is_grad_enabled():  # fused normalisation; it would not differentiate the statistics
            return F.batch_norm(x, mean, var, self.weight, self.bias, training=False, eps=self.eps)
        shape = [1, -1] + [1] * (x.dim() - 2)
        out = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.weight is not None:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out


def replace_batchnorm(module: nn.Module, alpha: float) -> list[MixedBatchNorm]:
    """Swap every BatchNorm layer of ``module`` in place for a :class:`MixedBatchNorm`."""
    replaced = []
    for name, child in module.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            mixed = MixedBatchNorm(child, alpha)
            setattr(module, name, mixed)
            replaced.append(mixed)
        else:
            replaced.extend(replace_batchnorm(child, alpha))
    return replaced


class _BatchStatistics(TTAMethod):
    """Shared set-up: BatchNorm layers normalize with (partly) test-batch statistics."""

    alpha = 0.0

    def _setup(self) -> None:
        self.norm_layers = replace_batchnorm(self.featurizer, self._alpha())
        if not self.norm_layers:
            raise HyperparameterError(
                f"TTA method '{self.name}' adapts BatchNorm statistics, but the model has no "
                "BatchNorm layer; use t3a, adanpc or shot-im for models without BatchNorm."
            )

    def _alpha(self) -> float:
        return self.alpha

    @torch.no_grad()
    def _predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.featurizer(x))


@TTA.register("bn-adapt")
class BNAdapt(_BatchStatistics):
    """Normalize with each test batch's statistics.

    Schneider et al., *Improving robustness against common corruptions by covariate shift
    adaptation* (NeurIPS 2020); Nado et al., *Evaluating prediction-time batch normalization for
    robustness under covariate shift* (2020).
    """

    paper = (
        "Schneider et al., Improving robustness against common corruptions by covariate shift "
        "adaptation (NeurIPS 2020)"
    )


@TTA.register("alpha-bn")
class AlphaBN(_BatchStatistics):
    """Mix source and test-batch statistics: ``mu = alpha mu_s + (1 - alpha) mu_t`` (and var).

    You et al., *Test-time Batch Statistics Calibration for Covariate Shift* (2021). The paper's
    default keeps a small share of the source statistics, ``alpha = 0.1``.
    """

    paper = "You et al., Test-time Batch Statistics Calibration for Covariate Shift (arXiv 2021)"
    hparams = (HParam("alpha", 0.1, grid=(0.0, 0.05, 0.1, 0.2, 0.5), help="share of source statistics"),)

    def _alpha(self) -> float:
        return self.params["alpha"]


@TTA.register("tent")
class Tent(_BatchStatistics):
    """Entropy minimization over the BatchNorm affine parameters, test-batch statistics.

    Wang et al., *Tent: Fully Test-Time Adaptation by Entropy Minimization* (ICLR 2021). One
    Adam step per batch (lr 1e-3, betas 0.9/0.999, the paper's CIFAR setting); as in the paper,
    the logits returned for a batch are those of the forward pass that computed the update.
    """

    paper = "Wang et al., Tent: Fully Test-Time Adaptation by Entropy Minimization (ICLR 2021)"
    hparams = (
        HParam("lr", 1e-3, grid=(1e-4, 1e-3), help="Adam learning rate"),
        HParam("steps", 1, help="updates per test batch", low=0),
    )

    def _setup(self) -> None:
        super()._setup()
        self.featurizer.requires_grad_(False)
        self.classifier.requires_grad_(False)
        affine = []
        for layer in self.norm_layers:
            for p in (layer.weight, layer.bias):
                if p is not None:
                    p.requires_grad_(True)
                    affine.append(p)
        if not affine:
            raise HyperparameterError("tent needs BatchNorm layers with affine parameters.")
        self.optimizer = torch.optim.Adam(affine, lr=self.params["lr"], betas=(0.9, 0.999))

    def _predict(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(self.params["steps"]):
            logits = self.classifier(self.featurizer(x))
            loss = softmax_entropy(logits).mean()
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
        return logits.detach()
