"""Reading sweep and study specs: size-limited YAML, alias expansion bounds, key checks.

(Command-line overrides, ``--set key=value``, are parsed in ``bench.cli.common``.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import UserError

MAX_SPEC_BYTES = 1 << 20  # a sweep or study spec is a few hundred bytes
MAX_SPEC_VALUES = 100_000  # scalars and containers after alias expansion


def _key_given_twice(text: str) -> tuple[str, int] | None:
    """The first key that a mapping of the YAML ``text`` gives twice, with its line (safe_load
    keeps the last silently: `name: a` then `name: b` ran sweep b). Read from the composed
    node graph, which builds no objects; an aliased node is visited once."""
    import yaml

    stack, visited = [yaml.compose(text, Loader=yaml.SafeLoader)], set()
    while stack:
        node = stack.pop()
        if node is None or id(node) in visited:
            continue
        visited.add(id(node))
        if isinstance(node, yaml.MappingNode):
            keys = set()
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    if (key.tag, key.value) in keys:
                        return key.value, key.start_mark.line + 1
                    keys.add((key.tag, key.value))
                stack += [key, value]
        elif isinstance(node, yaml.SequenceNode):
            stack += node.value
    return None


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
        text = path.read_text()
        raw = yaml.safe_load(text)
        twice = _key_given_twice(text)
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        mark, problem = getattr(e, "problem_mark", None), getattr(e, "problem", None)
        where = f" (line {mark.line + 1}{': ' + problem[:80] if problem else ''})" if mark \
            else ""
        raise UserError(f"{path}: not valid YAML{where}") from None
    except RecursionError:
        raise UserError(f"{path}: nested too deeply") from None
    if twice:
        raise UserError(f"{path}: not valid YAML (line {twice[1]}: key {twice[0]!r} is given "
                        "twice)")
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
