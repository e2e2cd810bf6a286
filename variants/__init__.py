"""Fusion strategies. Importing this package registers every strategy and preset."""

from . import concat, epalm, epalm_baselines, presets  # noqa: F401  (registration)
from .interface import Batch, FusionModel, Output
from .registry import (
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
    "Batch", "FusionModel", "Output", "create", "get_preset", "get_strategy", "list_presets",
    "list_strategies", "register_preset", "register_strategy", "resolve_config",
]
