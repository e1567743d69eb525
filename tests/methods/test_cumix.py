"""CuMix (Mancini et al., ECCV 2020) as an end-to-end gzsl-dg-v1 method: its mixing and its losses
by hand, its curriculum, that it scores unseen classes in a held-out domain above chance, and that
nothing of the held-out domain or the unseen classes reaches its training or its selection."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from protocols.test_gzsl_dg import _forbidden, poisoned, zsl_domains
from unseen.core.errors import HyperparameterError
from unseen.methods import JOINT
from unseen.methods.joint.cumix import (
    CuMix,
    SemanticHead,
    curriculum,
    mix,
    mix_draws,
    soft_cross_entropy,
)
from unseen.protocols.gzsl_dg import GZSLDGProtocol, parse_method

FAST = {"mlp_width": 32, "batch_size": 16, "mixup_ramp": 4}
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_mixed_features_and_targets_of_a_tiny_batch_by_hand():
    features = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 1.0]])
    targets = F.one_hot(torch.tensor([0, 1, 2]), 3).float()
    partners, ratios = torch.tensor([1, 2, 0]), torch.tensor([0.25, 0.5, 1.0])
    assert torch.allclose(
        mix(features, partners, ratios), torch.tensor([[0.25, 1.5], [1.5, 1.5], [3.0, 1.0]])
    )
    expected = torch.tensor([[0.25, 0.75, 0.0], [0.0, 0.5, 0.5], [0.0, 0.0, 1.0]])
    assert torch.allclose(mix(targets, partners, ratios), expected)
    # images: the same ratio for every pixel of a sample
    images = torch.arange(12.0).reshape(3, 1, 2, 2)
    mixed = mix(images, partners, ratios)
    assert torch.allclose(mixed[0], 0.25 * images[0] + 0.75 * images[1])
    # soft cross-entropy: -sum_c t_c log softmax(s)_c, averaged over rows
    scores = torch.tensor([[0.0, np.log(3.0), 0.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
    row0 = -(0.25 * np.log(1 / 5) + 0.75 * np.log(3 / 5))
    row1 = -np.log(1 / 3)
    row2 = -np.log(1 / 3)
    assert soft_cross_entropy(scores, expected).item() == pytest.approx((row0 + row1 + row2) / 3, rel=1e-6)


def test_scores_are_compatibilities_with_the_unit_class_semantics():
    head = SemanticHead(np.array([[3.0, 4.0], [0.0, 2.0]], dtype=np.float32))
    assert torch.allclose(head(torch.tensor([[1.0, 1.0]])), torch.tensor([[1.4, 1.0]]))
    assert not list(head.parameters())  # the class semantics are fixed


def test_the_curriculum_ramps_the_mixing_up_then_moves_it_across_domains():
    assert curriculum(0, 2.0, 10) == (0.1, 1.0)
    assert curriculum(5, 2.0, 10) == (1.0, 1.0)
    assert curriculum(10, 2.0, 10) == (2.0, 1.0)
    assert curriculum(15, 2.0, 10) == (2.0, 0.5)
    assert curriculum(20, 2.0, 10) == (2.0, 0.0)
    assert curriculum(400, 2.0, 10) == (2.0, 0.0)


def test_partners_come_from_the_own_domain_or_from_a_paired_other_one():
    rng = np.random.default_rng(0)
    sizes, blocks = [4, 4, 4], np.repeat([0, 1, 2], 4)
    partners, ratios = mix_draws(rng, sizes, 2.0, within=1.0)
    for d in range(3):  # a permutation of the own block
        assert sorted(partners[blocks == d].tolist()) == list(range(4 * d, 4 * d + 4))
    assert ratios.shape == (12,) and ((ratios >= 0) & (ratios <= 1)).all()
    for seed in range(5):
        partners, _ = mix_draws(np.random.default_rng(seed), sizes, 2.0, within=0.0)
        pairing = {}
        for d in range(3):
            (other,) = set(blocks[partners[blocks == d]].tolist())  # one partner domain per domain
            assert other != d
            pairing[d] = other
        assert sorted(pairing.values()) == [0, 1, 2]  # a permutation of the domains, no fixed point
    half = mix_draws(np.random.default_rng(1), [500, 500], 2.0, within=0.5)[0]
    same = (blocks_of := np.repeat([0, 1], 500))[half] == blocks_of
    assert 0.4 < same.mean() < 0.6


def test_one_step_minimises_the_weighted_sum_of_the_three_losses_by_hand():
    rng = np.random.default_rng(3)
    semantics = rng.normal(size=(3, 5)).astype(np.float32)
    hp = {"mlp_width": 8, "mixup_ramp": 1, "mixup_img_w": 0.5, "mixup_feat_w": 0.7, "semantic_w": 1.3}
    model = CuMix.for_classes(semantics)((6,), 3, 2, hp, seed=0, device="cpu")
    before = copy.deepcopy(model)
    x = [torch.randn(4, 6, generator=torch.Generator().manual_seed(k)) for k in range(2)]
    y = [torch.tensor([0, 1, 2, 0]), torch.tensor([2, 2, 1, 0])]
    logs = model.update(list(zip(x, y, strict=True)))
    # by hand, with the same draws: step 0 of the curriculum, feature draws first, then image draws
    beta, within = curriculum(0, 2.0, 1)
    X, Y = torch.cat(x), torch.cat(y)
    T = F.one_hot(Y, 3).float()
    unit = torch.tensor(semantics) / torch.tensor(semantics).norm(dim=1, keepdim=True)
    with torch.no_grad():
        f = before.backbone(X)
        real = F.cross_entropy(before.projector(f) @ unit.T, Y)
        p, r = (torch.from_numpy(a) for a in mix_draws(before.rng, [4, 4], beta, within))
        feat = soft_cross_entropy(
            before.projector(r[:, None] * f + (1 - r[:, None]) * f[p]) @ unit.T, mix(T, p, r)
        )
        p, r = (torch.from_numpy(a) for a in mix_draws(before.rng, [4, 4], beta, within))
        img_in = r[:, None] * X + (1 - r[:, None]) * X[p]
        img = soft_cross_entropy(before.projector(before.backbone(img_in)) @ unit.T, mix(T, p, r))
    assert logs["semantic"] == pytest.approx(real.item(), rel=1e-5)
    assert logs["mixup_feat"] == pytest.approx(feat.item(), rel=1e-5)
    assert logs["mixup_img"] == pytest.approx(img.item(), rel=1e-5)
    assert logs["loss"] == pytest.approx(1.3 * real.item() + 0.7 * feat.item() + 0.5 * img.item(), rel=1e-5)
    assert model.steps_done == 1
    assert not torch.equal(model.projector.weight, before.projector.weight)  # it stepped


def test_cumix_is_a_whole_gzsl_dg_method():
    assert "cumix" in JOINT and JOINT["cumix"] is CuMix and CuMix.name == "cumix"
    assert parse_method("cumix") == ("cumix", None)
    data = zsl_domains(n_domains=3)
    with pytest.raises(HyperparameterError, match="featurizer hyperparameters"):
        GZSLDGProtocol(test_env=0, steps=2).run(data, "cumix", hparams={"mixup_beta": 1.0})
    with pytest.raises(TypeError, match="for_classes"):
        CuMix((6,), 3, 2, {}, seed=0, device="cpu")


def test_cumix_beats_chance_on_the_unseen_classes_of_the_held_out_domain():
    """A planted task (classes placed by their semantics, each domain shifted): the held-out
    domain's unseen classes are recognised far above chance. (rotated-digits-zsl takes minutes on
    a CPU, too long for a unit test.)"""
    data = zsl_domains(n_domains=3, n_classes=12, n_unseen=4, per=15, seed=0)
    protocol = GZSLDGProtocol(test_env=0, steps=100, checkpoint_freq=50, calibrate=True)
    record = protocol.run(data, "cumix", featurizer_hparams={**FAST, "mixup_ramp": 25})
    # chance: 1 in 4 among the four unseen classes (ZSL), 1 in 12 among all classes (U)
    assert record["metrics"]["ZSL"] > 2 * 100 / 4
    assert record["metrics"]["U"] > 2 * 100 / 12
    assert record["method"] == "cumix" and record["featurizer"] == "cumix"
    assert record["featurizer_checkpoints"][-1]["mixup_feat"] > 0  # the mixing losses were on


def test_no_held_out_or_unseen_sample_reaches_cumix(monkeypatch):
    seen_rows: list[np.ndarray] = []

    class Spy(CuMix):
        def update(self, minibatches):
            for x, _ in minibatches:
                seen_rows.append(x[:, 0].numpy().astype(int))
            return super().update(minibatches)

    monkeypatch.setitem(JOINT._entries, "cumix", Spy)
    data = zsl_domains(ids=True)
    GZSLDGProtocol(test_env=1, steps=6, checkpoint_freq=3, calibrate=True).run(
        data, "cumix", featurizer_hparams=FAST
    )
    trained = set(np.concatenate(seen_rows).tolist())
    assert trained and not trained & _forbidden(data, 1)


def test_poisoning_the_held_out_domain_and_the_unseen_classes_moves_nothing_but_the_test():
    data = zsl_domains(seed=4)
    protocol = GZSLDGProtocol(test_env=1, steps=8, checkpoint_freq=4, calibrate=True)
    clean_model, clean = protocol.fit(data, "cumix", featurizer_hparams=FAST)
    bad_model, dirty = protocol.fit(poisoned(data, 1), "cumix", featurizer_hparams=FAST)
    assert clean["selection"]["trials"] == dirty["selection"]["trials"]
    assert (clean["gamma"], clean["featurizer_steps"]) == (dirty["gamma"], dirty["featurizer_steps"])
    assert clean["featurizer_checkpoints"] == dirty["featurizer_checkpoints"]
    for a, b in zip(
        clean_model.featurizer.state_dict().values(), bad_model.featurizer.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)
    probe = data.samples.inputs[data.samples.domains != 1][:50]
    assert np.array_equal(clean_model.scores(probe), bad_model.scores(probe))
    assert clean["metrics"] != dirty["metrics"]


def test_the_cli_runs_cumix_without_a_featurizer_and_asks_for_one_otherwise(tmp_path):
    from click.testing import CliRunner

    from unseen.cli import main

    out = tmp_path / "run.json"
    args = ["gzsl-dg", "--data", "builtin:rotated-digits-zsl", "--test-env", "0", "--steps", "2"]
    fast = '{"batch_size": 8, "mixup_ramp": 1}'
    result = CliRunner().invoke(
        main, [*args, "--method", "cumix", "--featurizer-hparams", fast, "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert '"method": "cumix"' in out.read_text()
    result = CliRunner().invoke(main, [*args, "--method", "eszsl"])
    assert result.exit_code != 0 and "give --featurizer" in result.output
