"""What a run directory may be turned into: new, resumed, or explicitly overwritten.

``fusebench train`` into a directory that already holds a run refuses unless asked to
``--resume`` it (which needs a valid checkpoint) or to ``--overwrite`` it (which deletes
the old run's own files first, so an interrupted rerun never leaves the old
``result.json`` beside the new ``run.json``; files the harness did not write are kept).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .checkpoint import is_checkpoint_entry, resume_checkpoint
from .errors import UserError
from .weights import FROZEN_DIR

RUN_FILES = ("result.json", "run.json", "train_config.json", "answer_vocab.json",
             "metrics.jsonl", "latest")


def run_files(out: Path) -> list[Path]:
    """The files and checkpoint directories of a run in ``out`` (empty: no run there)."""
    found = [out / name for name in RUN_FILES if (out / name).exists()]
    if not out.is_dir():
        return found
    return found + sorted(p for p in out.iterdir()
                          if is_checkpoint_entry(p.name) or p.name == FROZEN_DIR)


def prepare_run_dir(out: Path, *, resume: bool, overwrite: bool) -> None:
    """Check ``out`` for this mode (``UserError`` when it does not fit); ``overwrite``
    removes an old run's files. Call it holding the directory's lock."""
    if resume and overwrite:
        raise UserError("--resume and --overwrite exclude each other")
    if resume:
        resume_checkpoint(out)  # a missing or broken `latest` is an error, not a restart
        return
    existing = run_files(out)
    if not existing:
        return
    if not overwrite:
        state = "a finished run" if (out / "result.json").is_file() else "an unfinished run"
        raise UserError(f"{out} already holds {state}; pass --resume to continue it or "
                        "--overwrite to start over (deletes its checkpoints and results)")
    for path in sorted(existing, key=lambda p: p.name != "result.json"):  # result first
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
