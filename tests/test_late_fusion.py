"""late_fusion: its written-out LSTM/GRU equal torch's, padding carries the final state,
the knobs do what they say, and both FLOP counters see the recurrence."""

import pytest
import torch
from torch import nn

import variants
from bench.flops import count_flop_counter_mode, count_fvcore
from variants.blocks import RecurrentLayer
from variants.errors import UserError


@pytest.mark.parametrize("directions", [1, 2])
@pytest.mark.parametrize("cell,reference", [("lstm", nn.LSTM), ("gru", nn.GRU)])
def test_recurrent_layer_matches_torch(cell, reference, directions):
    ours = RecurrentLayer(5, 7, cell, directions=directions)
    theirs = reference(5, 7, batch_first=True, bidirectional=directions == 2)
    with torch.no_grad():
        for d, suffix in enumerate(["", "_reverse"][:directions]):
            getattr(theirs, "weight_ih_l0" + suffix).copy_(ours.x2h_weight[d].T)
            getattr(theirs, "bias_ih_l0" + suffix).copy_(ours.x2h_bias[d, 0])
            getattr(theirs, "weight_hh_l0" + suffix).copy_(ours.h2h_weight[d].T)
            getattr(theirs, "bias_hh_l0" + suffix).copy_(ours.h2h_bias[d, 0])
    x = torch.randn(3, 6, 5)
    expected, _ = theirs(x)
    assert torch.allclose(ours(x, torch.ones(3, 6)), expected, atol=1e-5)


def test_padding_carries_the_state_after_the_last_real_token():
    layer = RecurrentLayer(4, 6, "lstm")
    x = torch.randn(2, 5, 4)
    mask = torch.tensor([[1, 1, 1, 0, 0], [0, 0, 1, 1, 1]])
    out = layer(x, mask)
    assert torch.allclose(out[0, -1], layer(x[:1, :3], torch.ones(1, 3))[0, -1], atol=1e-6)
    assert torch.allclose(out[1, -1], layer(x[1:, 2:], torch.ones(1, 3))[0, -1], atol=1e-6)


def test_knobs_change_the_model():
    base = variants.create("late_fusion", "tiny")
    assert base.cfg.embed_dim == 64 and base.cfg.rnn == "lstm" and base.cfg.rnn_layers == 2
    assert base.cfg.image_pool == "cls"  # tiny reads the ViT's [CLS]; the default is mean
    assert base.text_encoder.dim == 2 * base.cfg.width  # final state of both layers
    concat = variants.create("late_fusion", "tiny", combine="concat")
    assert concat.head.fc1.in_features == 2 * concat.cfg.width
    gru = variants.create("late_fusion", "tiny", rnn="gru")
    assert gru.text_encoder.layers[0].h2h_weight.shape[-1] == 3 * gru.cfg.width
    torch.manual_seed(0)
    cls = variants.create("late_fusion", "tiny").eval()
    torch.manual_seed(0)
    mean = variants.create("late_fusion", "tiny", image_pool="mean").eval()
    batch = cls.dummy_batch(2)
    with torch.no_grad():
        assert not torch.allclose(cls(batch).logits, mean(batch).logits)


@pytest.mark.parametrize("overrides", [{}, {"rnn": "gru", "combine": "concat"}])
def test_both_counters_count_the_recurrence(overrides):
    model = variants.create("late_fusion", "tiny", **overrides).eval()
    batch = model.dummy_batch(1)
    fcm, fv = count_flop_counter_mode(model, batch), count_fvcore(model, batch)
    cfg = model.cfg
    gates = 4 if cfg.rnn == "lstm" else 3
    # per layer and token: input projection + hidden projection
    expected = cfg.text_len * gates * cfg.width * (cfg.embed_dim + cfg.width)
    expected += cfg.text_len * gates * cfg.width * 2 * cfg.width
    assert fcm.by_module["text_encoder"] == fv.by_module["text_encoder"] == expected
    assert fcm.total == fv.total and fv.uncounted_ops == []


def test_bad_knobs_are_user_errors():
    from bench.errors import UserError

    with pytest.raises(UserError, match="rnn='rnn': not one of lstm, gru"):
        variants.resolve_config("late_fusion", "tiny", {"rnn": "rnn"})
    with pytest.raises(UserError, match="unknown config key"):
        variants.resolve_config("late_fusion", "tiny", {"heads": 4})


def test_bigru_question_tokens_see_the_whole_question_and_ignore_padding():
    from variants.blocks import BiGRUText

    torch.manual_seed(0)
    enc = BiGRUText(vocab_size=20, width=8)
    ids = torch.tensor([[2, 5, 6, 3, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 0, 0]])
    out = enc(ids, mask)
    assert out.shape == (1, 6, 8)
    changed_last_word = enc(torch.tensor([[2, 5, 7, 3, 0, 0]]), mask)
    # the first token's backward half reads the later words; its forward half does not
    assert not torch.allclose(out[0, 0, 4:], changed_last_word[0, 0, 4:])
    assert torch.allclose(out[0, 0, :4], changed_last_word[0, 0, :4])
    unpadded = enc(ids[:, :4], mask[:, :4])
    assert torch.allclose(out[:, :4], unpadded, atol=1e-6)


def test_gru_text_refuses_a_bert_checkpoint_path():
    with pytest.raises(UserError, match="text=gru has none to load"):
        variants.create("cross_attn", "tiny", text_path="some/bert", text_vocab_size=20,
                        num_answers=5)


def test_gru_text_needs_an_even_width():
    with pytest.raises(UserError, match="even width"):
        variants.resolve_config("cross_attn", "tiny", {"heads": 1, "width": 65})
