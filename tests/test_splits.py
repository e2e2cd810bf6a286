"""Data without a labelled test split (the VQA v2 release: test-dev answers are not public)
tests on its val split and holds out a tenth of the training images for validation."""

import json
import shutil

import pytest

from bench.data.baselines import floors
from bench.data.loaders import load_examples, split_sources
from bench.data.splits import SplitSource, held_out_images, plan, select
from bench.errors import UserError
from tests.helpers import run_cli, vqa2_only


@pytest.fixture(scope="module")
def release_layout(small_data, tmp_path_factory):
    """small_data in the VQA v2 release's layout: train2014 and val2014 with annotations,
    test-dev2015 questions without (as published)."""
    root = vqa2_only(small_data, tmp_path_factory.mktemp("release") / "vqa")
    for split, name in (("train", "train2014"), ("val", "val2014"), ("test", "test-dev2015")):
        (root / split).rename(root / name)
        (root / f"v2_OpenEnded_mscoco_{split}_questions.json").rename(
            root / f"v2_OpenEnded_mscoco_{name}_questions.json")
        annotations = root / f"v2_mscoco_{split}_annotations.json"
        if split == "test":
            annotations.unlink()
        else:
            annotations.rename(root / f"v2_mscoco_{name}_annotations.json")
    return root


def test_plan_keeps_a_labelled_test_split_and_fills_in_a_missing_one():
    full = plan({"train": "train", "val": "val", "test": "test"}.get)
    assert full == {s: SplitSource(s) for s in ("train", "val", "test")}
    release = plan({"train": "train2014", "val": "val2014"}.get)
    assert release == {"train": SplitSource("train2014", "rest"),
                       "val": SplitSource("train2014", "held-out"),
                       "test": SplitSource("val2014")}
    assert plan({"train": "train", "test": "test"}.get)["val"] == \
        SplitSource("train", "held-out")
    assert plan({"train": "train"}.get) == {"train": SplitSource("train")}  # nothing to test on


def test_held_out_images_are_a_tenth_chosen_by_id_alone():
    ids = list(range(5000))
    held = held_out_images(ids)
    assert 0.08 < len(held) / len(ids) < 0.12
    assert held_out_images(reversed(ids)) == held  # not the order
    assert held_out_images(ids[:2500]) == {i for i in held if i < 2500}  # not the others
    assert len(held_out_images([3, 4])) == 1  # a tiny set still gets a validation image
    examples = [(i, i // 5) for i in range(100)]  # (question, image): 5 questions per image
    val, rest = (select(examples, p, lambda e: e[1]) for p in ("held-out", "rest"))
    assert sorted(val + rest) == examples and not {e[1] for e in val} & {e[1] for e in rest}
    assert all(len([e for e in val if e[1] == img]) == 5 for img in {e[1] for e in val})


def test_release_layout_trains_on_train_and_tests_on_val(release_layout, small_data, capsys):
    sources = split_sources(release_layout, "vqa2")
    assert sources["test"] == SplitSource("val2014")
    ex = {s: load_examples(release_layout, s) for s in ("train", "val", "test")}
    images = {s: {e.image_id for e in v} for s, v in ex.items()}
    assert not images["train"] & images["val"] and not images["train"] & images["test"]
    whole_train = load_examples(small_data, "train")
    assert len(ex["train"]) + len(ex["val"]) == len(whole_train)
    assert [e.question_id for e in ex["test"]] == \
        [e.question_id for e in load_examples(small_data, "val")]
    assert "has no labelled test split: test = val2014" in capsys.readouterr().out
    code, out, _ = run_cli(["data", "info", "--data", str(release_layout)], capsys)
    assert code == 0 and "train2014 less its held-out images" in out and "val2014" in out
    assert "not read (no labels, or not a train/val/test name): test-dev2015" in out


def test_floors_on_the_release_layout_score_its_val_split(release_layout, tmp_path):
    root = shutil.copytree(release_layout, tmp_path / "vqa")
    rows = floors(root)
    test_n = {r["baseline"]: r["n"] for r in rows if r["split"] == "test"}
    assert set(test_n.values()) == {len(load_examples(root, "test"))}
    key = json.loads(json.loads((root / "baselines.json").read_text())["key"])
    assert ["held-out"] == key["files"][1][3:]  # val's signature says which part it reads


def test_a_test_split_without_annotations_and_no_val_says_so(release_layout, tmp_path):
    root = shutil.copytree(release_layout, tmp_path / "vqa")
    (root / "v2_mscoco_val2014_annotations.json").unlink()
    with pytest.raises(UserError, match="'test-dev2015' has questions but no annotations"):
        load_examples(root, "test")


def test_train_on_the_release_layout(release_layout, small_data, tmp_path, capsys):
    code, out, err = run_cli(["train", "late_fusion", "--preset", "tiny", "--data",
                              str(release_layout), "--out", str(tmp_path / "run"), "--epochs",
                              "1", "--no-progress"], capsys)
    assert code == 0, err
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    held_out = load_examples(release_layout, "val")
    assert result["val_examples"] == len(held_out)
    assert result["train_examples"] + len(held_out) == len(load_examples(small_data, "train"))
    assert 0 <= result["test_vqa_acc"] <= 100


def test_train_and_test_only_hold_out_validation_images(small_data, tmp_path, capsys):
    root = vqa2_only(small_data, tmp_path / "vqa")
    for path in root.glob("*_val_*.json"):
        path.unlink()
    val, test = load_examples(root, "val"), load_examples(root, "test")
    assert [e.question_id for e in test] == \
        [e.question_id for e in load_examples(small_data, "test")]
    assert {e.image_id for e in val} <= {e.image_id for e in load_examples(small_data, "train")}
    assert "has no labelled validation split: test = test, val = 10% of train's" in \
        capsys.readouterr().out
