"""CLI: the commands a user types, their output and exit codes."""

import json

import pytest

from tests.helpers import run_cli


def test_list_and_describe(capsys):
    code, out, _ = run_cli(["list"], capsys)
    assert code == 0 and "concat" in out and "encoder-fusion" in out
    code, out, _ = run_cli(["list", "--presets", "--format", "json"], capsys)
    presets = {row["preset"]: row for row in json.loads(out)}
    assert code == 0 and "epochs=" in presets["tiny"]["train recipe"]
    # what each preset's backbones are where the data is not the built-in one
    assert presets["tiny"]["on other data"] == "-" != presets["tiny"]["from raw pixels"]
    assert presets["epalm-tiny"]["on other data"] == "the same, pretrained on it"
    code, out, _ = run_cli(["describe", "concat", "--format", "json"], capsys)
    keys = {row["key"]: row for row in json.loads(out)}
    assert keys["depth"]["default"] == 12 and keys["depth"]["type"] == "int"


def test_describe_shows_each_keys_value_under_a_preset(capsys):
    import variants

    code, out, _ = run_cli(["describe", "jar", "--preset", "tiny", "--format", "json"], capsys)
    rows = json.loads(out)
    keys = {row["key"]: row for row in rows}
    tiny = variants.resolve_config("jar", "tiny")
    assert code == 0 and list(rows[0])[:4] == ["key", "type", "default", "tiny"]
    assert keys["width"]["default"] == 768 and keys["width"]["tiny"] == tiny.width == 64
    assert keys["gate_init"]["tiny"] == tiny.gate_init  # the preset's per-strategy keys
    code, out, _ = run_cli(["describe", "jar", "--preset", "tiny"], capsys)
    assert code == 0 and "fusebench list --presets" in out
    code, _, err = run_cli(["describe", "jar", "--preset", "epalm-tiny"], capsys)
    assert code == 2 and "is for frozen-lm strategies" in err


@pytest.mark.parametrize("args,needle", [
    (["profile", "nope"], "unknown strategy 'nope'; valid:"),
    (["profile", "concat", "--preset", "nope"], "unknown preset 'nope'"),
    (["profile", "concat", "--image-size", "100"], "not divisible by patch_size=16"),
    (["profile", "concat", "--set", "depth=0"], "depth=0: must be >= 1"),
    (["profile", "concat", "--set", "depth=-3"], "must be >= 1"),
    (["profile", "concat", "--set", "dept=3"], "unknown config key(s) dept"),
    (["profile", "concat", "--set", "depth=x"], "expected int"),
    (["profile", "concat", "--set", "depth"], "expected KEY=VALUE"),
    (["profile", "concat", "--format", "xml"], "invalid choice"),
    (["describe", "nope"], "unknown strategy"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_input_exits_2_with_one_line(capsys, args, needle):
    code, out, err = run_cli(args, capsys)
    assert code == 2
    assert needle in err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


def test_profile_prints_every_figure_with_units(capsys):
    code, out, _ = run_cli(["profile", "concat", "--preset", "tiny", "--repeats", "2",
                            "--batch-size", "2"], capsys)
    assert code == 0
    for needle in ("trainable", "GFLOPs per example", "FlopCounterMode", "fvcore",
                   "by component", "MiB", "training step peak", "median", "ms",
                   "examples/s", "MFU", "GFLOP/s"):
        assert needle in out, needle


def test_profile_json_and_csv(capsys):
    code, out, _ = run_cli(["profile", "concat", "--preset", "tiny", "--measure", "never",
                            "--format", "json"], capsys)
    row = json.loads(out)
    assert code == 0 and row["measured"] is False and row["gflops_fcm"] > 0
    code, out, _ = run_cli(["profile", "concat", "--preset", "tiny", "--measure", "never",
                            "--format", "csv"], capsys)
    header, values = out.strip().splitlines()
    assert "gflops_fcm" in header.split(",") and len(values.split(",")) >= len(header.split(","))


def test_untested_dependency_version_warns_in_one_line_at_start(monkeypatch, capsys):
    """A transformers outside pyproject's tested range is named with the range at start-up
    of a model command, before any work (here the command then fails on its own input)."""
    from importlib import metadata

    from bench import env
    from bench.cli import main

    try:
        metadata.requires("fusebench")
    except metadata.PackageNotFoundError:
        pytest.skip("fusebench is not installed: no declared ranges to check against")
    monkeypatch.delenv("FUSEBENCH_NO_VERSION_CHECK", raising=False)  # tox -e latest sets it
    real = env._version
    monkeypatch.setattr(env, "_version", lambda n: "99.0.0" if n == "transformers" else real(n))
    assert main(["profile", "no_such_strategy"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("fusebench: warning: transformers 99.0.0 is outside the tested "
                             "range >=")
    assert "constraints.txt" in err[0] and err[1].startswith("fusebench: error:")


def test_help_says_what_each_training_flag_does(capsys):
    """No flag's help is only its own name re-spelled (`--max-steps  max steps`), and the
    top-level description is a whole sentence, not a docstring cut mid-line."""
    from bench.cli import DESCRIPTION, build_parser

    assert DESCRIPTION.endswith(".")
    train = build_parser()._subparsers._group_actions[0].choices["train"]
    for action in train._actions:
        flag = next((o for o in action.option_strings if o.startswith("--")), None)
        if flag and flag != "--help":
            words = flag[2:].replace("-", " ")
            assert action.help and not action.help.startswith(f"{words} (default"), flag
            assert action.help != words, flag


def test_profile_with_data_is_the_model_as_trained_on_it(trained_run, small_data, capsys):
    """`profile --data DIR` builds what `train` built on DIR (vocabulary, answers, the
    preset's backbones), so its figures are the report's; without it, the config's own
    sizes, and the table says so."""
    args = ["profile", "concat", "--preset", "tiny", "--measure", "never", "--format", "json"]
    trained = json.loads((trained_run / "run.json").read_text())["overrides"]
    code, out, err = run_cli([*args, "--data", str(small_data)], capsys)
    assert code == 0, err
    row = json.loads(out)
    assert row["cfg.num_answers"] == trained["num_answers"]
    assert row["cfg.text_vocab_size"] == trained["text_vocab_size"]
    code, out, _ = run_cli(["profile", "concat", "--preset", "tiny", "--measure", "never"],
                           capsys)
    assert "--data DIR profiles the model as trained on DIR" in out
