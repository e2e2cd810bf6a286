"""Running a study: storage by URL, the objective, trials table and plots.

``fusebench study SPEC`` = load spec -> open/resume the study on its storage -> run trials
until ``n_trials`` have finished (COMPLETE or PRUNED, counted over every worker) -> write
``trials.csv`` and PNG plots. Watch a study live with
``optuna-dashboard sqlite:///runs/studies/<name>/study.db`` (any storage URL works).
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from .atomic_files import atomic_write
from .errors import UserError
from .experiment import prepare, profile_and_train, trains_from_pixels
from .lock import output_lock
from .plots import study_plots
from .row import GFLOPS, PARAMS_TRAINABLE, TEST_ACC, VAL_ACC
from .spec import ModelSpec
from .study import StudySpec, distributions, objective_values, suggest
from .study_sampler import TrialSeededSampler
from .train import TrainingDiverged
from .train_config import TrainConfig, over_recipe, preset_recipe


def open_storage(url: str | None, out_dir: Path, heartbeat: dict[str, int]):
    """An optuna storage from a URL: default SQLite under ``out_dir``; ``journal:PATH`` for a
    journal file; any SQLAlchemy URL for an RDB (with heartbeat, so killed trials retry)."""
    import optuna
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    if url is None:
        out_dir.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{out_dir / 'study.db'}"
    if url.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        path = Path(url[len("journal:"):])
        if not path.parent.is_dir():
            raise UserError(f"journal directory does not exist: {path.parent}")
        _check_journal(path)
        try:  # the journal is replayed here: a corrupt file fails now, as one line
            return JournalStorage(JournalFileBackend(str(path)))
        except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError,
                RecursionError) as e:
            raise UserError(f"journal file {path} is corrupt or not an optuna journal "
                            f"({type(e).__name__}: {str(e)[:100]})") from None
    shown, url = _redacted(url), _with_driver(url)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retry = RetryHeartbeatStaleTrialCallback(max_retry=2)
    try:
        for attempt in range(5):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    return RDBStorage(url, heartbeat_interval=heartbeat.get("interval", 10),
                                      grace_period=heartbeat.get("grace_period", 30),
                                      heartbeat_stale_trial_callback=retry)
            except Exception as e:  # noqa: BLE001
                # workers starting together on a fresh database race to create optuna's
                # tables; the loser sees a duplicate-key error and finds them on retry
                if attempt == 4 or "IntegrityError" not in type(e).__name__ + repr(e.args):
                    raise
                time.sleep(0.5 * (attempt + 1))
    except ImportError as e:
        missing = getattr(e.__cause__, "name", None) or e.name or "a database driver"
        raise UserError(f"storage {shown!r} needs {missing}, which is not installed; "
                        "for PostgreSQL: pip install 'fusebench[postgres]'") from None
    except (optuna.exceptions.StorageInternalError, Exception) as e:  # noqa: BLE001
        if isinstance(e, UserError):
            raise
        first = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise UserError(f"cannot open storage {shown!r}: {first}") from None


def _check_journal(path: Path) -> None:
    """An existing journal is JSON lines, each an object, the last one complete: optuna
    would otherwise append to a torn line and fail later with an assertion."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    with open(path, "rb") as f:
        for number, line in enumerate(f, 1):
            try:
                ok = line.endswith(b"\n") and isinstance(json.loads(line), dict)
            except (ValueError, RecursionError):
                ok = False
            if not ok:
                raise UserError(f"journal file {path} is corrupt or not an optuna journal "
                                f"(line {number})")


def _redacted(url: str) -> str:
    """The URL as shown in messages: any password replaced by ***."""
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not (sep and at and ":" in creds):
        return url
    return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"


def _with_driver(url: str) -> str:
    """``postgresql://`` means psycopg (v3) to SQLAlchemy 2.1; the ``postgres`` extra installs
    psycopg2, so name it when psycopg is absent (an explicit ``+driver`` is kept)."""

    scheme, sep, rest = url.partition("://")
    if sep and scheme in ("postgresql", "postgres") and \
            importlib.util.find_spec("psycopg") is None and \
            importlib.util.find_spec("psycopg2") is not None:
        return f"postgresql+psycopg2://{rest}"
    return url


def _sampler(spec: StudySpec):
    """The spec's sampler, seeded per trial (bench/study_sampler.py)."""
    import optuna

    kind, seed = spec.sampler.get("type", "tpe"), spec.sampler.get("seed", 0)
    samplers = {"tpe": lambda s: optuna.samplers.TPESampler(seed=s, multivariate=True),
                "random": lambda s: optuna.samplers.RandomSampler(seed=s),
                "nsga2": lambda s: optuna.samplers.NSGAIISampler(seed=s)}
    if kind not in samplers:
        raise UserError(f"sampler {kind!r}: not one of {', '.join(samplers)}")
    return TrialSeededSampler(samplers[kind], seed)


def _pruner(spec: StudySpec):
    import optuna

    kind = spec.pruner.get("type", "median")
    if kind == "none" or spec.multi:  # optuna prunes single-objective studies only
        return optuna.pruners.NopPruner()
    if kind != "median":
        raise UserError(f"pruner {kind!r}: not one of median, none")
    return optuna.pruners.MedianPruner(n_startup_trials=spec.pruner.get("n_startup_trials", 2),
                                       n_warmup_steps=spec.pruner.get("n_warmup_steps", 1))


def make_objective(spec: StudySpec, out_dir: Path, run_trial=None):
    """The optuna objective: suggest, train and evaluate, report per-epoch accuracy."""
    import optuna

    def objective(trial: optuna.Trial):
        overrides, train = suggest(trial, spec)
        trial.set_user_attr("overrides", overrides)

        def on_eval(epoch: int, metrics: dict) -> None:
            if spec.multi or VAL_ACC not in metrics:
                return
            trial.report(metrics[VAL_ACC], epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"val_vqa_acc {metrics['val_vqa_acc']:.2f} at epoch "
                                         f"{epoch} below the median of earlier trials")

        try:
            result = (run_trial or _run_trial)(spec, overrides, train, out_dir / "trials" /
                                               f"{trial.number:04d}", on_eval)
            for key in (GFLOPS, PARAMS_TRAINABLE, VAL_ACC, TEST_ACC):
                if key in result:
                    trial.set_user_attr(key, result[key])
            return objective_values(result, spec)
        except (TrainingDiverged, RuntimeError) as e:  # failed trial; the study goes on
            trial.set_user_attr("fail_reason", (str(e).strip().splitlines() or [repr(e)])[0][:300])
            raise

    return objective


def _run_trial(spec: StudySpec, overrides: dict, train: dict, run_dir: Path, on_eval
               ) -> dict[str, Any]:
    """Train and evaluate one trial (validation only: the test split stays unseen), with
    the meta-device cost figures, as a sweep point is (``profile_and_train``)."""

    run = prepare(ModelSpec(spec.strategy, spec.preset, overrides), spec.data)
    recipe = preset_recipe(spec.preset, trains_from_pixels(run.model))
    cfg = TrainConfig.from_mapping({"progress": False, **over_recipe(recipe, train)})
    return profile_and_train(run, cfg, run_dir, {"measure": "never"}, on_eval=on_eval,
                             eval_test=False)


def _should_start(study, target: int) -> bool:
    """Start a trial when one waits (a retry) or when the finished trials plus those other
    workers are running fall short of ``target``: several workers on one storage then stop
    at exactly ``target`` (up to a race of milliseconds between two workers' checks).
    Running trials count only with a heartbeat, which fails those of killed workers."""
    import optuna
    from optuna.trial import TrialState

    running = 0
    if getattr(study._storage, "get_heartbeat_interval", lambda: None)() is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)  # dead workers' trials: failed, retried
        running = _count(study, TrialState.RUNNING)
    return _count(study, TrialState.WAITING) > 0 or finished(study) + running < target


def _report(study, trial) -> None:
    """One line per failed trial, with its reason (the study goes on)."""
    if trial.state.name == "FAIL":
        reason = trial.user_attrs.get("fail_reason", "see trials.csv")
        print(f"trial {trial.number} failed: {reason}; the study goes on", file=sys.stderr)


def finished(study) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,
                                                        TrialState.PRUNED)))


def _count(study, state) -> int:
    return len(study.get_trials(deepcopy=False, states=(state,)))


def run_study(spec: StudySpec, out_dir: Path, storage_url: str | None = None,
              n_trials: int | None = None, fail_running: bool = False, run_trial=None):
    """Create or resume the study and run trials until ``n_trials`` have finished."""
    import optuna

    # optuna logs a failed trial with its traceback; we print one line (_report) instead
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    with output_lock(out_dir, "study directory"):  # one worker per --out (trials, plots)
        return _run_locked(spec, out_dir, storage_url, n_trials, fail_running, run_trial)


def _run_locked(spec: StudySpec, out_dir: Path, storage_url, n_trials, fail_running,
                run_trial):
    import optuna
    from optuna.trial import TrialState

    storage = open_storage(storage_url, out_dir, spec.heartbeat)
    directions = [d for _, d in spec.objectives]
    study = optuna.create_study(study_name=spec.name, storage=storage, directions=directions,
                                sampler=_sampler(spec), pruner=_pruner(spec),
                                load_if_exists=True)
    if study.directions != [optuna.study.StudyDirection[d.upper()] for d in directions]:
        raise UserError(f"study {spec.name!r} exists in this storage with other objectives")
    _check_search_space(study, spec, storage_url, out_dir)
    if fail_running:  # journal storage has no heartbeat: release trials of killed workers
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
            study.enqueue_trial(t.params)
    target = n_trials or spec.n_trials
    objective = make_objective(spec, out_dir, run_trial)
    failed_before = _count(study, TrialState.FAIL)
    # failed trials do not count towards the target; give up after as many failures
    while finished(study) < target and \
            _count(study, TrialState.FAIL) - failed_before < max(3, target):
        if not _should_start(study, target):
            time.sleep(1.0)  # other workers' trials reach the target unless they fail
            continue
        study.optimize(objective, n_trials=1, catch=(TrainingDiverged, RuntimeError),
                       callbacks=[_report], gc_after_trial=True)
    write_outputs(study, spec, out_dir)
    return study


def _check_search_space(study, spec: StudySpec, storage_url: str | None,
                        out_dir: Path) -> None:
    """A resumed study's trials fix each key's distribution: optuna refuses another kind,
    log scale or categorical choices mid-trial (a traceback, and a failed trial stored), so
    refuse the changed spec before any trial runs. Moved int/float bounds are allowed."""
    from optuna.distributions import check_distribution_compatibility

    new = distributions(spec)
    for trial in study.get_trials(deepcopy=False):
        for key, old in trial.distributions.items():
            if key not in new:  # a key dropped from the space: optuna does not mind
                continue
            try:
                check_distribution_compatibility(old, new[key])
            except ValueError:
                raise UserError(
                    f"study {spec.name!r} was run with another search space ({key}: {old} "
                    f"in the storage, {new[key]} in the spec); give the spec a new name, or "
                    f"{_start_over(storage_url, out_dir, spec.name)}") from None


def _start_over(url: str | None, out_dir: Path, name: str) -> str:
    """How to drop a stored study: delete its file (the default SQLite, a journal), or
    delete the study from a database."""
    if url is None:
        return f"delete {out_dir / 'study.db'} to start over"
    if url.startswith("journal:"):
        return f"delete {url[len('journal:'):]} to start over"
    return f"delete study {name!r} from {_redacted(url)} (optuna delete-study) to start over"


def write_outputs(study, spec: StudySpec, out_dir: Path) -> None:
    """trials.csv and PNG plots (history, Pareto front or intermediate values, importances)."""
    frame = study.trials_dataframe(attrs=("number", "state", "values", "params", "user_attrs",
                                          "duration", "datetime_start"))
    atomic_write(out_dir / "trials.csv", lambda tmp: frame.to_csv(tmp, index=False))

    study_plots(study, [m for m, _ in spec.objectives], out_dir)
