"""Model weights on disk: trainable state per checkpoint, frozen weights once per run.

A checkpoint's (or the best epoch's) ``model.safetensors`` holds the trainable parameters
and every buffer. The frozen parameters (a frozen LM, a frozen ViT) go to
``<run>/frozen/<sha256>.safetensors``, content-addressed and written only when absent, and
the weights file names that file in its metadata. A frozen OPT-350M is then written once
per run rather than at every checkpoint; a model with nothing frozen is one file, as
before. Reading checks every tensor's name and shape against the model first (one
``UserError`` line naming what does not fit).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from .atomic_files import atomic_write
from .errors import UserError

FROZEN_DIR = "frozen"
_FROZEN_KEY = "frozen"  # metadata entry of the weights file


def save_weights(model: torch.nn.Module, path: Path, run_dir: Path) -> None:
    """Write ``model``'s weights to ``path``, its frozen parameters under ``run_dir``."""
    from safetensors.torch import save_file

    state = model.state_dict()
    groups = _alias_groups(state)
    frozen_ptrs = {p.data_ptr() for p in model.parameters() if not p.requires_grad}
    keep = [g[0] for g in groups]  # one name per tied group (safetensors refuses shared)
    frozen = {k: state[k].detach().contiguous() for k in keep
              if state[k].data_ptr() in frozen_ptrs and state[k].numel()}
    rest = {k: state[k].detach().contiguous() for k in keep if k not in frozen}
    metadata = None
    if frozen:
        name = f"{tensors_digest(frozen)[:32]}.safetensors"
        target = Path(run_dir) / FROZEN_DIR / name
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(target, lambda tmp: save_file(frozen, str(tmp)))
        metadata = {_FROZEN_KEY: name}
    save_file(rest, str(path), metadata=metadata)


def weight_files(path: str | Path) -> list[Path]:
    """``path`` and, when it names one, its run's frozen-weights file."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} is missing")
    try:
        with safe_open(str(path), framework="pt") as f:
            frozen = (f.metadata() or {}).get(_FROZEN_KEY)
    except (SafetensorError, OSError) as e:
        raise UserError(f"checkpoint {path} is not a readable safetensors file: {e}") from None
    if frozen is None:
        return [path]
    target = path.parent.parent / FROZEN_DIR / Path(frozen).name
    if not target.is_file():
        raise UserError(f"checkpoint {path} names frozen weights {target}, which are missing")
    return [path, target]


def saved_shapes(path: str | Path) -> dict[str, tuple[int, ...]]:
    """Every stored tensor's shape (headers only, no weights)."""
    from safetensors import SafetensorError, safe_open

    shapes = {}
    for file in weight_files(path):
        try:
            with safe_open(str(file), framework="pt") as f:
                shapes.update({k: tuple(f.get_slice(k).get_shape()) for k in f.keys()})
        except (SafetensorError, OSError) as e:
            raise UserError(f"checkpoint {file} is not a readable safetensors file: "
                            f"{e}") from None
    return shapes


def read_weights(path: str | Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    out: dict[str, torch.Tensor] = {}
    for file in weight_files(path):
        out.update(load_file(str(file)))
    return out


def _alias_groups(state: dict[str, torch.Tensor]) -> list[list[str]]:
    """Names grouped by shared storage (tied weights), in state-dict order."""
    groups: dict[tuple, list[str]] = {}
    for k, v in state.items():
        where = (k,) if v.is_meta else (v.untyped_storage().data_ptr(), v.storage_offset(),
                                        tuple(v.shape))
        groups.setdefault(where, []).append(k)
    return list(groups.values())


def aliases(state: dict[str, torch.Tensor]) -> dict[str, list[str]]:
    """Each key -> every key that shares its storage (OPT's tied input/output embeddings)."""
    return {k: group for group in _alias_groups(state) for k in group}


def tensors_digest(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 (hex) of named tensors: names, shapes, dtypes and bytes."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        value = tensors[name].cpu().contiguous()
        h.update(f"{name}{tuple(value.shape)}{value.dtype}".encode())
        h.update(value.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()
