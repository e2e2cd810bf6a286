"""Benchmark: cold start of ``fusebench --help`` and ``fusebench list`` (a new process each
round, as a user meets it). Both import torch today (the command modules import their
engines at module level); compare a change against main with ``--benchmark-compare``."""

import subprocess
import sys

import pytest

COMMANDS = {"help": ["--help"], "list": ["list"]}


def _run(args: list[str]) -> str:
    return subprocess.run([sys.executable, "-m", "bench.cli", *args], check=True,
                          capture_output=True, text=True).stdout


@pytest.mark.benchmark(group="cli-startup")
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_cold_start(benchmark, command):
    out = benchmark.pedantic(_run, args=(COMMANDS[command],), rounds=5, warmup_rounds=1)
    assert "fusebench" in out or "cross_attn" in out

