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
OUTPUTS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid}


def init_weights(module: nn.Module, generator: torch.Generator) -> nn.Module:
    """Every ``Linear`` of ``module``: weights ``~ N(0, 0.02)`` drawn from ``generator``, biases 0."""
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, nn.Linear):
                w = torch.randn(layer.weight.shape, generator=generator) * 0.02
                layer.weight.copy_(w.to(layer.weight.device))
                layer.bias.zero_()
    return module


class ConditionalGenerator(nn.Module):
    """``G(z, a) = out(W2 (lrelu(W1 [z, a]) + feedback))``.

    ``output`` is ``"relu"`` (f-CLSWGAN) or ``"sigmoid"`` (f-VAEGAN-D2, TF-VAEGAN: features are
    min-max scaled to [0, 1] and reconstructed with binary cross-entropy). ``feedback``, when
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
        self.net = nn.Sequential(
            nn.Linear(feat_dim + att_dim, hidden), nn.LeakyReLU(LEAK), nn.Linear(hidden, 1)
        )

    def forward(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x, a], dim=1))


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
