"""Atomic file writes: a reader never sees a half-written result, report or checkpoint.

Temporary names are unique per process (pid + random), so two writers into one directory
never share a temporary file; directories are built beside their target and swapped in.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import UserError


def _file_mode() -> int:
    """The mode ``open`` gives a new file under this process's umask (mkstemp's files are
    0600: results written through it would be unreadable to the rest of a shared machine).
    Read once, at import: reading the umask sets it for a moment."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


FILE_MODE = _file_mode()


def atomic_write(path: str | Path, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)`` then rename onto ``path`` (same directory, so atomic)."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path} is a directory: a file cannot be written there")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp",
                               dir=path.parent)
    os.fchmod(fd, FILE_MODE)
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


def atomic_write_csv(path: str | Path, frame: Any) -> None:
    """A pandas DataFrame as CSV (no index), atomically."""
    atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False))


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


def tmp_sibling(path: str | Path, tag: str = "tmp") -> Path:
    """A name beside ``path`` no other process uses: ``.NAME.<tag>-<pid>-<random>``."""
    path = Path(path)
    return path.with_name(f".{path.name}.{tag}-{os.getpid()}-{secrets.token_hex(4)}")


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (ours or another user's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_siblings(path: Path) -> None:
    """Delete ``tmp_sibling`` leftovers of ``path`` whose process is gone (a SIGKILL)."""
    for entry in path.parent.glob(f".{path.name}.*-*-*"):
        tag, _, rest = entry.name[len(path.name) + 2:].partition("-")
        pid = rest.split("-", 1)[0]
        if tag in ("tmp", "old") and pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(entry, ignore_errors=True)


def foreign_entries(directory: Path, owned: set[str]) -> list[str]:
    """Names in ``directory`` that are not in ``owned`` (what a replace must not delete)."""
    return sorted(e.name for e in directory.iterdir() if e.name not in owned)


@contextmanager
def staged_directory(target: str | Path) -> Iterator[Path]:
    """Build a directory beside ``target`` and swap it in when the block succeeds.

    The block fills the yielded temporary directory; on success ``target`` (absent, empty,
    or an old version the caller has checked it may replace) is replaced by it: the old
    one is renamed aside, the new one renamed in, the old one deleted. An interruption at
    any point leaves the old ``target`` or none, never a mix; on failure the temporary
    directory is removed. Failures to create or swap are ``UserError``."""
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise UserError(f"{target} exists and is not a directory")
    check_writable_dir(target.parent)
    remove_stale_siblings(target)
    tmp = tmp_sibling(target)
    try:
        tmp.mkdir(parents=True)
    except OSError as e:
        raise UserError(f"{target}: cannot create {tmp.name} beside it "
                        f"({e.strerror})") from None
    try:
        yield tmp
        _swap_in(tmp, target)
    except OSError as e:
        raise UserError(f"writing {target} failed ({e.strerror or e}); "
                        f"{'the old data is unchanged' if target.exists() else 'nothing kept'}"
                        ) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _swap_in(tmp: Path, target: Path) -> None:
    old = None
    if target.exists():
        try:
            os.rmdir(target)  # an empty directory: nothing to keep
        except OSError as e:
            if e.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
            old = tmp_sibling(target, "old")
            os.rename(target, old)
    try:
        os.rename(tmp, target)
    except BaseException:
        if old is not None:
            os.rename(old, target)  # put the old version back
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
