"""Advisory locks on output directories: one writer per run, sweep or study directory.

``output_lock(dir, what)`` takes an exclusive ``flock`` on ``dir/.fusebench.lock`` for
the duration of a command; a second writer gets one ``UserError`` line naming the holder
(pid, host, command, start time), or waits up to ``wait`` seconds. The kernel drops the lock
when its process dies (SIGKILL included), so a stale lock file never blocks anyone. The
file records the holder and is removed on release; a directory the lock created is
removed again when nothing else was written into it.

``file_lock(path)`` is a waited-for lock around a read-modify-write; ``build_lock(target)``
one beside a directory that is built once and then reused (the built-in data, pretrained
backbones), so that commands started together build it once.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import UserError

LOCK_NAME = ".fusebench.lock"


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text())
        return (f"pid {info['pid']} on {info['host']} (`{info['command'][:120]}`, since "
                f"{info['since']})")
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


def _open_locked(path: Path, deadline: float) -> int | None:
    """An fd holding the lock on ``path`` (the file it names now), or None at ``deadline``."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.05)
            continue
        try:  # the holder may have removed the file between our open and flock: retry
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


def _write_holder(fd: int) -> None:
    """Record who holds the lock in its file (what ``_holder`` tells a second comer)."""
    info = {"pid": os.getpid(), "host": socket.gethostname(),
            "command": " ".join(["fusebench", *sys.argv[1:]]),
            "since": time.strftime("%Y-%m-%d %H:%M:%S")}
    os.ftruncate(fd, 0)
    os.write(fd, (json.dumps(info) + "\n").encode())


def _created_dirs(directory: Path) -> list[Path]:
    """The directories ``mkdir(parents=True)`` on ``directory`` would create, deepest first."""
    out, d = [], directory
    while not d.exists() and d != d.parent:
        out.append(d)
        d = d.parent
    return out


@contextmanager
def output_lock(directory: str | Path, what: str = "output directory",
                wait: float = 0.0) -> Iterator[Path]:
    """Hold the exclusive lock of ``directory`` (created if needed) inside the block."""
    directory = Path(directory)
    created = _created_dirs(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOCK_NAME
    fd = _open_locked(path, time.monotonic() + wait)
    if fd is None:
        _remove_empty(created)
        raise UserError(f"{what} {directory} is in use by {_holder(path)}; wait for it to "
                        "finish or choose another --out")
    try:
        _write_holder(fd)
        yield directory
    finally:
        try:
            path.unlink(missing_ok=True)  # while still holding it: see _open_locked
        finally:
            os.close(fd)
        _remove_empty(created)


def _remove_empty(dirs: list[Path]) -> None:
    for d in dirs:
        try:
            d.rmdir()
        except OSError:
            return  # something was written into it: keep it (and its parents)


@contextmanager
def file_lock(path: str | Path, waiting: str = "") -> Iterator[None]:
    """An exclusive lock (waited for) around a read-modify-write; ``path`` is the lock
    file, removed on release like ``output_lock``'s. ``waiting``: a line said (with the
    holder) when the lock is still held elsewhere after half a second, so a long wait is
    not silent and a short one says nothing."""
    path = Path(path)
    fd = _open_locked(path, time.monotonic() + 0.5) if waiting else None
    if fd is None:
        if waiting:
            print(f"{waiting} (held by {_holder(path)}) ...", flush=True)
        fd = _open_locked(path, float("inf"))
    try:
        _write_holder(fd)
        yield
    finally:
        try:
            path.unlink(missing_ok=True)
        finally:
            os.close(fd)


@contextmanager
def build_lock(target: str | Path, waiting: str) -> Iterator[None]:
    """Hold around "is ``target`` there? else build it" for a directory made once and then
    reused (the built-in data, a pretrained backbone): commands started together build it
    once, the others say ``waiting`` and wait, then find it built. The lock is
    ``.NAME.lock`` beside ``target``; a place where it cannot be made is one UserError."""
    target = Path(target)
    path = target.parent / f".{target.name}.lock"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    except OSError as e:
        where = f": {e.filename}" if e.filename else ""
        raise UserError(f"cannot build {target} ({e.strerror or e}{where}); run from a "
                        "writable directory") from None
    with file_lock(path, waiting):
        yield

