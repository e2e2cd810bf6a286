"""Output directories have one writer: a second sweep, train or study into a locked --out
exits 2 with one line naming the holder; result stores merge instead of overwriting; a
killed holder never blocks anyone; temporary names are unique per process; a full disk
while checkpointing removes the partial checkpoint."""

import json
import multiprocessing
import os

import pytest
import yaml

from bench.atomic_files import tmp_sibling
from bench.lock import LOCK_NAME, output_lock
from bench.store import ResultStore
from tests.faults import kill_when, read_rows, run, spawn
from tests.helpers import run_cli

SWEEP = {"name": "w", "preset": "jar-base", "profile": {"measure": "never"},
         "grid": {"strategy": ["concat"], "depth": [1, 2]}}
TRAIN = ["train", "concat", "--preset", "tiny", "--epochs", "1", "--no-progress"]


def _spec(tmp_path, name="w", depths=(1, 2)):
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({**SWEEP, "name": name,
                                    "grid": {"strategy": ["concat"], "depth": list(depths)}}))
    return str(path)


@pytest.mark.parametrize("command", ["sweep", "train", "study"])
def test_a_second_writer_gets_one_line_naming_the_holder(command, tmp_path, small_data,
                                                         monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = {"sweep": ["sweep", _spec(tmp_path), "--out", "out", "--quiet"],
            "train": [*TRAIN, "--data", str(small_data), "--out", "out"],
            "study": ["study", _study(tmp_path, small_data), "--out", "out"]}[command]
    with output_lock(tmp_path / "out"):  # this process holds it, as another run would
        code, _, err = run_cli(argv, capsys)
        assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [LOCK_NAME]
    assert code == 2 and err.count("\n") == 1, err
    assert f"is in use by pid {os.getpid()} on " in err and "choose another --out" in err
    assert not (tmp_path / "out").exists()  # released: lock file and directory gone


def _study(tmp_path, data):
    spec = {"name": "s", "strategy": "concat", "preset": "tiny", "data": str(data),
            "n_trials": 1, "search_space": {"depth": {"type": "int", "low": 1, "high": 2}},
            "train": {"epochs": 1}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(spec))
    return str(tmp_path / "s.yaml")


@pytest.mark.slow
def test_two_sweeps_into_one_out_lose_no_rows(tmp_path):
    """Sweep A runs; sweep B into the same --out is refused while A holds it, then runs
    after A and both sweeps' rows are kept (the store merges)."""
    out = tmp_path / "out"
    a = spawn(["sweep", _spec(tmp_path, "a", (1, 2, 3)), "--out", str(out), "--quiet"],
              tmp_path, tmp_path / "a.log")
    while not (out / LOCK_NAME).exists():
        assert a.poll() is None, (tmp_path / "a.log").read_text()
    b_args = ["sweep", _spec(tmp_path, "b", (4, 5)), "--out", str(out), "--quiet"]
    b = spawn(b_args, tmp_path, tmp_path / "b.log")
    assert b.wait(timeout=120) == 2
    assert f"is in use by pid {a.pid}" in (tmp_path / "b.log").read_text()
    assert a.wait(timeout=300) == 0
    run(b_args, tmp_path, tmp_path / "b2.log")
    rows = read_rows(out)
    assert sorted((r["sweep"], r["cfg.depth"]) for r in rows) == [
        ("a", 1), ("a", 2), ("a", 3), ("b", 4), ("b", 5)]


def test_stores_merge_instead_of_last_writer_wins(tmp_path):
    first, second = ResultStore(tmp_path), ResultStore(tmp_path)  # both load an empty dir
    first.add({"point_id": "a", "x": 1})
    second.add({"point_id": "b", "x": 2})
    second.add({"point_id": "a", "x": 3})  # the same point again: replaced, not doubled
    rows = json.loads((tmp_path / "results.json").read_text())
    assert sorted((r["point_id"], r["x"]) for r in rows) == [("a", 3), ("b", 2)]
    assert not (tmp_path / ".results.lock").exists()


def _add_rows(directory: str, tag: str, n: int) -> None:
    store = ResultStore(directory)
    for i in range(n):
        store.add({"point_id": f"{tag}{i}", "i": i})


def test_concurrent_store_writers_keep_every_row(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_add_rows, args=(str(tmp_path), tag, 15)) for tag in "ab"]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    rows = json.loads((tmp_path / "results.json").read_text())
    assert len(rows) == 30 and len({r["point_id"] for r in rows}) == 30


def test_temporary_names_are_unique_per_process(tmp_path):
    names = {tmp_sibling(tmp_path / "ckpt-0000001").name for _ in range(50)}
    assert len(names) == 50 and all(f"-{os.getpid()}-" in n for n in names)


@pytest.mark.slow
def test_a_killed_holder_never_blocks_the_next_run(tmp_path, small_data):
    out = tmp_path / "run"
    args = [*TRAIN, "--epochs", "30", "--data", str(small_data), "--out", str(out)]
    kill_when(spawn(args, tmp_path, tmp_path / "kill.log"),
              lambda: (out / "latest").is_file() and (out / LOCK_NAME).is_file())
    assert (out / LOCK_NAME).is_file()  # left by SIGKILL; the kernel dropped the lock
    text = run([*TRAIN, "--data", str(small_data), "--out", str(out), "--resume",
                "--epochs", "30", "--max-steps", "4"], tmp_path, tmp_path / "resume.log")
    assert "run directory" in text and not (out / LOCK_NAME).exists()


def test_disk_full_while_checkpointing_removes_the_partial_checkpoint(tmp_path, small_data,
                                                                       monkeypatch, capsys):
    import torch

    import bench.checkpoint

    def full(obj, path, *a, **k):
        with open(path, "wb") as f:
            f.write(b"\0" * 1000)  # the partial write that filled the disk
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(bench.checkpoint.torch, "save", full)
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli([*TRAIN, "--data", str(small_data), "--out", "out"], capsys)
    monkeypatch.setattr(bench.checkpoint.torch, "save", torch.save)
    assert code == 2 and err.count("\n") == 1, err
    assert "No space left on device" in err and "removed the partial checkpoint" in err
    left = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert not [n for n in left if "ckpt" in n or n.endswith(".tmp")], left


def test_atomic_files_get_the_umask_mode_and_never_replace_a_directory(tmp_path, capsys):
    """Results are as readable as any file the user's umask makes (mkstemp's own 0600 is
    not kept), and a directory where a result file belongs is one line, not a traceback."""
    from bench.atomic_files import FILE_MODE, atomic_write_json

    atomic_write_json(tmp_path / "a.json", {"x": 1})
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == FILE_MODE
    umask = os.umask(0o022)
    os.umask(umask)
    assert FILE_MODE == 0o666 & ~umask
    out = tmp_path / "sweep"
    (out / "results.json").mkdir(parents=True)  # where the sweep writes its rows
    code, _, err = run_cli(["sweep", _spec(tmp_path), "--out", str(out), "--quiet"], capsys)
    assert code == 2 and "results.json is a directory" in err and err.count("\n") == 1
