"""Benchmarks run single-threaded: timings on a shared or oversubscribed machine are far
steadier with one intra-op thread, and the stored baseline was taken that way."""

import pytest
import torch

BENCH_THREADS = 1


@pytest.fixture(autouse=True)
def _one_thread():
    saved = torch.get_num_threads()
    torch.set_num_threads(BENCH_THREADS)
    yield
    torch.set_num_threads(saved)
