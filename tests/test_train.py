"""Training loop: learns, logs, checkpoints atomically, resumes bit-identically."""

import json

import pytest
import torch
from torch.utils.data import TensorDataset

import variants
from bench.checkpoint import latest_checkpoint
from bench.train import TrainingDiverged, fit
from bench.train_config import TrainConfig
from variants.interface import Batch

N, ANSWERS, VOCAB = 32, 6, 50


@pytest.fixture(scope="module")
def dataset():
    g = torch.Generator().manual_seed(0)
    answers = torch.randint(0, ANSWERS, (N,), generator=g)
    images = torch.randn(N, 3, 64, 64, generator=g) + answers.view(-1, 1, 1, 1).float()
    ids = torch.randint(4, VOCAB, (N, 16), generator=g)
    return TensorDataset(images, ids, answers)


def collate(items):
    images, ids, answers = map(torch.stack, zip(*items))
    scores = torch.nn.functional.one_hot(answers, ANSWERS).float()
    return Batch(images, ids, torch.ones_like(ids), answer_scores=scores)


def new_model(seed=0):
    torch.manual_seed(seed)
    return variants.create("concat", "tiny", num_answers=ANSWERS, text_vocab_size=VOCAB)


CFG = TrainConfig(epochs=2, batch_size=8, lr=1e-3, warmup_steps=2, progress=False, log_every=1)


def test_resume_matches_uninterrupted_run(dataset, tmp_path):
    full = new_model()
    fit(full, dataset, collate, CFG, tmp_path / "full")
    part = new_model()
    summary = fit(part, dataset, collate, CFG, tmp_path / "part", stop_at_step=3)
    assert summary["interrupted"] and summary["steps"] == 3
    resumed = new_model(seed=123)  # different init: everything must come from the checkpoint
    summary = fit(resumed, dataset, collate, CFG, tmp_path / "part", resume=True)
    assert summary["steps"] == 8
    for (name, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_metrics_and_checkpoint_files(dataset, tmp_path):
    calls = []
    summary = fit(new_model(), dataset, collate, CFG, tmp_path,
                  evaluate=lambda m: {"val_acc": 0.5}, on_eval=lambda e, m: calls.append(e))
    assert calls == [0, 1] and summary["val_acc"] == 0.5
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == list(range(1, 9))
    assert sum(r.get("phase") == "eval" for r in records) == 2
    ckpt = latest_checkpoint(tmp_path)
    assert ckpt.name == "ckpt-0000008" and len(list(tmp_path.glob("ckpt-*"))) == 1
    assert not list(tmp_path.glob(".*tmp"))


def test_loss_decreases(dataset, tmp_path):
    model = new_model()
    batch = collate([dataset[i] for i in range(N)])
    before = model(batch).loss.item()
    fit(model, dataset, collate, TrainConfig(epochs=6, batch_size=8, lr=2e-3, warmup_steps=2,
                                             progress=False), tmp_path)
    model.eval()
    assert model(batch).loss.item() < 0.7 * before


def test_non_finite_loss_raises_diverged(dataset, tmp_path):
    model = new_model()
    with torch.no_grad():
        model.head.fc2.bias.fill_(float("nan"))
    with pytest.raises(TrainingDiverged, match="loss became nan at step 0"):
        fit(model, dataset, collate, CFG, tmp_path)


def test_frozen_weights_stay_bit_identical(dataset, tmp_path):
    model = variants.create("concat", "tiny", num_answers=ANSWERS, text_vocab_size=VOCAB,
                            freeze_vision=True)
    before = {k: v.clone() for k, v in model.image_encoder.state_dict().items()}
    fit(model, dataset, collate, CFG, tmp_path)
    for k, v in model.image_encoder.state_dict().items():
        assert torch.equal(before[k], v), k


def test_training_mfu_counts_three_passes_of_what_runs_in_a_step():
    import math

    from bench.experiment import training_mfu

    cfg = TrainConfig(epochs=2, batch_size=10)
    row = {"peak_gflops_per_s": 100.0, "train_step_s": 2.0, "gflops_fcm": 0.5,
           "gflops_fcm_image_encoder": 0.3, "feature_cache": True, "train_steps": 10,
           "train_examples": 45}
    # 90 examples (2 epochs of 45, the last batches short), 0.2 GMAC each without the
    # cached encoder: 2 * 3 * 0.2e9 * 90 FLOPs in 2 s = 54 GFLOP/s of a 100 GFLOP/s peak
    assert training_mfu(row, cfg) == pytest.approx(54.0)
    assert training_mfu({**row, "feature_cache": False}, cfg) == pytest.approx(135.0)
    # the encoder trained on 18 distinct images of the 90 examples' (5 questions an image):
    # 0.2 x 90 + 0.3 x 18 GMAC = 23.4 -> 2 * 3 * 23.4 / 2 s = 70.2 GFLOP/s
    row18 = {**row, "feature_cache": False, "train_images_encoded": 18}
    assert training_mfu(row18, cfg) == pytest.approx(70.2)
    assert math.isnan(training_mfu({**row, "peak_gflops_per_s": None}, cfg))


def test_warmup_ratio_warms_up_over_that_share_of_the_run(dataset, tmp_path):
    """warmup_ratio scales the warm-up with the run (8 steps here: half of them rising),
    so a recipe keeps its shape on a data set of another size; it replaces warmup_steps."""
    from dataclasses import replace

    cfg = replace(CFG, warmup_steps=1, warmup_ratio=0.5)
    fit(new_model(), dataset, collate, cfg, tmp_path)
    records = (json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines())
    lrs = [r["lr"] for r in records if "loss" in r]
    assert lrs[:4] == pytest.approx([0, 0.25e-3, 0.5e-3, 0.75e-3])  # steps 0-3 rise
    assert lrs[4] == pytest.approx(1e-3) and lrs[5] < lrs[4]  # then the cosine from the peak
    with pytest.raises(Exception, match="warmup_ratio"):
        TrainConfig(warmup_ratio=1.5).validate()
