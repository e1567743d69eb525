"""`unseen data lower-bound` on the real xlsa17 attribute matrices (no res101.mat needed)."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from support import xlsa17_fixtures as fx
from unseen.cli import main
from unseen.data.class_attributes import read_class_attributes

pytestmark = pytest.mark.skipif(not fx.SHARED_XLSA17.is_dir(), reason=fx.SKIP_REASON)


def test_xlsa17_reader_gives_probabilities_of_the_test_classes():
    data = read_class_attributes(f"xlsa17:{fx.SHARED_XLSA17 / 'AWA2'}")
    assert data.matrix.shape == (10, 85) and data.names[0] == "sheep"  # testclasses.txt order
    assert 0.0 <= data.matrix.min() and data.matrix.max() <= 1.0  # percent divided by 100
    everything = read_class_attributes(f"xlsa17:{fx.SHARED_XLSA17 / 'AWA2'}", "all")
    assert everything.matrix.shape == (50, 85)
    # AWA's -1 marks four never-annotated attributes of antelope: unknown, not a frequency.
    assert np.isnan(everything.matrix).sum() == 4 and np.isnan(everything.matrix[0, :4]).all()


def test_lower_bound_command_on_apy(tmp_path):
    result = CliRunner().invoke(
        main, ["data", "lower-bound", f"xlsa17:{fx.SHARED_XLSA17 / 'APY'}", "--json", "--greedy", "1"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert (out["n_classes"], out["n_attributes"]) == (12, 64)
    assert out["top_pairs"][0][:2] == ["horse", "donkey"]  # the closest attribute rows of aPY's test classes
    assert 0 < out["matching_lower_bound"] < out["pairwise_max"] <= 0.5
    assert len(out["greedy_bounds"]) == 1 and out["greedy_bounds"][0] > out["matching_lower_bound"]


def test_lower_bound_command_refuses_flo_naming_why():
    result = CliRunner().invoke(main, ["data", "lower-bound", f"xlsa17:{fx.SHARED_XLSA17 / 'FLO'}"])
    assert result.exit_code == 2 and "sentence embedding" in result.output


def test_bracket_stopped_at_once_still_brackets_the_greedy_prefix():
    # --max-seconds 0: one round, one exact pricing (and the round its vector adds). The exact bound
    # on all 64 attributes lies in [lower, upper]; the bound on one greedy attribute is above it
    # (fewer attributes, freer adversary).
    args = ["data", "lower-bound", f"xlsa17:{fx.SHARED_XLSA17 / 'APY'}", "--json", "--top", "0"]
    args += ["--bracket", "--max-seconds", "0", "--greedy", "1"]
    out = json.loads(CliRunner().invoke(main, args, catch_exceptions=False).output)
    bracket = out["bracket"]
    assert bracket["rounds"] <= 2 and not bracket["certified"]  # the pricing's vector may add a round
    assert out["matching_lower_bound"] <= bracket["lower"] < bracket["upper"] <= 1.0
    assert bracket["lower"] < out["greedy_bounds"][0]
