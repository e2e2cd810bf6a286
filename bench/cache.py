"""Frozen-feature cache: run a frozen image encoder once per image, reuse it every epoch.

eP-ALM's own tip ("since encoders are frozen, caching their outputs saves much training
time"). Features are computed per *unique image* of a split (questions share images), in
eval mode without gradients, and served through a collate that builds the ``Batch`` with
``image_features`` instead of pixels, so the model skips its image encoder entirely.
"""

from __future__ import annotations

import copy

import torch

from variants.interface import Batch, FusionModel


class FeatureCache:
    def __init__(self, model: FusionModel, dataset, batch_size: int = 64,
                 device: str | torch.device = "cpu"):
        if not model.image_encoder_frozen():
            raise ValueError("feature cache needs a frozen image encoder")
        self.dataset = dataset
        num_images = int(dataset.image_index.max()) + 1
        representative = torch.empty(num_images, dtype=torch.long)
        representative[dataset.image_index] = torch.arange(len(dataset))  # one question each
        chunks: list[dict[str, torch.Tensor]] = []
        was_training = model.training
        model.eval()
        with torch.inference_mode():
            for start in range(0, num_images, batch_size):
                idx = representative[start:start + batch_size]
                pixels = dataset.pixels(idx).to(device)
                chunks.append({k: v.cpu() for k, v in model.encode_image(pixels).items()})
        model.train(was_training)
        self.features = {k: torch.cat([c[k] for c in chunks]) for k in chunks[0]}

    def collate(self, items: list[int]) -> Batch:
        """DataLoader collate: the split's text and targets, cached image features."""
        idx = torch.as_tensor(items, dtype=torch.long)
        ds = self.dataset
        slots = ds.image_index[idx]
        return Batch(images=None, input_ids=ds.input_ids[idx],
                     attention_mask=ds.attention_mask[idx],
                     answer_scores=ds.answer_scores(idx), answer_ids=ds.answer_ids[idx],
                     image_features={k: v[slots] for k, v in self.features.items()})

    def over(self, dataset) -> FeatureCache:
        """The same cached features served for another view of this split (e.g. with the
        images swapped: ``bench.controls.swap_images``); nothing is recomputed."""
        view = copy.copy(self)
        view.dataset = dataset
        return view
