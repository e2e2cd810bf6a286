"""The training recipe as data: ``TrainConfig``, typed and validated, torch-free.

Its own module so that the command line can build ``--lr``/``--epochs``/... flags from the
fields without importing torch (``fusebench --help`` stays fast); ``bench.train.fit`` runs it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import variants
from variants.config import coerce

from .errors import UserError


@dataclass
class TrainConfig:
    epochs: int = 3
    batch_size: int = 32
    lr: float = 1e-3
    min_lr_ratio: float = 0.05  # cosine floor = lr * ratio (eP-ALM: 1e-6 / 2e-5)
    warmup_start_ratio: float = 0.0  # warm-up starts at lr * ratio (eP-ALM: 0.5)
    warmup_steps: int = 50
    warmup_ratio: float = 0.0  # warm-up over this fraction of the run's steps (0: warmup_steps)
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    accum_steps: int = 1
    # when the image encoder trains: up to this many questions about one image side by side
    # in a batch, so it encodes that image once for all of them (0 or 1: a plain random order)
    image_group: int = 0
    # when the image encoder trains: each training image shifted by a random offset of up
    # to this many pixels each way (edges replicated), a fresh one every step (0 = off)
    shift_pixels: int = 0
    seed: int = 0
    device: str = "cpu"
    amp: bool = True  # bf16 autocast on CUDA only (bf16 on CPU is ~100x slower here)
    max_steps: int = 0  # stop after this many optimizer steps (0 = all epochs)
    checkpoint_every: int = 0  # optimizer steps between checkpoints (0 = epoch ends only)
    log_every: int = 10
    progress: bool = True

    @classmethod
    def from_mapping(cls, values: dict[str, Any], where: str = "train") -> TrainConfig:
        """A validated config from YAML or CLI values (typed by the fields; one clear error)."""
        valid = {f.name for f in fields(cls)}
        bad = sorted(set(values) - valid)
        if bad:
            raise UserError(f"{where}: unknown train key(s) {', '.join(bad)}; "
                            f"valid: {', '.join(sorted(valid))}")
        try:
            cfg = cls(**{k: coerce(cls, k, v) for k, v in values.items()})
            cfg.validate()
        except UserError as e:
            raise UserError(f"{where}: {e}") from None
        return cfg

    def validate(self) -> None:
        """Every field typed, finite and in range (``bench.validate``): nan, inf, negative
        decay, ratios outside [0, 1] and counts that would run for ever are refused."""
        from . import validate as v  # noqa: PLC0415  (imports torch; this module must not)

        v.count("epochs", self.epochs, 1, v.MAX_EPOCHS)
        v.count("batch_size", self.batch_size, 1, v.MAX_BATCH)
        v.count("accum_steps", self.accum_steps, 1, 1024)
        v.count("image_group", self.image_group, 0, v.MAX_BATCH)
        v.count("shift_pixels", self.shift_pixels, 0, 64)
        v.number("lr", self.lr, 0, low_open=True)
        v.number("weight_decay", self.weight_decay, 0)
        v.number("grad_clip", self.grad_clip, 0)
        for name in ("min_lr_ratio", "warmup_start_ratio", "warmup_ratio"):
            v.number(name, getattr(self, name), 0, 1)
        for name in ("max_steps", "checkpoint_every", "warmup_steps"):
            v.count(name, getattr(self, name), 0)
        v.count("log_every", self.log_every, 1)
        v.seed("seed", self.seed)
        v.check_device(v.parse_device(self.device))


def warmup_for(cfg: TrainConfig, total_steps: int) -> int:
    """Linear warm-up steps of a run of ``total_steps``: ``warmup_ratio`` of them when set
    (a recipe that carries to data of another size), else ``warmup_steps``."""
    if cfg.warmup_ratio:
        return round(cfg.warmup_ratio * total_steps)
    return cfg.warmup_steps


def preset_recipe(preset: str | None, from_pixels: bool = False) -> dict[str, Any]:
    """The training recipe model preset ``preset`` declares (``Preset.train``, and its
    ``from_pixels_train`` when the image encoder trains from raw pixels; ``{}`` without a
    preset): the defaults ``fusebench train``, sweep points and study trials start from,
    under their own flags and ``train:`` keys."""
    if not preset:
        return {}
    found = variants.get_preset(preset)
    return {**found.train, **(found.from_pixels_train if from_pixels else {})}


def over_recipe(recipe: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """Train values ``given`` (flags, a spec's ``train:``) over a preset's ``recipe``. A
    warm-up given in steps replaces the recipe's warm-up ratio, which would otherwise win
    (``warmup_for``) and leave the steps the user asked for unused."""
    values = {**recipe, **given}
    if "warmup_steps" in given and "warmup_ratio" not in given:
        values["warmup_ratio"] = 0.0
    return values
