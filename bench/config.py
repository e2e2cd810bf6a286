"""Turning command-line and YAML input into config overrides.

``--set key=value`` (repeatable) and named shortcuts (``--image-size``) become one dict of
overrides; values stay strings here and are typed and validated by the strategy's config
dataclass (``variants.config.apply_overrides``).
"""

from __future__ import annotations

import argparse
from typing import Any

from .errors import UserError


def parse_sets(items: list[str] | None) -> dict[str, str]:
    """``["depth=12", "gating=off"]`` -> ``{"depth": "12", "gating": "off"}``."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set {item!r}: expected KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


def add_model_args(parser: argparse.ArgumentParser, *, strategy: bool = True) -> None:
    """The arguments every model-building command shares."""
    if strategy:
        parser.add_argument("strategy", help="registered strategy name (see `fusebench list`)")
    parser.add_argument("--preset", help="named config bundle (see `fusebench list --presets`)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", default=[],
                        help="override a config key (repeatable; `fusebench describe` lists keys)")
    parser.add_argument("--image-size", type=int, help="shortcut for --set image_size=N")


def model_overrides(args: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, Any] = parse_sets(getattr(args, "set", None))
    if getattr(args, "image_size", None) is not None:
        overrides["image_size"] = args.image_size
    return overrides
