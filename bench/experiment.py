"""One experiment: data -> model -> (feature cache) -> fit -> evaluate, as one call.

Used by ``fusebench train``, by sweeps in train mode and by optuna studies, so every
accuracy in the project is produced the same way. The run directory holds ``run.json``
(what was trained on what), the answer vocabulary, checkpoints and ``metrics.jsonl``.
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

import variants

from . import cache as feature_cache
from .atomic_files import atomic_write_json
from .best import BestWeights
from .checkpoint import check_resumable
from .controls import evaluate_test, save_scores
from .data.dataset import DEFAULT_ANSWER_LEN, VQAData, load_vocabularies, load_vqa_data
from .data.loaders import files_state
from .data.synthvqa import ensure_data
from .data.tokenizer import answer_sep_id, checkpoint_tokenizer
from .distributed import is_main_process, local_device
from .errors import UserError
from .evaluate import evaluate_vqa
from .lock import output_lock
from .notes import say_once
from .pretrain import PRETRAINED, can_pretrain, pretrain_text, pretrain_vision
from .profiling import ProfileSpec, build_meta, profile
from .row import (
    FEATURE_CACHE_S,
    PEAK_GFLOPS,
    PROFILE_S,
    TRAIN_IMAGES,
    TRAIN_MFU,
    TRAIN_STEP_GFLOPS,
    TRAIN_STEP_S,
    TRAIN_STEPS,
    TRAIN_TIME,
    TRAIN_TIMED_STEPS,
    VAL_ACC,
    VAL_CURVE,
    VAL_LAST_GAIN,
)
from .run_dir import prepare_run_dir
from .spec import ModelSpec, PreparedRun
from .train import fit
from .train_config import TrainConfig
from .validate import check_fits_memory


def load_data(model: ModelSpec, data_dir: Path, splits=("train", "val", "test")):
    """Tensorised splits shaped for this model's config (image size, text length). Loaded
    once per process for each shape and state of the files (every point of a sweep shares
    them); a second shape of the same files (the other family's text layout) reuses the
    first one's parsed examples and decoded images. Nothing downstream writes to them."""
    cfg = model.config()
    lm = cfg.family == "frozen-lm"
    root = Path(data_dir).resolve()
    files = (root, files_state(root))
    shape = dict(image_size=cfg.image_size, text_len=cfg.text_len,
                 answer_len=getattr(cfg, "answer_len", DEFAULT_ANSWER_LEN),
                 style="lm" if lm else "encoder", pad_side="left" if lm else "right",
                 splits=tuple(splits))
    tokenizer = text_checkpoint_tokenizer(cfg)
    key = (files, tuple(shape.items()), str(tokenizer))
    if key not in _LOADED:
        like = next((data for (f, *_), data in _LOADED.items() if f == files), None)
        data = load_vqa_data(root, **shape, tokenizer=tokenizer, like=like)
        _say_cut_questions(data, cfg.text_len)
        while len(_LOADED) >= _KEEP_LAYOUTS:  # the oldest goes
            del _LOADED[next(iter(_LOADED))]
        _LOADED[key] = data
    return _LOADED[key]


def _say_cut_questions(data: VQAData, text_len: int) -> None:
    """One line when questions have more tokens than the model's ``text_len``: the
    models read them cut short (``encode_questions``), which no error would show. Said
    once, however many layouts or pool workers load the data (``bench.notes``)."""
    cut = {name: split.cut_lengths for name, split in data.splits.items() if split.cut_lengths}
    if cut:
        counts = ", ".join(f"{len(lengths):,} of {len(data.splits[name]):,} {name}"
                           for name, lengths in cut.items())
        longest = max(max(lengths) for lengths in cut.values())
        say_once(f"note: {counts} questions have more tokens than text_len={text_len} and "
                 f"are read cut short; --set text_len={longest} keeps them whole")


_KEEP_LAYOUTS = 2  # the two families' layouts of one dataset
_LOADED: dict[tuple, Any] = {}  # ((root, files state), layout, tokenizer) -> VQAData
_VOCABULARIES: dict[tuple, Any] = {}  # (root, files state, tokenizer) -> VQAData, no splits


def text_checkpoint_tokenizer(cfg) -> Path | None:
    """The tokenizer of the model's own text checkpoint, a local ``lm_path`` (OPT) or
    ``text_path`` (BERT) directory, which reads the ids of its own vocabulary; None (the
    data's tokenizer) without one, or for ``@pretrained``, which is made with the data's."""
    for key in ("lm_path", "text_path"):
        path = getattr(cfg, key, "")
        if path and path != PRETRAINED and Path(path).is_dir():
            return checkpoint_tokenizer(path, key)
    return None


def data_overrides(strategy: str, data) -> dict[str, Any]:
    """Config values the data decides: vocabulary sizes and the tokenizer's special ids."""

    tok = data.tokenizer
    values = {"text_vocab_size": len(tok), "num_answers": len(data.vocab),
              "sep_token_id": answer_sep_id(tok), "eos_token_id": tok.eos_token_id,
              "pad_token_id": tok.pad_token_id}
    keys = set(variants.get_strategy(strategy).config_cls.__dataclass_fields__)
    return {k: v for k, v in values.items() if k in keys and v is not None}


_MADE_FROM_DATA = {"vision_path": "the micro ViT on which answers each image's questions get",
                   "lm_path": "the micro OPT on its questions and answers"}


def preset_backbones(preset: str | None, data_dir: Path | None) -> dict[str, Any]:
    """The preset's pretrained backbones (``Preset.pretrained``) that apply on this data
    (``None``: the built-in data): all on the built-in data; elsewhere those of a preset
    ``pretrained_on_any_data`` (made from the data's training split, ``bench.pretrain``),
    none for the others."""
    if not preset:
        return {}
    p = variants.get_preset(preset)
    builtin = data_dir is None or can_pretrain(data_dir)
    return dict(p.pretrained) if builtin or p.pretrained_on_any_data else {}


def with_preset_backbones(model: ModelSpec, data_dir: Path, announce: bool = True
                          ) -> ModelSpec:
    """``model`` with its preset's pretrained backbones (``preset_backbones``) under the
    user's own keys. Off the built-in data one line (said once, ``bench.notes``, and only
    when ``announce``) says what they are made from, or that the preset's are left out
    and what the run trains from instead."""

    wanted = variants.get_preset(model.preset).pretrained if model.preset else {}
    wanted = {k: v for k, v in wanted.items() if k not in model.overrides}
    applied = {k: v for k, v in preset_backbones(model.preset, data_dir).items()
               if k not in model.overrides}
    if wanted and announce and not can_pretrain(data_dir):
        say_once(f"[{model.preset}] {data_dir} is not the built-in data: "
                 + (_made_here(applied) if applied else _left_out(model.preset, wanted)))
    return model.with_overrides(**applied) if applied else model


def _made_here(applied: dict[str, Any]) -> str:
    made = [what for key, what in _MADE_FROM_DATA.items() if applied.get(key) == PRETRAINED]
    return (f"the preset's backbones are pretrained on its training split ({'; '.join(made)});"
            " give local checkpoints with --set vision_path=PATH (lm_path=PATH) instead")


def _left_out(preset_name: str, wanted: dict[str, Any]) -> str:
    preset = variants.get_preset(preset_name)
    keys = " ".join(f"{k}={v}" for k, v in wanted.items())
    pixels = " ".join(f"{k}={v}" for k, v in {**preset.from_pixels,
                                               **preset.from_pixels_train}.items())
    return (f"preset {preset_name}'s {keys} is not applied (no scene annotations to pretrain "
            "on), so its image encoder starts from random weights"
            + (f" and trains from raw pixels ({pixels})" if pixels else "")
            + "; give a local checkpoint with --set vision_path=PATH")


def trains_from_pixels(model: ModelSpec) -> bool:
    """True when the model's image encoder starts from random weights and trains: no
    checkpoint (``vision_path`` empty), not frozen."""
    cfg = model.config()
    return getattr(cfg, "vision_path", None) == "" and getattr(cfg, "freeze_vision", True) \
        is False


def with_pixel_settings(model: ModelSpec) -> ModelSpec:
    """``model`` with its preset's ``from_pixels`` keys under the user's own, when its image
    encoder trains from raw pixels (``trains_from_pixels``); else unchanged."""
    extra = variants.get_preset(model.preset).from_pixels if model.preset else {}
    extra = {k: v for k, v in extra.items() if k not in model.overrides}
    return model.with_overrides(**extra) if extra and trains_from_pixels(model) else model


def resolve_pretrained(model: ModelSpec, data_dir: Path) -> ModelSpec:
    """Replace ``@pretrained`` checkpoint paths by the cached backbones pretrained on this
    data (training them on first use: the LM first, the quicker one and the one that can
    refuse too little data)."""

    cfg = model.config()
    paths = {}
    if getattr(cfg, "lm_path", "") == PRETRAINED:
        paths["lm_path"] = str(pretrain_text(data_dir, cfg.lm))
    if getattr(cfg, "vision_path", "") == PRETRAINED:
        paths["vision_path"] = str(pretrain_vision(data_dir, cfg.vision, cfg.image_size,
                                                   cfg.patch_size, stem=cfg.vision_stem))
    return model.with_overrides(**paths)


def prepare(model: ModelSpec, data_dir: str | Path | None, announce: bool = True
            ) -> PreparedRun:
    """The model as trained on this data (backbone paths resolved, vocabulary sizes and
    special ids from the data) with the data itself; ``None`` = the built-in synthvqa.
    The data is loaded (and so checked) before any backbone is pretrained on it.
    ``announce``: say when the preset's backbones cannot be had on this data."""
    model.config()  # a bad key or value fails before the built-in data is generated
    data_dir = ensure_data(data_dir)
    data = load_data(model, data_dir)
    return PreparedRun(_as_trained(model, data_dir, data, announce), data, data_dir)


def as_trained(model: ModelSpec, data_dir: str | Path | None, announce: bool = True
               ) -> ModelSpec:
    """``prepare``'s model without tensorising the data: its vocabularies are all a profile
    of the model as trained needs (the report profiles its trained points this way, alone,
    before any worker loads the images)."""
    data_dir = ensure_data(data_dir)
    root = Path(data_dir).resolve()
    files, tokenizer = (root, files_state(root)), text_checkpoint_tokenizer(model.config())
    key = (*files, str(tokenizer))
    if key not in _VOCABULARIES:  # any loaded layout has them; else read just them
        loaded = next((d for (f, _, t), d in _LOADED.items()
                       if f == files and t == str(tokenizer)), None)
        _VOCABULARIES.clear()
        _VOCABULARIES[key] = (VQAData(loaded.tokenizer, loaded.vocab, splits={}) if loaded
                              else load_vocabularies(root, tokenizer=tokenizer))
    return _as_trained(model, data_dir, _VOCABULARIES[key], announce)


def _as_trained(model: ModelSpec, data_dir: Path, data, announce: bool) -> ModelSpec:
    """Backbone paths resolved (pretrained on the data if missing), the data's vocabulary
    sizes and special ids set (``data``: a ``VQAData``, its splits not needed)."""
    model = with_pixel_settings(with_preset_backbones(model, data_dir, announce))
    model = resolve_pretrained(model, data_dir)
    return model.with_overrides(**data_overrides(model.strategy, data))


def check_trainable(model: ModelSpec, cfg: TrainConfig) -> None:
    """Refuse before allocating a model whose training state (fp32 weights; gradients and
    AdamW moments of the trainable ones) or input batch the device's memory cannot hold."""

    meta = build_meta(model)
    total = sum(p.numel() for p in meta.parameters())
    trainable = sum(p.numel() for p in meta.parameters() if p.requires_grad)
    images = cfg.batch_size * 3 * meta.cfg.image_size ** 2 * 4
    check_fits_memory(f"training {model.strategy} ({total:.3g} parameters) at batch "
                      f"{cfg.batch_size}", 4 * total + 12 * trainable + images, cfg.device)


def run_experiment(run: PreparedRun, train_cfg: TrainConfig, out_dir: str | Path, *,
                   resume: bool = False, overwrite: bool = False, on_eval=None,
                   use_cache: bool = True, eval_test: bool = True) -> dict[str, Any]:
    """Train and evaluate ``run``; returns the figures a row needs (accuracies in %, times
    in s). The run directory is locked for the run (a second writer gets one error line);
    one holding a run needs ``resume`` or ``overwrite`` (``bench.run_dir``)."""
    out = Path(out_dir)
    check_outside_data(out, run.data_dir)
    check_trainable(run.model, train_cfg)
    torch.manual_seed(train_cfg.seed)
    model = run.model.create()
    main = is_main_process()  # under torchrun, rank 0 alone writes the run's files
    with output_lock(out, "run directory") if main else nullcontext():
        if main:
            prepare_run_dir(out, resume=resume, overwrite=overwrite)
        if resume:  # a bad checkpoint fails before run.json is rewritten for this config
            check_resumable(model, out)
        return _train_and_evaluate(run, model, _Options(train_cfg, out, main, resume, on_eval,
                                                        use_cache, eval_test))


def check_outside_data(out: Path, data_dir: str | Path) -> None:
    """A run never writes into its data: its files would change the data's state, which
    keys the loaded-data cache and the backbones pretrained on it."""
    out, data = out.resolve(), Path(data_dir).resolve()
    if out == data or data in out.parents:
        raise UserError(f"--out {out} is inside the data directory {data}; write the run "
                        "elsewhere")


def profile_and_train(run: PreparedRun, train_cfg: TrainConfig, out_dir: str | Path,
                      profile_settings: dict[str, Any], *, on_eval=None,
                      eval_test: bool = True) -> dict[str, Any]:
    """A trained sweep point or study trial, as one row: the profile of the model as trained
    on this data (its vocabulary and answer count), then training and evaluation. The run
    directory starts over (a killed point's or trial's leftovers)."""

    row = timed_profile(run.model, {"seed": train_cfg.seed, **profile_settings})
    row.update(run_experiment(run, train_cfg, out_dir, on_eval=on_eval, eval_test=eval_test,
                              overwrite=True))
    row[TRAIN_MFU] = training_mfu(row)
    return row


def timed_profile(model: ModelSpec, settings: dict[str, Any]) -> dict[str, Any]:
    """The profile row of ``model`` (``ProfileSpec`` settings), with the time it took."""
    start = time.perf_counter()
    row = profile(ProfileSpec(model, **settings))
    row[PROFILE_S] = time.perf_counter() - start
    return row


def training_mfu(row: dict[str, Any], workers: int = 1) -> float:
    """``train_mfu_pct`` of a profiled and trained row (``bench.row``): the FLOPs counted on
    real training steps (``train_step_gflops``, forward and backward as they ran: padding
    trimmed, cached or frozen parts without their weight gradients) times the timed steps,
    over their time and the measured matmul peak; NaN without any of them. ``workers``:
    points trained at once on the machine (``bench.workers``), each against its share."""
    peak, seconds = row.get(PEAK_GFLOPS), row.get(TRAIN_STEP_S)
    gflops, steps = row.get(TRAIN_STEP_GFLOPS), row.get(TRAIN_TIMED_STEPS)
    if not (peak and seconds and gflops and steps) or math.isnan(gflops):
        return math.nan
    flops = 2 * gflops * 1e9 * steps  # 2 FLOPs per multiply-add
    return 100.0 * flops / seconds / (peak / workers * 1e9)


@dataclass(frozen=True)
class _Options:
    train_cfg: TrainConfig
    out: Path
    main: bool
    resume: bool
    on_eval: Any
    use_cache: bool
    eval_test: bool


def _train_and_evaluate(run: PreparedRun, model, opts: _Options) -> dict[str, Any]:
    train_cfg, out, main, data = opts.train_cfg, opts.out, opts.main, run.data
    device = local_device(train_cfg.device)  # cuda -> this process's GPU under torchrun
    if main:
        atomic_write_json(out / "run.json", {
            "strategy": run.model.strategy, "preset": run.model.preset,
            "overrides": run.model.overrides, "data": str(run.data_dir),
            "cwd": str(Path.cwd()), "train": asdict(train_cfg)})
        data.vocab.save(out / "answer_vocab.json")

    train_set, val_set, test_set = data.splits["train"], data.splits["val"], data.splits["test"]
    collate, eval_collate = train_set.collate, {}
    cache_s, caches = 0.0, {}
    if opts.use_cache and model.image_encoder_frozen():
        start = time.perf_counter()
        model.to(device)  # the encoder runs where training will (fit moves it too)
        caches = {s: feature_cache.shared(model, data.splits[s], device=device)[0]
                  for s in ("train", "val", "test")}
        cache_s = time.perf_counter() - start
        collate = caches["train"].collate
        eval_collate = {s: c.collate for s, c in caches.items()}

    if not opts.resume:
        BestWeights.clear(out)
    best = BestWeights(out, enabled=main)

    def evaluate(m):
        metrics = evaluate_vqa(m, val_set, "val", device=device,
                               collate=eval_collate.get("val"))
        best.update(m, metrics)
        return metrics

    summary = fit(model, train_set, collate, train_cfg, out, evaluate=evaluate,
                  on_eval=opts.on_eval, resume=opts.resume)
    result = {TRAIN_STEPS: summary["steps"], TRAIN_TIME: summary["train_time_s"],
              TRAIN_STEP_S: summary["step_time_s"], TRAIN_TIMED_STEPS: summary["timed_steps"],
              TRAIN_STEP_GFLOPS: summary["step_flops"] / 2e9,
              TRAIN_IMAGES: summary["images_encoded"],
              "feature_cache": bool(eval_collate), FEATURE_CACHE_S: cache_s,
              "train_examples": len(train_set), "val_examples": len(val_set)}
    result.update({k: v for k, v in summary.items() if k.startswith("val_")})
    result.update(learning_curve(summary["evals"]))
    result.update(best.restore(model))  # test (and report) the best validation epoch
    if opts.eval_test:  # test accuracy, its blind control, per-question scores for the report
        figures, per_question = evaluate_test(model, test_set, device=device,
                                              cache=caches.get("test"))
        result.update(figures)
        if main:
            save_scores(out, per_question)
    if main:
        atomic_write_json(out / "result.json", result)
    return result


def learning_curve(evals: list[dict]) -> dict[str, Any]:
    """The validation accuracy after each epoch (``VAL_CURVE``) and how much the last one
    gained on the best before it (``VAL_LAST_GAIN``; needs two evaluations): a run that
    still improves when its epochs run out was stopped by the budget, not by converging."""
    accs = [e[VAL_ACC] for e in evals if VAL_ACC in e]
    out: dict[str, Any] = {VAL_CURVE: " ".join(f"{a:.1f}" for a in accs)} if accs else {}
    if len(accs) >= 2:
        out[VAL_LAST_GAIN] = accs[-1] - max(accs[:-1])
    return out
