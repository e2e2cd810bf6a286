"""Questions that share an image: the image is encoded once a batch (``Batch.image_slots``),
and when the encoder trains, batches gather each image's questions (ImageGroupedSampler)."""

import dataclasses

import pytest
import torch

import variants
from bench.train import ImageGroupedSampler, _loader
from bench.train_config import TrainConfig
from tests.frozen_lm_helpers import TINY as FROZEN_TINY
from variants.interface import Batch

FUSION_TINY = dict(image_size=32, patch_size=8, text_vocab_size=64, num_answers=7,
                   text_len=6)


def _shared_batch(model, slots: list[int], answers: str) -> Batch:
    """Examples whose images repeat (``slots``), as a deduplicated batch."""
    g = torch.Generator().manual_seed(3)
    cfg, n = model.cfg, len(slots)
    distinct = torch.randn(max(slots) + 1, 3, cfg.image_size, cfg.image_size, generator=g)
    ids = torch.randint(4, 50, (n, cfg.text_len), generator=g)
    extra = {"answer_scores": torch.rand(n, cfg.num_answers, generator=g)} \
        if answers == "scores" else {"answer_ids": torch.randint(4, 50, (n, 3), generator=g)}
    return Batch(distinct, ids, torch.ones_like(ids), image_slots=torch.tensor(slots), **extra)


def _loss_and_grads(model, batch: Batch):
    model.zero_grad(set_to_none=True)
    torch.manual_seed(0)  # the same dropout masks (the LM's, per example)
    out = model(batch)
    out.loss.backward()
    return out.logits.detach(), {n: p.grad.clone() for n, p in model.named_parameters()
                                 if p.grad is not None}


@pytest.mark.parametrize("name,preset,tiny,answers,extra", [
    ("cross_attn", "tiny", FUSION_TINY, "scores", {"vision_path": "", "freeze_vision": False}),
    ("finetune", "epalm-tiny", FROZEN_TINY, "ids", {}),
])
def test_shared_images_give_the_same_loss_and_gradients(name, preset, tiny, answers, extra):
    torch.manual_seed(0)
    model = variants.create(name, preset=preset, **{**tiny, **extra}).train()
    assert not model.image_encoder_frozen()  # the encoder runs, and trains, on pixels
    shared = _shared_batch(model, [1, 0, 1, 1, 2], answers)
    one_each = dataclasses.replace(shared, images=shared.images[shared.image_slots],
                                   image_slots=None)
    logits, grads = _loss_and_grads(model, shared)
    logits_each, grads_each = _loss_and_grads(model, one_each)
    assert torch.allclose(logits, logits_each, atol=1e-5)
    assert grads.keys() == grads_each.keys() and any("image_encoder" in n for n in grads)
    for n in grads:
        assert torch.allclose(grads[n], grads_each[n], atol=1e-5, rtol=1e-4), n


def _runs(images: list[int]) -> list[tuple[int, int]]:
    """(image, length) of each run of equal neighbours."""
    runs = []
    for image in images:
        if runs and runs[-1][0] == image:
            runs[-1] = (image, runs[-1][1] + 1)
        else:
            runs.append((image, 1))
    return runs


def test_grouped_sampler_keeps_up_to_group_questions_of_an_image_together():
    image_index = torch.tensor([0, 0, 1, 2, 1, 0, 2, 3, 1, 3, 0, 0])  # image 0: 5 questions
    order = list(ImageGroupedSampler(image_index, 5, torch.Generator().manual_seed(0)))
    assert sorted(order) == list(range(12))
    assert sorted(_runs(image_index[order].tolist())) == [(0, 5), (1, 3), (2, 2), (3, 2)]
    again = list(ImageGroupedSampler(image_index, 5, torch.Generator().manual_seed(0)))
    other = list(ImageGroupedSampler(image_index, 5, torch.Generator().manual_seed(1)))
    assert again == order and other != order  # seeded: reproducible, and shuffled
    four_each = torch.arange(40).repeat(4)  # 40 images, 4 questions each, in groups of 2
    pairs = list(ImageGroupedSampler(four_each, 2, torch.Generator().manual_seed(0)))
    assert sorted(pairs) == list(range(160))
    images = four_each[pairs].view(80, 2)
    assert torch.equal(images[:, 0], images[:, 1])  # every group of two side by side
    assert len(set(images[:, 0].tolist())) == 40


def test_loader_groups_images_only_when_the_recipe_asks(small_data):
    from bench.data.dataset import load_vqa_data

    train = load_vqa_data(small_data, image_size=32, text_len=16, answer_len=6).train
    cfg = TrainConfig(batch_size=8, image_group=4, progress=False)
    grouped = next(iter(_loader(train, cfg, 0, train.collate, group_images=True)))
    plain = next(iter(_loader(train, cfg, 0, train.collate)))  # the encoder is frozen
    off = next(iter(_loader(train, dataclasses.replace(cfg, image_group=0), 0,
                            train.collate, group_images=True)))
    assert grouped.size == plain.size == off.size == 8
    assert grouped.images.shape[0] <= 4 < plain.images.shape[0]  # ~2-3 questions an image
    assert torch.equal(plain.input_ids, off.input_ids)  # image_group 0: the random order


def test_shifted_images_are_crops_of_the_edge_padded_ones_seeded_by_step():
    """``shift_pixels``: each image its own offset of at most the shift, edges replicated;
    the same seed (a resumed step) gives the same views, another step other ones."""
    from bench.train import shifted

    g = torch.Generator().manual_seed(0)
    images = torch.randn(6, 3, 16, 16, generator=g)

    def views(seed: int) -> torch.Tensor:
        batch = Batch(images.clone(), torch.ones(6, 4, dtype=torch.long),
                      torch.ones(6, 4, dtype=torch.long))
        shifted([batch, Batch(None, batch.input_ids, batch.attention_mask)], 2, seed)
        return batch.images

    out = views(7)
    assert out.shape == images.shape and torch.equal(out, views(7))
    assert not torch.equal(out, views(8))
    padded = torch.nn.functional.pad(images, (2,) * 4, mode="replicate")
    for i in range(6):  # each one is the padded image's crop at some offset within +-2
        assert any(torch.equal(out[i], padded[i, :, y:y + 16, x:x + 16])
                   for y in range(5) for x in range(5))
    assert not all(torch.equal(out[i], images[i]) for i in range(6))


def test_shift_pixels_is_validated():
    from bench.errors import UserError

    assert TrainConfig.from_mapping({"shift_pixels": 4}).shift_pixels == 4
    for bad in (-1, 65, "x"):
        with pytest.raises(UserError, match="shift_pixels"):
            TrainConfig.from_mapping({"shift_pixels": bad})
