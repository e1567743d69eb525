"""``benchmarks/gpu_check.sh --smoke``: the GPU check's script runs end to end on a CPU and writes
its one table with every job's row."""

import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_generative import generative_methods  # noqa: E402

# every registered feature generator gets its GPU row, a transductive one under its own protocol
GENERATIVE = (*generative_methods(), *generative_methods(transductive=True))


def test_gpu_check_smoke_writes_one_table_with_every_job(tmp_path):
    out = tmp_path / "check"
    done = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--smoke", "--device", "cpu", "--out", str(out)],
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    table = (out / "gpu_check.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| gzsl ") or line.startswith("| dg ")]
    assert sorted(row.split("|")[1].split()[1] for row in rows) == sorted([*GENERATIVE, "erm"])
    for name in (*(f"gzsl-{m}" for m in GENERATIVE), "dg-erm"):
        result = json.loads((out / f"{name}.json").read_text())
        assert result["device"].startswith("CPU") and not result["paper_budget"]
        assert result["metrics"] and all(math.isfinite(v) for v in result["metrics"].values())
    bi_vaegan = json.loads((out / "gzsl-bi-vaegan.json").read_text())
    assert bi_vaegan["protocol"] == "gzsl-transductive-v1"
    assert "gzsl-transductive-v1" in next(row for row in rows if row.startswith("| gzsl bi-vaegan "))


def test_gpu_check_refuses_an_unknown_option(tmp_path):
    script = ROOT / "benchmarks" / "gpu_check.sh"
    done = subprocess.run(["bash", str(script), "--smok"], capture_output=True, text=True, check=False)
    assert done.returncode == 2 and "unknown option '--smok'" in done.stderr
