"""Reading sweep and study specs: size-limited YAML, alias expansion bounds, key checks.

(Command-line overrides, ``--set key=value``, are parsed in ``bench.cli.common``.)
"""

from __future__ import annotations

import collections.abc
import functools
from pathlib import Path
from typing import Any

from .errors import UserError

MAX_SPEC_BYTES = 1 << 20  # a sweep or study spec is a few hundred bytes
MAX_SPEC_VALUES = 100_000  # scalars and containers after alias expansion


@functools.cache
def _unique_key_loader() -> type:
    """``yaml.safe_load``'s loader, but a key given twice in one mapping is an error (the
    safe loader keeps the last silently: `name: a` then `name: b` ran sweep b)."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            keys = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                if not isinstance(key, collections.abc.Hashable):
                    continue  # the safe loader's own error names it
                if key in keys:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {key!r} is given twice", key_node.start_mark)
                keys.add(key)
            return super().construct_mapping(node, deep)

    return UniqueKeyLoader


def read_spec_yaml(path: str | Path, kind: str) -> tuple[Any, Path]:
    """A spec file's YAML (``yaml.safe_load``), or one UserError naming the file and line."""
    import yaml

    path = Path(path)
    if path.is_dir():
        raise UserError(f"{kind} spec {path} is a directory; give a YAML file in it")
    if not path.is_file():
        raise UserError(f"{kind} spec not found: {path}")
    if path.stat().st_size > MAX_SPEC_BYTES:
        raise UserError(f"{path}: {path.stat().st_size} bytes; a spec is at most "
                        f"{MAX_SPEC_BYTES} bytes")
    try:
        raw = yaml.load(path.read_text(), Loader=_unique_key_loader())  # noqa: S506 (safe)
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        mark, problem = getattr(e, "problem_mark", None), getattr(e, "problem", None)
        where = f" (line {mark.line + 1}{': ' + problem[:80] if problem else ''})" if mark \
            else ""
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
