"""A latent space on the unit hypersphere shared by image features and class semantics.

The representation learner of the boundary-based out-of-distribution classifier (Chen, Lan, Sun,
Zheng, ECCV 2020; :mod:`unseen.methods.gzsl.boundary_gate`), built on the hyperspherical VAE of
Davidson et al. (*Hyperspherical Variational Auto-Encoders*, UAI 2018):

* :func:`sample_vmf` -- reparameterised von Mises-Fisher draws (Wood's rejection sampler);
* :func:`sinkhorn_cost` -- the entropic optimal-transport cost between two point clouds;
* :class:`SphereAligner` -- one encoder per modality onto vMF distributions, decoders and a
  latent classifier, and :func:`aligner_loss`, the objective that aligns the two modalities
  class by class;
* :func:`fit_aligner` -- the training loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from unseen.methods.gzsl.generative.training import BatchSampler


def _chi_square(dof: int, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """Chi-square draws with ``dof`` degrees of freedom: sums of ``dof`` squared standard normals."""
    g = torch.randn((*shape, dof), generator=generator, device=generator.device)
    return g.pow(2).sum(-1)


def sample_vmf(mu: torch.Tensor, kappa: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` draws from each ``vMF(mu_i, kappa_i)``: ``(n, batch, m)`` unit vectors.

    ``mu`` is ``(batch, m)`` with unit rows, ``kappa`` ``(batch, 1)`` positive. Wood's algorithm
    (*Simulation of the von Mises Fisher distribution*, 1994): the component ``w`` along the mean
    comes from a rejection sampler on ``eps ~ Beta((m-1)/2, (m-1)/2)`` (drawn as a ratio of
    chi-squares), the rest is a uniform direction orthogonal to ``e1``, and a Householder
    reflection maps ``e1`` onto ``mu``. Gradients reach ``mu`` through the reflection and
    ``kappa`` through ``w`` with the accepted ``eps`` held fixed, as in Davidson et al.
    """
    batch, m = mu.shape
    dev = mu.device
    shape = (n, batch)
    k = kappa.reshape(1, batch).expand(shape)
    root = torch.sqrt(4 * k.pow(2) + (m - 1) ** 2)
    b = (m - 1) / (2 * k + root)  # = (-2k + root) / (m - 1), without cancellation at large kappa
    a = (m - 1 + 2 * k + root) / 4
    d = 4 * a * b / (1 + b) - (m - 1) * math.log(m - 1)
    eps = torch.zeros(shape, device=dev)
    pending = torch.ones(shape, dtype=torch.bool, device=dev)
    with torch.no_grad():
        b_, a_, d_ = b.detach(), a.detach(), d.detach()
        while pending.any():
            left, right = (_chi_square(m - 1, shape, generator).to(dev) for _ in range(2))
            e = left / (left + right)
            u = torch.rand(shape, generator=generator, device=generator.device).to(dev)
            t = 2 * a_ * b_ / (1 - (1 - b_) * e)
            accept = pending & ((m - 1) * torch.log(t) - t + d_ >= torch.log(u))
            eps = torch.where(accept, e, eps)
            pending &= ~accept
    w = (1 - (1 + b) * eps) / (1 - (1 - b) * eps)
    v = torch.randn((n, batch, m - 1), generator=generator, device=generator.device).to(dev)
    v = v / v.norm(dim=-1, keepdim=True)
    x = torch.cat([w.unsqueeze(-1), torch.sqrt((1 - w.pow(2)).clamp(min=1e-10)).unsqueeze(-1) * v], -1)
    e1 = torch.zeros(m, device=dev)
    e1[0] = 1.0
    r = e1 - mu  # reflection through the hyperplane orthogonal to e1 - mu maps e1 to mu
    r = r / r.norm(dim=-1, keepdim=True).clamp(min=1e-12)  # r = 0 (mu = e1): no reflection
    return x - 2 * (x * r).sum(-1, keepdim=True) * r


def sinkhorn_cost(x: torch.Tensor, y: torch.Tensor, eps: float, max_iter: int, tol: float) -> torch.Tensor:
    """Entropic optimal-transport cost between the point clouds ``x`` ``(B, P, d)`` and ``y``
    ``(B, Q, d)`` with uniform weights: ``sum_ij pi_ij C_ij`` per row of the batch, ``C`` the
    squared Euclidean distances and ``pi`` the Sinkhorn plan at regularisation ``eps``.

    Log-domain Sinkhorn iterations on the dual potentials ``u``, ``v``, stopped after ``max_iter``
    or once the change of ``u`` (summed over points, averaged over the batch) is below ``tol``;
    differentiable through every iteration (the official code's settings: eps 0.1, 100
    iterations, tol 0.1).
    """
    C = (x.unsqueeze(-2) - y.unsqueeze(-3)).pow(2).sum(-1)
    log_mu = torch.full(C.shape[:-1], -math.log(C.shape[-2]), device=C.device)
    log_nu = torch.full(C.shape[:-2] + C.shape[-1:], -math.log(C.shape[-1]), device=C.device)
    u, v = torch.zeros_like(log_mu), torch.zeros_like(log_nu)

    def log_plan(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return (-C + u.unsqueeze(-1) + v.unsqueeze(-2)) / eps

    for _ in range(max_iter):
        previous = u
        u = eps * (log_mu - torch.logsumexp(log_plan(u, v), dim=-1)) + u
        v = eps * (log_nu - torch.logsumexp(log_plan(u, v), dim=-2)) + v
        if (u - previous).abs().sum(-1).mean().item() < tol:
            break
    return (log_plan(u, v).exp() * C).sum((-2, -1))


class SphereEncoder(nn.Module):
    """``x -> (mu, kappa)``: a ReLU hidden layer, then the mean direction (a unit vector) and the
    concentration ``softplus(w . h) + kappa_floor`` (the official code's floor of 100)."""

    def __init__(self, in_dim: int, hidden: int, latent: int, kappa_floor: float):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU())
        self.direction = nn.Linear(hidden, latent)
        self.concentration = nn.Linear(hidden, 1, bias=False)
        self.kappa_floor = kappa_floor

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)
        return F.normalize(self.direction(h), dim=-1), F.softplus(self.concentration(h)) + self.kappa_floor


def mlp(in_dim: int, hidden: int, out_dim: int) -> nn.Module:
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, out_dim))


class SphereAligner(nn.Module):
    """Feature and semantic encoders onto the sphere ``S^(latent-1)``, a decoder per modality
    (each decodes latents of both modalities) and a linear classifier of the seen classes."""

    def __init__(
        self, feat_dim: int, sem_dim: int, hidden: int, latent: int, n_seen: int, kappa_floor: float
    ):
        super().__init__()
        self.enc_x = SphereEncoder(feat_dim, hidden, latent, kappa_floor)
        self.enc_a = SphereEncoder(sem_dim, hidden, latent, kappa_floor)
        self.dec_x = mlp(latent, hidden, feat_dim)
        self.dec_a = mlp(latent, hidden, sem_dim)
        self.classifier = nn.Linear(latent, n_seen)


def torch_default_init(module: nn.Module, generator: torch.Generator) -> nn.Module:
    """torch's default ``Linear`` initialisation (the official code's), drawn from ``generator``:
    weights Kaiming-uniform with ``a = sqrt(5)``, biases uniform in ``+-1/sqrt(fan_in)``."""
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, nn.Linear):
                nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
                if layer.bias is not None:
                    bound = 1 / math.sqrt(layer.in_features)
                    nn.init.uniform_(layer.bias, -bound, bound, generator=generator)
    return module


@dataclass(frozen=True)
class AlignerSettings:
    """The objective's and the training loop's settings (see :class:`~.boundary_gate.BoundaryGate`)."""

    hidden: int
    latent: int
    kappa_floor: float
    epochs: int
    lr: float
    batch_size: int
    align_samples: int
    align_weight: float
    sinkhorn_eps: float
    sinkhorn_iters: int
    sinkhorn_tol: float


def aligner_loss(
    net: SphereAligner,
    x: torch.Tensor,
    a: torch.Tensor,
    labels: torch.Tensor,
    z_x: torch.Tensor,
    z_a: torch.Tensor,
    clouds_x: torch.Tensor,
    clouds_a: torch.Tensor,
    s: AlignerSettings,
) -> torch.Tensor:
    """The official objective for a minibatch of features ``x``, their class semantics ``a`` and
    seen-class positions ``labels``, given latent draws ``z_x ~ q(z|x)``, ``z_a ~ q(z|a)``
    ``(B, latent)`` and clouds of further draws ``(B, align_samples, latent)``:

        L1(dec_x(z), x) + L1(dec_a(z), a) + NLL(classifier(z), y)   over z in {z_a, z_x}
        + align_weight * mean_i Sinkhorn(clouds_x_i, clouds_a_i)

    (L1 and NLL averaged over elements; both modalities' latents decode into both modalities
    and are classified, which aligns the two distributions of a class.)
    """
    z = torch.cat([z_a, z_x])
    rec_x = F.l1_loss(net.dec_x(z), torch.cat([x, x]))
    rec_a = F.l1_loss(net.dec_a(z), torch.cat([a, a]))
    cls = F.nll_loss(F.log_softmax(net.classifier(z), dim=1), torch.cat([labels, labels]))
    align = sinkhorn_cost(clouds_x, clouds_a, s.sinkhorn_eps, s.sinkhorn_iters, s.sinkhorn_tol).mean()
    return rec_x + rec_a + cls + s.align_weight * align


def fit_aligner(
    X: torch.Tensor,
    S: torch.Tensor,
    labels: torch.Tensor,
    s: AlignerSettings,
    init: torch.Generator,
    gen: torch.Generator,
) -> SphereAligner:
    """Train a :class:`SphereAligner` on features ``X``, the semantics ``S`` of the seen classes
    and the features' positions ``labels`` in ``S`` (Adam, all modules, ``epochs`` passes of
    minibatches of ``batch_size``). Returns it in evaluation mode."""
    net = torch_default_init(
        SphereAligner(X.shape[1], S.shape[1], s.hidden, s.latent, len(S), s.kappa_floor), init
    ).to(X.device)
    opt = torch.optim.Adam(net.parameters(), lr=s.lr)
    sampler = BatchSampler(len(X), min(s.batch_size, len(X)), gen, X.device)
    for _ in range(s.epochs):
        for idx in sampler.epoch():
            x, y = X[idx], labels[idx]
            a = S[y]
            draws_x = sample_vmf(*net.enc_x(x), 1 + s.align_samples, gen)
            draws_a = sample_vmf(*net.enc_a(a), 1 + s.align_samples, gen)
            clouds_x, clouds_a = draws_x[1:].transpose(0, 1), draws_a[1:].transpose(0, 1)
            loss = aligner_loss(net, x, a, y, draws_x[0], draws_a[0], clouds_x, clouds_a, s)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return net.eval()
