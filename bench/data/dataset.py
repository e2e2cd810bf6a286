"""Examples -> ``variants.interface.Batch``: images, question ids, VQA soft targets and
generative answer ids, tensorised once so CPU training spends its time in the model.

    data = load_vqa_data("data/synthvqa", image_size=64, text_len=16)
    cfg.num_answers, cfg.text_vocab_size = len(data.vocab), len(data.tokenizer)
    loader = DataLoader(data.train, batch_size=64, shuffle=True, collate_fn=data.train.collate)
    for batch in loader:
        out = model(batch)
    batch = data.val.batch(idx)   # any example indices; data.val.examples[i] holds the
                                  # question_id and the 10 human answers

Text styles: "encoder" gives ``[CLS] question [SEP]`` (BERT-like text encoders);
"lm" gives ``<s> question </a>`` (eP-ALM's decoder prompt; captioning prompts are ``<s>``).
``answer_ids`` is the canonical answer's tokens + ``</s>``, padded with -100.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench.atomic_files import atomic_write_text
from bench.errors import UserError
from bench.metrics.vqa import normalize_answer
from variants.interface import Batch

from .loaders import Example, load_examples, read_json
from .tokenizer import answer_sep_id, build_tokenizer, load_tokenizer

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_PIXEL_MEAN = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255
_PIXEL_STD = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255


def normalise(raw: torch.Tensor) -> torch.Tensor:
    """uint8 pixels [N, 3, S, S] -> ImageNet-normalised floats: what every model reads
    (datasets, the feature cache and vision pretraining all go through here)."""
    return (raw.float() - _PIXEL_MEAN) / _PIXEL_STD
CACHE_LIMIT_BYTES = 4 << 30  # decode all images up front when they fit in this much memory
IGNORE_INDEX = -100
DEFAULT_ANSWER_LEN = 8  # answer tokens incl. eos (frozen-LM configs pass their answer_len)


def soft_scores(answers: Sequence[str]) -> dict[str, float]:
    """VQA soft target per normalised answer: min(#annotators who gave it / 3, 1); a
    single-answer example (GQA, a caption) scores its answer 1."""
    counts = Counter(normalize_answer(a) for a in answers)
    if len(answers) == 1:
        return {a: 1.0 for a in counts}
    return {a: min(c / 3.0, 1.0) for a, c in counts.items()}


class AnswerVocab:
    """The classifier's answer list: the top-K most frequent normalised training answers."""

    def __init__(self, answers: Sequence[str]):
        self.answers = list(answers)
        self.index = {a: i for i, a in enumerate(self.answers)}

    @classmethod
    def build(cls, examples: Sequence[Example], top_k: int = 3129) -> AnswerVocab:
        counts = Counter(normalize_answer(a) for ex in examples for a in ex.answers)
        ranked = sorted(counts, key=lambda a: (-counts[a], a))  # ties alphabetical: stable
        return cls(ranked[:top_k])

    def save(self, path: str | Path) -> None:
        """JSON list of answers, written atomically (a temporary name unique per process)."""
        atomic_write_text(path, json.dumps(self.answers, ensure_ascii=False))

    @classmethod
    def load(cls, path: str | Path) -> AnswerVocab:
        answers = read_json(Path(path))
        if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
            raise UserError(f"{path}: expected a JSON list of answer strings")
        return cls(answers)

    def __len__(self) -> int:
        return len(self.answers)

    def __getitem__(self, i: int) -> str:
        return self.answers[i]


MAX_IMAGE_PIXELS = 40_000_000  # 40 MP (PIL refuses only past 179 MP, after ~0.5 GB)


def check_image(path: str) -> None:
    """``UserError`` unless ``path`` opens as an image within ``MAX_IMAGE_PIXELS`` (header
    only: nothing is decoded)."""
    try:
        with Image.open(path) as im:
            w, h = im.size
    except (OSError, Image.DecompressionBombError, ValueError) as e:
        raise UserError(f"cannot read image {path}: {str(e)[:160]}") from None
    if w * h > MAX_IMAGE_PIXELS:
        raise UserError(f"image {path} is {w}x{h} px, more than the "
                        f"{MAX_IMAGE_PIXELS // 10**6} MP fusebench decodes")


def load_image(path: str, size: int) -> np.ndarray:
    """RGB uint8 [3, size, size]; non-square images are resized (squashed) to the square.
    An image over ``MAX_IMAGE_PIXELS`` is refused from its header, before decoding."""
    check_image(path)
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            if im.size != (size, size):
                im = im.resize((size, size), Image.Resampling.BICUBIC)
            return np.asarray(im).transpose(2, 0, 1).copy()
    except (OSError, Image.DecompressionBombError, ValueError) as e:
        raise UserError(f"cannot read image {path}: {str(e)[:160]}") from None


def _pad(rows: list[list[int]], length: int, value: int, left: bool) -> torch.Tensor:
    out = np.full((len(rows), length), value, dtype=np.int64)
    for i, r in enumerate(rows):
        r = r[:length]
        if r:
            if left:
                out[i, length - len(r):] = r
            else:
                out[i, : len(r)] = r
    return torch.from_numpy(out)


def token_ids(tokenizer, texts: Sequence[str]) -> list[list[int]]:
    """Each text's token ids (no special tokens), each distinct text tokenised once: VQA
    questions and answers repeat (templates, "yes", "2"), and turning the tokenizer's
    output into Python lists is most of its time."""
    distinct = list(dict.fromkeys(texts))
    if not distinct:  # the tokenizer fails on an empty batch
        return []
    ids = dict(zip(distinct, tokenizer(distinct, add_special_tokens=False)["input_ids"]))
    return [ids[t] for t in texts]


def encode_questions(tokenizer, questions: Sequence[str], text_len: int, style: str = "encoder",
                     pad_side: str = "right") -> tuple[torch.Tensor, torch.Tensor]:
    """Question token ids and attention mask, [N, text_len] each (truncating the question,
    never the special tokens around it)."""
    if style not in ("encoder", "lm"):
        raise UserError(f"text style {style!r}: not one of encoder, lm")
    if pad_side not in ("right", "left"):
        raise UserError(f"pad_side {pad_side!r}: not one of right, left")
    words = token_ids(tokenizer, questions)
    head, tail = _special_tokens(tokenizer, style)
    room = text_len - len(head) - len(tail)
    if room < 1:
        raise UserError(f"text_len={text_len} leaves no room for the question")
    rows = [head + w[:room] + (tail if (style == "encoder" or q) else []) for w, q in
            zip(words, questions, strict=True)]
    ids = _pad(rows, text_len, tokenizer.pad_token_id or 0, pad_side == "left")
    mask = _pad([[1] * len(r) for r in rows], text_len, 0, pad_side == "left")
    return ids, mask


def _special_tokens(tokenizer, style: str) -> tuple[list[int], list[int]]:
    """The ids around a question: [CLS] ... [SEP] for an encoder (bos/eos where the
    tokenizer has no CLS/SEP), bos ... </a> for an LM."""
    if style == "encoder":
        head = [tokenizer.cls_token_id if tokenizer.cls_token_id is not None
                else tokenizer.bos_token_id]
        tail = [tokenizer.sep_token_id if tokenizer.sep_token_id is not None
                else tokenizer.eos_token_id]
    else:
        head, tail = [tokenizer.bos_token_id], [answer_sep_id(tokenizer)]
    return [t for t in head if t is not None], [t for t in tail if t is not None]


def cut_questions(tokenizer, questions: Sequence[str], text_len: int, style: str = "encoder"
                  ) -> list[int]:
    """The lengths, special tokens included, of the questions ``encode_questions`` cuts
    short to ``text_len`` tokens."""
    specials = sum(map(len, _special_tokens(tokenizer, style)))
    return [len(w) + specials for w in token_ids(tokenizer, questions)
            if len(w) + specials > text_len]


def encode_answers(tokenizer, answers: Sequence[str], answer_len: int) -> torch.Tensor:
    """Answer tokens + eos, [N, answer_len], padded with -100 (eos kept when truncating;
    an encoder's tokenizer without eos, e.g. BERT's, ends them with [SEP])."""
    words = token_ids(tokenizer, answers)
    eos = [t for t in (tokenizer.eos_token_id, tokenizer.sep_token_id) if t is not None][:1]
    rows = [w[: answer_len - len(eos)] + eos for w in words]
    return _pad(rows, answer_len, IGNORE_INDEX, left=False)


class VQADataset(torch.utils.data.Dataset):
    """One split, tensorised. ``self[i]`` is just ``i``; ``collate``/``batch`` build a Batch
    by indexing pre-built tensors (images decoded once into one uint8 tensor when they fit
    ``CACHE_LIMIT_BYTES``, else read per batch)."""

    def __init__(self, examples: Sequence[Example], tokenizer, vocab: AnswerVocab,
                 image_size: int, text_len: int = 16,
                 answer_len: int = DEFAULT_ANSWER_LEN,
                 style: str = "encoder", pad_side: str = "right",
                 cache_images: bool | None = None, workers: int = 4,
                 decoded: torch.Tensor | None = None):
        """``decoded``: these examples' images as another layout of the same split decoded
        them (its ``images``, same size), taken instead of reading the files again."""
        if not examples:
            raise UserError("dataset has no examples")
        self.examples = list(examples)
        self.tokenizer, self.vocab, self.image_size = tokenizer, vocab, image_size
        self.input_ids, self.attention_mask = encode_questions(
            tokenizer, [e.question for e in self.examples], text_len, style, pad_side)
        self.answer_ids = encode_answers(tokenizer, [e.answer for e in self.examples], answer_len)
        full = (self.attention_mask.sum(1) == text_len).tolist()  # only these can be cut
        self.cut_lengths = cut_questions(tokenizer, [e.question for e, f in
                                                     zip(self.examples, full) if f],
                                         text_len, style)
        # soft scores, sparse (CSR): example i owns entries offsets[i]:offsets[i+1]
        cols, vals, offsets = [], [], [0]
        for e in self.examples:
            for a, v in soft_scores(e.answers).items():
                if a in vocab.index:
                    cols.append(vocab.index[a])
                    vals.append(v)
            offsets.append(len(cols))
        self._cols, self._vals = torch.tensor(cols, dtype=torch.long), torch.tensor(vals)
        self._offsets = offsets
        paths = list(dict.fromkeys(e.image_path for e in self.examples))
        slot = {p: i for i, p in enumerate(paths)}
        self.image_paths = paths
        self.image_index = torch.tensor([slot[e.image_path] for e in self.examples])
        if cache_images is None:
            cache_images = len(paths) * 3 * image_size**2 <= CACHE_LIMIT_BYTES
        self.images: torch.Tensor | None = None  # [num_images, 3, S, S] uint8
        if cache_images and decoded is not None and \
                decoded.shape == (len(paths), 3, image_size, image_size):
            self.images = decoded  # read-only from here on, as our own would be
        elif cache_images:
            with ThreadPoolExecutor(workers) as pool:
                arrays = list(pool.map(lambda p: load_image(p, image_size), paths))
            self.images = torch.from_numpy(np.stack(arrays))
        else:  # read per batch: check every header now, so a bad image fails before training
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(check_image, paths))

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> int:
        return i

    def pixels(self, idx: torch.Tensor) -> torch.Tensor:
        """Normalised float images [B, 3, S, S] for example indices ``idx``."""
        return self.slot_pixels(self.image_index[idx])

    def slot_pixels(self, slots: torch.Tensor) -> torch.Tensor:
        """Normalised float images [N, 3, S, S] of image slots ``slots``."""
        if self.images is not None:
            raw = self.images[slots]
        else:
            raw = torch.from_numpy(np.stack([load_image(self.image_paths[s], self.image_size)
                                             for s in slots.tolist()]))
        return normalise(raw)

    def answer_scores(self, idx: torch.Tensor) -> torch.Tensor:
        """Dense soft targets [B, num_answers] for example indices ``idx``."""
        out = torch.zeros(len(idx), len(self.vocab))
        for row, i in enumerate(idx.tolist()):
            a, b = self._offsets[i], self._offsets[i + 1]
            out[row, self._cols[a:b]] = self._vals[a:b]
        return out

    def batch(self, idx: torch.Tensor | Sequence[int]) -> Batch:
        """The examples ``idx``; an image several of them ask about is in it once
        (``Batch.image_slots``), so a model encodes it once."""
        idx = torch.as_tensor(idx, dtype=torch.long)
        slots = self.image_index[idx]
        distinct, image_slots = torch.unique(slots, return_inverse=True)
        if len(distinct) == len(slots):
            distinct, image_slots = slots, None
        return Batch(images=self.slot_pixels(distinct), input_ids=self.input_ids[idx],
                     attention_mask=self.attention_mask[idx],
                     answer_scores=self.answer_scores(idx),
                     answer_ids=self.answer_ids[idx],
                     image_slots=image_slots).without_padding()

    def collate(self, items: list[int]) -> Batch:
        """DataLoader ``collate_fn``: the items are example indices."""
        return self.batch(items)


@dataclass
class VQAData:
    """The splits of one dataset with the tokenizer and answer vocabulary they share."""

    tokenizer: object
    vocab: AnswerVocab
    splits: dict[str, VQADataset]

    def __getattr__(self, name: str) -> VQADataset:
        splits = self.__dict__.get("splits", {})
        if name in splits:
            return splits[name]
        raise AttributeError(name)


def default_tokenizer(root: str | Path, train: Sequence[Example]):
    """``root/tokenizer`` when the data ships one (synthvqa does), else one built from the
    training questions and answers."""
    path = Path(root) / "tokenizer"
    if path.is_dir():
        return load_tokenizer(path)
    return build_tokenizer([t for e in train for t in (e.question, *e.answers)])


def load_vqa_data(root: str | Path, *, image_size: int, text_len: int = 16,
                  answer_len: int = DEFAULT_ANSWER_LEN, num_answers: int = 3129, tokenizer=None,
                  style: str = "encoder", pad_side: str = "right",
                  splits: Sequence[str] = ("train", "val", "test"), task: str = "vqa",
                  fmt: str = "auto", cache_images: bool | None = None,
                  like: VQAData | None = None) -> VQAData:
    """Load and tensorise ``splits`` of the dataset at ``root`` (the first split must be the
    training split: the answer vocabulary and, if needed, the tokenizer come from it).
    ``tokenizer`` may be a tokenizer object or a local tokenizer directory. ``like``:
    another layout of the same files loaded by this process (other text style, length or
    image size), whose parsed examples and, at the same image size, decoded images are
    reused instead of reading the files again."""
    reuse = like is not None and all(s in like.splits for s in splits)
    examples = {s: like.splits[s].examples if reuse else load_examples(root, s, task, fmt)
                for s in splits}
    tokenizer, vocab = _vocabularies(root, examples[splits[0]], tokenizer, num_answers)
    sets = {s: VQADataset(ex, tokenizer, vocab, image_size, text_len, answer_len, style,
                          pad_side, cache_images,
                          decoded=like.splits[s].images if reuse else None)
            for s, ex in examples.items()}
    return VQAData(tokenizer=tokenizer, vocab=vocab, splits=sets)


def load_vocabularies(root: str | Path, *, num_answers: int = 3129, tokenizer=None,
                      task: str = "vqa", fmt: str = "auto") -> VQAData:
    """The tokenizer and answer vocabulary ``load_vqa_data`` gives, with no split
    tensorised (no image read): what a model's config takes from the data, read in a
    fraction of the time (the built-in data: ~0.5 s against ~5 s)."""
    train = load_examples(root, "train", task, fmt)
    tokenizer, vocab = _vocabularies(root, train, tokenizer, num_answers)
    return VQAData(tokenizer=tokenizer, vocab=vocab, splits={})


def _vocabularies(root: str | Path, train: Sequence[Example], tokenizer, num_answers: int):
    """(tokenizer, answer vocabulary) from the training examples; ``tokenizer`` may be
    given (an object or a local directory)."""
    if tokenizer is None:
        tokenizer = default_tokenizer(root, train)
    elif isinstance(tokenizer, (str, Path)):
        tokenizer = load_tokenizer(tokenizer)
    return tokenizer, AnswerVocab.build(train, num_answers)
