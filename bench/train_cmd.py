"""``fusebench train`` and ``fusebench evaluate``."""

from __future__ import annotations

import argparse
import json
from dataclasses import fields
from pathlib import Path

from .atomic_files import check_writable_dir
from .config import add_model_args, model_overrides
from .errors import UserError
from .table import print_table
from .train import TrainConfig

_HELP = {"epochs": "passes over the training split", "lr": "peak learning rate",
         "batch_size": "examples per optimizer step (before accumulation)",
         "accum_steps": "micro-batches accumulated per step", "grad_clip": "max grad norm (0=off)",
         "warmup_steps": "linear warm-up steps", "seed": "seed for init, data order, dropout",
         "device": "cpu or cuda[:N]"}


def add_train_args(p: argparse.ArgumentParser) -> None:
    """One --flag per TrainConfig field (``--batch-size``, ``--lr``, ...)."""
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


def train_config(args: argparse.Namespace, **defaults) -> TrainConfig:
    values = {**defaults}
    for f in fields(TrainConfig):
        if getattr(args, f.name, None) is not None:
            values[f.name] = getattr(args, f.name)
    cfg = TrainConfig(**values)
    cfg.validate()
    return cfg


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train and evaluate a strategy on a dataset")
    add_model_args(p)
    p.add_argument("--data", help="dataset directory (default: built-in synthvqa, generated "
                                  "on first use)")
    p.add_argument("--out", help="run directory (default: runs/train/<strategy>)")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")
    p.add_argument("--overwrite", action="store_true",
                   help="start over in a directory that holds a run (deletes its checkpoints "
                        "and results)")
    p.add_argument("--no-cache", action="store_true",
                   help="recompute frozen image features every step")
    add_train_args(p)
    p.set_defaults(func=run_train)

    p = sub.add_parser("evaluate", help="score a trained run, or caption predictions")
    p.add_argument("run", nargs="?", help="run directory written by `fusebench train`")
    p.add_argument("--split", default="test")
    p.add_argument("--num-beams", type=int, default=1, help="beam width for generated answers")
    p.add_argument("--captions", help="COCO-format caption predictions JSON to score instead")
    p.add_argument("--data", help="dataset directory (for --captions)")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(func=run_evaluate)


def run_train(args: argparse.Namespace) -> int:
    from .experiment import run_experiment

    cfg = train_config(args)
    out = check_writable_dir(args.out or Path("runs") / "train" / args.strategy)
    result = run_experiment(args.strategy, args.preset, model_overrides(args), cfg, args.data,
                            out, resume=args.resume, overwrite=args.overwrite,
                            use_cache=not args.no_cache)
    print_table([{"strategy": args.strategy, **result}])
    print(f"run directory: {out} (metrics.jsonl, checkpoints, result.json)")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    if args.captions:
        return _evaluate_captions(args)
    if not args.run:
        raise UserError("give a run directory, or --captions PRED.json --data DIR")
    from .experiment import evaluate_run
    from .validate import count

    count("--num-beams", args.num_beams, 1, 64)
    result = evaluate_run(args.run, args.split, num_beams=args.num_beams)
    _emit(result, args.format)
    return 0


def _evaluate_captions(args: argparse.Namespace) -> int:
    from .data.loaders import load_examples, read_json
    from .metrics.captions import caption_metrics

    if not args.data:
        raise UserError("--captions needs --data DIR with the reference captions")
    refs: dict = {}
    for ex in load_examples(args.data, args.split, task="caption"):
        refs.setdefault(ex.image_id, []).extend(ex.answers)
    preds = read_json(Path(args.captions))
    if not isinstance(preds, list) or not all(isinstance(p, dict) and {"image_id", "caption"}
                                              <= set(p) for p in preds):
        raise UserError(f"{args.captions}: expected a list of {{image_id, caption}} objects")
    hyps = {p["image_id"]: [p["caption"]] for p in preds}
    missing = sorted(set(hyps) - set(refs))[:3]
    if missing:
        raise UserError(f"{args.captions}: image ids {missing} have no reference captions")
    _emit(caption_metrics({k: refs[k] for k in hyps}, hyps), args.format)
    return 0


def _emit(result: dict, fmt: str) -> None:
    if fmt == "json":
        print(json.dumps(result, indent=2, default=str))
    else:
        print_table([{"metric": k, "value": v} for k, v in result.items()])
