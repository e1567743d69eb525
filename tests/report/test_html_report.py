"""The HTML report renders in headless Chromium: a non-blank page, no console errors, offline."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from unseen.cli import main

GOLDEN = Path(__file__).parents[1] / "experiments" / "golden"


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CI"):
        pytest.fail("Chromium is required in CI (.ci/run installs Debian's chromium package)")
    pytest.skip("Chromium is not installed here (apt-get install chromium); CI installs it")


@pytest.fixture()
def report(tmp_path) -> Path:
    store = tmp_path / "store.sqlite"
    shutil.copy(GOLDEN / "store.sqlite", store)
    out = tmp_path / "report"
    result = CliRunner().invoke(
        main, ["report", "--store", str(store), "--sweep", str(GOLDEN / "sweep.toml"), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    return out / "index.html"


def test_the_page_is_self_contained(report):
    page = report.read_text()
    assert "<style>" in page and "data:image/png;base64," in page
    assert not re.search(r"""(src|href)=["'](https?:)?//""", page)  # nothing fetched from a network
    assert "failed 1/2, incomplete 1/2" in page and "ValueError: x" in page


def render(page: Path, folder: Path) -> tuple[list[str], np.ndarray]:
    """Console messages and the greyscale screenshot of ``page`` in headless Chromium."""
    shot = folder / "shot.png"
    proc = subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
            f"--user-data-dir={folder / 'profile'}",
            f"--screenshot={shot}",
            "--window-size=1200,1600",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    return console, np.asarray(Image.open(shot).convert("L"), dtype=np.float32)


def test_the_console_check_sees_script_errors(tmp_path):
    # Guards the check below: Chromium must report what a broken page prints and throws.
    page = tmp_path / "broken.html"
    page.write_text("<html><body><script>console.error('e1'); missing_function();</script></body></html>")
    console, _ = render(page, tmp_path)
    assert any("e1" in line for line in console)
    assert any("ReferenceError: missing_function" in line for line in console)


def test_the_page_renders_in_headless_chromium(report, tmp_path):
    console, pixels = render(report, tmp_path)
    assert console == [], console
    assert pixels.std() > 10  # text, tables and plots, not a blank page
    assert (pixels < 128).mean() > 0.01
