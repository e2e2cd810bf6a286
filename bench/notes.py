"""Lines a run says once: about its data (questions read cut short) or its backbones (what
a preset's are made from off the built-in data). Each point of a sweep, and each of its
worker processes, would otherwise say the same thing again."""

from __future__ import annotations

import hashlib
from pathlib import Path

_SAID: set[str] = set()  # lines this process has printed
_THROUGH: Path | None = None  # where the processes of one pool mark the lines one has said


def share_through(directory: str | Path | None) -> None:
    """Say each line once between all processes given the same ``directory`` (a pool's
    workers); ``None``: once in this process only."""
    global _THROUGH
    _THROUGH = None if directory is None else Path(directory)
    if _THROUGH is not None:
        _THROUGH.mkdir(parents=True, exist_ok=True)


def say_once(line: str) -> bool:
    """Print ``line`` unless this process, or another sharing its directory, already did;
    whether it was printed here."""
    if line in _SAID:
        return False
    _SAID.add(line)
    if _THROUGH is not None:
        marker = _THROUGH / hashlib.sha256(line.encode()).hexdigest()[:32]
        try:
            marker.open("x").close()  # atomic: of two processes, one creates it
        except FileExistsError:
            return False
    print(line, flush=True)
    return True
