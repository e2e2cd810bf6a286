"""Data-parallel training: `fusebench train` under torchrun with 2 CPU processes (gloo)
reaches the weights, losses and accuracies of one process with the same global batch.

Text encoder frozen: BERT's dropout is then off, so both runs are deterministic and can
differ only by the gradient all-reduce's summation order."""

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from bench.checkpoint import latest_checkpoint
from tests.faults import ROOT
from tests.helpers import run_cli

TRAIN = ["train", "concat", "--preset", "tiny", "--set", "freeze_text=true", "--epochs", "2",
         "--batch-size", "16", "--log-every", "1", "--no-progress"]


def _run(path):
    losses = [json.loads(line)["loss"] for line in (path / "metrics.jsonl").read_text().splitlines()
              if "loss" in json.loads(line)]
    result = json.loads((path / "result.json").read_text())
    return losses, result, load_file(latest_checkpoint(path) / "model.safetensors")


@pytest.mark.slow
def test_two_process_ddp_matches_one_process(tmp_path, small_data, capsys):
    args = [*TRAIN, "--data", str(small_data)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", "-m", "bench.cli", *args, "--out", str(tmp_path / "ddp")]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        code, _, err = run_cli([*args, "--out", str(tmp_path / "single")], capsys)
    finally:
        torch.set_num_threads(threads)
    assert code == 0, err

    (loss1, res1, w1), (loss2, res2, w2) = _run(tmp_path / "single"), _run(tmp_path / "ddp")
    examples = res1["train_examples"]
    assert examples % 16 == 0  # whole global batches: the shards are exactly the batches
    assert len(loss1) == len(loss2) == 2 * examples // 16  # rank 0 alone logged, per step
    assert loss2 == pytest.approx(loss1, rel=1e-4)  # the all-reduced global-batch loss
    # Adam divides each step by the root of the squared gradients, so where a gradient is
    # near zero the summation order's last-bit noise moves single entries by up to ~lr:
    # compare each tensor as a whole, relative to its size.
    worst = max(((w1[k] - w2[k]).norm() / w1[k].norm().clamp_min(1e-12)).item() for k in w1)
    assert worst < 1e-3, worst  # a wrong reduction (sum for mean, a lost shard) moves tens of %
    for key in ("val_vqa_acc", "test_vqa_acc", "train_steps"):
        assert res1[key] == res2[key], key
    assert len(list((tmp_path / "ddp").glob("ckpt-*"))) == 1
