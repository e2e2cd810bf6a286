"""More bad input through the CLI, same contract as tests/test_bad_inputs.py (exit 2, one
line naming the problem, no traceback, nothing created, changed or deleted): numbers that
are not finite or out of range, misspelt enumerations, resource bombs (YAML aliases, huge
images, deep JSON, absurd sizes), dataset fields of the wrong type, checkpoints that do
not fit, runs that must not be silently restarted or overwritten."""

import json
import shutil
import struct
import zlib

import pytest
from safetensors.torch import load_file, save_file

from tests.test_bad_inputs import (
    SWEEP,
    TRAIN,
    _ckpt,
    _data_copy,
    _dir_with,
    _run_copy,
    _write_json,
    _yaml,
    assert_fails_cleanly,
)

STUDY = {"name": "s", "strategy": "concat", "preset": "tiny", "n_trials": 1,
         "search_space": {"depth": {"type": "int", "low": 1, "high": 2}}}
BOMB = "name: bomb\na: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi")) + \
    "description: *i\ngrid: {strategy: [concat]}\n"


def _train(t, d, *extra):
    return [*TRAIN, "--data", str(d), "--out", "out", *extra]


def _sweep_train(**train):
    return {**SWEEP, "mode": "train", "train": train}


def _png_header(width: int, height: int) -> bytes:
    """A valid PNG header claiming ``width`` x ``height`` (no need to hold the pixels: the
    size is refused from the header)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(
        b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _big_image(p, width, height):
    first = sorted((p / "train").iterdir())[0]
    first.write_bytes(_png_header(width, height))


def _edit_split(p, name, change):
    _write_json(p / name, change)


def _questions(change):
    return lambda p: _edit_split(p, "v2_OpenEnded_mscoco_train_questions.json", change)


def _annotations(split, change):
    return lambda p: _edit_split(p, f"v2_mscoco_{split}_annotations.json", change)


def _set_first(key, value, where="questions"):
    return lambda j: j[where][0].update({key: value})


def _bert_dir(t, config=None, rename=False):
    """A micro BERT saved with save_pretrained; ``config`` replaces config.json, ``rename``
    renames every weight (a checkpoint of another architecture)."""
    from transformers.utils import logging as hf_logging

    from variants.backbones import build_bert

    path = t / "bert"
    hf_logging.disable_progress_bar()
    build_bert("micro", 100, 16).save_pretrained(path)
    hf_logging.enable_progress_bar()
    if config is not None:
        (path / "config.json").write_text(json.dumps(config))
    if rename:
        state = load_file(path / "model.safetensors")
        save_file({f"other.{k}": v for k, v in state.items()}, path / "model.safetensors",
                  metadata={"format": "pt"})
    return "bert"


def _bert_config(**change):
    from variants.backbones import build_bert

    return {**build_bert("micro", 100, 16).config.to_dict(), **change}


def _unrelated_vit(t):
    from variants.backbones import build_vit

    state = build_vit("micro", 32, 8).state_dict()
    save_file({f"unrelated.{k}": v.contiguous() for k, v in state.items()},
              t / "vit.safetensors")
    return "vit.safetensors"


def _latest(text):
    return lambda p: (p / "latest").write_text(text)


# (id, needle expected in the one-line error, argv builder(tmp, data, run))
CASES = [
    # numbers: finite, in range, bounded
    ("lr-nan", "lr=nan: must be finite", lambda t, d, r: _train(t, d, "--lr", "nan")),
    ("lr-inf", "lr=inf: must be finite", lambda t, d, r: _train(t, d, "--lr", "inf")),
    ("weight-decay-nan", "weight_decay=nan: must be finite",
     lambda t, d, r: _train(t, d, "--weight-decay", "nan")),
    ("weight-decay-negative", "weight_decay=-1.0: must be >= 0",
     lambda t, d, r: _train(t, d, "--weight-decay", "-1")),
    ("min-lr-ratio-negative", "min_lr_ratio=-10.0: must be >= 0",
     lambda t, d, r: _train(t, d, "--min-lr-ratio", "-10")),
    ("min-lr-ratio-above-1", "min_lr_ratio=2.0: must be <= 1",
     lambda t, d, r: _train(t, d, "--min-lr-ratio", "2")),
    ("grad-clip-nan", "grad_clip=nan: must be finite",
     lambda t, d, r: _train(t, d, "--grad-clip", "nan")),
    ("epochs-huge", "epochs=100000: must be <= 10000",
     lambda t, d, r: _train(t, d, "--epochs", "100000")),
    ("seed-huge", "seed=100000000000000000000: must be <= 4294967295",
     lambda t, d, r: _train(t, d, "--seed", str(10**20))),
    ("seed-negative", "seed=-1: must be >= 0", lambda t, d, r: _train(t, d, "--seed", "-1")),
    ("batch-size-huge", "batch_size=1000000000: must be <= 65536",
     lambda t, d, r: _train(t, d, "--batch-size", "1000000000")),
    ("train-device-mps", "device 'mps': expected cpu, cuda or cuda:N",
     lambda t, d, r: _train(t, d, "--device", "mps")),
    ("profile-device-mps", "device 'mps': expected cpu, cuda or cuda:N",
     lambda t, d, r: ["profile", "concat", "--preset", "tiny", "--device", "mps"]),
    ("profile-batch-huge", "batch_size=1000000000: must be <= 65536",
     lambda t, d, r: ["profile", "concat", "--preset", "tiny", "--batch-size", "1000000000"]),
    ("set-float-nan", "mlp_ratio=nan: must be finite",
     lambda t, d, r: ["profile", "concat", "--preset", "tiny", "--set", "mlp_ratio=nan"]),
    ("set-int-absurd", "width=100000000: must be <= 1000000",
     lambda t, d, r: ["profile", "concat", "--preset", "tiny", "--set", "width=100000000"]),
    ("train-model-beyond-memory", "more than the",
     lambda t, d, r: _train(t, d, "--set", "width=600000", "--set", "heads=2")),
    ("profile-model-beyond-memory", "more than the",
     lambda t, d, r: ["profile", "concat", "--preset", "tiny", "--measure", "always",
                      "--set", "width=600000", "--set", "heads=2"]),
    ("sweep-grad-clip-nan", "grad_clip=nan: must be finite",
     lambda t, d, r: ["sweep", _yaml(t, "s.yaml", "name: w\npreset: tiny\nmode: train\n"
                                     "grid: {strategy: [concat]}\ntrain: {grad_clip: .nan}\n"),
                      "--out", "out"]),
    ("sweep-weight-decay-negative", "weight_decay=-1.0: must be >= 0",
     lambda t, d, r: ["sweep", _yaml(t, "s.yaml", _sweep_train(weight_decay=-1)),
                      "--out", "out"]),
    ("sweep-epochs-1e30", "epochs=1000000000000000019884624838656: must be <=",
     lambda t, d, r: ["sweep", _yaml(t, "s.yaml", _sweep_train(epochs=1.0e30)),
                      "--out", "out"]),
    ("sweep-grid-million-points", "the grid has 1000000 points",
     lambda t, d, r: ["sweep", _yaml(t, "s.yaml", {**SWEEP, "grid": {
         "strategy": ["concat"], "depth": list(range(1, 1001)),
         "width": list(range(1, 1001))}}), "--out", "out"]),
    ("sweep-seed-huge", "seeds=100000000000000000000: must be <= 4294967295",
     lambda t, d, r: ["sweep", _yaml(t, "s.yaml", {**SWEEP, "seeds": [10**20]}),
                      "--out", "out"]),
    ("sweep-measure-misspelt", "measure='nevr': not one of auto, always, never",
     lambda t, d, r: ["sweep", _yaml(t, "s.yaml", {**SWEEP, "profile": {"measure": "nevr"}}),
                      "--out", "out"]),
    ("sweep-profile-batch-string", "batch_size='8': expected an integer",
     lambda t, d, r: ["sweep", _yaml(t, "s.yaml", {**SWEEP, "profile": {"batch_size": "8"}}),
                      "--out", "out"]),
    ("sweep-profile-repeats-list", "repeats=[3]: expected an integer",
     lambda t, d, r: ["sweep", _yaml(t, "s.yaml", {**SWEEP, "profile": {"repeats": [3]}}),
                      "--out", "out"]),
    ("sweep-profile-device-number", "device 3: expected cpu, cuda or cuda:N",
     lambda t, d, r: ["sweep", _yaml(t, "s.yaml", {**SWEEP, "profile": {"device": 3}}),
                      "--out", "out"]),
    ("sweep-profile-max-params-nan", "max_params=nan: must be finite",
     lambda t, d, r: ["sweep", _yaml(t, "s.yaml", "name: w\npreset: tiny\ngrid: {strategy: "
                                     "[concat]}\nprofile: {max_params: .nan}\n"),
                      "--out", "out"]),
    ("sweep-description-mapping", "'description' must be a string",
     lambda t, d, r: ["sweep", _yaml(t, "s.yaml", {**SWEEP, "description": {"a": 1}}),
                      "--out", "out"]),
    ("study-sampler-seed-huge", "sampler.seed=100000000000000000000: expected an integer",
     lambda t, d, r: ["study", _yaml(t, "s.yaml", {**STUDY, "sampler": {"seed": 10**20}}),
                      "--out", "out"]),
    ("sweep-name-dotdot", "'name' must be a non-empty string without '/'",
     lambda t, d, r: ["sweep", _yaml(t, "s.yaml", {**SWEEP, "name": ".."})]),
    ("study-name-traversal", "'name' must not contain '/'",
     lambda t, d, r: ["study", _yaml(t, "s.yaml", {**STUDY, "name": "../../x"})]),
    ("study-n-trials-huge", "n_trials must be a positive integer <= 100000",
     lambda t, d, r: ["study", _yaml(t, "s.yaml", {**STUDY, "n_trials": 10**9}),
                      "--out", "out"]),
    ("study-cli-n-trials-huge", "--n-trials 1000000000: must be <= 100000",
     lambda t, d, r: ["study", _yaml(t, "s.yaml", STUDY), "--n-trials", str(10**9),
                      "--out", "out"]),
    ("study-search-low-nan", "needs finite numeric low <= high",
     lambda t, d, r: ["study", _yaml(t, "s.yaml", "name: s\nstrategy: concat\npreset: tiny\n"
                                     "search_space: {train.lr: {type: float, low: .nan, "
                                     "high: 0.1}}\n"), "--out", "out"]),
    ("evaluate-num-beams-huge", "--num-beams=1000: must be <= 64",
     lambda t, d, r: ["evaluate", _run_copy(t, r), "--num-beams", "1000"]),
    ("evaluate-run-json-wrong-types", "has the wrong type",
     lambda t, d, r: ["evaluate", _run_copy(t, r, lambda p: _write_json(
         p / "run.json", lambda j: j.update(data=["x"])))]),
    ("make-images-huge", "--images 1000000000: at most 1000000",
     lambda t, d, r: ["data", "make", "synthvqa", "--out", "dd", "--images", str(10**9)]),
    ("make-workers-huge", "--workers 100000: must be 1..256",
     lambda t, d, r: ["data", "make", "synthvqa", "--out", "dd", "--workers", "100000"]),
    # resource bombs
    ("sweep-yaml-alias-bomb", "more than 100000 values once YAML aliases are expanded",
     lambda t, d, r: ["sweep", _yaml(t, "s.yaml", BOMB), "--out", "out"]),
    ("sweep-yaml-alias-cycle", "a YAML alias refers to its own anchor",
     lambda t, d, r: ["sweep", _yaml(t, "s.yaml", "name: w\ngrid: &g {strategy: [concat], "
                                     "x: *g}\n"), "--out", "out"]),
    ("study-yaml-alias-bomb", "more than 100000 values once YAML aliases are expanded",
     lambda t, d, r: ["study", _yaml(t, "s.yaml", BOMB.replace("grid: {strategy: [concat]}",
                                                              "strategy: concat")),
                      "--out", "out"]),
    ("image-over-pil-limit", "cannot read image",
     lambda t, d, r: _train(t, _data_copy(t, d, lambda p: _big_image(p, 20000, 20000)))),
    ("image-over-pixel-bound", "is 7000x7000 px, more than the 40 MP",
     lambda t, d, r: _train(t, _data_copy(t, d, lambda p: _big_image(p, 7000, 7000)))),
    ("dataset-json-deep", "JSON nested",
     lambda t, d, r: _train(t, _data_copy(t, d, lambda p: (
         p / "v2_mscoco_train_annotations.json").write_text("[" * 100000 + "]" * 100000)))),
    ("dataset-json-depth-100", "JSON nested deeper than 64 levels",
     lambda t, d, r: _train(t, _data_copy(t, d, lambda p: (
         p / "v2_mscoco_train_annotations.json").write_text(
             '{"annotations": ' + "[" * 100 + "]" * 100 + "}")))),
    # dataset field types, before any training
    ("question-id-list", "question 0: 'question_id' must be an integer or a string, not list",
     lambda t, d, r: _train(t, _data_copy(t, d, _questions(_set_first("question_id", [1]))))),
    ("question-not-string", "question 0: 'question' must be a string, not int",
     lambda t, d, r: _train(t, _data_copy(t, d, _questions(_set_first("question", 7))))),
    ("answer-not-string", "'answer' must be a string, not float",
     lambda t, d, r: _train(t, _data_copy(t, d, _annotations("train", lambda j: j[
         "annotations"][0]["answers"][0].update(answer=1.5))))),
    ("canonical-answer-not-string", "'multiple_choice_answer' must be a string, not list",
     lambda t, d, r: _train(t, _data_copy(t, d, _annotations("train", _set_first(
         "multiple_choice_answer", ["a"], "annotations"))))),
    ("val-answers-empty", "v2_mscoco_val_annotations.json: annotation",
     lambda t, d, r: _train(t, _data_copy(t, d, _annotations("val", _set_first(
         "answers", [], "annotations"))))),
    ("answer-lone-surrogate", "holds a lone surrogate",
     lambda t, d, r: _train(t, _data_copy(t, d, _annotations("test", lambda j: j[
         "annotations"][0]["answers"][0].update(answer="\ud800"))))),
    ("questions-not-a-list", "'questions' must be a list, not dict",
     lambda t, d, r: _train(t, _data_copy(t, d, _questions(lambda j: j.update(
         questions={"a": 1}))))),
    # backbones and checkpoints that do not fit
    ("vision-checkpoint-unrelated-keys", "does not fit ViT-micro/8: missing",
     lambda t, d, r: ["profile", "concat", "--preset", "tiny", "--measure", "always",
                      "--set", f"vision_path={_unrelated_vit(t)}"]),
    ("text-checkpoint-unrelated-weights", "does not fit its config.json: missing 37",
     lambda t, d, r: ["profile", "concat", "--preset", "tiny", "--measure", "always",
                      "--set", "text=micro", "--set", f"text_path={_bert_dir(t, rename=True)}"]),
    ("text-config-a-list", "config.json must hold a JSON object, not list",
     lambda t, d, r: ["profile", "concat", "--preset", "tiny",
                      "--set", "text=micro", "--set", f"text_path={_bert_dir(t, config=[1, 2])}"]),
    ("text-config-absurd-hidden", "hidden_size=100000: expected an integer in 1..8192",
     lambda t, d, r: ["profile", "concat", "--preset", "tiny", "--set", "text=micro", "--set",
                      f"text_path={_bert_dir(t, config=_bert_config(hidden_size=100000))}"]),
    ("text-config-negative-layers", "num_hidden_layers=-2: expected an integer",
     lambda t, d, r: ["profile", "concat", "--preset", "tiny", "--set", "text=micro", "--set",
                      f"text_path={_bert_dir(t, config=_bert_config(num_hidden_layers=-2))}"]),
    ("lm-config-a-list", "config.json must hold a JSON object, not list",
     lambda t, d, r: ["profile", "epalm", "--preset", "epalm-tiny", "--set",
                      f"lm_path={_dir_with(t, 'config.json', '[1, 2]')}"]),
    ("lm-config-absurd-hidden", "hidden_size=100000: expected an integer in 1..16384",
     lambda t, d, r: ["profile", "epalm", "--preset", "epalm-tiny", "--set", "lm_path=" +
                      _dir_with(t, "config.json", '{"model_type": "opt", "hidden_size": 100000}')]),
    ("seed-float-literal", "argument --seed: invalid int value: '1e20'",
     lambda t, d, r: _train(t, d, "--seed", "1e20")),
    # runs: never silently restarted or overwritten
    ("train-into-finished-run", "already holds a finished run; pass --resume",
     lambda t, d, r: [*TRAIN, "--data", str(d), "--out", _run_copy(t, r)]),
    ("train-into-unfinished-run", "already holds an unfinished run",
     lambda t, d, r: [*TRAIN, "--data", str(d), "--out", _run_copy(t, r, lambda p: (
         p / "result.json").unlink())]),
    ("train-into-the-data", "is inside the data directory",
     lambda t, d, r: [*TRAIN, "--data", str(d), "--out", str(d / "run")]),
    ("resume-and-overwrite", "--resume and --overwrite exclude each other",
     lambda t, d, r: [*TRAIN, "--data", str(d), "--resume", "--overwrite",
                      "--out", _run_copy(t, r)]),
    ("resume-empty-latest", "is empty, not a checkpoint name",
     lambda t, d, r: [*TRAIN, "--data", str(d), "--resume", "--out",
                      _run_copy(t, r, _latest(""))]),
    ("resume-latest-missing-checkpoint", "names ckpt-0000099, which is missing",
     lambda t, d, r: [*TRAIN, "--data", str(d), "--resume", "--out",
                      _run_copy(t, r, _latest("ckpt-0000099\n"))]),
    ("resume-latest-outside", "not a checkpoint name",
     lambda t, d, r: [*TRAIN, "--data", str(d), "--resume", "--out",
                      _run_copy(t, r, _latest("../../elsewhere\n"))]),
    ("resume-checkpoint-deleted", "which is missing or incomplete",
     lambda t, d, r: [*TRAIN, "--data", str(d), "--resume", "--out", _run_copy(
         t, r, lambda p: (_ckpt(p) / "model.safetensors").unlink())]),
    ("resume-nothing", "nothing to resume in",
     lambda t, d, r: _train(t, d, "--resume")),
    ("evaluate-empty-latest", "is empty, not a checkpoint name",  # and no best/ weights
     lambda t, d, r: ["evaluate", _run_copy(t, r, lambda p: (
         shutil.rmtree(p / "best"), _latest("")(p)))]),
    # other outside files
    ("study-corrupt-journal", "is corrupt or not an optuna journal",
     lambda t, d, r: ["study", _yaml(t, "s.yaml", STUDY), "--storage",
                      f"journal:{_yaml(t, 'j.log', 'garbage{{{')}", "--out", "out"]),
    ("sweep-corrupt-results", "is not valid JSON",
     lambda t, d, r: ["sweep", _yaml(t, "s.yaml", SWEEP), "--out", _yaml(
         t, "o/results.json", "[{oops") and "o"]),
]


@pytest.mark.parametrize("name,needle,argv", CASES, ids=[c[0] for c in CASES])
def test_bad_input_exits_2_with_one_line_and_leaves_nothing(name, needle, argv, tmp_path,
                                                            small_data, trained_run,
                                                            monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "o").mkdir()
    err = assert_fails_cleanly(argv(tmp_path, small_data, trained_run), needle, tmp_path,
                               small_data, capsys)
    assert len(err) < 600, "an error message expanded its input"
