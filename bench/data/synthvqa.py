"""The built-in synthvqa dataset: procedural shape scenes written in the real VQA v2 and
COCO-caption file layouts, so the same loaders read it and real data.

Layout of ``make(out)``::

    out/{train,val,test}/synthvqa_<split>_<image_id:012d>.png
    out/v2_OpenEnded_mscoco_<split>_questions.json    VQA v2 questions
    out/v2_mscoco_<split>_annotations.json            VQA v2 annotations, 10 answers each
    out/captions_<split>.json                         COCO captions, 5 per image
    out/scenes.json                                   scene specs + question programs
    out/tokenizer/                                    word-level tokenizer of the train text
    out/synthvqa.json                                 manifest (written last: "complete")

Defaults: 6000 images of 64 px with 2-5 objects and 5 questions each, one per family
(4800/600/600 images, 24000/3000/3000 questions). They generate in ~15 s of CPU (under a
minute of wall time even on a busy 2-core machine), fit in memory as one 74 MB uint8 tensor,
and 64 px keeps micro ViTs (patch 8: 64 tokens) at CPU speed. The question-only floor is
~45 % VQA accuracy while the canonical answers score 100 %, so the gap a model closes by
looking is wide; a small reasoner given perfect perception passes 65 % within 4000 steps of
batch 64 on one CPU core. ``--max-objects`` and ``--images`` trade difficulty and size.
Everything derives from
``random.Random(f"synthvqa:{seed}:{index}")`` per image, so the output is byte-identical
for a seed whatever the number of worker processes.

The 10 annotators per question write like released VQA v2 annotations: lower-case, digits
for numbers; they vary only in punctuation ("yes."; the official script strips the period
from differing human answers) and synonyms ("big" for "large", "yeah" for "yes"; the script
does not equate those: they count as disagreeing). One or two sometimes give a wrong answer
(75 % none, 20 % one, 5 % two). At least 4 write the canonical answer exactly and at most 3
use a synonym, so the canonical answer is the plurality after the script's processing and
scores 100 % official accuracy on every question (the oracle of ``fusebench data baselines``).
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from bench.atomic_files import foreign_entries, staged_directory
from bench.errors import UserError
from bench.lock import build_lock

from .loaders import check_data_dir
from .questions import TEMPLATES, answer, question_type, sample_questions, text
from .scenes import (
    COLORS,
    MAX_OBJECTS,
    MIN_OBJECTS,
    SHAPES,
    SIZES,
    captions,
    render,
    sample_scene,
)
from .tokenizer import build_tokenizer

VERSION = 2  # 2: answers written like released VQA v2 (lower-case, digits)
DEFAULT_IMAGES = 6000
MAX_IMAGES = 1_000_000  # a typo (1e9) would run for days and fill the disk
DEFAULT_IMAGE_SIZE = 64
DEFAULT_QUESTIONS = 5  # one per family
SPLIT_FRACTIONS = (("train", 0.8), ("val", 0.1), ("test", 0.1))
ANSWER_TYPES = {"yes/no": "yes/no", "number": "number"}  # everything else is "other"
_DISSENT = ((0, 1, 2), (75, 20, 5))  # how many of 10 annotators disagree, with weights
_EXACT = 4  # annotators who always write the canonical answer as is
_MAX_SYNONYMS = 3  # per question, so the canonical answer stays the processed plurality
# Synonyms annotators use; an object answer ("purple circle") varies its colour word only.
_SYNONYMS = {"yes": ("yeah", "yep"), "no": ("nope",), "purple": ("violet",), "large": ("big",),
             "small": ("little", "tiny"), "circle": ("round",), "diamond": ("rhombus",)}
_ATTR_VALUES = {"color": sorted(COLORS), "shape": list(SHAPES), "size": list(SIZES)}


def questions_file(split: str) -> str:
    return f"v2_OpenEnded_mscoco_{split}_questions.json"


def annotations_file(split: str) -> str:
    return f"v2_mscoco_{split}_annotations.json"


def image_file(split: str, image_id: int) -> str:
    return f"{split}/synthvqa_{split}_{image_id:012d}.png"


def split_sizes(n: int) -> dict[str, int]:
    """Images per split: 10 % val, 10 % test (at least one each), the rest train."""
    held = max(1, round(n * 0.1))
    return {"train": n - 2 * held, "val": held, "test": held}


# ---- annotators ----------------------------------------------------------------------------

def _surface(rng: random.Random, ans: str, synonym: bool = True) -> str:
    """One annotator's way of writing ``ans``: as is 70 %, with a trailing period 15 %, a
    synonym 15 % (as is when there is none, or ``synonym`` is false)."""
    r = rng.random()
    if r < 0.70:
        return ans
    if r < 0.85:
        return f"{ans}."
    head, *rest = ans.split()
    options = _SYNONYMS.get(head, ()) if synonym else ()
    return " ".join([rng.choice(options), *rest]) if options else ans


def _wrong(rng: random.Random, ans: str, kind: str) -> str:
    """A plausible wrong answer (a miscount, the other yes/no, a neighbouring attribute)."""
    if kind == "yes/no":
        return "no" if ans == "yes" else "yes"
    if kind == "number":
        n = int(ans)
        return str(n + 1) if n == 0 or rng.random() < 0.5 else str(n - 1)
    if kind == "object":
        color, shape = ans.split()
        if rng.random() < 0.5:
            return f"{rng.choice([c for c in COLORS if c != color])} {shape}"
        return f"{color} {rng.choice([s for s in SHAPES if s != shape])}"
    return rng.choice([v for v in _ATTR_VALUES[kind] if v != ans])


def annotate(rng: random.Random, ans: str, kind: str) -> list[dict]:
    """Ten VQA v2 answer records for canonical answer ``ans``."""
    n_wrong = rng.choices(*_DISSENT)[0]
    given = [(_surface(rng, _wrong(rng, ans, kind)), "maybe") for _ in range(n_wrong)]
    synonyms = 0
    for i in range(10 - n_wrong):
        written = ans if i < _EXACT else _surface(rng, ans, synonyms < _MAX_SYNONYMS)
        synonyms += written not in (ans, f"{ans}.")
        given.append((written, rng.choice(("yes", "yes", "yes", "maybe"))))
    rng.shuffle(given)
    return [{"answer": a, "answer_confidence": conf, "answer_id": i + 1}
            for i, (a, conf) in enumerate(given)]


def answer_kind(program: dict) -> str:
    kind = TEMPLATES[program["template"]][1]
    return program["attr"] if kind == "attribute" else kind


# ---- one image -----------------------------------------------------------------------------

def make_image(job: tuple[int, int, str, int, int, int, int, str]) -> dict:
    """Scene, image file, questions, annotations and captions for one image (a worker task)."""
    index, image_id, split, seed, size, n_questions, max_objects, out = job
    rng = random.Random(f"synthvqa:{seed}:{index}")
    scene = sample_scene(rng, size, max_objects)
    objects = scene["objects"]
    programs = sample_questions(rng, objects, size, n_questions)
    caps = captions(scene, rng, size)
    questions, annotations = [], []
    for k, program in enumerate(programs):
        qid = image_id * 1000 + k
        ans, kind = answer(program, objects), answer_kind(program)
        program["question_id"] = qid
        questions.append({"image_id": image_id, "question": text(program), "question_id": qid})
        annotations.append({
            "question_id": qid, "image_id": image_id, "question_type": question_type(program),
            "answer_type": ANSWER_TYPES.get(kind, "other"), "multiple_choice_answer": ans,
            "answers": annotate(rng, ans, kind),
        })
    file_name = image_file(split, image_id)
    render(scene, size, rng).save(Path(out) / file_name, format="PNG")
    return {"image_id": image_id, "split": split, "file_name": file_name, **scene,
            "questions": programs, "captions": caps, "vqa": (questions, annotations)}


def _texts(record: dict) -> list[str]:
    """Every text of one image: questions, all 10 answers of each, captions (tokenizer input)."""
    questions, annotations = record["vqa"]
    return [*(q["question"] for q in questions), *record["captions"],
            *(a["answer"] for ann in annotations for a in ann["answers"])]


# ---- writing -------------------------------------------------------------------------------

def write_json(path: Path, obj, indent: int | None = None) -> None:
    """Atomic JSON write (tmp file + os.replace), deterministic bytes."""
    tmp = path.with_name(path.name + ".tmp")
    seps = (",", ": ") if indent else (",", ":")
    tmp.write_text(json.dumps(obj, indent=indent, separators=seps, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def owned_names() -> set[str]:
    """Everything ``make`` writes, plus the caches derived from it (``baselines.json``):
    what ``--force`` may replace. Anything else in the directory is the user's."""
    names = {"synthvqa.json", "scenes.json", "tokenizer", "baselines.json"}
    for split, _ in SPLIT_FRACTIONS:
        names |= {split, questions_file(split), annotations_file(split),
                  f"captions_{split}.json"}
    return names


def _check_target(out: Path, force: bool) -> None:
    """Refuse (``UserError``) unless ``out`` is absent, empty, or replaceable synthvqa data."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a directory")
    if not out.is_dir() or not any(out.iterdir()):
        return
    if not (out / "synthvqa.json").exists() and not (out / "scenes.json").exists():
        raise UserError(f"--out {out} is not empty and holds no synthvqa data; "
                        "choose a new or empty directory")
    if not force:
        raise UserError(f"--out {out} already holds synthvqa data; pass --force to replace it")
    foreign = foreign_entries(out, owned_names())
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3
                                          else "")
        raise UserError(f"--out {out} also holds files that are not synthvqa's ({shown}); "
                        "--force replaces the whole directory, so move them out first")


def make(out: str | Path, seed: int = 0, images: int = DEFAULT_IMAGES,
         image_size: int = DEFAULT_IMAGE_SIZE, questions_per_image: int = DEFAULT_QUESTIONS,
         max_objects: int = MAX_OBJECTS, workers: int | None = None,
         force: bool = False) -> dict:
    """Generate the dataset under ``out``; returns the manifest (also written as synthvqa.json)."""
    if images < 10:
        raise UserError(f"--images {images}: need at least 10 (train/val/test splits)")
    if images > MAX_IMAGES:
        raise UserError(f"--images {images}: at most {MAX_IMAGES}")
    if workers is not None and not 1 <= workers <= 256:
        raise UserError(f"--workers {workers}: must be 1..256")
    if not 32 <= image_size <= 1024:
        raise UserError(f"--image-size {image_size}: must be between 32 and 1024 pixels")
    if not 1 <= questions_per_image <= 10:
        raise UserError(f"--questions-per-image {questions_per_image}: must be 1..10")
    if not MIN_OBJECTS <= max_objects <= 8:
        raise UserError(f"--max-objects {max_objects}: must be {MIN_OBJECTS}..8")
    _check_target(Path(out), force)
    with staged_directory(out) as tmp:  # built beside ``out``, swapped in when complete
        return _write(tmp, seed, images, image_size, questions_per_image, max_objects, workers)


def _write(out: Path, seed: int, images: int, image_size: int, questions_per_image: int,
           max_objects: int, workers: int | None) -> dict:
    for split, _ in SPLIT_FRACTIONS:
        (out / split).mkdir()
    sizes = split_sizes(images)
    splits = [s for s, _ in SPLIT_FRACTIONS for _ in range(sizes[s])]
    jobs = [(i, i + 1, splits[i], seed, image_size, questions_per_image, max_objects, str(out))
            for i in range(images)]
    workers = workers or min(len(os.sched_getaffinity(0)), 8)
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            records = list(pool.map(make_image, jobs, chunksize=64))
    else:
        records = [make_image(j) for j in jobs]

    info = {"description": f"synthvqa v{VERSION} (fusebench built-in), seed {seed}",
            "version": str(VERSION), "year": 2024}
    stats: dict[str, dict] = {}
    for split, _ in SPLIT_FRACTIONS:
        recs = [r for r in records if r["split"] == split]
        questions = [q for r in recs for q in r["vqa"][0]]
        annotations = [a for r in recs for a in r["vqa"][1]]
        common = {"info": info, "license": {"name": "CC0", "url": ""}, "data_type": "synthvqa",
                  "data_subtype": split}
        write_json(out / questions_file(split),
                   {**common, "task_type": "Open-Ended", "questions": questions})
        write_json(out / annotations_file(split), {**common, "annotations": annotations})
        write_json(out / f"captions_{split}.json", {
            "info": info, "licenses": [], "type": "captions",
            "images": [{"id": r["image_id"], "file_name": Path(r["file_name"]).name,
                        "width": image_size, "height": image_size} for r in recs],
            "annotations": [{"image_id": r["image_id"], "id": r["image_id"] * 10 + k,
                             "caption": c} for r in recs for k, c in enumerate(r["captions"])],
        })
        stats[split] = {
            "images": len(recs), "questions": len(questions),
            "families": dict(sorted(Counter(p["family"] for r in recs
                                            for p in r["questions"]).items())),
            "answer_types": dict(sorted(Counter(a["answer_type"] for a in annotations).items())),
        }
    train = [r for r in records if r["split"] == "train"]
    build_tokenizer([t for r in train for t in _texts(r)]).save_pretrained(out / "tokenizer")
    for r in records:
        r.pop("vqa")
    write_json(out / "scenes.json", {"generator": "synthvqa", "version": VERSION, "seed": seed,
                                     "image_size": image_size, "images": records})
    manifest = {"name": "synthvqa", "version": VERSION, "seed": seed, "images": images,
                "image_size": image_size, "questions_per_image": questions_per_image,
                "max_objects": max_objects, "splits": stats}
    write_json(out / "synthvqa.json", manifest, indent=2)
    return manifest


DEFAULT_DATA = Path("data") / "synthvqa"


def ensure_data(path: str | Path | None, seed: int = 0) -> Path:
    """The dataset directory; the built-in synthvqa is generated on first use.

    Generation holds its ``build_lock``: commands started together in a fresh directory
    (two ``train`` runs side by side) generate it once, the others wait for it; unlocked,
    the second one's swap replaced the directory the first was reading."""
    if path:
        return check_data_dir(path)
    manifest = DEFAULT_DATA / "synthvqa.json"
    if manifest.is_file() and _version(manifest) >= VERSION:
        return DEFAULT_DATA
    with build_lock(DEFAULT_DATA, "waiting for another command generating the built-in dataset"):
        if not manifest.is_file():
            print(f"generating the built-in dataset in {DEFAULT_DATA} (seed {seed}) ...")
            make(DEFAULT_DATA, seed=seed)
        elif _version(manifest) < VERSION:  # made by an older fusebench: answers differ
            print(f"regenerating the built-in dataset in {DEFAULT_DATA}: it is synthvqa "
                  f"v{_version(manifest)}, this fusebench writes v{VERSION} ...")
            make(DEFAULT_DATA, seed=seed, force=True)
    return DEFAULT_DATA


def _version(manifest: Path) -> int:
    try:
        return int(json.loads(manifest.read_text()).get("version", 0))
    except (OSError, ValueError, TypeError, AttributeError):
        return 0
