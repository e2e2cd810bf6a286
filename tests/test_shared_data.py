"""What sweep points share: loaded data and frozen image features within one process, and
the features between a pool's processes (through files)."""

import os
import time

import pytest
import torch

import variants
from bench import cache
from bench.data.dataset import load_vqa_data
from bench.experiment import load_data
from bench.spec import ModelSpec


@pytest.fixture(scope="module")
def split(small_data):
    return load_vqa_data(small_data, image_size=64, text_len=16).splits["train"]


def _frozen_concat(split, seed: int):
    torch.manual_seed(seed)
    return variants.create("concat", "tiny", freeze_vision=True,
                           num_answers=len(split.vocab), text_vocab_size=len(split.tokenizer))


def test_a_second_model_with_the_same_frozen_encoder_reuses_the_features(split):
    first = _frozen_concat(split, 0)
    other_fusion = _frozen_concat(split, 0)
    other_fusion.fusion.apply(lambda m: torch.nn.init.zeros_(m.weight)
                              if isinstance(m, torch.nn.Linear) else None)
    built, reused = cache.shared(first, split, batch_size=8)
    again, reused_again = cache.shared(other_fusion, split, batch_size=8)
    assert again is built and reused_again and not reused
    fresh = cache.FeatureCache(first, split, batch_size=8)
    assert fresh.features.keys() == built.features.keys()
    assert all(torch.equal(fresh.features[k], built.features[k]) for k in fresh.features)


def test_another_encoder_or_split_computes_its_own(split, small_data):
    built, _ = cache.shared(_frozen_concat(split, 0), split, batch_size=8)
    other, reused = cache.shared(_frozen_concat(split, 1), split, batch_size=8)  # new weights
    assert not reused and other is not built
    val = load_vqa_data(small_data, image_size=64, text_len=16).splits["val"]
    on_val, reused = cache.shared(_frozen_concat(split, 0), val, batch_size=8)
    assert not reused and on_val.dataset is val


@pytest.fixture
def through(tmp_path):
    """Features shared through files in a folder, as a pool's workers share them; each
    test's "other process" is this one with its in-memory entries dropped."""
    cache._SHARED.clear()
    cache.share_through(tmp_path)
    yield tmp_path
    cache.share_through(None)
    cache._SHARED.clear()


def test_another_process_reads_the_features_a_first_one_wrote(split, through):
    built, reused = cache.shared(_frozen_concat(split, 0), split, batch_size=8)
    assert not reused and len(list(through.glob("*.safetensors"))) == 1
    cache._SHARED.clear()  # another process: nothing in memory
    read, reused = cache.shared(_frozen_concat(split, 0), split, batch_size=8)
    assert reused and read is not built and read.dataset is split
    assert read.features.keys() == built.features.keys()
    assert all(torch.equal(read.features[k], built.features[k]) for k in read.features)


def test_other_weights_or_pixels_do_not_read_anothers_file(split, small_data, through):
    cache.shared(_frozen_concat(split, 0), split, batch_size=8)
    cache._SHARED.clear()
    _, reused = cache.shared(_frozen_concat(split, 1), split, batch_size=8)
    assert not reused
    other = load_vqa_data(small_data, image_size=64, text_len=16).splits["train"]
    other.images = other.images.clone()
    other.images[-1] = 255 - other.images[-1]  # one image differs, not among the first
    cache._SHARED.clear()
    _, reused = cache.shared(_frozen_concat(split, 0), other, batch_size=8)
    assert not reused and len(list(through.glob("*.safetensors"))) == 3


def test_loaded_data_is_shared_until_a_file_changes(small_data, tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(small_data, data)
    spec = ModelSpec("concat", "tiny")
    first = load_data(spec, data)
    assert load_data(spec, data) is first
    lm = load_data(ModelSpec("epalm", "epalm-tiny"), data)
    assert lm is not first  # other layout, from the same parsed examples and pixels
    assert lm.train.examples == first.train.examples and lm.train.images is first.train.images
    annotations = next(data.glob("*train_annotations.json"))
    stamp = time.time() + 5
    os.utime(annotations, (stamp, stamp))  # the files changed: load again
    again = load_data(spec, data)
    assert again is not first and again.train.images is not first.train.images
