"""One torch thread for these tests: their problems are tiny, and on a loaded machine a thread
pool's spin-waits cost more than the arithmetic."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def single_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
