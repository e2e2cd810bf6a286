"""Checkpoints: ``ckpt-<step>/`` (safetensors model + weights-only trainer state) made
visible by an atomic ``latest`` pointer; strict loading that names what does not fit.

A ``latest`` pointer that is empty, names something other than a ``ckpt-N`` directory
beside it, or names a missing checkpoint is an error, never "no checkpoint": resuming
from it must not silently restart. A write that fails (disk full) removes its partial
temporary directory and is one ``UserError`` line.
"""

from __future__ import annotations

import json
import pickle
import re
import shutil
import warnings
from pathlib import Path

import torch

from .atomic_files import atomic_write_json, atomic_write_text, pid_alive, tmp_sibling
from .errors import UserError
from .weights import aliases, read_weights, save_weights, saved_shapes

_CKPT_RE = re.compile(r"ckpt-\d{7,}")
_TMP_RE = re.compile(r"\.ckpt-\d{7,}\.tmp-(\d+)-[0-9a-f]+")


def is_checkpoint_entry(name: str) -> bool:
    """A name ``save_checkpoint`` writes (``ckpt-N`` or its temporary directory)."""
    return bool(_CKPT_RE.fullmatch(name) or _TMP_RE.fullmatch(name))


def _remove_dead_temporaries(out: Path) -> None:
    """Temporary checkpoint directories of killed processes (SIGKILL mid-write)."""
    for entry in out.glob(".ckpt-*"):
        m = _TMP_RE.fullmatch(entry.name)
        if m and not pid_alive(int(m.group(1))):
            shutil.rmtree(entry, ignore_errors=True)


def save_checkpoint(out: Path, model, optimizer, state: dict) -> Path:
    """Write ``ckpt-<step>/`` completely, then point ``latest`` at it, then prune older.

    The temporary directory is unique per process; if writing fails (disk full, I/O error)
    it is removed and the error is one ``UserError`` line (the previous checkpoint stays)."""
    ckpt = out / f"ckpt-{state['step']:07d}"
    _remove_dead_temporaries(out)
    tmp = tmp_sibling(ckpt)
    try:
        tmp.mkdir(parents=True)
        _write_checkpoint(tmp, model, optimizer, state)
        shutil.rmtree(ckpt, ignore_errors=True)
        tmp.rename(ckpt)
        atomic_write_text(out / "latest", ckpt.name + "\n")
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise UserError(f"cannot write checkpoint {ckpt} ({e.strerror or e}); removed the "
                        "partial checkpoint, the previous one is kept") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in out.glob("ckpt-*"):
        if old != ckpt and _CKPT_RE.fullmatch(old.name):
            shutil.rmtree(old, ignore_errors=True)
    return ckpt


def _write_checkpoint(tmp: Path, model, optimizer, state: dict) -> None:
    from safetensors import SafetensorError

    try:  # trainable state here, frozen weights once per run (bench.weights)
        save_weights(model, tmp / "model.safetensors", tmp.parent)
    except SafetensorError as e:  # safetensors reports a failed write (ENOSPC) this way
        raise OSError(str(e)) from None
    trainer = {"optimizer": optimizer.state_dict(), "rng": torch.get_rng_state(),
               "step": state["step"], "elapsed_s": state["elapsed_s"],
               "step_s": state.get("step_s", 0.0),
               "images_encoded": state.get("images_encoded", 0),
               "counted_flops": state.get("counted_flops", 0),
               "counted_steps": state.get("counted_steps", 0)}
    if torch.cuda.is_available():
        trainer["cuda_rng"] = torch.cuda.get_rng_state_all()
    try:
        torch.save(trainer, tmp / "trainer_state.pt")
    except RuntimeError as e:  # torch's zip writer wraps the OSError of a failed write
        if "write" not in str(e).lower():
            raise
        raise OSError(str(e).splitlines()[0][:160]) from None
    atomic_write_json(tmp / "last_eval.json", state["last_eval"])
    atomic_write_json(tmp / "evals.json", state.get("evals", []))


def latest_checkpoint(out: str | Path) -> Path | None:
    """The checkpoint ``latest`` points at; None when there is no pointer. A pointer that
    is empty, names no ``ckpt-N`` or a missing checkpoint is a ``UserError``."""
    pointer = Path(out) / "latest"
    if not pointer.is_file():
        return None
    try:
        name = pointer.read_text().strip()
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"checkpoint pointer {pointer} is unreadable ({e})") from None
    if not _CKPT_RE.fullmatch(name):
        shown = repr(name[:40]) if name else "empty"
        raise UserError(f"checkpoint pointer {pointer} is {shown}, not a checkpoint name "
                        "(ckpt- and 7 or more digits, e.g. ckpt-0000750); the run cannot be "
                        "resumed from it (--overwrite starts over)")
    ckpt = Path(out) / name
    if not (ckpt / "model.safetensors").is_file():
        raise UserError(f"checkpoint pointer {pointer} names {name}, which is missing or "
                        "incomplete; the run cannot be resumed from it (--overwrite starts "
                        "over)")
    return ckpt


def resume_checkpoint(out: str | Path) -> Path:
    """The checkpoint ``--resume`` continues from; a ``UserError`` when there is none."""
    ckpt = latest_checkpoint(out)
    if ckpt is None:
        raise UserError(f"nothing to resume in {out}: no checkpoint (no `latest` pointer); "
                        "drop --resume to start a new run (with --overwrite if "
                        "the directory holds an old one)")
    return ckpt


def check_fits(model: torch.nn.Module, path: str | Path) -> None:
    """Raise ``UserError`` naming the first tensors that differ between ``model`` and the
    weights at ``path`` with their frozen part (``bench.weights``; headers only)."""
    saved = saved_shapes(path)
    state = model.state_dict()
    want = {k: tuple(v.shape) for k, v in state.items()}
    tied = aliases(state)  # tied weights: one name of each group is stored
    problems = [f"{k} missing" for k in want if not any(a in saved for a in tied[k])]
    problems += [f"{k} unexpected" for k in saved if k not in want]
    problems += [f"{k} is {list(saved[k])}, model has {list(want[k])}"
                 for k in want if k in saved and saved[k] != want[k]]
    if problems:
        more = f" (and {len(problems) - 2} more)" if len(problems) > 2 else ""
        raise UserError(f"checkpoint {path} does not fit this model: "
                        f"{'; '.join(problems[:2])}{more}")


def load_weights(model: torch.nn.Module, path: str | Path) -> None:
    """Load weights written by ``save_checkpoint`` or ``BestWeights`` (strict: every
    tensor present, once per tied group, with its shape)."""
    from safetensors import SafetensorError

    check_fits(model, path)
    try:
        model.load_state_dict(read_weights(path), strict=False)  # tied aliases: one name
    except (RuntimeError, SafetensorError, OSError) as e:
        first = str(e).strip().splitlines()[0][:200]
        raise UserError(f"checkpoint {path} does not fit this model: {first}") from None


def _load_trainer_state(path: Path) -> dict:
    """Optimizer/RNG state: tensors and numbers only (``weights_only=True`` refuses any other
    pickled object, so a tampered file cannot run code)."""

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # legacy-format chatter; the error says enough
            # CPU first: a GPU run's state then resumes anywhere (the optimizer moves its
            # state to the parameters' device on load)
            trainer = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as e:
        lines = str(e).splitlines()
        why = next((ln.strip() for ln in lines if "Unsupported global" in ln),
                   type(e).__name__)
        raise UserError(f"trainer state {path} is unreadable or not a fusebench checkpoint "
                        f"(refused by torch.load(weights_only=True): {why[:160]})") from None
    if not isinstance(trainer, dict) or not {"optimizer", "rng", "step"} <= set(trainer):
        raise UserError(f"trainer state {path} lacks optimizer/rng/step entries")
    return trainer


def check_resumable(model: torch.nn.Module, out: str | Path) -> None:
    """Fail now (``UserError``) unless ``out``'s latest checkpoint can resume ``model``."""
    ckpt = resume_checkpoint(out)
    check_fits(model, ckpt / "model.safetensors")
    _load_trainer_state(ckpt / "trainer_state.pt")
    _read_evaluations(ckpt)


def _read_evaluations(ckpt: Path) -> tuple[dict, list[dict]]:
    """The checkpoint's last evaluation and every evaluation so far (``evals.json``, absent
    in checkpoints written before it existed); ``UserError`` when either is unreadable."""
    try:
        last_eval = json.loads((ckpt / "last_eval.json").read_text())
        evals_path = ckpt / "evals.json"
        evals = json.loads(evals_path.read_text()) if evals_path.is_file() else []
    except (ValueError, OSError) as e:
        raise UserError(f"checkpoint {ckpt} does not fit this run: {e}") from None
    if not isinstance(last_eval, dict):
        raise UserError(f"checkpoint {ckpt}: last_eval.json is not a metric record")
    if not isinstance(evals, list) or not all(isinstance(e, dict) for e in evals):
        raise UserError(f"checkpoint {ckpt}: evals.json is not a list of metric records")
    return last_eval, evals


def load_checkpoint(out: Path, model, optimizer) -> dict:
    """Restore model, optimizer and RNG from the latest checkpoint (``UserError`` if none)."""
    ckpt = resume_checkpoint(out)
    load_weights(model, ckpt / "model.safetensors")
    trainer = _load_trainer_state(ckpt / "trainer_state.pt")
    try:
        optimizer.load_state_dict(trainer["optimizer"])
        torch.set_rng_state(trainer["rng"])
    except (ValueError, KeyError, TypeError, RuntimeError, OSError) as e:
        raise UserError(f"checkpoint {ckpt} does not fit this run: {e}") from None
    last_eval, evals = _read_evaluations(ckpt)
    if "cuda_rng" in trainer and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(trainer["cuda_rng"])
    return {"step": trainer["step"], "epoch": 0, "elapsed_s": trainer.get("elapsed_s", 0.0),
            "step_s": trainer.get("step_s", 0.0),
            "images_encoded": trainer.get("images_encoded", 0),
            "counted_flops": trainer.get("counted_flops", 0),
            "counted_steps": trainer.get("counted_steps", 0), "last_eval": last_eval,
            "evals": evals}
