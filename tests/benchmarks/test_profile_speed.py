"""Benchmark: profiling a config too large to run (ViT-L/16 at 384 px, BERT-large, 32 joint
layers: ~870M parameters, ~350 GFLOPs) from the meta device. Target: < 3 s, < 1 GiB RSS."""

import resource

import pytest

from bench.profiling import ProfileSpec, profile
from bench.spec import ModelSpec

LARGE = {"vision": "large", "image_size": 384, "depth": 32, "text": "large"}


@pytest.mark.benchmark(group="profile-meta")
def test_profile_large_config_on_meta(benchmark):
    spec = ProfileSpec(ModelSpec("concat", overrides=LARGE), measure="never")
    row = benchmark.pedantic(profile, args=(spec,), rounds=3, warmup_rounds=1)
    max_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    benchmark.extra_info.update(params=row["params_total"], gflops=row["gflops_fcm"],
                                max_rss_mib=max_rss_mib)
    assert row["measured"] is False and row["params_total"] > 800e6
