"""``fusebench pretrain vision|text``: tiny backbones for the frozen-LM family.

eP-ALM adapts a *pretrained* frozen ViT and OPT; random frozen weights would make that
meaningless. With no hub here, the harness pretrains small ones on the built-in data and
saves them in the formats real checkpoints use, so the same ``vision_path`` / ``lm_path``
keys take a real checkpoint instead:

- vision: a timm ViT whose patch tokens learn which object covers them and where
  (background or size x colour x shape, from ``scenes.json``) on the built-in data; on
  any other data, which answers the questions about each image get (``answer_task``);
  saved as a safetensors state dict.
- text: an OPT causal LM trained on the training split's captions (where the data has
  them) and ``<s> question </a> answer </s>`` lines (eP-ALM's format), packed into
  128-token sequences, for 3 epochs or as many as a small corpus needs (``text_epochs``);
  ``save_pretrained`` + tokenizer, and its loss on the validation split's corpus
  (``held_out_loss``) in the output and ``meta.json``.

Both need only a training split, so the presets' ``@pretrained`` backbones exist on
third-party data too (the frozen-LM family then reads a trained LM and ViT, not random
ones).

Outputs are cached under ``runs/pretrained/`` by a hash of the config and the data
manifest, so later runs reuse them. ``@pretrained`` as a path value means "this cache".
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from variants.backbones import build_vit
from variants.opt import build_opt

from . import reference
from .atomic_files import atomic_write_json, staged_directory
from .data.dataset import default_tokenizer
from .data.loaders import available_splits, files_state, load_examples
from .errors import UserError
from .lock import build_lock
from .pretrain_vision import answer_task, as_input, scene_task
from .schedule import set_lr
from .stages import stage

CACHE = Path("runs") / "pretrained"
PRETRAINED = "@pretrained"
ANSWER_STEPS = 1000  # vision pretraining on answer bags: about this many steps of 64 images
TEXT_LINES = 144_000  # text pretraining off the built-in data: at least this many lines seen


def can_pretrain(data_dir: Path) -> bool:
    """True when ``data_dir`` holds what dense vision pretraining reads (the built-in
    data's manifest and scene annotations); other data pretrains on its answers."""
    return (data_dir / "synthvqa.json").is_file() and (data_dir / "scenes.json").is_file()


_IDENTITIES: dict[tuple, Any] = {}  # what identifies a data directory, per kind and state


def _once_per_state(kind: str, data_dir: Path, identify: Callable[[], Any]) -> Any:
    """``identify()`` once per process for this directory and the state of its files
    (``files_state``): every point of a sweep asks for the same backbones, and reading a
    large dataset's annotations again for each would cost seconds a point."""
    root = data_dir.resolve()
    state = (kind, str(root), files_state(root))
    if state not in _IDENTITIES:
        _IDENTITIES[state] = identify()
    return _IDENTITIES[state]


def _corpus_identity(data_dir: Path) -> tuple[int, str]:
    """Lines of the text corpus ``pretrain_text`` would train on, and the digest of them
    and the tokenizer."""
    tok, lines = _text_corpus(data_dir)
    blob = json.dumps([lines, sorted(tok.get_vocab().items())])
    return len(lines), hashlib.sha1(blob.encode()).hexdigest()


def _answer_identity(data_dir: Path) -> tuple[int, str]:
    """Training images and the digest of their names, sizes and answers (what the answer
    pretraining of the ViT learns from)."""
    train = load_examples(data_dir, "train")
    images = sorted({e.image_path for e in train})
    blob = json.dumps([[(Path(p).name, os.path.getsize(p)) for p in images],
                       [(Path(e.image_path).name, e.answers) for e in train]])
    return len(images), hashlib.sha1(blob.encode()).hexdigest()


def _key(kind: str, data: str, **settings) -> str:
    """Cache key of a pretraining: its settings and ``data`` (what identifies the data)."""
    blob = json.dumps({"kind": kind, **settings, "data": data}, sort_keys=True)
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
                    patch_size: int = 8, epochs: int | None = None, seed: int = 0,
                    lr: float = 2e-3, force: bool = False, stem: str = "conv") -> Path:
    """Path of the cached ViT state dict (``model.safetensors``), training it if missing.

    On the built-in data, dense supervision from ``scenes.json`` (``scene_task``: per
    half-patch cell colour, shape and size, per token its row and column (classes and
    coordinates); the scene summary on [CLS]), 16 epochs, because the probe keeps rising
    until then (built-in data, val probe: 4 epochs colour 69.5 % / shape 42.3 %; 16 epochs
    colour 99.8 % / shape 91.5 %, position 94.1 %, size and count 100 %; 89 s on 2 cores;
    fresh clones load the shipped copy instead). Elsewhere the images' answer bags
    (``answer_task``), ~``ANSWER_STEPS`` steps of 64 images. ``meta.json`` records the
    linear probe of the frozen features on val images."""
    from safetensors.torch import save_file

    data_dir = Path(data_dir)
    scenes = can_pretrain(data_dir)
    if scenes:
        data, epochs, target = ((data_dir / "synthvqa.json").read_text(), epochs or 16,
                                "attributes+position")
    else:  # other data: identified by its training images (name, size) and answers
        images, data = _once_per_state("vision", data_dir, lambda: _answer_identity(data_dir))
        epochs, target = epochs or max(1, round(ANSWER_STEPS / -(-images // 64))), "answers"
    key = _key("vision", data, size=size, image_size=image_size, patch=patch_size,
               epochs=epochs, seed=seed, lr=lr, stem=stem, target=target)
    out = CACHE / f"vit-{size}-{stem}-{image_size}px-p{patch_size}-{key}"
    with build_lock(out, f"[pretrain] waiting for another command pretraining {out.name}"):
        if not force and ((out / "model.safetensors").is_file()
                          or reference.fetch(out, "model.safetensors")):
            return out / "model.safetensors"
        torch.manual_seed(seed)
        vit = build_vit(size, image_size, patch_size, stem=stem)
        task = (scene_task(data_dir, vit.embed_dim, image_size, patch_size) if scenes
                else answer_task(data_dir, vit.embed_dim, image_size))
        model = torch.nn.ModuleDict({"vit": vit, "heads": task.heads})

        def loss_fn(m, idx):
            tokens = m["vit"].forward_features(as_input(task.pixels[idx]))
            return m["heads"].loss(tokens, task.targets(idx), vit.num_prefix_tokens)

        start = time.perf_counter()
        n = len(task.pixels)
        steps = epochs * -(-n // 64)
        loss = _loop(model, _epochs(n, 64, epochs, seed), steps, lr, loss_fn,
                     desc=f"vision ViT-{size} ({stem} stem, {target}), {epochs} epochs")
        seconds = time.perf_counter() - start
        probes = task.probe(vit)
        state = {k: v.contiguous() for k, v in vit.state_dict().items()
                 if not k.startswith("head.")}
        meta = {"kind": "vision", "size": size, "stem": stem, "image_size": image_size,
                "patch_size": patch_size, "task": task.description, "epochs": epochs,
                "final_train_loss": loss, **{k: round(v, 2) for k, v in probes.items()},
                "data": str(data_dir), "seconds": round(seconds, 1)}
        with staged_directory(out) as tmp:  # a killed pretraining never leaves a cache "hit"
            save_file(state, str(tmp / "model.safetensors"))
            atomic_write_json(tmp / "meta.json", meta)
        return out / "model.safetensors"


def pretrain_text(data_dir: str | Path, size: str = "micro", epochs: int | None = None,
                  seed: int = 0, lr: float = 3e-3, block: int = 128, force: bool = False) -> Path:
    """Directory of the cached OPT (``save_pretrained`` + tokenizer), training it if missing.

    The corpus lines are packed end to end into ``block``-token sequences, as causal LMs
    are pretrained (OPT: 2048), so every position a frozen-LM strategy puts text at is a
    trained one: ``magma_all`` prepends 65 visual tokens, ``epalm`` a 10-token prompt.
    Padded single lines (~14 tokens) left positions past 31 at their random init. Measured
    on the built-in data, seed 0, quick rows (test acc / image reliance), padded 32 ->
    packed 128: magma_all 50.8 / 7.2 -> 52.8 / 9.4, epalm 48.2 / 4.2 -> 51.2 / 8.3,
    magma 50.8 / 7.5 -> 52.1 / 7.3, epalm_ada 53.1 / 8.7 -> 53.7 / 8.6. ``epochs``: 3 on
    the built-in data, elsewhere ``text_epochs`` of the corpus (a small one gets more)."""

    data_dir = Path(data_dir)
    manifest = data_dir / "synthvqa.json"
    if manifest.is_file():  # the built-in data: known before reading it (shipped copy)
        data, epochs = manifest.read_text(), epochs or 3
    else:  # other data: identified by its corpus and tokenizer
        lines, data = _once_per_state("text", data_dir, lambda: _corpus_identity(data_dir))
        epochs = epochs or text_epochs(lines)
    settings = dict(size=size, epochs=epochs, seed=seed, lr=lr, block=block)
    out = CACHE / f"opt-{size}-{_key('text', data, **settings)}"
    with build_lock(out, f"[pretrain] waiting for another command pretraining {out.name}"):
        if not force and ((out / "config.json").is_file() or reference.fetch(out, "config.json")):
            return out
        tok, lines = _text_corpus(data_dir)
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
        seconds = time.perf_counter() - start
        val_loss = held_out_loss(model, tok, data_dir, block)
        print("[pretrain] text: held-out loss " + (f"{val_loss:.3f} per token on the validation "
              "split's corpus" if val_loss is not None else "not measured (the "
              "validation corpus is shorter than one block)"), flush=True)
        with staged_directory(out) as tmp:  # config.json alone is never a cache "hit"
            model.save_pretrained(tmp)
            tok.save_pretrained(tmp)
            atomic_write_json(tmp / "meta.json", {
                "kind": "text", "size": size, "corpus_lines": len(lines), "block": block,
                "sequences": len(ids), "epochs": epochs, "final_train_loss": loss,
                "val_loss": val_loss, "data": str(data_dir), "seconds": seconds})
        return out


def text_epochs(lines: int) -> int:
    """Epochs of text pretraining on a corpus of ``lines`` (off the built-in data): 3, or as
    many as it takes to see ``TEXT_LINES`` lines, the built-in corpus's 3 epochs. Three
    epochs of a small corpus leave the micro OPT short of its questions' answer priors:
    measured, the nine frozen-LM rows (quick plan, seed 0, test acc, paired over the test
    questions) gain 3.6 points [1.9, 5.3] on a 12,000-line VQA v2 layout set (3 -> 12
    epochs) and 4.1 [1.5, 6.8] on a 6,000-line one (3 -> 24)."""
    return max(3, -(-TEXT_LINES // max(1, lines)))


def _packed(lines: list[list[int]], block: int) -> torch.Tensor:
    """Token lines concatenated and cut into ``[N, block]`` (the tail shorter than a block
    is dropped)."""
    flat = torch.tensor([token for line in lines for token in line], dtype=torch.long)
    if len(flat) < block:
        raise UserError(f"the text corpus has {len(flat)} tokens, fewer than one "
                        f"{block}-token block")
    return flat[: len(flat) // block * block].view(-1, block)


def _text_corpus(data_dir: Path, split: str = "train") -> tuple[Any, list[str]]:
    """The tokenizer training runs use on this data (``default_tokenizer``, made from the
    training split) and the corpus of ``split`` (``_corpus_lines``)."""

    train = load_examples(data_dir, "train", task="vqa")
    tok = default_tokenizer(data_dir, train)
    return tok, _corpus_lines(data_dir, split, tok, train if split == "train" else None)


def _corpus_lines(data_dir: Path, split: str, tok, examples: list | None = None) -> list[str]:
    """``<s> question </a> answer </s>`` lines of ``split`` (its ``examples`` where already
    loaded), then its captions where the data has COCO-style caption files."""
    examples = examples if examples is not None else load_examples(data_dir, split, task="vqa")
    bos, eos = tok.bos_token, tok.eos_token
    lines = [f"{bos} {ex.question} </a> {ex.answer} {eos}" for ex in examples]
    if available_splits(data_dir, "coco-captions"):
        lines += [f"{bos} {cap} {eos}" for ex in load_examples(data_dir, split, task="caption")
                  for cap in ex.answers]
    return lines


def held_out_loss(model, tok, data_dir: Path, block: int) -> float | None:
    """Mean next-token loss of the LM on the validation split's corpus, packed as its
    training corpus is (eval mode): whether more epochs still teach it anything or only
    fit the training lines. None when the validation corpus is shorter than a block."""
    lines = _corpus_lines(data_dir, "val", tok)
    flat = [t for line in tok(lines, add_special_tokens=False)["input_ids"] for t in line]
    if len(flat) < block:
        return None
    ids = _packed([flat], block)
    model.eval()
    with torch.no_grad():
        losses = [model(input_ids=b, labels=b).loss * len(b) for b in ids.split(8)]
    return float(sum(losses) / len(ids))
