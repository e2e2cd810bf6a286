"""Vision pretraining on the built-in scenes, and a linear probe of what the features hold.

The fusion strategies and eP-ALM read a *frozen* image encoder, so its features decide how
much any fusion can answer. ``scenes.json`` says exactly what each image shows, so the
encoder learns it densely, in minutes on 2 cores:

- every patch token predicts, for each of the 2x2 cells it covers, the colour, shape and
  size of the object at the cell centre (or background): what, at half-patch resolution,
  so small objects that miss a patch centre still get labels;
- every patch token also predicts its own row and column, as classes and as coordinates
  in [-1, 1] (regressed, so "left of" and "leftmost" are linear in the features): without
  these targets the features forget the position embedding (a linear probe found an
  object's grid cell from its token 48 % of the time), and spatial questions need where
  as well as what;
- the [CLS] token predicts the number of objects and which colours, shapes, sizes and
  colour-shape pairs are present: the scene summary eP-ALM injects into the LM.

``probe`` measures the result the way representation papers do: ridge-regression linear
classifiers on frozen features, fit on train images and scored on val images, per
attribute (object colour, shape, size and grid cell from the patch token at the object's
centre; the object count from [CLS]).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .data.dataset import load_image, normalise
from .data.scenes import COLORS, MAX_OBJECTS, SHAPES, SIZES

ATTRIBUTES = {"color": tuple(COLORS), "shape": SHAPES, "size": SIZES}
PAIRS = [(c, s) for c in COLORS for s in SHAPES]


def scene_split(data_dir: Path, split: str, image_size: int) -> tuple[list[dict], torch.Tensor]:
    """Scene records of one split (coordinates scaled to ``image_size``) and their
    normalised pixels [N, 3, S, S]."""

    scenes = json.loads((data_dir / "scenes.json").read_text())
    scale = image_size / scenes.get("image_size", image_size)
    records = []
    for r in scenes["images"]:
        if r["split"] == split:
            objects = [{**o, "x": o["x"] * scale, "y": o["y"] * scale, "r": o["r"] * scale}
                       for o in r["objects"]]
            records.append({**r, "objects": objects})
    pixels = np.stack([load_image(str(data_dir / r["file_name"]), image_size) for r in records])
    return records, normalise(torch.from_numpy(pixels))


def dense_targets(records: list[dict], image_size: int, patch_size: int) -> dict:
    """Per-cell attribute ids [N, G, G] for G = 2 * image_size / patch_size (0 = background),
    the object count [N] and the multi-hot scene summary [N, K] the [CLS] head predicts."""
    grid = 2 * image_size // patch_size
    centres = (torch.arange(grid) + 0.5) * (patch_size / 2)
    ys, xs = torch.meshgrid(centres, centres, indexing="ij")
    cells = {a: torch.zeros(len(records), grid, grid, dtype=torch.long) for a in ATTRIBUTES}
    summary = torch.zeros(len(records), sum(map(len, ATTRIBUTES.values())) + len(PAIRS))
    for i, r in enumerate(records):
        for o in r["objects"]:
            inside = (xs - o["x"]) ** 2 + (ys - o["y"]) ** 2 <= o["r"] ** 2
            offset = 0
            for attr, values in ATTRIBUTES.items():
                cells[attr][i][inside] = values.index(o[attr]) + 1
                summary[i, offset + values.index(o[attr])] = 1
                offset += len(values)
            summary[i, offset + PAIRS.index((o["color"], o["shape"]))] = 1
    count = torch.tensor([len(r["objects"]) for r in records])
    return {"cells": cells, "count": count, "summary": summary}


class PretrainHeads(torch.nn.Module):
    """Linear heads on the frozen-to-be ViT: per patch token, 2x2 cells x attribute classes
    and its own row and column on the ``grid`` x ``grid`` token grid (classes, and
    coordinates in [-1, 1]); on [CLS], the object count and the scene's multi-hot summary."""

    def __init__(self, width: int, summary_size: int, grid: int):
        super().__init__()
        self.cell = torch.nn.ModuleDict({a: torch.nn.Linear(width, 4 * (len(v) + 1))
                                         for a, v in ATTRIBUTES.items()})
        self.count = torch.nn.Linear(width, MAX_OBJECTS + 1)
        self.summary = torch.nn.Linear(width, summary_size)
        self.position = torch.nn.Linear(width, 2 * grid)
        self.coords = torch.nn.Linear(width, 2)

    def loss(self, tokens: torch.Tensor, targets: dict, prefix: int) -> torch.Tensor:
        """tokens [B, prefix + HW, C] from ``forward_features``; targets for this batch."""
        cls, patches = tokens[:, 0], tokens[:, prefix:]
        B, HW, _ = patches.shape
        side = int(HW ** 0.5)
        loss = F.cross_entropy(self.count(cls), targets["count"].clamp(max=MAX_OBJECTS))
        loss = loss + F.binary_cross_entropy_with_logits(self.summary(cls), targets["summary"])
        for attr, head in self.cell.items():
            logits = head(patches).view(B, side, side, 2, 2, -1)  # token (i, j), cell (a, b)
            logits = logits.permute(0, 1, 3, 2, 4, 5).reshape(B, 2 * side, 2 * side, -1)
            loss = loss + F.cross_entropy(logits.flatten(0, 2), targets["cells"][attr].flatten())
        rows, cols = self.position(patches).view(B, side, side, 2, side).unbind(3)
        index = torch.arange(side, device=patches.device)
        loss = loss + F.cross_entropy(rows.flatten(0, 2), index.repeat_interleave(side).repeat(B))
        loss = loss + F.cross_entropy(cols.flatten(0, 2), index.repeat(side * B))
        unit = (2 * index + 1) / side - 1  # token centres in [-1, 1]
        yx = torch.stack(torch.meshgrid(unit, unit, indexing="ij"), -1).view(1, HW, 2)
        loss = loss + F.mse_loss(self.coords(patches), yx.expand(B, -1, -1))
        return loss


@torch.no_grad()
def features(vit: torch.nn.Module, pixels: torch.Tensor, batch: int = 256) -> torch.Tensor:
    vit.eval()
    return torch.cat([vit.forward_features(pixels[i:i + batch])
                      for i in range(0, len(pixels), batch)])


def _object_rows(records: list[dict], tokens: torch.Tensor, patch_size: int, prefix: int):
    """The patch token under each object's centre, and the object's attribute ids and the
    index of that token on the grid (``cell``)."""
    side = int((tokens.shape[1] - prefix) ** 0.5)
    rows, labels = [], {a: [] for a in (*ATTRIBUTES, "cell")}
    for i, r in enumerate(records):
        for o in r["objects"]:
            col = min(side - 1, int(o["x"] // patch_size))
            row = min(side - 1, int(o["y"] // patch_size))
            rows.append(tokens[i, prefix + row * side + col])
            labels["cell"].append(row * side + col)
            for a, values in ATTRIBUTES.items():
                labels[a].append(values.index(o[a]))
    return torch.stack(rows), {a: torch.tensor(v) for a, v in labels.items()}


def _ridge_accuracy(x_train, y_train, x_val, y_val, classes: int, ridge: float = 1e-2) -> float:
    """Val accuracy of a least-squares linear classifier (one-hot targets, L2 ``ridge``,
    features standardised on train)."""
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    xt = torch.cat([(x_train - mean) / std, torch.ones(len(x_train), 1)], 1).double()
    xv = torch.cat([(x_val - mean) / std, torch.ones(len(x_val), 1)], 1).double()
    y = F.one_hot(y_train, classes).double()
    w = torch.linalg.solve(xt.T @ xt + ridge * len(xt) * torch.eye(xt.shape[1],
                                                                    dtype=xt.dtype), xt.T @ y)
    return float(((xv @ w).argmax(1) == y_val).double().mean())


def probe(vit: torch.nn.Module, train: tuple, val: tuple, patch_size: int) -> dict[str, float]:
    """Linear-probe val accuracy (%) per attribute of frozen ``vit`` features; ``train`` and
    ``val`` are ``(records, pixels)`` from ``scene_split``."""
    prefix = getattr(vit, "num_prefix_tokens", 1)
    (rec_t, pix_t), (rec_v, pix_v) = train, val
    tok_t, tok_v = features(vit, pix_t), features(vit, pix_v)
    obj_t, lab_t = _object_rows(rec_t, tok_t, patch_size, prefix)
    obj_v, lab_v = _object_rows(rec_v, tok_v, patch_size, prefix)
    out = {f"probe_{a}_acc": 100 * _ridge_accuracy(obj_t, lab_t[a], obj_v, lab_v[a], len(v))
           for a, v in ATTRIBUTES.items()}
    side = int((tok_t.shape[1] - prefix) ** 0.5)
    out["probe_position_acc"] = 100 * _ridge_accuracy(obj_t, lab_t["cell"], obj_v,
                                                      lab_v["cell"], side * side)
    count_t = torch.tensor([len(r["objects"]) for r in rec_t])
    count_v = torch.tensor([len(r["objects"]) for r in rec_v])
    out["probe_count_acc"] = 100 * _ridge_accuracy(tok_t[:, 0], count_t, tok_v[:, 0], count_v,
                                                   MAX_OBJECTS + 1)
    out["probe_count_chance"] = 100 * float((count_v == count_t.mode().values).double().mean())
    return out
