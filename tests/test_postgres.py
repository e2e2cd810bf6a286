"""Several `fusebench study` workers on one PostgreSQL storage (the multi-machine recipe in
the README). Needs a server: .ci/run installs PostgreSQL from Debian's packages, starts it
on loopback and exports FUSEBENCH_PG_URL."""

import os
import uuid

import pytest
import yaml

from tests.faults import spawn

URL = os.environ.get("FUSEBENCH_PG_URL")
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not URL, reason="FUSEBENCH_PG_URL is unset: no PostgreSQL server "
                                       "(.ci/run starts one on loopback and sets it)"),
]
WORKERS, TRIALS = 2, 6


@pytest.mark.slow
def test_two_workers_share_one_study_and_no_trial_runs_twice(tmp_path, small_data):
    import optuna

    from bench.study_run import _with_driver

    name = f"pg_{uuid.uuid4().hex[:10]}"  # a fresh study on a shared database
    spec = {"name": name, "strategy": "concat", "preset": "tiny", "data": str(small_data),
            "search_space": {"train.lr": {"type": "float", "low": 1e-4, "high": 1e-2,
                                          "log": True},
                             "depth": {"type": "int", "low": 1, "high": 3}},
            "train": {"epochs": 2, "batch_size": 16, "warmup_steps": 0},
            "n_trials": TRIALS, "sampler": {"type": "tpe", "seed": 0},
            "pruner": {"type": "none"}, "heartbeat": {"interval": 1, "grace_period": 5}}
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(spec))
    procs = [spawn(["study", str(tmp_path / "study.yaml"), "--storage", URL,
                    "--out", str(tmp_path / f"worker{i}")], tmp_path, tmp_path / f"w{i}.log")
             for i in range(WORKERS)]
    storage = _with_driver(URL)
    try:
        for i, proc in enumerate(procs):
            assert proc.wait(timeout=600) == 0, (tmp_path / f"w{i}.log").read_text()[-3000:]
        trials = optuna.load_study(study_name=name, storage=storage).get_trials()
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        optuna.delete_study(study_name=name, storage=storage)
    assert [t.state.name for t in trials].count("COMPLETE") == TRIALS
    assert {t.state.name for t in trials} == {"COMPLETE"}
    params = [tuple(sorted(t.params.items())) for t in trials]
    assert len(set(params)) == len(params), "a trial's parameters ran twice"
    ran = [sorted(p.name for p in (tmp_path / f"worker{i}" / "trials").iterdir())
           for i in range(WORKERS)]
    assert all(ran), f"a worker ran no trial: {ran}"  # both took part
    assert not set(ran[0]) & set(ran[1])  # trial numbers are handed out once
