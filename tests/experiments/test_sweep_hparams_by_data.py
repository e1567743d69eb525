"""Sweeps declare each method's hyperparameters for the data a run uses (DG: large images differ)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from unseen.core.errors import SweepFileError
from unseen.core.record import run_id
from unseen.experiments import tasks
from unseen.experiments.launch import plan
from unseen.experiments.sweep import load_sweep


def write_features(path: Path, offset: int) -> str:
    """Three domains of two classes, four 5-d feature vectors each; contents fixed by ``offset``."""
    domains = np.repeat(np.arange(3), 8)
    labels = np.tile(np.repeat(np.arange(2), 4), 3)
    features = ((np.arange(len(labels) * 5).reshape(-1, 5) * (offset + 3)) % 11).astype(np.float32) / 4
    np.savez(
        path,
        features=features,
        labels=labels,
        domains=domains,
        class_names=np.array(["cat", "dog"]),
        domain_names=np.array(["art", "photo", "sketch"]),
    )
    return f"npz-domains:{path}"


def write_images(root: Path) -> str:
    """DomainBed's ROOT/domain/class/image: 3 domains x 2 classes x 2 tiny PNGs, decoded at 40 px."""
    for d, domain in enumerate(("art", "photo", "sketch")):
        for c, name in enumerate(("cat", "dog")):
            folder = root / domain / name
            folder.mkdir(parents=True)
            for i in range(2):
                pixels = np.full((8, 8, 3), 40 * d + 90 * c + 20 * i, dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return f"folder:{root}?size=40"


def write_sweep(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def ids(runs) -> list[str]:
    """The run id of every expanded run (duplicates kept)."""
    return [run_id(tasks.task_runner(r.task).identity(r, tasks.load_cached(r.task, r.data))) for r in runs]


# Run ids of the feature-data sweep below, computed before sweeps declared hyperparameters per data
# spec. A run id hashes the run's full hyperparameter dict, so equal ids mean equal hyperparameters.
# Feature vectors have since declared the `featurizer` choice (mlp or linear); searched sweeps now
# include it at its default, `mlp`, so the ids are checked without it: nothing else changed.
FEATURE_SWEEP_IDS = [
    # erm, random:2 draws, {a, b} x seeds {0, 1} x test_env {0, 2}
    *("7579aa7eba77c73b", "86b9b5d19586d22e", "8481b6e80c3cb4e7", "2074b317b56aa540"),
    *("5253ea6d8217fc94", "6adeebdb5f9a86bf", "daa7aaebbf6f75e4", "772c378904312660"),
    *("7c806015ddc57ace", "0d1a7a19ed258e95", "fbe56ad9c5ee2549", "027a7a2c60aec81c"),
    *("69d077e935e0f0bc", "01a5be77feda7c9c", "d9b3e97821982c3b", "b32ac9bf5fa794e4"),
    # coral, the same draws plus its mmd_gamma
    *("99dc701988c412af", "c81b8c7805b2d7c1", "169bb76c82d4f570", "9cb9a444ea330a57"),
    *("684d0515ee5911c8", "e5b6ada4af2adf8d", "30341e1d92c7aec5", "0c5f7fc984023406"),
    *("8113a541f8161651", "72af6da47aba70d3", "f644b297ec223a2b", "63a9640fd92f249d"),
    *("a983c1e20d45c146", "07336b05a4b4dbba", "878773ebe8718bff", "2ad101293db36d09"),
    # erm, the 2 x 2 grid of lr x batch_size on a
    *("49101258b5ec5c8a", "10c6f8ca1f061586", "6915089f535f129a", "053982d7034c4ef5"),
]


def test_a_feature_data_sweep_keeps_its_run_ids_and_hyperparameters(tmp_path):
    a, b = write_features(tmp_path / "a.npz", 0), write_features(tmp_path / "b.npz", 1)
    sweep = write_sweep(
        tmp_path / "features.toml",
        f'[[runs]]\ntask = "dg"\ndata = ["{a}", "{b}"]\nmethods = ["erm", "coral"]\nseeds = [0, 1]\n'
        'hparams = { mlp_depth = 4 }\nsweep_hparams = "random:2"\nhparams_seed = 3\n'
        "[runs.options]\ntest_env = [0, 2]\nsteps = 10\n\n"
        f'[[runs]]\ntask = "dg"\ndata = "{a}"\nmethods = ["erm"]\nsweep_hparams = "grid"\n',
    )
    runs = load_sweep(sweep).runs
    assert all(r.hparams["featurizer"] == "mlp" for r in runs)
    before = [replace(r, hparams={k: v for k, v in r.hparams.items() if k != "featurizer"}) for r in runs]
    # Runs are now grouped by data spec inside each method; the set of runs is what it was.
    assert sorted(ids(before)) == sorted(FEATURE_SWEEP_IDS)
    grid = [r.hparams for r in runs[-4:]]
    assert [(h["lr"], h["batch_size"]) for h in grid] == [(1e-4, 32), (1e-4, 64), (1e-3, 32), (1e-3, 64)]
    assert all("freeze_bn" not in r.hparams and r.hparams["mlp_depth"] == 4 for r in runs[:-4])


def test_an_image_folder_sweep_uses_the_large_image_settings(tmp_path):
    data = write_images(tmp_path / "office")
    defaults = {h.name: h.default for h in tasks.TASKS["dg"].declared_hparams("erm", data, {})}
    assert (defaults["lr"], defaults["batch_size"]) == (5e-5, 32)
    assert (defaults["freeze_bn"], defaults["backbone_dropout"]) == (True, 0.0)

    grid = load_sweep(
        write_sweep(
            tmp_path / "grid.toml",
            f'[[runs]]\ntask = "dg"\ndata = "{data}"\nmethods = ["erm"]\nsweep_hparams = "grid"\n'
            "hparams = { freeze_bn = false }\n",
        )
    ).runs
    assert {(r.hparams["lr"], r.hparams["batch_size"]) for r in grid} == {
        (1e-5, 16),
        (1e-5, 32),
        (5e-5, 16),
        (5e-5, 32),
    }
    assert all(r.hparams["freeze_bn"] is False and r.hparams["backbone_dropout"] == 0.0 for r in grid)
    assert len({p.run_id for p in plan(grid)}) == 4

    drawn = load_sweep(
        write_sweep(
            tmp_path / "random.toml",
            f'[[runs]]\ntask = "dg"\ndata = "{data}"\nmethods = ["erm"]\nsweep_hparams = "random:5"\n',
        )
    ).runs
    # DomainBed's large-image draws: lr 10^U(-5, -3.5), batch 2^U(3, 5.5).
    assert all(1e-5 <= r.hparams["lr"] <= 10**-3.5 and 8 <= r.hparams["batch_size"] <= 45 for r in drawn)

    (fixed,) = load_sweep(
        write_sweep(
            tmp_path / "none.toml",
            f'[[runs]]\ntask = "dg"\ndata = "{data}"\nmethods = ["erm"]\nhparams = {{ freeze_bn = false }}\n',
        )
    ).runs
    assert fixed.hparams == {"freeze_bn": False}


def test_large_image_hyperparameters_are_unknown_on_feature_data(tmp_path):
    data = write_features(tmp_path / "a.npz", 0)
    sweep = write_sweep(
        tmp_path / "bad.toml",
        f'[[runs]]\ntask = "dg"\ndata = "{data}"\nmethods = ["erm"]\nhparams = {{ freeze_bn = false }}\n',
    )
    with pytest.raises(SweepFileError, match="bad.toml") as err:
        load_sweep(sweep)
    assert "freeze_bn" in str(err.value) and data in str(err.value)


def test_expanding_and_planning_a_dg_sweep_loads_each_data_spec_once(tmp_path, monkeypatch):
    a, b = write_features(tmp_path / "a.npz", 0), write_features(tmp_path / "b.npz", 1)
    loaded = []
    load = tasks.DGTask.load
    monkeypatch.setattr(tasks.DGTask, "load", lambda self, data: loaded.append(data) or load(self, data))
    tasks.load_cached.cache_clear()
    sweep = write_sweep(
        tmp_path / "s.toml",
        f'[[runs]]\ntask = "dg"\ndata = ["{a}", "{b}"]\nmethods = ["erm", "coral"]\n'
        'sweep_hparams = "random:2"\n[runs.options]\nlodo_validation = true\n',
    )
    planned = plan(load_sweep(sweep).runs)
    assert len(planned) == 2 * 2 * 2 * 3  # data x methods x draws x (test domain 0, then with 1, 2)
    assert loaded == [a, b]
