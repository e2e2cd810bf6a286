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

MAX_SPEC_BYTES = 1 << 20  # a sweep or study spec is a few hundred bytes
MAX_SPEC_VALUES = 100_000  # scalars and containers after alias expansion


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
    if path.stat().st_size > MAX_SPEC_BYTES:
        raise UserError(f"{path}: {path.stat().st_size} bytes; a spec is at most "
                        f"{MAX_SPEC_BYTES} bytes")
    try:
        raw = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise UserError(f"{path}: not valid YAML{where}") from None
    except RecursionError:
        raise UserError(f"{path}: nested too deeply") from None
    check_expansion(raw, str(path))
    return raw, path


def check_expansion(raw: Any, where: str, limit: int = MAX_SPEC_VALUES) -> None:
    """``UserError`` when ``raw`` holds more than ``limit`` values once YAML aliases are
    expanded (a "billion laughs": ``safe_load`` shares aliased nodes, but anything that
    walks or prints them expands them) or refers to itself. Counted without expanding."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Any, bool]] = [(raw, False)]
    while stack:
        node, done = stack.pop()
        if not isinstance(node, (dict, list)):
            continue
        key = id(node)
        children = [*node.keys(), *node.values()] if isinstance(node, dict) else node
        if done:
            on_path.discard(key)
            sizes[key] = 1 + sum(sizes.get(id(c), 1) for c in children)
            if sizes[key] > limit:
                raise UserError(f"{where}: more than {limit} values once YAML aliases are "
                                "expanded; write the spec out without anchors and aliases")
            continue
        if key in on_path:
            raise UserError(f"{where}: a YAML alias refers to its own anchor (a cycle)")
        if key in sizes:
            continue
        on_path.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in children if isinstance(c, (dict, list)))


def check_keys(raw: Any, valid: set[str], where: str, what: str) -> None:
    """``raw`` is a mapping whose keys are all in ``valid``."""
    if not isinstance(raw, dict):
        raise UserError(f"{where}: {what}")
    unknown = sorted(set(raw) - valid)
    if unknown:
        raise UserError(f"{where}: unknown key(s) {', '.join(unknown)}; "
                        f"valid: {', '.join(sorted(valid))}")
