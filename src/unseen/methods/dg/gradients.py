"""DG objectives built from gradient signals: RSC (feature gradients) and Fishr (per-sample head
gradients). Defaults and random-search distributions follow DomainBed's ``hparams_registry``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import func, nn

from unseen.core.registry import HParam
from unseen.methods.dg.base import Minibatches, concat
from unseen.methods.dg.objective import ObjectiveValue, SingleObjective
from unseen.methods.registry import DG


def top_quantile_mask(values: torch.Tensor, drop_factor: float, dim: int | None = None) -> torch.Tensor:
    """1 where ``values`` lies strictly below their ``1 - drop_factor`` quantile (linear
    interpolation, like ``numpy.percentile``) along ``dim`` (all values when ``None``), else 0:
    the top ``drop_factor`` fraction is muted."""
    q = torch.quantile(values, 1.0 - drop_factor, dim=dim, keepdim=dim is not None)
    return values.lt(q).float()


@DG.register("rsc")
class RSC(SingleObjective):
    """Representation Self-Challenging (Huang et al., ECCV 2020), DomainBed's form.

    The gradient of each sample's true-class logit with respect to its features ranks the
    features; the top ``rsc_f_drop_factor`` of them per sample are muted (Eq. 2-3). Only the
    samples whose true-class probability drops most under that muting -- the top
    ``rsc_b_drop_factor`` of the batch (Sec. 3.3) -- keep the mute; the loss is the cross-entropy
    of the head on the muted features (Eq. 5).
    """

    paper = "Huang et al., Self-Challenging Improves Cross-Domain Generalization (ECCV 2020)"
    hparams = (
        HParam(
            "rsc_f_drop_factor",
            1 / 3,
            help="fraction of features muted per sample",
            draw=lambda r: float(r.uniform(0, 0.5)),
        ),
        HParam(
            "rsc_b_drop_factor",
            1 / 3,
            help="fraction of samples whose features are muted",
            draw=lambda r: float(r.uniform(0, 0.5)),
        ),
    )

    def self_challenging_mask(self, features: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The (n, d) 0/1 mask RSC multiplies the features with (1 keeps a feature)."""
        if not features.requires_grad:  # fixed features (featurizer=linear): the gradient still ranks them
            features = features.detach().requires_grad_()
        logits = self.classifier(features)
        onehot = F.one_hot(y, self.n_classes).to(logits.dtype)
        (grads,) = torch.autograd.grad((logits * onehot).sum(), features, retain_graph=True)
        feature_mask = top_quantile_mask(grads, self.params["rsc_f_drop_factor"], dim=1)
        with torch.no_grad():
            muted = self.classifier(features * feature_mask)
            changes = (logits.softmax(1) * onehot).sum(1) - (muted.softmax(1) * onehot).sum(1)
        spared = top_quantile_mask(changes, self.params["rsc_b_drop_factor"]).view(-1, 1)
        return torch.logical_or(feature_mask.bool(), spared.bool()).to(features.dtype)

    def objective(self, minibatches: Minibatches, commit: bool = True) -> ObjectiveValue:
        x, y = concat(minibatches)
        features = self.featurizer(x)
        loss = F.cross_entropy(self.classifier(features * self.self_challenging_mask(features, y)), y)
        return loss, {"loss": loss.detach()}


def per_sample_head_grads(classifier: nn.Module, features: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(n, n_head_params) gradients of each sample's cross-entropy with respect to the head's
    parameters (in ``named_parameters`` order, flattened), differentiable with respect to the
    features and the head. A linear head has them in closed form, ``(softmax(z) - onehot(y))``
    outer ``[features, 1]``; other heads use ``torch.func`` (vmap of grad)."""
    if isinstance(classifier, nn.Linear):
        residual = classifier(features).softmax(1) - F.one_hot(y, classifier.out_features).to(features.dtype)
        weight = (residual[:, :, None] * features[:, None, :]).flatten(1)
        return torch.cat([weight, residual], 1) if classifier.bias is not None else weight
    params = dict(classifier.named_parameters())

    def sample_loss(p, feature, target):
        logits = func.functional_call(classifier, p, (feature[None],))
        return F.cross_entropy(logits, target[None])

    grads = func.vmap(func.grad(sample_loss), in_dims=(None, 0, 0))(params, features, y)
    return torch.cat([grads[name].flatten(1) for name in params], 1)


def domain_gradient_variances(grads: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    """(n_domains, k): per domain, the (biased) variance over its samples of each gradient entry."""
    return torch.stack([g.var(0, correction=0) for g in grads.split(sizes)])


def fishr_penalty(variances: torch.Tensor) -> torch.Tensor:
    """Mean over domains of the mean squared distance between a domain's gradient variances and
    their mean over domains (Rame et al., Eq. 4 with DomainBed's averaging)."""
    return (variances - variances.mean(0, keepdim=True)).pow(2).mean()


@DG.register("fishr")
class Fishr(SingleObjective):
    """Fishr: invariance of the per-domain variances of the classifier head's per-sample
    gradients (Rame et al., ICML 2022), as in DomainBed.

    Per-sample gradients come from :func:`per_sample_head_grads` (closed form for a linear
    head) instead of BackPACK. Each domain's variances are smoothed by an exponential moving
    average with decay ``ema`` (the current step's part stays differentiable; the average is
    divided by ``1 - ema`` as DomainBed does, so the penalty's gradient does not depend on the
    decay). The penalty weight is 0 for the first ``penalty_anneal_iters`` steps and ``lambda``
    after, when Adam is reset (as in IRM and V-REx).
    """

    paper = (
        "Rame et al., Fishr: Invariant Gradient Variances for Out-of-Distribution Generalization (ICML 2022)"
    )
    hparams = (
        HParam(
            "lambda",
            1000.0,
            grid=(1e2, 1e3, 1e4),
            help="penalty weight",
            draw=lambda r: float(10 ** r.uniform(1.0, 4.0)),
        ),
        HParam(
            "penalty_anneal_iters",
            1500,
            low=0,
            help="steps before the penalty is switched on",
            draw=lambda r: int(r.uniform(0.0, 5000.0)),
        ),
        HParam(
            "ema",
            0.95,
            help="decay of the variances' moving average",
            draw=lambda r: float(r.uniform(0.9, 0.99)),
        ),
    )

    def _build(self) -> None:
        n_head = sum(p.numel() for p in self.classifier.parameters())
        self.register_buffer("variance_ema", torch.zeros(self.n_domains, n_head))
        self.register_buffer("update_count", torch.zeros((), dtype=torch.long))

    def objective(self, minibatches: Minibatches, commit: bool = True) -> ObjectiveValue:
        x, y = concat(minibatches)
        features = self.featurizer(x)
        nll = F.cross_entropy(self.classifier(features), y)
        variances = domain_gradient_variances(
            per_sample_head_grads(self.classifier, features, y), [len(yd) for _, yd in minibatches]
        )
        decay = self.params["ema"]
        smoothed = decay * self.variance_ema[: len(minibatches)] + (1 - decay) * variances
        penalty = fishr_penalty(smoothed / (1 - decay))
        count, anneal = int(self.update_count), self.params["penalty_anneal_iters"]
        weight = self.params["lambda"] if count >= anneal else 0.0
        if commit:
            self.variance_ema[: len(minibatches)] = smoothed.detach()
            if count == anneal != 0:
                self.optimizer = self._optimizer(self.network.parameters())
            self.update_count += 1
        loss = nll + weight * penalty
        return loss, {"loss": loss.detach(), "nll": nll.detach(), "penalty": penalty.detach()}


@DG.register("iga")
class IGA(SingleObjective):
    """Inter-environmental Gradient Alignment (Koyama & Yamaguchi, *When is invariance useful in an
    Out-of-Distribution Generalization problem?*, arXiv 2020; DomainBed's ``IGA``): the mean risk
    plus ``penalty`` x the summed squared distance of each domain's risk gradient from the mean
    gradient (the trace of their covariance), the mean gradient held constant."""

    paper = (
        "Koyama & Yamaguchi, When is invariance useful in an Out-of-Distribution Generalization "
        "problem? (arXiv 2020)"
    )
    hparams = (
        HParam(
            "penalty",
            1000.0,
            grid=(1e2, 1e3, 1e4),
            help="gradient-alignment weight",
            draw=lambda r: float(10 ** r.uniform(1, 5)),
        ),
    )

    def objective(self, minibatches: Minibatches, commit: bool = True) -> ObjectiveValue:
        params = [p for p in self.network.parameters() if p.requires_grad]
        losses = [F.cross_entropy(self.predict(x), y) for x, y in minibatches]
        grads = [torch.autograd.grad(loss, params, create_graph=True) for loss in losses]
        mean_loss = torch.stack(losses).mean()
        mean_grad = torch.autograd.grad(mean_loss, params, retain_graph=True)
        penalty = sum((g - m).pow(2).sum() for grad in grads for g, m in zip(grad, mean_grad, strict=True))
        loss = mean_loss + self.params["penalty"] * penalty
        return loss, {"loss": mean_loss.detach(), "penalty": penalty.detach()}
