"""Loaders for VQA v2, COCO captions and GQA layouts, on fixtures written here, and the
one-line errors a user gets for broken data."""

import json
from pathlib import Path

import pytest
from PIL import Image

from bench.cli import main
from bench.data.loaders import (
    available_splits,
    detect_format,
    files_state,
    load_coco_captions,
    load_examples,
    load_gqa,
    load_vqa2,
)
from bench.data.synthvqa import make
from bench.errors import UserError


def write(path: Path, obj) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return path


def image(path: Path, size=(40, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (200, 10, 10)).save(path)


def vqa_fixture(root: Path) -> Path:
    """Official names: val2014 split, questions/annotations in subfolders, COCO jpg names."""
    for image_id in (42, 7):
        image(root / "val2014" / f"COCO_val2014_{image_id:012d}.jpg")
    answers = ["2", "two", "2", "2", "3", "2", "2", "two", "2", "2"]
    write(root / "questions" / "v2_OpenEnded_mscoco_val2014_questions.json", {"questions": [
        {"image_id": 42, "question": "How many cats?", "question_id": 42000},
        {"image_id": 7, "question": "Is it red?", "question_id": 7001}]})
    write(root / "annotations" / "v2_mscoco_val2014_annotations.json", {"annotations": [
        {"question_id": 7001, "image_id": 7, "question_type": "is it", "answer_type": "yes/no",
         "multiple_choice_answer": "yes",
         "answers": [{"answer": "yes", "answer_confidence": "yes", "answer_id": i + 1}
                     for i in range(10)]},
        {"question_id": 42000, "image_id": 42, "question_type": "how many",
         "answer_type": "number", "multiple_choice_answer": "2",
         "answers": [{"answer": a, "answer_confidence": "yes", "answer_id": i + 1}
                     for i, a in enumerate(answers)]}]})
    return root


def test_vqa2_real_layout(tmp_path):
    root = vqa_fixture(tmp_path)
    assert detect_format(root) == "vqa2" and available_splits(root, "vqa2") == ["val2014"]
    ex = load_examples(root, "val")  # alias finds val2014
    assert [e.question_id for e in ex] == [42000, 7001]
    first = ex[0]
    assert first.image_path.endswith("COCO_val2014_000000000042.jpg")
    assert first.answers[:2] == ("2", "two") and len(first.answers) == 10
    assert (first.answer, first.answer_type, first.question_type) == ("2", "number", "how many")


def test_symlinked_images_and_a_stale_link(tmp_path):
    """Real data often links its image folder in from elsewhere, and a stale link beside
    it is no reason to fail: the images load through the link, and the files' state that
    keys the loaded-data cache is read (a dangling link counted as the link itself)."""
    root = vqa_fixture(tmp_path / "data")
    (root / "val2014").rename(tmp_path / "images")
    (root / "val2014").symlink_to(tmp_path / "images", target_is_directory=True)
    (root / "old_images").symlink_to(tmp_path / "gone")
    assert Path(load_examples(root, "val")[0].image_path).is_file()
    before = files_state(root)
    assert "old_images" in {name for _, name, *_ in before}
    write(root / "notes.txt", "edited")
    assert files_state(root) != before


def test_synthvqa_reads_with_the_vqa_and_coco_loaders(tmp_path):
    make(tmp_path, seed=0, images=20, workers=1)
    for split, n_images in (("train", 16), ("val", 2), ("test", 2)):
        ex = load_vqa2(tmp_path, split)
        assert len(ex) == 5 * n_images  # one question per family
        assert all(Path(e.image_path).is_file() and len(e.answers) == 10 for e in ex)
        caps = load_coco_captions(tmp_path, split)
        assert len(caps) == n_images and all(len(c.answers) == 5 for c in caps)
    assert load_examples(tmp_path, "val", task="caption")[0].question == ""


def test_coco_captions_real_layout(tmp_path):
    image(tmp_path / "train2014" / "COCO_train2014_000000000009.jpg")
    write(tmp_path / "annotations" / "captions_train2014.json", {
        "images": [{"id": 9, "file_name": "COCO_train2014_000000000009.jpg"},
                   {"id": 10, "file_name": "COCO_train2014_000000000010.jpg"}],
        "annotations": [{"image_id": 9, "id": 1, "caption": "A cat."},
                        {"image_id": 9, "id": 2, "caption": "A red square."}]})
    ex = load_coco_captions(tmp_path, "train")  # image 10 has no captions: skipped
    assert len(ex) == 1 and ex[0].answers == ("A cat.", "A red square.")
    assert ex[0].answer == "A cat." and ex[0].image_id == 9


def test_gqa_layout(tmp_path):
    image(tmp_path / "images" / "2354786.jpg")
    image(tmp_path / "images" / "n161313.jpg")
    write(tmp_path / "testdev_balanced_questions.json", {
        "201307251": {"imageId": "2354786", "question": "Is the sky blue?", "answer": "yes",
                      "fullAnswer": "Yes, it is.", "types": {"structural": "verify",
                                                             "detailed": "verifyAttr"}},
        "05515938": {"imageId": "n161313", "question": "What is on the table?",
                     "answer": "cup"}})
    assert detect_format(tmp_path) == "gqa"
    ex = load_gqa(tmp_path, "test")  # alias finds testdev
    assert [(e.question_id, e.answers, e.answer) for e in ex] == \
        [("201307251", ("yes",), "yes"), ("05515938", ("cup",), "cup")]
    assert ex[0].answer_type == "verify" and ex[0].image_path.endswith("2354786.jpg")


# ---- broken data -> one clear line --------------------------------------------------------

def one_line(excinfo) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg
    return msg


def test_missing_directory_and_files(tmp_path):
    with pytest.raises(UserError) as e:
        load_examples(tmp_path / "nope", "train")
    assert "not found" in one_line(e)
    with pytest.raises(UserError) as e:
        load_examples(tmp_path, "train")
    assert "fusebench data make synthvqa" in one_line(e)
    root = vqa_fixture(tmp_path / "v")
    with pytest.raises(UserError) as e:
        load_vqa2(root, "train")
    assert "available splits: val2014" in one_line(e)
    (root / "annotations" / "v2_mscoco_val2014_annotations.json").unlink()
    with pytest.raises(UserError) as e:
        load_vqa2(root, "val")
    assert "no annotations file" in one_line(e)


def test_corrupt_json_and_missing_keys(tmp_path):
    root = vqa_fixture(tmp_path)
    qfile = root / "questions" / "v2_OpenEnded_mscoco_val2014_questions.json"
    write(qfile, '{"questions": [')
    with pytest.raises(UserError) as e:
        load_vqa2(root, "val")
    assert "not valid JSON" in one_line(e) and qfile.name in one_line(e)
    write(qfile, {"questions": [{"image_id": 42, "question": "How many?"}]})
    with pytest.raises(UserError) as e:
        load_vqa2(root, "val")
    assert "lacks key 'question_id'" in one_line(e)
    write(qfile, {"items": []})
    with pytest.raises(UserError) as e:
        load_vqa2(root, "val")
    assert "lacks key 'questions'" in one_line(e)


def test_missing_images(tmp_path):
    root = vqa_fixture(tmp_path)
    (root / "val2014" / "COCO_val2014_000000000042.jpg").unlink()
    with pytest.raises(UserError) as e:
        load_vqa2(root, "val")
    assert "image 42" in one_line(e)
    write(tmp_path / "c" / "captions_val.json", {
        "images": [{"id": 1, "file_name": "gone.jpg"}],
        "annotations": [{"image_id": 1, "id": 1, "caption": "x"}]})
    (tmp_path / "c" / "val").mkdir()
    with pytest.raises(UserError) as e:
        load_coco_captions(tmp_path / "c", "val")
    assert "missing" in one_line(e) and "gone.jpg" in one_line(e)


def test_cli_reports_bad_data_with_exit_2(tmp_path, capsys):
    assert main(["data", "baselines", "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fusebench: error:") and err.count("\n") == 1


def test_a_folder_of_other_files_is_not_told_to_hold_generated_data(tmp_path, capsys):
    """An empty directory is where `data make` may write; someone's folder of other files
    gets the file names looked for instead."""
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("x")
    assert main(["data", "baselines", "--data", str(tmp_path / "empty")]) == 2
    assert "fusebench data make synthvqa" in capsys.readouterr().err
    assert main(["data", "baselines", "--data", str(tmp_path / "notes")]) == 2
    err = capsys.readouterr().err
    assert "data make" not in err and "v2_OpenEnded_mscoco_<split>_questions.json" in err
    assert err.count("\n") == 1


def _edit_json(path: Path, edit) -> None:
    obj = json.loads(path.read_text())
    edit(obj)
    path.write_text(json.dumps(obj))


@pytest.mark.parametrize("edit, message", [
    (lambda a: a["annotations"][0].update(answer_type=["yes/no"]), "'answer_type' must be a"),
    (lambda a: a["annotations"][0].update(question_type=3), "'question_type' must be a"),
])
def test_wrongly_typed_optional_vqa_fields_are_one_line(edit, message, tmp_path):
    root = vqa_fixture(tmp_path)
    _edit_json(root / "annotations" / "v2_mscoco_val2014_annotations.json", edit)
    with pytest.raises(UserError) as e:
        load_examples(root, "val")
    assert message in one_line(e)


@pytest.mark.parametrize("types, message", [
    ("query", "'types' must be an object"),
    ({"structural": {"x": 1}}, "'structural' must be a string"),
])
def test_wrongly_typed_gqa_types_are_one_line(types, message, tmp_path):
    image(tmp_path / "images" / "1.jpg")
    write(tmp_path / "val_balanced_questions.json", {
        "7": {"imageId": "1", "question": "Is it?", "answer": "yes", "types": types}})
    with pytest.raises(UserError) as e:
        load_gqa(tmp_path, "val")
    assert message in one_line(e)


def test_an_id_of_the_other_json_type_is_named_as_such(tmp_path):
    """The string "42" and the integer 42 are different ids in JSON: the error says that
    is why a present image or annotation is not found."""
    root = vqa_fixture(tmp_path)
    questions = root / "questions" / "v2_OpenEnded_mscoco_val2014_questions.json"
    _edit_json(questions, lambda q: q["questions"][0].update(image_id="42"))
    with pytest.raises(UserError) as e:
        load_examples(root, "val")
    assert "image '42'" in one_line(e) and "(it is str here, int there)" in one_line(e)
    _edit_json(questions, lambda q: q["questions"][0].update(image_id=42, question_id="42000"))
    with pytest.raises(UserError) as e:
        load_examples(root, "val")
    assert "question_id '42000' (it is str here, int there)" in one_line(e)


def test_a_question_id_given_twice_in_a_gqa_file_is_refused(tmp_path):
    """GQA keys its questions by id in one JSON object: a plain json.load kept the second
    of two questions under one id and dropped the first without a word."""
    image(tmp_path / "images" / "1.jpg")
    (tmp_path / "val_balanced_questions.json").write_text(
        '{"7": {"imageId": "1", "question": "Is it red?", "answer": "yes"},\n'
        ' "7": {"imageId": "1", "question": "Is it blue?", "answer": "no"}}')
    with pytest.raises(UserError) as e:
        load_gqa(tmp_path, "val")
    assert "val_balanced_questions.json: key '7' appears twice in one object" in one_line(e)
