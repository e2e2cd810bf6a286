"""Question families for synthvqa, each answerable only from the image *and* the text.

A question is a small program (``{"template": ..., args}``) stored in scenes.json; ``answer``
runs it on a scene and ``text`` words it. Samplers pick the target answer first (yes/no
50/50, counts uniform over the values the scene allows) and then a program that has it, so
the question text alone predicts the answer as little as possible.

Families: existence, counting, attribute query (colour/shape/size of a uniquely described
object), spatial (relation yes/no, or the attribute of the left-/right-/top-/bottom-most
object) and comparison (more X than Y? same colour/shape/size?). The longest question is
14 word/punctuation tokens, so text_len 16 holds it with [CLS]/[SEP] (or <s>/</a>).
"""

from __future__ import annotations

import itertools
import random

from .scenes import ATTRS, VALUES, all_descs, count, describe, structures, unique_descs

FAMILIES = ("existence", "counting", "attribute", "spatial", "comparison")
SPATIAL_MARGIN = 0.1  # centres must differ by this fraction of the image side
_REL_WORDS = {"left": "to the left of", "right": "to the right of", "above": "above",
              "below": "below"}
_EXTREMES = {"leftmost": ("x", min), "rightmost": ("x", max), "topmost": ("y", min),
             "bottommost": ("y", max)}
# template -> (question_type prefix, answer kind); kinds drive the annotators' variation.
TEMPLATES = {
    "exist": ("is there", "yes/no"), "count": ("how many", "number"),
    "attribute": ("what", "attribute"), "relation": ("is the", "yes/no"),
    "extreme": ("what", "attribute"), "more": ("are there more", "yes/no"),
    "same": ("are the", "yes/no"),
}


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def the(objects: list[dict], desc: dict) -> dict:
    """The single object matching ``desc`` (programs only use unique descriptions)."""
    found = [o for o in objects if all(o[k] == v for k, v in desc.items())]
    if len(found) != 1:
        raise ValueError(f"description {desc} matches {len(found)} objects, not 1")
    return found[0]


def extreme(objects: list[dict], direction: str) -> dict:
    axis, pick = _EXTREMES[direction]
    return pick(objects, key=lambda o: o[axis])


def answer(program: dict, objects: list[dict]) -> str:
    """The canonical answer of ``program`` on a scene's objects."""
    t = program["template"]
    if t == "exist":
        return _yes(count(objects, program["desc"]) > 0)
    if t == "count":
        return str(count(objects, program["desc"]))
    if t == "attribute":
        return the(objects, program["desc"])[program["attr"]]
    if t == "relation":
        a, b = the(objects, program["a"]), the(objects, program["b"])
        axis, sign = {"left": ("x", 1), "right": ("x", -1), "above": ("y", 1),
                      "below": ("y", -1)}[program["relation"]]
        return _yes(sign * (b[axis] - a[axis]) > 0)
    if t == "extreme":
        obj = extreme(objects, program["direction"])
        attr = program["attr"]
        return f"{obj['color']} {obj['shape']}" if attr == "object" else obj[attr]
    if t == "more":
        return _yes(count(objects, program["x"]) > count(objects, program["y"]))
    if t == "same":
        a, b = the(objects, program["a"]), the(objects, program["b"])
        return _yes(a[program["attr"]] == b[program["attr"]])
    raise ValueError(f"unknown template {t!r}")


def text(program: dict) -> str:
    """The question in words; ``form`` picks one of a few phrasings."""
    t, form = program["template"], program.get("form", 0)
    if t == "exist":
        d = program["desc"]
        return [f"Is there {describe(d, article='a')}?", f"Are there any {describe(d, True)}?",
                f"Is there at least one {describe(d)}?"][form]
    if t == "count":
        d = describe(program["desc"], plural=True)
        return [f"How many {d} are there?", f"How many {d} are in the image?"][form]
    if t == "attribute":
        attr, d = program["attr"], describe(program["desc"])
        return [f"What {attr} is the {d}?", f"What is the {attr} of the {d}?"][form]
    if t == "relation":
        rel = _REL_WORDS[program["relation"]]
        return f"Is the {describe(program['a'])} {rel} the {describe(program['b'])}?"
    if t == "extreme":
        attr, where = program["attr"], program["direction"]
        return f"What is the {where} object?" if attr == "object" else \
            f"What {attr} is the {where} object?"
    if t == "more":
        return f"Are there more {describe(program['x'], True)} than {describe(program['y'], True)}?"
    if t == "same":
        a, b, attr = describe(program["a"]), describe(program["b"]), program["attr"]
        return f"Are the {a} and the {b} the same {attr}?"
    raise ValueError(f"unknown template {t!r}")


def question_type(program: dict) -> str:
    """VQA-style question type: the question's opening words."""
    words = text(program).lower().rstrip("?").split()
    n = {"what": 3, "is the": 2, "is there": 2, "are there more": 3, "how many": 2,
         "are the": 2}[TEMPLATES[program["template"]][0]]
    return " ".join(words[:n])


# ---- samplers: return a program, or None when this scene cannot pose one ------------------

# Samplers draw the yes/no target first and then search (structures, attributes) in random
# order for a question with that answer, so a scene that cannot say "no" to one structure
# does not tilt the family towards "yes".

def _exist(rng: random.Random, objs: list[dict], size: int) -> dict | None:
    want = rng.random() < 0.5
    for struct in rng.sample(structures(), len(structures())):
        cands = [d for d in all_descs(struct) if (count(objs, d) > 0) == want]
        if cands:
            return {"template": "exist", "desc": rng.choice(cands), "form": rng.randrange(3)}
    return None


def _count(rng: random.Random, objs: list[dict], size: int) -> dict:
    # target count first (uniform over what the scene allows), then a structure and a
    # description with that count: flattens the answer prior a blind model could learn
    by_count: dict[int, dict[tuple, list[dict]]] = {}
    for struct in structures(with_empty=True):
        for d in all_descs(struct):
            by_count.setdefault(count(objs, d), {}).setdefault(struct, []).append(d)
    options = by_count[rng.choice(sorted(by_count))]
    descs = options[rng.choice(sorted(options))]
    return {"template": "count", "desc": rng.choice(descs), "form": rng.randrange(2)}


def _attribute(rng: random.Random, objs: list[dict], size: int) -> dict | None:
    attr, obj = rng.choice(("color", "color", "shape", "shape", "size")), rng.choice(objs)
    cands = unique_descs(objs, obj, exclude=attr)
    return {"template": "attribute", "attr": attr, "desc": rng.choice(cands),
            "form": rng.randrange(2)} if cands else None


def _spatial(rng: random.Random, objs: list[dict], size: int) -> dict | None:
    margin = SPATIAL_MARGIN * size
    if rng.random() < 0.3:
        direction = rng.choice(sorted(_EXTREMES))
        axis, pick = _EXTREMES[direction]
        coords = sorted((o[axis] for o in objs), reverse=pick is max)
        if abs(coords[1] - coords[0]) < margin:  # the extreme object must be clear
            return None
        return {"template": "extreme", "direction": direction,
                "attr": rng.choice(("color", "shape", "object"))}
    a, b = rng.sample(objs, 2)
    axis = rng.choice("xy")
    da, db = unique_descs(objs, a), unique_descs(objs, b)
    if abs(a[axis] - b[axis]) < margin or not da or not db:
        return None
    want, first = rng.random() < 0.5, a[axis] < b[axis]
    names = ("left", "right") if axis == "x" else ("above", "below")
    rel = names[0] if first == want else names[1]
    return {"template": "relation", "a": rng.choice(da), "b": rng.choice(db), "relation": rel}


def _comparison(rng: random.Random, objs: list[dict], size: int) -> dict | None:
    want = rng.random() < 0.5
    if rng.random() < 0.5:
        for attr in rng.sample(("color", "shape"), 2):
            n = {v: count(objs, {attr: v}) for v in VALUES[attr]}
            pairs = [(x, y) for x, y in itertools.permutations(VALUES[attr], 2)
                     if (n[x] > n[y]) == want and n[x] + n[y] > 0]
            if pairs:
                x, y = rng.choice(pairs)
                return {"template": "more", "x": {attr: x}, "y": {attr: y}}
        return None
    for attr in rng.sample(ATTRS, len(ATTRS)):
        pairs = [(a, b) for a, b in itertools.permutations(objs, 2)
                 if (a[attr] == b[attr]) == want]
        rng.shuffle(pairs)
        for a, b in pairs:
            da, db = unique_descs(objs, a, exclude=attr), unique_descs(objs, b, exclude=attr)
            if da and db:
                return {"template": "same", "attr": attr, "a": rng.choice(da),
                        "b": rng.choice(db)}
    return None


SAMPLERS = {"existence": _exist, "counting": _count, "attribute": _attribute,
            "spatial": _spatial, "comparison": _comparison}


def sample_questions(rng: random.Random, objects: list[dict], image_size: int,
                     n: int) -> list[dict]:
    """``n`` distinct programs, families drawn without replacement while they last."""
    families = rng.sample(FAMILIES, len(FAMILIES))
    out: list[dict] = []
    seen: set[str] = set()
    for i in range(20 * n):
        if len(out) == n:
            break
        family = families[len(out) % len(families)] if i < 5 * n else rng.choice(FAMILIES)
        program = SAMPLERS[family](rng, objects, image_size)
        if program is not None and text(program) not in seen:
            seen.add(text(program))
            out.append({"family": family, **program})
    return out
