"""Forward and training-step time of every registered strategy at its family's small preset
(``tiny``, ``epalm-tiny``), batch 8, CPU fp32, one thread; GFLOPs, parameters and peak
memory go to ``extra_info`` so a regression report shows what the time paid for.

``tox -e bench`` compares with tests/benchmarks/baseline/cpu.json (README: refreshing it)."""

import functools

import pytest
import torch

import variants
from bench import baseline
from bench.measure import peak_memory

BATCH = 8
STRATEGIES = [info.name for info in variants.list_strategies()]
MiB = 2**20
# a frozen-LM training step needs answer tokens to predict (dummy_batch makes answer_len)
TRAIN_EXTRA = {"frozen-lm": {"answer_len": 4}}


@functools.cache
def _figures(name: str) -> dict:
    preset = baseline.presets_for(variants.get_strategy(name).family)[0]
    return baseline.figures(name, preset)


def _setup(name: str, train: bool):
    figures = _figures(name)
    torch.manual_seed(0)
    extra = TRAIN_EXTRA.get(figures["family"], {}) if train else {}
    model = variants.create(name, figures["preset"], **extra)
    batch = model.dummy_batch(BATCH, targets=train)
    return model.train(train), batch, figures


def _info(benchmark, figures: dict, mem_bytes: int, method: str) -> None:
    benchmark.extra_info.update(
        preset=figures["preset"], batch_size=BATCH, threads=torch.get_num_threads(),
        gflops_per_example=figures["gflops"], params_total=figures["params_total"],
        params_trainable=figures["params_trainable"], peak_mem_mib=mem_bytes / MiB,
        mem_method=method)


@pytest.mark.benchmark(group="forward")
@pytest.mark.parametrize("name", STRATEGIES)
def test_forward(benchmark, name):
    model, batch, figures = _setup(name, train=False)

    def forward():
        with torch.inference_mode():
            return model(batch)

    mem, method = peak_memory(forward, model, torch.device("cpu"))
    out = benchmark.pedantic(forward, rounds=20, warmup_rounds=3)
    _info(benchmark, figures, mem, method)
    assert "x".join(map(str, out.logits.shape[1:])) == figures["output_shape"].split("x", 1)[1]


@pytest.mark.benchmark(group="train-step")
@pytest.mark.parametrize("name", STRATEGIES)
def test_train_step(benchmark, name):
    """Forward, backward and one AdamW step on the trainable parameters."""
    model, batch, figures = _setup(name, train=True)
    optimizer = torch.optim.AdamW(model.trainable_parameters(), lr=1e-4)
    losses = []

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = model(batch).loss
        loss.backward()
        optimizer.step()
        losses.append(loss.detach())

    step()  # AdamW allocates its state on the first step; measure a steady-state step
    mem, method = peak_memory(step, model, torch.device("cpu"))
    benchmark.pedantic(step, rounds=10, warmup_rounds=2)
    _info(benchmark, figures, mem, method)
    assert all(torch.isfinite(v) for v in losses)
