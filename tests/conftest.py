"""Fixtures shared across test folders."""

import pytest
import torch


@pytest.fixture
def one_torch_thread():
    """One torch thread for the test: on a shared two-core machine, two intra-op threads make
    small convolutions many times slower as soon as other jobs run."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
