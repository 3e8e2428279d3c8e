"""Reports end to end: real explainers, real MLflow runs and registry tags."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from eaas.explain.errors import BadRequest, NotFound
from eaas.reports import build_report
from tests.reports.helpers import ERROR_REASON, TEXT_ERROR, mean_abs


def _artifacts(run_id: str) -> set[str]:
    return {a.path for a in MlflowClient().list_artifacts(run_id)}


def _close(got: dict, want: dict) -> None:
    assert set(got) == set(want)
    for output, feats in want.items():
        assert set(got[output]) == set(feats)
        for f, v in feats.items():
            assert got[output][f] == pytest.approx(v, rel=1e-9, abs=1e-12), (output, f)


def test_tabular_numbers_match_the_explanations(tab_report, tab_parquet):
    saved = json.loads((tab_report.output_dir / "global_importance.json").read_text())
    _close(saved, mean_abs(tab_parquet))
    _close(tab_report.importances, saved)
    assert set(saved) == {"0", "1"} and set(saved["1"]) == {f"f{i}" for i in range(5)}
    csv = (tab_report.output_dir / "global_importance.csv").read_text().splitlines()
    assert csv[0] == "output,feature,mean_abs_shap,rank" and len(csv) == 1 + 2 * 5


def test_tabular_report_is_logged_and_attached(tab_report):
    arts = _artifacts(tab_report.run_id)
    want = {"report.html", "global_importance.json", "global_importance.csv", "provenance.json"}
    want |= {"global_importance_1.png", "beeswarm_1.png", "predictions.png"}
    assert want <= arts
    client = MlflowClient()
    mv = client.get_model_version("tiny-xgb", "1")
    assert tab_report.report_uri.endswith("/report.html")
    assert f"run {tab_report.run_id}): {tab_report.report_uri}" in (mv.description or "")
    # other tests report on v1 too (newest wins): the tags name a v1 report run and its file
    newest = client.get_run(mv.tags["eaas.report_run_id"])
    assert newest.data.tags["eaas.model_version"] == "1"
    assert mv.tags["eaas.report_uri"] == f"{newest.info.artifact_uri}/report.html"
    run = MlflowClient().get_run(tab_report.run_id)
    assert run.data.tags["eaas.model"] == "tiny-xgb" and run.data.metrics["error_rows"] == 1


def test_error_rows_are_listed_in_provenance(tab_report):
    prov = json.loads((tab_report.output_dir / "provenance.json").read_text())
    assert prov["input"]["rows"] == 40 and prov["input"]["explained_rows"] == 39
    assert prov["input"]["errors"]["reasons"] == {ERROR_REASON: 1}
    assert prov["input"]["errors"]["rows"][0]["id"] == 3
    assert prov["explainer"]["method"] == "tree" and prov["explainer"]["library_versions"]["shap"]
    html = tab_report.report_path.read_text()
    assert ERROR_REASON in html and "Error rows (1)" in html
    assert "<script" not in html and "http://" not in html and "https://" not in html
    assert html.count("data:image/png;base64,") >= 5  # 2 bars, 2 beeswarms, histogram


def _word_mean_abs(path, min_count: int = 3) -> dict[str, dict[str, float]]:
    """Mean |value| per occurrence of each case-folded word seen >= min_count times, stop-words
    and punctuation left out: recomputed independently of reports.aggregate."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    df = pd.read_parquet(path)
    ok = df[df["status"] == "ok"]
    out: dict[str, dict[str, float]] = {}
    for o, name in enumerate(ok["output_names"].iloc[0]):
        acc: dict[str, list[float]] = {}
        for feats, vals in zip(ok["features"], ok["values"], strict=True):
            for f, v in zip(feats, np.stack(vals)[o], strict=True):
                acc.setdefault(f.lower(), []).append(abs(float(v)))
        out[name] = {w: float(np.mean(v)) for w, v in acc.items() if len(v) >= min_count
                     and w not in ENGLISH_STOP_WORDS and any(c.isalnum() for c in w)}
    return out


def test_text_report(text_report, text_parquet):
    saved = json.loads((text_report.output_dir / "global_importance.json").read_text())
    _close(saved, _word_mean_abs(text_parquet))
    assert set(saved) == {"negative", "positive"}  # the data keeps both outputs
    html = text_report.report_path.read_text()
    assert "Words that push each class" in html and 'class="t"' in html
    assert "pushes toward positive" in html and "pushes toward negative" in html
    assert TEXT_ERROR in html and "beeswarm" not in html.lower()
    arts = _artifacts(text_report.run_id)
    assert "tokens_positive.png" in arts and "tokens_negative.png" not in arts  # one output
    mv = MlflowClient().get_model_version("tiny-bert", "1")
    assert mv.tags["eaas.report_run_id"] == text_report.run_id


def test_rerun_from_data_replaces_tags_and_keeps_old_run(built, tmp_path):
    from tests import fixtures as fx

    client = MlflowClient()
    client.update_model_version("tiny-mlp", "1", description="Trained on f0..f4.")
    x, _ = fx.tabular_data(n=30, seed=9)
    x.to_csv(tmp_path / "rows.csv", index=False)
    first = build_report(model="tiny-mlp@champion", data=tmp_path / "rows.csv", sample=6)
    second = build_report(model="tiny-mlp/1", data=tmp_path / "rows.csv", sample=6)
    assert first.run_id != second.run_id
    mv = client.get_model_version("tiny-mlp", "1")
    assert mv.tags["eaas.report_run_id"] == second.run_id
    assert mv.tags["eaas.report_uri"] == second.report_uri
    assert mv.description.startswith("Trained on f0..f4.")
    assert first.report_uri in mv.description and second.report_uri in mv.description
    assert client.get_run(first.run_id).info.lifecycle_stage == "active"
    assert "report.html" in _artifacts(first.run_id)
    prov = json.loads((second.output_dir / "provenance.json").read_text())
    assert prov["input"]["mode"] == "data" and prov["input"]["explained_rows"] == 6


def test_compare_with_another_version(compare_report, tab_parquet):
    res, version = compare_report
    both = json.loads((res.output_dir / "compare_importance.json").read_text())
    # version 1 re-explained the same 39 rows: its numbers are those of its own batch output
    _close(both["other"], mean_abs(tab_parquet))
    _close(both["current"], res.importances)
    assert both["current"]["1"] != pytest.approx(both["other"]["1"])  # another model
    html = res.report_path.read_text()
    assert "Comparison with tiny-xgb v1" in html and "features whose rank moved most" in html
    assert (res.output_dir / "compare_1.png").stat().st_size > 0
    prov = json.loads((res.output_dir / "provenance.json").read_text())
    assert prov["compare"]["rows"] == 39 and prov["compare"]["label"] == "tiny-xgb v1"
    assert prov["model"]["version"] == version
    tags = MlflowClient().get_model_version("tiny-xgb", version).tags
    assert tags["eaas.report_run_id"] == res.run_id


def test_bad_input(built, tab_parquet, tmp_path):
    with pytest.raises(BadRequest, match="exactly one"):
        build_report(model="tiny-xgb/1")
    with pytest.raises(BadRequest, match="exactly one"):
        build_report(model="tiny-xgb/1", explanations=tab_parquet, data=tab_parquet)
    with pytest.raises(NotFound):
        build_report(model="no-such-model", explanations=tab_parquet)
    with pytest.raises(BadRequest, match="no such file"):
        build_report(model="tiny-xgb/1", explanations=tmp_path / "missing.parquet")
    from eaas.explain.errors import InvalidInput

    with pytest.raises(InvalidInput, match="outputs"):  # text explanations for a tabular model
        build_report(model="tiny-bert/1", explanations=tab_parquet)
