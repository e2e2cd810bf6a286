"""Helpers for fault tests: run ``fusebench`` in a subprocess, SIGKILL it at a chosen
moment, and read result files the way a concurrent reader would."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def spawn(args: list[str], cwd: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
           "KINETO_LOG_LEVEL": "5"}
    with open(log, "w") as f:
        return subprocess.Popen([sys.executable, "-m", "bench.cli", *args], cwd=cwd, env=env,
                                stdout=f, stderr=subprocess.STDOUT)


def kill_when(proc: subprocess.Popen, ready: Callable[[], bool], timeout: float = 240,
              poll: float = 0.05) -> None:
    """SIGKILL ``proc`` as soon as ``ready()`` is true (checked every ``poll`` s)."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, f"process ended (rc {proc.returncode}) before the kill"
        assert time.monotonic() < deadline, "kill condition never reached"
        time.sleep(poll)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def run(args: list[str], cwd: Path, log: Path, timeout: float = 300) -> str:
    proc = spawn(args, cwd, log)
    proc.wait(timeout=timeout)
    text = log.read_text()
    assert proc.returncode == 0, text[-3000:]
    return text


def read_rows(directory: Path) -> list[dict] | None:
    """results.json as a reader sees it now (None before the first write); fails the test
    if either results file is ever half-written."""
    path = directory / "results.json"
    if not path.is_file():
        return None
    rows = json.loads(path.read_text())  # a torn write would raise here
    csv_path = directory / "results.csv"
    if csv_path.is_file():
        with open(csv_path, newline="") as f:
            table = list(csv.reader(f))
        assert table and all(len(r) == len(table[0]) for r in table), "torn CSV"
    return rows
