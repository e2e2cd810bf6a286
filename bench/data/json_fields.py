"""Typed fields of dataset JSON files: each problem (not JSON, not UTF-8, nested too
deep, a key missing, a value of the wrong type) is one ``UserError`` naming the file and
the record, never a traceback from deep inside a loader."""

from __future__ import annotations

import json
from pathlib import Path

from bench.errors import UserError

MAX_JSON_DEPTH = 64  # dataset files nest 4 levels; anything deeper is not a dataset


def read_json(path: Path):
    """A JSON file's value; not JSON, not UTF-8 or nested deeper than ``MAX_JSON_DEPTH`` is
    one ``UserError`` naming the file."""
    if not path.is_file():
        raise UserError(f"missing file: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            value = json.load(f, object_pairs_hook=_unique_keys)
    except _DuplicateKey as e:
        raise UserError(f"{path}: key {e.args[0]!r} appears twice in one object (JSON readers "
                        "keep only one of the two: the other record would vanish)") from None
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text") from None
    except RecursionError:
        raise UserError(f"{path}: JSON nested too deeply") from None
    _check_depth(value, path)
    return value


class _DuplicateKey(Exception):
    pass


def _unique_keys(pairs: list[tuple]) -> dict:
    """``json.load``'s object hook: a dict, refusing a key given twice (a GQA questions file
    keyed by question id would silently lose one of the two questions)."""
    value = dict(pairs)
    if len(value) != len(pairs):
        seen = set()
        raise _DuplicateKey(next(k for k, _ in pairs if k in seen or seen.add(k)))
    return value


def _check_depth(value, path: Path) -> None:
    """Level by level (a JSON value holds plain dicts and lists): the annotation files'
    ~800k nodes in a tenth of a second."""
    level, depth = [value] if type(value) in (dict, list) else [], 0
    while level:
        depth += 1
        if depth > MAX_JSON_DEPTH:
            raise UserError(f"{path}: JSON nested deeper than {MAX_JSON_DEPTH} levels")
        below = []
        for node in level:
            below += [c for c in (node.values() if type(node) is dict else node)
                      if type(c) is dict or type(c) is list]
        level = below


def required(obj, key: str, path: Path, where: str):
    if not isinstance(obj, dict) or key not in obj:
        raise UserError(f"{path}: {where} lacks key {key!r}")
    return obj[key]


def id_value(obj, key: str, path: Path, where: str) -> int | str:
    """An id field: an integer or a string (a list or a float cannot key anything)."""
    value = required(obj, key, path, where)
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise UserError(f"{path}: {where}: {key!r} must be an integer or a string, not "
                        f"{type(value).__name__}")
    return value


def text_value(obj, key: str, path: Path, where: str) -> str:
    """A text field: a string that is valid Unicode (no lone surrogates from ``\\ud800``)."""
    value = required(obj, key, path, where)
    if not isinstance(value, str):
        raise UserError(f"{path}: {where}: {key!r} must be a string, not "
                        f"{type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise UserError(f"{path}: {where}: {key!r} holds a lone surrogate (an unpaired "
                        "\\ud800-\\udfff escape), which is not text") from None
    return value


def optional_text(obj: dict, key: str, path: Path, where: str) -> str:
    """A text field a file may leave out ("" then)."""
    return text_value(obj, key, path, where) if key in obj else ""


def id_type_hint(key, keys) -> str:
    """Why an id is not found when it is there as the other type (the string "1", the
    integer 1): JSON keeps them apart, and so does the lookup."""
    other = str(key) if isinstance(key, int) else int(key) if str(key).isdigit() else None
    if other is None or other not in keys:
        return ""
    return f" (it is {type(key).__name__} here, {type(other).__name__} there)"


def answers_of(a, path: Path, qid) -> tuple[str, ...]:
    answers = required(a, "answers", path, f"annotation {qid}")
    if not isinstance(answers, list) or not answers:
        raise UserError(f"{path}: annotation {qid}: 'answers' must be a non-empty list")
    return tuple(text_value(x, "answer", path, f"an answer of question {qid}") for x in answers)


def list_value(value, path: Path, key: str) -> list:
    if not isinstance(value, list):
        raise UserError(f"{path}: {key!r} must be a list, not {type(value).__name__}")
    return value
