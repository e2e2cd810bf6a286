"""FLOP counting with two independent counters that agree on what they count.

Convention: **one multiply-add = one FLOP** (fvcore's; the papers' "GFLOPs" use it too).
``torch.utils.flop_counter.FlopCounterMode`` counts 2 per multiply-add; we halve it.

Both counters count the same op families: matmuls (linear, mm, bmm, matmul, einsum),
convolutions and attention (``scaled_dot_product_attention``: QK^T plus AV, i.e.
``B·H·Lq·Lk·(d_qk + d_v)`` multiply-adds, full square even when causal). Neither counter
has a handle out of the box for attention on CPU: fvcore reports it as unsupported, and
FlopCounterMode counts 0 for the CPU flash kernel. We register both. Normalisations,
activations and other elementwise ops are not counted by either (they are O(tokens·width)
and memory-bound); the profile lists them by name so nothing is uncounted silently.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from math import prod
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count

from variants.interface import Batch, FusionModel

# Elementwise / bookkeeping ops neither counter counts (memory-bound; listed, not hidden).
ELEMENTWISE = {
    "add", "add_", "sub", "rsub", "mul", "mul_", "div", "neg", "pow", "sqrt", "rsqrt", "exp",
    "gelu", "relu", "silu", "tanh", "sigmoid", "softmax", "log_softmax", "dropout",
    "layer_norm", "group_norm", "batch_norm", "embedding", "mean", "sum", "clamp_min",
    "clamp", "new_ones", "new_zeros", "ones_like", "zeros_like", "masked_fill", "where",
    "cumsum", "argmax", "max", "topk", "scatter", "gather", "index_select", "eq", "ne", "lt",
    "gt", "le", "ge", "logical_not", "bitwise_not", "bitwise_or", "bitwise_and", "any", "all",
    "fill_", "full", "arange", "abs", "lerp", "linalg_vector_norm", "norm", "var", "std",
    "upsample_bicubic2d", "upsample_bilinear2d", "adaptive_avg_pool1d", "avg_pool2d", "cat",
    "max_pool2d", "max_pool2d_with_indices", "adaptive_avg_pool2d",
    "stack", "repeat", "expand", "to", "type_as", "triu", "tril", "erf", "sin", "cos", "ones",
    "zeros", "sort", "log", "minimum", "maximum", "floor_divide", "remainder", "index",
    "diff", "slice_scatter", "index_put_", "copy_", "masked_fill_", "baddbmm_norm", "flip",
}


def sdpa_macs(q_shape, k_shape, v_shape) -> int:
    """Multiply-adds of softmax(QK^T)V for q [..., Lq, d], k [..., Lk, d], v [..., Lk, dv]."""
    *batch, lq, d = q_shape
    lk, dv = k_shape[-2], v_shape[-1]
    return prod(batch) * lq * lk * (d + dv)


def _fvcore_sdpa(inputs: list[Any], outputs: list[Any]) -> int:
    from fvcore.nn.jit_handles import get_shape

    q, k, v = (get_shape(x) for x in inputs[:3])
    return sdpa_macs(q, k, v)


def _fc_sdpa_cpu(query_shape, key_shape, value_shape, *args, **kwargs) -> int:
    """FlopCounterMode formula (2 per multiply-add) for the CPU flash-attention kernel;
    FlopCounterMode hands custom formulas the argument shapes."""
    return 2 * sdpa_macs(query_shape, key_shape, value_shape)


@dataclass
class FlopCount:
    """Forward FLOPs (multiply-adds) from one counter, total and per module name."""

    counter: str
    total: int
    by_module: dict[str, int]
    by_op: dict[str, int]
    uncounted_ops: list[str] = field(default_factory=list)  # ops with no handle, non-elementwise
    elementwise_ops: list[str] = field(default_factory=list)  # not counted by convention
    logits_shape: tuple[int, ...] = ()  # of the counted forward (FlopCounterMode only)


class _TensorForward(nn.Module):
    """fvcore traces with tensor arguments; rebuild the Batch and return the logits."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, images, input_ids, attention_mask):
        return self.model(Batch(images, input_ids, attention_mask)).logits


def count_fvcore(model: nn.Module, batch) -> FlopCount:
    """fvcore's FlopCountAnalysis (jit trace; needs real tensors, not meta)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fvcore's import uses deprecated torch.jit.script
        from fvcore.nn import FlopCountAnalysis

    wrapper = _TensorForward(model)
    analysis = FlopCountAnalysis(wrapper, (batch.images, batch.input_ids, batch.attention_mask))
    analysis.set_op_handle("aten::scaled_dot_product_attention", _fvcore_sdpa)
    zeroed: set[str] = set()  # fvcore counts norms/pooling, FlopCounterMode does not

    def not_counted(name: str):
        def handle(inputs, outputs) -> int:
            zeroed.add(name)
            return 0
        return handle

    for op in ("layer_norm", "group_norm", "batch_norm", "instance_norm", "upsample_nearest2d",
               "upsample_bilinear2d", "adaptive_avg_pool2d", "grid_sampler"):
        analysis.set_op_handle(f"aten::{op}", not_counted(op))
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    analysis.tracer_warnings("none")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # jit tracer and torch.jit deprecation chatter
        total = analysis.total()
    unsupported = Counter({k.split("::")[-1]: v for k, v in analysis.unsupported_ops().items()})
    by_module = {_strip(k, "model"): v for k, v in analysis.by_module().items()}
    return FlopCount(
        "fvcore", int(total), by_module, dict(analysis.by_operator()),
        uncounted_ops=sorted(k for k in unsupported if k not in ELEMENTWISE),
        elementwise_ops=sorted({k for k in unsupported if k in ELEMENTWISE} | zeroed),
    )


def _fc_sdpa_cpu_backward(grad_out_shape, query_shape, key_shape, value_shape, *args,
                          **kwargs) -> int:
    """FlopCounterMode formula for the CPU flash-attention backward kernel (torch's own
    count for the other attention backwards: the scores recomputed, then 4 matmuls)."""
    return sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)


_CPU_ATTENTION = {
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _fc_sdpa_cpu,
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward: _fc_sdpa_cpu_backward,
}


@contextmanager
def counting_flops(enabled: bool = True) -> Iterator[Callable[[], int]]:
    """Count what runs inside the block, forward and backward (FlopCounterMode with both
    CPU attention kernels; 2 FLOPs per multiply-add, matmuls, convolutions and attention
    only); yields a function giving the count so far (0 when not ``enabled``)."""
    if not enabled:
        yield lambda: 0
        return
    with FlopCounterMode(display=False, custom_mapping=_CPU_ATTENTION) as mode:
        yield mode.get_total_flops


def count_flop_counter_mode(model: nn.Module, batch) -> FlopCount:
    """``torch.utils.flop_counter.FlopCounterMode`` (dispatch level; works on meta tensors)."""

    with torch.no_grad(), FlopCounterMode(display=False, custom_mapping=_CPU_ATTENTION) as mode:
        logits_shape = tuple(model(batch).logits.shape)
    counts = mode.get_flop_counts()
    root = type(model).__name__
    by_module = {}
    for name, ops in counts.items():
        if name == "Global":
            continue
        by_module[_strip(name, root)] = sum(ops.values()) // 2
    by_op = {str(k).split(".")[-1]: v // 2 for k, v in counts.get("Global", {}).items()}
    return FlopCount("flop_counter_mode", mode.get_total_flops() // 2, by_module, by_op,
                     logits_shape=logits_shape)


def _strip(name: str, root: str) -> str:
    if name == root:
        return ""
    return name[len(root) + 1:] if name.startswith(root + ".") else name


def component_flops(count: FlopCount, components: dict[str, nn.Module],
                    model: FusionModel) -> dict[str, int]:
    """FLOPs per role (image_encoder, text_encoder, fusion, head) from per-module counts;
    whatever the roles do not cover is reported as ``other``."""
    names = {module: name for name, module in model.named_modules()}
    out = {}
    for role, module in components.items():
        out[role] = count.by_module.get(names[module], 0)
    # modules owned by one role but run inside another's (eP-ALM adapters in LM blocks)
    embedded = model.embedded_components()
    for role, modules in embedded.items():
        for module in modules:
            flops = count.by_module.get(names[module], 0)
            host = next(r for r, m in components.items() if _inside(names[module], names[m]))
            out[host] -= flops
            out[role] = out.get(role, 0) + flops
    out["other"] = count.total - sum(out.values())
    return out


def _inside(name: str, parent: str) -> bool:
    return parent == "" or name == parent or name.startswith(parent + ".")
