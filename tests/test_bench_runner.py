"""bench/run_all.py: verdicts per target id, and a missing module reported, never skipped."""

from __future__ import annotations

import json

from bench.common import row
from bench.run_all import Outcome, run_module, summarize, write


def test_missing_module_is_reported_not_skipped():
    o = run_module("bench_no_such_module", 10, quick=True)
    assert (o.status, o.rows) == ("missing", [])
    assert "bench/bench_no_such_module.py" in o.detail


def test_verdicts_per_target_and_json_record(tmp_path):
    p6 = row("P6", "job / loop", 1.9, "x", ">= 1.6", ">= 1.85", "rows equal")
    p1a = row("P1-xgb-d6", "tree", 0.3, "ratio", "<= 0.4", "<= 0.25")
    p1b = row("P1-lgbm", "tree", 0.5, "ratio", "<= 0.4", "<= 0.25")
    info = row("P6-job-s", "seconds", 12.0, "s")  # no goal: not judged
    outcomes = [
        Outcome("bench_batch", "ok", 100.0, 240, [p6.to_dict(), info.to_dict()]),
        Outcome("bench_tree", "ok", 50.0, 170, [p1a.to_dict(), p1b.to_dict()]),
        Outcome("bench_api", "failed", 3.0, 80, detail="exit 1: boom"),
    ]
    lines, verdicts = summarize(outcomes)
    assert verdicts["P6"]["verdict"] == "met" and verdicts["P6"]["moonshot"] is True
    assert verdicts["P1"]["verdict"] == "missed"  # one of its rows missed
    assert verdicts["P2"]["verdict"] == "no result (bench_tree: ok)"
    assert verdicts["P4"]["verdict"] == "no result (bench_api: failed)"
    assert any("bench_api" in ln and "exit 1: boom" in ln for ln in lines)
    path = write(tmp_path, {"started": "2026-01-02T03:04:05Z", "targets": verdicts})
    assert path.name == "20260102T030405Z.json"
    assert json.loads((tmp_path / "latest.json").read_text())["targets"] == verdicts
