"""The environment a measurement was taken in: hardware, threads, versions, commit."""

from __future__ import annotations

import functools
import os
import platform
import subprocess
import time
from importlib import metadata
from pathlib import Path

import torch

PACKAGES = ("torch", "transformers", "timm", "fvcore", "optuna")
# Releases of these have broken fusebench before: their installed versions are checked
# against the ranges pyproject.toml declares (tested with constraints.txt) at start-up.
FRAGILE = ("torch", "torchvision", "transformers", "timm", "optuna")


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def untested_versions(packages: tuple[str, ...] = FRAGILE) -> list[str]:
    """One line per installed package outside the range fusebench declares for it; empty
    when all fit, when fusebench is not installed (run from a source tree), or when
    ``FUSEBENCH_NO_VERSION_CHECK`` is set (``tox -e latest`` tries untested releases)."""
    from packaging.requirements import Requirement

    if os.environ.get("FUSEBENCH_NO_VERSION_CHECK"):
        return []
    try:
        declared = [Requirement(r) for r in metadata.requires("fusebench") or []]
    except metadata.PackageNotFoundError:
        return []
    lines = []
    for req in declared:
        if req.marker is not None or req.name not in packages:
            continue  # extras' requirements carry a marker
        installed = _version(req.name)
        if installed != "not installed" and not req.specifier.contains(installed,
                                                                       prereleases=True):
            tested = ",".join(sorted(map(str, req.specifier), key=lambda s: s[0] != ">"))
            lines.append(f"{req.name} {installed} is outside the tested range {tested} "
                         "(pip install -c constraints.txt -e . installs the tested set)")
    return lines


@functools.lru_cache(maxsize=1)
def git_commit() -> str:
    """The project's commit (with ``+dirty`` when the tree has changes), or ``unknown``."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root,
                                capture_output=True, text=True, timeout=5, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=root, capture_output=True, text=True, timeout=5)
        return commit.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: str) -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return cpu_name()


def environment(device: str = "cpu") -> dict[str, str | int]:
    """Flat dict merged into every Row."""
    env: dict[str, str | int] = {
        "device": device,
        "device_name": device_name(device),
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "commit": git_commit(),
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    for name in PACKAGES:
        env[f"{name}_version"] = _version(name)
    return env
