"""Strategy and preset registry: ``@register_strategy`` and ``create``, timm-style.

A strategy is a builder ``cfg -> FusionModel`` registered with its config dataclass, paper
reference and a one-line description; its family (``encoder-fusion`` or ``frozen-lm``) is
the config class's ``family``, declared once on each family's base config.
A preset is a named bundle of config overrides usable with any strategy of its family, with
the training recipe its models are measured to converge with.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .config import apply_overrides
from .errors import UserError

FAMILIES = ("encoder-fusion", "frozen-lm")


@dataclass(frozen=True)
class StrategyInfo:
    name: str
    family: str
    config_cls: type
    builder: Callable[[Any], Any]
    paper: str
    description: str


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    overrides: dict[str, Any]
    families: tuple[str, ...] = FAMILIES
    per_strategy: dict[str, dict[str, Any]] = field(default_factory=dict)
    # the training recipe this preset's models converge with (``bench``'s TrainConfig
    # fields): what ``fusebench train --preset``, sweeps and studies start from, under
    # their own flags and ``train:`` keys
    train: dict[str, Any] = field(default_factory=dict)
    # the backbones this preset's figures were measured with (``@pretrained``: on the
    # built-in data, pretrained on its scene annotations): applied on top of ``overrides``
    # when ``bench`` prepares a run, under the user's own keys. On other data only when
    # ``pretrained_on_any_data`` (made from that data's own training split: strategies that
    # need a frozen pretrained ViT and LM); otherwise the run says so and keeps
    # ``overrides``
    pretrained: dict[str, Any] = field(default_factory=dict)
    pretrained_on_any_data: bool = False
    # where the image encoder trains from raw pixels (no checkpoint, not frozen: on data the
    # ``pretrained`` backbones cannot come from, or by the user's choice): config keys and
    # recipe keys applied on top, under the user's own, when ``bench`` prepares a run
    from_pixels: dict[str, Any] = field(default_factory=dict)
    from_pixels_train: dict[str, Any] = field(default_factory=dict)


_STRATEGIES: dict[str, StrategyInfo] = {}
_PRESETS: dict[str, Preset] = {}
# the modules whose import registers the built-in strategies and presets; imported on the
# first lookup, so that ``import variants`` (and ``fusebench --help``) does not load torch
BUILTIN_MODULES = ("concat", "cotok", "cross_attn", "epalm", "epalm_baselines", "flamingo",
                   "jar", "late_fusion", "perceiver", "presets")


def load_builtin() -> None:
    """Register every built-in strategy and preset (idempotent)."""
    for name in BUILTIN_MODULES:
        importlib.import_module(f"{__package__}.{name}")


def register_strategy(name: str, *, config: type, paper: str, description: str):
    """Decorator registering ``builder(cfg) -> FusionModel`` under ``name``."""
    family = getattr(config, "family", None)
    if family not in FAMILIES:
        raise ValueError(f"{config.__name__}.family must be one of {FAMILIES}, not {family!r}")

    def wrap(builder: Callable[[Any], Any]) -> Callable[[Any], Any]:
        if name in _STRATEGIES:
            raise ValueError(f"strategy {name!r} registered twice")
        _STRATEGIES[name] = StrategyInfo(name, family, config, builder, paper, description)
        return builder

    return wrap


def register_preset(preset: Preset) -> Preset:
    _PRESETS[preset.name] = preset
    return preset


def list_strategies(family: str | None = None) -> list[StrategyInfo]:
    load_builtin()
    return [s for s in _STRATEGIES.values() if family is None or s.family == family]


def list_presets() -> list[Preset]:
    load_builtin()
    return list(_PRESETS.values())


def get_strategy(name: str) -> StrategyInfo:
    load_builtin()
    if name not in _STRATEGIES:
        raise UserError(f"unknown strategy {name!r}; valid: {', '.join(sorted(_STRATEGIES))}")
    return _STRATEGIES[name]


def get_preset(name: str) -> Preset:
    load_builtin()
    if name not in _PRESETS:
        raise UserError(f"unknown preset {name!r}; valid: {', '.join(sorted(_PRESETS))}")
    return _PRESETS[name]


def resolve_config(name: str, preset: str | None = None, overrides: dict | None = None) -> Any:
    """The validated config of strategy ``name``: defaults, then preset, then overrides."""
    info = get_strategy(name)
    cfg = info.config_cls()
    if preset:
        p = get_preset(preset)
        if info.family not in p.families:
            raise UserError(
                f"preset {preset!r} is for {'/'.join(p.families)} strategies, "
                f"{name!r} is {info.family}"
            )
        merged = {**p.overrides, **p.per_strategy.get(name, {})}
        cfg = apply_overrides(cfg, merged, strict=False)
    cfg = apply_overrides(cfg, overrides or {}, strict=True)
    return cfg


def build(name: str, cfg: Any):
    """Build strategy ``name`` from a resolved config (see ``resolve_config``); backbone
    checkpoints' config.json files are validated first (``check_backbone_paths``)."""
    from .backbones import check_backbone_paths  # noqa: PLC0415  (torch, timm: keep lookups light)

    check_backbone_paths(cfg)
    model = get_strategy(name).builder(cfg)
    model.cfg = cfg
    return model


def create(name: str, preset: str | None = None, **overrides: Any):
    """Build strategy ``name`` with ``preset`` and keyword ``overrides`` applied."""
    return build(name, resolve_config(name, preset, overrides))
