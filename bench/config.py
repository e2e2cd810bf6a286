"""Turning command-line and YAML input into config overrides.

``--set key=value`` (repeatable) and named shortcuts (``--image-size``) become one dict of
overrides; values stay strings here and are typed and validated by the strategy's config
dataclass (``variants.config.apply_overrides``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
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


def read_spec_yaml(path: str | Path, kind: str) -> tuple[Any, Path]:
    """A spec file's YAML (``yaml.safe_load``), or one UserError naming the file and line."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{kind} spec not found: {path}")
    try:
        return yaml.safe_load(path.read_text()), path
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise UserError(f"{path}: not valid YAML{where}") from None


def check_keys(raw: Any, valid: set[str], where: str, what: str) -> None:
    """``raw`` is a mapping whose keys are all in ``valid``."""
    if not isinstance(raw, dict):
        raise UserError(f"{where}: {what}")
    unknown = sorted(set(raw) - valid)
    if unknown:
        raise UserError(f"{where}: unknown key(s) {', '.join(unknown)}; "
                        f"valid: {', '.join(sorted(valid))}")
