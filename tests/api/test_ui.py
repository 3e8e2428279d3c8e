"""The review page on a real uvicorn: listing, artifact streaming, path rules, auth, browser."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.api.conftest import live_server
from tests.reports.browser import assert_rendered, browser, screenshot_dir
from tests.reports.helpers import tabular_explanations

KEY = "ui-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
CHART = "/ui/artifacts/tiny-xgb/1/charts/global_importance_1.png"
REPORT = "/ui/artifacts/tiny-xgb/1/report/report.html"


@pytest.fixture(scope="module")
def served(built, tmp_path_factory) -> Iterator[tuple[httpx.Client, object]]:
    from eaas.reports import build_report

    tmp = tmp_path_factory.mktemp("ui")
    parquet = tabular_explanations(built["tiny-xgb"], tmp / "explanations")
    report = build_report(model="tiny-xgb/1", explanations=parquet, output=tmp / "report")
    models = ["tiny-xgb@champion", "tiny-bert@champion"]
    with live_server(models=models, api_keys=[KEY]) as client:
        yield client, report


def test_page_lists_models_versions_charts_and_report(served):
    client, _ = served
    res = client.get("/ui", headers=AUTH)
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/html")
    page = res.text
    assert '<section id="tiny-xgb">' in page and '<section id="tiny-bert">' in page
    assert 'version 1 <span class="alias">@champion</span>' in page
    assert f'src="{CHART}"' in page and f'href="{REPORT}"' in page
    assert "/ui/artifacts/tiny-bert/1/charts/global_importance_positive.png" in page


def test_artifacts_stream_from_mlflow(served):
    client, report = served
    chart = client.get(CHART, headers=AUTH)
    assert chart.status_code == 200 and chart.headers["content-type"] == "image/png"
    assert chart.content.startswith(b"\x89PNG")
    html = client.get(REPORT, headers=AUTH)
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert html.content == report.report_path.read_bytes()
    assert "default-src 'none'" in html.headers["content-security-policy"]
    imp = client.get(REPORT.replace("report.html", "global_importance.json"), headers=AUTH)
    assert json.loads(imp.content) == report.importances


@pytest.mark.parametrize(
    "path",
    [
        "/ui/artifacts/tiny-xgb/1/charts/..%2F..%2Fmlflow.db",
        "/ui/artifacts/tiny-xgb/1/charts/..",
        "/ui/artifacts/tiny-xgb/1/charts/MLmodel",
        "/ui/artifacts/tiny-xgb/1/charts/nope.png",
        "/ui/artifacts/tiny-xgb/1/report/MLmodel",
        "/ui/artifacts/tiny-xgb/1/report/..%2Fexplainer%2FMLmodel",
        "/ui/artifacts/tiny-xgb/1/runs/report.html",
        "/ui/artifacts/tiny-xgb/abc/charts/global_importance_1.png",
        "/ui/artifacts/tiny-xgb/99/charts/global_importance_1.png",
        "/ui/artifacts/tiny-bert/1/report/report.html" + "x",
        "/ui/artifacts/tiny-mlp/1/charts/global_importance_yes.png",  # not served here
    ],
)
def test_artifacts_only_resolve_served_registry_names(served, path):
    client, _ = served
    assert client.get(path, headers=AUTH).status_code == 404


def test_same_auth_as_v1(served):
    client, _ = served
    for path in ("/ui", CHART, REPORT):
        res = client.get(path)
        assert res.status_code == 401 and res.json()["error"]["code"] == "unauthorized"
    assert client.get("/ui", headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_page_and_report_render_in_a_browser(served, tmp_path):
    client, _ = served
    base = str(client.base_url).rstrip("/")
    shots = screenshot_dir(tmp_path)
    with browser() as chrome:
        page = chrome.open(f"{base}/ui", shots / "ui.png", headers=AUTH)
        report = chrome.open(f"{base}{REPORT}", shots / "ui-report.png", headers=AUTH)
    assert_rendered(page, "eaas · model review", min_images=6)  # 2 models x (global + examples)
    assert "tiny-xgb" in page.text and "Latest report" in page.text
    assert_rendered(report, "SHAP report · tiny-xgb v1", min_images=5)
