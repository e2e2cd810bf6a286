"""``fusebench evaluate RUN``: score a trained run; or ``--captions`` predictions."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.atomic_files import check_writable_dir
from bench.errors import UserError

from .common import emit_metrics


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="score a trained run, or caption predictions")
    p.add_argument("run", nargs="?", help="run directory written by `fusebench train`")
    p.add_argument("--split", default="test",
                   help="split to score: train, val, test or a file split's own name "
                        "(default: test)")
    p.add_argument("--num-beams", type=int, default=1, help="beam width for generated answers")
    p.add_argument("--no-blind", action="store_true",
                   help="skip the blind control (each image swapped for another; it doubles "
                        "the evaluation time)")
    p.add_argument("--save-answers", metavar="PATH",
                   help="also write the run's answers on the split to PATH in the VQA results "
                        "format ([{question_id, answer}], what the official evaluation reads)")
    p.add_argument("--answers", metavar="RESULTS",
                   help="a VQA results JSON to score instead (every question of the split "
                        "answered once, as the official script requires)")
    p.add_argument("--captions", help="COCO-format caption predictions JSON to score instead")
    p.add_argument("--data", help="dataset directory holding the reference answers (for "
                        "--answers and --captions; default: the built-in data, as train)")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    files = [flag for flag, value in (("--answers", args.answers),
                                      ("--captions", args.captions)) if value]
    if len(files) > 1 or (files and (args.run or args.save_answers)):
        raise UserError("score one thing: a run directory, --answers or --captions")
    if files:
        from bench.data.synthvqa import ensure_data

        predictions = Path(args.answers or args.captions)
        if not predictions.is_file():  # before the built-in data is made for nothing
            raise UserError(f"missing file: {predictions}")
        data = ensure_data(args.data)  # the built-in data unless --data, as `train`
        if args.answers:
            from bench.evaluate import score_results_file as score
        else:
            from bench.metrics.captions import score_prediction_file as score
        emit_metrics(score(predictions, data, args.split), args.format)
        return 0
    if not args.run:
        raise UserError("give a run directory, or --answers RESULTS.json (or --captions "
                        "PRED.json) and the data they answer (--data DIR; default: the "
                        "built-in data)")
    from bench.evaluate_run import evaluate_run
    from bench.validate import count

    count("--num-beams", args.num_beams, 1, 64)
    if args.save_answers:
        _check_output_file(Path(args.save_answers))
    emit_metrics(evaluate_run(args.run, args.split, num_beams=args.num_beams,
                              blind=not args.no_blind, save_answers=args.save_answers),
                 args.format)
    return 0


def _check_output_file(path: Path) -> None:
    """Before minutes of evaluation: the answers file can be written where asked."""
    if path.is_dir():
        raise UserError(f"--save-answers {path} is a directory; give a file path")
    check_writable_dir(path.parent)
