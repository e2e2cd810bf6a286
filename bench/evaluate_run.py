"""``fusebench evaluate RUN``: a trained run directory, rebuilt and scored again.

``run.json`` says what was trained on what. Paths in it that were given relative (the
built-in data, the ``runs/pretrained/`` backbones) are relative to the directory training
ran in, which ``run.json`` records as ``cwd``: the run evaluates from anywhere.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .atomic_files import atomic_write_json
from .checkpoint import latest_checkpoint, load_weights
from .controls import swap_images
from .errors import UserError
from .evaluate import predict, results_file, vqa_metrics
from .experiment import load_data
from .spec import ModelSpec

PATH_KEYS = ("vision_path", "lm_path")  # config keys that name files


def read_run_spec(run_dir: Path) -> tuple[ModelSpec, Path]:
    """The model spec and data directory ``run_dir/run.json`` records, with relative paths
    resolved against the directory training ran in; a corrupt file is one ``UserError``."""
    spec_path = run_dir / "run.json"
    if not spec_path.is_file():
        raise UserError(f"{run_dir} is not a run directory (no run.json)")
    try:
        spec = json.loads(spec_path.read_text())
        strategy, preset, overrides = spec["strategy"], spec["preset"], spec["overrides"]
        ok = isinstance(strategy, str) and isinstance(preset, (str, type(None))) and \
            isinstance(overrides, dict) and isinstance(spec["data"], str) and \
            isinstance(spec.get("cwd", ""), str)
    except (json.JSONDecodeError, KeyError, TypeError, RecursionError, UnicodeDecodeError) as e:
        raise UserError(f"{spec_path} is corrupt: {str(e)[:120]}") from None
    if not ok:
        raise UserError(f"{spec_path} is corrupt: strategy, preset, overrides, data or cwd "
                        "has the wrong type")
    base = spec.get("cwd", "")
    paths = {k: _resolve(overrides[k], base) for k in PATH_KEYS
             if isinstance(overrides.get(k), str) and overrides[k]}
    data = Path(_resolve(spec["data"], base))
    return ModelSpec(strategy, preset, {**overrides, **paths}), data


def _resolve(path: str, base: str) -> str:
    """``path`` as training read it: under ``base`` (its working directory) when relative
    and still there, else as given (relative to here)."""
    if base and not Path(path).is_absolute() and (Path(base) / path).exists():
        return str(Path(base) / path)
    return path


def _tested_weights(run_dir: Path) -> Path:
    """The best validation epoch's weights; without them (a run from before they were
    kept, or stopped in its first epoch) the latest checkpoint's."""
    best = run_dir / "best" / "model.safetensors"
    if best.is_file():
        return best
    ckpt = latest_checkpoint(run_dir)
    if ckpt is None:
        raise UserError(f"{run_dir} has no checkpoint")
    return ckpt / "model.safetensors"


def evaluate_run(run_dir: str | Path, split: str = "test", num_beams: int = 1,
                 blind: bool = True, save_answers: str | Path | None = None
                 ) -> dict[str, Any]:
    """Rebuild a trained run from its directory and score ``split`` with the weights the
    run itself tested (the best validation epoch's, else the latest checkpoint's), overall
    and per answer type; with ``blind``, also the blind control (every image swapped for
    another of the split, as in the report) and the image reliance. ``save_answers``: a
    path to write the answers to, in the VQA results format."""
    run_dir = Path(run_dir)
    model_spec, data_dir = read_run_spec(run_dir)
    weights = _tested_weights(run_dir)
    data = load_data(model_spec, data_dir, splits=("train", split))
    model = model_spec.create()
    load_weights(model, weights)
    dataset = data.splits[split]
    answers = predict(model, dataset, num_beams=num_beams)
    if save_answers is not None:
        atomic_write_json(save_answers, results_file(answers))
    result = vqa_metrics(answers, dataset.examples, split, per_type=True)
    if blind and len(dataset.image_paths) >= 2:  # one image cannot be swapped for another
        other_images = swap_images(dataset)
        swapped = vqa_metrics(predict(model, other_images, num_beams=num_beams),
                              other_images.examples, split)
        result[f"{split}_blind_vqa_acc"] = swapped[f"{split}_vqa_acc"]
        result[f"{split}_image_reliance"] = (result[f"{split}_vqa_acc"]
                                             - swapped[f"{split}_vqa_acc"])
    return {"strategy": model_spec.strategy, "weights": str(weights), **result}
