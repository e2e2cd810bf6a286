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


def test_the_learning_curve_survives_a_resume(dataset, tmp_path):
    """Every epoch's validation metrics, in order, even when the run was resumed between
    them; the report's curve and last-epoch gain come from them."""
    from bench.experiment import learning_curve

    scores = iter([40.0, 47.5, 46.0, 51.25])
    cfg = TrainConfig(epochs=4, batch_size=8, lr=1e-3, warmup_steps=2, progress=False)
    fit(new_model(), dataset, collate, cfg, tmp_path, stop_at_step=9,  # mid third epoch
        evaluate=lambda m: {"val_vqa_acc": next(scores)})
    summary = fit(new_model(), dataset, collate, cfg, tmp_path, resume=True,
                  evaluate=lambda m: {"val_vqa_acc": next(scores)})
    assert [e["val_vqa_acc"] for e in summary["evals"]] == [40.0, 47.5, 46.0, 51.25]
    assert learning_curve(summary["evals"]) == {"val_curve": "40.0 47.5 46.0 51.2",
                                                "val_last_gain": 3.75}
    assert learning_curve(summary["evals"][:1]) == {"val_curve": "40.0"}  # no gain of one
    assert learning_curve([]) == {}


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


def test_training_mfu_is_the_counted_step_flops_of_the_timed_steps_over_the_peak():
    import math

    from bench.experiment import training_mfu

    row = {"peak_gflops_per_s": 100.0, "train_step_s": 2.0, "train_step_gflops": 0.9,
           "train_timed_steps": 60}
    # 2 FLOPs per multiply-add: 2 * 0.9e9 * 60 FLOPs in 2 s = 54 GFLOP/s of a 100 peak
    assert training_mfu(row) == pytest.approx(54.0)
    assert training_mfu(row, workers=2) == pytest.approx(108.0)  # against a half share
    for missing in ("peak_gflops_per_s", "train_step_gflops", "train_timed_steps"):
        assert math.isnan(training_mfu({**row, missing: None}))
    assert math.isnan(training_mfu({**row, "train_step_gflops": math.nan}))


def test_a_counted_step_counts_forward_and_backward_as_they_run():
    """Weight gradients only where weights train, and the CPU attention kernel both ways
    (FlopCounterMode alone counts it as 0)."""
    import torch.nn.functional as F
    from torch.utils.flop_counter import sdpa_backward_flop_count

    from bench.flops import counting_flops, sdpa_macs

    layer, x = torch.nn.Linear(4, 3, bias=False), torch.randn(5, 4, requires_grad=True)
    with counting_flops() as flops:
        layer(x).sum().backward()
    assert flops() == 2 * 3 * (5 * 4 * 3)  # forward, input gradient, weight gradient
    layer.weight.requires_grad_(False)
    with counting_flops() as flops:
        layer(x).sum().backward()
    assert flops() == 2 * 2 * (5 * 4 * 3)  # frozen: no weight gradient
    with counting_flops(enabled=False) as flops:
        layer(x).sum().backward()
    assert flops() == 0
    q, k, v = (torch.randn(2, 2, 8, 4, requires_grad=True) for _ in range(3))
    with counting_flops() as flops:
        F.scaled_dot_product_attention(q, k, v).sum().backward()
    shape = (2, 2, 8, 4)
    assert flops() == 2 * sdpa_macs(shape, shape, shape) + sdpa_backward_flop_count(
        shape, shape, shape, shape)


def test_a_trained_row_counts_each_epochs_first_step_and_times_the_rest(trained_run):
    import json

    result = json.loads((trained_run / "result.json").read_text())
    assert result["train_timed_steps"] == result["train_steps"] - 1  # 1 epoch: 1 counted
    assert 0 < result["train_step_gflops"] < float("inf")


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


def test_shifted_images_train_otherwise_and_resume_identically(dataset, tmp_path):
    """``shift_pixels``: another view of each image a step when the encoder trains (the
    weights differ from an unshifted run), none when it is frozen; seeded by step, so a
    resumed run ends where an uninterrupted one does."""
    import dataclasses

    shift = dataclasses.replace(CFG, shift_pixels=3)
    plain, full = new_model(), new_model()
    fit(plain, dataset, collate, CFG, tmp_path / "plain")
    fit(full, dataset, collate, shift, tmp_path / "full")
    assert any(not torch.equal(a, b) for a, b in zip(plain.image_encoder.parameters(),
                                                     full.image_encoder.parameters()))
    fit(new_model(), dataset, collate, shift, tmp_path / "part", stop_at_step=3)
    resumed = new_model(seed=123)
    fit(resumed, dataset, collate, shift, tmp_path / "part", resume=True)
    for (name, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    frozen = [variants.create("concat", "tiny", num_answers=ANSWERS, text_vocab_size=VOCAB,
                              freeze_vision=True) for _ in range(2)]
    frozen[1].load_state_dict(frozen[0].state_dict())
    fit(frozen[0], dataset, collate, CFG, tmp_path / "frozen")
    fit(frozen[1], dataset, collate, shift, tmp_path / "frozen_shift")
    for (name, a), b in zip(frozen[0].state_dict().items(), frozen[1].state_dict().values()):
        assert torch.equal(a, b), name


def test_train_command_in_a_log_prints_a_line_an_epoch_and_no_bar(small_data, tmp_path,
                                                                   capsys):
    """stderr not a terminal (a log): no step bar's carriage returns, one line per
    validated epoch with what is left instead."""
    from tests.helpers import run_cli

    code, out, err = run_cli(["train", "late_fusion", "--preset", "tiny", "--data",
                              str(small_data), "--epochs", "2", "--batch-size", "32",
                              "--out", str(tmp_path / "run")], capsys)
    assert code == 0, err
    assert "late_fusion: epoch 1/2, val " in out and "late_fusion: epoch 2/2, val " in out
    assert " s left" in out and "\r" not in out + err
