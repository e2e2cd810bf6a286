"""``fusebench pretrain vision|text``: tiny backbones for the frozen-LM family.

eP-ALM adapts a *pretrained* frozen ViT and OPT; random frozen weights would make that
meaningless. With no hub here, the harness pretrains small ones on the built-in data and
saves them in the formats real checkpoints use, so the same ``vision_path`` / ``lm_path``
keys take a real checkpoint instead:

- vision: a timm ViT whose patch tokens learn which object covers them (background or
  size x colour x shape, from ``scenes.json``); saved as a safetensors state dict.
- text: an OPT causal LM trained on the training split's captions and
  ``<s> question </a> answer </s>`` lines (eP-ALM's format), packed into 128-token
  sequences; ``save_pretrained`` + tokenizer.

Outputs are cached under ``runs/pretrained/`` by a hash of the config and the data
manifest, so later runs reuse them. ``@pretrained`` as a path value means "this cache".
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import torch

from variants.backbones import build_vit
from variants.opt import build_opt

from . import reference
from .atomic_files import atomic_write_json, staged_directory
from .data.loaders import load_examples
from .data.tokenizer import load_tokenizer
from .errors import UserError
from .pretrain_vision import PretrainHeads, dense_targets, probe, scene_split
from .schedule import set_lr
from .stages import stage

CACHE = Path("runs") / "pretrained"
PRETRAINED = "@pretrained"


def can_pretrain(data_dir: Path) -> bool:
    """True when ``data_dir`` holds what pretraining reads: the built-in data's manifest
    and scene annotations."""
    return (data_dir / "synthvqa.json").is_file() and (data_dir / "scenes.json").is_file()


def _key(kind: str, data_dir: Path, **settings) -> str:
    manifest = data_dir / "synthvqa.json"
    if not manifest.is_file():
        raise UserError(f"pretraining needs the built-in data (no {manifest}); "
                        "make it with `fusebench data make synthvqa`")
    blob = json.dumps({"kind": kind, **settings, "data": manifest.read_text()}, sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:10]


def _loop(model, batches, steps: int, lr: float, loss_fn, desc: str = "pretrain") -> float:
    """AdamW over ``steps`` batches with warm-up + cosine; a progress bar on a terminal,
    one line at the start and the end otherwise (logs stay free of carriage returns)."""
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr,
                            weight_decay=0.01)
    model.train()
    print(f"[pretrain] {desc}: {steps} steps", flush=True)
    start = time.perf_counter()
    with stage(f"pretrain {desc}"):
        loss = _steps(model, opt, batches, steps, loss_fn, desc)
    print(f"[pretrain] {desc}: done in {time.perf_counter() - start:.0f} s, "
          f"final loss {loss:.3f}", flush=True)
    return loss


def _steps(model, opt, batches, steps: int, loss_fn, desc: str) -> float:
    from tqdm.auto import tqdm

    loss = torch.tensor(float("nan"))
    bar = tqdm(total=steps, desc=desc, unit="step", leave=False, disable=None)
    for step, batch in zip(range(steps), batches):
        set_lr(opt, step, steps, warmup=min(100, steps // 10), min_lr_ratio=0.05,
               warmup_start_ratio=0.0)
        loss = loss_fn(model, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        bar.update(1)
    bar.close()
    return float(loss.detach())


def _epochs(n: int, batch_size: int, epochs: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        yield from torch.randperm(n, generator=g).split(batch_size)


def pretrain_vision(data_dir: str | Path, size: str = "micro", image_size: int = 64,
                    patch_size: int = 8, epochs: int = 16, seed: int = 0, lr: float = 2e-3,
                    force: bool = False, stem: str = "conv") -> Path:
    """Path of the cached ViT state dict (``model.safetensors``), training it if missing.

    Dense supervision from ``scenes.json`` (``bench.pretrain_vision``: per half-patch cell
    colour, shape and size, per token its row and column (classes and coordinates); the scene
    summary on [CLS]);
    ``meta.json`` records the linear probe of the frozen features per attribute on val
    images. 16 epochs, because the probe keeps rising until then (built-in data, val probe:
    4 epochs colour 69.5 % / shape 42.3 %; 16 epochs colour 99.8 % / shape 91.5 %,
    position 94.1 %, size and count 100 %; 147 s on 2 cores then, 89 s with the channels-last
    stem; fresh clones on the built-in data load the shipped copy instead)."""
    from safetensors.torch import save_file

    data_dir = Path(data_dir)
    if not (data_dir / "scenes.json").is_file():
        raise UserError(f"vision_path=@pretrained pretrains the micro ViT on the scene "
                        f"annotations of the built-in data (scenes.json), which {data_dir} "
                        "lacks; give a local ViT checkpoint (vision_path=PATH) or train the "
                        "encoder from raw pixels (vision_path= freeze_vision=false)")
    key = _key("vision", data_dir, size=size, image_size=image_size, patch=patch_size,
               epochs=epochs, seed=seed, lr=lr, stem=stem, target="attributes+position")
    out = CACHE / f"vit-{size}-{stem}-{image_size}px-p{patch_size}-{key}"
    if not force and ((out / "model.safetensors").is_file()
                      or reference.fetch(out, "model.safetensors")):
        return out / "model.safetensors"
    train, val = (scene_split(data_dir, s, image_size) for s in ("train", "val"))
    targets = dense_targets(train[0], image_size, patch_size)
    torch.manual_seed(seed)
    vit = build_vit(size, image_size, patch_size, stem=stem)
    heads = PretrainHeads(vit.embed_dim, targets["summary"].shape[1],
                          grid=image_size // patch_size)
    model = torch.nn.ModuleDict({"vit": vit, "heads": heads})

    def loss_fn(m, idx):
        batch = {"count": targets["count"][idx], "summary": targets["summary"][idx],
                 "cells": {a: t[idx] for a, t in targets["cells"].items()}}
        tokens = m["vit"].forward_features(train[1][idx])
        return m["heads"].loss(tokens, batch, vit.num_prefix_tokens)

    start = time.perf_counter()
    n = len(train[1])
    steps = epochs * -(-n // 64)
    loss = _loop(model, _epochs(n, 64, epochs, seed), steps, lr, loss_fn,
                 desc=f"vision ViT-{size} ({stem} stem), {epochs} epochs")
    seconds = time.perf_counter() - start
    probes = probe(vit, train, val, patch_size)
    state = {k: v.contiguous() for k, v in vit.state_dict().items() if not k.startswith("head.")}
    meta = {"kind": "vision", "size": size, "stem": stem, "image_size": image_size,
            "patch_size": patch_size, "task": "per half-patch cell colour/shape/size, per "
            "token its row and column (classes, coordinates); [CLS]: object count and "
            "present attributes",
            "epochs": epochs, "final_train_loss": loss,
            **{k: round(v, 2) for k, v in probes.items()}, "data": str(data_dir),
            "seconds": round(seconds, 1)}
    with staged_directory(out) as tmp:  # a killed pretraining never leaves a cache "hit"
        save_file(state, str(tmp / "model.safetensors"))
        atomic_write_json(tmp / "meta.json", meta)
    return out / "model.safetensors"


def pretrain_text(data_dir: str | Path, size: str = "micro", epochs: int = 3, seed: int = 0,
                  lr: float = 3e-3, block: int = 128, force: bool = False) -> Path:
    """Directory of the cached OPT (``save_pretrained`` + tokenizer), training it if missing.

    The corpus lines are packed end to end into ``block``-token sequences, as causal LMs
    are pretrained (OPT: 2048), so every position a frozen-LM strategy puts text at is a
    trained one: ``magma_all`` prepends 65 visual tokens, ``epalm`` a 10-token prompt.
    Padded single lines (~14 tokens) left positions past 31 at their random init. Measured
    on the built-in data, seed 0, quick rows (test acc / image reliance), padded 32 ->
    packed 128: magma_all 50.8 / 7.2 -> 52.8 / 9.4, epalm 48.2 / 4.2 -> 51.2 / 8.3,
    magma 50.8 / 7.5 -> 52.1 / 7.3, epalm_ada 53.1 / 8.7 -> 53.7 / 8.6."""

    data_dir = Path(data_dir)
    key = _key("text", data_dir, size=size, epochs=epochs, seed=seed, lr=lr, block=block)
    out = CACHE / f"opt-{size}-{key}"
    if not force and ((out / "config.json").is_file() or reference.fetch(out, "config.json")):
        return out
    tok = load_tokenizer(data_dir / "tokenizer")
    lines = _text_corpus(data_dir, tok)
    ids = _packed(tok(lines, add_special_tokens=False)["input_ids"], block)
    torch.manual_seed(seed)
    model = build_opt(size, vocab_size=len(tok), eos=tok.eos_token_id, pad=tok.pad_token_id)

    def lm_loss(m, idx):
        return m(input_ids=ids[idx], labels=ids[idx]).loss

    start = time.perf_counter()
    batch_size = max(1, 1024 // block)  # ~1k tokens a step, as 64 padded lines were
    steps = epochs * -(-len(ids) // batch_size)
    loss = _loop(model, _epochs(len(ids), batch_size, epochs, seed), steps, lr, lm_loss,
                 desc=f"text OPT-{size}, {epochs} epochs")
    with staged_directory(out) as tmp:  # config.json alone is never a cache "hit"
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        atomic_write_json(tmp / "meta.json", {
            "kind": "text", "size": size, "corpus_lines": len(lines), "block": block,
            "sequences": len(ids), "epochs": epochs, "final_train_loss": loss,
            "data": str(data_dir), "seconds": time.perf_counter() - start})
    return out


def _packed(lines: list[list[int]], block: int) -> torch.Tensor:
    """Token lines concatenated and cut into ``[N, block]`` (the tail shorter than a block
    is dropped)."""
    flat = torch.tensor([token for line in lines for token in line], dtype=torch.long)
    if len(flat) < block:
        raise UserError(f"the text corpus has {len(flat)} tokens, fewer than one "
                        f"{block}-token block")
    return flat[: len(flat) // block * block].view(-1, block)


def _text_corpus(data_dir: Path, tok) -> list[str]:
    """Training-split captions and ``<s> question </a> answer </s>`` lines."""

    bos, eos = tok.bos_token, tok.eos_token
    lines = [f"{bos} {ex.question} </a> {ex.answer} {eos}"
             for ex in load_examples(data_dir, "train", task="vqa")]
    lines += [f"{bos} {cap} {eos}" for ex in load_examples(data_dir, "train", task="caption")
              for cap in ex.answers]
    return lines
