"""Which files give the harness's three splits: it trains on ``train``, picks its checkpoint
on ``val`` and reports on ``test``.

Data whose test split carries no labels is used the way the VQA v2 papers report: the VQA
v2 release itself (test-dev and test2015 answers are not public), or any set shipped as
train + val only. There the labelled val split becomes the test split, and a tenth of the
training images, with all their questions, is held out as the validation split: no image
is in two splits. Data shipped as train + test keeps its test split and holds out the
validation images the same way. The held-out images are chosen by a hash of the image id,
so the choice never depends on file order, the run's seed or which other images exist.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

HELD_OUT_FRACTION = 0.1  # of the training images, when the data has no labelled test split
_BUCKETS = 1000
SPLITS = ("train", "val", "test")

T = TypeVar("T")


@dataclass(frozen=True)
class SplitSource:
    """Where one split's examples come from: the file split ``name`` (e.g. train2014), all of
    it (``part`` "all"), its held-out images ("held-out") or all but those ("rest")."""

    name: str
    part: str = "all"

    def describe(self) -> str:
        if self.part == "held-out":
            return f"{HELD_OUT_FRACTION:.0%} of {self.name}'s images, held out"
        if self.part == "rest":
            return f"{self.name} less its held-out images"
        return self.name


def plan(labelled: Callable[[str], str | None]) -> dict[str, SplitSource]:
    """train / val / test -> their sources, given ``labelled(split)``: the file split that holds
    labelled examples for that split (or one of its official aliases), or None. With train
    and one of val / test, that one is the test split and val is held out of train. A split
    without a source is left out (loading it names what is missing)."""
    names = {s: labelled(s) for s in SPLITS}
    train, val, test = names["train"], names["val"], names["test"]
    if train is not None and (val is None) != (test is None):
        return {"train": SplitSource(train, "rest"), "val": SplitSource(train, "held-out"),
                "test": SplitSource(test or val)}
    return {s: SplitSource(n) for s, n in names.items() if n is not None}


def held_out_images(image_ids: Iterable) -> set:
    """The image ids whose hash falls in the held-out tenth; at least one image of two or
    more, so a small set still has a validation split."""
    ids = set(image_ids)
    chosen = {i for i in ids if _bucket(i) < HELD_OUT_FRACTION * _BUCKETS}
    if not chosen and len(ids) > 1:
        chosen = {min(ids, key=lambda i: (_bucket(i), str(i)))}
    return chosen


def select(examples: Sequence[T], part: str, image_id: Callable[[T], object]) -> list[T]:
    """The examples of ``part`` ("all", "held-out" or "rest"), in their file order."""
    if part == "all":
        return list(examples)
    held = held_out_images(image_id(e) for e in examples)
    return [e for e in examples if (image_id(e) in held) == (part == "held-out")]


def _bucket(image_id: object) -> int:
    return zlib.crc32(str(image_id).encode()) % _BUCKETS
