"""Shared test setup: deterministic torch, small thread count, quiet profiler logs."""

import os

os.environ.setdefault("KINETO_LOG_LEVEL", "5")
# OpenMP threads sleep instead of spinning at barriers: on a busy 2-core machine spinning
# threads steal the cores from the one doing work (measured: a tiny training run 57 s
# spinning vs 14 s passive under load; read by libgomp when torch loads, so set it first)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)



@pytest.fixture(autouse=True, scope="session")
def _pretrained_cache(tmp_path_factory):
    """Backbones the tests pretrain (the ``tiny`` presets use them on synthvqa-layout data)
    are cached in a temporary directory, not in the checkout's ``runs/``."""
    import bench.pretrain

    bench.pretrain.CACHE = tmp_path_factory.mktemp("pretrained")


@pytest.fixture(scope="session")
def small_data(tmp_path_factory):
    """A 40-image synthvqa (96/12/12 questions): real files, trains in a second."""
    from bench.data.synthvqa import make

    out = tmp_path_factory.mktemp("synthvqa40")
    make(out, seed=0, images=40, workers=1)
    return out


@pytest.fixture(scope="session")
def trained_run(small_data, tmp_path_factory):
    """A real 1-epoch concat-tiny run directory (run.json, vocabulary, checkpoint)."""
    from bench.experiment import prepare, run_experiment
    from bench.spec import ModelSpec
    from bench.train_config import TrainConfig

    out = tmp_path_factory.mktemp("run")
    run_experiment(prepare(ModelSpec("concat", "tiny"), small_data),
                   TrainConfig(epochs=1, batch_size=32, progress=False), out)
    return out
