"""Fixtures of the conformance tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """The ops here are far too small to split among threads; on a busy machine PyTorch's
    threads mostly wait for one another (a tiny LSTM runs three times faster on one)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
