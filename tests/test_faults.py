"""Crash safety: a sweep killed with SIGKILL mid-point and rerun loses nothing, duplicates
nothing, and its result files are valid at every moment."""

import pytest
import yaml

from tests.faults import kill_when, read_rows, run, spawn

# jar-base points profile on the meta device only: ~1 s each, no weights, no timing
SWEEP = {"name": "killme", "preset": "jar-base", "profile": {"measure": "never"},
         "grid": {"strategy": ["concat"], "depth": [1, 2, 3, 4]}}


@pytest.mark.slow
def test_sweep_killed_mid_point_then_rerun(tmp_path):
    spec = tmp_path / "sweep.yaml"
    spec.write_text(yaml.safe_dump(SWEEP))
    out = tmp_path / "out"
    args = ["sweep", str(spec), "--out", str(out), "--quiet"]
    seen: list[int] = []

    def two_points_done() -> bool:
        rows = read_rows(out)  # validates both files on every poll
        seen.append(len(rows or []))
        return rows is not None and len(rows) >= 2

    kill_when(spawn(args, tmp_path, tmp_path / "first.log"), two_points_done)
    before = read_rows(out)
    assert 2 <= len(before) < 4 and seen == sorted(seen)

    text = run(args, tmp_path, tmp_path / "second.log")
    assert f"4 points, {len(before)} already done" in text
    after = read_rows(out)
    ids = [r["point_id"] for r in after]
    assert len(after) == 4 and len(set(ids)) == 4
    assert sorted(r["cfg.depth"] for r in after) == [1, 2, 3, 4]
    for row in before:  # finished points are kept as they were, not re-run
        assert row in after
