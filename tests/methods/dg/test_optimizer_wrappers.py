"""SAM and FAD update rules, SWAD's loss-valley averaging, and both through dg-lodo-v1."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from unseen.core.errors import HyperparameterError, SpecError
from unseen.data.domains import DomainDataset
from unseen.methods import DG
from unseen.methods.dg.objective import SingleObjective
from unseen.methods.dg.optimizers import FAD, SAM, UPDATE_RULES, ascent_step
from unseen.methods.dg.swad import SWAD, loss_valley
from unseen.protocols.dg import DGProtocol


def _minibatches(shape=(5,), n_domains=3, n=8, n_classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(n, *shape, generator=g), torch.randint(n_classes, (n,), generator=g))
        for _ in range(n_domains)
    ]


def _erm_objective_algorithm(seed=0):
    """RIDG without its penalty: a single-objective algorithm whose objective is ERM's."""
    return DG["ridg"]((5,), 3, 3, {"mlp_width": 8, "ridg_reg": 0.0}, seed=seed)


def _erm_loss(network, batches):
    x = torch.cat([b[0] for b in batches])
    y = torch.cat([b[1] for b in batches])
    return F.cross_entropy(network(x), y)


def _grads(network, batches):
    return torch.autograd.grad(_erm_loss(network, batches), list(network.parameters()))


# --- SAM ----------------------------------------------------------------------------------------


def test_sam_ascent_step_is_rho_times_the_normalized_gradient():
    grads = [torch.tensor([3.0, 0.0]), torch.tensor([[0.0], [4.0]])]  # global norm 5
    step = ascent_step(grads, 0.5)
    assert torch.allclose(step[0], torch.tensor([0.3, 0.0])) and torch.allclose(
        step[1], torch.tensor([[0.0], [0.4]])
    )


def test_sam_update_equals_the_two_pass_step_by_hand():
    algo = _erm_objective_algorithm()
    reference = copy.deepcopy(algo.network)
    optimizer = torch.optim.Adam(reference.parameters(), lr=algo.params["lr"])
    batches = _minibatches()
    initial_loss = _erm_loss(reference, batches).item()

    g0 = _grads(reference, batches)
    norm = torch.sqrt(sum((g**2).sum() for g in g0))
    with torch.no_grad():
        for p, g in zip(reference.parameters(), g0, strict=True):
            p.add_(0.1 * g / norm)
    g1 = _grads(reference, batches)
    with torch.no_grad():
        for p, g in zip(reference.parameters(), g0, strict=True):
            p.sub_(0.1 * g / norm)
    for p, g in zip(reference.parameters(), g1, strict=True):
        p.grad = g
    optimizer.step()

    logs = SAM(algo, {"rho": 0.1}).update(batches)
    assert logs["loss"] == pytest.approx(initial_loss, rel=1e-6)  # reported at the unperturbed weights
    for a, b in zip(algo.network.parameters(), reference.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6)


def test_sam_with_zero_radius_is_the_plain_update():
    a, b = _erm_objective_algorithm(), _erm_objective_algorithm()
    rule = SAM(a, {"rho": 0.0})
    for step in range(2):
        batches = _minibatches(seed=step)
        assert rule.update(batches) == b.update(batches)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.allclose(p, q, atol=1e-7)


# --- FAD ----------------------------------------------------------------------------------------


def test_fad_direction_on_a_quadratic_by_hand():
    a = torch.tensor([[3.0, 1.0], [1.0, 2.0]])
    b = torch.tensor([1.0, -1.0])
    w = torch.tensor([0.5, 0.2])

    def grad(v):
        return a @ v + b

    def gradient_at(offsets):
        return [grad(w + offsets[0])]

    rho, alpha, beta = 0.1, 0.7, 0.3
    g0 = grad(w)
    g1 = grad(w + rho * g0 / g0.norm())
    e1 = rho * (g1 - g0) / (g1 - g0).norm()
    g2 = grad(w + e1)
    g3 = grad(w + e1 + rho * g2 / g2.norm())
    expected = g0 + beta * (alpha * (g1 - g0) + (1 - alpha) * (g3 - g2))
    algo = _erm_objective_algorithm()
    (direction,) = FAD(algo, {"rho": rho, "alpha": alpha, "beta": beta}).direction([g0], gradient_at)
    assert torch.allclose(direction, expected, atol=1e-6)
    # on a quadratic the finite differences are exact Hessian-vector products: g3 - g2 = rho A g2 / |g2|
    u = g2 / g2.norm()
    assert torch.allclose(g3 - g2, rho * a @ u, atol=1e-6)


def test_fad_reduces_to_sam_and_to_the_plain_step():
    batches = _minibatches()
    fad_sam, sam = _erm_objective_algorithm(), _erm_objective_algorithm()
    FAD(fad_sam, {"rho": 0.05, "alpha": 1.0, "beta": 1.0}).update(batches)
    SAM(sam, {"rho": 0.05}).update(batches)
    fad_plain, plain = _erm_objective_algorithm(), _erm_objective_algorithm()
    FAD(fad_plain, {"alpha": 0.5, "beta": 0.0}).update(batches)
    plain.update(batches)
    for pairs in (
        zip(fad_sam.parameters(), sam.parameters(), strict=True),
        zip(fad_plain.parameters(), plain.parameters(), strict=True),
    ):
        for p, q in pairs:
            assert torch.allclose(p, q, atol=1e-6)


# --- composition contract -----------------------------------------------------------------------


class _DrawSpy(SingleObjective):
    """Records the random draw and the commit flag of every objective evaluation."""

    name = "draw-spy"

    def _build(self) -> None:
        self.calls: list[tuple[int, bool]] = []
        self.commits = 0

    def objective(self, minibatches, commit=True):
        draw = int(torch.randint(1000, (1,), generator=self.generator))
        self.calls.append((draw, commit))
        self.commits += commit
        x = torch.cat([b[0] for b in minibatches])
        y = torch.cat([b[1] for b in minibatches])
        loss = F.cross_entropy(self.predict(x), y)
        return loss, {"loss": loss.item()}


@pytest.mark.parametrize("rule", sorted(UPDATE_RULES))
def test_every_evaluation_of_one_update_sees_the_same_draws_and_commits_once(rule):
    spy = _DrawSpy((5,), 3, 3, {"mlp_width": 8}, seed=0)
    plain = _DrawSpy((5,), 3, 3, {"mlp_width": 8}, seed=0)
    wrapped = UPDATE_RULES[rule](spy)
    for step in range(2):
        spy.calls.clear()
        wrapped.update(_minibatches(seed=step))
        plain.update(_minibatches(seed=step))
        assert len({draw for draw, _ in spy.calls}) == 1 and [c for _, c in spy.calls].count(True) == 1
        assert spy.calls[0] == plain.calls[-1]  # the generator advanced as for one plain update
    assert spy.commits == 2


def test_fishr_state_advances_once_per_sam_update():
    algo = DG["fishr"]((5,), 3, 3, {"mlp_width": 8})
    rule = FAD(algo)
    for step in range(3):
        rule.update(_minibatches(seed=step))
    assert int(algo.update_count) == 3


def test_multi_step_algorithms_are_refused_with_the_usable_ones_named():
    with pytest.raises(HyperparameterError, match=r"'dann'.*rsc"):
        SAM(DG["dann"]((5,), 3, 3, {"mlp_width": 8}))


# --- SWAD ---------------------------------------------------------------------------------------

VALLEY = [1.0, 0.8, 0.6, 0.5, 0.55, 0.52, 0.6, 0.7, 0.9, 1.2, 1.3, 1.4]


def test_loss_valley_window_on_a_hand_made_sequence():
    # start: checkpoint 3 is the minimum of losses 3..5; threshold 1.3 * mean(0.5, 0.55, 0.52) = 0.680
    # checkpoint 7 fails: min(0.7, 0.9) > 0.680, so the window ends at 6
    assert loss_valley(VALLEY, n_converge=3, n_tolerance=2, tolerance_ratio=0.3) == (3, 6)
    # a longer look-ahead changes nothing here: checkpoint 7's losses 0.7, 0.9, 1.2, 1.3 are all above 0.680
    assert loss_valley(VALLEY, n_converge=3, n_tolerance=4, tolerance_ratio=0.3) == (3, 6)
    assert loss_valley(VALLEY, n_converge=3, n_tolerance=2, tolerance_ratio=0.05) == (3, 5)  # threshold 0.550
    assert loss_valley([5.0, 4.0, 3.0, 2.0, 1.0], n_converge=3) is None  # never converged
    assert loss_valley([3.0, 1.0, 1.1, 1.05, 1.2], n_converge=3, n_tolerance=6) == (
        1,
        4,
    )  # valley open at the end


class _Holder:
    def __init__(self) -> None:
        self.network = nn.Linear(1, 1, bias=False)

    def set(self, w: float) -> None:
        with torch.no_grad():
            self.network.weight.fill_(w)


def _run_swad(losses, every=2, **kwargs):
    holder, swad = _Holder(), SWAD({f"swad_{k}": v for k, v in kwargs.items()})
    weights = []
    for k, loss in enumerate(losses):
        for step in range(every * k + 1, every * k + every + 1):
            holder.set(float(step))
            swad.on_step(holder, step)
        swad.on_checkpoint(holder, every * (k + 1), loss)
        weights.append(swad.final_network().weight.item())
    return swad, weights


def test_swad_averages_every_iterate_of_the_window():
    swad, weights = _run_swad(VALLEY, n_converge=3, n_tolerance=2, tolerance_ratio=0.3)
    # checkpoint k covers steps 2k+1 and 2k+2; the window 3..6 covers steps 7..14, mean 10.5
    assert weights[-1] == pytest.approx(10.5)
    assert (swad.start, swad.end, swad.finished) == (3, 6, True)
    assert weights[0] == pytest.approx(1.5)  # before convergence: the last segment's average
    assert weights[1] == pytest.approx(3.5)


def test_swad_online_window_matches_the_offline_rule():
    rng = np.random.default_rng(0)
    for _ in range(20):
        losses = list(np.round(rng.uniform(0.5, 1.5, size=12), 2))
        window = loss_valley(losses, n_converge=2, n_tolerance=3, tolerance_ratio=0.2)
        _, weights = _run_swad(losses, every=1, n_converge=2, n_tolerance=3, tolerance_ratio=0.2)
        if window is None:
            assert weights[-1] == pytest.approx(12.0)
        else:
            start, end = window
            assert weights[-1] == pytest.approx(np.mean(np.arange(start + 1, end + 2)))


def test_swad_rejects_invalid_settings():
    with pytest.raises(HyperparameterError, match="'swad_tolerance_ratio' must be at least 0"):
        SWAD({"swad_tolerance_ratio": -0.1})
    with pytest.raises(HyperparameterError, match="'swad_n_converge' must be at least 1"):
        SWAD({"swad_n_converge": 0})


# --- through the protocol -----------------------------------------------------------------------


def _dataset() -> DomainDataset:
    rng = np.random.default_rng(0)
    n = 150
    y = np.arange(n) % 2
    x = (rng.normal(size=(n, 4)) + 2.0 * y[:, None]).astype(np.float32)
    return DomainDataset("toy", x, y, np.arange(n) % 3, ("a", "b"), ("d0", "d1", "d2"))


def test_protocol_trains_with_an_update_rule_and_keeps_old_run_ids():
    data = _dataset()
    plain = DGProtocol(test_envs=(2,), steps=6, checkpoint_freq=3)
    sam = DGProtocol(test_envs=(2,), steps=6, checkpoint_freq=3, update_rule="sam")
    assert "update_rule" not in plain.spec(data, "rsc", {})
    assert plain.spec(data, "rsc", {}) != sam.spec(data, "rsc", {})
    record = sam.run(data, "rsc", {"mlp_width": 8, "batch_size": 8})
    assert record["update_rule"] == "sam" and len(record["checkpoints"]) == 2
    with pytest.raises(SpecError, match="update rule"):
        DGProtocol(test_envs=(2,), update_rule="no-such-rule").run(data, "rsc")


@pytest.mark.parametrize("rule", ["sam", "fad"])
def test_protocol_passes_the_update_rules_hyperparameters(rule):
    """``rho`` given with the run reaches the update rule: at 0 SAM's step is the plain step, and a
    larger radius changes the trained weights."""
    data = _dataset()
    base = {"mlp_width": 8, "batch_size": 8}
    plain_model, _ = DGProtocol(test_envs=(2,), steps=3, checkpoint_freq=3).train(data, "erm", base)
    protocol = DGProtocol(test_envs=(2,), steps=3, checkpoint_freq=3, update_rule=rule)
    weights = {}
    for rho in (0.0, 0.05, 0.5):
        model, record = protocol.train(data, "erm", {**base, "rho": rho})
        assert record["hparams"]["rho"] == rho and record["hparams_fixed"]["rho"] == rho
        weights[rho] = torch.cat([p.detach().flatten() for p in model.network.parameters()])
    plain = torch.cat([p.detach().flatten() for p in plain_model.network.parameters()])
    if rule == "sam":
        torch.testing.assert_close(weights[0.0], plain)
    assert not torch.allclose(weights[0.05], weights[0.5])
    assert not torch.allclose(weights[0.5], plain)


def test_protocol_passes_the_wrappers_hyperparameters():
    """``ema_decay`` given with the run reaches the EMA wrapper: at 0 its average is the last
    iterate, so the evaluated model is the unwrapped one; at 0.9 it is not."""
    data = _dataset()
    base = {"mlp_width": 8, "batch_size": 8}
    plain = DGProtocol(test_envs=(2,), steps=6, checkpoint_freq=3).run(data, "erm", base)
    ema = DGProtocol(test_envs=(2,), steps=6, checkpoint_freq=3, wrapper="ema")
    last = ema.run(data, "erm", {**base, "ema_decay": 0.0})
    slow = ema.run(data, "erm", {**base, "ema_decay": 0.9})
    assert last["hparams"]["ema_decay"] == 0.0 and slow["hparams"]["ema_decay"] == 0.9
    accuracies = [{k: v for k, v in c.items() if k.endswith("_acc")} for c in plain["checkpoints"]]
    assert [{k: v for k, v in c.items() if k.endswith("_acc")} for c in last["checkpoints"]] == accuracies
    assert slow["checkpoints"] != last["checkpoints"]
    with pytest.raises(HyperparameterError, match="'ema_decay' must be between 0 and 1.0"):
        ema.run(data, "erm", {**base, "ema_decay": 1.5})
    with pytest.raises(HyperparameterError, match="unknown hyperparameter"):
        DGProtocol(test_envs=(2,), steps=6, checkpoint_freq=3).run(data, "erm", {**base, "ema_decay": 0.5})


def test_protocol_swad_uses_only_training_domains_out_parts(monkeypatch):
    data = _dataset()
    seen = []
    original = DGProtocol._validation_loss

    def spy(network, inputs, labels, parts):
        seen.append([np.asarray(p).copy() for p in parts])
        return original(network, inputs, labels, parts)

    monkeypatch.setattr(DGProtocol, "_validation_loss", staticmethod(spy))
    protocol = DGProtocol(test_envs=(1,), steps=8, checkpoint_freq=2, wrapper="swad", trial_seed=4)
    model, record = protocol.train(data, "erm", {"mlp_width": 8, "batch_size": 8})
    splits = data.in_out_split(4)
    assert len(seen) == 4
    for parts in seen:
        assert len(parts) == 2
        assert np.array_equal(parts[0], splits[0][1]) and np.array_equal(parts[1], splits[2][1])
    assert record["wrapper"] == "swad" and all(np.isfinite(c["env1_in_acc"]) for c in record["checkpoints"])


@pytest.mark.parametrize("rule", sorted(UPDATE_RULES))
@pytest.mark.parametrize("algorithm", ["erm", "coral", "vrex", "groupdro", "sd"])
def test_update_rules_compose_with_the_single_objective_algorithms(rule, algorithm):
    data = _dataset()
    hparams = {"mlp_width": 8, "batch_size": 8}
    plain = DGProtocol(test_envs=(2,), steps=4, checkpoint_freq=4).run(data, algorithm, hparams)
    wrapped = DGProtocol(test_envs=(2,), steps=4, checkpoint_freq=4, update_rule=rule).run(
        data, algorithm, hparams
    )
    assert np.isfinite(wrapped["checkpoints"][-1]["loss"])
    assert wrapped["checkpoints"][-1]["loss"] != plain["checkpoints"][-1]["loss"]
