"""Vision pretraining targets, the linear probe, and the conv stem."""

from __future__ import annotations

import json

import pytest
import torch

from bench.errors import UserError
from bench.pretrain_vision import (
    ATTRIBUTES,
    PAIRS,
    PretrainHeads,
    _ridge_accuracy,
    dense_targets,
)
from variants.backbones import build_vit

SHAPES_SQUARE = ATTRIBUTES["shape"].index("square") + 1


def test_dense_targets_label_the_cells_under_each_object_and_the_scene_summary():
    """64 px, patch 8 -> a 16x16 grid of 4 px cells; a large red square of radius 10 at
    (20, 36) covers the cells whose centres lie within 10 px, nothing else."""
    obj = {"shape": "square", "color": "red", "size": "large", "x": 20, "y": 36, "r": 10}
    t = dense_targets([{"objects": [obj]}], image_size=64, patch_size=8)
    colour = t["cells"]["color"][0]
    assert colour.shape == (16, 16)
    centres = (torch.arange(16) + 0.5) * 4
    ys, xs = torch.meshgrid(centres, centres, indexing="ij")
    inside = (xs - 20) ** 2 + (ys - 36) ** 2 <= 100
    assert torch.equal(colour > 0, inside) and inside.sum() > 0
    assert set(colour[inside].tolist()) == {ATTRIBUTES["color"].index("red") + 1}
    assert set(t["cells"]["shape"][0][inside].tolist()) == {SHAPES_SQUARE}
    assert t["count"].tolist() == [1]
    summary = t["summary"][0]
    assert summary.sum() == 4  # its colour, shape, size and colour-shape pair
    assert summary[-len(PAIRS) + PAIRS.index(("red", "square"))] == 1


def test_each_patch_token_is_asked_for_its_own_row_and_column():
    """Tokens whose features are one-hot row | one-hot column, read by position heads that
    decode them, fit both position targets (row classes and column classes, and (y, x)
    coordinates in [-1, 1]; row-major token order, as timm lays out the grid); the same
    tokens transposed do not."""
    side, B = 4, 2
    row, col = torch.arange(side).repeat_interleave(side), torch.arange(side).repeat(side)
    patches = torch.cat([torch.eye(side)[row], torch.eye(side)[col]], 1).repeat(B, 1, 1)
    targets = dense_targets([{"objects": []}] * B, image_size=side * 8, patch_size=8)
    heads = PretrainHeads(2 * side, targets["summary"].shape[1], grid=side)
    with torch.no_grad():
        for p in heads.parameters():
            p.zero_()
        heads.position.weight.copy_(50 * torch.eye(2 * side))
        unit = (2 * torch.arange(side) + 1) / side - 1
        heads.coords.weight[0, :side] = unit  # y from the row one-hot
        heads.coords.weight[1, side:] = unit  # x from the column one-hot
    targets["count"] = torch.zeros(B, dtype=torch.long)

    @torch.no_grad()
    def loss(tokens):
        return float(heads.loss(torch.cat([torch.zeros(B, 1, 2 * side), tokens], 1), targets,
                                prefix=1))

    constant = loss(torch.zeros_like(patches))  # every head uninformative
    transposed = patches.view(B, side, side, -1).transpose(1, 2).reshape_as(patches)
    assert loss(patches) < constant - 2 * torch.log(torch.tensor(side)) + 1e-3
    assert loss(transposed) > loss(patches) + 10


def test_ridge_probe_separates_what_is_linear_and_not_what_is_noise():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 8, generator=g)
    y = (x[:, 0] > 0).long()  # linearly separable on feature 0
    assert _ridge_accuracy(x[:300], y[:300], x[300:], y[300:], 2) > 0.9
    noise = torch.randint(0, 2, (400,), generator=g)
    assert _ridge_accuracy(x[:300], noise[:300], x[300:], noise[300:], 2) < 0.7


@pytest.mark.parametrize("stem", ["conv", "conv-deep"])
def test_conv_stem_keeps_the_token_grid_and_rejects_odd_patch_sizes(stem):
    vit = build_vit("micro", 64, 8, stem=stem)
    assert vit.forward_features(torch.randn(2, 3, 64, 64)).shape == (2, 1 + 64, 64)
    with torch.device("meta"):
        assert build_vit("micro", 64, 8, stem=stem).pos_embed.shape == (1, 65, 64)
    with pytest.raises(UserError, match="patch_size 8, 16 or 32"):
        build_vit("micro", 60, 6, stem=stem)


def test_the_deep_conv_stem_is_timms_three_convolution_stem():
    """conv-deep replaces the 7x7 convolution by three 3x3 ones (16-16-32 channels)."""
    plain = build_vit("micro", 64, 8, stem="conv").patch_embed.backbone
    deep = build_vit("micro", 64, 8, stem="conv-deep").patch_embed.backbone
    assert plain.conv1.kernel_size == (7, 7)
    convs = [m for m in deep.conv1.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.kernel_size, c.out_channels) for c in convs] == [((3, 3), 16), ((3, 3), 16),
                                                                ((3, 3), 32)]


def test_conv_stem_computes_the_same_in_channels_last_as_in_the_default_layout():
    """The stem's pre-hook only changes the memory layout its convolutions run in."""
    vit = build_vit("micro", 64, 8, stem="conv").eval()
    stem = vit.patch_embed.backbone
    for norm_param in (p for p in stem.parameters() if p.ndim == 1):
        torch.nn.init.normal_(norm_param, std=0.2)  # the last norms start at 0
    images = torch.randn(3, 3, 64, 64)
    hooked = stem(images)
    stem._forward_pre_hooks.clear()
    plain = stem(images)
    assert hooked.is_contiguous(memory_format=torch.channels_last)
    assert plain.is_contiguous() and torch.allclose(hooked, plain, atol=1e-5, rtol=1e-4)


@pytest.mark.slow
def test_pretrain_vision_reports_a_linear_probe_per_attribute(small_data, tmp_path,
                                                              monkeypatch):
    import bench.pretrain as pretrain

    monkeypatch.setattr(pretrain, "CACHE", tmp_path / "cache")
    path = pretrain.pretrain_vision(small_data, epochs=1)
    meta = json.loads((path.parent / "meta.json").read_text())
    assert meta["stem"] == "conv"
    for key in ("probe_color_acc", "probe_shape_acc", "probe_size_acc", "probe_count_acc"):
        assert 0 <= meta[key] <= 100
    model = build_vit("micro", 64, 8, str(path), stem="conv")  # loads strictly
    assert model.forward_features(torch.zeros(1, 3, 64, 64)).shape == (1, 65, 64)


def test_answer_bags_mark_every_normalised_human_answer_of_an_images_questions(small_data):
    from bench.data.loaders import load_examples
    from bench.metrics.vqa import normalize_answer
    from bench.pretrain_vision import answer_split

    vocab, pixels, bags = answer_split(small_data, "train", 32)
    examples = load_examples(small_data, "train")
    paths = sorted({e.image_path for e in examples})
    assert pixels.shape == (len(paths), 3, 32, 32) and pixels.dtype == torch.uint8
    expected = torch.zeros_like(bags)
    for e in examples:
        for a in e.answers:
            expected[paths.index(e.image_path), vocab.index[normalize_answer(a)]] = 1
    assert torch.equal(bags, expected) and bags.sum(1).min() >= 1


@pytest.mark.slow
def test_data_without_scenes_pretrains_the_vit_on_its_answers(small_data, tmp_path,
                                                                monkeypatch):
    """Third-party data in the VQA v2 layout has no scenes.json: the ViT learns each image's
    answer bag instead, ~ANSWER_STEPS steps, and meta.json holds its probe."""
    import bench.pretrain as pretrain
    from tests.helpers import vqa2_only

    monkeypatch.setattr(pretrain, "CACHE", tmp_path / "cache")
    monkeypatch.setattr(pretrain, "ANSWER_STEPS", 3)
    data = vqa2_only(small_data, tmp_path / "vqa2")
    path = pretrain.pretrain_vision(data)
    meta = json.loads((path.parent / "meta.json").read_text())
    assert "answer bag" in meta["task"] and meta["epochs"] == 3  # 32 images: 1 step each
    assert 0 <= meta["probe_answers_auc"] <= 100 and meta["probe_answers"] > 0
    model = build_vit("micro", 64, 8, str(path), stem="conv")  # loads strictly
    assert model.forward_features(torch.zeros(1, 3, 64, 64)).shape == (1, 65, 64)
    assert pretrain.pretrain_vision(data) == path  # cached
    image = next((data / "train").iterdir())
    image.write_bytes(image.read_bytes() + b"\0")  # another image: another encoder
    assert pretrain.pretrain_vision(data) != path


def test_pretraining_on_a_directory_without_vqa_files_is_one_line(tmp_path, capsys):
    from tests.helpers import run_cli

    code, _, err = run_cli(["pretrain", "vision", "--data", str(tmp_path)], capsys)
    assert code == 2 and "holds no VQA v2 or GQA question files" in err
    assert len(err.strip().splitlines()) == 1
    # only the built-in data's backbones are shipped with the package
    code, _, err = run_cli(["pretrain", "text", "--data", str(tmp_path), "--ship"], capsys)
    assert code == 2 and "--ship ships the built-in data's" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("kind,valid,other_kinds", [("vision", "huge", "opt-125m"),
                                                    ("text", "opt-6.7b", "tiny")])
def test_a_size_outside_the_kinds_registry_is_one_line_and_help_lists_them(
        kind, valid, other_kinds, tmp_path, capsys):
    from tests.helpers import run_cli

    for size in ("nosuch", other_kinds):  # was a KeyError traceback from the size table
        code, _, err = run_cli(["pretrain", kind, "--size", size, "--data", str(tmp_path)],
                               capsys)
        assert code == 2 and f"invalid choice: '{size}'" in err and valid in err
        assert len(err.strip().splitlines()) == 1
    code, out, _ = run_cli(["pretrain", kind, "--help"], capsys)
    assert code == 0 and valid in out


def test_a_checkpoint_directory_in_timms_layout_loads_its_model_safetensors(tmp_path):
    from safetensors.torch import save_file

    torch.manual_seed(0)
    saved = build_vit("micro", 32, 8)
    (tmp_path / "vit").mkdir()
    save_file(saved.state_dict(), tmp_path / "vit" / "model.safetensors")
    (tmp_path / "vit" / "config.json").write_text('{"architecture": "vit_micro"}')
    loaded = build_vit("micro", 32, 8, str(tmp_path / "vit"))
    assert all(torch.equal(a, b) for a, b in zip(saved.state_dict().values(),
                                                 loaded.state_dict().values(), strict=True))
