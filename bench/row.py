"""The row: one flat dict per measured point, the unit every table and plot is made of.

``bench.profiling.profile`` creates a row (cost figures), ``bench.experiment`` adds the
training and accuracy figures, a sweep adds where the point came from; ``bench.store``
keeps rows as ``results.json``/``.csv`` and the report reads nothing else. This module is
the one place that says what a column means, its unit and what fills it; code imports the
names below instead of spelling the strings. Families of columns (``cfg.<knob>``,
``params_<role>``, ``gflops_<counter>_<role>``, ``grid.<key>``, ``<accuracy>_lo``/``_hi``)
are named by the patterns in ``PATTERNS``.

FLOPs follow fvcore's convention: one multiply-add is one flop. ``gflops`` always comes
from FlopCounterMode on the meta device, so every row has it (meta-only rows included);
fvcore, run on the real model when it is measured, is the second counter beside it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    name: str
    unit: str
    filled_by: str
    meaning: str


# identity
STRATEGY, FAMILY, PRESET, SEED = "strategy", "family", "preset", "seed"
FUSION_DEPTH = "fusion_depth"
# cost (bench.profiling)
PARAMS_TOTAL, PARAMS_TRAINABLE, TRAINABLE_PCT = "params_total", "params_trainable", \
    "trainable_pct"
GFLOPS, GFLOPS_FCM, GFLOPS_FVCORE = "gflops", "gflops_fcm", "gflops_fvcore"
FLOPS_AGREE_PCT = "flops_agree_pct"
MEASURED = "measured"
MEM_INFER, MEM_TRAIN = "mem_infer_mib", "mem_train_mib"
LATENCY, LATENCY_IQR = "latency_ms", "latency_iqr_ms"
THROUGHPUT, MFU = "throughput_eps", "mfu_pct"
ACHIEVED_GFLOPS, PEAK_GFLOPS = "achieved_gflops_per_s", "peak_gflops_per_s"
PROFILE_S = "profile_s"
# training and accuracy (bench.experiment, bench.controls)
TRAIN_STEPS, TRAIN_TIME, TRAIN_STEP_S = "train_steps", "train_time_s", "train_step_s"
TRAIN_TIMED_STEPS, TRAIN_STEP_GFLOPS = "train_timed_steps", "train_step_gflops"
TRAIN_MFU = "train_mfu_pct"
TRAIN_IMAGES = "train_images_encoded"
FEATURE_CACHE_S = "feature_cache_s"
VAL_ACC, VAL_EXACT = "val_vqa_acc", "val_exact_match"
VAL_CURVE, VAL_LAST_GAIN = "val_curve", "val_last_gain"
BEST_EPOCH = "best_epoch"
TEST_ACC, TEST_EXACT = "test_vqa_acc", "test_exact_match"
BLIND_ACC, IMAGE_RELIANCE = "blind_vqa_acc", "image_reliance"
# where the point came from (bench.sweep)
SWEEP, MODE, POINT_ID, POINT_S = "sweep", "mode", "point_id", "point_s"
TRAIN_WORKERS = "train_workers"

COLUMNS = {c.name: c for c in (
    Column(STRATEGY, "", "profiling", "registered strategy name"),
    Column(FAMILY, "", "profiling", "encoder-fusion or frozen-lm (the config class's)"),
    Column(PRESET, "", "profiling", "config bundle the point starts from ('' = defaults)"),
    Column(SEED, "", "profiling", "seed of initialisation, data order and dropout"),
    Column(FUSION_DEPTH, "layers", "profiling", "fusion layers (the depth axis of plots)"),
    Column(PARAMS_TOTAL, "parameters", "profiling", "all parameters"),
    Column(PARAMS_TRAINABLE, "parameters", "profiling", "parameters with requires_grad"),
    Column(TRAINABLE_PCT, "%", "profiling", "trainable / total"),
    Column(GFLOPS, "GFLOPs per example", "profiling (FlopCounterMode, meta device)",
           "forward pass, 1 multiply-add = 1 flop; the column plots and tables use"),
    Column(GFLOPS_FCM, "GFLOPs per example", "profiling (FlopCounterMode, meta device)",
           "the first counter (equal to gflops)"),
    Column(GFLOPS_FVCORE, "GFLOPs per example", "profiling (fvcore jit trace, real model)",
           "the second counter; only on measured rows"),
    Column(FLOPS_AGREE_PCT, "%", "profiling", "|fvcore - FlopCounterMode| / fvcore"),
    Column(MEASURED, "", "profiling", "the real model ran (latency, memory, fvcore)"),
    Column(MEM_INFER, "MiB", "profiling", "peak inference memory at the row's batch size"),
    Column(MEM_TRAIN, "MiB", "profiling", "peak memory of one fwd+bwd+AdamW step"),
    Column(LATENCY, "ms", "profiling", "median forward latency of one batch"),
    Column(LATENCY_IQR, "ms", "profiling", "interquartile range of the latency"),
    Column(THROUGHPUT, "examples/s", "profiling", "batch size / median latency"),
    Column(ACHIEVED_GFLOPS, "GFLOP/s", "profiling", "FLOP/s of the timed forward passes"),
    Column(PEAK_GFLOPS, "GFLOP/s", "profiling", "this machine's measured fp32 matmul peak "
           "(the best of the process's measurements: bench.profiling.over_best_peak)"),
    Column(MFU, "%", "profiling", "achieved / measured fp32 matmul peak (2 flops per MAC)"),
    Column(PROFILE_S, "s", "sweep", "wall time of the profile"),
    Column(TRAIN_STEPS, "steps", "experiment", "optimizer steps"),
    Column(TRAIN_TIME, "s", "experiment", "wall time of training, evaluation included"),
    Column(TRAIN_STEP_S, "s", "experiment", "time inside the timed optimizer steps (forward, "
           "backward, update), without evaluation and batch collation"),
    Column(TRAIN_TIMED_STEPS, "steps", "experiment", "optimizer steps in train_step_s: all "
           "but each epoch's first, whose FLOPs are counted instead"),
    Column(TRAIN_STEP_GFLOPS, "GFLOPs", "experiment", "FLOPs of one training step as it ran "
           "(a real batch, forward and backward: matmuls, convolutions, attention; one "
           "multiply-add = one FLOP), FlopCounterMode on each epoch's first step, their mean"),
    Column(TRAIN_MFU, "%", "experiment", "training FLOP/s over the measured fp32 matmul peak: "
           "2 x train_step_gflops x train_timed_steps / train_step_s; with train_workers > 1, "
           "over each worker's share of the peak"),
    Column(TRAIN_IMAGES, "images", "experiment", "images the image encoder ran on in training "
           "steps: each distinct image of a batch once (a batch's questions share images); "
           "0 with cached features"),
    Column(FEATURE_CACHE_S, "s", "experiment", "computing the frozen image features once"),
    Column(VAL_ACC, "%", "experiment", "official VQA v2 accuracy, best validation epoch"),
    Column(VAL_EXACT, "%", "experiment", "strict exact match (eP-ALM's metric), validation"),
    Column(BEST_EPOCH, "epoch", "experiment", "the epoch whose weights were tested"),
    Column(VAL_CURVE, "%", "experiment", "validation accuracy after each epoch, in order "
           "(space-separated): the learning curve; the report's merged seeds show the first's"),
    Column(VAL_LAST_GAIN, "points", "experiment", "the last epoch's validation accuracy minus "
           "the best before it: > 0, the run still set a new best when its budget ended"),
    Column(TEST_ACC, "%", "controls", "official VQA v2 accuracy on the test split"),
    Column(TEST_EXACT, "%", "controls", "strict exact match on the test split"),
    Column(BLIND_ACC, "%", "controls", "test accuracy with each image swapped for another"),
    Column(IMAGE_RELIANCE, "points", "controls", "test accuracy minus blind accuracy"),
    Column(SWEEP, "", "sweep", "sweep spec name"),
    Column(MODE, "", "sweep", "profile or train"),
    Column(POINT_ID, "", "sweep", "hash of the point's settings (its run directory name)"),
    Column(POINT_S, "s", "sweep", "wall time of the point, profile and training"),
    Column(TRAIN_WORKERS, "processes", "sweep", "points trained at once, each on its share of "
           "the cores (bench.workers); absent = one at a time"),
)}

PATTERNS = {
    "cfg.<knob>": "the resolved config value (bench.profiling)",
    "params_<role>": "parameters of one component: image_encoder, text_encoder, fusion, ...",
    "gflops_<fcm|fvcore>_<role>": "one counter's GFLOPs of one component",
    "grid.<key>": "the sweep grid value of this point (bench.sweep)",
    "<accuracy>_lo, <accuracy>_hi": "95 % bootstrap interval (bench.report_accuracy)",
}
