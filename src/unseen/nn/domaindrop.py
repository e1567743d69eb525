"""DomainDrop (Guo, Qi & Shi, *DomainDrop: Suppressing Domain-Sensitive Channels for Domain
Generalization*, ICCV 2023): a featurizer option of the image featurizers.

A linear domain discriminator reads each stage of the featurizer (global average pooling, then
``Linear(C, n_domains)``, behind a gradient-reversal layer of weight ``domaindrop_grl``); its
cross-entropy, averaged over the stages, trains the discriminators and, reversed, pushes the
featurizer towards domain-invariant channels. In each training forward pass one stage is drawn
uniformly and, with probability ``domaindrop_layer_p``, that stage's channels are dropped per
sample: each position's products ``w_c f_c`` of the features with the discriminator weights of
the sample's own domain are min-max normalised across channels and averaged over positions into
channel scores, which (min-max normalised again) weight a random sampling without replacement
of ``int(C * domaindrop_percent)`` channels (keys ``u^(1/score)``, the largest dropped): the more
domain-discriminative a channel, the likelier it is dropped. The surviving channels are rescaled
by (all channels / kept channels) over the batch. Each batch also passes a second time with its
own masks (the same stage), and the symmetric KL divergence between the two passes' class
predictions at temperature ``domaindrop_kl_t`` (each direction averaged over samples and
classes, their mean), weighted by ``domaindrop_kl_weight``, is added to the objective.

Defaults are the official code's: stages 1-4 (the ends of ResNet's four stages; here the small
CNN's four blocks, EfficientNet-Lite0's stride-4, 8, 16 and 32 stages), ``layer_p = 0.8``,
``percent = 0.33``, ``grl = 0.25``, KL weight 1.5 at temperature 5. The channel scores divide by
the score range plus ``1e-12`` (the official code divides by the range alone, which is undefined
where all channels are equal).

How it composes. The mechanism needs each sample's domain and adds two losses, neither of which
a featurizer can see. The protocol therefore arms the option around each update with the
update's minibatches (:func:`labelled`): a featurizer pass on exactly those inputs -- the
concatenation of the domains' minibatches or one domain's minibatch, as the algorithms feed
them -- is labelled; any other pass (mixed or perturbed inputs, evaluation) is left untouched.
The discriminator and KL losses of a labelled pass are injected into the backward pass through
the featurizer's output (:class:`_WithLoss`), so they join whatever objective the algorithm
differentiates, with any optimizer, update rule or wrapper, and need no change to the
algorithm. Differences from the paper, which trains ERM on a duplicated batch: the algorithm's
own loss sees the first pass only (the second pass enters through the KL and discriminator
terms), and an algorithm that differentiates through the same features several times (IGA's
per-domain gradients, for one) receives the injected gradient in each.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from unseen.core.registry import HParam
from unseen.nn.efficientnet_dg import EfficientNetLite0Featurizer
from unseen.nn.networks import SmallImageCNN

DOMAINDROP_HPARAMS: tuple[HParam, ...] = (
    HParam(
        "domaindrop",
        False,
        choices=(False, True),
        help="DomainDrop: domain discriminators on the featurizer's stages, domain-sensitive "
        "channels dropped (Guo et al., ICCV 2023)",
    ),
    HParam("domaindrop_layer_p", 0.8, high=1.0, help="probability that a forward pass drops channels"),
    HParam("domaindrop_percent", 0.33, high=0.99, help="fraction of a stage's channels dropped per sample"),
    HParam("domaindrop_grl", 0.25, help="gradient-reversal weight from the discriminators to the featurizer"),
    HParam("domaindrop_kl_weight", 1.5, help="weight of the consistency (symmetric KL) of two passes"),
    HParam("domaindrop_kl_t", 5.0, help="temperature of the consistency loss"),
)
"""DomainDrop's hyperparameters (the official code's defaults), declared by the image featurizers."""

STAGES: dict[type, Callable[[nn.Module], list[nn.Module]]] = {
    SmallImageCNN: lambda f: [m for m in f.body if isinstance(m, nn.GroupNorm)],
    EfficientNetLite0Featurizer: lambda f: [f.backbone.network._blocks[k] for k in (2, 4, 10, 15)],
}
"""The modules ending each stage of a featurizer, by featurizer class (where ResNet's four stages
end: the small CNN's four blocks, EfficientNet-Lite0's stride-4, 8, 16 and 32 stages)."""


class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: float) -> torch.Tensor:
        ctx.weight = weight
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return -ctx.weight * grad, None


class _WithLoss(torch.autograd.Function):
    """Identity on ``features``; in the backward pass, ``aux`` receives gradient 1, so its
    gradient joins that of any loss computed from the features."""

    @staticmethod
    def forward(ctx, features: torch.Tensor, aux: torch.Tensor) -> torch.Tensor:
        return features.view_as(features)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad, torch.ones((), dtype=grad.dtype, device=grad.device)


def _min_max(values: torch.Tensor, dim: int) -> torch.Tensor:
    low, high = values.amin(dim, keepdim=True), values.amax(dim, keepdim=True)
    return (values - low) / (high - low + 1e-12)


def channel_scores(features: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``(n, C)`` domain sensitivity of each sample's channels: the products of the features
    ``(n, C, H, W)`` with the discriminator weights of the sample's domain ``(n, C)``, min-max
    normalised across channels at each position, averaged over positions."""
    return _min_max(features * weights[:, :, None, None], 1).mean((2, 3))


def drop_mask(scores: torch.Tensor, percent: float, generator: torch.Generator) -> torch.Tensor:
    """``(n, C)`` 0/1 mask dropping ``int(C * percent)`` channels per sample, sampled without
    replacement with weights the per-sample min-max normalised ``scores`` (keys ``u^(1/w)``,
    ``u ~ U(0, 1)`` from ``generator``; the channels with the largest keys are dropped)."""
    n, c = scores.shape
    k = min(int(c * percent), c - 1)
    u = torch.rand(n, c, generator=generator).to(scores.device)
    keys = u.pow(1 / _min_max(scores, 1))
    threshold = keys.sort(1, descending=True).values[:, k : k + 1]
    return (keys <= threshold).to(scores.dtype)


def symmetric_kl(p: torch.Tensor, q: torch.Tensor, temperature: float) -> torch.Tensor:
    """The official consistency loss: the mean of ``KL(q_T || p_T)`` and ``KL(p_T || q_T)``, each
    averaged over samples and classes, for logits ``p`` and ``q`` softened by ``temperature``."""
    log_p, log_q = F.log_softmax(p / temperature, 1), F.log_softmax(q / temperature, 1)
    forward = (log_q.exp() * (log_q - log_p)).mean()
    backward = (log_p.exp() * (log_p - log_q)).mean()
    return (forward + backward) / 2


class DomainDrop(nn.Module):
    """The discriminators and hooks of one featurizer (a submodule of it, so they train and are
    saved with it). ``head`` (the classifier) scores the two passes for the consistency loss;
    every random draw comes from ``generator`` (the algorithm's)."""

    def __init__(
        self,
        featurizer: nn.Module,
        input_shape: Sequence[int],
        n_domains: int,
        params: dict,
        generator: torch.Generator,
    ) -> None:
        super().__init__()
        stages = STAGES[type(featurizer)](featurizer)
        channels = _stage_channels(featurizer, stages, input_shape)
        self.discriminators = nn.ModuleList(nn.Linear(c, n_domains) for c in channels)
        self.layer_p, self.percent = params["domaindrop_layer_p"], params["domaindrop_percent"]
        self.grl, self.generator = params["domaindrop_grl"], generator
        self.kl_weight, self.kl_t = params["domaindrop_kl_weight"], params["domaindrop_kl_t"]
        self._head: list[nn.Module] = []
        self._batches: Sequence[tuple[torch.Tensor, torch.Tensor]] | None = None
        self._pass: dict | None = None
        for k, stage in enumerate(stages):
            stage.register_forward_hook(self._stage_hook(k))
        featurizer.register_forward_pre_hook(self._arm)
        featurizer.register_forward_hook(self._finish)

    def attach_head(self, head: nn.Module) -> None:
        self._head[:] = [head]

    def domain_labels(self, x: torch.Tensor) -> torch.Tensor | None:
        """Each row's training domain when ``x`` is the armed update's concatenated inputs or one
        domain's minibatch; else ``None``."""
        batches = self._batches or ()
        for d, (xd, _) in enumerate(batches):
            if x.shape == xd.shape and x.data_ptr() == xd.data_ptr():
                return torch.full((len(x),), d, dtype=torch.long, device=x.device)
        sizes = [len(xd) for xd, _ in batches]
        if batches and len(x) == sum(sizes) and torch.equal(x, torch.cat([xd for xd, _ in batches])):
            return torch.repeat_interleave(
                torch.arange(len(sizes), device=x.device), torch.tensor(sizes, device=x.device)
            )
        return None

    def _arm(self, module: nn.Module, args: tuple) -> None:
        if not self.training or self._pass is not None:
            return
        labels = self.domain_labels(args[0])
        if labels is None:
            return
        layer = int(torch.randint(len(self.discriminators), (), generator=self.generator))
        active = float(torch.rand((), generator=self.generator)) < self.layer_p
        self._pass = {"labels": labels, "layer": layer, "active": active, "logits": []}

    def _stage_hook(self, k: int):
        def hook(module: nn.Module, inputs, output: torch.Tensor) -> torch.Tensor:
            state = self._pass
            if state is None:
                return output
            pooled = _GradReverse.apply(output, self.grl).mean((2, 3))
            state["logits"].append(self.discriminators[k](pooled))
            if not (state["active"] and state["layer"] == k):
                return output
            weights = self.discriminators[k].weight.detach()[state["labels"]]
            mask = drop_mask(channel_scores(output.detach(), weights), self.percent, self.generator)
            mask = mask * mask.numel() / mask.sum()
            return output * mask[:, :, None, None]

        return hook

    def _finish(self, module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
        state = self._pass
        if state is None or state.get("second"):
            return output
        passes = [state["logits"]]
        aux = output.new_zeros(())
        if self.kl_weight:
            self._pass = {**state, "logits": [], "second": True}
            second = module(args[0])
            passes.append(self._pass["logits"])
            head = self._head[0]
            aux = aux + self.kl_weight * symmetric_kl(head(output), head(second), self.kl_t)
        self._pass = None
        labels = state["labels"]
        per_stage = [
            torch.stack([F.cross_entropy(logits[k], labels) for logits in passes]).mean()
            for k in range(len(self.discriminators))
        ]
        return _WithLoss.apply(output, aux + torch.stack(per_stage).mean())


def _stage_channels(featurizer: nn.Module, stages: list[nn.Module], input_shape: Sequence[int]) -> list[int]:
    """Channels at each stage, from one evaluation pass on a zero input (no random draws)."""
    channels: dict[int, int] = {}
    handles = [
        stage.register_forward_hook(lambda m, i, o, k=k: channels.__setitem__(k, o.shape[1]))
        for k, stage in enumerate(stages)
    ]
    was_training = featurizer.training
    featurizer.eval()
    with torch.no_grad():
        featurizer(torch.zeros(1, *input_shape))
    featurizer.train(was_training)
    for handle in handles:
        handle.remove()
    return [channels[k] for k in range(len(stages))]


def add_domaindrop(
    featurizer: nn.Module,
    input_shape: Sequence[int],
    n_domains: int,
    params: dict,
    generator: torch.Generator,
) -> DomainDrop:
    """DomainDrop on ``featurizer`` (registered as its submodule ``domaindrop``)."""
    featurizer.domaindrop = DomainDrop(featurizer, input_shape, n_domains, params, generator)
    return featurizer.domaindrop


@contextmanager
def labelled(featurizer: nn.Module, minibatches: Sequence[tuple[torch.Tensor, torch.Tensor]]):
    """Arms ``featurizer``'s DomainDrop (if it has one) for one update on ``minibatches``."""
    domaindrop = getattr(featurizer, "domaindrop", None)
    if domaindrop is None:
        yield
        return
    domaindrop._batches = minibatches
    try:
        yield
    finally:
        domaindrop._batches = None
        domaindrop._pass = None
