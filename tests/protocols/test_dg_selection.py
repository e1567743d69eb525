"""Model selection on hand-made records; the expected picks are worked out in the comments."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from unseen.protocols.dg_selection import SELECTIONS, cells

GOLDEN = Path(__file__).parent / "golden"
RECORDS = json.loads((GOLDEN / "dg_records.json").read_text())
PICKS = json.loads((GOLDEN / "dg_picks.json").read_text())

# Test domain 0; two draws (lr 1e-3: runs a*, lr 1e-2: runs b*).
# training-val: mean out acc of domains 1, 2 per checkpoint: a1 (.75, .70), b1 (.74, .72) -> a1@100,
#   reported on domain 0's in split: 0.50 (early stopping picks step 100, not the last).
# oracle: domain 0's out acc at the last checkpoint only: a1 .52, b1 .65 -> b1@200, test .70.
# lodo: draw a has runs holding out (0,1) and (0,2): val = mean(env1_in of a2, env2_in of a3)
#   = (.30+.40)/2 = .35 at 100, (.60+.50)/2 = .55 at 200; draw b lacks its (0,2) run, so it cannot
#   be scored -> a1@200, test .60.
# crafted-shift: mean crafted-shift accuracy of domains 1, 2 per checkpoint: a1 (.35, .45), b1 (.55,
#   .45) -> b1@100, test .40 (domain 0's in split; the LODO runs carry no crafted fields).


@pytest.mark.parametrize("method", sorted(SELECTIONS))
def test_selection_picks_match_the_golden_file(method):
    (cell,) = [records for key, records in cells(RECORDS).items() if key[2] == 0]
    pick = SELECTIONS[method](cell)
    expected = PICKS[method]
    assert pick["run_id"] == expected["run_id"] and pick["step"] == expected["step"]
    assert pick["val_acc"] == pytest.approx(expected["val_acc"])
    assert pick["test_acc"] == pytest.approx(expected["test_acc"])


def test_selection_never_reads_the_test_domain_except_the_oracle():
    # Poison every test-domain out accuracy: only the oracle may change its pick.
    poisoned = json.loads(json.dumps(RECORDS))
    for r in poisoned:
        for c in r["checkpoints"]:
            c["env0_out_acc"] = 1.0 - c["env0_out_acc"]
    (clean,) = [v for k, v in cells(RECORDS).items() if k[2] == 0]
    (dirty,) = [v for k, v in cells(poisoned).items() if k[2] == 0]
    for method in ("training-val", "lodo", "crafted-shift"):
        assert SELECTIONS[method](clean) == SELECTIONS[method](dirty)
    assert SELECTIONS["oracle"](clean)["run_id"] != SELECTIONS["oracle"](dirty)["run_id"]


def test_lodo_without_validation_runs_selects_nothing():
    finals = [r for r in RECORDS if len(r["test_envs"]) == 1]
    assert SELECTIONS["lodo"](finals) is None
