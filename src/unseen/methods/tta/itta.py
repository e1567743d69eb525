"""ITTA at test time: adapters after each block, trained on the learnable loss of the source training."""

from __future__ import annotations

import copy

import torch
from torch import nn

from unseen.core.errors import HyperparameterError
from unseen.core.registry import HParam
from unseen.methods.registry import TTA
from unseen.methods.tta.base import SourceModel, TTAMethod
from unseen.nn.itta import (
    ElementwiseAffineStack,
    adapter_sites,
    augmented_pair,
    check_style_layers,
    learned_loss,
)


@TTA.register("itta")
class ITTA(TTAMethod):
    """Adapt element-wise adapters after each featurizer block on ITTA's learnable loss.

    Chen, Zhang, Song, Shan & Liu, *Improved Test-Time Adaptation for Domain Generalization*
    (CVPR 2023), as in the authors' code. The source model must come from the DG algorithm
    ``itta`` (:mod:`unseen.methods.dg.itta`), which trains the learnable loss
    ``L_w = mean ||f_w(z' - z)||^2`` with the model; other models are refused. After each block of
    the featurizer sits an adapter, ``adapter_depth`` element-wise affine maps over the block's
    whole feature map (channel x height x width) with ReLU between, the identity at the start.
    Per test batch, with the network and ``f_w`` frozen: ``steps`` Adam steps on the adapters
    minimising ``loss_weight * L_w`` between the batch's features and those of its MixStyle
    augmentation (the training's), then the logits of the batch through the adapted network (the
    authors predict after the update, on the same batch). Defaults are the authors': Adam at 0.1
    of the training learning rate (DomainBed's 1e-3 for small images, so 1e-4), ``loss_weight``
    1e-6 (their ``ada_lr``; 0.1 on DomainNet), adapters of depth 5, one step per batch.
    """

    paper = "Chen et al., Improved Test-Time Adaptation for Domain Generalization (CVPR 2023)"
    hparams = (
        HParam("lr", 1e-4, grid=(1e-5, 1e-4, 1e-3), help="Adam learning rate of the adapters"),
        HParam(
            "loss_weight",
            1e-6,
            grid=(1e-6, 1e-3, 0.1),
            help="factor on the learnable loss (the authors' ada_lr: 1e-6, 0.1 on DomainNet)",
        ),
        HParam("adapter_depth", 5, help="element-wise affine layers per adapter"),
        HParam("steps", 1, help="adapter updates per test batch", low=0),
    )

    def __init__(self, featurizer, classifier, learned_loss: nn.Module, seed=0, device=None, **hp) -> None:
        check_style_layers(featurizer, "TTA method 'itta'")
        adapter_sites(featurizer)  # refuses featurizers whose blocks it does not know
        self._loss_net = copy.deepcopy(learned_loss).cpu().requires_grad_(False)
        super().__init__(featurizer, classifier, seed=seed, device=device, **hp)

    @classmethod
    def from_source(cls, source: SourceModel) -> dict:
        if "itta_loss" not in source.parts:
            run = f" (DG run {source.info['model']})" if "model" in source.info else ""
            raise HyperparameterError(
                "itta adapts with the learnable loss that ITTA's training learns with the model; this "
                f"model{run} has none. Train one with `unseen dg --algorithm itta ... --save-model FILE`."
            )
        return {"learned_loss": source.parts["itta_loss"]}

    def _setup(self) -> None:
        self.featurizer.requires_grad_(False)
        self.classifier.requires_grad_(False)
        self.loss_net = self._loss_net.to(self.device)
        self.generator = torch.Generator().manual_seed(self.seed)
        self.adapters: nn.ModuleList | None = None
        self.optimizer: torch.optim.Optimizer | None = None

    def _insert_adapters(self, x: torch.Tensor) -> None:
        """One identity-initialised adapter after each block, shaped like the block's output on
        inputs shaped like ``x``, and their optimizer."""
        sites = adapter_sites(self.featurizer)
        shapes: list[tuple[int, ...]] = []
        probes = [
            s.register_forward_hook(lambda m, i, out: shapes.append(tuple(out.shape[1:]))) for s in sites
        ]
        with torch.no_grad():
            self.featurizer(x[:1])
        for probe in probes:
            probe.remove()
        depth = self.params["adapter_depth"]
        self.adapters = nn.ModuleList(ElementwiseAffineStack(s, depth) for s in shapes).to(self.device)
        for site, adapter in zip(sites, self.adapters, strict=True):
            site.register_forward_hook(lambda m, i, out, a=adapter: a(out))
        self.optimizer = torch.optim.Adam(self.adapters.parameters(), lr=self.params["lr"])

    def _predict(self, x: torch.Tensor) -> torch.Tensor:
        if self.adapters is None:
            self._insert_adapters(x)
        for _ in range(self.params["steps"]):
            z, z_aug = augmented_pair(self.featurizer, x, self.generator)
            loss = self.params["loss_weight"] * learned_loss(self.loss_net, z, z_aug)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
        with torch.no_grad():
            return self.classifier(self.featurizer(x))
