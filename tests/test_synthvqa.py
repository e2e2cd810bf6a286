"""synthvqa: deterministic per seed, official file layouts, and answers that are right for
the scenes drawn (recomputed here from scenes.json by an independent reading of the text)."""

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.cli import main
from bench.data.synthvqa import make
from bench.errors import UserError
from bench.metrics.vqa import oracle_accuracy, process_answers, vqa_accuracy

SIZE = 64
RGB = {"red": (215, 40, 40), "green": (40, 165, 60), "blue": (45, 85, 220),
       "yellow": (235, 205, 35), "purple": (140, 60, 185), "orange": (245, 130, 25)}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "d"
    make(out, seed=3, images=120, image_size=SIZE, workers=1)
    return out


def load(path: Path):
    return json.loads(path.read_text())


def all_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


# ---- determinism -------------------------------------------------------------------------

def test_same_seed_gives_identical_bytes_whatever_the_workers(tmp_path):
    make(tmp_path / "a", seed=7, images=20, workers=1)
    make(tmp_path / "b", seed=7, images=20, workers=2)
    make(tmp_path / "c", seed=8, images=20, workers=1)
    a, b, c = (all_files(tmp_path / x) for x in "abc")
    assert a == b
    assert a.keys() == c.keys()
    assert a["v2_mscoco_train_annotations.json"] != c["v2_mscoco_train_annotations.json"]


# ---- layouts ------------------------------------------------------------------------------

def test_vqa_v2_and_coco_layout(data):
    manifest = load(data / "synthvqa.json")
    assert {s: v["images"] for s, v in manifest["splits"].items()} == \
        {"train": 96, "val": 12, "test": 12}
    for split in ("train", "val", "test"):
        qs = load(data / f"v2_OpenEnded_mscoco_{split}_questions.json")
        anns = load(data / f"v2_mscoco_{split}_annotations.json")
        caps = load(data / f"captions_{split}.json")
        assert qs["task_type"] == "Open-Ended" and qs["data_subtype"] == split
        assert set(qs["questions"][0]) == {"image_id", "question", "question_id"}
        ann = anns["annotations"][0]
        assert set(ann) == {"question_id", "image_id", "question_type", "answer_type",
                            "multiple_choice_answer", "answers"}
        assert [q["question_id"] for q in qs["questions"]] == \
            [a["question_id"] for a in anns["annotations"]]
        assert len(caps["images"]) == manifest["splits"][split]["images"]
        assert Counter(a["image_id"] for a in caps["annotations"]) == \
            {im["id"]: 5 for im in caps["images"]}
        for im in caps["images"][:3]:
            with Image.open(data / split / im["file_name"]) as img:
                assert img.format == "PNG" and img.size == (SIZE, SIZE)


def test_ten_human_like_answers(data):
    """Released-VQA-v2-like answers: lower-case, digits, variation only in punctuation and
    synonyms; the canonical answer scores 100 % under the official rules on every question."""
    anns = load(data / "v2_mscoco_train_annotations.json")["annotations"]
    number_words = {"zero", "none", "one", "two", "three", "four", "five", "six", "seven",
                    "eight", "nine", "ten"}
    raw_forms, variants = set(), Counter()
    for a in anns:
        assert [x["answer_id"] for x in a["answers"]] == list(range(1, 11))
        given = [x["answer"] for x in a["answers"]]
        canon = a["multiple_choice_answer"]
        raw_forms.update(given)
        assert sum(g == canon for g in given) >= 4  # 4 annotators write it exactly
        top = Counter(process_answers(given)).most_common()
        assert top[0][0] == canon and (len(top) == 1 or top[0][1] > top[1][1])  # plurality
        assert vqa_accuracy(canon, given) == 1.0 == oracle_accuracy(given)
        assert a["answer_type"] in ("yes/no", "number", "other")
        for g in given:
            if g != canon:
                variants["period" if g == canon + "." else "other"] += 1
    for f in raw_forms:
        assert f == f.lower() == f.strip() and not set(f.split()) & number_words, f
        assert set(f) <= set("abcdefghijklmnopqrstuvwxyz0123456789 ."), f
    # both kinds of variation are present: punctuation the script strips ("yes." -> "yes")
    # and synonyms it does not equate ("big" for "large"), beside the wrong answers
    assert {"yes.", "no."} & raw_forms and {"yeah", "yep", "nope", "big", "tiny"} & raw_forms
    assert variants["period"] > 0 and variants["other"] > 0


def test_answers_are_balanced(data):
    anns = [a for s in ("train", "val", "test")
            for a in load(data / f"v2_mscoco_{s}_annotations.json")["annotations"]]
    yn = Counter(a["multiple_choice_answer"] for a in anns if a["answer_type"] == "yes/no")
    assert 0.4 < yn["yes"] / (yn["yes"] + yn["no"]) < 0.6
    counts = Counter(a["multiple_choice_answer"] for a in anns if a["answer_type"] == "number")
    assert len(counts) >= 4 and max(counts.values()) < 0.45 * sum(counts.values())


# ---- answers recomputed from the scene specs ----------------------------------------------

NOUNS = {"circle", "square", "triangle", "diamond", "object"}


def parse_desc(text: str) -> dict:
    *adjs, noun = text.split()
    noun = noun[:-1] if noun.endswith("s") and noun[:-1] in NOUNS else noun
    assert noun in NOUNS, text
    desc = {} if noun == "object" else {"shape": noun}
    for w in adjs:
        desc["size" if w in ("small", "large") else "color"] = w
        assert w in ("small", "large") or w in RGB, text
    return desc


def select(objs, desc):
    return [o for o in objs if all(o[k] == v for k, v in desc.items())]


def one(objs, desc):
    found = select(objs, desc)
    assert len(found) == 1, f"{desc} is ambiguous or absent"
    return found[0]


def recompute(question: str, objs: list[dict]) -> tuple[str, str]:
    """(family, answer) from the question text alone and the scene's objects."""
    yes = {True: "yes", False: "no"}
    margin = 0.1 * SIZE
    if m := re.fullmatch(r"Is there (?:an? |at least one )(.+)\?|Are there any (.+)\?", question):
        return "existence", yes[bool(select(objs, parse_desc(m[1] or m[2])))]
    if m := re.fullmatch(r"How many (.+) are (?:there|in the image)\?", question):
        return "counting", str(len(select(objs, parse_desc(m[1]))))
    if m := re.fullmatch(r"What (color|shape|size) is the (\w+) object\?", question):
        if m[2].endswith("most"):
            return "spatial", extreme(objs, m[2], margin)[m[1]]
    if m := re.fullmatch(r"What is the (\w+most) object\?", question):
        o = extreme(objs, m[1], margin)
        return "spatial", f"{o['color']} {o['shape']}"
    if m := re.fullmatch(r"What (color|shape|size) is the (.+)\?|What is the (color|shape|size) "
                         r"of the (.+)\?", question):
        attr, desc = (m[1], m[2]) if m[1] else (m[3], m[4])
        return "attribute", one(objs, parse_desc(desc))[attr]
    if m := re.fullmatch(r"Is the (.+) (to the left of|to the right of|above|below) the (.+)\?",
                         question):
        a, b = one(objs, parse_desc(m[1])), one(objs, parse_desc(m[3]))
        axis = "x" if "left" in m[2] or "right" in m[2] else "y"
        assert abs(a[axis] - b[axis]) >= margin  # never a borderline call
        before = a[axis] < b[axis]
        return "spatial", yes[before if m[2] in ("to the left of", "above") else not before]
    if m := re.fullmatch(r"Are there more (.+) than (.+)\?", question):
        return "comparison", yes[len(select(objs, parse_desc(m[1]))) >
                                 len(select(objs, parse_desc(m[2])))]
    if m := re.fullmatch(r"Are the (.+) and the (.+) the same (color|shape|size)\?", question):
        a, b = one(objs, parse_desc(m[1])), one(objs, parse_desc(m[2]))
        return "comparison", yes[a[m[3]] == b[m[3]]]
    raise AssertionError(f"unrecognised question: {question}")


def extreme(objs, where, margin):
    axis = "x" if where in ("leftmost", "rightmost") else "y"
    ranked = sorted(objs, key=lambda o: o[axis], reverse=where in ("rightmost", "bottommost"))
    assert abs(ranked[0][axis] - ranked[1][axis]) >= margin
    return ranked[0]


def test_answers_match_the_scenes(data):
    scenes = {im["image_id"]: im for im in load(data / "scenes.json")["images"]}
    families = Counter()
    for split in ("train", "val", "test"):
        qs = load(data / f"v2_OpenEnded_mscoco_{split}_questions.json")["questions"]
        anns = load(data / f"v2_mscoco_{split}_annotations.json")["annotations"]
        for q, a in zip(qs, anns, strict=True):
            scene = scenes[q["image_id"]]
            family, expected = recompute(q["question"], scene["objects"])
            assert a["multiple_choice_answer"] == expected, q["question"]
            stored = {p["question_id"]: p["family"] for p in scene["questions"]}
            assert stored[q["question_id"]] == family
            families[family] += 1
    assert set(families) == {"existence", "counting", "attribute", "spatial", "comparison"}
    # by default every image gets one question of each family
    per_image = [sorted(p["family"] for p in im["questions"]) for im in scenes.values()]
    assert sum(fams == sorted(families) for fams in per_image) >= 0.95 * len(per_image)


def test_images_show_the_scenes(data):
    """The pixel at every object's centre has that object's colour (+- jitter)."""
    scenes = load(data / "scenes.json")["images"]
    for im in scenes[:40]:
        pixels = np.asarray(Image.open(data / im["file_name"]).convert("RGB")).astype(int)
        for o in im["objects"]:
            got = pixels[o["y"], o["x"]]
            assert np.abs(got - np.array(RGB[o["color"]])).max() <= 20, (im["file_name"], o)


# ---- bad input ----------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, match", [
    ({"images": 5}, "at least 10"), ({"image_size": 8}, "between 32"),
    ({"questions_per_image": 0}, "1..10"),
])
def test_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(UserError, match=match):
        make(tmp_path / "x", **kwargs)


def test_refuses_foreign_or_existing_directories(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not empty"):
        make(tmp_path, images=10)
    make(tmp_path / "d", images=12, workers=1)
    with pytest.raises(UserError, match="--force"):
        make(tmp_path / "d", images=10)
    make(tmp_path / "d", images=10, workers=1, force=True)
    assert len(list((tmp_path / "d" / "train").iterdir())) == 8  # stale images removed


def test_cli_make_and_errors(tmp_path, capsys):
    assert main(["data", "make", "synthvqa", "--out", str(tmp_path / "d"), "--images", "10",
                 "--seed", "1", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "synthvqa seed 1: 10 images of 64 px" in out and "train" in out
    assert main(["data", "make", "synthvqa", "--out", str(tmp_path / "e"), "--images", "3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fusebench: error: --images 3") and err.count("\n") == 1
