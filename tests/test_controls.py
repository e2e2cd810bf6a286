"""The blind control: every test question sees another test image; cached and uncached
evaluation agree; a model that reads the image loses accuracy when blinded, one that
does not loses none; every trained run stores its per-question scores."""

import json

import pytest
import torch
from torch import nn

import variants
from bench.cache import FeatureCache
from bench.controls import SCORES_FILE, evaluate_test, load_scores, swap_images
from bench.data.dataset import load_vqa_data
from bench.errors import UserError
from variants.interface import Output


@pytest.fixture(scope="module")
def test_split(small_data):
    return load_vqa_data(small_data, image_size=64, text_len=16).splits["test"]


def test_every_question_gets_another_image_and_keeps_its_text(test_split):
    blind = swap_images(test_split)
    assert (blind.image_index != test_split.image_index).all()
    assert blind.input_ids is test_split.input_ids and blind.images is test_split.images
    assert torch.equal(blind.image_index, swap_images(test_split).image_index)  # seeded
    # questions of one image all move to the same other image
    moved = dict(zip(test_split.image_index.tolist(), blind.image_index.tolist()))
    assert all(moved[a] == b for a, b in zip(test_split.image_index.tolist(),
                                             blind.image_index.tolist()))


class LookupModel(nn.Module):
    """Answers each (question, image) pair of the test split correctly by lookup, and the
    majority answer for any pair it has not seen: accuracy needs the right image."""

    family = "encoder-fusion"

    def __init__(self, dataset):
        super().__init__()
        self.table = {}
        for i, ex in enumerate(dataset.examples):
            key = self.key(dataset.input_ids[i], dataset.attention_mask[i],
                           dataset.pixels(torch.tensor([i]))[0])
            self.table[key] = dataset.vocab.index.get(ex.answer, 0)
        self.num_answers = len(dataset.vocab)

    @staticmethod
    def key(ids, mask, image) -> tuple:
        """The question's real tokens (batches drop shared padding) and the image."""
        return (tuple(ids[mask.bool()].tolist()), round(float(image.sum()), 2))

    def forward(self, batch):
        logits = torch.zeros(batch.size, self.num_answers)
        images = batch.per_example({"pixels": batch.images})["pixels"]  # one per question
        for i in range(batch.size):
            key = self.key(batch.input_ids[i], batch.attention_mask[i], images[i])
            logits[i, self.table.get(key, 0)] = 1
        return Output(logits=logits)


def test_a_model_that_reads_the_image_relies_on_it(test_split):
    figures, scores = evaluate_test(LookupModel(test_split), test_split)
    assert figures["test_vqa_acc"] > 80
    assert figures["image_reliance"] == figures["test_vqa_acc"] - figures["blind_vqa_acc"]
    assert figures["image_reliance"] > 20
    assert len(scores["blind_vqa_acc"]) == len(scores["question_id"]) == len(test_split)


def test_a_model_that_ignores_the_image_has_zero_reliance(test_split):
    class Constant(LookupModel):
        def forward(self, batch):
            return Output(logits=torch.zeros(batch.size, self.num_answers))

    figures, scores = evaluate_test(Constant(test_split), test_split)
    assert figures["image_reliance"] == 0 and scores["test_vqa_acc"] == scores["blind_vqa_acc"]


def test_cached_features_give_the_same_blind_scores_as_pixels(test_split):
    model = variants.create("concat", "tiny", freeze_vision=True, num_answers=len(
        test_split.vocab), text_vocab_size=len(test_split.tokenizer)).eval()
    plain = evaluate_test(model, test_split)
    cached = evaluate_test(model, test_split, cache=FeatureCache(model, test_split))
    assert plain[1]["blind_vqa_acc"] == cached[1]["blind_vqa_acc"]
    assert plain[0] == pytest.approx(cached[0])


def test_a_trained_run_stores_per_question_scores_and_controls(small_data, tmp_path):
    from bench.experiment import prepare, run_experiment
    from bench.spec import ModelSpec
    from bench.train_config import TrainConfig

    result = run_experiment(prepare(ModelSpec("late_fusion", "tiny"), small_data),
                            TrainConfig(epochs=1, batch_size=32, progress=False), tmp_path)
    scores = load_scores(tmp_path)
    assert set(scores) == {"question_id", "test_vqa_acc", "test_exact_match", "blind_vqa_acc"}
    assert 100 * sum(scores["test_vqa_acc"]) / len(scores["test_vqa_acc"]) == pytest.approx(
        result["test_vqa_acc"])
    assert result["image_reliance"] == pytest.approx(
        result["test_vqa_acc"] - result["blind_vqa_acc"])


def test_corrupt_score_files_are_user_errors(tmp_path):
    assert load_scores(tmp_path) is None
    (tmp_path / SCORES_FILE).write_text("{not json")
    with pytest.raises(UserError, match="unreadable"):
        load_scores(tmp_path)
    (tmp_path / SCORES_FILE).write_text(json.dumps({"question_id": [1, 2],
                                                    "test_vqa_acc": [1.0]}))
    with pytest.raises(UserError, match="differ in length"):
        load_scores(tmp_path)


def test_evaluate_scores_the_weights_the_run_tested_with_its_blind_control(trained_run):
    """`fusebench evaluate RUN` gives the run's own test figures (best-epoch weights, the
    same seeded image swap), from pixels where training used cached features."""
    import json

    from bench.evaluate_run import evaluate_run

    stored = json.loads((trained_run / "result.json").read_text())
    again = evaluate_run(trained_run, "test")
    assert again["weights"].endswith("best/model.safetensors")
    assert again["test_vqa_acc"] == pytest.approx(stored["test_vqa_acc"])
    assert again["test_blind_vqa_acc"] == pytest.approx(stored["blind_vqa_acc"])
    assert again["test_image_reliance"] == pytest.approx(stored["image_reliance"])
    assert "test_blind_vqa_acc" not in evaluate_run(trained_run, "test", blind=False)
