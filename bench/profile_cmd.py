"""``fusebench profile STRATEGY``: every figure of one config, with units."""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys

from .config import add_model_args, model_overrides
from .profiling import ProfileSpec, profile


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("profile", help="params, GFLOPs (2 counters), memory, latency, MFU")
    add_model_args(p)
    p.add_argument("--batch-size", type=int, default=8, help="batch for latency and memory")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--measure", choices=("auto", "always", "never"), default="auto",
                   help="run the real model (auto: only when params <= --max-params)")
    p.add_argument("--max-params", type=float, default=400e6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    spec = ProfileSpec(args.strategy, args.preset, model_overrides(args), args.batch_size,
                       args.device, args.warmup, args.repeats, args.measure, args.max_params,
                       args.seed)
    row = profile(spec)
    if args.format == "json":
        print(json.dumps(row, indent=2, default=str))
    elif args.format == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=list(row))
        writer.writeheader()
        writer.writerow(row)
    else:
        print(render(row))
    return 0


def _fmt(value, unit: str = "", digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}g}{unit}"
    return f"{value:,}{unit}"


def render(row: dict) -> str:
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
            f"  MFU {row['mfu_pct']:.2f} % = {row['achieved_gflops_per_s']:.3g} GFLOP/s achieved"
            f" / {row['peak_gflops_per_s']:.3g} GFLOP/s measured fp32 matmul peak"
            " (both 2 FLOPs per multiply-add)",
        ]
    else:
        out.append("memory, latency, MFU: not measured (model larger than --max-params; "
                   "use --measure always to run it)")
    out.append(f"environment: torch {row['torch_version']}, transformers "
               f"{row['transformers_version']}, timm {row['timm_version']}, commit {row['commit']}")
    return "\n".join(out)
