"""WGAN-GP training steps of the feature generators: written-out critic gradient against autograd.

Run: ``python benchmarks/bench_wgan_steps.py [--feat-dim D] [--att-dim K] [--hidden H] [--batch B]``.

Defaults are f-CLSWGAN's CUB networks (Xian et al. CVPR 2018): 2048-d features, 312 attributes,
4096 hidden units, batch 64; f-VAEGAN-D2, TF-VAEGAN and CE-GZSL use the same critic.

* **Critic step** (one of the five per generator step): ``E[D(fake)] - E[D(real)] + 10 GP`` and one
  Adam step (lr 1e-4, betas 0.5, 0.999) on the critic, from the same weights and batches. The
  reference is the usual formulation, which the official codes share: three critic calls, the
  penalty's input gradient with ``create_graph=True``, ``backward()``, ``torch.optim.Adam``. Ours is
  :meth:`Critic.backward_wgan_gp` and a fused Adam, as the methods run it. The two mixed
  variants show what each change buys.
* **Generator step**: ``-E[D(G(z, a))]`` backpropagated to the generator, with the critic's
  weights requiring gradients (which ``backward()`` then computes and the next critic step
  discards) and inside :func:`frozen`.

Variants run in alternation, ``--repeats`` rounds of ``--steps`` steps each; the script prints the
median milliseconds per step, the ratio to the reference, and the largest difference between the
critic gradients of the reference and ours on the first batch.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from unseen.methods.gzsl.generative import ConditionalGenerator, Critic, frozen, init_weights, stream

GP_WEIGHT = 10.0


def autograd_critic_objective(
    critic: Critic, real: torch.Tensor, fake: torch.Tensor, att: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    t = torch.rand((len(real), 1), generator=generator)
    x_hat = (t * real + (1 - t) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat, att).sum(), x_hat, create_graph=True)
    penalty = ((grad.norm(dim=1) - 1) ** 2).mean()
    return critic(fake, att).mean() - critic(real, att).mean() + GP_WEIGHT * penalty


def critic_step(written_out: bool, fused: bool, nets: tuple, batches: list) -> Callable[[int], None]:
    G, D = nets
    opt = torch.optim.Adam(D.parameters(), lr=1e-4, betas=(0.5, 0.999), fused=fused)
    gen = stream(0, "critic")

    def step(i: int) -> None:
        real, att, z = batches[i % len(batches)]
        with torch.no_grad():
            fake = G(z, att)
        opt.zero_grad(set_to_none=True)
        if written_out:
            D.backward_wgan_gp(real, fake, att, gen, GP_WEIGHT)
        else:
            autograd_critic_objective(D, real, fake, att, gen).backward()
        opt.step()

    return step


def generator_step(freeze: bool, nets: tuple, batches: list) -> Callable[[int], None]:
    G, D = nets
    opt = torch.optim.Adam(G.parameters(), lr=1e-4, betas=(0.5, 0.999), fused=True)

    def step(i: int) -> None:
        _, att, z = batches[i % len(batches)]
        fake = G(z, att)
        if freeze:
            with frozen(D):
                loss = -D(fake, att).mean()
        else:
            loss = -D(fake, att).mean()
        opt.zero_grad(set_to_none=True)
        D.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def fresh_nets(args: argparse.Namespace) -> tuple[ConditionalGenerator, Critic]:
    gen = stream(0, "init")
    G = init_weights(ConditionalGenerator(args.att_dim, args.att_dim, args.hidden, args.feat_dim), gen)
    D = init_weights(Critic(args.feat_dim, args.att_dim, args.hidden), gen)
    return G, D


def largest_gradient_difference(args: argparse.Namespace, batches: list) -> float:
    (G, ours), (_, reference) = fresh_nets(args), fresh_nets(args)
    real, att, z = batches[0]
    with torch.no_grad():
        fake = G(z, att)
    ours.backward_wgan_gp(real, fake, att, stream(0, "check"), GP_WEIGHT)
    autograd_critic_objective(reference, real, fake, att, stream(0, "check")).backward()
    return max(
        (p.grad - q.grad).abs().max().item()
        for p, q in zip(ours.parameters(), reference.parameters(), strict=True)
    )


def time_variants(variants: dict[str, Callable[[int], None]], steps: int, repeats: int) -> dict[str, float]:
    for step in variants.values():  # warm-up
        step(0)
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, step in variants.items():
            t = time.perf_counter()
            for i in range(steps):
                step(i)
            times[name].append((time.perf_counter() - t) / steps)
    return {name: statistics.median(ts) for name, ts in times.items()}


def print_table(title: str, medians: dict[str, float]) -> None:
    base = next(iter(medians.values()))
    print(f"\n{title}\n| variant | ms per step | speed-up |\n|---|---|---|")
    for name, seconds in medians.items():
        print(f"| {name} | {seconds * 1e3:.0f} | {base / seconds:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feat-dim", type=int, default=2048)
    parser.add_argument("--att-dim", type=int, default=312)
    parser.add_argument("--hidden", type=int, default=4096)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    g = torch.Generator().manual_seed(0)
    batches = [
        (
            torch.rand(args.batch, args.feat_dim, generator=g),
            torch.rand(args.batch, args.att_dim, generator=g),
            torch.randn(args.batch, args.att_dim, generator=g),
        )
        for _ in range(4)
    ]
    print(
        f"features {args.feat_dim}, attributes {args.att_dim}, hidden {args.hidden}, batch {args.batch}, "
        f"{torch.get_num_threads()} torch thread(s); median of {args.repeats} rounds of {args.steps} steps"
    )
    critic = {
        "autograd double backward + torch.optim.Adam (reference)": critic_step(
            False, False, fresh_nets(args), batches
        ),
        "autograd double backward + fused Adam": critic_step(False, True, fresh_nets(args), batches),
        "written-out gradient + torch.optim.Adam": critic_step(True, False, fresh_nets(args), batches),
        "written-out gradient + fused Adam (ours)": critic_step(True, True, fresh_nets(args), batches),
    }
    print_table("Critic step", time_variants(critic, args.steps, args.repeats))
    generator = {
        "critic weights require gradients (reference)": generator_step(False, fresh_nets(args), batches),
        "critic frozen (ours)": generator_step(True, fresh_nets(args), batches),
    }
    print_table("Generator step (adversarial term)", time_variants(generator, args.steps, args.repeats))
    difference = largest_gradient_difference(args, batches)
    print(f"\nlargest critic-gradient difference, ours vs reference: {difference:.1e}")


if __name__ == "__main__":
    main()
