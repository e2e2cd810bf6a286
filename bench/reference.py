"""Reference backbones shipped with the code: pretraining a user need not wait for.

``fusebench pretrain vision|text --ship`` copies a cache entry (``runs/pretrained/NAME``)
into ``bench/reference/NAME`` with a ``SHA256SUMS`` file; ``NAME`` ends with the cache key,
a hash of the pretraining settings *and* the dataset's manifest, so an entry is only ever
used for the data it was trained on (other data, seeds or settings pretrain as before).
``fetch`` installs a shipped entry into the cache after checking every file's hash; an
entry that fails the check is ignored with one warning line, and pretraining runs.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

from .atomic_files import staged_directory

SHIPPED = Path(__file__).resolve().parent / "reference"
SUMS = "SHA256SUMS"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _verified(entry: Path) -> bool:
    """Every file listed in the entry's SHA256SUMS exists and has that hash."""
    try:
        lines = (entry / SUMS).read_text().splitlines()
        pairs = [line.split(None, 1) for line in lines if line.strip()]
        return bool(pairs) and all(
            (entry / name).is_file() and _sha256(entry / name) == digest
            and Path(name).name == name for digest, name in pairs)
    except (OSError, ValueError):
        return False


def fetch(target: Path, marker: str) -> bool:
    """Install the shipped entry named like ``target`` into ``target`` (the cache); True
    when done. ``marker`` is the file whose presence makes a cache entry complete."""
    entry = SHIPPED / target.name
    if not (entry / marker).is_file():
        return False
    if not _verified(entry):
        print(f"fusebench: warning: shipped checkpoint {entry.name} fails its SHA256SUMS "
              "check; pretraining instead", file=sys.stderr)
        return False
    with staged_directory(target) as tmp:
        for path in entry.iterdir():
            if path.name not in (SUMS, "reference.json"):
                shutil.copy2(path, tmp / path.name)
    print(f"[pretrain] using the shipped reference checkpoint {entry.name} "
          "(sha256 verified)", flush=True)
    return True


def ship(cached: Path, command: str, manifest: Path) -> Path:
    """Copy a complete cache entry into the package's reference directory with hashes and
    ``reference.json`` (the command that rebuilds it and the data manifest's hash)."""

    dest = SHIPPED / cached.name
    with staged_directory(dest) as tmp:
        (tmp / "reference.json").write_text(json.dumps(
            {"command": command, "data_manifest_sha256": _sha256(manifest)}, indent=2) + "\n")
        sums = [f"{_sha256(tmp / 'reference.json')}  reference.json"]
        for path in sorted(cached.iterdir()):
            if path.is_file():
                shutil.copy2(path, tmp / path.name)
                sums.append(f"{_sha256(path)}  {path.name}")
        (tmp / SUMS).write_text("\n".join(sums) + "\n")
    return dest
