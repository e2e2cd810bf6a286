"""Train sweep points side by side: one process per point, each on its share of the cores.

The quick preset's models are so small that torch gains almost nothing from a second
thread (measured, cross_attn tiny, one epoch on 2 cores: 15.6 s with 1 thread, 14.5 s with
2), while two one-thread processes each take 19 s: about 1.5x the points per hour. Workers
are spawned (not forked: torch's thread pools do not survive a fork) and quiet third-party
output as the CLI does.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from multiprocessing import get_context
from typing import Any

import torch

from . import cache, notes
from .cli import quiet_third_party

PR_SET_PDEATHSIG = 1  # linux/prctl.h
MAX_AUTO_WORKERS = 4  # each worker holds its own copy of the data (~0.5 GB on synthvqa)
_kept: dict[int, ProcessPoolExecutor] | None = None  # inside ``kept_pools``: count -> pool
_FEATURES: dict[ProcessPoolExecutor, str] = {}  # pool -> its workers' shared-features folder


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def auto_workers(jobs: int) -> int:
    """How many points to train at once on this machine: one per core, at most
    ``MAX_AUTO_WORKERS``, never more than there are points."""
    return max(1, min(jobs, available_cores(), MAX_AUTO_WORKERS))


def threads_per_worker(workers: int) -> int:
    """torch threads of each of ``workers`` processes: the cores shared out evenly."""
    return max(1, available_cores() // workers)


def _init_worker(threads: int, features: str) -> None:
    _die_with_parent()
    torch.set_num_threads(threads)
    quiet_third_party()
    cache.share_through(features)
    notes.share_through(os.path.join(features, "notes"))


def _die_with_parent() -> None:
    """Linux: a worker gets SIGTERM when the report that started it dies (killed, not
    interrupted), instead of training on as an orphan that holds its point's directory."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # no prctl here: an orphan finishes its point
        pass


@contextlib.contextmanager
def kept_pools() -> Iterator[None]:
    """Within this block ``run_each`` keeps its worker processes for its next call with as
    many workers (the report's five sweeps: a spawn re-imports torch, transformers and
    timm, ~4 s, and reloads the data); they are shut down when the block ends."""
    global _kept
    outer = _kept
    if outer is None:
        _kept = {}
    try:
        yield
    finally:
        if outer is None:
            pools, _kept = _kept, None
            for pool in pools.values():
                _shut(pool)


def _pool(workers: int) -> tuple[ProcessPoolExecutor, bool]:
    """A pool of ``workers`` spawned processes, and whether ``kept_pools`` keeps it."""
    if _kept is not None and workers in _kept:
        return _kept[workers], True
    # the workers share frozen image features through files (``bench.cache.share_through``)
    features = tempfile.mkdtemp(prefix="fusebench-features-")
    pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init_worker,
                               initargs=(threads_per_worker(workers), features))
    _FEATURES[pool] = features
    if _kept is not None:
        _kept[workers] = pool
    return pool, _kept is not None


def _shut(pool: ProcessPoolExecutor, wait: bool = True) -> None:
    """Shut ``pool`` down (jobs not started are cancelled) and delete its shared features."""
    pool.shutdown(wait=wait, cancel_futures=True)
    shutil.rmtree(_FEATURES.pop(pool, ""), ignore_errors=True)


def submit(fn: Callable[..., Any], *args: Any, workers: int) -> Future:
    """``fn(*args)`` in ``kept_pools``' pool of ``workers`` processes, without waiting:
    work whose result is needed later runs beside the next sweep in the same processes
    (queued before its points, it takes one worker while the others start them)."""
    if _kept is None:
        raise RuntimeError("submit() runs in kept_pools()' processes: call it inside one")
    return _pool(workers)[0].submit(fn, *args)


def run_each(fn: Callable[..., Any], jobs: Iterable[tuple], workers: int
             ) -> Iterator[tuple[tuple, Any]]:
    """``fn(*job)`` for every job, ``workers`` at a time in spawned processes; yields
    ``(job, result)`` as each finishes. When a job fails, the jobs not yet started are
    dropped, the running ones finish (and are yielded), then its exception is raised. An
    interrupt (Ctrl-C reaches the workers too) stops everything at once, kept pool too.
    Inside ``kept_pools`` the processes outlive the call."""
    pool, kept = _pool(workers)
    pending = {pool.submit(fn, *job): job for job in jobs}
    error: BaseException | None = None
    try:
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                job = pending.pop(future)
                if future.cancelled():
                    continue
                if future.exception() is not None:
                    error = error or future.exception()
                    for other in pending:
                        other.cancel()
                    continue
                yield job, future.result()
    except BaseException:
        if kept:
            _kept.pop(workers, None)
        _shut(pool, wait=False)
        raise
    if error is not None and kept:  # a worker may have died with it: the next call spawns
        _kept.pop(workers, None)
        kept = False
    if not kept:
        _shut(pool)
    if error is not None:
        raise error
