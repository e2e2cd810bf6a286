"""`data make` replaces a data directory atomically or refuses: an interrupted (or killed)
`--force` leaves the old data complete, a user's files inside it are never deleted, and a
directory without the manifest written last is refused by every reader."""

import json
import os

import pytest

import bench.data.synthvqa as synthvqa
from bench.errors import UserError
from tests.faults import kill_when, spawn
from tests.helpers import run_cli


def _tree(root):
    return {str(p.relative_to(root)): p.read_bytes() if p.is_file() else None
            for p in sorted(root.rglob("*"))}


@pytest.fixture
def made(tmp_path):
    out = tmp_path / "d"
    synthvqa.make(out, seed=0, images=10, workers=1)
    return out


def _siblings(out):
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


def test_force_interrupted_late_keeps_the_old_data(made, monkeypatch):
    """Ctrl-C after the new questions are written, before the manifest: old data intact."""
    before = _tree(made)

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(synthvqa, "build_tokenizer", interrupted)
    with pytest.raises(KeyboardInterrupt):
        synthvqa.make(made, seed=1, images=20, workers=1, force=True)
    assert _tree(made) == before and not _siblings(made)


def test_force_disk_full_is_one_line_and_keeps_the_old_data(made, monkeypatch, capsys):
    before = _tree(made)
    real = synthvqa.write_json

    def full(path, obj, indent=None):
        if "annotations" in path.name:
            raise OSError(28, "No space left on device")
        real(path, obj, indent)

    monkeypatch.setattr(synthvqa, "write_json", full)
    code, _, err = run_cli(["data", "make", "synthvqa", "--out", str(made), "--images", "10",
                            "--workers", "1", "--force"], capsys)
    assert code == 2 and err.count("\n") == 1 and "No space left on device" in err
    assert "the old data is unchanged" in err
    assert _tree(made) == before and not _siblings(made)


@pytest.mark.slow
def test_force_killed_keeps_the_old_data_and_the_rerun_cleans_up(made, tmp_path):
    before = _tree(made)
    args = ["data", "make", "synthvqa", "--out", str(made), "--images", "600", "--seed", "3",
            "--workers", "1", "--force"]

    def half_written() -> bool:
        tmps = [made.parent / n for n in _siblings(made)]
        return any((t / "train").is_dir() and len(os.listdir(t / "train")) > 50 for t in tmps)

    kill_when(spawn(args, tmp_path, tmp_path / "kill.log"), half_written, poll=0.02)
    assert _tree(made) == before  # the old data, untouched and complete
    assert _siblings(made)  # the killed process's staging directory
    synthvqa.make(made, seed=3, images=10, workers=1, force=True)
    assert not _siblings(made)  # a dead process's leftovers are removed
    assert json.loads((made / "synthvqa.json").read_text())["seed"] == 3


def test_force_refuses_to_delete_a_users_files(made):
    (made / "myrun").mkdir()
    (made / "myrun" / "result.json").write_text("{}")
    before = _tree(made)
    with pytest.raises(UserError, match=r"not synthvqa's \(myrun\)"):
        synthvqa.make(made, images=10, workers=1, force=True)
    assert _tree(made) == before


def test_force_replaces_derived_caches(made):
    (made / "baselines.json").write_text("{}")
    synthvqa.make(made, seed=2, images=10, workers=1, force=True)
    assert not (made / "baselines.json").exists()


def test_make_into_an_existing_empty_directory(tmp_path):
    (tmp_path / "e").mkdir()
    synthvqa.make(tmp_path / "e", images=10, workers=1)
    assert (tmp_path / "e" / "synthvqa.json").is_file() and not _siblings(tmp_path / "e")


def test_make_onto_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    code, _, err = run_cli(["data", "make", "synthvqa", "--out", str(tmp_path / "f"),
                            "--images", "10"], capsys)
    assert code == 2 and err.count("\n") == 1 and "is not a directory" in err
    assert (tmp_path / "f").read_text() == "x"


def test_make_into_a_read_only_directory_is_one_line(tmp_path, monkeypatch, capsys):
    """Root ignores permissions, so the refusal of the probe is simulated there."""
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o555)
    if os.geteuid() == 0:
        import tempfile

        def denied(*a, **k):
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(tempfile, "mkdtemp", denied)
    code, _, err = run_cli(["data", "make", "synthvqa", "--out", str(ro / "d"),
                            "--images", "10"], capsys)
    assert code == 2 and err.count("\n") == 1 and "is not writable" in err
    assert not any(ro.iterdir())


def test_readers_require_the_manifest(made, tmp_path, monkeypatch, capsys):
    """Data left by an interrupted older generator (no synthvqa.json) is refused."""
    (made / "synthvqa.json").unlink()
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(["train", "concat", "--preset", "tiny", "--epochs", "1",
                            "--data", str(made), "--out", "out", "--no-progress"], capsys)
    assert code == 2 and err.count("\n") == 1 and "incomplete synthvqa data" in err
    assert not (tmp_path / "out").exists()


def test_pretrained_caches_are_swapped_in_and_load_strictly(small_data, tmp_path,
                                                            monkeypatch):
    """A pretraining interrupted while saving leaves no cache entry (that would be a
    "hit" next time); a complete one loads under the strict vision_path check."""
    import safetensors.torch

    import bench.pretrain as pretrain
    from variants.backbones import build_vit

    monkeypatch.setattr(pretrain, "CACHE", tmp_path / "cache")
    real = safetensors.torch.save_file

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(safetensors.torch, "save_file", interrupted)
    with pytest.raises(KeyboardInterrupt):
        pretrain.pretrain_vision(small_data, epochs=1)
    assert not any((tmp_path / "cache").iterdir())
    monkeypatch.setattr(safetensors.torch, "save_file", real)
    path = pretrain.pretrain_vision(small_data, epochs=1)
    assert sorted(p.name for p in path.parent.iterdir()) == ["meta.json", "model.safetensors"]
    build_vit("micro", 64, 8, str(path), stem="conv")  # strict: every tensor present and shaped


def test_images_read_per_batch_are_checked_before_training(small_data, tmp_path):
    """A split too big to cache is read per batch: its image headers are checked up
    front, so an oversized image fails before the first step, not mid-epoch."""
    import shutil

    from bench.data.dataset import load_vqa_data
    from tests.test_bad_inputs_strict import _big_image

    data = tmp_path / "data"
    shutil.copytree(small_data, data)
    _big_image(data, 9000, 9000)
    with pytest.raises(UserError, match="9000x9000 px, more than the 40 MP"):
        load_vqa_data(data, image_size=32, splits=("train",), cache_images=False)
