"""The training loop: AdamW, warm-up + cosine, clipping, accumulation, checkpoints, resume.

``fit`` trains any registered strategy on any ``Dataset`` whose collate yields ``Batch``.
Reproducible: the data order of epoch e is a permutation seeded by ``seed * 1000 + e``, and the
torch RNG state (dropout) is saved in every checkpoint, so ``--resume`` from step k gives
the same weights as an uninterrupted run. Checkpoints are safetensors (the trainable state;
frozen weights once per run, ``bench.weights``) plus a tensors-and-numbers trainer state
read back with ``weights_only=True``; a checkpoint directory becomes visible only through
an atomic ``latest`` pointer.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler, Sampler

from .atomic_files import append_line, atomic_write_json
from .checkpoint import load_checkpoint, resume_checkpoint, save_checkpoint
from .distributed import DDPContext, from_env
from .flops import counting_flops
from .schedule import set_lr
from .train_config import TrainConfig, warmup_for


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; studies mark such a trial failed with this reason."""


class ImageGroupedSampler(Sampler[int]):
    """Questions in a random order, except that up to ``group`` questions about one image
    come side by side (``TrainConfig.image_group``): with 5 questions an image and groups
    of 5, a batch of 64 questions shows ~13 images, and an encoder that trains runs on 13
    images, not 64 (``Batch.image_slots``); the same step seen from fewer images."""

    def __init__(self, image_index: torch.Tensor, group: int, generator: torch.Generator):
        self.image_index, self.group, self.generator = image_index, group, generator

    def __len__(self) -> int:
        return len(self.image_index)

    def __iter__(self) -> Iterator[int]:
        order = torch.randperm(len(self.image_index), generator=self.generator)
        images = self.image_index[order]
        # the k-th question of its image (in this order) joins group k // size of that image
        by_image = torch.sort(images, stable=True)
        starts = torch.searchsorted(by_image.values, by_image.values, side="left")
        rank = torch.empty_like(order)
        rank[by_image.indices] = torch.arange(len(order)) - starts
        group_id = images * len(order) + rank // self.group
        _, group_of = torch.unique(group_id, return_inverse=True)
        shuffled = torch.randperm(int(group_of.max()) + 1, generator=self.generator)
        yield from order[torch.sort(shuffled[group_of], stable=True).indices].tolist()


def _loader(dataset: Dataset, cfg: TrainConfig, epoch: int, collate,
            ddp: DDPContext | None = None, group_images: bool = False) -> DataLoader:
    generator = torch.Generator().manual_seed(cfg.seed * 1000 + epoch)
    sampler = RandomSampler(dataset, generator=generator)
    if group_images and cfg.image_group > 1:
        sampler = ImageGroupedSampler(dataset.image_index, cfg.image_group, generator)
    batch_size = cfg.batch_size
    if ddp is not None:  # same permutation, dealt out to the ranks (bench/distributed.py)
        sampler = ddp.shard(sampler)
        batch_size //= ddp.world_size
    # the loader's own generator also seeds its iterator, which would otherwise draw from
    # the global RNG and shift the dropout stream of a resumed run
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, collate_fn=collate,
                      drop_last=False, num_workers=0, generator=generator)


def fit(model: torch.nn.Module, train_set: Dataset, collate: Callable, cfg: TrainConfig,
        out_dir: str | Path, *, evaluate: Callable[[torch.nn.Module], dict] | None = None,
        on_eval: Callable[[int, dict], None] | None = None, resume: bool = False,
        stop_at_step: int | None = None) -> dict[str, Any]:
    """Train ``model`` in place; return the final summary (steps, time, last eval metrics).

    evaluate: called at every epoch end, returns metrics (e.g. val accuracy).
    on_eval: called with (epoch, metrics) after each evaluation; an optuna objective
        raises ``TrialPruned`` from here.
    stop_at_step: checkpoint and return after this step without changing the schedule
        (an interruption; ``resume=True`` continues exactly).
    Under ``torchrun`` (WORLD_SIZE > 1) it trains data-parallel: ``cfg.batch_size`` is the
    global batch, split over the processes; only rank 0 writes logs and checkpoints.
    """
    cfg.validate()
    if resume:
        resume_checkpoint(out_dir)  # no checkpoint: an error now, never a silent restart
    ddp = from_env(cfg.device, cfg.batch_size)
    job = _FitJob(model, train_set, collate, cfg, Path(out_dir), evaluate, on_eval, resume,
                  stop_at_step, ddp)
    if ddp is None:
        return _fit(job)
    try:
        summary = _fit(job)
    except BaseException:
        ddp.close(wait=False)  # a peer may be gone: do not wait for it
        raise
    ddp.close()
    return summary


@dataclass(frozen=True)
class _FitJob:
    """What one ``fit`` call trains, on what, and how it reports (``fit``'s arguments)."""

    model: torch.nn.Module
    train_set: Dataset
    collate: Callable
    cfg: TrainConfig
    out: Path
    evaluate: Callable | None
    on_eval: Callable | None
    resume: bool
    stop_at_step: int | None
    ddp: DDPContext | None


def _fit(job: _FitJob) -> dict[str, Any]:
    model, train_set, collate, cfg, out = job.model, job.train_set, job.collate, job.cfg, job.out
    evaluate, on_eval, resume, stop_at_step, ddp = (job.evaluate, job.on_eval, job.resume,
                                                    job.stop_at_step, job.ddp)
    main = ddp is None or ddp.main
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(cfg.device) if ddp is None else ddp.device
    model.to(device)
    encoder_trains = _encoder_trains(model)
    group_images = encoder_trains and hasattr(train_set, "image_index")
    if cfg.shift_pixels and not encoder_trains and main and not resume:
        print(f"note: shift_pixels={cfg.shift_pixels} shifts the images of an image encoder "
              "that trains; this model's does not train, so its images are not shifted", flush=True)
    optimizer = adamw(model.param_groups(cfg.lr, cfg.weight_decay), device)
    steps_per_epoch = math.ceil(math.ceil(len(train_set) / cfg.batch_size) / cfg.accum_steps)
    total = steps_per_epoch * cfg.epochs
    if cfg.max_steps:
        total = min(total, cfg.max_steps)
    warmup = warmup_for(cfg, total)
    state = {"step": 0, "epoch": 0, "elapsed_s": 0.0, "step_s": 0.0, "images_encoded": 0,
             "counted_flops": 0, "counted_steps": 0, "last_eval": {}, "evals": []}
    if resume:
        state = load_checkpoint(out, model, optimizer)
    else:
        torch.manual_seed(cfg.seed)
    if main:
        atomic_write_json(out / "train_config.json", asdict(cfg))
    forward = model if ddp is None else ddp.wrap(model)
    # once, not per step: walking every parameter of a model with a frozen backbone costs
    # ~1 ms a step (~3 % of a quick-preset step; nothing unfreezes while it trains)
    trained = model.trainable_parameters()

    use_amp = cfg.amp and device.type == "cuda"
    start = time.perf_counter() - state["elapsed_s"]
    bar = _progress(cfg, total, state["step"], main)
    while state["step"] < total:
        epoch = state["step"] // steps_per_epoch
        skip = (state["step"] % steps_per_epoch) * cfg.accum_steps
        batches = itertools.islice(iter(_loader(train_set, cfg, epoch, collate, ddp,
                                                group_images)), skip, None)
        model.train()
        for micro_batches in _chunks(batches, cfg.accum_steps):
            lr = set_lr(optimizer, state["step"], total, warmup, cfg.min_lr_ratio,
                        cfg.warmup_start_ratio)
            # an epoch's first step is counted (its FLOPs, forward and backward, of a real
            # batch) and not timed (counting slows it); every other step is timed
            counted = state["step"] % steps_per_epoch == 0
            if cfg.shift_pixels and encoder_trains:
                shifted(micro_batches, cfg.shift_pixels, cfg.seed * 1_000_003 + state["step"])
            step_start = time.perf_counter()
            with counting_flops(counted) as flops:
                loss = _step(forward, trained, optimizer, micro_batches,
                             device, use_amp, cfg.grad_clip, ddp)
            if counted:
                state["counted_flops"] += flops()
                state["counted_steps"] += 1
            else:
                state["step_s"] += time.perf_counter() - step_start
            state["images_encoded"] += sum(len(b.images) for b in micro_batches
                                           if b.images is not None)
            if ddp is not None:  # every rank sees the global loss (and diverges together)
                loss = ddp.mean(loss)
            if not math.isfinite(loss):
                raise TrainingDiverged(f"loss became {loss} at step {state['step']}")
            state["step"] += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}")
            if main and (state["step"] % cfg.log_every == 0 or state["step"] == total):
                _log(out, {"step": state["step"], "epoch": epoch, "lr": lr, "loss": loss,
                           "elapsed_s": time.perf_counter() - start})
            epoch_end = state["step"] % steps_per_epoch == 0 or state["step"] == total
            if epoch_end and evaluate is not None:
                state["last_eval"] = {k: float(v) for k, v in evaluate(model).items()}
                state["evals"] = [*state["evals"], state["last_eval"]]
                if main:
                    _log(out, {"step": state["step"], "epoch": epoch, "phase": "eval",
                               **state["last_eval"]})
                model.train()
                if on_eval is not None:
                    on_eval(epoch, state["last_eval"])
            if main and (epoch_end or (cfg.checkpoint_every and
                                       state["step"] % cfg.checkpoint_every == 0)):
                state["elapsed_s"] = time.perf_counter() - start
                save_checkpoint(out, model, optimizer, state)
            if stop_at_step is not None and state["step"] >= stop_at_step:
                state["elapsed_s"] = time.perf_counter() - start
                if main:
                    save_checkpoint(out, model, optimizer, state)
                bar.close()
                return {**_summary(state), "interrupted": True}
            if state["step"] >= total or epoch_end:
                break
    bar.close()
    state["elapsed_s"] = time.perf_counter() - start
    return _summary(state)


def adamw(groups: list[dict], device: torch.device) -> torch.optim.AdamW:
    """AdamW with torch's fused kernel where it has one (CPU and CUDA): one pass over all
    tensors instead of ~10 small ops per parameter tensor (the tiny preset's models have
    ~100 of them). The same update as the per-tensor loop up to float rounding."""
    return torch.optim.AdamW(groups, fused=device.type in ("cpu", "cuda"))


def _summary(state: dict) -> dict[str, Any]:
    """steps; train_time_s (wall, evaluations included); step_time_s (inside the timed
    optimizer steps: forward, backward, clipping, update of collated batches); timed_steps
    (all but each epoch's first, whose FLOPs were counted instead); step_flops (FLOPs of
    a counted step, their mean: matmuls, convolutions, attention, forward and backward,
    2 per multiply-add); images_encoded (the pixel images the steps' image encoder ran on:
    each distinct image of a batch once, none with cached features); evals (every
    evaluation's metrics, in order: the learning curve); the last evaluation's metrics."""
    counted = state["counted_steps"]
    return {"steps": state["step"], "train_time_s": state["elapsed_s"],
            "step_time_s": state["step_s"], "timed_steps": state["step"] - counted,
            "step_flops": state["counted_flops"] / counted if counted else math.nan,
            "images_encoded": state["images_encoded"], "evals": state["evals"],
            **state["last_eval"]}


def _step(forward, params, optimizer, micro_batches, device, use_amp: bool, grad_clip: float,
          ddp: DDPContext | None = None) -> float:
    """One optimizer step over ``micro_batches``; returns the (accumulated) loss."""
    optimizer.zero_grad(set_to_none=True)
    total = 0.0
    for i, batch in enumerate(micro_batches):
        batch = batch.to(device)
        sync = nullcontext() if ddp is None else ddp.no_sync(forward,
                                                              i == len(micro_batches) - 1)
        with sync:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                loss = forward(batch).loss / len(micro_batches)
            loss.backward()
        total += loss.item()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(params, grad_clip)
    optimizer.step()
    return total


def shifted(batches: list, pixels: int, seed: int) -> None:
    """Shift every image of ``batches`` (in place) by its own random offset of up to
    ``pixels`` each way, edges replicated: an encoder trained from raw pixels sees a
    slightly different view of an image each time (a standard augmentation that keeps
    relative positions, sizes and colours). Seeded by step, so a resumed run repeats it."""
    generator = torch.Generator().manual_seed(seed)
    for batch in batches:
        if batch.images is None:
            continue
        images = batch.images
        size = images.shape[-2:]
        padded = torch.nn.functional.pad(images, (pixels,) * 4, mode="replicate")
        offsets = torch.randint(0, 2 * pixels + 1, (len(images), 2), generator=generator)
        batch.images = torch.stack([padded[i, :, y:y + size[0], x:x + size[1]]
                                    for i, (y, x) in enumerate(offsets.tolist())])


def _encoder_trains(model: torch.nn.Module) -> bool:
    """True when the model's image encoder trains (it runs on every batch's pixels)."""
    frozen = getattr(model, "image_encoder_frozen", None)
    return frozen is not None and not frozen()


def _chunks(iterable, size: int) -> Iterator[list]:
    it = iter(iterable)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def _progress(cfg: TrainConfig, total: int, initial: int, main: bool = True):
    """A step bar on a terminal; none where stderr is not one (``epoch_line_printer``
    gives a log its lines) or without ``progress``."""
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, disable=None if cfg.progress and main else True,
                unit="step", dynamic_ncols=True, leave=False)


def epoch_line_printer(label: str, epochs: int) -> Callable[[int, dict], None]:
    """An ``on_eval`` callback for a log: one line per validated epoch, with its validation
    accuracy, the seconds spent and an estimate of what is left."""
    start = time.perf_counter()

    def report(epoch: int, metrics: dict) -> None:
        done, spent = epoch + 1, time.perf_counter() - start
        print(f"{label}: epoch {done}/{epochs}, val {metrics.get('val_vqa_acc', math.nan):.1f} "
              f"%, {spent:.0f} s, ~{spent / done * max(0, epochs - done):.0f} s left",
              flush=True)
    return report


def _log(out: Path, record: dict) -> None:
    append_line(out / "metrics.jsonl", json.dumps(record))
