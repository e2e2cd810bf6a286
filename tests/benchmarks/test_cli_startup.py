"""Benchmark: cold start of ``fusebench --help`` and ``fusebench list`` (a new process each
round, as a user meets it). ``--help`` loads no torch (``bench/cli`` imports the engine
inside each command's ``run``); ``list`` imports every strategy, so torch. Measured on the
2-core dev VM, median of 5: --help 2.87 s -> 0.16 s and list 3.11 s -> 2.62 s when the
command modules moved into ``bench/cli``. Compare a change with ``--benchmark-compare``."""

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

