"""Optuna studies from YAML: search space, objectives, pruning, resumable storage.

Spec (``sweeps/study_*.yaml``)::

    name: jar_tiny_tokens              # the optuna study name; resumes by name
    strategy: jar
    preset: tiny
    set: {}                            # fixed config overrides
    objectives:                        # one = single-objective (pruning on); two+ = Pareto
      - {metric: val_vqa_acc, direction: maximize}
      - {metric: gflops, direction: minimize}
    search_space:                      # config keys, or train.<key> for training settings
      num_tokens: {type: categorical, choices: [4, 8, 16]}
      train.lr: {type: float, low: 1.0e-4, high: 3.0e-3, log: true}
    train: {epochs: 3, batch_size: 64}
    n_trials: 12                       # total finished trials wanted (COMPLETE + PRUNED)
    sampler: {type: tpe, seed: 0}      # tpe | random | nsga2
    pruner: {type: median, n_startup_trials: 2, n_warmup_steps: 1}   # median | none
    heartbeat: {interval: 10, grace_period: 30}

Storage: a SQLite file under the output directory by default; any optuna RDB URL
(``postgresql://user@host/db`` for many workers) or ``journal:PATH`` works the same.
A trial killed mid-run is found stale by the RDB heartbeat and retried; a trial whose
loss diverges fails with its reason and the study goes on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import variants
from variants.config import coerce, field_type

from .config import check_keys, read_spec_yaml
from .errors import UserError
from .row import GFLOPS, PARAMS_TOTAL, PARAMS_TRAINABLE, VAL_ACC, VAL_EXACT
from .train_config import TrainConfig
from .validate import MAX_SEED, short

MAX_TRIALS = 100_000

METRICS = {VAL_ACC: "maximize", VAL_EXACT: "maximize", GFLOPS: "minimize",
           PARAMS_TRAINABLE: "minimize", PARAMS_TOTAL: "minimize"}
TOP_KEYS = {"name", "description", "strategy", "preset", "set", "objectives", "search_space",
            "train", "n_trials", "sampler", "pruner", "heartbeat", "data"}
DIST_KEYS = {"categorical": {"type", "choices"}, "int": {"type", "low", "high", "step", "log"},
             "float": {"type", "low", "high", "step", "log"}}


# option block -> (valid types, its integer fields: each >= 1, or >= 0 for seeds/steps)
OPTIONS = {"sampler": (("tpe", "random", "nsga2"), {"seed": 0}),
           "pruner": (("median", "none"), {"n_startup_trials": 0, "n_warmup_steps": 0}),
           "heartbeat": ((), {"interval": 1, "grace_period": 1})}


@dataclass
class StudySpec:
    name: str
    strategy: str
    preset: str | None
    fixed: dict[str, Any]
    objectives: list[tuple[str, str]]
    space: dict[str, dict[str, Any]]
    train: dict[str, Any]
    n_trials: int
    sampler: dict[str, Any] = field(default_factory=dict)
    pruner: dict[str, Any] = field(default_factory=dict)
    heartbeat: dict[str, int] = field(default_factory=dict)
    data: str | None = None

    @property
    def multi(self) -> bool:
        return len(self.objectives) > 1


def load_study_spec(path: str | Path) -> StudySpec:
    raw, path = read_spec_yaml(path, "study")
    return parse_study_spec(raw, str(path))


def parse_study_spec(raw: Any, where: str = "study") -> StudySpec:
    check_keys(raw, TOP_KEYS, where, "a study spec must be a mapping")
    for key in ("name", "strategy"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise UserError(f"{where}: '{key}' must be a non-empty string")
    if "/" in raw["name"] or "\\" in raw["name"] or raw["name"] in (".", ".."):
        raise UserError(f"{where}: 'name' must not contain '/' or be '.' or '..' (it names "
                        "the default output directory)")
    objectives = []
    for obj in raw.get("objectives") or [{"metric": VAL_ACC}]:
        metric = obj.get("metric") if isinstance(obj, dict) else None
        if metric not in METRICS:
            raise UserError(f"{where}: objective metric {metric!r}: not one of "
                            f"{', '.join(METRICS)}")
        direction = obj.get("direction", METRICS[metric])
        if direction not in ("maximize", "minimize"):
            raise UserError(f"{where}: direction {direction!r}: not maximize or minimize")
        objectives.append((metric, direction))
    space = raw.get("search_space")
    if not isinstance(space, dict) or not space:
        raise UserError(f"{where}: 'search_space' must be a non-empty mapping")
    train = raw.get("train") or {}
    _check_space(space, train, where)
    n_trials = raw.get("n_trials", 10)
    if not isinstance(n_trials, int) or isinstance(n_trials, bool) or \
            not 1 <= n_trials <= MAX_TRIALS:
        raise UserError(f"{where}: n_trials must be a positive integer <= {MAX_TRIALS}")
    for key, (types, numbers) in OPTIONS.items():
        _check_options(raw.get(key), key, types, numbers, where)
    if raw.get("data") is not None and not Path(str(raw["data"])).is_dir():
        raise UserError(f"{where}: data directory not found: {raw['data']}")
    spec = StudySpec(raw["name"], raw["strategy"], raw.get("preset"), raw.get("set") or {},
                     objectives, space, train, n_trials, raw.get("sampler") or {},
                     raw.get("pruner") or {}, raw.get("heartbeat") or {}, raw.get("data"))
    # validate one corner of the space against the strategy's config now, not mid-study
    point = corner(space)
    TrainConfig.from_mapping({**train, **{k[6:]: v for k, v in point.items()
                                          if k.startswith("train.")}}, where)
    try:
        variants.resolve_config(spec.strategy, spec.preset,
                                {**spec.fixed, **{k: v for k, v in point.items()
                                                  if not k.startswith("train.")}})
    except UserError as e:
        raise UserError(f"{where}: {e}") from None
    _check_value_types(spec, where)
    try:  # optuna's own rules too (a log range needs low > 0 and step 1), not mid-study
        distributions(spec)
    except ValueError as e:
        raise UserError(f"{where}: search space: {e}") from None
    return spec


def corner(space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One point of the search space: each key's first choice or the low end of its range."""
    return {k: (v["choices"][0] if v["type"] == "categorical" else v["low"])
            for k, v in space.items()}


def _check_value_types(spec: StudySpec, where: str) -> None:
    """Every value a search key can take has its field's type: each categorical choice and
    both ends of a range pass the field's own check, and a float range (it draws fractions)
    is refused for a field that is not a float. Found now, not in some trial after the
    storage holds failed ones (the corner alone passes ``width: {type: float, low: 8}``)."""
    config = variants.get_strategy(spec.strategy).config_cls
    for key, dist in spec.space.items():
        cls, name = (TrainConfig, key[6:]) if key.startswith("train.") else (config, key)
        typ = field_type(cls, name)
        if dist["type"] == "float" and typ is not float:
            raise UserError(f"{where}: search key {key!r}: a float range draws fractions but "
                            f"{name} takes {getattr(typ, '__name__', typ)}; use type int or "
                            "categorical")
        for value in dist["choices"] if dist["type"] == "categorical" else \
                (dist["low"], dist["high"]):
            try:
                coerce(cls, name, value)
            except UserError as e:
                raise UserError(f"{where}: search key {key!r}: {e}") from None


def distributions(spec: StudySpec) -> dict[str, Any]:
    """The optuna distribution of each search key, exactly as ``suggest`` asks for it (it
    runs on a FixedTrial at the space's corner, which records them)."""
    import optuna

    probe = optuna.trial.FixedTrial(corner(spec.space))
    suggest(probe, spec)
    return probe.distributions


def _check_options(block: Any, key: str, types: tuple, numbers: dict[str, int],
                   where: str) -> None:
    """sampler / pruner / heartbeat: a mapping of known fields with valid values."""
    if block is None:
        return
    fields_ = ({"type"} if types else set()) | set(numbers)
    if not isinstance(block, dict) or set(block) - fields_:
        raise UserError(f"{where}: '{key}' must be a mapping with fields "
                        f"{', '.join(sorted(fields_))}")
    if types and block.get("type", types[0]) not in types:
        raise UserError(f"{where}: {key} type {block['type']!r}: not one of "
                        f"{', '.join(types)}")
    for name, low in numbers.items():
        value = block.get(name, low)
        if not isinstance(value, int) or isinstance(value, bool) or value < low or \
                value > MAX_SEED:
            raise UserError(f"{where}: {key}.{name}={short(value)}: expected an integer "
                            f">= {low} (and <= {MAX_SEED})")


def _check_space(space: dict, train: dict, where: str) -> None:
    if not isinstance(train, dict):
        raise UserError(f"{where}: 'train' must be a mapping")
    train_keys = {f.name for f in fields(TrainConfig)}
    TrainConfig.from_mapping(train, where)
    for key, dist in space.items():
        if key.startswith("train.") and key[6:] not in train_keys:
            raise UserError(f"{where}: search key {key!r}: valid train keys are "
                            f"{', '.join(sorted(train_keys))}")
        kind = dist.get("type") if isinstance(dist, dict) else None
        if kind not in DIST_KEYS:
            raise UserError(f"{where}: search key {key!r}: type must be one of "
                            f"{', '.join(DIST_KEYS)}")
        extra = sorted(set(dist) - DIST_KEYS[kind])
        if extra:
            raise UserError(f"{where}: search key {key!r}: unknown field(s) {', '.join(extra)}")
        if kind == "categorical":
            if not isinstance(dist.get("choices"), list) or not dist["choices"]:
                raise UserError(f"{where}: search key {key!r}: choices must be a non-empty list")
        elif not all(isinstance(dist.get(b), (int, float)) and not isinstance(dist[b], bool)
                     and math.isfinite(dist[b]) for b in ("low", "high")) or \
                dist["low"] > dist["high"]:
            raise UserError(f"{where}: search key {key!r}: needs finite numeric low <= high")


def suggest(trial, spec: StudySpec) -> tuple[dict[str, Any], dict[str, Any]]:
    """Sample (config overrides, train overrides) for one trial."""
    overrides, train = dict(spec.fixed), dict(spec.train)
    for key, dist in spec.space.items():
        kind = dist["type"]
        if kind == "categorical":
            value = trial.suggest_categorical(key, dist["choices"])
        elif kind == "int":
            value = trial.suggest_int(key, dist["low"], dist["high"], step=dist.get("step", 1),
                                      log=dist.get("log", False))
        else:
            value = trial.suggest_float(key, dist["low"], dist["high"], step=dist.get("step"),
                                        log=dist.get("log", False))
        (train if key.startswith("train.") else overrides)[key.removeprefix("train.")] = value
    return overrides, train


def objective_values(result: dict[str, Any], spec: StudySpec) -> list[float]:
    values = []
    for metric, _ in spec.objectives:
        value = result.get(metric)
        if value is None or not math.isfinite(float(value)):
            raise RuntimeError(f"objective {metric} missing or not finite: {value}")
        values.append(float(value))
    return values
