"""Worker for tests/test_ddp.py: one concat-tiny training run, launched by torchrun (each
process trains on its shard) or called in-process (single-process reference).

Text encoder frozen: BERT's dropout is then off, so both runs are deterministic and differ
only by the gradient all-reduce's summation order."""

import sys

import torch
from torch.utils.data import TensorDataset

import variants
from bench.train import TrainConfig, fit
from variants.interface import Batch

N, ANSWERS, VOCAB = 32, 6, 50
CFG = TrainConfig(epochs=2, batch_size=8, lr=1e-3, warmup_steps=2, progress=False, log_every=1)


def make_data() -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    answers = torch.randint(0, ANSWERS, (N,), generator=g)
    images = torch.randn(N, 3, 64, 64, generator=g) + answers.view(-1, 1, 1, 1).float()
    return TensorDataset(images, torch.randint(4, VOCAB, (N, 16), generator=g), answers)


def collate(items) -> Batch:
    images, ids, answers = map(torch.stack, zip(*items))
    scores = torch.nn.functional.one_hot(answers, ANSWERS).float()
    return Batch(images, ids, torch.ones_like(ids), answer_scores=scores)


def make_model():
    torch.manual_seed(0)
    return variants.create("concat", "tiny", num_answers=ANSWERS, text_vocab_size=VOCAB,
                           freeze_text=True)


def train(out: str) -> dict:
    return fit(make_model(), make_data(), collate, CFG, out)


if __name__ == "__main__":
    torch.set_num_threads(1)
    train(sys.argv[1])
