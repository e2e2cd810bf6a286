"""Benchmark: one training epoch with and without the frozen-feature cache.

eP-ALM's tip: with frozen encoders, compute their outputs once and reuse them. Measured on
a 300-image synthvqa split (900 questions) for two frozen-encoder settings:
- ``jar-frozen-vit-s``: a frozen ViT-S/8 (12 layers, width 384) at 64 px feeding the tiny
  JAR fusion: the regime the tip targets (large frozen encoder, small trainable part);
- ``epalm-tiny``: micro ViT + micro OPT, both frozen, eP-ALM connectors and prompt.
The cached run includes building the cache (one encoder pass per image).
``extra_info['speedup']`` on the cached entry = uncached epoch time / cached epoch time.
"""

import time

import pytest
import torch

import variants
from bench.cache import FeatureCache
from bench.experiment import data_overrides, load_data
from bench.spec import ModelSpec
from bench.train import fit
from bench.train_config import TrainConfig

SETTINGS = {
    "jar-frozen-vit-s": ("jar", "tiny", {"vision": "small", "freeze_vision": True}),
    "epalm-tiny": ("epalm", "epalm-tiny", {}),
}
_uncached: dict[str, float] = {}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    from bench.data.synthvqa import make

    out = tmp_path_factory.mktemp("synthvqa")
    make(out, seed=0, images=375, workers=1)  # 300 train images
    return out


def epoch_seconds(setting: str, data_dir, cached: bool, tmp_path) -> float:
    strategy, preset, overrides = SETTINGS[setting]
    data = load_data(ModelSpec(strategy, preset, overrides), data_dir, splits=("train",))
    overrides = {**overrides, **data_overrides(strategy, data)}
    torch.manual_seed(0)
    model = variants.create(strategy, preset, **overrides)
    train = data.splits["train"]
    start = time.perf_counter()
    collate = FeatureCache(model, train).collate if cached else train.collate
    fit(model, train, collate, TrainConfig(epochs=1, batch_size=64, progress=False),
        tmp_path / ("cached" if cached else "uncached"))
    return time.perf_counter() - start


@pytest.mark.benchmark(group="feature-cache")
@pytest.mark.parametrize("setting", list(SETTINGS))
@pytest.mark.parametrize("cached", [False, True], ids=["uncached", "cached"])
def test_epoch_time(benchmark, setting, cached, data_dir, tmp_path):
    seconds = benchmark.pedantic(epoch_seconds, args=(setting, data_dir, cached, tmp_path),
                                 rounds=2, iterations=1)
    median = benchmark.stats.stats.median
    benchmark.extra_info["epoch_s_including_cache_build"] = seconds
    if not cached:
        _uncached[setting] = median
    elif setting in _uncached:
        benchmark.extra_info["speedup"] = _uncached[setting] / median
