"""``benchmarks/replay.py``, the step-by-step replays against the official codes: the official
final classifiers' minibatch stream, the recorder's insertion into a script, the draw queue."""

import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from replay import Draws, official_batches, patched_copy  # noqa: E402


def official_next_batch_rows(n: int, batch: int, calls: int, seed: int) -> list[torch.Tensor]:
    """The rows of the original data that the official classifiers' ``next_batch`` returns,
    written as its loop: a permutation applied to the data at the start and whenever a batch
    runs past the end (the rest of the old order, then the start of the new one)."""
    g = torch.Generator().manual_seed(seed)
    data, start, out = torch.randperm(n, generator=g), 0, []
    for _ in range(calls):
        if start + batch > n:
            rest = data[start:]
            data = data[torch.randperm(n, generator=g)]
            start = batch - len(rest)
            out.append(torch.cat([rest, data[:start]]))
        else:
            out.append(data[start : start + batch])
            start += batch
    return out


@pytest.mark.parametrize(("n", "batch"), [(10, 3), (12, 4), (7, 7), (5, 2)])
def test_official_batches_are_the_official_next_batch_rows(n, batch):
    calls = 4 * (-(-n // batch))
    expected = official_next_batch_rows(n, batch, calls, seed=1)
    g = torch.Generator().manual_seed(1)
    perms = [torch.randperm(n, generator=g) for _ in range(calls + 1)]
    got = list(official_batches(perms, batch))[:calls]
    assert len(got) == calls
    for a, b in zip(got, expected, strict=True):
        assert torch.equal(a, b)


def test_patched_copy_inserts_after_its_anchors_and_refuses_a_missing_one(tmp_path):
    official = tmp_path / "official"
    official.mkdir()
    (official / "train.py").write_text("a = 1\nfor i in range(2):\n    b = i\n    c = b\nprint(a)\n")
    (official / "data.mat").write_bytes(b"large")
    insertions = (("a = 1", 1, "START\n"), ("    b = i", 2, "    STEP\n"), ("print(a)", 0, "END\n"))
    evaluate = "def evaluate(g):\n    return 0\n"
    copy = patched_copy(official, tmp_path / "work", "train.py", insertions, evaluate)
    assert (copy / "train.py").read_text() == (
        "a = 1\nSTART\nfor i in range(2):\n    b = i\n    c = b\n    STEP\nEND\nprint(a)\n"
    )
    assert "def evaluate(g)" in (copy / "replay_recorder.py").read_text()
    assert not (copy / "data.mat").exists()  # the data are written by the benchmark
    assert (official / "train.py").read_text().startswith("a = 1\nfor")  # the checkout is untouched
    with pytest.raises(RuntimeError, match="expected one line starting 'nowhere'"):
        patched_copy(official, tmp_path / "other", "train.py", (("nowhere", 0, "X\n"),), "")


def test_draws_are_handed_out_in_order_by_kind_and_checked_for_shape():
    a, b, c = torch.zeros(2, 3), torch.ones(2, 3), torch.arange(5)
    draws = Draws([("randn", a), ("randperm", c), ("randn", b)])
    assert torch.equal(draws.take("randn", (2, 3)), a)
    assert torch.equal(draws.take("randperm", (5,)), c)
    with pytest.raises(RuntimeError, match="out of step"):
        draws.take("randn", (3, 2))
