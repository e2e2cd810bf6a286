"""``fusebench`` command line: one module per subcommand, each only its arguments and a
thin ``run`` that calls the engine (``bench/*.py``).

Every command module exposes ``add_parser(subparsers)``, which registers its arguments and
``set_defaults(func=run)``; ``run(args) -> int``. Engine modules are imported inside
``run`` (ruff PLC0415 allows that here only), so that ``fusebench --help`` and ``fusebench
list`` do not load torch. ``UserError`` raised anywhere becomes exit code 2 and one line on
stderr.
"""

from __future__ import annotations

import argparse
import os
import sys

from bench.errors import UserError

from . import (
    baseline,
    compare,
    data,
    describe,
    evaluate,
    list_,
    pretrain,
    profile,
    report,
    study,
    sweep,
    train,
)

COMMANDS = (list_, describe, profile, sweep, train, evaluate, study, compare, pretrain, report,
            data, baseline)


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on bad arguments already; keep its message to one line."""

    def error(self, message: str):
        self.exit(2, f"fusebench: error: {message}\n")


DESCRIPTION = ("Benchmark image-language fusion strategies: what each costs (params, GFLOPs, "
               "memory, latency) for the accuracy it buys. Start with `fusebench report`.")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="fusebench", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


# Commands that build models: they warn at start-up when a fragile dependency is outside
# its tested range (a one-line warning, rather than a traceback from deep inside it later).
MODEL_COMMANDS = {"profile", "train", "evaluate", "sweep", "study", "compare", "pretrain",
                  "report", "baseline"}


def quiet_third_party() -> None:
    """Keep libraries' own chatter off the terminal: transformers' "Loading weights" bars
    and info lines, and deprecation notices about their internals that a user can do
    nothing about (fusebench's own progress and errors are unaffected)."""
    import warnings

    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    for category in (DeprecationWarning, FutureWarning):
        warnings.filterwarnings("ignore", category=category)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in MODEL_COMMANDS:
        quiet_third_party()
        from bench.env import untested_versions  # imports torch: only where it is needed

        for line in untested_versions():
            print(f"fusebench: warning: {line}", file=sys.stderr)
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        print(f"fusebench: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and closed: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("fusebench: interrupted", file=sys.stderr)
        return 130

