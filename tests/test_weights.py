"""Frozen weights are written once per run; checkpoints hold the trainable state."""

import json

import torch
from safetensors import safe_open

import variants
from bench.checkpoint import latest_checkpoint, load_weights
from bench.weights import FROZEN_DIR, save_weights
from tests.helpers import run_cli


def _keys(path) -> set[str]:
    with safe_open(str(path), framework="pt") as f:
        return set(f.keys())


def test_a_run_with_a_frozen_encoder_stores_it_once_and_evaluates(small_data, tmp_path, capsys):
    run = tmp_path / "run"
    code, _, err = run_cli(["train", "concat", "--preset", "tiny", "--set", "freeze_vision=true",
                            "--data", str(small_data), "--out", str(run), "--epochs", "2",
                            "--batch-size", "16", "--no-progress"], capsys)
    assert code == 0, err
    frozen = list((run / FROZEN_DIR).iterdir())
    assert len(frozen) == 1  # two epochs, two checkpoints and the best weights: one copy
    model = variants.create("concat", "tiny", freeze_vision=True)
    frozen_names = {n for n, p in model.named_parameters() if not p.requires_grad}
    for weights in (latest_checkpoint(run) / "model.safetensors",
                    run / "best" / "model.safetensors"):
        assert not _keys(weights) & frozen_names and _keys(frozen[0]) == frozen_names
    stored = json.loads((run / "result.json").read_text())
    code, out, err = run_cli(["evaluate", str(run), "--format", "json"], capsys)
    assert code == 0, err
    assert json.loads(out)["test_vqa_acc"] == stored["test_vqa_acc"]

    frozen[0].unlink()  # a run directory missing its frozen weights: one line, exit 2
    code, _, err = run_cli(["evaluate", str(run)], capsys)
    assert code == 2 and "which are missing" in err and len(err.strip().splitlines()) == 1


def test_saving_again_does_not_rewrite_the_frozen_file_and_loads_back(tmp_path):
    model = variants.create("concat", "tiny", freeze_vision=True)
    save_weights(model, tmp_path / "a.safetensors", tmp_path)
    (frozen,) = (tmp_path / FROZEN_DIR).iterdir()
    written = frozen.stat().st_mtime_ns
    save_weights(model, tmp_path / "b.safetensors", tmp_path)
    assert frozen.stat().st_mtime_ns == written
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "b.safetensors").rename(tmp_path / "ckpt" / "model.safetensors")
    torch.manual_seed(1)
    other = variants.create("concat", "tiny", freeze_vision=True)
    load_weights(other, tmp_path / "ckpt" / "model.safetensors")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                 other.state_dict().values()))
