"""Procedural scenes for the built-in synthvqa task: coloured shapes on a plain background.

A scene is plain JSON (``{"background": name, "objects": [{shape, color, size, x, y, r}]}``,
pixel coordinates, y down) so tests and users can recompute every answer from
``scenes.json``. Rendering is drawn 4x larger and downsampled, so edges are anti-aliased
like a photo's rather than hard pixel steps. Descriptions ("the large red circle") are
dicts of attribute -> value; ``describe`` turns them into words.
"""

from __future__ import annotations

import itertools
import random

from PIL import Image, ImageDraw

COLORS = {
    "red": (215, 40, 40), "green": (40, 165, 60), "blue": (45, 85, 220),
    "yellow": (235, 205, 35), "purple": (140, 60, 185), "orange": (245, 130, 25),
}
SHAPES = ("circle", "square", "triangle", "diamond")
SIZES = ("small", "large")
BACKGROUNDS = {"white": (242, 242, 242), "gray": (160, 160, 160), "beige": (222, 208, 178)}
ATTRS = ("size", "color", "shape")
VALUES = {"size": SIZES, "color": tuple(COLORS), "shape": SHAPES}
RADIUS = {"small": 0.075, "large": 0.14}  # fraction of the image side
MIN_OBJECTS, MAX_OBJECTS = 2, 6
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                "nine", "ten")
_SUPERSAMPLE = 4
_JITTER = 12  # +- per colour channel, so "red" is a range of reds


def sample_scene(rng: random.Random, image_size: int) -> dict:
    """Non-overlapping objects (2-6) with uniformly drawn shape, colour and size."""
    n = rng.randint(MIN_OBJECTS, MAX_OBJECTS)
    while True:
        objects: list[dict] = []
        for _ in range(n):
            obj = _place(rng, objects, image_size)
            if obj is None:
                break
            objects.append(obj)
        if len(objects) == n:
            return {"background": rng.choice(sorted(BACKGROUNDS)), "objects": objects}


def _place(rng: random.Random, placed: list[dict], image_size: int) -> dict | None:
    size = rng.choice(SIZES)
    r = max(2, round(RADIUS[size] * image_size))
    for _ in range(100):
        x = rng.randint(r + 1, image_size - r - 2)
        y = rng.randint(r + 1, image_size - r - 2)
        if all((x - o["x"]) ** 2 + (y - o["y"]) ** 2 > (r + o["r"] + 2) ** 2 for o in placed):
            return {"shape": rng.choice(SHAPES), "color": rng.choice(sorted(COLORS)),
                    "size": size, "x": x, "y": y, "r": r}
    return None


def render(scene: dict, image_size: int, rng: random.Random) -> Image.Image:
    """Draw the scene as an RGB image (``rng`` jitters colours only)."""
    s = _SUPERSAMPLE
    img = Image.new("RGB", (image_size * s, image_size * s), BACKGROUNDS[scene["background"]])
    draw = ImageDraw.Draw(img)
    for o in scene["objects"]:
        fill = tuple(min(255, max(0, c + rng.randint(-_JITTER, _JITTER)))
                     for c in COLORS[o["color"]])
        x, y, r = (o["x"] + 0.5) * s, (o["y"] + 0.5) * s, o["r"] * s
        if o["shape"] == "circle":
            draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)
        elif o["shape"] == "square":
            h = r * 0.85  # similar area to the circle
            draw.rectangle((x - h, y - h, x + h, y + h), fill=fill)
        elif o["shape"] == "triangle":
            draw.polygon([(x, y - r), (x - r * 0.95, y + r * 0.8), (x + r * 0.95, y + r * 0.8)],
                         fill=fill)
        else:  # diamond
            draw.polygon([(x, y - r), (x + r, y), (x, y + r), (x - r, y)], fill=fill)
    return img.reduce(s)  # box filter: anti-aliased edges without ringing


# ---- descriptions --------------------------------------------------------------------------

def matches(obj: dict, desc: dict) -> bool:
    return all(obj[k] == v for k, v in desc.items())


def count(objects: list[dict], desc: dict) -> int:
    return sum(matches(o, desc) for o in objects)


def structures(with_empty: bool = False) -> list[tuple[str, ...]]:
    """Attribute subsets a description can use, in a fixed order."""
    subsets = [c for k in range(1, 4) for c in itertools.combinations(ATTRS, k)]
    return ([()] if with_empty else []) + subsets


def all_descs(struct: tuple[str, ...]) -> list[dict]:
    """Every description with exactly the attributes in ``struct``."""
    products = itertools.product(*(VALUES[a] for a in struct))
    return [dict(zip(struct, vals, strict=True)) for vals in products]


def unique_descs(objects: list[dict], obj: dict, exclude: str | None = None) -> list[dict]:
    """Descriptions of ``obj`` that pick it out alone (not using attribute ``exclude``)."""
    out = []
    for struct in structures():
        if exclude in struct:
            continue
        desc = {a: obj[a] for a in struct}
        if count(objects, desc) == 1:
            out.append(desc)
    return out


def describe(desc: dict, plural: bool = False, article: str = "") -> str:
    """{"size": "large", "color": "red"} -> "large red object"; plural -> "large red objects";
    article "a" becomes "a"/"an" as English needs."""
    words = [desc[a] for a in ("size", "color") if a in desc]
    noun = desc.get("shape", "object") + ("s" if plural else "")
    text = " ".join([*words, noun])
    if article == "a":
        article = "an" if text[0] in "aeiou" else "a"
    return f"{article} {text}" if article else text


def object_text(obj: dict, article: str = "a") -> str:
    return describe({a: obj[a] for a in ATTRS}, article=article)


# ---- captions ------------------------------------------------------------------------------

def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _humanise(rng: random.Random, text: str) -> str:
    """Annotator habits: a capital first letter and a final period, or not."""
    if rng.random() < 0.7:
        text = text[0].upper() + text[1:]
    return text + "." if rng.random() < 0.6 else text


def captions(scene: dict, rng: random.Random, image_size: int, n: int = 5) -> list[str]:
    """``n`` different human-like captions: object lists, shape counts, colours, a relation."""
    objs, bg = scene["objects"], scene["background"]
    shuffled = rng.sample(objs, len(objs))
    by_shape = {s: count(objs, {"shape": s}) for s in SHAPES}
    groups = [f"{NUMBER_WORDS[c]} {s}s" if c > 1 else f"a {s}" for s, c in by_shape.items() if c]
    colors = sorted({o["color"] for o in objs})
    first = shuffled[0]
    texts = [
        f"{_join([object_text(o) for o in shuffled])} on a {bg} background",
        f"{NUMBER_WORDS[len(objs)]} shapes on a {bg} background: {_join(groups)}",
        f"{_join(colors)} shapes on a plain {bg} background",
        f"{object_text(first)} and {NUMBER_WORDS[len(objs) - 1]} other "
        f"shape{'s' if len(objs) > 2 else ''}",
        f"a {bg} picture with {_join([object_text(o) for o in rng.sample(objs, len(objs))])}",
    ]
    left, right = min(objs, key=lambda o: o["x"]), max(objs, key=lambda o: o["x"])
    if right["x"] - left["x"] >= 0.1 * image_size:
        texts[4] = f"{object_text(left)} to the left of {object_text(right, 'a')}"
    return [_humanise(rng, t) for t in texts[:n]]
