"""Arguments several commands share: model overrides (``--preset``, ``--set``), training
flags built from ``TrainConfig``'s fields, and table/JSON output."""

from __future__ import annotations

import argparse
import json
from dataclasses import fields
from typing import Any

from bench.errors import UserError
from bench.train_config import TrainConfig


def parse_sets(items: list[str] | None) -> dict[str, str]:
    """``["depth=12", "gating=off"]`` -> ``{"depth": "12", "gating": "off"}``."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set {item!r}: expected KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


def add_model_args(parser: argparse.ArgumentParser, *, strategy: bool = True) -> None:
    """The arguments every model-building command shares."""
    if strategy:
        parser.add_argument("strategy", help="registered strategy name (see `fusebench list`)")
    parser.add_argument("--preset", help="named config bundle (see `fusebench list --presets`)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", default=[],
                        help="override a config key (repeatable; `fusebench describe` lists keys)")
    parser.add_argument("--image-size", type=int, help="shortcut for --set image_size=N")


def model_overrides(args: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, Any] = parse_sets(getattr(args, "set", None))
    if getattr(args, "image_size", None) is not None:
        overrides["image_size"] = args.image_size
    return overrides


def workers_count(text: str) -> int:
    """argparse type of ``--workers``: 0 (one per core) or more, refused before any work."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: 0 (one per core) or a positive count")
    return value


_HELP = {"epochs": "passes over the training split", "lr": "peak learning rate",
         "batch_size": "examples per optimizer step (before accumulation)",
         "accum_steps": "micro-batches accumulated per step", "grad_clip": "max grad norm (0=off)",
         "warmup_steps": "linear warm-up steps",
         "warmup_ratio": "warm-up over this fraction of all steps (0 = --warmup-steps)",
         "image_group": "when the image encoder trains: up to this many questions about "
                        "one image in a batch together, the image encoded once for them "
                        "(0 = a plain random order)",
         "shift_pixels": "when the image encoder trains: each training image shifted by a "
                         "random offset of up to this many pixels each way (0 = off)",
         "seed": "seed for init, data order, dropout",
         "device": "cpu or cuda[:N]",
         "min_lr_ratio": "the cosine decay ends at lr times this",
         "warmup_start_ratio": "the warm-up starts at lr times this",
         "weight_decay": "AdamW weight decay of weight matrices (never norms, biases, "
                         "embeddings, latents, gates)",
         "amp": "bf16 autocast on CUDA (default on; CPU always runs fp32)",
         "max_steps": "stop after this many optimizer steps (0 = run every epoch)",
         "checkpoint_every": "optimizer steps between checkpoints (0 = at epoch ends only)",
         "log_every": "optimizer steps between metrics.jsonl lines",
         "progress": "a progress bar on a terminal, per-epoch lines in a log (default on; "
                     "--no-progress: neither)"}


def add_train_args(p: argparse.ArgumentParser) -> None:
    """One --flag per TrainConfig field (``--batch-size``, ``--lr``, ...)."""
    p = p.add_argument_group(
        "training", "the defaults shown are the generic ones; with --preset, the preset's own "
        "recipe replaces them (`fusebench list --presets` shows each recipe), and a flag "
        "given here replaces both")
    for f in fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.type in ("bool", bool):
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=None,
                           help=_HELP.get(f.name, f.name.replace("_", " ")))
        else:
            kind = {"int": int, "float": float}.get(str(f.type), str)
            p.add_argument(flag, type=kind, default=None,
                           help=f"{_HELP.get(f.name, f.name.replace('_', ' '))} "
                                f"(default {f.default})")


def train_config(args: argparse.Namespace, from_pixels: bool = False, **defaults
                 ) -> TrainConfig:
    """TrainConfig from its defaults, then ``defaults``, then the ``--preset``'s recipe
    (for an image encoder trained from raw pixels, with ``from_pixels``), then the flags
    given."""
    from bench.train_config import over_recipe, preset_recipe

    given = {f.name: getattr(args, f.name) for f in fields(TrainConfig)
             if getattr(args, f.name, None) is not None}
    recipe = {**defaults, **preset_recipe(getattr(args, "preset", None), from_pixels)}
    cfg = TrainConfig(**over_recipe(recipe, given))
    cfg.validate()
    return cfg


def emit_rows(rows: list[dict], fmt: str) -> None:
    """Rows as JSON (``--format json``) or an aligned table."""
    from bench.table import print_table

    if fmt == "json":
        print(json.dumps(rows, indent=2, default=str))
    else:
        print_table(rows)


def emit_metrics(result: dict, fmt: str) -> None:
    """One result as JSON, or a metric/value table."""
    if fmt == "json":
        print(json.dumps(result, indent=2, default=str))
    else:
        emit_rows([{"metric": k, "value": v} for k, v in result.items()], fmt)
