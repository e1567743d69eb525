"""ADRMX: label features minus additive domain features, made domain-invariant adversarially, with
a contrastive loss that weighs same-domain and other-domain pairs and a remix of the two parts."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from unseen.core.registry import HParam
from unseen.methods.dg.base import Algorithm, Minibatches, StepLogs, adam, concat, shared_hparams
from unseen.methods.registry import DG
from unseen.nn import networks
from unseen.nn.networks import MLP

CONTRASTIVE_TEMPERATURE = 0.07
CONTRASTIVE_LAMBDA = 0.5
"""Weight of same-domain pairs in ADRMX's contrastive loss (other-domain pairs: 1 - it)."""


def domain_weighted_supcon(
    features: torch.Tensor,
    labels: torch.Tensor,
    domains: torch.Tensor,
    lam: float = CONTRASTIVE_LAMBDA,
    temperature: float = CONTRASTIVE_TEMPERATURE,
) -> torch.Tensor:
    """ADRMX's supervised contrastive loss with domain weights (DomainBed's ``SupConLossLambda``).

    Cosine similarities over ``temperature``; for anchor ``i`` every other sample ``j`` has the
    weight ``lam`` when it is of ``i``'s domain and ``1 - lam`` otherwise, and the term
    ``w_ij exp(s_ij)``. With ``Z_i`` the sum of these terms over all ``j != i`` plus ``1e-5``,
    anchor ``i`` scores the mean over its positives (same class) of ``log(w_ij exp(s_ij) / Z_i +
    1e-5)``; anchors without positives are skipped, and the loss is minus the sum of the scores
    divided by (number of anchors kept + 1), as in DomainBed.
    """
    z = F.normalize(features, dim=1)
    sims = z @ z.T / temperature
    others = ~torch.eye(len(z), dtype=torch.bool, device=z.device)
    same_domain = domains[:, None] == domains[None]
    weights = torch.where(same_domain, torch.full_like(sims, lam), torch.full_like(sims, 1 - lam))
    terms = weights * torch.exp(sims) * others
    denominators = terms.sum(1, keepdim=True) + 1e-5
    positives = (labels[:, None] == labels[None]) & others
    logs = torch.log(terms / denominators + 1e-5) * positives
    counts = positives.sum(1)
    kept = counts > 0
    scores = logs.sum(1)[kept] / counts[kept]
    return -scores.sum() / (int(kept.sum()) + 1)


def _deep_head(n_features: int, n_outputs: int) -> nn.Sequential:
    """DomainBed's nonlinear classifier: ``n -> n/2 -> n/4 -> outputs`` with ReLUs."""
    return nn.Sequential(
        nn.Linear(n_features, n_features // 2),
        nn.ReLU(),
        nn.Linear(n_features // 2, n_features // 4),
        nn.ReLU(),
        nn.Linear(n_features // 4, n_outputs),
    )


def _fixed(name: str, value, help: str) -> HParam:
    return HParam(name, value, help=help, draw=lambda r: value)


@DG.register("adrmx")
class ADRMX(Algorithm):
    """ADRMX (Demirel et al., *ADRMX: Additive Disentanglement of Domain Features with Remix Loss*,
    arXiv 2023; DomainBed's ``ADRMX``).

    Two featurizers: label features ``f_l`` and domain features ``f_d``; their difference
    ``f_l - f_d`` should hold no domain. A domain discriminator (an MLP of ``mlp_width`` x
    ``mlp_depth``) on ``f_l - f_d`` takes ``d_steps_per_g_step`` updates out of every ``1 +
    d_steps_per_g_step``; the other update trains both featurizers and three nonlinear heads on:
    the cross-entropy of ``f_l`` (the prediction head, ``network``'s classifier) and of ``f_l -
    f_d`` (a second head), ``dclf_lambda`` x a domain head's cross-entropy on ``f_d``,
    ``cnt_lambda`` x :func:`domain_weighted_supcon` of ``f_l`` and of ``f_l - f_d``,
    ``rmxd_lambda`` x the remix loss (per class, two random samples ``a``, ``b`` of it:
    the prediction head's cross-entropy on ``(f_l - f_d)[a] + f_d[b]``, summed and divided by the
    number of classes) and minus ``disc_lambda`` x the discriminator's loss. Prediction:
    ``classifier(f_l)``. Both optimizers are Adam with ``betas = (beta1, 0.9)`` and no weight decay,
    as in DomainBed.

    Hyperparameters are DomainBed's, including its ADRMX values of shared ones (``lr`` 3e-3 with
    a choice of 5e-4, 1e-3, 2e-3, 3e-3; with the pretrained image featurizer 3e-5 with a choice of
    2e-5 .. 5e-5; ``mlp_depth`` 9 with a choice of 8, 9, 10; ``mlp_width`` 256 and ``mlp_dropout``
    0 fixed). The remix pairs are two random samples of the class from any domains, as DomainBed's
    code draws them (its comment asks for different domains), drawn from the algorithm's seeded
    generator. Two players with two optimizers: the update rules (SAM, FAD) refuse ADRMX with an
    error; the averaging wrappers work and average ``network`` (label featurizer and prediction
    head).
    """

    paper = "Demirel et al., ADRMX: Additive Disentanglement of Domain Features with Remix Loss (arXiv 2023)"
    feature_level = "it disentangles two featurizers' outputs adversarially"
    hparams = (
        _fixed("cnt_lambda", 1.0, "weight of the contrastive losses"),
        _fixed("dclf_lambda", 1.0, "weight of the domain head's cross-entropy"),
        _fixed("disc_lambda", 0.75, "weight of the adversarial (negated discriminator) loss"),
        _fixed("rmxd_lambda", 1.0, "weight of the remix loss"),
        HParam(
            "d_steps_per_g_step",
            2,
            help="discriminator updates per featurizer update",
            draw=lambda r: 2,
        ),
        HParam("beta1", 0.5, help="Adam beta1 of both players", draw=lambda r: 0.5),
    )

    @classmethod
    def all_hparams(cls, input_shape=None):
        large = input_shape is not None and networks.featurizer_kind(input_shape).name == "efficientnet-lite0"
        lrs = (2e-5, 3e-5, 4e-5, 5e-5) if large else (5e-4, 1e-3, 2e-3, 3e-3)
        replaced = {
            "lr": HParam(
                "lr",
                lrs[1] if large else lrs[3],
                grid=lrs,
                help="Adam learning rate",
                draw=lambda r: float(r.choice(lrs)),
            ),
            "mlp_width": _fixed("mlp_width", 256, "MLP width (discriminator; featurizer of vectors)"),
            "mlp_depth": HParam(
                "mlp_depth",
                9,
                help="MLP depth (discriminator; featurizer of vectors)",
                draw=lambda r: int(r.choice([8, 9, 10])),
            ),
            "mlp_dropout": _fixed("mlp_dropout", 0.0, "MLP dropout"),
        }
        return tuple(replaced.get(h.name, h) for h in shared_hparams(input_shape)) + cls.hparams

    def _build(self) -> None:
        width, p = self.featurizer.n_outputs, self.params
        self.domain_featurizer = networks.featurizer(self.input_shape, p)
        self.classifier = _deep_head(width, self.n_classes)
        self.invariant_classifier = _deep_head(width, self.n_classes)
        self.domain_classifier = _deep_head(width, self.n_domains)
        self.discriminator = MLP(width, self.n_domains, p["mlp_width"], p["mlp_depth"], p["mlp_dropout"])
        self.update_count = 0

    def _optimizer(self, params) -> torch.optim.Optimizer:
        return adam(params, lr=self.params["lr"], betas=(self.params["beta1"], 0.9))

    def __init__(self, input_shape, n_classes, n_domains, hparams=None, seed=0, device=None) -> None:
        super().__init__(input_shape, n_classes, n_domains, hparams, seed, device)
        players = (
            self.featurizer,
            self.domain_featurizer,
            self.classifier,
            self.invariant_classifier,
            self.domain_classifier,
        )
        self.optimizer = self._optimizer([q for m in players for q in m.parameters()])
        self.disc_optimizer = self._optimizer(self.discriminator.parameters())

    def remix_loss(self, invariant: torch.Tensor, domain: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per class, two random samples ``a``, ``b``: the prediction head's cross-entropy on
        ``invariant[a] + domain[b]`` against ``y[a]``; summed over classes with two or more samples
        and divided by the number of classes."""
        total = invariant.new_zeros(())
        for c in range(self.n_classes):
            rows = torch.nonzero(y == c).flatten()
            if len(rows) < 2:
                continue
            a, b = rows[torch.randperm(len(rows), generator=self.generator)[:2].to(rows.device)]
            logits = self.classifier((invariant[a] + domain[b])[None])
            total = total + F.cross_entropy(logits, y[a][None])
        return total / self.n_classes

    def update(self, minibatches: Minibatches) -> StepLogs:
        self.update_count += 1
        x, y = concat(minibatches)
        domains = torch.cat(
            [torch.full((len(yd),), d, device=y.device) for d, (_, yd) in enumerate(minibatches)]
        )
        label_features, domain_features = self.featurizer(x), self.domain_featurizer(x)
        invariant = label_features - domain_features
        disc_loss = F.cross_entropy(self.discriminator(invariant), domains)
        steps, p = self.params["d_steps_per_g_step"], self.params
        if self.update_count % (1 + steps) < steps:
            self.disc_optimizer.zero_grad()
            disc_loss.backward()
            self.disc_optimizer.step()
            return {"disc_loss": disc_loss.detach()}
        nll = F.cross_entropy(self.classifier(label_features), y)
        invariant_nll = F.cross_entropy(self.invariant_classifier(invariant), y)
        domain_nll = F.cross_entropy(self.domain_classifier(domain_features), domains)
        contrastive = domain_weighted_supcon(label_features, y, domains) + domain_weighted_supcon(
            invariant, y, domains
        )
        remix = self.remix_loss(invariant, domain_features, y)
        loss = (
            nll
            + invariant_nll
            + p["dclf_lambda"] * domain_nll
            + p["rmxd_lambda"] * remix
            + p["cnt_lambda"] * contrastive
            - p["disc_lambda"] * disc_loss
        )
        self.disc_optimizer.zero_grad()
        self._step(loss)
        return {
            "gen_loss": loss.detach(),
            "loss": nll.detach(),
            "contrastive": contrastive.detach(),
            "remix": remix.detach(),
            "disc_loss": disc_loss.detach(),
        }
