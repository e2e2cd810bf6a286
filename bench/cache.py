"""Frozen-feature cache: run a frozen image encoder once per image, reuse it every epoch.

eP-ALM's own tip ("since encoders are frozen, caching their outputs saves much training
time"). Features are computed per *unique image* of a split (questions share images), in
eval mode without gradients, and served through a collate that builds the ``Batch`` with
``image_features`` instead of pixels, so the model skips its image encoder entirely.
"""

from __future__ import annotations

import copy
import hashlib
import weakref
from collections import OrderedDict
from pathlib import Path

import torch

from variants.interface import Batch, FusionModel

from .atomic_files import atomic_write
from .weights import tensors_digest


class FeatureCache:
    def __init__(self, model: FusionModel, dataset, batch_size: int = 64,
                 device: str | torch.device = "cpu", first: dict | None = None,
                 features: dict[str, torch.Tensor] | None = None):
        """``first``: the features of the first ``batch_size`` images, when already computed
        (``shared``); ``features``: all of them (one row per image slot), read back from
        another process's file (``share_through``)."""
        if not model.image_encoder_frozen():
            raise ValueError("feature cache needs a frozen image encoder")
        self.dataset = dataset
        if features is not None:
            self.features = features
            return
        chosen = _one_question_per_image(dataset)
        chunks = [first] if first is not None else []
        for start in range(len(chunks) * batch_size, len(chosen), batch_size):
            chunks.append(_encode(model, dataset, chosen[start:start + batch_size], device))
        self.features = {k: torch.cat([c[k] for c in chunks]) for k in chunks[0]}

    def collate(self, items: list[int]) -> Batch:
        """DataLoader collate: the split's text and targets, cached image features."""
        idx = torch.as_tensor(items, dtype=torch.long)
        ds = self.dataset
        slots = ds.image_index[idx]
        return Batch(images=None, input_ids=ds.input_ids[idx],
                     attention_mask=ds.attention_mask[idx],
                     answer_scores=ds.answer_scores(idx), answer_ids=ds.answer_ids[idx],
                     image_features={k: v[slots] for k, v in self.features.items()}
                     ).without_padding()

    def over(self, dataset) -> FeatureCache:
        """The same cached features served for another view of this split (e.g. with the
        images swapped: ``bench.controls.swap_images``); nothing is recomputed."""
        view = copy.copy(self)
        view.dataset = dataset
        return view


# Features computed in this process, reused by every later model that encodes the same
# split identically: all points of a sweep share one frozen backbone (report: ~6 s each).
_SHARED: OrderedDict[tuple, FeatureCache] = OrderedDict()
SHARED_ENTRIES = 6  # three splits of two families' encoders
_THROUGH: Path | None = None  # where processes also share them (``share_through``)
_IMAGES_DIGEST: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # split -> sha256


def share_through(directory: str | Path | None) -> None:
    """Share computed features with other processes through files in ``directory`` as
    well (``None``: this process only). A report's workers train different points on the
    same frozen encoders: each would otherwise encode every split itself (~4 s a split,
    for 8 of the quick report's 16 points). The file is named by the encoder's features
    on the split's first images and a hash of all its pixels; it is written atomically,
    and a split whose images are not held in memory is not shared this way."""
    global _THROUGH
    _THROUGH = None if directory is None else Path(directory)


def shared(model: FusionModel, dataset, batch_size: int = 64,
           device: str | torch.device = "cpu") -> tuple[FeatureCache, bool]:
    """(cache, reused): this split's features, reused when an earlier model's encoder gave
    bit-identical features on the split's first ``batch_size`` images (computed every time,
    so a different encoder, checkpoint or feature layout never matches)."""
    first = _encode(model, dataset, _one_question_per_image(dataset)[:batch_size], device)
    key = (id(dataset), str(device), batch_size, tensors_digest(first))
    cached = _SHARED.get(key)
    if cached is not None and cached.dataset is dataset:
        _SHARED.move_to_end(key)
        return cached, True
    from safetensors.torch import load_file, save_file  # only where features are cached

    path = _shared_file(dataset, key)
    reused = path is not None and path.is_file()
    if reused:
        cache = FeatureCache(model, dataset, features=load_file(path))
    else:
        cache = FeatureCache(model, dataset, batch_size, device, first=first)
        if path is not None:
            atomic_write(path, lambda tmp: save_file(cache.features, tmp))
    _SHARED[key] = cache  # holds the dataset, so its id stays unique while cached
    while len(_SHARED) > SHARED_ENTRIES:
        _SHARED.popitem(last=False)
    return cache, reused


def _shared_file(dataset, key: tuple) -> Path | None:
    """The file through which other processes share these features (``share_through``)."""
    images = getattr(dataset, "images", None)
    if _THROUGH is None or images is None:
        return None
    if dataset not in _IMAGES_DIGEST:
        _IMAGES_DIGEST[dataset] = tensors_digest({"images": images})
    name = hashlib.sha256(repr((*key[1:], _IMAGES_DIGEST[dataset])).encode()).hexdigest()
    return _THROUGH / f"{name[:32]}.safetensors"


def _one_question_per_image(dataset) -> torch.Tensor:
    """For each image slot of the split, the index of one question about it."""
    chosen = torch.empty(int(dataset.image_index.max()) + 1, dtype=torch.long)
    chosen[dataset.image_index] = torch.arange(len(dataset))
    return chosen


def _encode(model: FusionModel, dataset, questions: torch.Tensor,
            device: str | torch.device) -> dict[str, torch.Tensor]:
    """Image features of ``questions``' images, in eval mode without gradients."""
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        pixels = dataset.pixels(questions).to(device)
        features = {k: v.cpu() for k, v in model.encode_image(pixels).items()}
    model.train(was_training)
    return features
