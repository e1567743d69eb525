"""DRM: domain-specific classifier heads on a shared featurizer, one picked at test time."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from unseen.core.registry import HParam
from unseen.methods.dg.objective import ObjectiveValue, SingleObjective
from unseen.methods.registry import DG
from unseen.nn import networks


def softmax_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of each row's softmax distribution (the last dimension holds the classes)."""
    return -(logits.softmax(-1) * logits.log_softmax(-1)).sum(-1)


class SelectedHead(nn.Module):
    """Several heads on the same features; ``forward`` returns the logits of the head with the
    lowest prediction entropy: one head for the whole batch (``per_sample=False``: the mean
    entropy over the batch decides) or one per sample. ``heads[-1]`` is the shared head."""

    def __init__(self, heads: list[nn.Module], per_sample: bool) -> None:
        super().__init__()
        self.heads = nn.ModuleList(heads)
        self.per_sample = per_sample

    def all_logits(self, features: torch.Tensor) -> torch.Tensor:
        """``(heads, n, classes)``: every head's logits."""
        return torch.stack([head(features) for head in self.heads])

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        logits = self.all_logits(features)
        entropy = softmax_entropy(logits)  # (heads, n)
        if self.per_sample:
            best = entropy.argmin(0)
            return logits[best, torch.arange(logits.shape[1], device=logits.device)]
        return logits[int(entropy.mean(1).argmin())]


@DG.register("drm")
class DRM(SingleObjective):
    """Domain-Specific Risk Minimization (Zhang et al., KDD 2023).

    A shared featurizer, one classifier head per training domain and one head shared by all
    domains. Each domain's features are classified by its own head and by the shared head; the
    loss is the mean over domains of the mean of those two cross-entropies (the domain-specific
    risks and the pooled risk, trained jointly as in the authors' code). At test time the
    prediction comes from the head, among all ``n_domains + 1``, whose predictions on the test
    batch have the lowest mean entropy (the paper's entropy-based test-time model selection; the
    protocol predicts one domain's rows per batch). ``drm_per_sample`` picks the lowest-entropy
    head for each sample instead.

    The paper's other selection rules (a domain discriminator, or distances to stored domain
    prototypes, with an optional weighted ensemble of the heads) are not implemented: the
    entropy rule is its default and needs no extra training state. DRM adds no hyperparameter
    with a search distribution; the shared DomainBed ones apply. A single objective: it composes
    with the update rules and the averaging wrappers (they average every head).
    """

    paper = (
        "Zhang et al., Domain-Specific Risk Minimization for Out-of-Distribution Generalization (KDD 2023)"
    )
    hparams = (
        HParam(
            "drm_per_sample",
            False,
            choices=(False, True),
            help="select the lowest-entropy head per sample instead of per predicted batch",
        ),
    )

    def _build(self) -> None:
        n_features = self.featurizer.n_outputs
        nonlinear = self.params["nonlinear_classifier"]
        heads = [networks.classifier(n_features, self.n_classes, nonlinear) for _ in range(self.n_domains)]
        self.classifier = SelectedHead([*heads, self.classifier], self.params["drm_per_sample"])

    def objective(self, minibatches, commit: bool = True) -> ObjectiveValue:
        heads = self.classifier.heads
        features = self.domain_features(minibatches)
        loss = 0.0
        for d, (f, (_, y)) in enumerate(zip(features, minibatches, strict=True)):
            loss = loss + (F.cross_entropy(heads[d](f), y) + F.cross_entropy(heads[-1](f), y)) / 2
        loss = loss / len(minibatches)
        return loss, {"loss": loss.detach()}
