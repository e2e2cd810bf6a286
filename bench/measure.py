"""Wall-clock and memory measurements: latency, peak memory, this machine's matmul peak.

Memory method, stated in every Row (``mem_method``):
- CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats`` (allocator
  bytes held by live tensors, parameters included).
- CPU: the torch profiler's allocation events (``profile_memory=True``): the peak over time
  of the bytes allocated minus freed inside the measured region, plus the bytes of the
  parameters, buffers (and gradients already present) that existed before it. It is what
  tensors hold, not process RSS (allocator slack and Python objects excluded). (The
  profiler's ``MemoryProfileTimeline`` counted the parameters a second time, as live from
  the region's start, and took 0.2-1.8 s a call on the quick models against 0.01-0.06 s.)
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile


@dataclass
class Timing:
    median_s: float
    iqr_s: float
    min_s: float
    repeats: int


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_fn(fn: Callable[[], object], device: torch.device, warmup: int = 2,
            repeats: int = 10) -> Timing:
    """Median, inter-quartile range and minimum of ``repeats`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    if len(times) >= 4:
        q = statistics.quantiles(times, n=4)
        iqr = q[2] - q[0]
    else:
        iqr = max(times) - min(times)
    return Timing(statistics.median(times), iqr, min(times), repeats)


def _resident_bytes(module: torch.nn.Module) -> int:
    total = 0
    for p in module.parameters():
        total += p.numel() * p.element_size()
        if p.grad is not None:
            total += p.grad.numel() * p.grad.element_size()
    for b in module.buffers():
        total += b.numel() * b.element_size()
    return total


def peak_memory(fn: Callable[[], object], module: torch.nn.Module, device: torch.device
                ) -> tuple[int, str]:
    """Peak bytes of live tensors while ``fn`` runs, and the method used."""
    if device.type == "cuda":
        _sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        _sync(device)
        return torch.cuda.max_memory_allocated(device), "cuda max_memory_allocated"

    before = _resident_bytes(module)
    prof = profile(activities=[ProfilerActivity.CPU], profile_memory=True)
    with _quiet_stderr():  # kineto prints start/stop lines to fd 2 unconditionally
        prof.start()
    try:
        fn()
    finally:
        with _quiet_stderr():
            prof.stop()
    events = sorted((e for e in prof.profiler.kineto_results.events()
                     if e.name() == "[memory]" and e.device_type() == DeviceType.CPU),
                    key=lambda e: e.start_ns())
    live = peak_in_region = 0
    for event in events:  # +bytes on an allocation, -bytes on a free
        live += event.nbytes()
        peak_in_region = max(peak_in_region, live)
    return before + peak_in_region, "torch.profiler allocation events (live tensor bytes)"


@contextlib.contextmanager
def _quiet_stderr():
    """Point file descriptor 2 at /dev/null (C++ logging bypasses sys.stderr)."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


_BEST_PEAK: dict[tuple, float] = {}  # (device, size, repeats) -> best FLOP/s measured here


def matmul_peak_flops(device: str = "cpu", size: int = 2048, repeats: int = 20,
                      again: bool = False) -> float:
    """Measured fp32 matmul throughput of this machine in FLOP/s (2 per multiply-add, the
    hardware convention). MFU divides achieved FLOP/s (same convention) by this. The best
    of ``repeats`` calls (~1 s on 2 CPU cores), measured once per process; ``again``
    measures once more and keeps the better of all: a moment of a shared VM's slowness can
    outlast a second (5 calls measured 175 GFLOP/s, and 20 calls once 157, where the
    machine gave 290-430 before and after), and every MFU over it comes out twice too
    high."""
    key = (device, size, repeats)
    if again or key not in _BEST_PEAK:
        dev = torch.device(device)
        a = torch.randn(size, size, device=dev)
        b = torch.randn(size, size, device=dev)
        timing = time_fn(lambda: a @ b, dev, warmup=2, repeats=repeats)
        _BEST_PEAK[key] = max(_BEST_PEAK.get(key, 0.0), 2 * size**3 / timing.min_s)
    return _BEST_PEAK[key]
