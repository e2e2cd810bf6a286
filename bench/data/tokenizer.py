"""Word-level tokenizer built from the data, as a ``transformers`` fast tokenizer.

Lower-cases, splits on whitespace and punctuation, maps words seen in the training text to
ids (most frequent first) and everything else to ``[UNK]``. Special tokens have fixed ids:
``[PAD]``=0, ``[UNK]``=1, ``[CLS]``=2, ``[SEP]``=3, ``</a>``=4 (eP-ALM's question/answer
separator), ``<s>``=5 and ``</s>``=6 (decoder LM begin/end). Encoding with special tokens
gives ``[CLS] ... [SEP]`` (BERT-style encoders); decoder prompts are assembled by
``bench.data.dataset``. Saved and loaded with ``save_pretrained``/``from_pretrained``, so a
real checkpoint's tokenizer directory can be used in its place (``load_tokenizer``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from bench.errors import UserError

PAD, UNK, CLS, SEP, ANSWER_SEP, BOS, EOS = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "</a>", "<s>", "</s>"
SPECIAL_TOKENS = (PAD, UNK, CLS, SEP, ANSWER_SEP, BOS, EOS)


def _backend(vocab: dict[str, int]):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    tok = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    tok.post_processor = processors.TemplateProcessing(
        single=f"{CLS} $A {SEP}", pair=f"{CLS} $A {SEP} $B {SEP}",
        special_tokens=[(CLS, vocab[CLS]), (SEP, vocab[SEP])])
    return tok


def build_tokenizer(texts: Iterable[str], min_freq: int = 1, max_size: int | None = None):
    """A word-level ``PreTrainedTokenizerFast`` over the words of ``texts`` (ties broken
    alphabetically, so the same texts give the same ids)."""
    from transformers import PreTrainedTokenizerFast

    counts: Counter[str] = Counter()
    splitter = _backend({t: i for i, t in enumerate(SPECIAL_TOKENS)}).pre_tokenizer
    for t in texts:
        counts.update(w for w, _ in splitter.pre_tokenize_str(t.lower()))
    words = sorted((w for w, c in counts.items() if c >= min_freq and w not in SPECIAL_TOKENS),
                   key=lambda w: (-counts[w], w))
    if max_size is not None:
        words = words[: max(0, max_size - len(SPECIAL_TOKENS))]
    vocab = {t: i for i, t in enumerate([*SPECIAL_TOKENS, *words])}
    return PreTrainedTokenizerFast(
        tokenizer_object=_backend(vocab), pad_token=PAD, unk_token=UNK, cls_token=CLS,
        sep_token=SEP, bos_token=BOS, eos_token=EOS, additional_special_tokens=[ANSWER_SEP],
        model_max_length=512)


def load_tokenizer(path: str | Path, add_answer_sep: bool = True):
    """Any local tokenizer directory (ours, BERT's, OPT's, ...) via ``AutoTokenizer``.

    ``add_answer_sep`` adds ``</a>`` as a special token when the tokenizer lacks it (a real
    OPT tokenizer does); the caller must then resize the LM's embeddings to ``len(tokenizer)``.
    A tokenizer without a pad token gets its eos token as pad, as decoder LMs usually do."""
    from transformers import AutoTokenizer

    path = Path(path)
    if not path.is_dir():
        raise UserError(f"tokenizer directory not found: {path}")
    try:
        tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError, KeyError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"cannot load a tokenizer from {path}: {first}") from None
    if add_answer_sep and ANSWER_SEP not in tok.get_vocab():
        tok.add_special_tokens({"additional_special_tokens": [ANSWER_SEP]})
    if tok.pad_token is None and tok.eos_token is not None:
        tok.pad_token = tok.eos_token
    return tok


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "vocab.txt")


def checkpoint_tokenizer(path: str | Path, key: str) -> Path:
    """The tokenizer directory of a local text checkpoint (an OPT or BERT
    ``save_pretrained`` directory): the checkpoint reads the token ids of the vocabulary it
    was trained with, so the questions and answers must be tokenized with that tokenizer,
    not one built from the data. A checkpoint without one is refused: its ids are unknown."""
    path = Path(path)
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        raise UserError(f"{key}={path} holds no tokenizer ({', '.join(TOKENIZER_FILES)}): "
                        "the checkpoint reads the token ids of the vocabulary it was trained "
                        "with; save that tokenizer beside it (tokenizer.save_pretrained(DIR))")
    return path


def answer_sep_id(tokenizer) -> int:
    """Id of eP-ALM's ``</a>`` separator (error if the tokenizer lacks it)."""
    if ANSWER_SEP not in tokenizer.get_vocab():
        raise UserError(f"tokenizer has no {ANSWER_SEP!r} token; load it with load_tokenizer()")
    return tokenizer.convert_tokens_to_ids(ANSWER_SEP)
