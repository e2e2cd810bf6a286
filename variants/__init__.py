"""Fusion strategies: a registry of builders, one module per strategy (``registry.py``).

Importing the package is cheap (no torch): the strategy modules are imported, and so
registered, on the first registry lookup, and the names below resolve on first use.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

_EXPORTS = {
    "Batch": "interface", "FusionModel": "interface", "Output": "interface",
    "build": "registry", "create": "registry", "get_preset": "registry",
    "get_strategy": "registry", "list_presets": "registry", "list_strategies": "registry",
    "register_preset": "registry", "register_strategy": "registry",
    "resolve_config": "registry",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """PEP 562 lazy attribute: ``variants.create`` imports ``variants.registry`` then."""
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    if importlib.util.find_spec(f"{__name__}.{name}") is not None:  # variants.registry
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
