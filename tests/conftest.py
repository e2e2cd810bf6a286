"""Shared test setup: deterministic torch, small thread count, quiet profiler logs."""

import os

os.environ.setdefault("KINETO_LOG_LEVEL", "5")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)

