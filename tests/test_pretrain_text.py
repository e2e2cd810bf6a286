"""Text pretraining packs its corpus the way causal LMs are pretrained, on any data."""

from __future__ import annotations

import pytest
import torch

from bench.errors import UserError
from bench.pretrain import TEXT_LINES, _packed, text_epochs


def test_lines_are_packed_end_to_end_into_full_blocks():
    lines = [[1, 5, 6, 2], [1, 7, 2], [1, 8, 9, 10, 2]]  # 12 tokens
    blocks = _packed(lines, block=5)
    assert blocks.tolist() == [[1, 5, 6, 2, 1], [7, 2, 1, 8, 9]]  # the 2-token tail dropped
    assert blocks.dtype == torch.long


def test_a_corpus_shorter_than_one_block_is_one_clear_error():
    with pytest.raises(UserError, match="fewer than one 128-token block"):
        _packed([[1, 2, 3]], block=128)


def test_a_small_corpus_gets_the_lines_of_the_built_in_one_at_least_three_epochs():
    assert text_epochs(TEXT_LINES // 3) == 3 and text_epochs(10 * TEXT_LINES) == 3
    assert text_epochs(12_000) == 12 and text_epochs(6_000) == 24
    assert text_epochs(7_129) * 7_129 >= TEXT_LINES > (text_epochs(7_129) - 1) * 7_129


def test_the_held_out_loss_reads_the_validation_corpus_packed(small_data):
    """The LM's loss on the validation split's corpus, packed as training packs it: a
    random LM scores about ln(vocabulary); a block longer than the corpus is no figure."""
    import math

    from bench.pretrain import _text_corpus, held_out_loss
    from variants.opt import build_opt

    tok, _ = _text_corpus(small_data)
    _, val_lines = _text_corpus(small_data, "val")
    assert val_lines and all(line.startswith(tok.bos_token) for line in val_lines)
    torch.manual_seed(0)
    model = build_opt("micro", vocab_size=len(tok), eos=tok.eos_token_id, pad=tok.pad_token_id)
    loss = held_out_loss(model, tok, small_data, block=16)
    assert abs(loss - math.log(len(tok))) < 0.5
    assert held_out_loss(model, tok, small_data, block=100_000) is None


@pytest.mark.slow
def test_the_lm_pretrains_on_third_party_data_with_the_tokenizer_its_runs_use(
        small_data, tmp_path, monkeypatch):
    """No tokenizer, captions or manifest: the corpus is the training questions and
    answers, the tokenizer the one a training run builds from the same data, and the cache
    is keyed by them (edited answers are another LM)."""
    import json

    import bench.pretrain as pretrain
    from bench.data.dataset import default_tokenizer
    from bench.data.loaders import load_examples
    from tests.helpers import vqa2_only

    monkeypatch.setattr(pretrain, "CACHE", tmp_path / "cache")
    data = vqa2_only(small_data, tmp_path / "vqa2")
    out = pretrain.pretrain_text(data, epochs=1, block=16)
    train = load_examples(data, "train")
    meta = json.loads((out / "meta.json").read_text())
    assert meta["corpus_lines"] == len(train) and 0 < meta["val_loss"] < 10
    monkeypatch.setattr(pretrain, "TEXT_LINES", 4 * len(train))  # epochs not given
    default = pretrain.pretrain_text(data, block=16)
    assert json.loads((default / "meta.json").read_text())["epochs"] == 4 and default != out
    saved = json.loads((out / "config.json").read_text())
    tok = default_tokenizer(data, train)
    assert saved["vocab_size"] == len(tok)
    from transformers import AutoTokenizer
    assert AutoTokenizer.from_pretrained(str(out)).get_vocab() == tok.get_vocab()
    read_corpus = pretrain._text_corpus
    monkeypatch.setattr(pretrain, "_text_corpus", None)  # identified once per process
    assert pretrain.pretrain_text(data, epochs=1, block=16) == out  # cached
    monkeypatch.setattr(pretrain, "_text_corpus", read_corpus)

    path = data / "v2_mscoco_train_annotations.json"
    annotations = json.loads(path.read_text())
    annotations["annotations"][0]["multiple_choice_answer"] = "purple"
    path.write_text(json.dumps(annotations))
    assert pretrain.pretrain_text(data, epochs=1, block=16) != out


def test_two_runs_started_together_pretrain_the_lm_once(small_data, tmp_path, monkeypatch,
                                                        capsys):
    """Two commands on new data at once: one pretrains, the other waits for the lock and
    reuses that LM (each used to pretrain its own and swap it in under the other)."""
    import threading
    import time

    import bench.pretrain as pretrain
    from tests.helpers import vqa2_only

    monkeypatch.setattr(pretrain, "CACHE", tmp_path / "cache")
    data = vqa2_only(small_data, tmp_path / "vqa2")
    trainings, loop = [], pretrain._loop

    def slow_loop(*args, **kwargs):
        trainings.append(1)
        time.sleep(1.5)  # the other caller waits past the half second before it says so
        return loop(*args, **kwargs)

    monkeypatch.setattr(pretrain, "_loop", slow_loop)
    outs = []
    threads = [threading.Thread(
        target=lambda: outs.append(pretrain.pretrain_text(data, epochs=1, block=16)))
        for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(trainings) == 1 and len(outs) == 2 and outs[0] == outs[1]
    assert (outs[0] / "config.json").is_file()
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [outs[0].name]  # no lock left
    assert f"[pretrain] waiting for another command pretraining {outs[0].name} (held by pid" \
        in capsys.readouterr().out


def test_the_built_in_data_keeps_three_epochs_and_so_its_shipped_lm(tmp_path, monkeypatch):
    """The small-corpus rule applies off the built-in data only: there the settings, and
    so the cache key the shipped OPT is filed under, stay those of 3 epochs."""
    import bench.pretrain as pretrain

    (tmp_path / "synthvqa.json").write_text('{"seed": 0}')
    asked = []
    monkeypatch.setattr(pretrain, "CACHE", tmp_path / "cache")
    monkeypatch.setattr(pretrain.reference, "fetch", lambda out, marker: asked.append(out.name)
                        or True)
    pretrain.pretrain_text(tmp_path)
    key = pretrain._key("text", '{"seed": 0}', size="micro", epochs=3, seed=0, lr=3e-3,
                        block=128)
    assert asked == [f"opt-micro-{key}"]


def test_pretrain_help_states_the_small_corpus_rule(capsys):
    from bench.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["pretrain", "text", "--help"])
    assert f"{TEXT_LINES:,}" in " ".join(capsys.readouterr().out.split())
