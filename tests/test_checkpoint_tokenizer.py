"""A local text checkpoint (``lm_path``, ``text_path``) reads questions in its own tokens.

A real OPT or BERT knows the ids of the vocabulary it was trained with; the data's own
tokenizer (built from its questions, or shipped with synthvqa) numbers words differently,
so feeding its ids to the checkpoint would train on noise without any error.
"""

import pytest
import torch

from bench.data.tokenizer import ANSWER_SEP, load_tokenizer
from bench.errors import UserError
from bench.experiment import as_trained, prepare, run_experiment
from bench.spec import ModelSpec
from bench.train_config import TrainConfig


def _opt_with_its_tokenizer(path):
    """A micro OPT saved with a byte-level BPE tokenizer of its own (OPT's special tokens:
    <pad> 1, </s> 2 as bos and eos), room left in its embeddings for </a>."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import OPTForCausalLM, PreTrainedTokenizerFast

    from variants.opt import opt_config

    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(
        ["is there a red circle?", "how many squares are there?", "yes no two three"],
        trainers.BpeTrainer(vocab_size=300, special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
                            initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="</s>", eos_token="</s>",
                                  pad_token="<pad>", unk_token="<unk>")
    tok.save_pretrained(path)
    OPTForCausalLM(opt_config("micro", len(tok) + 1)).save_pretrained(path)
    return load_tokenizer(path)


def _spec(lm_path) -> ModelSpec:
    return ModelSpec("epalm", "epalm-tiny", {"lm_path": str(lm_path), "vision_path": ""})


def test_questions_and_special_ids_come_from_the_checkpoints_tokenizer(small_data, tmp_path,
                                                                      capsys):
    own = _opt_with_its_tokenizer(tmp_path / "opt")
    run = prepare(_spec(tmp_path / "opt"), small_data)
    assert run.data.tokenizer.get_vocab() == own.get_vocab()
    cfg = run.model.config()
    test = run.data.splits["test"]
    first = test.input_ids[0][test.attention_mask[0].bool()].tolist()
    words = own(test.examples[0].question, add_special_tokens=False)["input_ids"]
    assert first == [own.bos_token_id, *words[:cfg.text_len - 2],
                     own.convert_tokens_to_ids(ANSWER_SEP)]
    # this small BPE spends many tokens on a question: the cut is said, with the length
    # that keeps every question whole
    lengths = {name: [len(own(e.question, add_special_tokens=False)["input_ids"]) + 2
                      for e in split.examples] for name, split in run.data.splits.items()}
    longest = max(max(v) for v in lengths.values())
    cut = sum(n > cfg.text_len for n in lengths["train"])
    assert longest > cfg.text_len
    out = capsys.readouterr().out
    assert f"note: {cut} of {len(lengths['train'])} train, " in out
    assert f"questions have more tokens than text_len={cfg.text_len} and are read cut " \
        f"short; --set text_len={longest} keeps them whole" in out
    assert (cfg.sep_token_id, cfg.eos_token_id, cfg.pad_token_id) == \
        (own.convert_tokens_to_ids(ANSWER_SEP), 2, 1)
    # profile --data builds the same model without tensorising the data
    assert as_trained(_spec(tmp_path / "opt"), small_data).config() == cfg
    # and it trains and answers end to end in those tokens
    result = run_experiment(run, TrainConfig(epochs=1, max_steps=2, batch_size=16,
                                             progress=False), tmp_path / "run")
    assert 0.0 <= result["test_vqa_acc"] <= 100.0


def test_the_datas_tokenizer_stays_for_pretrained_and_random_backbones(small_data):
    data_vocab = prepare(ModelSpec("concat", "tiny", {"vision_path": ""}), small_data)
    run = prepare(ModelSpec("epalm", "epalm-tiny", {"vision_path": ""}), small_data)
    assert run.data.tokenizer.get_vocab() == data_vocab.data.tokenizer.get_vocab()
    assert not any(s.cut_lengths for s in run.data.splits.values())  # none cut: no note


def test_a_checkpoint_without_a_tokenizer_is_refused(small_data, tmp_path):
    from transformers import OPTForCausalLM

    from variants.opt import opt_config

    torch.manual_seed(0)
    OPTForCausalLM(opt_config("micro", 128)).save_pretrained(tmp_path / "opt")
    with pytest.raises(UserError, match=r"lm_path=.*holds no tokenizer .*save that tokenizer"):
        prepare(_spec(tmp_path / "opt"), small_data)


def test_a_bert_text_encoder_reads_its_own_wordpieces(small_data, tmp_path):
    from transformers import BertTokenizerFast

    from variants.backbones import build_bert

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "?", "is", "there", "a", "how",
             "many", "what", "color", "the", "red", "circle", "##s"]
    (tmp_path / "vocab.txt").write_text("\n".join(words) + "\n")
    BertTokenizerFast(str(tmp_path / "vocab.txt")).save_pretrained(tmp_path / "bert")
    build_bert("micro", len(words), 16).save_pretrained(tmp_path / "bert")
    spec = ModelSpec("concat", "tiny", {"text": "micro", "text_path": str(tmp_path / "bert"),
                                        "vision_path": ""})
    run = prepare(spec, small_data)
    test = run.data.splits["test"]
    assert int(test.input_ids.max()) < len(words)  # every id is one of the BERT's own
    assert test.input_ids[0, 0] == 2  # [CLS]
    result = run_experiment(run, TrainConfig(epochs=1, max_steps=2, batch_size=16,
                                             progress=False), tmp_path / "run")
    assert 0.0 <= result["test_vqa_acc"] <= 100.0
