"""Bad input through the CLI: exit 2, one clear line, no traceback, nothing left behind.

Each case builds its broken input in a fresh directory (the working directory of the
command), runs ``fusebench`` in-process, and compares a snapshot of every file under that
directory and the shared dataset before and after: a failing command creates, changes and
deletes nothing. Any path that raised instead of a ``UserError`` fails here."""

import json
import os
import pickle
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from tests.helpers import run_cli

STUDY = {"name": "s", "strategy": "concat", "preset": "tiny", "n_trials": 1,
         "search_space": {"depth": {"type": "int", "low": 1, "high": 2}}}
SWEEP = {"name": "w", "preset": "tiny", "profile": {"measure": "never"},
         "grid": {"strategy": ["concat"], "depth": [1]}}
TRAIN = ["train", "concat", "--preset", "tiny", "--epochs", "1", "--no-progress"]


def _yaml(tmp, name, obj):
    (tmp / name).write_text(obj if isinstance(obj, str) else yaml.safe_dump(obj))
    return name


def _data_copy(tmp, data, edit):
    shutil.copytree(data, tmp / "data")
    edit(tmp / "data")
    return "data"


def _run_copy(tmp, run, edit=None):
    shutil.copytree(run, tmp / "run")
    if edit:
        edit(tmp / "run")
    return "run"


def _ckpt(run):
    return run / (run / "latest").read_text().strip()


def _write_json(path, change):
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _reuse_a_question_id(data):
    """The second test question takes the first one's id (its annotation stays)."""
    def edit(questions):
        questions["questions"][1]["question_id"] = questions["questions"][0]["question_id"]

    _write_json(data / "v2_OpenEnded_mscoco_test_questions.json", edit)


class Evil:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


# (id, needle expected in the one-line error, argv builder(tmp, data, run))
CASES = [
    ("unknown-strategy", "unknown strategy 'nope'; valid:",
     lambda t, d, r: ["profile", "nope"]),
    ("unknown-preset", "unknown preset 'nope'; valid:",
     lambda t, d, r: ["profile", "concat", "--preset", "nope"]),
    ("preset-of-other-family", "preset 'epalm-tiny' is for frozen-lm strategies",
     lambda t, d, r: ["profile", "concat", "--preset", "epalm-tiny"]),
    ("too-many-vision-layers", "vision_layers=5: ViT-micro has only 2 layers",
     lambda t, d, r: ["profile", "epalm", "--preset", "epalm-tiny", "--set", "vision_layers=5"]),
    ("missing-lm-checkpoint", "language model directory nolm has no config.json",
     lambda t, d, r: ["profile", "epalm", "--preset", "epalm-tiny", "--set", "lm_path=nolm"]),
    ("corrupt-text-encoder-config", "cannot load text encoder",
     lambda t, d, r: ["profile", "concat", "--preset", "tiny", "--set", "text=micro", "--set",
                      f"text_path={_dir_with(t, 'config.json', '{oops')}"]),
    ("corrupt-vision-checkpoint", "cannot read safetensors checkpoint",
     lambda t, d, r: ["profile", "concat", "--preset", "tiny", "--set",
                      f"vision_path={_dir_with(t, 'vit.safetensors', 'garbage')}/vit.safetensors"]),
    ("vision-checkpoint-dir-pickled-only", "has no model.safetensors (only pickled",
     lambda t, d, r: ["profile", "concat", "--preset", "tiny", "--set",
                      f"vision_path={_dir_with(t, 'pytorch_model.bin', 'pickle')}"]),
    ("set-without-value", "expected KEY=VALUE",
     lambda t, d, r: ["profile", "concat", "--set", "depth"]),
    ("set-unknown-key", "unknown config key(s) dept",
     lambda t, d, r: ["profile", "concat", "--set", "dept=3"]),
    ("set-wrong-type", "depth='x': expected int",
     lambda t, d, r: ["profile", "concat", "--set", "depth=x"]),
    ("image-size-vs-patch", "not divisible by patch_size=16",
     lambda t, d, r: ["profile", "concat", "--image-size", "100"]),
    ("zero-depth", "depth=0: must be >= 1",
     lambda t, d, r: ["profile", "concat", "--preset", "tiny", "--set", "depth=0"]),
    ("zero-tokens", "num_tokens=0",
     lambda t, d, r: ["profile", "jar", "--preset", "tiny", "--set", "num_tokens=0"]),
    ("width-vs-heads", "not divisible by heads",
     lambda t, d, r: ["profile", "concat", "--set", "width=60", "--set", "heads=7"]),
    ("zero-batch", "batch size and repeats must be >= 1",
     lambda t, d, r: ["profile", "concat", "--preset", "tiny", "--batch-size", "0"]),
    ("bad-device", "device 'gpu': expected cpu, cuda or cuda:N",
     lambda t, d, r: ["profile", "concat", "--preset", "tiny", "--device", "gpu"]),
    ("zero-epochs", "epochs=0: must be >= 1",
     lambda t, d, r: [*TRAIN, "--data", str(d), "--out", "out", "--epochs", "0"]),
    ("missing-data-dir", "data directory nodata: not found",
     lambda t, d, r: [*TRAIN, "--data", "nodata", "--out", "out"]),
    ("data-dir-is-a-file", "is a file, not a directory",
     lambda t, d, r: ["data", "info", "--data", _yaml(t, "f.txt", "x")]),
    ("sweep-spec-is-a-directory", "is a directory; give a YAML file in it",
     lambda t, d, r: ["sweep", str(t)]),
    ("sweep-spec-key-twice", "line 2: key 'name' is given twice",
     lambda t, d, r: ["sweep", _yaml(t, "s.yaml", "name: a\nname: b\ngrid: {depth: [1]}\n")]),
    ("question-id-twice", "is used by more than one question",
     lambda t, d, r: ["data", "info", "--data", _data_copy(t, d, _reuse_a_question_id)]),
    ("corrupt-dataset-json", "not valid JSON",
     lambda t, d, r: [*TRAIN, "--out", "out", "--data", _data_copy(t, d, lambda p: (
         p / "v2_OpenEnded_mscoco_train_questions.json").write_text("{oops"))]),
    ("missing-annotations", "no annotations file",
     lambda t, d, r: [*TRAIN, "--out", "out", "--data", _data_copy(t, d, lambda p: (
         p / "v2_mscoco_train_annotations.json").unlink())]),
    ("missing-images", "not found in",
     lambda t, d, r: [*TRAIN, "--out", "out", "--data", _data_copy(t, d, lambda p: [
         f.unlink() for f in sorted((p / "train").iterdir())[:3]])]),
    ("corrupt-tokenizer", "cannot load a tokenizer",
     lambda t, d, r: [*TRAIN, "--out", "out", "--data", _data_copy(t, d, lambda p: (
         p / "tokenizer" / "tokenizer.json").write_text("garbage"))]),
    ("unwritable-out", "is not a directory",
     lambda t, d, r: [*TRAIN, "--data", str(d), "--out", str(_file(t) / "out")]),
    ("sweep-malformed-yaml", "not valid YAML",
     lambda t, d, r: ["sweep", _yaml(t, "s.yaml", "name: [oops"), "--out", "out"]),
    ("sweep-unknown-key", "unknown key(s) gird",
     lambda t, d, r: ["sweep", _yaml(t, "s.yaml", {**SWEEP, "gird": {}}), "--out", "out"]),
    ("sweep-grid-not-list", "must be a non-empty list",
     lambda t, d, r: ["sweep", _yaml(t, "s.yaml", {**SWEEP, "grid": {"strategy": "concat"}}),
                      "--out", "out"]),
    ("sweep-bad-train-value", "epochs='many': expected int",
     lambda t, d, r: ["sweep", _yaml(t, "s.yaml", {**SWEEP, "train": {"epochs": "many"}}),
                      "--out", "out"]),
    ("sweep-missing-spec", "sweep spec not found",
     lambda t, d, r: ["sweep", "none.yaml", "--out", "out"]),
    ("sweep-unwritable-out", "is not a directory",
     lambda t, d, r: ["sweep", _yaml(t, "s.yaml", SWEEP), "--out", str(_file(t) / "o")]),
    ("study-bad-distribution", "type must be one of",
     lambda t, d, r: ["study", _yaml(t, "s.yaml", {**STUDY, "search_space": {
         "depth": {"type": "gauss"}}}), "--out", "out"]),
    ("study-bad-sampler", "sampler type 'grid': not one of tpe, random, nsga2",
     lambda t, d, r: ["study", _yaml(t, "s.yaml", {**STUDY, "sampler": {"type": "grid"}}),
                      "--out", "out"]),
    ("study-bad-heartbeat", "heartbeat.interval=0: expected an integer >= 1",
     lambda t, d, r: ["study", _yaml(t, "s.yaml", {**STUDY, "heartbeat": {"interval": 0}}),
                      "--out", "out"]),
    ("study-missing-data", "data directory not found",
     lambda t, d, r: ["study", _yaml(t, "s.yaml", {**STUDY, "data": "nodata"}),
                      "--out", "out"]),
    ("study-bad-storage-url", "cannot open storage 'nosuchdb://x'",
     lambda t, d, r: ["study", _yaml(t, "s.yaml", STUDY), "--storage", "nosuchdb://x",
                      "--out", "out"]),
    ("study-unreachable-postgres", "cannot open storage 'postgresql://u:***@127.0.0.1:9/db'",
     lambda t, d, r: ["study", _yaml(t, "s.yaml", STUDY), "--storage",
                      "postgresql://u:secret@127.0.0.1:9/db", "--out", "out"]),
    ("study-journal-missing-dir", "journal directory does not exist",
     lambda t, d, r: ["study", _yaml(t, "s.yaml", STUDY), "--storage", "journal:no/j.log",
                      "--out", "out"]),
    ("study-zero-trials", "--n-trials must be >= 1",
     lambda t, d, r: ["study", _yaml(t, "s.yaml", STUDY), "--n-trials", "0", "--out", "out"]),
    ("evaluate-not-a-run", "is not a run directory (no run.json)",
     lambda t, d, r: ["evaluate", str(d)]),
    ("evaluate-no-checkpoint", "has no checkpoint",  # neither best/ nor a latest pointer
     lambda t, d, r: ["evaluate", _run_copy(t, r, lambda p: (
         (p / "latest").unlink(), shutil.rmtree(p / "best")))]),
    ("evaluate-wrong-shape", "does not fit this model: fusion.blocks.2",
     lambda t, d, r: ["evaluate", _run_copy(t, r, lambda p: _write_json(
         p / "run.json", lambda j: j["overrides"].update(depth=3)))]),
    ("evaluate-corrupt-safetensors", "is not a readable safetensors file",  # the tested weights
     lambda t, d, r: ["evaluate", _run_copy(t, r, lambda p: (
         p / "best" / "model.safetensors").write_bytes(b"\0garbage" * 8))]),
    ("evaluate-unknown-split", "no vqa2 file for split 'nope'",
     lambda t, d, r: ["evaluate", _run_copy(t, r), "--split", "nope"]),
    ("resume-wrong-shape", "does not fit this model: fusion.blocks.2",
     lambda t, d, r: [*TRAIN, "--data", str(d), "--resume", "--set", "depth=3",
                      "--out", _run_copy(t, r)]),
    ("resume-pickled-code", "refused by torch.load(weights_only=True)",
     lambda t, d, r: [*TRAIN, "--data", str(d), "--resume", "--out", _run_copy(t, r, lambda p: (
         _ckpt(p) / "trainer_state.pt").write_bytes(pickle.dumps({"step": Evil()})))]),
    ("resume-corrupt-learning-curve", "evals.json is not a list of metric records",
     lambda t, d, r: [*TRAIN, "--data", str(d), "--resume", "--out", _run_copy(t, r, lambda p: (
         _ckpt(p) / "evals.json").write_text('{"val_vqa_acc": 1}'))]),
    ("resume-unreadable-last-eval", "does not fit this run: Expecting value",
     lambda t, d, r: [*TRAIN, "--data", str(d), "--resume", "--out", _run_copy(t, r, lambda p: (
         _ckpt(p) / "last_eval.json").write_text("not json"))]),
    ("pretrain-zero-epochs", "--epochs must be >= 1",  # refused before any data is made
     lambda t, d, r: ["pretrain", "text", "--epochs", "0"]),
    ("train-bad-value-before-data", "adapter_reduction=0: must be >= 1",  # no data made
     lambda t, d, r: ["train", "magma", "--preset", "epalm-tiny", "--set", "adapter_reduction=0"]),
]


def _dir_with(tmp: Path, name: str, text: str) -> str:
    (tmp / "ckpt").mkdir(exist_ok=True)
    (tmp / "ckpt" / name).write_text(text)
    return "ckpt"


def _file(tmp: Path) -> Path:
    (tmp / "a_file").write_text("not a directory")
    return tmp / "a_file"


def _snapshot(*roots: Path) -> dict:
    """Every path with (size, mtime) for files; directories by existence only (a probe for
    writability touches a directory's mtime without leaving anything in it)."""
    return {str(p): None if p.is_dir() else (p.stat().st_size, p.stat().st_mtime_ns)
            for root in roots for p in [root, *root.rglob("*")]}


@pytest.mark.parametrize("name,needle,argv", CASES, ids=[c[0] for c in CASES])
def test_bad_input_exits_2_with_one_line_and_leaves_nothing(name, needle, argv, tmp_path,
                                                            small_data, trained_run,
                                                            monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert_fails_cleanly(argv(tmp_path, small_data, trained_run), needle, tmp_path,
                         small_data, capsys)
    assert not (tmp_path / "PWNED").exists()


def assert_fails_cleanly(args: list[str], needle: str, tmp_path: Path, data: Path,
                         capsys) -> str:
    """The fault-suite contract: exit 2, one ``fusebench: error:`` line naming ``needle``,
    no traceback, and no file created or changed under ``tmp_path`` or ``data``."""
    before = _snapshot(tmp_path, data)
    code, out, err = run_cli(args, capsys)
    assert code == 2, (code, err[-2000:])
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("fusebench: error: ") and needle in err, err
    assert "Traceback" not in err + out
    assert _snapshot(tmp_path, data) == before, "the failed command left files behind"
    return err


def test_there_are_at_least_20_kinds():
    assert len({c[0] for c in CASES}) >= 20


def test_a_trained_run_is_valid_for_the_cases_that_break_it(trained_run):
    """The fixtures are sound: the unbroken run evaluates."""
    from bench.evaluate_run import evaluate_run

    assert evaluate_run(trained_run, "val")["val_vqa_acc"] >= 0
    assert torch.load(_ckpt(trained_run) / "trainer_state.pt", weights_only=True)["step"] > 0


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("args", [["profile", "concat", "--preset", "tiny", "--device", "cuda"],
                                  ["train", "concat", "--device", "cuda:1", "--out", "out"]])
def test_cuda_requested_without_cuda(args, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(args, capsys)
    assert code == 2 and "no CUDA device is available" in err and len(err.splitlines()) == 1
    assert not any(tmp_path.iterdir())


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_read_only_output_directory(tmp_path, monkeypatch, capsys):
    (tmp_path / "ro").mkdir(mode=0o555)
    code, _, err = run_cli(["sweep", _yaml(tmp_path, "s.yaml", SWEEP), "--out",
                            str(tmp_path / "ro" / "out")], capsys)
    assert code == 2 and "is not writable" in err
    assert not any((tmp_path / "ro").iterdir())
