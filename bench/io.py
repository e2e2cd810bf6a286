"""Atomic file writes: a reader never sees a half-written result, report or checkpoint."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import UserError


def atomic_write(path: str | Path, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)`` then rename onto ``path`` (same directory, so atomic)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, default=str) + "\n")


def append_line(path: str | Path, line: str) -> None:
    """Append one line and flush it to disk (metrics logs: a crash loses at most the line
    being written, never earlier ones)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(line.rstrip("\n") + "\n")
        f.flush()
        os.fsync(f.fileno())


def check_writable_dir(path: str | Path) -> Path:
    """Raise ``UserError`` unless ``path`` is, or can be created as, a writable directory.

    Creates nothing that outlives the call (a probe directory is made and removed in the
    nearest existing ancestor), so a command that fails here leaves nothing behind."""
    path = Path(path)
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise UserError(f"output directory {path}: {probe} is not a directory")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".fusebench-probe-", dir=probe))
    except OSError as e:
        raise UserError(f"output directory {path}: {probe} is not writable "
                        f"({e.strerror})") from None
    return path
