"""Learning-rate schedule: linear warm-up then cosine decay, per parameter group.

eP-ALM's recipe: start at ``warmup_start_lr`` (1e-5), warm up to ``lr`` (2e-5), cosine to
``min_lr`` (1e-6). Groups marked ``fixed_lr`` (eP-ALM's prompt and adapters, fixed 1e-5)
keep their rate.
"""

from __future__ import annotations

import math

import torch


def lr_at(step: int, total: int, warmup: int, lr: float, min_lr: float,
          warmup_start_lr: float) -> float:
    if warmup and step < warmup:
        return warmup_start_lr + (lr - warmup_start_lr) * step / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * progress))


def set_lr(optimizer: torch.optim.Optimizer, step: int, total: int, warmup: int,
           min_lr_ratio: float, warmup_start_ratio: float) -> float:
    """Set each non-fixed group's lr from its own ``initial_lr``; return the first group's."""
    first = None
    for group in optimizer.param_groups:
        base = group.setdefault("initial_lr", group["lr"])
        if not group.get("fixed_lr", False):
            group["lr"] = lr_at(step, total, warmup, base, base * min_lr_ratio,
                                base * warmup_start_ratio)
        first = group["lr"] if first is None else first
    return first if first is not None else 0.0
