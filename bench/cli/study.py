"""``fusebench study SPEC``: run or resume an optuna study (``bench.study_run``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.errors import UserError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("study", help="run or resume an optuna study from a YAML spec")
    p.add_argument("spec", help="study YAML (see sweeps/study_*.yaml)")
    p.add_argument("--storage", help="optuna storage URL (default: sqlite file in --out); "
                                     "postgresql://..., or journal:PATH")
    p.add_argument("--n-trials", type=int, help="total finished trials wanted (overrides spec)")
    p.add_argument("--out", help="output directory (default: runs/studies/<name>)")
    p.add_argument("--fail-running", action="store_true",
                   help="mark trials left RUNNING by a killed worker as failed and retry them "
                        "(for journal storage; RDB storages do this by heartbeat)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from optuna.trial import TrialState

    from bench.atomic_files import check_writable_dir
    from bench.study import MAX_TRIALS, load_study_spec
    from bench.study_run import run_study

    spec = load_study_spec(args.spec)
    if args.n_trials is not None and not 1 <= args.n_trials <= MAX_TRIALS:
        raise UserError("--n-trials must be >= 1" if args.n_trials < 1 else
                        f"--n-trials {args.n_trials}: must be <= {MAX_TRIALS}")
    out = Path(args.out or Path("runs") / "studies" / spec.name)
    check_writable_dir(out)
    study = run_study(spec, out, args.storage, args.n_trials, args.fail_running)
    counts = {s.name.lower(): len(study.get_trials(deepcopy=False, states=(s,)))
              for s in TrialState}
    print(f"study {spec.name}: " + ", ".join(f"{v} {k}" for k, v in counts.items() if v))
    if spec.multi:
        names = [metric for metric, _ in spec.objectives]
        print(f"Pareto front: {len(study.best_trials)} trials; " + "; ".join(
            f"#{t.number} " + " ".join(f"{n}={v:.4g}" for n, v in zip(names, t.values))
            + f" {t.params}" for t in study.best_trials))
    elif counts.get("complete"):
        print(f"best: #{study.best_trial.number} {spec.objectives[0][0]}="
              f"{study.best_value:.4g} {study.best_params}")
    print(f"trials table and plots in {out}")
    return 0
