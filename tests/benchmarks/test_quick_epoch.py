"""Benchmark: one training epoch of every strategy the quick report trains, as it trains
them (the preset, its recipe's batch size and the overrides of ``sweeps/strategies_quick.yaml`` and
``sweeps/frozen_lm_quick.yaml``, frozen encoders' features cached), on a 300-image
synthvqa split (1500 questions); and the shared feature cache's reuse by a second model.

The report's wall time is mostly these epochs times the epochs each sweep trains; a slower
entry here is a slower ``fusebench report``. Random weights stand in for the pretrained
backbones (the time of a step does not depend on them).
"""

import time

import pytest
import torch

from bench import cache
from bench.experiment import data_overrides, load_data
from bench.report_plans import SWEEPS_DIR
from bench.spec import ModelSpec
from bench.sweep import load_spec
from bench.train import fit
from bench.train_config import TrainConfig

SWEEPS = ("strategies_quick.yaml", "frozen_lm_quick.yaml")
POINTS = {(spec.name, point.strategy): (spec, point) for spec in
          (load_spec(SWEEPS_DIR / name) for name in SWEEPS) for point in spec.points}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    from bench.data.synthvqa import make

    out = tmp_path_factory.mktemp("synthvqa")
    make(out, seed=0, images=375, workers=1)  # 300 train images, 1500 questions
    return out


def _model(key, data_dir):
    spec, point = POINTS[key]
    # random weights instead of the @pretrained backbones; everything else as the sweep
    # trains it (its preset's frozen encoder included: trained_model)
    overrides = {k: v for k, v in spec.trained_model(point).overrides.items()
                 if not str(v).startswith("@")}
    model_spec = ModelSpec(point.strategy, point.preset, overrides)
    data = load_data(model_spec, data_dir, splits=("train",))
    torch.manual_seed(0)
    model = model_spec.with_overrides(**data_overrides(point.strategy, data)).create()
    return spec, model, data.splits["train"]


@pytest.mark.benchmark(group="quick-epoch")
@pytest.mark.parametrize("key", list(POINTS), ids=[f"{s}-{p}" for s, p in POINTS])
def test_quick_training_epoch(benchmark, key, data_dir, tmp_path):
    spec, model, train = _model(key, data_dir)
    collate = cache.FeatureCache(model, train).collate if model.image_encoder_frozen() \
        else train.collate
    recipe = spec.recipe(POINTS[key][1])  # the preset's recipe under the sweep's train keys
    cfg = TrainConfig(epochs=1, batch_size=recipe.get("batch_size", 64),
                      lr=recipe.get("lr", 1e-3), progress=False)

    def epoch() -> dict:
        return fit(model, train, collate, cfg, tmp_path / f"run{time.perf_counter_ns()}")

    summary = benchmark.pedantic(epoch, rounds=2, iterations=1)
    benchmark.extra_info["steps"] = summary["steps"]
    benchmark.extra_info["step_time_s"] = summary["step_time_s"]


@pytest.mark.benchmark(group="feature-cache-shared")
@pytest.mark.parametrize("reuse", [False, True], ids=["first-model", "second-model"])
def test_shared_feature_cache(benchmark, reuse, data_dir):
    """A second strategy on the same frozen encoder reuses the features (it still encodes
    the first batch, to check that they match)."""
    _, model, train = _model(("strategies_quick", "cross_attn"), data_dir)

    def build():
        if not reuse:
            cache._SHARED.clear()
        return cache.shared(model, train)

    built, reused = benchmark.pedantic(build, rounds=3, iterations=1, warmup_rounds=1)
    assert reused is reuse
