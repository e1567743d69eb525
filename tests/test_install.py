"""Installing beside a user's torch: the package declares a torch range, the project's own
installs pin the local CPU build through constraints.txt."""

import json
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def torch_requirement() -> Requirement:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (spec,) = [Requirement(d) for d in deps if Requirement(d).name == "torch"]
    return spec


def test_torch_range_admits_other_releases_and_the_pinned_build():
    spec = torch_requirement()
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    pinned = [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]
    (torch_pin,) = [r for r in pinned if r.name == "torch"]
    assert str(torch_pin.specifier) == "==2.13.0"
    for version in ("2.4.0", "2.11.0", "2.13.0", "2.14.1"):
        assert spec.specifier.contains(version), version
    assert not spec.specifier.contains("2.3.1")


def test_ci_and_readme_install_with_the_constraints():
    assert "-c constraints.txt" in (ROOT / ".ci" / "run").read_text()
    assert 'pip install -e ".[dev]" -c constraints.txt' in (ROOT / "README.md").read_text()


@pytest.mark.skipif(sys.platform == "win32", reason="venv layout")
def test_installing_the_dependencies_keeps_an_installed_torch(tmp_path):
    """In an environment whose torch is 2.11.0 (a stand-in distribution, shadowing this machine's),
    resolving the package's dependencies installs no torch."""
    env = tmp_path / "env"
    venv.create(env, system_site_packages=True, with_pip=False)
    python = env / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    info = Path(purelib) / "torch-2.11.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: torch\nVersion: 2.11.0\n")
    (info / "INSTALLER").write_text("pip\n")
    (info / "RECORD").write_text("")
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    report = tmp_path / "report.json"
    done = subprocess.run(
        [python, "-m", "pip", "install", "--dry-run", "--no-index", "--quiet", "--report", report, *deps],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    installs = {item["metadata"]["name"].lower() for item in json.loads(report.read_text())["install"]}
    assert "torch" not in installs
