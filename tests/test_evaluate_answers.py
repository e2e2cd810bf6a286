"""`fusebench evaluate`: a run's answers in the official VQA results format, results files
scored back with the official rules, per answer type, and a run that evaluates from
anywhere."""

import json
import shutil

import pytest

from bench.data.loaders import Example
from bench.evaluate import vqa_metrics
from tests.helpers import run_cli


def example(qid: int, answer: str, answer_type: str) -> Example:
    return Example(qid, 1, "", "q?", (answer,) * 10, answer, answer_type=answer_type)


def test_per_answer_type_accuracy_is_over_the_questions_of_that_type():
    examples = [example(1, "yes", "yes/no"), example(2, "no", "yes/no"),
                example(3, "2", "number"), example(4, "red", "other")]
    got = vqa_metrics({1: "yes", 2: "yes", 3: "2", 4: "blue"}, examples, "test",
                      per_type=True)
    assert got == {"test_vqa_acc": 50.0, "test_exact_match": 50.0,
                   "test_vqa_acc[number]": 100.0, "test_vqa_acc[other]": 0.0,
                   "test_vqa_acc[yes/no]": 50.0}
    untyped = [example(1, "yes", "")]
    assert set(vqa_metrics({1: "yes"}, untyped, "val", per_type=True)) == {
        "val_vqa_acc", "val_exact_match"}  # data without types: no "[all]" duplicate


def test_saved_answers_are_a_results_file_that_scores_back_the_same(trained_run, small_data,
                                                                    tmp_path, monkeypatch,
                                                                    capsys):
    answers = tmp_path / "answers.json"
    code, out, err = run_cli(["evaluate", str(trained_run), "--save-answers", str(answers),
                              "--no-blind", "--format", "json"], capsys)
    assert code == 0, err
    run_scores = json.loads(out)
    results = json.loads(answers.read_text())
    test_questions = json.loads((small_data / "v2_OpenEnded_mscoco_test_questions.json")
                                .read_text())["questions"]
    assert sorted(r["question_id"] for r in results) == sorted(
        q["question_id"] for q in test_questions)
    assert all(set(r) == {"question_id", "answer"} for r in results)
    code, out, err = run_cli(["evaluate", "--answers", str(answers), "--data",
                              str(small_data), "--format", "json"], capsys)
    assert code == 0, err
    file_scores = json.loads(out)
    assert file_scores["questions"] == len(test_questions)
    for key in ("test_vqa_acc", "test_exact_match", "test_vqa_acc[yes/no]"):
        assert file_scores[key] == pytest.approx(run_scores[key])
    stored = json.loads((trained_run / "result.json").read_text())
    assert run_scores["test_vqa_acc"] == pytest.approx(stored["test_vqa_acc"])
    # without --data, the built-in data's place (data/synthvqa), as `train` reads it
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    (project / "data" / "synthvqa").symlink_to(small_data, target_is_directory=True)
    monkeypatch.chdir(project)
    code, out, err = run_cli(["evaluate", "--answers", str(answers), "--format", "json"],
                             capsys)
    assert code == 0, err
    assert json.loads(out) == file_scores


@pytest.mark.parametrize("content, message", [
    ({"question_id": 1}, "expected the VQA results format"),
    ([{"question_id": True, "answer": "x"}], "expected the VQA results format"),
    ([{"question_id": 1, "answer": 2}], "expected the VQA results format"),
    ("DUPLICATE", "answered more than once"),
    ("MISSING", "unanswered"),
    ("EXTRA", "ids not in the split"),
])
def test_a_bad_results_file_is_one_line_and_exit_2(content, message, small_data, tmp_path,
                                                   capsys):
    ids = [q["question_id"] for q in json.loads(
        (small_data / "v2_OpenEnded_mscoco_test_questions.json").read_text())["questions"]]
    full = [{"question_id": i, "answer": "yes"} for i in ids]
    if isinstance(content, str):
        content = {"DUPLICATE": full + full[:1], "MISSING": full[1:],
                   "EXTRA": full + [{"question_id": -5, "answer": "no"}]}[content]
    path = tmp_path / "results.json"
    path.write_text(json.dumps(content))
    code, out, err = run_cli(["evaluate", "--answers", str(path), "--data", str(small_data)],
                             capsys)
    assert code == 2 and message in err and err.count("\n") == 1 and out == ""


def test_evaluate_refuses_conflicting_or_unwritable_requests_before_any_work(
        trained_run, tmp_path, capsys):
    cases = [(["evaluate", str(trained_run), "--save-answers", str(tmp_path)], "a directory"),
             (["evaluate", str(trained_run), "--answers", "a.json", "--data", "d"],
              "score one thing"),
             (["evaluate", "--answers", "a.json"], "missing file: a.json"),
             (["evaluate", "--answers", "a.json", "--captions", "c.json", "--data", "d"],
              "score one thing")]
    for args, message in cases:
        code, _, err = run_cli(args, capsys)
        assert code == 2 and message in err and err.count("\n") == 1, (args, err)


def test_a_run_given_relative_paths_evaluates_from_another_directory(
        trained_run, small_data, tmp_path, monkeypatch, capsys):
    """Training from DIR with `--data data/x` records the path as given and DIR as cwd."""
    project = tmp_path / "project"
    shutil.copytree(small_data, project / "data" / "small")
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    spec = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**spec, "data": "data/small",
                                              "cwd": str(project)}))
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(["evaluate", str(run), "--no-blind", "--format", "json"], capsys)
    assert code == 0, err
    stored = json.loads((trained_run / "result.json").read_text())
    assert json.loads(out)["test_vqa_acc"] == pytest.approx(stored["test_vqa_acc"])


def test_evaluate_reads_the_best_weights_without_the_resume_pointer(trained_run, tmp_path,
                                                                    capsys):
    """A run's `latest` pointer is for resuming: evaluating reads best/ when it is there."""
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    (run / "latest").write_text("ckpt-9999")
    code, out, err = run_cli(["evaluate", str(run), "--no-blind", "--format", "json"], capsys)
    assert code == 0, err
    assert json.loads(out)["weights"].endswith("best/model.safetensors")
