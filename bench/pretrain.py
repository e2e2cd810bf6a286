"""``fusebench pretrain vision|text``: tiny backbones for the frozen-LM family.

eP-ALM adapts a *pretrained* frozen ViT and OPT; random frozen weights would make that
meaningless. With no hub here, the harness pretrains small ones on the built-in data and
saves them in the formats real checkpoints use, so the same ``vision_path`` / ``lm_path``
keys take a real checkpoint instead:

- vision: a timm ViT trained to recognise which objects a scene holds (multi-label over
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
from .io import atomic_write_json
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
    return float(loss)


def _epochs(n: int, batch_size: int, epochs: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        yield from torch.randperm(n, generator=g).split(batch_size)


def pretrain_vision(data_dir: str | Path, size: str = "micro", image_size: int = 64,
                    patch_size: int = 8, epochs: int = 8, seed: int = 0, lr: float = 2e-3,
                    force: bool = False) -> Path:
    """Path of the cached ViT state dict (``model.safetensors``), training it if missing."""
    from safetensors.torch import save_file
    from timm.models.vision_transformer import VisionTransformer

    from variants.backbones import VIT_SIZES

    from .data.dataset import load_image
    from .data.scenes import COLORS, SHAPES, SIZES

    data_dir = Path(data_dir)
    out = CACHE / f"vit-{size}-{image_size}px-p{patch_size}-" + _key(
        "vision", data_dir, size=size, image_size=image_size, patch=patch_size, epochs=epochs,
        seed=seed, lr=lr)
    if (out / "model.safetensors").is_file() and not force:
        return out / "model.safetensors"
    combos = [(s, c, sh) for s in SIZES for c in COLORS for sh in SHAPES]
    index = {c: i for i, c in enumerate(combos)}
    scenes = json.loads((data_dir / "scenes.json").read_text())["images"]
    splits = {}
    for split in ("train", "val"):
        recs = [r for r in scenes if r["split"] == split]
        pixels = torch.from_numpy(np.stack(
            [load_image(str(data_dir / r["file_name"]), image_size) for r in recs]))
        labels = torch.zeros(len(recs), len(combos))
        for i, r in enumerate(recs):
            for o in r["objects"]:
                labels[i, index[(o["size"], o["color"], o["shape"])]] = 1.0
        splits[split] = (_normalise(pixels), labels)

    torch.manual_seed(seed)
    width, depth, heads = VIT_SIZES[size]
    model = VisionTransformer(img_size=image_size, patch_size=patch_size, embed_dim=width,
                              depth=depth, num_heads=heads, num_classes=len(combos))
    x, y = splits["train"]
    start = time.perf_counter()
    steps = epochs * -(-len(x) // 64)
    loss = _loop(model, ((x[i], y[i]) for i in _epochs(len(x), 64, epochs, seed)), steps, lr,
                 lambda m, b: F.binary_cross_entropy_with_logits(m(b[0]), b[1]))
    model.eval()
    with torch.no_grad():
        vx, vy = splits["val"]
        pred = model(vx) > 0
        f1 = 2 * (pred & (vy > 0)).sum() / (pred.sum() + (vy > 0).sum()).clamp_min(1)
    state = {k: v.contiguous() for k, v in model.state_dict().items()
             if not k.startswith("head.")}
    out.mkdir(parents=True, exist_ok=True)
    save_file(state, str(out / "model.safetensors"))
    atomic_write_json(out / "meta.json", {
        "kind": "vision", "size": size, "image_size": image_size, "patch_size": patch_size,
        "task": "multi-label object presence (size x colour x shape)", "epochs": epochs,
        "final_train_loss": loss, "val_micro_f1": float(f1), "data": str(data_dir),
        "seconds": time.perf_counter() - start})
    return out / "model.safetensors"


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
    out = CACHE / f"opt-{size}-" + _key("text", data_dir, size=size, epochs=epochs, seed=seed,
                                        lr=lr, max_len=max_len)
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
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    atomic_write_json(out / "meta.json", {
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
