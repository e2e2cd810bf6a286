"""Same seed, same config -> identical metrics and weights on CPU (two `fusebench train`
runs through the CLI, compared exactly: accuracies, every logged loss, every weight)."""

import json

import pytest
import torch
from safetensors.torch import load_file

from bench.checkpoint import latest_checkpoint
from tests.helpers import run_cli

TIMING = {"train_time_s", "train_step_s", "feature_cache_s"}


@pytest.mark.slow
def test_same_seed_same_metrics(small_data, tmp_path, capsys):
    def train(name: str, seed: str):
        code, _, err = run_cli(["train", "concat", "--preset", "tiny", "--data", str(small_data),
                                "--out", str(tmp_path / name), "--epochs", "1",
                                "--batch-size", "16", "--seed", seed, "--no-progress"], capsys)
        assert code == 0, err
        run = tmp_path / name
        result = json.loads((run / "result.json").read_text())
        losses = [json.loads(line).get("loss")
                  for line in (run / "metrics.jsonl").read_text().splitlines()]
        weights = load_file(latest_checkpoint(run) / "model.safetensors")
        return {k: v for k, v in result.items() if k not in TIMING}, losses, weights

    a, b, c = train("a", "0"), train("b", "0"), train("c", "1")
    assert a[0] == b[0] and a[1] == b[1]
    assert all(torch.equal(a[2][k], b[2][k]) for k in a[2])
    assert a[1] != c[1]  # the seed matters: a different seed is a different run
