"""Data-parallel training: 2 CPU processes under torchrun (gloo) reach the weights of one
process with the same global batch."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from bench.train import latest_checkpoint
from tests import ddp_worker

ROOT = Path(__file__).resolve().parent.parent


def _losses(run: Path) -> list[float]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["loss"] for line in lines]


@pytest.mark.slow
def test_two_process_ddp_matches_one_process(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", str(ROOT / "tests" / "ddp_worker.py"), str(tmp_path / "ddp")]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]

    torch.set_num_threads(1)
    ddp_worker.train(str(tmp_path / "single"))

    single, ddp = latest_checkpoint(tmp_path / "single"), latest_checkpoint(tmp_path / "ddp")
    assert ddp is not None and ddp.name == single.name == "ckpt-0000008"
    a, b = load_file(single / "model.safetensors"), load_file(ddp / "model.safetensors")
    assert a.keys() == b.keys()
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    assert worst < 1e-4, worst
    changed = max((a[k] - ddp_worker.make_model().state_dict()[k]).abs().max().item()
                  for k in a)
    assert changed > 1e-3  # the runs trained (the comparison is not of untouched weights)
    # the logged loss is the global batch's (all-reduced), step for step
    assert _losses(tmp_path / "ddp") == pytest.approx(_losses(tmp_path / "single"), rel=1e-4)
    # rank 0 alone wrote: one log line per step, one checkpoint
    assert len(_losses(tmp_path / "ddp")) == 8 and len(list((tmp_path / "ddp").glob("ckpt-*"))) == 1
