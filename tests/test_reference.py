"""Shipped reference checkpoints: used only for their own data, only when their hashes hold."""

from __future__ import annotations

import json

import pytest

from bench import reference


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    cached = tmp_path / "cache" / "vit-micro-conv-64px-p8-abc123"
    cached.mkdir(parents=True)
    (cached / "model.safetensors").write_bytes(b"weights")
    (cached / "meta.json").write_text("{}")
    manifest = tmp_path / "synthvqa.json"
    manifest.write_text('{"seed": 0}')
    monkeypatch.setattr(reference, "SHIPPED", tmp_path / "shipped")
    entry = reference.ship(cached, "fusebench pretrain vision --force --ship", manifest)
    return entry, tmp_path / "runs" / cached.name


def test_a_shipped_entry_installs_into_the_cache_after_its_hashes_check(shipped, capsys):
    entry, target = shipped
    assert json.loads((entry / "reference.json").read_text())["command"].endswith("--ship")
    assert len((entry / "SHA256SUMS").read_text().splitlines()) == 3
    assert reference.fetch(target, "model.safetensors")
    assert (target / "model.safetensors").read_bytes() == b"weights"
    assert not (target / "SHA256SUMS").exists()
    assert "sha256 verified" in capsys.readouterr().out


def test_a_tampered_or_foreign_entry_is_never_used(shipped, tmp_path, capsys):
    entry, target = shipped
    assert not reference.fetch(target.parent / "vit-micro-conv-64px-p8-otherdata",
                               "model.safetensors")  # other data: other key, no entry
    (entry / "model.safetensors").write_bytes(b"tampered")
    assert not reference.fetch(target, "model.safetensors")
    assert "fails its SHA256SUMS check" in capsys.readouterr().err
    assert not target.exists()


def test_built_in_data_from_an_older_generator_is_regenerated(tmp_path, monkeypatch):
    """The default data directory is a cache of the generator: an older version's data
    (other answers) is rebuilt, the current version's is kept."""
    import bench.data.synthvqa as synthvqa

    calls = []
    monkeypatch.setattr(synthvqa, "DEFAULT_DATA", tmp_path / "synthvqa")
    monkeypatch.setattr(synthvqa, "make", lambda out, **kw: calls.append(kw))
    (tmp_path / "synthvqa").mkdir()
    manifest = tmp_path / "synthvqa" / "synthvqa.json"
    manifest.write_text(json.dumps({"version": synthvqa.VERSION}))
    synthvqa.ensure_data(None)
    assert calls == []
    manifest.write_text(json.dumps({"version": synthvqa.VERSION - 1}))
    synthvqa.ensure_data(None)
    assert calls == [{"seed": 0, "force": True}]


def test_built_in_data_started_twice_at_once_is_generated_once(tmp_path, monkeypatch, capsys):
    """Two commands started together in a fresh directory: one generates the data, the
    other waits for it and reads the finished directory (unlocked, each swapped in its own
    copy, and the first crashed on files the second had just replaced)."""
    import threading
    import time

    import bench.data.synthvqa as synthvqa

    calls = []

    def slow_make(out, **kw):
        calls.append(kw)
        time.sleep(1.5)  # the other caller waits past the half second before it says so
        out.mkdir()
        (out / "synthvqa.json").write_text(json.dumps({"version": synthvqa.VERSION}))

    monkeypatch.setattr(synthvqa, "DEFAULT_DATA", tmp_path / "data" / "synthvqa")
    monkeypatch.setattr(synthvqa, "make", slow_make)
    results = []
    threads = [threading.Thread(target=lambda: results.append(synthvqa.ensure_data(None)))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [{"seed": 0}]
    assert results == [tmp_path / "data" / "synthvqa"] * 2
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["synthvqa"]  # no lock left
    said = capsys.readouterr().out
    assert "waiting for another command generating the built-in dataset (held by pid" in said


def test_built_in_data_where_it_cannot_be_written_is_one_clear_error(tmp_path, monkeypatch):
    import bench.data.synthvqa as synthvqa
    from bench.errors import UserError

    (tmp_path / "data").write_text("a file where the data directory's parent should be")
    monkeypatch.setattr(synthvqa, "DEFAULT_DATA", tmp_path / "data" / "synthvqa")
    with pytest.raises(UserError, match="cannot build .*synthvqa .*writable directory"):
        synthvqa.ensure_data(None)
