"""Number, choice and device checks shared by every parser (CLI flags, sweep and study
specs, train settings), so a value is validated once, at parse time, the same way.

Floats must be finite (``nan <= 0`` is False, so a plain range check lets NaN through);
counts have upper bounds where a typo means a hang or an impossible allocation.
"""

from __future__ import annotations

import math
import os
import reprlib
from typing import Any

import torch

from .errors import UserError

MAX_EPOCHS = 10_000
MAX_BATCH = 65_536
MAX_STEPS = 100_000_000
MAX_REPEATS = 100_000
MAX_GRID_POINTS = 10_000
MAX_SEED = 2**32 - 1  # numpy's limit; torch accepts it too
DEVICE_TYPES = ("cpu", "cuda")

_repr = reprlib.Repr()
_repr.maxstring, _repr.maxother, _repr.maxlevel = 60, 60, 3


def short(value: Any) -> str:
    """``repr(value)`` bounded in size and depth: error messages never expand a huge (or
    alias-shared) structure."""
    return _repr.repr(value)


def number(name: str, value: Any, low: float | None = None, high: float | None = None, *,
           low_open: bool = False, integer: bool = False) -> float | int:
    """``value`` as a finite number in [low, high] (``low_open``: (low, high])."""
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            (integer and not isinstance(value, int)):
        raise UserError(f"{name}={short(value)}: expected {kind}")
    if not math.isfinite(value):
        raise UserError(f"{name}={value}: must be finite")
    if low is not None and (value <= low if low_open else value < low):
        raise UserError(f"{name}={value}: must be {'>' if low_open else '>='} {low}")
    if high is not None and value > high:
        raise UserError(f"{name}={value}: must be <= {high}")
    return value


def count(name: str, value: Any, low: int = 1, high: int = MAX_STEPS) -> int:
    """An integer in [low, high]."""
    return int(number(name, value, low, high, integer=True))


def seed(name: str, value: Any) -> int:
    return count(name, value, 0, MAX_SEED)


def choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise UserError(f"{name}={short(value)}: not one of {', '.join(choices)}")
    return value


def parse_device(name: Any) -> torch.device:
    """``torch.device(name)`` for the device types fusebench runs on (cpu, cuda[:N])."""
    try:
        device = torch.device(name) if isinstance(name, (str, torch.device)) else None
    except (RuntimeError, TypeError):
        device = None
    if device is None or device.type not in DEVICE_TYPES:
        raise UserError(f"device {short(name)}: expected cpu, cuda or cuda:N")
    return device


def check_device(device: torch.device) -> None:
    """A clear error for a CUDA device this machine does not have."""
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"--device {device}: no CUDA device is available")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UserError(f"--device {device}: only {torch.cuda.device_count()} CUDA "
                            "device(s)")


def available_memory() -> int:
    """Bytes of RAM available now: ``MemAvailable`` of /proc/meminfo on Linux (what psutil
    reports, without the dependency), else the free physical pages."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def check_fits_memory(what: str, nbytes: float, device: str = "cpu") -> None:
    """``UserError`` when ``nbytes`` exceeds the memory of ``device`` (before allocating)."""
    dev = torch.device(device)
    if dev.type == "cuda" and torch.cuda.is_available():
        have = torch.cuda.get_device_properties(dev.index or 0).total_memory
    else:
        have = available_memory()
    if nbytes > have:
        raise UserError(f"{what} needs {nbytes / 2**30:.1f} GiB, more than the "
                        f"{have / 2**30:.1f} GiB {'the GPU has' if dev.type == 'cuda' else 'free'}")
