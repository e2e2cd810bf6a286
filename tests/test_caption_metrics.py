"""Captioning metrics through pycocoevalcap (PTB tokenizer and METEOR run in Java)."""

import shutil

import pytest

from bench.errors import UserError
from bench.metrics.captions import METRICS, SPICE_NOTE, caption_metrics

pytestmark = pytest.mark.skipif(shutil.which("java") is None, reason="needs Java")

REFS = {
    1: ["A large red circle on a white background."],
    2: ["two blue squares to the left of a green triangle"],
    3: ["A small yellow diamond and a purple square."],
}


def test_identical_captions_score_perfectly():
    out = caption_metrics(REFS, {k: v[0] for k, v in REFS.items()})
    for n in range(1, 5):
        assert out[f"BLEU-{n}"] == pytest.approx(1.0, abs=1e-6)
    assert out["METEOR"] == pytest.approx(1.0, abs=1e-6)
    assert out["ROUGE-L"] == pytest.approx(1.0)
    # CIDEr-D: every image's tf-idf vectors equal its reference's -> cosine 1 for n = 1..4,
    # no length penalty, x10 scaling -> 10
    assert out["CIDEr"] == pytest.approx(10.0, abs=1e-6)
    assert out["SPICE"] == SPICE_NOTE  # said, not a number


def test_wrong_captions_score_lower_on_every_metric():
    out = caption_metrics(REFS, {1: "a blue square", 2: "", 3: "a small yellow diamond"})
    assert set(METRICS) <= set(out)
    assert all(0.0 <= out[m] < 1.0 for m in METRICS if m != "CIDEr")
    assert 0.0 < out["CIDEr"] < 10.0  # the third caption overlaps its reference
    assert out["ROUGE-L"] > 0.0 and out["METEOR"] > 0.0


def test_bad_inputs_raise_user_error():
    with pytest.raises(UserError, match="different ids"):
        caption_metrics(REFS, {1: "a"})
    with pytest.raises(UserError, match="exactly one hypothesis"):
        caption_metrics({1: ["a"]}, {1: ["a", "b"]})
    with pytest.raises(UserError, match="no reference"):
        caption_metrics({1: []}, {1: "a"})


@pytest.mark.parametrize("predictions, message", [
    ([{"image_id": [55], "caption": "x"}], "expected a list of {image_id, caption}"),
    ([{"image_id": 1, "caption": None}], "expected a list of {image_id, caption}"),
    ([{"image_id": 1, "caption": 123}], "expected a list of {image_id, caption}"),
    ([{"image_id": "a", "caption": "x"}, {"image_id": 99999, "caption": "x"}],
     "have no reference captions"),
    ([], "holds no predictions"),
    ("DUPLICATE", "more than one caption"),
])
def test_a_bad_prediction_file_is_one_line_and_exit_2(predictions, message, small_data,
                                                      tmp_path, capsys):
    import json

    from tests.helpers import run_cli

    if predictions == "DUPLICATE":
        image_id = json.loads((small_data / "captions_test.json").read_text())["images"][0]
        predictions = [{"image_id": image_id["id"], "caption": "x"}] * 2
    path = tmp_path / "pred.json"
    path.write_text(json.dumps(predictions))
    code, out, err = run_cli(["evaluate", "--captions", str(path), "--data", str(small_data),
                              "--split", "test"], capsys)
    assert code == 2 and message in err and err.count("\n") == 1 and out == ""


def test_the_java_tokenizer_prints_nothing_to_the_terminal(capfd):
    caption_metrics(REFS, {k: v[0] for k, v in REFS.items()})
    assert "PTBTokenizer" not in capfd.readouterr().err
