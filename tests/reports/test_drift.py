"""Attribution drift: a relationship changed on purpose is flagged, a dataset against itself is
not, two versions on the same rows, exit code 3 through the real CLI, and the review page."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from tests import fixtures as fx
from tests.reports.helpers import mean_abs


@pytest.fixture(scope="module")
def shifted(built, tmp_path_factory) -> tuple[Path, Path]:
    """Baseline data, and the same rows with f0 nearly constant and f4 six times as wide:
    for the linear fixture model f0 stops mattering and f4 leads."""
    tmp = tmp_path_factory.mktemp("drift-data")
    x, _ = fx.tabular_data(n=300, seed=11)
    base, cur = tmp / "baseline.parquet", tmp / "current.csv"
    x.to_parquet(base, index=False)
    moved = x.assign(f0=x["f0"] * 0.02, f4=x["f4"] * 6)
    moved.to_csv(cur, index=False)
    return base, cur


@pytest.fixture(scope="module")
def flagged(shifted, tmp_path_factory):
    from eaas.reports.drift import run_drift

    base, cur = shifted
    out = tmp_path_factory.mktemp("drift-flagged")
    return run_drift("tiny-logistic/1", cur, baseline=base, output=out, sample=300)


def test_a_changed_relationship_is_flagged(flagged):
    assert flagged.ndcg < 0.9
    for output in ("0", "1"):
        assert set(flagged.movers[output][:2]) == {"f0", "f4"}  # the moved ones lead
    assert {"f0", "f4"} <= set(flagged.significant)
    doc = json.loads((flagged.output_dir / "drift.json").read_text())
    rows = {r["feature"]: r for r in doc["tables"]["1"]}
    assert rows["f0"]["change"] < 0 < rows["f4"]["change"]
    assert rows["f4"]["rank_current"] == 1 and rows["f4"]["rank_change"] > 0
    assert doc["ndcg"] == pytest.approx(flagged.ndcg, abs=1e-12)


def test_report_is_logged_and_attached_to_the_version(flagged):
    client = MlflowClient()
    mv = client.get_model_version("tiny-logistic", "1")
    assert mv.tags["eaas.drift_run_id"] == flagged.run_id
    assert float(mv.tags["eaas.drift_ndcg"]) == pytest.approx(flagged.ndcg, abs=1e-4)
    assert f"run {flagged.run_id}): NDCG" in mv.description
    logged = {a.path for a in client.list_artifacts(flagged.run_id)}
    assert {"drift.html", "drift.json", "drift.csv", "drift_bars_1.png",
            "drift_movers_1.png"} <= logged  # fmt: skip
    html = flagged.report_path.read_text()
    assert html.count('src="data:image/png;base64,') == 4  # self-contained
    assert 'src="http' not in html and "<script" not in html


def test_same_dataset_against_itself(tab_parquet, text_parquet, tmp_path):
    from eaas.reports.drift import run_drift

    tab = run_drift("tiny-xgb/1", tab_parquet, baseline=tab_parquet, output=tmp_path / "t")
    assert tab.ndcg == 1.0 and tab.significant == []
    text = run_drift("tiny-bert/1", text_parquet, baseline=text_parquet, output=tmp_path / "x")
    assert text.ndcg == 1.0 and text.significant == []
    words = json.loads((text.output_dir / "drift.json").read_text())["tables"]["positive"]
    expected = mean_abs(text_parquet)["positive"]  # per word, recomputed independently
    assert {r["feature"] for r in words} == set(expected)
    for r in words:
        assert r["baseline"] == r["current"] == pytest.approx(expected[r["feature"]], abs=1e-9)


def test_two_versions_on_the_same_rows(compare_report, tab_parquet, tmp_path):
    """Champion (v1, batch output) against a challenger explaining the same rows now."""
    from eaas.reports.drift import run_drift

    res, version = compare_report
    challenger = mean_abs(res.output_dir.parent / "explanations")  # its own explanations
    champion = mean_abs(tab_parquet)
    got = run_drift("tiny-xgb/1", tab_parquet, baseline_model=f"tiny-xgb/{version}",
                    output=tmp_path / "d")  # fmt: skip
    doc = json.loads((got.output_dir / "drift.json").read_text())
    assert doc["provenance"]["baseline"]["model"] == f"tiny-xgb/{version}"
    for output, rows in doc["tables"].items():
        for r in rows:
            assert r["baseline"] == pytest.approx(challenger[output][r["feature"]], abs=1e-9)
            assert r["current"] == pytest.approx(champion[output][r["feature"]], abs=1e-9)
    assert 0 < got.ndcg <= 1


def test_cli_exit_code_3_below_the_threshold(shifted, tmp_path):
    base, cur = shifted
    env = {**os.environ, "PYTHONPATH": str(Path.cwd())}
    cmd = [sys.executable, "-m", "eaas.cli", "drift", "--model", "tiny-logistic@champion",
           "--baseline", str(base), "--current", str(cur), "--output", str(tmp_path / "r"),
           "--fail-below", "0.95", "--sample", "100"]  # fmt: skip
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 3, res.stderr
    assert "below --fail-below 0.95" in res.stderr
    assert res.stdout.strip().splitlines()[-1] == str(tmp_path / "r" / "drift.html")
    ndcg = float(res.stdout.split("ndcg=")[1].split()[0])
    assert ndcg < 0.95 and np.isfinite(ndcg)


def test_bad_arguments_are_clear(shifted, tmp_path):
    from eaas.explain.errors import BadRequest, InvalidInput
    from eaas.reports.drift import run_drift

    base, cur = shifted
    with pytest.raises(BadRequest, match="baseline"):
        run_drift("tiny-logistic/1", cur)
    pd.DataFrame({"g": [1.0, 2.0]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(InvalidInput, match="missing column 'f0'"):
        run_drift("tiny-logistic/1", tmp_path / "bad.csv", baseline=base)
    with pytest.raises(BadRequest, match="not the same kind"):
        run_drift("tiny-logistic/1", cur, baseline_model="tiny-bert/1")


def test_review_page_links_the_drift_report(flagged, tmp_path):
    from tests.api.conftest import live_server
    from tests.reports.browser import assert_rendered, browser, screenshot_dir

    with live_server(models=["tiny-logistic@champion"]) as client:
        page = client.get("/ui").text
        link = "/ui/artifacts/tiny-logistic/1/drift/drift.html"
        assert f'href="{link}"' in page and "Latest drift report" in page
        latest = MlflowClient().get_model_version("tiny-logistic", "1").tags["eaas.drift_run_id"]
        assert f"run {latest})" in page  # the newest drift run (the CLI test's, when it ran)
        got = client.get(link)
        assert got.status_code == 200 and latest in got.text
        assert got.text.startswith("<!DOCTYPE html>") and flagged.report_path.exists()
        assert "default-src 'none'" in got.headers["content-security-policy"]
        base = str(client.base_url).rstrip("/")
        with browser() as chrome:
            shot = chrome.open(f"{base}{link}", screenshot_dir(tmp_path) / "drift.png")
    assert_rendered(shot, "Attribution drift · tiny-logistic v1", min_images=4)
