"""Conditional MLPs of the feature-generating family (one hidden layer, LeakyReLU 0.2).

Widths and activations follow Xian et al. (CVPR 2018, 2019) and Narayan et al. (ECCV 2020):
the generator maps ``[noise, attributes]`` through one hidden layer to a feature; the critic
scores ``[feature, attributes]``. Weights are drawn from ``N(0, 0.02)`` with zero biases (the
official codes' initialisation) from an explicit generator, so a seed fixes them.
"""

from __future__ import annotations

import torch
from torch import nn

LEAK = 0.2
OUTPUTS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "linear": nn.Identity}


def init_weights(module: nn.Module, generator: torch.Generator) -> nn.Module:
    """Every ``Linear`` of ``module``: weights ``~ N(0, 0.02)`` drawn from ``generator``, biases 0."""
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, nn.Linear):
                w = torch.randn(layer.weight.shape, generator=generator, device=generator.device) * 0.02
                layer.weight.copy_(w.to(layer.weight.device))
                layer.bias.zero_()
    return module


class ConditionalGenerator(nn.Module):
    """``G(z, a) = out(W2 (lrelu(W1 [z, a]) + feedback))``.

    ``output`` is ``"relu"`` (f-CLSWGAN), ``"sigmoid"`` (f-VAEGAN-D2, TF-VAEGAN: features are
    min-max scaled to [0, 1] and reconstructed with binary cross-entropy) or ``"linear"``
    (Bi-VAEGAN, which projects the output onto a sphere itself). ``feedback``, when
    given, is added to the hidden layer (TF-VAEGAN's feedback module, already weighted).
    """

    def __init__(self, noise_dim: int, att_dim: int, hidden: int, out_dim: int, output: str = "relu"):
        super().__init__()
        self.hidden = nn.Sequential(nn.Linear(noise_dim + att_dim, hidden), nn.LeakyReLU(LEAK))
        self.out = nn.Sequential(nn.Linear(hidden, out_dim), OUTPUTS[output]())

    def forward(self, z: torch.Tensor, a: torch.Tensor, feedback: torch.Tensor | None = None) -> torch.Tensor:
        h = self.hidden(torch.cat([z, a], dim=1))
        return self.out(h if feedback is None else h + feedback)


class Critic(nn.Module):
    """WGAN critic ``D(x, a) = W2 lrelu(W1 [x, a])`` (an unbounded score)."""

    def __init__(self, feat_dim: int, att_dim: int, hidden: int):
        super().__init__()
        self.feat_dim = feat_dim
        self.net = nn.Sequential(
            nn.Linear(feat_dim + att_dim, hidden), nn.LeakyReLU(LEAK), nn.Linear(hidden, 1)
        )

    def forward(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x, a], dim=1))

    @torch.no_grad()
    def backward_wgan_gp(
        self,
        real: torch.Tensor,
        fake: torch.Tensor,
        a: torch.Tensor,
        generator: torch.Generator,
        gp_weight: float | torch.Tensor,
        scale: float = 1.0,
        radius: float | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The critic's WGAN-GP objective (Gulrajani et al. 2017), its gradient added to the
        parameters' ``.grad`` as ``backward()`` would add it. Returns the objective and the raw
        penalty, both detached.

        Objective: ``scale * (E[D(fake, a)] - E[D(real, a)] + gp_weight * GP)`` with
        ``GP = E[(||grad_x D(x_hat, a)||_2 - 1)^2]`` at ``x_hat = t real + (1 - t) fake``, one
        ``t ~ U(0, 1)`` per row drawn from ``generator``. ``fake`` is treated as a constant. With
        ``radius``, ``x_hat`` is projected onto the sphere of that radius (Bi-VAEGAN's features
        live on one).

        The gradient is written out rather than taken by double backpropagation: with one
        LeakyReLU layer ``grad_x D(x_hat) = (m * W2) W1_x``, where the slopes ``m`` (1 or 0.2)
        are piecewise constant. The step then takes four products with the first layer's
        weights: one forward pass over the real, fake and interpolated rows, ``grad_x``, its
        back-projection for ``W2``, and one weight gradient for all three terms. Autograd's
        double backward runs separate passes per term and products through the LeakyReLU's
        zero second derivative (``benchmarks/bench_wgan_steps.py`` times both).
        """
        first, second = self.net[0], self.net[2]
        n, f = len(real), self.feat_dim
        alpha = torch.rand((n, 1), generator=generator, device=generator.device).to(real.device)
        x_hat = alpha * real + (1 - alpha) * fake
        if radius is not None:
            x_hat = radius * x_hat / x_hat.norm(dim=1, keepdim=True).clamp_min(1e-12)
        w_x, w_a = first.weight[:, :f], first.weight[:, f:]
        w2 = second.weight  # (1, hidden)
        pre = (torch.cat([real, fake, x_hat]) @ w_x.T).view(3, n, -1) + (a @ w_a.T + first.bias)
        slope = torch.where(pre > 0, 1.0, LEAK)
        hidden = pre * slope
        scores = (hidden @ w2.T).squeeze(2) + second.bias
        u = slope[2] * w2  # grad_x D(x_hat) = u @ w_x
        grad_x = u @ w_x
        norm = grad_x.norm(dim=1)
        penalty = ((norm - 1) ** 2).mean()
        objective = scale * (scores[1].mean() - scores[0].mean() + gp_weight * penalty)

        # d objective / d pre-activation of the real and fake rows; x_hat enters only through GP
        d_pre = (scale / n) * torch.stack([-slope[0], slope[1]]) * w2
        # d objective / d grad_x (zero where the norm is zero, as autograd's norm backward)
        shrink = torch.where(norm > 0, (norm - 1) / norm, 0.0)
        d_grad_x = (scale * gp_weight * 2 / n) * shrink[:, None] * grad_x
        grads = {
            first.weight: torch.cat(
                [
                    torch.cat([d_pre[0], d_pre[1], u]).T @ torch.cat([real, fake, d_grad_x]),
                    (d_pre[0] + d_pre[1]).T @ a,
                ],
                dim=1,
            ),
            first.bias: d_pre.sum(dim=(0, 1)),
            second.weight: (scale / n) * (hidden[1].sum(0) - hidden[0].sum(0))[None]
            + ((d_grad_x @ w_x.T) * slope[2]).sum(0, keepdim=True),
            second.bias: torch.zeros_like(second.bias),
        }
        for param, grad in grads.items():
            if param.grad is None:
                param.grad = grad
            else:
                param.grad += grad
        return objective, penalty


class VAEEncoder(nn.Module):
    """``E(x, a) -> (mu, log sigma^2)`` of the latent code (f-VAEGAN-D2's conditional encoder).

    As in the official TF-VAEGAN code: ``[x, a]`` -> ``hidden`` -> ``2 * latent`` units (both
    LeakyReLU), then separate linear heads for ``mu`` and ``log sigma^2``.
    """

    def __init__(self, feat_dim: int, att_dim: int, hidden: int, latent: int):
        super().__init__()
        self.hidden = nn.Sequential(
            nn.Linear(feat_dim + att_dim, hidden),
            nn.LeakyReLU(LEAK),
            nn.Linear(hidden, 2 * latent),
            nn.LeakyReLU(LEAK),
        )
        self.mu = nn.Linear(2 * latent, latent)
        self.logvar = nn.Linear(2 * latent, latent)

    def forward(self, x: torch.Tensor, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.hidden(torch.cat([x, a], dim=1))
        return self.mu(h), self.logvar(h)


class SemanticDecoder(nn.Module):
    """TF-VAEGAN's semantic embedding decoder: feature -> (L2-normalised attributes, hidden layer)."""

    def __init__(self, feat_dim: int, att_dim: int, hidden: int):
        super().__init__()
        self.hidden = nn.Sequential(nn.Linear(feat_dim, hidden), nn.LeakyReLU(LEAK))
        self.out = nn.Linear(hidden, att_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.hidden(x)
        return nn.functional.normalize(self.out(h), dim=1), h


class Feedback(nn.Module):
    """TF-VAEGAN's feedback module: decoder hidden layer -> a correction of the generator's hidden layer."""

    def __init__(self, hidden: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(hidden, hidden), nn.LeakyReLU(LEAK), nn.Linear(hidden, hidden), nn.LeakyReLU(LEAK)
        )

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h)
