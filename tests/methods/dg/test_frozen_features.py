"""DG on frozen features: the linear head, which algorithms train on feature vectors, and the
logistic-regression probe that is their baseline row."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from unseen.cli import main
from unseen.core.errors import HyperparameterError
from unseen.data.domains import DomainDataset
from unseen.methods import DG
from unseen.protocols.dg_probe import DGProbeProtocol
from unseen.protocols.dg_selection import training_domain_validation

DIM = 6

REFUSED_ON_LINEAR = {
    "adrmx",
    "cad",
    "causirl-coral",
    "causirl-mmd",
    "cdann",
    "condcad",
    "coral",
    "dann",
    "ib-erm",
    "ib-irm",
    "mmd",
    "sagnet",
    "urm",
}
"""Algorithms whose defining term acts on the featurizer's output (docs/dg.md lists them)."""


def _minibatches(seed: int, n_domains: int = 3, n: int = 8) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(n, DIM, generator=g), torch.randint(3, (n,), generator=g)) for _ in range(n_domains)]


def _build(name: str, featurizer: str):
    declared = {h.name for h in DG[name].all_hparams((DIM,))}
    small = {"featurizer": featurizer, "mlp_width": 16, "batch_size": 8}
    return DG[name]((DIM,), 3, 3, {k: v for k, v in small.items() if k in declared})


@pytest.mark.parametrize("featurizer", ["mlp", "linear"])
@pytest.mark.parametrize("name", sorted(DG))
def test_every_algorithm_trains_two_steps_on_feature_vectors_or_refuses_naming_itself(name, featurizer):
    try:
        algo = _build(name, featurizer)
    except HyperparameterError as exc:
        assert f"'{name}'" in str(exc) and "featur" in str(exc)
        assert name not in REFUSED_ON_LINEAR or featurizer == "linear"  # they all train on the MLP
        return
    assert not (featurizer == "linear" and name in REFUSED_ON_LINEAR)
    head = [p.detach().clone() for p in algo.classifier.parameters()]
    for step in range(2):
        logs = algo.update(_minibatches(step))
        assert all(math.isfinite(float(v)) for v in logs.values()), logs
    assert any(not torch.equal(a, b) for a, b in zip(head, algo.classifier.parameters(), strict=True))
    assert algo.predict(_minibatches(5)[0][0]).shape == (8, 3)


def test_the_algorithms_refused_on_the_linear_head_are_those_with_a_feature_level_term():
    assert {name for name in DG if DG[name].feature_level} == REFUSED_ON_LINEAR
    with pytest.raises(HyperparameterError, match="'coral' cannot train with featurizer 'linear'.*mlp"):
        _build("coral", "linear")


def test_the_linear_head_is_one_linear_layer_and_erm_steps_like_adam_on_it():
    algo = _build("erm", "linear")
    assert [tuple(p.shape) for p in algo.network.parameters()] == [(3, DIM), (3,)]
    reference = torch.nn.Linear(DIM, 3)
    reference.load_state_dict(algo.classifier.state_dict())
    optimizer = torch.optim.Adam(reference.parameters(), lr=algo.params["lr"])
    for step in range(3):
        batches = _minibatches(step)
        x, y = torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])
        algo.update(batches)
        optimizer.zero_grad()
        F.cross_entropy(reference(x), y).backward()
        optimizer.step()
    x = _minibatches(9)[0][0]
    torch.testing.assert_close(algo.predict(x), reference(x), rtol=1e-5, atol=1e-6)


def test_a_featurizer_that_does_not_take_the_inputs_is_refused():
    with pytest.raises(HyperparameterError, match="'featurizer' must be one of"):
        _build("erm", "small-cnn")


def _domains(seed: int = 0) -> DomainDataset:
    """Three domains of three classes, 20 samples per (domain, class): class means apart, each
    domain shifted."""
    rng = np.random.default_rng(seed)
    labels = np.tile(np.repeat(np.arange(3), 20), 3)
    domains = np.repeat(np.arange(3), 60)
    x = rng.normal(size=(len(labels), DIM)) + 2.0 * np.eye(3, DIM)[labels] + 0.7 * domains[:, None]
    return DomainDataset("toy", x, labels, domains, ("a", "b", "c"), ("d0", "d1", "d2"))


def test_the_probe_never_sees_the_held_out_domain():
    data = _domains()
    other = np.array(data.inputs)
    held = data.domains == 2
    other[held] = np.random.default_rng(1).normal(size=(int(held.sum()), DIM)) * 5
    changed = DomainDataset("toy", other, data.labels, data.domains, data.class_names, data.domain_names)
    runs = [DGProbeProtocol((2,)).run(d, "logreg-probe", {"C": 0.1}) for d in (data, changed)]
    first, second = (r["checkpoints"][0] for r in runs)
    for k in (0, 1):
        assert first[f"env{k}_in_acc"] == second[f"env{k}_in_acc"] > 0.8
        assert first[f"env{k}_out_acc"] == second[f"env{k}_out_acc"]
    assert runs[0]["train_envs"] == [0, 1] and runs[0]["task"] == "dg"


def test_training_val_picks_the_probes_c_on_the_training_domains_out_parts():
    data = _domains()
    records = [DGProbeProtocol((0,)).run(data, "logreg-probe", {"C": c}) for c in (1e-3, 1.0)]
    pick = training_domain_validation(records)

    def val(r):
        return (r["checkpoints"][0]["env1_out_acc"] + r["checkpoints"][0]["env2_out_acc"]) / 2

    best = max(records, key=val)  # max keeps the first of equals, as the selection does
    assert val(records[0]) != val(records[1])
    assert pick["hparams"]["C"] == best["hparams"]["C"]
    assert pick["test_acc"] == best["checkpoints"][0]["env0_in_acc"]


def test_a_sweep_puts_the_probe_in_the_dg_table_beside_the_algorithms(tmp_path):
    data = _domains()
    np.savez(
        tmp_path / "f.npz",
        features=data.inputs,
        labels=data.labels,
        domains=data.domains,
        class_names=np.array(data.class_names),
        domain_names=np.array(data.domain_names),
    )
    sweep = tmp_path / "s.toml"
    sweep.write_text(
        f'[[runs]]\ntask = "dg"\ndata = "npz-domains:{tmp_path / "f.npz"}"\nmethods = ["erm"]\n'
        'hparams = { featurizer = "linear" }\n[runs.options]\ntest_env = 0\nsteps = 3\n\n'
        f'[[runs]]\ntask = "dg-probe"\ndata = "npz-domains:{tmp_path / "f.npz"}"\n'
        'methods = ["logreg-probe"]\nsweep_hparams = "grid"\n[runs.options]\ntest_env = 0\n'
    )
    store = str(tmp_path / "s.sqlite")
    ran = CliRunner().invoke(main, ["sweep", str(sweep), "--store", store, "--executor", "serial"])
    assert ran.exit_code == 0, ran.output
    table = CliRunner().invoke(main, ["results", "--store", store, "--select", "training-val"])
    assert table.exit_code == 0, table.output
    rows = {line.split("|")[1].strip() for line in table.output.splitlines() if line.startswith("| ")}
    assert {"erm", "logreg-probe"} <= rows
