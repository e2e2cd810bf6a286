"""Tokenizer, answer vocabulary, soft targets and Batch collation."""

import numpy as np
import pytest
import torch
from PIL import Image

from bench.data.dataset import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    AnswerVocab,
    VQADataset,
    encode_questions,
    load_vqa_data,
    soft_scores,
    token_ids,
)
from bench.data.loaders import Example
from bench.data.synthvqa import make
from bench.data.tokenizer import SPECIAL_TOKENS, build_tokenizer, load_tokenizer
from bench.errors import UserError
from variants.interface import Batch


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    make(out, seed=1, images=20, workers=1)
    return out


@pytest.fixture(scope="module")
def data(root):
    return load_vqa_data(root, image_size=64, text_len=16, answer_len=6)


# ---- tokenizer ----------------------------------------------------------------------------

def test_tokenizer_ids_splitting_and_round_trip(tmp_path):
    tok = build_tokenizer(["Is there a red circle?", "How many RED squares?", "Two."])
    assert [tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS] == list(range(7))
    assert tok.pad_token_id == 0
    enc = tok("Is there a red cube?")["input_ids"]
    assert tok.convert_ids_to_tokens(enc) == \
        ["[CLS]", "is", "there", "a", "red", "[UNK]", "?", "[SEP]"]
    tok.save_pretrained(tmp_path / "tok")
    again = load_tokenizer(tmp_path / "tok")
    assert again("red squares </a> two </s>", add_special_tokens=False)["input_ids"] == \
        tok("red squares </a> two </s>", add_special_tokens=False)["input_ids"]
    assert again.convert_ids_to_tokens(
        again("two </a>", add_special_tokens=False)["input_ids"]) == ["two", "</a>"]


def test_foreign_tokenizer_directory(tmp_path):
    from transformers import BertTokenizerFast

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "is", "it",
                                "red", "?"]) + "\n")
    BertTokenizerFast(str(vocab)).save_pretrained(tmp_path / "bert")
    tok = load_tokenizer(tmp_path / "bert")
    assert "</a>" in tok.get_vocab()  # added for eP-ALM prompts
    ids, mask = encode_questions(tok, ["Is it red?"], 8)
    assert tok.convert_ids_to_tokens(ids[0][: int(mask[0].sum())]) == \
        ["[CLS]", "is", "it", "red", "?", "[SEP]"]
    with pytest.raises(UserError, match="tokenizer directory not found"):
        load_tokenizer(tmp_path / "missing")


# ---- targets ------------------------------------------------------------------------------

def test_soft_scores_by_hand():
    # "2" twice + "two" once = 3 annotators -> min(3/3, 1) = 1; "3" seven times -> 1
    assert soft_scores(["2", "2", "two", *["3"] * 7]) == {"2": 1.0, "3": 1.0}
    # 2 of 10 say "red" -> 2/3; 1 says "a blue" -> "blue" 1/3
    s = soft_scores(["red", "Red.", "a blue", *["green"] * 7])
    assert s == pytest.approx({"red": 2 / 3, "blue": 1 / 3, "green": 1.0})
    assert soft_scores(["cup"]) == {"cup": 1.0}  # single-answer data (GQA)


def test_answer_vocab_top_k_and_round_trip(tmp_path):
    ex = [Example(i, i, "", "q", tuple(a), a[0]) for i, a in
          enumerate([["yes"] * 10, ["Yes."] * 10, ["no"] * 10, ["2", "two"] * 5])]
    vocab = AnswerVocab.build(ex, top_k=2)
    assert vocab.answers == ["yes", "2"]  # 20 "yes", then 10 "2" and 10 "no": tie -> "2"
    vocab.save(tmp_path / "v.json")
    assert AnswerVocab.load(tmp_path / "v.json").answers == vocab.answers


# ---- batches ------------------------------------------------------------------------------

def test_batch_shapes_and_contents(data, root):
    ds = data.train
    b = ds.collate([0, 1, 2, 3])
    assert isinstance(b, Batch)
    # four questions about one image: the image once, and each question's slot in it
    assert b.images.shape == (1, 3, 64, 64) and b.images.dtype == torch.float32
    assert b.image_slots.tolist() == [0, 0, 0, 0]
    # as wide as the batch's longest question and answer (Batch.without_padding)
    longest = int(ds.attention_mask[:4].sum(1).max())
    assert b.input_ids.shape == b.attention_mask.shape == (4, longest) and longest < 16
    assert b.answer_scores.shape == (4, len(data.vocab))
    assert b.answer_ids.shape == (4, int((ds.answer_ids[:4] != -100).sum(1).max()))
    ex = ds.examples[0]
    # pixels: undoing the ImageNet normalisation gives the PNG back
    png = np.array(Image.open(ex.image_path).convert("RGB")).transpose(2, 0, 1).copy()
    mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1)
    restored = (b.images[0] * std + mean) * 255
    assert torch.allclose(restored, torch.from_numpy(png).float(), atol=1e-3)
    # question: [CLS] words [SEP] then padding
    n = int(b.attention_mask[0].sum())
    toks = data.tokenizer.convert_ids_to_tokens(b.input_ids[0][:n])
    assert toks[0] == "[CLS]" and toks[-1] == "[SEP]" and (b.input_ids[0][n:] == 0).all()
    assert data.tokenizer.decode(b.input_ids[0][1:n - 1]) == \
        " ".join(data.tokenizer.tokenize(ex.question))
    # classification target: the canonical answer scores 1
    assert b.answer_scores[0, data.vocab.index[ex.answer]] == 1.0
    # generative target: answer tokens, </s>, then -100
    ids = b.answer_ids[0]
    real = ids[ids != -100].tolist()
    assert real[-1] == data.tokenizer.eos_token_id
    assert data.tokenizer.decode(real[:-1]) == ex.answer
    assert (ids[len(real):] == -100).all()


def test_lm_style_left_padding_and_resize(root):
    d = load_vqa_data(root, image_size=32, text_len=20, style="lm", pad_side="left",
                      splits=("train", "val"))
    b = d.val.batch([0])
    assert b.images.shape == (1, 3, 32, 32)
    n = int(b.attention_mask[0].sum())
    toks = d.tokenizer.convert_ids_to_tokens(b.input_ids[0][-n:])
    assert toks[0] == "<s>" and toks[-1] == "</a>"
    assert (b.attention_mask[0][:-n] == 0).all()


def test_token_ids_tokenise_each_distinct_text_once_with_the_same_ids(data):
    texts = ["is there a red circle?", "yes", "is there a red circle?", "2", "yes"]
    one_by_one = [data.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    ids = token_ids(data.tokenizer, texts)
    assert ids == one_by_one
    assert ids[0] is ids[2]  # shared, so callers build new rows from them (they do)


@pytest.mark.parametrize("image_size", [64, 32])
def test_a_second_layout_reuses_the_first_ones_examples_and_images(root, data, image_size):
    """``like=``: the other family's layout of the same files, as loaded from scratch."""
    layout = dict(image_size=image_size, text_len=20, answer_len=6, style="lm",
                  pad_side="left")
    fresh, reused = load_vqa_data(root, **layout), load_vqa_data(root, **layout, like=data)
    for split in ("train", "val", "test"):
        a, b = fresh.splits[split], reused.splits[split]
        assert b.examples == a.examples and b.image_paths == a.image_paths
        for name in ("input_ids", "attention_mask", "answer_ids", "image_index", "images"):
            assert torch.equal(getattr(a, name), getattr(b, name)), name
        # same size: the very tensor; another size: decoded again
        assert (b.images is data.splits[split].images) == (image_size == 64)
    assert reused.vocab.answers == fresh.vocab.answers


def test_truncation_keeps_special_tokens(data):
    ids, mask = encode_questions(data.tokenizer, ["is there a red circle left of it ?"], 5)
    assert data.tokenizer.convert_ids_to_tokens(ids[0]) == ["[CLS]", "is", "there", "a", "[SEP]"]
    with pytest.raises(UserError, match="no room"):
        encode_questions(data.tokenizer, ["x"], 2)


def test_batches_index_the_prebuilt_tensors(data):
    ds = data.train
    idx = torch.tensor([3, 0, 7])
    batch = ds.batch(idx)
    width = batch.input_ids.shape[1]  # the longest question of the three
    assert torch.equal(batch.input_ids, ds.input_ids[idx][:, :width])
    assert not ds.input_ids[idx][:, width:].any()
    assert ds.image_index[3] == ds.image_index[0] != ds.image_index[7]  # 5 questions an image
    assert batch.images.shape[0] == 2  # the image two questions share is in it once
    assert torch.equal(batch.per_example({"px": batch.images})["px"], ds.pixels(idx))
    assert torch.equal(ds.collate([3, 0, 7]).input_ids, batch.input_ids)
    assert ds.batch([0, 7]).image_slots is None  # distinct images: one each, as before


def test_uncached_images_match_cached(data):
    ds = data.val
    lazy = VQADataset(ds.examples, data.tokenizer, data.vocab, 64, cache_images=False)
    assert lazy.images is None
    assert torch.equal(lazy.batch([0, 1]).images, ds.batch([0, 1]).images)


def test_dataset_errors(data, tmp_path):
    with pytest.raises(UserError, match="no examples"):
        VQADataset([], data.tokenizer, data.vocab, 64)
    with pytest.raises(UserError, match="text style"):
        encode_questions(data.tokenizer, ["x"], 8, style="bert")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    ex = Example(1, 1, str(bad), "is it red?", ("yes",) * 10, "yes")
    with pytest.raises(UserError, match="cannot read image"):
        VQADataset([ex], data.tokenizer, data.vocab, 64)
