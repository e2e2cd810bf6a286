"""``fusebench evaluate RUN``: score a trained run; or ``--captions`` predictions."""

from __future__ import annotations

import argparse

from bench.errors import UserError

from .common import emit_metrics


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="score a trained run, or caption predictions")
    p.add_argument("run", nargs="?", help="run directory written by `fusebench train`")
    p.add_argument("--split", default="test")
    p.add_argument("--num-beams", type=int, default=1, help="beam width for generated answers")
    p.add_argument("--no-blind", action="store_true",
                   help="skip the blind control (each image swapped for another; it doubles "
                        "the evaluation time)")
    p.add_argument("--captions", help="COCO-format caption predictions JSON to score instead")
    p.add_argument("--data", help="dataset directory (for --captions)")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.captions:
        from bench.metrics.captions import score_prediction_file

        if not args.data:
            raise UserError("--captions needs --data DIR with the reference captions")
        emit_metrics(score_prediction_file(args.captions, args.data, args.split), args.format)
        return 0
    if not args.run:
        raise UserError("give a run directory, or --captions PRED.json --data DIR")
    from bench.experiment import evaluate_run
    from bench.validate import count

    count("--num-beams", args.num_beams, 1, 64)
    emit_metrics(evaluate_run(args.run, args.split, num_beams=args.num_beams,
                              blind=not args.no_blind), args.format)
    return 0
