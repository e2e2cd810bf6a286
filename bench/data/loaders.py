"""Readers for the dataset layouts a user points at, all returning ``Example`` records.

- VQA v2: ``v2_OpenEnded_mscoco_<split>_questions.json`` + ``v2_mscoco_<split>_annotations.json``
  (in DIR, DIR/questions or DIR/annotations) and images in DIR/<split> or DIR/images/<split>
  whose names end in the image id (``COCO_train2014_000000000009.jpg``). synthvqa uses it too.
- COCO captions: ``captions_<split>.json`` (images + annotations), images as above.
- GQA: ``<split>_balanced_questions.json`` ({question id: {imageId, question, answer, ...}})
  and DIR/images/<imageId>.jpg.

"train"/"val"/"test" also find the official split names (train2014, val2014, testdev).
Data with no labelled test split (the VQA v2 release) tests on its val split and holds out
a tenth of the training images for validation (``bench.data.splits``).
Any problem with the files (missing, not JSON, missing keys, images absent) is a
``UserError`` naming the file.
"""

from __future__ import annotations

import multiprocessing
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bench.errors import UserError

from .json_fields import (
    answers_of,
    id_type_hint,
    id_value,
    list_value,
    optional_text,
    read_json,
    required,
    text_value,
)
from .splits import SplitSource, plan, select

FORMATS = ("vqa2", "gqa", "coco-captions")
_SUBDIRS = ("", "questions", "annotations", "Questions", "Annotations")
_ALIASES = {"train": ("train", "train2014"), "val": ("val", "val2014"),
            "test": ("test", "testdev", "test-dev2015", "test2015")}
_PATTERNS = {
    "vqa2": "v2_OpenEnded_mscoco_{}_questions.json",
    "gqa": "{}_balanced_questions.json",
    "coco-captions": "captions_{}.json",
}
_IMAGE_RE = re.compile(r"(\d+)\.(?:jpe?g|png)$", re.IGNORECASE)


@dataclass(frozen=True)
class Example:
    """One question (or, for captioning, one image) with everything evaluation needs.

    answers: the raw human answers (10 for VQA v2, 1 for GQA; the reference captions for
    captioning). answer: the canonical one (VQA's multiple_choice_answer, GQA's answer,
    the first caption), used as the generative target and for exact match."""

    question_id: int | str
    image_id: int | str
    image_path: str
    question: str
    answers: tuple[str, ...]
    answer: str
    question_type: str = ""
    answer_type: str = ""
    source: str = ""



def _find(root: Path, name: str) -> Path | None:
    for sub in _SUBDIRS:
        if (root / sub / name).is_file():
            return root / sub / name
    return None


def available_splits(root: str | Path, fmt: str) -> list[str]:
    """Split names present under ``root`` for a format (e.g. ["train2014", "val2014"])."""
    prefix, suffix = _PATTERNS[fmt].split("{}")
    root = Path(root)
    found = {p.name[len(prefix): len(p.name) - len(suffix)] for sub in _SUBDIRS
             if (root / sub).is_dir() for p in (root / sub).glob(_PATTERNS[fmt].format("*"))}
    return sorted(found)


def _resolve(root: Path, split: str, fmt: str) -> tuple[str, Path]:
    for name in (split, *_ALIASES.get(split, ())):
        path = _find(root, _PATTERNS[fmt].format(name))
        if path is not None:
            return name, path
    have = ", ".join(available_splits(root, fmt)) or "none"
    raise UserError(f"no {fmt} file for split {split!r} under {root} "
                    f"(looked for {_PATTERNS[fmt].format(split)}); available splits: {have}")


def check_data_dir(path: str | Path) -> Path:
    """``path`` if it is a directory; else one ``UserError`` saying what it is instead."""
    path = Path(path)
    if not path.is_dir():
        what = "is a file, not a directory" if path.exists() else "not found"
        raise UserError(f"data directory {path}: {what}")
    return path


def detect_format(root: str | Path, task: str = "vqa") -> str:
    """Which layout ``root`` holds: vqa2 or gqa for task "vqa", coco-captions for "caption"."""
    root = check_data_dir(root)
    candidates = ("vqa2", "gqa") if task == "vqa" else ("coco-captions",)
    for fmt in candidates:
        if available_splits(root, fmt):
            return fmt
    wanted = "VQA v2 or GQA question" if task == "vqa" else "COCO caption"
    if not _is_empty(root):  # someone's folder: say what is looked for, not to write there
        looked = (_PATTERNS["vqa2"], _PATTERNS["gqa"]) if task == "vqa" else (
            _PATTERNS["coco-captions"],)
        raise UserError(f"{root} holds no {wanted} files (looked for "
                        f"{' or '.join(n.format('<split>') for n in looked)} in it or in "
                        "its questions/ or annotations/)")
    raise UserError(f"{root} holds no {wanted} files; create the built-in data with "
                    f"`fusebench data make synthvqa --out {root}`")


def _is_empty(directory: Path) -> bool:
    try:
        return next(directory.iterdir(), None) is None
    except OSError:  # unreadable: not ours to fill
        return False


def _image_dir(root: Path, split: str, image_dir: str | Path | None) -> Path:
    if image_dir is not None:
        candidates = [Path(image_dir)]
    else:
        candidates = [root / split, root / "images" / split, root / "images"]
    for d in candidates:
        if d.is_dir():
            return d
    raise UserError(f"image directory for split {split!r} not found "
                    f"(looked in {', '.join(map(str, candidates))})")


def _check_images(paths: Iterable[str], source: Path, image_dir: Path) -> None:
    missing = [p for p in dict.fromkeys(paths) if not Path(p).is_file()]
    if missing:
        raise UserError(f"{len(missing)} image(s) referenced by {source} are missing from "
                        f"{image_dir} (e.g. {Path(missing[0]).name})")


def _index_by_id(image_dir: Path) -> dict[int, str]:
    """Image files by the integer id their names end in (COCO and synthvqa naming)."""
    out = {}
    for entry in image_dir.iterdir():
        m = _IMAGE_RE.search(entry.name)
        if m:
            out[int(m.group(1))] = str(entry)
    return out


def load_vqa2(root: str | Path, split: str, image_dir: str | Path | None = None) -> list[Example]:
    """VQA v2 questions joined with their annotations (10 answers each)."""
    root = Path(root)
    name, qpath = _resolve(root, split, "vqa2")
    apath = _find(root, f"v2_mscoco_{name}_annotations.json")
    if apath is None:
        raise UserError(f"VQA v2 split {name!r} has questions but no annotations file "
                        f"v2_mscoco_{name}_annotations.json under {root}")
    questions = list_value(required(read_json(qpath), "questions", qpath, "the file"), qpath,
                           "questions")
    annotations = list_value(required(read_json(apath), "annotations", apath, "the file"),
                             apath, "annotations")
    by_qid = {}
    for i, a in enumerate(annotations):
        by_qid[id_value(a, "question_id", apath, f"annotation {i}")] = a
    images = _image_dir(root, name, image_dir)
    index = _index_by_id(images)
    out, seen = [], set()
    for i, q in enumerate(questions):
        qid = id_value(q, "question_id", qpath, f"question {i}")
        if qid in seen:  # answers and scores are keyed by it: two would share one answer
            raise UserError(f"{qpath}: question_id {qid!r} is used by more than one question")
        seen.add(qid)
        image_id = id_value(q, "image_id", qpath, f"question {i}")
        if qid not in by_qid:
            raise UserError(f"{apath}: no annotation for question_id {qid!r}"
                            f"{id_type_hint(qid, by_qid)}")
        a = by_qid[qid]
        answers = answers_of(a, apath, qid)
        if image_id not in index:
            raise UserError(f"image {image_id!r} (question {qid} in {qpath.name}) not found "
                            f"in {images}{id_type_hint(image_id, index)}")
        out.append(Example(
            question_id=qid, image_id=image_id, image_path=index[image_id],
            question=text_value(q, "question", qpath, f"question {i}"), answers=answers,
            answer=text_value(a, "multiple_choice_answer", apath, f"annotation {qid}"),
            question_type=optional_text(a, "question_type", apath, f"annotation {qid}"),
            answer_type=optional_text(a, "answer_type", apath, f"annotation {qid}"),
            source="vqa2"))
    return out


def load_coco_captions(root: str | Path, split: str,
                       image_dir: str | Path | None = None) -> list[Example]:
    """One Example per image: ``answers`` = its reference captions, ``question`` empty."""
    root = Path(root)
    name, path = _resolve(root, split, "coco-captions")
    data = read_json(path)
    images = _image_dir(root, name, image_dir)
    caps: dict[int, list[str]] = {}
    for i, a in enumerate(list_value(required(data, "annotations", path, "the file"), path,
                                "annotations")):
        caps.setdefault(id_value(a, "image_id", path, f"annotation {i}"), []).append(
            text_value(a, "caption", path, f"annotation {i}"))
    out = []
    for i, img in enumerate(list_value(required(data, "images", path, "the file"), path, "images")):
        image_id = id_value(img, "id", path, f"image {i}")
        if not caps.get(image_id):
            continue  # COCO test images carry no captions
        file_path = str(images / _file_name(img, path, f"image {i}"))
        out.append(Example(question_id=image_id, image_id=image_id, image_path=file_path,
                           question="", answers=tuple(caps[image_id]), answer=caps[image_id][0],
                           answer_type="caption", source="coco-captions"))
    _check_images((e.image_path for e in out), path, images)
    return out


def load_gqa(root: str | Path, split: str, image_dir: str | Path | None = None) -> list[Example]:
    """GQA balanced questions ({question id: {imageId, question, answer, types, ...}})."""
    root = Path(root)
    name, path = _resolve(root, split, "gqa")
    data = read_json(path)
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected an object keyed by question id")
    images = _image_dir(root, name, image_dir)  # GQA keeps all images in DIR/images
    by_stem = {p.stem: str(p) for p in images.iterdir()}
    out = []
    for qid, q in data.items():
        image_id = str(id_value(q, "imageId", path, f"question {qid}"))
        ans = text_value(q, "answer", path, f"question {qid}")
        if image_id not in by_stem:
            raise UserError(f"image {image_id} (question {qid} in {path.name}) not found in "
                            f"{images}")
        types = q.get("types") or {}
        if not isinstance(types, dict):
            raise UserError(f"{path}: question {qid}: 'types' must be an object")
        out.append(Example(
            question_id=qid, image_id=image_id, image_path=by_stem[image_id],
            question=text_value(q, "question", path, f"question {qid}"), answers=(ans,), answer=ans,
            question_type=optional_text(types, "detailed", path, f"question {qid}'s types"),
            answer_type=optional_text(types, "structural", path, f"question {qid}'s types"),
            source="gqa"))
    return out


def check_complete(root: str | Path) -> None:
    """synthvqa data is complete only with its manifest (``synthvqa.json``, written last):
    a directory with the generator's ``scenes.json`` but no manifest is refused."""
    root = Path(root)
    manifest = root / "synthvqa.json"
    if (root / "scenes.json").is_file() and not manifest.is_file():
        raise UserError(f"{root} holds incomplete synthvqa data (no {manifest.name}: its "
                        f"generation was interrupted); regenerate it with `fusebench data "
                        f"make synthvqa --out {root} --force`")
    if manifest.is_file() and not isinstance(read_json(manifest), dict):
        raise UserError(f"{manifest}: expected the synthvqa manifest (a JSON object)")


def _file_name(img, path: Path, where: str) -> str:
    """An image's file name, kept inside the image directory (no ``..``, no absolute path)."""
    name = text_value(img, "file_name", path, where)
    if Path(name).is_absolute() or ".." in Path(name).parts:
        raise UserError(f"{path}: {where}: file_name {name[:80]!r} points outside the image "
                        "directory")
    return name


LOADERS = {"vqa2": load_vqa2, "gqa": load_gqa, "coco-captions": load_coco_captions}


def split_sources(root: str | Path, fmt: str) -> dict[str, SplitSource]:
    """train / val / test -> the file split each reads, and which part of it
    (``bench.data.splits.plan``): a split counts as there when it is labelled (VQA v2: it has
    an annotations file)."""
    root = Path(root)

    def labelled(split: str) -> str | None:
        for name in (split, *_ALIASES.get(split, ())):
            if _find(root, _PATTERNS[fmt].format(name)) is not None and (
                    fmt != "vqa2" or _find(root, f"v2_mscoco_{name}_annotations.json")):
                return name
        return None

    return plan(labelled)


def load_examples(root: str | Path, split: str, task: str = "vqa", fmt: str = "auto",
                  image_dir: str | Path | None = None) -> list[Example]:
    """Examples of one split; ``fmt`` "auto" detects the layout (see ``detect_format``).
    "train", "val" and "test" read what ``split_sources`` says; any other name, that file
    split whole."""
    if task not in ("vqa", "caption"):
        raise UserError(f"task {task!r}: not one of vqa, caption")
    check_complete(root)
    if fmt == "auto":
        fmt = detect_format(root, task)
    if fmt not in LOADERS:
        raise UserError(f"data format {fmt!r}: not one of auto, {', '.join(FORMATS)}")
    source = split_sources(root, fmt).get(split, SplitSource(split))
    if source.part != "all":
        _announce_held_out(Path(root), fmt)
    examples = select(LOADERS[fmt](root, source.name, image_dir), source.part,
                      lambda e: e.image_id)
    if not examples:
        raise UserError(f"split {split!r} under {root} has no examples")
    return examples


_ANNOUNCED: set[tuple[str, str]] = set()


def _announce_held_out(root: Path, fmt: str) -> None:
    """One line per data directory, in the main process only (pool workers load the same
    data again): the splits are not the files' own."""
    if (str(root), fmt) in _ANNOUNCED or multiprocessing.parent_process() is not None:
        return
    _ANNOUNCED.add((str(root), fmt))
    sources = split_sources(root, fmt)
    missing = "validation" if sources["test"].name in ("test", *_ALIASES["test"]) else "test"
    print(f"[data] {root} has no labelled {missing} split: "
          f"test = {sources['test'].describe()}, val = {sources['val'].describe()} (chosen "
          f"by image-id hash), train = {sources['train'].describe()}", flush=True)


def files_state(root: Path) -> tuple:
    """Path, size and mtime of every file under the data directory (~20 ms for the
    built-in data): regenerated or edited data is loaded again. A symbolic link that
    points nowhere counts as the link itself (a stale link beside the data is no error)."""
    state = []
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            st = os.stat(path) if os.path.exists(path) else os.lstat(path)
            state.append((folder, name, st.st_size, st.st_mtime_ns))
    return tuple(sorted(state))
