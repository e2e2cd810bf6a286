"""Declarative sweeps: a YAML grid of configs, each point profiled (and optionally trained).

Spec (``sweeps/*.yaml``, read with ``yaml.safe_load``)::

    name: flops_scaling            # required; results go to runs/sweeps/<name>/
    description: ...
    mode: profile                  # profile | train (train = profile + train + evaluate)
    preset: jar-base               # default preset for every point
    set: {heads: 12}               # overrides applied to every point
    grids:                         # union of cartesian products (or one `grid:`)
      - {strategy: [concat, jar], image_size: [224, 320, 448]}
    seeds: [0]
    profile: {batch_size: 1, repeats: 3, measure: never}
    train: {epochs: 3, batch_size: 64, lr: 1e-3}
    data: data/synthvqa            # train mode only; default: the built-in data

Grid keys ``strategy``, ``preset`` and ``seed`` choose the point; every other key is a
config override validated against that strategy before anything runs. A rerun skips points
whose ``point_id`` is already in the results (so it completes what is missing). Running
a spec: ``bench.sweep_run``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import variants

from . import validate
from .config import check_keys, read_spec_yaml
from .errors import UserError
from .experiment import preset_backbones, trains_from_pixels, with_pixel_settings
from .profiling import ProfileSpec, check_profile_spec
from .spec import ModelSpec
from .store import point_id
from .train_config import TrainConfig, over_recipe, preset_recipe

TOP_KEYS = {"name", "description", "mode", "preset", "set", "grid", "grids", "seeds",
            "profile", "train", "data", "strategy"}
PROFILE_KEYS = {"batch_size", "repeats", "warmup", "measure", "max_params", "device"}
POINT_KEYS = {"strategy", "preset", "seed"}


@dataclass
class Point:
    strategy: str
    preset: str | None
    overrides: dict[str, Any]
    seed: int
    varied: dict[str, Any] = field(default_factory=dict)  # the grid values of this point


@dataclass
class SweepSpec:
    name: str
    description: str
    mode: str
    points: list[Point]
    profile: dict[str, Any]
    train: dict[str, Any]
    data: str | None
    path: Path | None = None

    def key(self, point: Point) -> str:
        """The point's identity: its *resolved* config (so an edited preset or default is a
        new point, never a stale skip), seed, and how it is measured and trained."""

        cfg = self.trained_model(point).config()
        spec = {"mode": self.mode, "strategy": point.strategy, "config": asdict(cfg),
                "seed": point.seed, "profile": self.profile}
        if self.mode == "train":
            spec.update(train=self.recipe(point), data=self.data)
        return point_id(spec)

    def preset_backbones(self, point: Point) -> dict[str, Any]:
        """The preset's pretrained backbones that this sweep's data gets
        (``bench.experiment.preset_backbones``), as ``prepare`` applies them to a trained
        point: part of what the point is."""
        if self.mode != "train":
            return {}
        return preset_backbones(point.preset, None if self.data is None else Path(self.data))

    def trained_model(self, point: Point) -> ModelSpec:
        """The point's model as ``prepare`` makes it before the data's own values: with its
        preset's backbones (``preset_backbones``) and, for an image encoder trained from
        raw pixels, its ``from_pixels`` keys."""
        model = ModelSpec(point.strategy, point.preset,
                          {**self.preset_backbones(point), **point.overrides})
        return with_pixel_settings(model) if self.mode == "train" else model

    def recipe(self, point: Point) -> dict[str, Any]:
        """The point's training values: its preset's recipe (from raw pixels, its
        ``from_pixels_train`` too) under the spec's ``train:``."""
        pixels = self.mode == "train" and trains_from_pixels(self.trained_model(point))
        return over_recipe(preset_recipe(point.preset, pixels), self.train)


def load_spec(path: str | Path) -> SweepSpec:
    raw, path = read_spec_yaml(path, "sweep")
    spec = parse_spec(raw, str(path))
    spec.path = path
    return spec


def parse_spec(raw: Any, where: str = "sweep") -> SweepSpec:
    """Validate a spec dict; every problem is one UserError naming the key and the fix."""
    check_keys(raw, TOP_KEYS, where, "a sweep spec must be a mapping with name and grid(s)")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip() or "/" in name or "\\" in name or \
            name in (".", ".."):
        raise UserError(f"{where}: 'name' must be a non-empty string without '/' (and not "
                        "'.' or '..')")
    mode = raw.get("mode", "profile")
    if mode not in ("profile", "train"):
        raise UserError(f"{where}: mode={mode!r}: not one of profile, train")
    grids = _grids(raw, where)
    seeds = raw.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or \
            not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise UserError(f"{where}: 'seeds' must be a non-empty list of integers")
    for s in seeds:
        _in(where, validate.seed, "seeds", s)
    if not isinstance(raw.get("description", ""), str):
        raise UserError(f"{where}: 'description' must be a string")
    profile = _mapping(raw, "profile", where)
    bad = sorted(set(profile) - PROFILE_KEYS)
    if bad:
        raise UserError(f"{where}: unknown profile key(s) {', '.join(bad)}; "
                        f"valid: {', '.join(sorted(PROFILE_KEYS))}")
    _in(where, _check_profile, profile)
    _check_grid_size(grids, len(seeds), where)
    train = _mapping(raw, "train", where)
    _check_train_keys(train, where)
    if mode == "train" and raw.get("data") is not None and not Path(str(raw["data"])).is_dir():
        raise UserError(f"{where}: data directory not found: {raw['data']}")
    base = {k: v for k, v in _mapping(raw, "set", where).items()}
    points = _expand(grids, base, raw.get("preset"), raw.get("strategy"), seeds, where)
    return SweepSpec(name, str(raw.get("description", "")), mode, points, profile, train,
                     raw.get("data"))


def _in(where: str, check, *args) -> None:
    """Run ``check(*args)``, prefixing its ``UserError`` with the spec's path."""
    try:
        check(*args)
    except UserError as e:
        raise UserError(f"{where}: {e}") from None


def _check_profile(profile: dict) -> None:
    defaults = {"batch_size": 1, "repeats": 5, "warmup": 1}  # as _run_point uses them
    check_profile_spec(ProfileSpec(ModelSpec(""), **{**defaults, **profile}))


def _check_grid_size(grids: list[dict[str, list]], n_seeds: int, where: str) -> None:
    """A grid of millions of points is a typo that would run for ever: bounded up front."""
    total = n_seeds * sum(math.prod(len(v) for v in g.values()) for g in grids)
    if total > validate.MAX_GRID_POINTS:
        raise UserError(f"{where}: the grid has {total} points (with seeds), more than "
                        f"{validate.MAX_GRID_POINTS}; split the sweep")


def _mapping(raw: dict, key: str, where: str) -> dict:
    value = raw.get(key) or {}
    if not isinstance(value, dict):
        raise UserError(f"{where}: '{key}' must be a mapping")
    return value


def _grids(raw: dict, where: str) -> list[dict[str, list]]:
    if "grid" in raw and "grids" in raw:
        raise UserError(f"{where}: give either 'grid' or 'grids', not both")
    grids = raw.get("grids", [raw["grid"]] if "grid" in raw else None)
    if not isinstance(grids, list) or not grids:
        raise UserError(f"{where}: needs 'grid' (a mapping of key: [values]) or 'grids'")
    for i, grid in enumerate(grids):
        if not isinstance(grid, dict) or not grid:
            raise UserError(f"{where}: grid {i} must be a non-empty mapping of key: [values]")
        for key, values in grid.items():
            if not isinstance(values, list) or not values:
                raise UserError(f"{where}: grid {i} key {key!r} must be a non-empty list")
    return grids


def _check_train_keys(train: dict, where: str) -> None:
    TrainConfig.from_mapping(train, where)


def _expand(grids, base, preset, strategy, seeds, where) -> list[Point]:
    points, seen = [], set()
    for grid in grids:
        keys = list(grid)
        for combo in itertools.product(*(grid[k] for k in keys)):
            varied = dict(zip(keys, combo))
            for seed in seeds:
                point = _point(varied, base, preset, strategy, seed, where)
                ident = repr((point.strategy, point.preset, sorted(point.overrides.items()),
                              point.seed))
                if ident not in seen:
                    seen.add(ident)
                    points.append(point)
    return points


def _point(varied, base, preset, strategy, seed, where) -> Point:
    strategy = varied.get("strategy", strategy)
    if strategy is None:
        raise UserError(f"{where}: no strategy: put 'strategy' in the grid or at top level")
    preset = varied.get("preset", preset)
    seed = varied.get("seed", seed)
    overrides = {**base, **{k: v for k, v in varied.items() if k not in POINT_KEYS}}
    try:
        variants.resolve_config(strategy, preset, overrides)
    except UserError as e:
        raise UserError(f"{where}: point {validate.short(varied)}: {e}") from None
    return Point(strategy, preset, overrides, seed, varied)
