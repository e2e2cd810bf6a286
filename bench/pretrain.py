"""``fusebench pretrain vision|text``: tiny backbones for the frozen-LM family.

eP-ALM adapts a *pretrained* frozen ViT and OPT; random frozen weights would make that
meaningless. With no hub here, the harness pretrains small ones on the built-in data and
saves them in the formats real checkpoints use, so the same ``vision_path`` / ``lm_path``
keys take a real checkpoint instead:

- vision: a timm ViT whose patch tokens learn which object covers them (background or
  size x colour x shape, from ``scenes.json``); saved as a safetensors state dict.
- text: an OPT causal LM trained on the training split's captions and
  ``<s> question </a> answer </s>`` lines (eP-ALM's format); ``save_pretrained`` + tokenizer.

Outputs are cached under ``runs/pretrained/`` by a hash of the config and the data
manifest, so later runs reuse them. ``@pretrained`` as a path value means "this cache".
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .errors import UserError
from .io import atomic_write_json, staged_directory
from .schedule import set_lr

CACHE = Path("runs") / "pretrained"
PRETRAINED = "@pretrained"


def _key(kind: str, data_dir: Path, **settings) -> str:
    manifest = data_dir / "synthvqa.json"
    if not manifest.is_file():
        raise UserError(f"pretraining needs the built-in data (no {manifest}); "
                        "make it with `fusebench data make synthvqa`")
    blob = json.dumps({"kind": kind, **settings, "data": manifest.read_text()}, sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:10]


def _loop(model, batches, steps: int, lr: float, loss_fn) -> float:
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr,
                            weight_decay=0.01)
    model.train()
    loss = torch.tensor(float("nan"))
    for step, batch in zip(range(steps), batches):
        set_lr(opt, step, steps, warmup=min(100, steps // 10), min_lr_ratio=0.05,
               warmup_start_ratio=0.0)
        loss = loss_fn(model, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    return float(loss.detach())


def _epochs(n: int, batch_size: int, epochs: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        yield from torch.randperm(n, generator=g).split(batch_size)


def pretrain_vision(data_dir: str | Path, size: str = "micro", image_size: int = 64,
                    patch_size: int = 8, epochs: int = 6, seed: int = 0, lr: float = 2e-3,
                    force: bool = False) -> Path:
    """Path of the cached ViT state dict (``model.safetensors``), training it if missing.

    Dense supervision from ``scenes.json``: every patch token predicts which object covers
    the patch centre (size x colour x shape) or background, which teaches the patch tokens
    the spatial perception the fusion strategies read (64 labels per 64 px image)."""
    from safetensors.torch import save_file
    from timm.models.vision_transformer import VisionTransformer

    from variants.backbones import VIT_SIZES

    from .data.scenes import COLORS, SHAPES, SIZES

    data_dir = Path(data_dir)
    key = _key("vision", data_dir, size=size, image_size=image_size, patch=patch_size,
               epochs=epochs, seed=seed, lr=lr, target="patch-objects")
    out = CACHE / f"vit-{size}-{image_size}px-p{patch_size}-{key}"
    if (out / "model.safetensors").is_file() and not force:
        return out / "model.safetensors"
    classes = ["background"] + [f"{s} {c} {sh}" for s in SIZES for c in COLORS for sh in SHAPES]
    scenes = json.loads((data_dir / "scenes.json").read_text())
    scale = image_size / scenes.get("image_size", image_size)
    splits = {s: _patch_targets([r for r in scenes["images"] if r["split"] == s], data_dir,
                                image_size, patch_size, scale, classes) for s in ("train", "val")}
    torch.manual_seed(seed)
    width, depth, heads = VIT_SIZES[size]
    model = VisionTransformer(img_size=image_size, patch_size=patch_size, embed_dim=width,
                              depth=depth, num_heads=heads, num_classes=0)
    model.patch_head = torch.nn.Linear(width, len(classes))

    def patch_logits(m, x):
        return m.patch_head(m.forward_features(x)[:, m.num_prefix_tokens:])

    def loss_fn(m, batch):
        return F.cross_entropy(patch_logits(m, batch[0]).flatten(0, 1), batch[1].flatten())

    x, y = splits["train"]
    start = time.perf_counter()
    steps = epochs * -(-len(x) // 64)
    loss = _loop(model, ((x[i], y[i]) for i in _epochs(len(x), 64, epochs, seed)), steps, lr,
                 loss_fn)
    model.eval()
    with torch.no_grad():
        vx, vy = splits["val"]
        pred = patch_logits(model, vx).argmax(-1)
        objects = vy > 0
        acc = (pred == vy).float().mean().item()
        object_acc = (pred[objects] == vy[objects]).float().mean().item()
    state = {k: v.contiguous() for k, v in model.state_dict().items()
             if not k.startswith(("head.", "patch_head."))}
    meta = {"kind": "vision", "size": size, "image_size": image_size,
            "patch_size": patch_size,
            "task": "per-patch object class (background or size x colour x shape)",
            "epochs": epochs, "final_train_loss": loss, "val_patch_accuracy": acc,
            "val_object_patch_accuracy": object_acc, "data": str(data_dir),
            "seconds": time.perf_counter() - start}
    with staged_directory(out) as tmp:  # a killed pretraining never leaves a cache "hit"
        save_file(state, str(tmp / "model.safetensors"))
        atomic_write_json(tmp / "meta.json", meta)
    return out / "model.safetensors"


def _patch_targets(records: list[dict], data_dir: Path, image_size: int, patch_size: int,
                   scale: float, classes: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised pixels [N, 3, S, S] and per-patch class ids [N, (S/p)^2]."""
    from .data.dataset import load_image

    index = {c: i for i, c in enumerate(classes)}
    grid = image_size // patch_size
    centres = (torch.arange(grid) + 0.5) * patch_size
    ys, xs = torch.meshgrid(centres, centres, indexing="ij")
    labels = torch.zeros(len(records), grid * grid, dtype=torch.long)
    for i, r in enumerate(records):
        for o in r["objects"]:
            inside = ((xs - o["x"] * scale) ** 2 + (ys - o["y"] * scale) ** 2
                      <= (o["r"] * scale) ** 2).flatten()
            labels[i, inside] = index[f"{o['size']} {o['color']} {o['shape']}"]
    pixels = torch.from_numpy(np.stack([load_image(str(data_dir / r["file_name"]), image_size)
                                        for r in records]))
    return _normalise(pixels), labels


def _normalise(pixels: torch.Tensor) -> torch.Tensor:
    from .data.dataset import IMAGENET_MEAN, IMAGENET_STD

    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255
    return (pixels.float() - mean) / std


def pretrain_text(data_dir: str | Path, size: str = "micro", epochs: int = 3, seed: int = 0,
                  lr: float = 3e-3, max_len: int = 32, force: bool = False) -> Path:
    """Directory of the cached OPT (``save_pretrained`` + tokenizer), training it if missing."""
    from variants.opt import build_opt

    from .data.tokenizer import load_tokenizer

    data_dir = Path(data_dir)
    key = _key("text", data_dir, size=size, epochs=epochs, seed=seed, lr=lr, max_len=max_len)
    out = CACHE / f"opt-{size}-{key}"
    if (out / "config.json").is_file() and not force:
        return out
    tok = load_tokenizer(data_dir / "tokenizer")
    lines = _text_corpus(data_dir, tok)
    enc = tok(lines, add_special_tokens=False, truncation=True, max_length=max_len,
              padding="max_length", return_tensors="pt")
    ids, mask = enc["input_ids"], enc["attention_mask"]
    torch.manual_seed(seed)
    model = build_opt(size, vocab_size=len(tok), eos=tok.eos_token_id, pad=tok.pad_token_id)
    labels = ids.masked_fill(mask == 0, -100)

    def lm_loss(m, idx):
        return m(input_ids=ids[idx], attention_mask=mask[idx], labels=labels[idx]).loss

    start = time.perf_counter()
    steps = epochs * -(-len(ids) // 64)
    loss = _loop(model, _epochs(len(ids), 64, epochs, seed), steps, lr, lm_loss)
    with staged_directory(out) as tmp:  # config.json alone is never a cache "hit"
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        atomic_write_json(tmp / "meta.json", {
            "kind": "text", "size": size, "corpus_lines": len(lines), "epochs": epochs,
            "final_train_loss": loss, "data": str(data_dir),
            "seconds": time.perf_counter() - start})
    return out


def _text_corpus(data_dir: Path, tok) -> list[str]:
    """Training-split captions and ``<s> question </a> answer </s>`` lines."""
    from .data.loaders import load_examples

    bos, eos = tok.bos_token, tok.eos_token
    lines = [f"{bos} {ex.question} </a> {ex.answer} {eos}"
             for ex in load_examples(data_dir, "train", task="vqa")]
    lines += [f"{bos} {cap} {eos}" for ex in load_examples(data_dir, "train", task="caption")
              for cap in ex.answers]
    return lines


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pretrain", help="pretrain a tiny ViT or OPT on the built-in data")
    p.add_argument("kind", choices=("vision", "text"))
    p.add_argument("--data", help="built-in dataset directory (default: data/synthvqa)")
    p.add_argument("--size", default="micro", help="ViT or OPT size name (default micro)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true", help="retrain even if cached")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .experiment import ensure_data

    data_dir = ensure_data(args.data)
    extra = {"epochs": args.epochs} if args.epochs else {}
    if args.epochs is not None and args.epochs < 1:
        raise UserError("--epochs must be >= 1")
    if args.kind == "vision":
        path = pretrain_vision(data_dir, args.size, seed=args.seed, force=args.force, **extra)
    else:
        path = pretrain_text(data_dir, args.size, seed=args.seed, force=args.force, **extra)
    meta = Path(path if path.is_dir() else path.parent) / "meta.json"
    print(json.dumps(json.loads(meta.read_text()), indent=2))
    print(f"saved: {path}")
    return 0
