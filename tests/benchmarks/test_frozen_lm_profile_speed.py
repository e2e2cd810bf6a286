"""Benchmark: profiling eP-ALM pt-L (ViT-L/16 + OPT-6.7B, ~7B parameters) from the meta
device: parameters, FLOPs, per-prompt and per-token GFLOPs. Target: < 3 s, < 1 GiB RSS."""

import resource

import pytest

from bench.profiling import ProfileSpec, profile
from bench.spec import ModelSpec


@pytest.mark.benchmark(group="profile-meta")
def test_profile_pt_l_on_meta(benchmark):
    spec = ProfileSpec(ModelSpec("epalm_pt_l", "epalm-pt-l"), measure="never")
    row = benchmark.pedantic(profile, args=(spec,), rounds=3, warmup_rounds=1)
    max_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    benchmark.extra_info.update(params=row["params_total"], gflops=row["gflops_fcm"],
                                gflops_per_token=row["gflops_per_token"],
                                max_rss_mib=max_rss_mib)
    assert row["measured"] is False and row["params_trainable"] == 4_239_360
