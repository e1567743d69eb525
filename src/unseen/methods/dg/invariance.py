"""Representation penalties of DomainBed's later additions: IB-ERM's and IB-IRM's information
bottleneck and CausIRL's distance between two random halves of the pooled features."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from unseen.methods.dg.algorithms import IRM, MMD_GAMMA, _AnnealedPenalty, annealed_penalty_hparams
from unseen.methods.dg.base import Minibatches, per_domain_losses
from unseen.methods.dg.objective import ObjectiveValue, SingleObjective
from unseen.methods.dg.penalties import coral_penalty, irm_penalty, mmd_penalty
from unseen.methods.registry import DG


@DG.register("ib-erm")
class IBERM(_AnnealedPenalty):
    """IB-ERM (Ahuja et al., *Invariance Principle Meets Information Bottleneck for
    Out-of-Distribution Generalization*, NeurIPS 2021; DomainBed's ``IB_ERM``): the mean over
    domains of the risk plus ``ib_lambda`` x the mean over domains of the mean per-dimension
    variance of their features, the bottleneck that compresses the representation. The penalty
    is off (weight 0) for the first ``ib_penalty_anneal_iters`` steps; Adam restarts when it
    switches on."""

    paper = (
        "Ahuja et al., Invariance Principle Meets Information Bottleneck for Out-of-Distribution "
        "Generalization (NeurIPS 2021)"
    )
    hparams = annealed_penalty_hparams(
        "ib", 1e2, (1e1, 1e2, 1e3), "bottleneck weight", "steps without the penalty"
    )
    prefix = "ib"
    warmup_weight = 0.0
    feature_level = "its bottleneck penalizes the variance of the featurizer's output"

    def objective(self, minibatches: Minibatches, commit: bool = True) -> ObjectiveValue:
        weight = self._weight(commit)
        feats = self.domain_features(minibatches)
        nll = torch.stack(per_domain_losses(self.classifier(torch.cat(feats)), minibatches)).mean()
        penalty = torch.stack([f.var(dim=0).mean() for f in feats]).mean()
        loss = nll + weight * penalty
        self._count(commit)
        return loss, {"loss": loss.detach(), "nll": nll.detach(), "penalty": penalty.detach()}


@DG.register("ib-irm")
class IBIRM(SingleObjective):
    """IB-IRM (Ahuja et al., NeurIPS 2021; DomainBed's ``IB_IRM``): IRMv1's penalty (weight 1 for
    the first ``irm_penalty_anneal_iters`` steps, ``irm_lambda`` after) plus IB-ERM's bottleneck
    (weight 0 for the first ``ib_penalty_anneal_iters`` steps, ``ib_lambda`` after); Adam
    restarts at either switch."""

    paper = IBERM.paper
    feature_level = IBERM.feature_level
    hparams = IRM.hparams + IBERM.hparams

    def _build(self) -> None:
        self.update_count = 0

    def objective(self, minibatches: Minibatches, commit: bool = True) -> ObjectiveValue:
        p, count = self.params, self.update_count
        if commit and count in (p["irm_penalty_anneal_iters"], p["ib_penalty_anneal_iters"]):
            self.optimizer = self._optimizer(self.network.parameters())
        irm_weight = p["irm_lambda"] if count >= p["irm_penalty_anneal_iters"] else 1.0
        ib_weight = p["ib_lambda"] if count >= p["ib_penalty_anneal_iters"] else 0.0
        feats = self.domain_features(minibatches)
        logits = self.classifier(torch.cat(feats)).split([len(f) for f in feats])
        nll = torch.stack(
            [F.cross_entropy(z, y) for z, (_, y) in zip(logits, minibatches, strict=True)]
        ).mean()
        irm = torch.stack([irm_penalty(z, y) for z, (_, y) in zip(logits, minibatches, strict=True)]).mean()
        ib = torch.stack([f.var(dim=0).mean() for f in feats]).mean()
        loss = nll + irm_weight * irm + ib_weight * ib
        if commit:
            self.update_count += 1
        return loss, {
            "loss": loss.detach(),
            "nll": nll.detach(),
            "irm_penalty": irm.detach(),
            "ib_penalty": ib.detach(),
        }


class _CausIRL(SingleObjective):
    """CausIRL (Chevalley et al., *Invariant Causal Mechanisms through Distribution Matching*,
    arXiv 2022; DomainBed's ``AbstractCausIRL``): the mean risk over domains plus ``mmd_gamma``
    x a distance between two halves of the pooled features. Each domain's minibatch is cut at a
    point drawn uniformly from ``0 .. n - 1``; the first parts of all domains form one half, the
    rest the other. With fewer than two rows in a half the penalty is 0."""

    paper = "Chevalley et al., Invariant Causal Mechanisms through Distribution Matching (arXiv 2022)"
    feature_level = "its penalty matches feature distributions across random domain splits"
    hparams = (MMD_GAMMA,)

    @staticmethod
    def distance(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def halves(self, feats: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """The pooled first and second parts of each domain's features, cut at random points."""
        cuts = [int(torch.randint(len(f), (), generator=self.generator)) for f in feats]
        first = torch.cat([f[:c] for f, c in zip(feats, cuts, strict=True)])
        second = torch.cat([f[c:] for f, c in zip(feats, cuts, strict=True)])
        return first, second

    def objective(self, minibatches: Minibatches, commit: bool = True) -> ObjectiveValue:
        feats = self.domain_features(minibatches)
        nll = torch.stack(per_domain_losses(self.classifier(torch.cat(feats)), minibatches)).mean()
        first, second = self.halves(feats)
        if len(first) > 1 and len(second) > 1:
            penalty = torch.nan_to_num(self.distance(first, second))
        else:
            penalty = nll.new_zeros(())
        loss = nll + self.params["mmd_gamma"] * penalty
        return loss, {"loss": loss.detach(), "nll": nll.detach(), "penalty": penalty.detach()}


@DG.register("causirl-coral")
class CausIRLCORAL(_CausIRL):
    __doc__ = _CausIRL.__doc__ + " Distance: CORAL's (means and covariances)."
    distance = staticmethod(coral_penalty)


@DG.register("causirl-mmd")
class CausIRLMMD(_CausIRL):
    __doc__ = _CausIRL.__doc__ + " Distance: Gaussian-kernel MMD."
    distance = staticmethod(mmd_penalty)
