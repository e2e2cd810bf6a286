"""A finished run is never silently restarted: `train` into it needs --resume or
--overwrite; --overwrite removes the old run's own files (result first) and keeps the
user's; --resume without a usable checkpoint is an error, also at the library level."""

import json
import shutil

import pytest

from bench.errors import UserError
from tests.helpers import run_cli

TRAIN = ["train", "concat", "--preset", "tiny", "--epochs", "1", "--no-progress"]


@pytest.fixture
def old_run(trained_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(trained_run, out)
    (out / "notes.txt").write_text("mine")
    return out


def test_overwrite_starts_over_and_keeps_foreign_files(old_run, small_data, capsys):
    old_ckpt = (old_run / "latest").read_text().strip()
    old_lines = (old_run / "metrics.jsonl").read_text().splitlines()
    (old_run / old_ckpt / "marker").write_text("old")
    code, _, err = run_cli([*TRAIN, "--data", str(small_data), "--out", str(old_run),
                            "--overwrite", "--seed", "3"], capsys)
    assert code == 0, err
    new_lines = (old_run / "metrics.jsonl").read_text().splitlines()
    assert len(new_lines) == len(old_lines)  # replaced, not appended to
    assert json.loads((old_run / "run.json").read_text())["train"]["seed"] == 3
    assert not (old_run / old_ckpt / "marker").exists()
    assert (old_run / "notes.txt").read_text() == "mine" and (old_run / "result.json").is_file()


def test_interrupted_overwrite_never_leaves_the_old_result(old_run, small_data, monkeypatch,
                                                           capsys):
    import bench.experiment

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(bench.experiment, "fit", interrupted)
    code, _, err = run_cli([*TRAIN, "--data", str(small_data), "--out", str(old_run),
                            "--overwrite"], capsys)
    assert code == 130
    assert (old_run / "run.json").is_file() and not (old_run / "result.json").exists()
    assert not (old_run / ".fusebench.lock").exists()


def test_fit_resume_without_checkpoint_is_an_error(tmp_path):
    from bench.train import fit
    from bench.train_config import TrainConfig

    with pytest.raises(UserError, match="nothing to resume"):
        fit(None, [], None, TrainConfig(progress=False), tmp_path, resume=True)


def test_sweep_points_and_study_trials_restart_their_own_leftovers(tmp_path):
    """Sweeps and studies own their point/trial directories: a killed point reruns."""
    from bench.run_dir import prepare_run_dir

    (tmp_path / "run.json").write_text("{}")
    (tmp_path / ".ckpt-0000001.tmp-1-ab").mkdir()
    with pytest.raises(UserError, match="unfinished run"):
        prepare_run_dir(tmp_path, resume=False, overwrite=False)
    prepare_run_dir(tmp_path, resume=False, overwrite=True)
    assert not any(tmp_path.iterdir())


def test_overwrite_and_pruning_touch_only_checkpoint_names(tmp_path):
    from bench.run_dir import prepare_run_dir

    (tmp_path / "result.json").write_text("{}")
    (tmp_path / "ckpt-notes").mkdir()  # the user's, despite the prefix
    (tmp_path / "ckpt-0000004").mkdir()
    prepare_run_dir(tmp_path, resume=False, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt-notes"]


def test_a_killed_writers_temporary_checkpoint_is_removed_at_the_next_save(tmp_path):
    """SIGKILL mid-checkpoint leaves .ckpt-N.tmp-PID-RAND; the next save removes it when
    PID is gone (and keeps a live process's)."""
    import os

    import torch

    from bench.checkpoint import save_checkpoint

    dead = tmp_path / ".ckpt-0000001.tmp-999999999-abcd"
    live = tmp_path / f".ckpt-0000001.tmp-{os.getppid()}-abcd"
    dead.mkdir()
    live.mkdir()
    model = torch.nn.Linear(2, 2)
    state = {"step": 2, "elapsed_s": 0.0, "last_eval": {}}
    save_checkpoint(tmp_path, model, torch.optim.AdamW(model.parameters()), state)
    assert not dead.exists() and live.exists()
    assert (tmp_path / "latest").read_text().strip() == "ckpt-0000002"


def test_tied_weights_round_trip_through_a_checkpoint(tmp_path):
    """safetensors stores one name of each tied group (OPT's embed_tokens / lm_head): the
    strict fit check accepts that, and loading restores both names."""
    import torch

    import variants
    from bench.checkpoint import check_fits, load_weights

    model = variants.create("epalm_lin", "epalm-tiny", text_vocab_size=128,
                            sep_token_id=100, eos_token_id=2, pad_token_id=1)
    head = model.head
    assert head.lm_head.weight is head.model.decoder.embed_tokens.weight  # tied
    from safetensors.torch import save_model

    save_model(model, str(tmp_path / "m.safetensors"))
    other = variants.create("epalm_lin", "epalm-tiny", text_vocab_size=128,
                            sep_token_id=100, eos_token_id=2, pad_token_id=1)
    check_fits(other, tmp_path / "m.safetensors")
    load_weights(other, tmp_path / "m.safetensors")
    for k, v in model.state_dict().items():
        assert torch.equal(v, other.state_dict()[k]), k
