"""DG training objectives on DomainBed's contract; each docstring cites its paper.

Defaults and random-search distributions follow DomainBed's ``hparams_registry`` for feature
and small-image data. Penalties live in :mod:`unseen.methods.dg.penalties`.
"""

from __future__ import annotations

import copy
import functools

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from unseen.core.registry import HParam
from unseen.methods.dg.base import Algorithm, Minibatches, StepLogs, adam, concat, per_domain_losses
from unseen.methods.dg.objective import ObjectiveValue, SingleObjective
from unseen.methods.dg.penalties import (
    irm_penalty,
    mean_pairwise,
    mean_pairwise_coral,
    mmd_penalty,
    vrex_penalty,
)
from unseen.methods.registry import DG


@DG.register("erm")
class ERM(SingleObjective):
    """Empirical risk minimization over the pooled training domains (Vapnik, 1998; the DomainBed
    baseline of Gulrajani & Lopez-Paz, *In Search of Lost Domain Generalization*, ICLR 2021)."""

    paper = "Gulrajani & Lopez-Paz, In Search of Lost Domain Generalization (ICLR 2021)"

    def objective(self, minibatches: Minibatches, commit: bool = True) -> ObjectiveValue:
        x, y = concat(minibatches)
        loss = F.cross_entropy(self.predict(x), y)
        return loss, {"loss": loss.detach()}


def annealed_penalty_hparams(
    prefix: str, default: float, grid: tuple[float, ...], weight_help: str, anneal_help: str
) -> tuple[HParam, HParam]:
    """DomainBed's pair for a penalty switched on after an annealing period: its weight
    ``{prefix}_lambda`` (searched log-uniformly over 10^-1..10^5) and ``{prefix}_penalty_anneal_iters``
    (default 500, searched log-uniformly over 10^0..10^4)."""
    return (
        HParam(
            f"{prefix}_lambda",
            default,
            grid=grid,
            help=weight_help,
            draw=lambda r: float(10 ** r.uniform(-1, 5)),
        ),
        HParam(
            f"{prefix}_penalty_anneal_iters",
            500,
            low=0,
            help=anneal_help,
            draw=lambda r: int(10 ** r.uniform(0, 4)),
        ),
    )


class _AnnealedPenalty(SingleObjective):
    """Risk + penalty whose weight is ``warmup_weight`` (1) for the first ``anneal`` steps and
    ``lambda`` after, when the optimizer is reset (Adam's moments were fitted to the
    small-penalty objective)."""

    prefix = ""
    """Names the hyperparameters: ``{prefix}_lambda`` and ``{prefix}_penalty_anneal_iters``."""
    warmup_weight = 1.0

    def _build(self) -> None:
        self.update_count = 0

    def _weight(self, commit: bool) -> float:
        anneal = self.params[f"{self.prefix}_penalty_anneal_iters"]
        if commit and self.update_count == anneal:
            self.optimizer = self._optimizer(self.network.parameters())
        return self.params[f"{self.prefix}_lambda"] if self.update_count >= anneal else self.warmup_weight

    def _count(self, commit: bool) -> None:
        if commit:
            self.update_count += 1


@DG.register("irm")
class IRM(_AnnealedPenalty):
    """Invariant Risk Minimization, IRMv1 penalty (Arjovsky et al., arXiv 2019)."""

    paper = "Arjovsky et al., Invariant Risk Minimization (arXiv 2019)"
    hparams = annealed_penalty_hparams("irm", 1e2, (1e1, 1e2, 1e3), "penalty weight", "steps at weight 1")
    prefix = "irm"

    def objective(self, minibatches: Minibatches, commit: bool = True) -> ObjectiveValue:
        weight = self._weight(commit)
        x, _ = concat(minibatches)
        logits = self.predict(x)
        nll = torch.stack(per_domain_losses(logits, minibatches)).mean()
        penalty, start = 0.0, 0
        for _, y in minibatches:
            penalty = penalty + irm_penalty(logits[start : start + len(y)], y)
            start += len(y)
        penalty = penalty / len(minibatches)
        loss = nll + weight * penalty
        self._count(commit)
        return loss, {"loss": loss.detach(), "nll": nll.detach(), "penalty": penalty.detach()}


@DG.register("vrex")
class VREx(_AnnealedPenalty):
    """Risk Extrapolation, variance penalty V-REx (Krueger et al., ICML 2021)."""

    paper = "Krueger et al., Out-of-Distribution Generalization via Risk Extrapolation (ICML 2021)"
    hparams = annealed_penalty_hparams("vrex", 1e1, (1e0, 1e1, 1e2), "penalty weight", "steps at weight 1")
    prefix = "vrex"

    def objective(self, minibatches: Minibatches, commit: bool = True) -> ObjectiveValue:
        weight = self._weight(commit)
        x, _ = concat(minibatches)
        losses = torch.stack(per_domain_losses(self.predict(x), minibatches))
        mean, penalty = losses.mean(), vrex_penalty(losses)
        loss = mean + weight * penalty
        self._count(commit)
        return loss, {"loss": loss.detach(), "nll": mean.detach(), "penalty": penalty.detach()}


@DG.register("groupdro")
class GroupDRO(SingleObjective):
    """Group distributionally robust optimization with online group weights
    (Sagawa et al., ICLR 2020): ``q_d <- q_d exp(eta * loss_d)``, normalised; loss = q . losses."""

    paper = "Sagawa et al., Distributionally Robust Neural Networks for Group Shifts (ICLR 2020)"
    hparams = (
        HParam(
            "groupdro_eta",
            1e-2,
            grid=(1e-3, 1e-2, 1e-1),
            help="group-weight step",
            draw=lambda r: float(10 ** r.uniform(-3, -1)),
        ),
    )

    def _build(self) -> None:
        self.register_buffer("q", torch.ones(self.n_domains))

    def objective(self, minibatches: Minibatches, commit: bool = True) -> ObjectiveValue:
        losses = torch.stack([F.cross_entropy(self.predict(x), y) for x, y in minibatches])
        q = self.q[: len(minibatches)] * torch.exp(self.params["groupdro_eta"] * losses.detach())
        q = q / q.sum()
        if commit:
            self.q[: len(minibatches)] = q
        loss = torch.dot(losses, q)
        return loss, {"loss": loss.detach()}


def random_pairs(n: int, generator: torch.Generator) -> list[tuple[int, int]]:
    """A random cycle over ``n`` domains: pairs (perm[i], perm[i + 1 mod n]) (DomainBed's pairing)."""
    perm = torch.randperm(n, generator=generator).tolist()
    return [(perm[i], perm[(i + 1) % n]) for i in range(n)]


@DG.register("mixup")
class Mixup(Algorithm):
    """Inter-domain Mixup (Xu et al. AAAI 2020; Yan et al. arXiv 2020): convex combinations of
    minibatches of two domains with weight ``lam ~ Beta(alpha, alpha)`` and mixed targets."""

    paper = "Yan et al., Improve Unsupervised Domain Adaptation with Mixup Training (arXiv 2020)"
    hparams = (
        HParam(
            "mixup_alpha",
            0.2,
            grid=(0.1, 0.2, 1.0),
            help="Beta(alpha, alpha)",
            draw=lambda r: float(10 ** r.uniform(-1, 1)),
        ),
    )

    def _build(self) -> None:
        self.beta_rng = np.random.default_rng(int(torch.randint(2**31, (1,), generator=self.generator)))

    def update(self, minibatches: Minibatches) -> StepLogs:
        objective = 0.0
        for i, j in random_pairs(len(minibatches), self.generator):
            (xi, yi), (xj, yj) = minibatches[i], minibatches[j]
            n = min(len(xi), len(xj))
            lam = float(self.beta_rng.beta(self.params["mixup_alpha"], self.params["mixup_alpha"]))
            logits = self.predict(lam * xi[:n] + (1 - lam) * xj[:n])
            objective = (
                objective
                + lam * F.cross_entropy(logits, yi[:n])
                + (1 - lam) * F.cross_entropy(logits, yj[:n])
            )
        objective = objective / len(minibatches)
        self._step(objective)
        return {"loss": objective.detach()}


MMD_GAMMA = HParam(
    "mmd_gamma",
    1.0,
    grid=(0.1, 1.0, 10.0),
    help="penalty weight",
    draw=lambda r: float(10 ** r.uniform(-1, 1)),
)
"""DomainBed's weight of a feature-distance penalty (MMD, CORAL, CausIRL-MMD and -CORAL)."""


class _FeatureMatching(SingleObjective):
    """Risk + ``gamma`` x the mean over domain pairs of a discrepancy between their features."""

    hparams = (MMD_GAMMA,)
    feature_level = "its penalty matches the domains' feature distributions"

    @staticmethod
    def pairwise_discrepancy(features: list[torch.Tensor]) -> torch.Tensor:
        """The mean over domain pairs of the discrepancy between their features."""
        raise NotImplementedError

    def objective(self, minibatches: Minibatches, commit: bool = True) -> ObjectiveValue:
        feats = self.domain_features(minibatches)
        logits = self.classifier(torch.cat(feats))
        objective = torch.stack(per_domain_losses(logits, minibatches)).mean()
        penalty = self.pairwise_discrepancy(feats)
        loss = objective + self.params["mmd_gamma"] * penalty
        return loss, {"loss": loss.detach(), "nll": objective.detach(), "penalty": penalty.detach()}


@DG.register("coral")
class CORAL(_FeatureMatching):
    """Deep CORAL: match feature means and covariances across domains (Sun & Saenko, ECCV-W 2016)."""

    paper = "Sun & Saenko, Deep CORAL: Correlation Alignment for Deep Domain Adaptation (ECCV-W 2016)"
    pairwise_discrepancy = staticmethod(mean_pairwise_coral)


@DG.register("mmd")
class MMD(_FeatureMatching):
    """MMD-AAE's feature alignment: Gaussian-kernel MMD between domains (Li et al., CVPR 2018)."""

    paper = "Li et al., Domain Generalization with Adversarial Feature Learning (CVPR 2018)"
    pairwise_discrepancy = staticmethod(functools.partial(mean_pairwise, mmd_penalty))


@DG.register("sd")
class SpectralDecoupling(SingleObjective):
    """Spectral Decoupling: risk + ``sd_reg`` x mean squared logit (Pezeshki et al., NeurIPS 2021)."""

    paper = "Pezeshki et al., Gradient Starvation: A Learning Proclivity in Neural Networks (NeurIPS 2021)"
    hparams = (
        HParam(
            "sd_reg",
            0.1,
            grid=(0.01, 0.1),
            help="logit penalty",
            draw=lambda r: float(10 ** r.uniform(-5, -1)),
        ),
    )

    def objective(self, minibatches: Minibatches, commit: bool = True) -> ObjectiveValue:
        x, y = concat(minibatches)
        logits = self.predict(x)
        loss = F.cross_entropy(logits, y) + self.params["sd_reg"] * (logits**2).mean()
        return loss, {"loss": loss.detach()}


def fish_meta_step(meta: dict[str, torch.Tensor], inner: dict[str, torch.Tensor], meta_lr: float) -> dict:
    """Fish's outer update: ``meta + meta_lr * (inner - meta)`` for every floating-point tensor."""
    return {
        k: v + meta_lr * (inner[k] - v) if torch.is_floating_point(v) else inner[k].clone()
        for k, v in meta.items()
    }


@DG.register("fish")
class Fish(Algorithm):
    """Fish: sequential inner steps over the domains' minibatches on a clone, then a meta step
    toward the clone, which maximises inter-domain gradient inner products to first order
    (Shi et al., *Gradient Matching for Domain Generalization*, ICLR 2022). As in the official
    code the inner optimizer (Adam) keeps its state across updates."""

    paper = "Shi et al., Gradient Matching for Domain Generalization (ICLR 2022)"
    hparams = (
        HParam(
            "meta_lr",
            0.5,
            grid=(0.05, 0.1, 0.5),
            help="outer step size",
            draw=lambda r: float(r.choice([0.05, 0.1, 0.5])),
        ),
    )

    def _build(self) -> None:
        self.inner_state = None

    def update(self, minibatches: Minibatches) -> StepLogs:
        inner = copy.deepcopy(self.network)
        optimizer = self._optimizer(inner.parameters())
        if self.inner_state is not None:
            optimizer.load_state_dict(self.inner_state)
        for x, y in minibatches:
            loss = F.cross_entropy(inner(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        self.inner_state = optimizer.state_dict()
        self.network.load_state_dict(
            fish_meta_step(self.network.state_dict(), inner.state_dict(), self.params["meta_lr"])
        )
        return {"loss": loss.detach()}


class _AdversarialDomains(Algorithm):
    """Domain-adversarial features: a domain discriminator and the featurizer play a minimax game;
    ``d_steps_per_g_step`` discriminator steps alternate with one featurizer/classifier step."""

    conditional = False
    feature_level = "its adversary trains the featurizer to hide the domain"
    class_balance = False
    hparams = (
        HParam(
            "lambda",
            1.0,
            grid=(0.1, 1.0),
            help="adversarial weight",
            draw=lambda r: float(10 ** r.uniform(-2, 2)),
        ),
        HParam(
            "weight_decay_d",
            0.0,
            help="discriminator weight decay",
            draw=lambda r: float(10 ** r.uniform(-6, -2)),
        ),
        HParam(
            "d_steps_per_g_step",
            1,
            grid=(1, 2),
            help="discriminator steps per generator step",
            draw=lambda r: int(2 ** r.uniform(0, 3)),
        ),
        HParam(
            "grad_penalty",
            0.0,
            help="discriminator input-gradient penalty",
            draw=lambda r: float(10 ** r.uniform(-2, 1)),
        ),
        HParam(
            "beta1",
            0.5,
            grid=(0.0, 0.5),
            help="Adam beta1 of both players",
            draw=lambda r: float(r.choice([0.0, 0.5])),
        ),
    )

    def _build(self) -> None:
        from unseen.nn.networks import MLP

        width = self.featurizer.n_outputs
        self.discriminator = MLP(
            width,
            self.n_domains,
            self.params["mlp_width"],
            self.params["mlp_depth"],
            self.params["mlp_dropout"],
        )
        self.class_embeddings = nn.Embedding(self.n_classes, width)
        self.update_count = 0
        self.disc_optimizer = adam(
            [*self.discriminator.parameters(), *self.class_embeddings.parameters()],
            lr=self.params["lr"],
            weight_decay=self.params["weight_decay_d"],
            betas=(self.params["beta1"], 0.9),
        )

    def _optimizer(self, params) -> torch.optim.Optimizer:
        betas = (self.params["beta1"], 0.9)
        return adam(params, lr=self.params["lr"], weight_decay=self.params["weight_decay"], betas=betas)

    def update(self, minibatches: Minibatches) -> StepLogs:
        self.update_count += 1
        x, y = concat(minibatches)
        domains = torch.cat(
            [torch.full((len(yd),), d, device=y.device) for d, (_, yd) in enumerate(minibatches)]
        )
        z = self.featurizer(x)
        disc_input = z + self.class_embeddings(y) if self.conditional else z
        disc_out = self.discriminator(disc_input)
        if self.class_balance:
            counts = torch.bincount(y, minlength=self.n_classes).float()
            weights = 1.0 / (counts[y] * (counts > 0).sum())
            disc_loss = (F.cross_entropy(disc_out, domains, reduction="none") * weights).sum()
        else:
            disc_loss = F.cross_entropy(disc_out, domains)
        # The penalty differentiates each sample's probability of its own domain (DomainBed
        # indexes a square matrix here; gathering the own-domain column is the intended term).
        own = disc_out.softmax(dim=1).gather(1, domains[:, None]).sum()
        (input_grad,) = torch.autograd.grad(own, [disc_input], create_graph=True)
        disc_loss = disc_loss + self.params["grad_penalty"] * (input_grad**2).sum(dim=1).mean()
        steps = self.params["d_steps_per_g_step"]
        if self.update_count % (1 + steps) < steps:
            self.disc_optimizer.zero_grad()
            disc_loss.backward()
            self.disc_optimizer.step()
            return {"disc_loss": disc_loss.detach()}
        classifier_loss = F.cross_entropy(self.classifier(z), y)
        gen_loss = classifier_loss - self.params["lambda"] * disc_loss
        self.disc_optimizer.zero_grad()
        self.optimizer.zero_grad()
        gen_loss.backward()
        self.optimizer.step()
        return {"gen_loss": gen_loss.detach(), "loss": classifier_loss.detach()}


@DG.register("dann")
class DANN(_AdversarialDomains):
    """Domain-Adversarial Neural Networks (Ganin et al., JMLR 2016), DomainBed's form."""

    paper = "Ganin et al., Domain-Adversarial Training of Neural Networks (JMLR 2016)"


@DG.register("cdann")
class CDANN(_AdversarialDomains):
    """Conditional DANN: the discriminator also sees the class (an embedding added to the
    features) and its loss is class-balanced (Li et al., ECCV 2018), DomainBed's form."""

    paper = "Li et al., Deep Domain Generalization via Conditional Invariant Adversarial Networks (ECCV 2018)"
    conditional = True
    class_balance = True


def and_mask(domain_grads: torch.Tensor, tau: float) -> torch.Tensor:
    """AND-mask of per-domain gradients stacked on dim 0: the mean gradient where at least a
    ``tau`` agreement of signs holds (``|mean sign| >= tau``), zero elsewhere, rescaled by the
    inverse fraction of entries kept."""
    mask = (torch.sign(domain_grads).mean(dim=0).abs() >= tau).float()
    kept = mask.sum() / mask.numel()
    return mask * domain_grads.mean(dim=0) / (1e-10 + kept)


@DG.register("andmask")
class ANDMask(Algorithm):
    """Learning explanations that are hard to vary: step only along gradient components whose
    sign agrees across domains (Parascandolo et al., ICLR 2021)."""

    paper = "Parascandolo et al., Learning Explanations That Are Hard to Vary (ICLR 2021)"
    hparams = (
        HParam(
            "tau",
            1.0,
            grid=(0.5, 0.75, 1.0),
            help="sign agreement required",
            draw=lambda r: float(r.uniform(0.5, 1.0)),
        ),
    )

    def update(self, minibatches: Minibatches) -> StepLogs:
        params = [p for p in self.network.parameters() if p.requires_grad]
        losses, grads = [], []
        for x, y in minibatches:
            loss = F.cross_entropy(self.predict(x), y)
            losses.append(loss.detach())
            grads.append(torch.autograd.grad(loss, params))
        self.optimizer.zero_grad()
        for i, p in enumerate(params):
            p.grad = self.masked_gradient(torch.stack([g[i] for g in grads]))
        self.optimizer.step()
        return {"loss": torch.stack(losses).double().mean()}

    def masked_gradient(self, domain_grads: torch.Tensor) -> torch.Tensor:
        return and_mask(domain_grads, self.params["tau"])


def sand_mask(domain_grads: torch.Tensor, tau: float, k: float) -> torch.Tensor:
    """SAND-mask of per-domain gradients stacked on dim 0: the mean gradient scaled, per entry, by
    ``max(0, tanh(k (|mean sign| - tau) / var))`` (``var`` the unbiased variance over domains),
    then by the inverse mean mask; undefined values (zero variance at the threshold, a single
    domain) count as ``1e-17``, as in DomainBed."""
    variance = domain_grads.var(dim=0)
    variance = torch.where(torch.isnan(variance), torch.full_like(variance, 1e-17), variance)
    agreement = torch.sign(domain_grads).mean(dim=0).abs()
    mask = torch.tanh(k * (agreement - tau) / variance).clamp_min(0.0)
    mask = torch.where(torch.isnan(mask), torch.full_like(mask, 1e-17), mask)
    return mask * domain_grads.mean(dim=0) / (1e-10 + mask.mean())


@DG.register("sandmask")
class SANDMask(ANDMask):
    """SAND-mask: AND-mask with a smooth mask that also weighs how consistently each gradient
    component agrees across domains (Shahtalebi et al., arXiv 2021; DomainBed's ``SANDMask``).

    DomainBed's search distributions; its default ``tau`` = 1 is not used: no sign agreement
    exceeds 1, so the mask would be zero everywhere and no step would ever be taken. The default
    here is the middle of its search range, 0.5."""

    paper = (
        "Shahtalebi et al., SAND-mask: An Enhanced Gradient Masking Strategy for the Discovery of "
        "Invariances in Domain Generalization (arXiv 2021)"
    )
    hparams = (
        HParam(
            "tau",
            0.5,
            grid=(0.25, 0.5, 0.75),
            help="sign agreement at which the mask opens",
            draw=lambda r: float(r.uniform(0.0, 1.0)),
        ),
        HParam(
            "k",
            10.0,
            grid=(1.0, 10.0, 100.0),
            help="steepness of the mask",
            draw=lambda r: float(10 ** r.uniform(-3, 5)),
        ),
    )

    def masked_gradient(self, domain_grads: torch.Tensor) -> torch.Tensor:
        return sand_mask(domain_grads, self.params["tau"], self.params["k"])


@DG.register("mldg")
class MLDG(Algorithm):
    """Meta-learning domain generalization, first-order (Li et al., AAAI 2018, as DomainBed):
    for each (meta-train i, meta-test j) pair of domains, one inner Adam step on i, then the
    gradient of the inner step's loss plus ``beta`` times the adapted network's gradient on j
    is accumulated into the network, which then takes one step."""

    paper = "Li et al., Learning to Generalize: Meta-Learning for Domain Generalization (AAAI 2018)"
    hparams = (
        HParam(
            "mldg_beta",
            1.0,
            grid=(0.1, 1.0, 10.0),
            help="meta-test weight",
            draw=lambda r: float(10 ** r.uniform(-1, 1)),
        ),
    )

    def update(self, minibatches: Minibatches) -> StepLogs:
        n = len(minibatches)
        self.optimizer.zero_grad()
        for p in self.network.parameters():
            p.grad = torch.zeros_like(p)
        objective = 0.0
        for i, j in random_pairs(n, self.generator):
            (xi, yi), (xj, yj) = minibatches[i], minibatches[j]
            inner = copy.deepcopy(self.network)
            inner_optimizer = self._optimizer(inner.parameters())
            inner_loss = F.cross_entropy(inner(xi), yi)
            inner_optimizer.zero_grad()
            inner_loss.backward()
            inner_optimizer.step()
            for target, source in zip(self.network.parameters(), inner.parameters(), strict=True):
                if source.grad is not None:
                    target.grad.add_(source.grad / n)
            outer_loss = F.cross_entropy(inner(xj), yj)
            outer_grads = torch.autograd.grad(outer_loss, list(inner.parameters()), allow_unused=True)
            for target, grad in zip(self.network.parameters(), outer_grads, strict=True):
                if grad is not None:
                    target.grad.add_(self.params["mldg_beta"] * grad / n)
            outer = self.params["mldg_beta"] * outer_loss.detach().double()
            objective = objective + inner_loss.detach().double() + outer
        self.optimizer.step()
        return {"loss": objective / n}
