"""Crafted-shift validation (Efthymiadis et al., WACV 2025): the augmentation bank by hand, its
seeding, the protocol's recorded accuracies and the selection's blindness to the test domain."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from unseen.cli.app import main
from unseen.core.errors import SpecError
from unseen.data.crafted_shifts import CATEGORIES, Draws, craft, gamma_contrast, grid_cells, invert, rotate
from unseen.data.domains import load_domains
from unseen.protocols.dg import DGProtocol
from unseen.protocols.dg_selection import SELECTIONS


class Fixed(Draws):
    """Draws that return one value: ``value`` for every uniform draw, +1 signs, ``value`` integers."""

    def __init__(self, n, value):
        super().__init__(n, torch.Generator(), torch.device("cpu"))
        self.value = value

    def uniform(self, low, high, *shape):
        return torch.full(shape or (self.n,), float(self.value))

    def either(self, low, high, *shape):
        return self.uniform(0, 0, *shape)

    def sign(self):
        return torch.ones(self.n)

    def integers(self, low, high):
        return torch.full((self.n,), int(self.value))


def test_bank_operations_by_hand():
    x = torch.rand(2, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(gamma_contrast(x, Fixed(2, 2.0)), x**2)
    torch.testing.assert_close(invert(x, Fixed(2, 0.0)), 1 - x)  # every channel's draw < 1/2
    torch.testing.assert_close(invert(x, Fixed(2, 0.9)), x)
    # a 90-degree rotation about the centre of a square image moves pixels exactly
    torch.testing.assert_close(rotate(x, Fixed(2, 90.0)), torch.rot90(x, 1, dims=(-2, -1)), atol=1e-5, rtol=0)
    # a 2 x 2 grid on a 4 x 4 image: each 2 x 2 block replaced by its mean
    cells = grid_cells(x, Fixed(2, 2))
    blocks = x.unfold(2, 2, 2).unfold(3, 2, 2).mean((-1, -2))
    torch.testing.assert_close(cells, blocks.repeat_interleave(2, 2).repeat_interleave(2, 3))


@pytest.mark.parametrize("channels", [1, 3])
def test_craft_is_seeded_keeps_shape_and_range_and_shifts_every_category(channels):
    x = torch.rand(12, channels, 16, 16, generator=torch.Generator().manual_seed(1))
    for category in CATEGORIES:
        a = craft(x, category, torch.Generator().manual_seed(5))
        b = craft(x, category, torch.Generator().manual_seed(5))
        assert torch.equal(a, b) and a.shape == x.shape
        assert float(a.min()) >= 0 and float(a.max()) <= 1
        assert float((a - x).abs().mean()) > 0.01, category


SMALL = {"mlp_width": 8, "batch_size": 8}


def _digits():
    data = load_domains("builtin:rotated-digits")
    keep = np.isin(data.domains, [0, 1, 2])
    return dataclasses.replace(
        data,
        inputs=data.inputs[keep][::4],
        labels=data.labels[keep][::4],
        domains=data.domains[keep][::4],
        domain_names=data.domain_names[:3],
    )


def test_protocol_records_crafted_accuracies_of_training_domains_only_and_changes_nothing_else():
    data = _digits()
    plain = DGProtocol((0,), steps=2, checkpoint_freq=1).run(data, "erm", SMALL, device="cpu")
    crafted = DGProtocol((0,), steps=2, checkpoint_freq=1, crafted_shifts=True).run(
        data, "erm", SMALL, device="cpu"
    )
    assert crafted["run_id"] != plain["run_id"]
    for p, c in zip(plain["checkpoints"], crafted["checkpoints"], strict=True):
        assert {k: c[k] for k in p} == p  # training and the usual accuracies are untouched
        assert sorted(set(c) - set(p)) == ["env1_crafted_acc", "env2_crafted_acc"]
    # poisoning the held-out domain's images changes no crafted-shift accuracy nor the pick
    noisy = np.where(data.domains[:, None, None, None] == 0, 1 - data.inputs, data.inputs)
    poisoned = DGProtocol((0,), steps=2, checkpoint_freq=1, crafted_shifts=True).run(
        dataclasses.replace(data, inputs=noisy), "erm", SMALL, device="cpu"
    )
    for c, q in zip(crafted["checkpoints"], poisoned["checkpoints"], strict=True):
        assert (
            c["env1_crafted_acc"] == q["env1_crafted_acc"] and c["env2_crafted_acc"] == q["env2_crafted_acc"]
        )
    clean_pick = SELECTIONS["crafted-shift"]([crafted])
    dirty_pick = SELECTIONS["crafted-shift"]([poisoned])
    assert (clean_pick["step"], clean_pick["val_acc"]) == (dirty_pick["step"], dirty_pick["val_acc"])
    assert SELECTIONS["crafted-shift"]([plain]) is None


def test_selection_ignores_any_crafted_field_of_the_test_domain():
    record = {
        "run_id": "r",
        "hparams": {},
        "test_envs": [0],
        "train_envs": [1],
        "checkpoints": [
            {"step": 1, "env0_in_acc": 0.1, "env1_crafted_acc": 0.6, "env0_crafted_acc": 0.0},
            {"step": 2, "env0_in_acc": 0.9, "env1_crafted_acc": 0.5, "env0_crafted_acc": 1.0},
        ],
    }
    pick = SELECTIONS["crafted-shift"]([record])
    assert (pick["step"], pick["val_acc"], pick["test_acc"]) == (1, 0.6, 0.1)


def test_feature_vectors_are_refused_with_the_way_out():
    data = load_domains("builtin:rotated-digits")
    flat = dataclasses.replace(data, inputs=data.inputs.reshape(len(data.inputs), -1))
    with pytest.raises(SpecError, match="crafted-shift validation transforms images.*--crafted-shifts"):
        DGProtocol((0,), steps=1, crafted_shifts=True).run(flat, "erm", SMALL, device="cpu")


def test_cli_flag_records_and_prints_the_crafted_shift_pick(tmp_path):
    out = tmp_path / "run.json"
    result = CliRunner().invoke(
        main,
        [
            "dg",
            "--data",
            "builtin:rotated-digits",
            "--algorithm",
            "erm",
            "--test-env",
            "0",
            "--steps",
            "2",
            "--checkpoint-freq",
            "1",
            "--hparams",
            json.dumps(SMALL),
            "--crafted-shifts",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "crafted-shift: test accuracy" in result.output
    record = json.loads(out.read_text())
    assert record["crafted_shifts"] is True and "env5_crafted_acc" in record["checkpoints"][-1]


def test_sweep_option_turns_crafted_shifts_on_and_changes_the_run_identity():
    from unseen.experiments.spec import RunSpec
    from unseen.experiments.tasks import DGTask

    data = _digits()
    plain = RunSpec("dg", "builtin:rotated-digits", "erm", 0, {}, {"test_env": 0})
    crafted = RunSpec("dg", "builtin:rotated-digits", "erm", 0, {}, {"test_env": 0, "crafted_shifts": True})
    assert DGTask().identity(crafted, data)["crafted_shifts"] is True
    assert "crafted_shifts" not in DGTask().identity(plain, data)  # earlier run ids stay valid
