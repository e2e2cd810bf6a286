"""Profile one strategy at one config: the figures a comparison needs, as one flat Row.

Two passes:
1. **meta** (always): the model is built on the meta device, so any size (ViT-L/384 with a
   deep fusion stack, OPT-6.7B) costs no weight memory. Parameters and FlopCounterMode's
   count come from it.
2. **measured** (when the model fits ``max_params``): a real, seeded instance gives fvcore's
   count (the cross-check), peak memory for inference and for one AdamW training step,
   latency (median and IQR over repeats), throughput and MFU.
FLOPs are forward multiply-adds per example (batch 1), fvcore convention; GFLOPs = 1e9.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from . import validate as v
from .env import environment
from .errors import UserError
from .flops import FlopCount, _fc_sdpa_cpu, component_flops, count_flop_counter_mode, count_fvcore
from .measure import matmul_peak_flops, peak_memory, time_fn
from .row import (
    ACHIEVED_GFLOPS,
    FLOPS_AGREE_PCT,
    FUSION_DEPTH,
    GFLOPS,
    GFLOPS_FCM,
    LATENCY,
    LATENCY_IQR,
    MEM_INFER,
    MEM_TRAIN,
    MFU,
    PARAMS_TOTAL,
    PARAMS_TRAINABLE,
    PEAK_GFLOPS,
    THROUGHPUT,
    TRAINABLE_PCT,
)
from .spec import ModelSpec
from .validate import check_device, check_fits_memory

MiB = 2**20


@dataclass
class ProfileSpec:
    """What to profile (``model``) and how: batch, device, timing repeats, whether to run
    the real model (``measure``: auto | always | never) and its size limit."""

    model: ModelSpec
    batch_size: int = 8
    device: str = "cpu"
    warmup: int = 2
    repeats: int = 10
    measure: str = "auto"  # auto | always | never
    max_params: float = 400e6
    seed: int = 0


def build_meta(model: ModelSpec):
    """The model on the meta device (weights have shapes, no storage)."""
    with torch.device("meta"):
        return model.create()


def param_counts(model: torch.nn.Module) -> dict[str, float]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    row: dict[str, float] = {
        PARAMS_TOTAL: total,
        PARAMS_TRAINABLE: trainable,
        TRAINABLE_PCT: 100.0 * trainable / total if total else 0.0,
    }
    for role, counts in model.component_parameters().items():  # embedded modules moved
        row[f"params_{role}"] = counts["total"]
    return row


def flop_figures(model: torch.nn.Module, count: FlopCount, prefix: str) -> dict[str, float]:
    row: dict[str, float] = {f"gflops_{prefix}": count.total / 1e9}
    for role, value in component_flops(count, model.components(), model).items():
        row[f"gflops_{prefix}_{role}"] = value / 1e9
    return row


MEASURE = ("auto", "always", "never")


def check_profile_spec(spec: ProfileSpec) -> None:
    """Types and ranges of the measurement settings (``UserError`` naming the field)."""

    try:
        v.count("batch_size", spec.batch_size, 1, v.MAX_BATCH)
        v.count("repeats", spec.repeats, 1, v.MAX_REPEATS)
        v.count("warmup", spec.warmup, 0, v.MAX_REPEATS)
    except UserError as e:  # keep the message the CLI has always given, with the value
        raise UserError(f"batch size and repeats must be >= 1, warmup >= 0 ({e})") from None
    v.choice("measure", spec.measure, MEASURE)
    v.number("max_params", spec.max_params, 0)
    v.seed("seed", spec.seed)
    v.parse_device(spec.device)


def check_measurable(spec: ProfileSpec, cfg: Any, params: float) -> None:
    """Refuse, before allocating, a measured pass the device's memory cannot hold: fp32
    weights, gradients and AdamW's two moments, plus the input batch."""

    images = spec.batch_size * 3 * cfg.image_size ** 2 * 4
    check_fits_memory(f"measuring {spec.model.strategy} at batch {spec.batch_size} "
                      f"({params:.3g} parameters)", 16 * params + images, spec.device)


def profile(spec: ProfileSpec) -> dict[str, Any]:
    """Run both passes and return one Row (flat dict, stable column names)."""
    check_profile_spec(spec)  # a typo fails now, not after the meta pass
    meta = build_meta(spec.model)
    row: dict[str, Any] = {"strategy": spec.model.strategy, "family": meta.family,
                           "preset": spec.model.preset or ""}
    row.update({f"cfg.{k}": v for k, v in asdict(meta.cfg).items()})
    row[FUSION_DEPTH] = meta.cfg.fusion_depth
    row.update(param_counts(meta))

    fcm = count_flop_counter_mode(meta, meta.dummy_batch(1, "meta"))
    row.update(flop_figures(meta, fcm, "fcm"))
    row[GFLOPS] = row[GFLOPS_FCM]
    row.update(meta.profile_extras(_meta_counter))

    measure = spec.measure == "always" or (
        spec.measure == "auto" and row[PARAMS_TOTAL] <= spec.max_params)
    row["measured"] = measure
    if measure:
        check_measurable(spec, meta.cfg, row[PARAMS_TOTAL])
        row.update(_measure(spec, fcm))
    row["seed"] = spec.seed
    row.update(environment(spec.device))
    return row


def _meta_counter(fn) -> int:
    """Multiply-adds of ``fn()`` (FlopCounterMode, SDPA handled); for ``profile_extras``."""

    custom = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _fc_sdpa_cpu}
    with torch.no_grad(), FlopCounterMode(display=False, custom_mapping=custom) as mode:
        fn()
    return mode.get_total_flops() // 2


def _measure(spec: ProfileSpec, fcm: FlopCount) -> dict[str, Any]:
    device = torch.device(spec.device)
    check_device(device)
    torch.manual_seed(spec.seed)
    model = spec.model.create().to(device)
    model.eval()
    row: dict[str, Any] = {}

    fv = count_fvcore(model, model.dummy_batch(1, device))
    row.update(flop_figures(model, fv, "fvcore"))
    row[FLOPS_AGREE_PCT] = 100.0 * abs(fv.total - fcm.total) / max(fv.total, 1)
    row["uncounted_ops"] = ",".join(fv.uncounted_ops)
    row["elementwise_ops"] = ",".join(fv.elementwise_ops)

    batch = model.dummy_batch(spec.batch_size, device)

    def infer():
        with torch.inference_mode():
            return model(batch)

    mem, method = peak_memory(infer, model, device)
    row[MEM_INFER] = mem / MiB
    row["mem_method"] = method

    timing = time_fn(infer, device, spec.warmup, spec.repeats)
    row.update({
        "batch_size": spec.batch_size,
        LATENCY: 1e3 * timing.median_s,
        LATENCY_IQR: 1e3 * timing.iqr_s,
        "latency_min_ms": 1e3 * timing.min_s,
        "repeats": timing.repeats,
        THROUGHPUT: spec.batch_size / timing.median_s,
    })
    achieved = 2 * fv.total * spec.batch_size / timing.median_s  # FLOP/s, 2 per multiply-add
    peak = matmul_peak_flops(spec.device)
    row[ACHIEVED_GFLOPS] = achieved / 1e9
    row[PEAK_GFLOPS] = peak / 1e9
    row[MFU] = 100.0 * achieved / peak

    row[MEM_TRAIN] = _train_step_memory(model, spec, device) / MiB
    return row


def over_best_peak(rows: dict[Any, dict]) -> dict[Any, dict]:
    """Profile rows with their inference MFU over the best matmul peak this process has
    measured on their device, measured once more now (``matmul_peak_flops(again=True)``):
    run after a batch of profiles, so that one slow moment of a shared machine at the first
    does not set every MFU of the batch (it once made them twice too high)."""
    peaks: dict[str, float] = {}
    out = {}
    for key, row in rows.items():
        achieved = row.get(ACHIEVED_GFLOPS)
        if achieved is None or math.isnan(achieved):  # not measured (FLOP counts only)
            out[key] = row
            continue
        if row["device"] not in peaks:
            peaks[row["device"]] = matmul_peak_flops(row["device"], again=True) / 1e9
        peak = peaks[row["device"]]
        out[key] = {**row, PEAK_GFLOPS: peak,
                    MFU: 100.0 * achieved / peak}
    return out


def _train_step_memory(model: torch.nn.Module, spec: ProfileSpec, device: torch.device) -> float:
    """Peak bytes of one training step: forward, backward and the first AdamW step (which
    allocates the optimizer state), on the trainable parameters only."""
    model.train()
    batch = model.dummy_batch(spec.batch_size, device, targets=True)
    params = model.trainable_parameters()
    if not params:
        return math.nan
    opt = torch.optim.AdamW(params, lr=1e-4)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = model(batch).loss
        loss.backward()
        opt.step()

    mem, _ = peak_memory(step, model, device)
    model.eval()
    return mem


def _fmt(value, unit: str = "", digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}g}{unit}"
    return f"{value:,}{unit}"


def render_text(row: dict) -> str:
    """Human-readable profile: sections with units and conventions spelled out."""
    out = [f"{row['strategy']} ({row['family']}"
           + (f", preset {row['preset']})" if row["preset"] else ")"),
           "  config: " + ", ".join(f"{k[4:]}={v}" for k, v in row.items()
                                     if k.startswith("cfg.") and v not in ("", None)),
           "parameters",
           f"  total {_fmt(row['params_total'])}   trainable {_fmt(row['params_trainable'])}"
           f"   trainable {row['trainable_pct']:.3f} %"]
    roles = [k[7:] for k in row if k.startswith("params_") and k[7:] not in ("total",
                                                                             "trainable")]
    out.append("  by component: " + ", ".join(f"{r} {_fmt(row['params_' + r])}" for r in roles))
    out.append("forward GFLOPs per example (1 multiply-add = 1 FLOP, fvcore convention)")
    out.append(f"  FlopCounterMode (halved): {row['gflops_fcm']:.4f}")
    if row.get("measured"):
        out.append(f"  fvcore:                   {row['gflops_fvcore']:.4f}"
                   f"   (counters differ by {row['flops_agree_pct']:.3f} %)")
    else:
        out.append("  fvcore: not run (model built on meta device only; see --measure)")
    prefix = "gflops_fvcore_" if row.get("measured") else "gflops_fcm_"
    parts = {k[len(prefix):]: v for k, v in row.items() if k.startswith(prefix)}
    out.append("  by component: " + ", ".join(f"{k} {v:.4f}" for k, v in parts.items()))
    for key in (k for k in row if k.startswith("gflops_per_")):
        out.append(f"  {key[7:].replace('_', ' ')}: {row[key]:.4f}")
    if row.get("measured"):
        if row["uncounted_ops"]:
            out.append(f"  UNCOUNTED ops (no handle): {row['uncounted_ops']}")
        out.append(f"  not counted by convention (elementwise/norm): {row['elementwise_ops']}")
        out += [
            f"memory ({row['mem_method']}), batch {row['batch_size']}",
            f"  inference peak {_fmt(row['mem_infer_mib'], ' MiB')}"
            f"   training step peak (fwd+bwd+AdamW) {_fmt(row['mem_train_mib'], ' MiB')}",
            f"latency on {row['device']} ({row['device_name']}, {row['threads']} threads),"
            f" batch {row['batch_size']}, {row['repeats']} repeats",
            f"  median {_fmt(row['latency_ms'], ' ms')}   IQR {_fmt(row['latency_iqr_ms'], ' ms')}"
            f"   min {_fmt(row['latency_min_ms'], ' ms')}",
            f"  throughput {_fmt(row['throughput_eps'], ' examples/s')}",
            f"  MFU {row[MFU]:.2f} % = {row[ACHIEVED_GFLOPS]:.3g} GFLOP/s achieved"
            f" / {row[PEAK_GFLOPS]:.3g} GFLOP/s measured fp32 matmul peak"
            " (both 2 FLOPs per multiply-add)",
        ]
    else:
        out.append("memory, latency, MFU: not measured (model larger than --max-params; "
                   "use --measure always to run it)")
    out.append(f"environment: torch {row['torch_version']}, transformers "
               f"{row['transformers_version']}, timm {row['timm_version']}, commit {row['commit']}")
    return "\n".join(out)
