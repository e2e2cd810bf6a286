"""Fusion strategies. Importing this package registers every strategy and preset."""

from . import (  # noqa: F401  (registration side effects)
    concat,
    cotok,
    cross_attn,
    epalm,
    epalm_baselines,
    flamingo,
    jar,
    late_fusion,
    perceiver,
    presets,
)
from .interface import Batch, FusionModel, Output
from .registry import (
    build,
    create,
    get_preset,
    get_strategy,
    list_presets,
    list_strategies,
    register_preset,
    register_strategy,
    resolve_config,
)

__all__ = [
    "Batch", "FusionModel", "Output", "build", "create", "get_preset", "get_strategy",
    "list_presets", "list_strategies", "register_preset", "register_strategy", "resolve_config",
]
