"""Endpoints over real HTTP: models, explain (JSON and PNG), parity with the pyfunc, errors."""

from __future__ import annotations

import io
import json
import logging

import mlflow
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tests.api.conftest import metric

ROWS = [
    {"f0": 0.5, "f1": -1.2, "f2": 0.3, "f3": 1.1, "f4": -0.4},
    {"f0": -0.7, "f1": 0.2, "f2": -1.5, "f3": 0.0, "f4": 2.0},
]
SECRET = 987654.125  # a payload value that must never come back in an error


def _explain(api, name, instances, **params):
    body = {"instances": instances, "parameters": params} if params else {"instances": instances}
    return api.post(f"/v1/models/{name}:explain", json=body)


def test_health_ready_metrics(api):
    assert api.get("/healthz").json() == {"status": "ok"}
    ready = api.get("/readyz").json()
    assert ready["status"] == "ready" and ready["models"] == ["tiny-bert", "tiny-mlp", "tiny-xgb"]
    api.get("/healthz")
    assert metric(api, "eaas_requests_total", route="/healthz", status="200") >= 2
    assert "eaas_queue_instances" in api.get("/metrics").text


def test_models_list_and_detail(api):
    models = {m["name"]: m for m in api.get("/v1/models").json()["models"]}
    assert set(models) == {"tiny-xgb", "tiny-mlp", "tiny-bert"}
    assert models["tiny-xgb"]["kind"] == "tabular" and models["tiny-xgb"]["method"] == "tree"
    assert models["tiny-xgb"]["inputs"] == ["f0", "f1", "f2", "f3", "f4"]
    assert models["tiny-xgb"]["aliases"] == {"champion": "1"}
    assert models["tiny-bert"]["kind"] == "text" and models["tiny-bert"]["inputs"] == ["text"]
    detail = api.get("/v1/models/tiny-mlp").json()
    assert detail["explainer"]["name"] == "tiny-mlp-explainer"
    assert detail["explainer"]["params"] == {"max_evals": 64, "seed": 0, "tolerance": 0.05}
    assert detail["output_space"] == "probability"
    missing = api.get("/v1/models/unknown")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("name", ["tiny-xgb", "tiny-mlp"])
def test_tabular_explain_equals_the_pyfunc(api, built, name):
    res = _explain(api, name, ROWS, seed=5)
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["model"] == {"name": name, "version": "1"}
    assert body["explainer"]["name"] == f"{name}-explainer"
    expected = mlflow.pyfunc.load_model(built[name]).predict(pd.DataFrame(ROWS), {"seed": 5})
    for exp, (_, row) in zip(body["explanations"], expected.iterrows(), strict=True):
        assert exp["values"] == row["values"] and exp["base_values"] == row["base_values"]
        assert exp["features"] == row["features"] and exp["data"] == row["data"]
        gap = np.abs(np.array(exp["base_values"]) + np.sum(exp["values"], 1) - exp["prediction"])
        assert exp["additivity_error"] == pytest.approx(gap.max(), abs=1e-12)
    assert body["predictions"] == [e["prediction"] for e in body["explanations"]]


def test_text_explain_equals_the_pyfunc(api, built):
    texts = ["the plot was really great", "dull"]
    body = _explain(api, "tiny-bert", texts).json()
    expected = mlflow.pyfunc.load_model(built["tiny-bert"]).predict(pd.DataFrame({"text": texts}))
    assert [e["values"] for e in body["explanations"]] == expected["values"].tolist()
    assert body["explanations"][0]["features"] == ["the", "plot", "was", "really", "great"]
    assert max(e["additivity_error"] for e in body["explanations"]) < 1e-6


def test_name_forms_alias_version_and_encoded_slash(api):
    by_alias = _explain(api, "tiny-xgb@champion", ROWS[:1]).json()
    by_version = _explain(api, "tiny-xgb/1", ROWS[:1]).json()
    encoded = api.post("/v1/models/tiny-xgb%2F1:explain", json={"instances": ROWS[:1]}).json()
    same = [[{k: v for k, v in e.items() if k != "id"} for e in r["explanations"]]
            for r in (by_alias, by_version, encoded)]  # fmt: skip
    assert same[0] == same[1] == same[2]  # ids aside: each explanation is stored on its own
    for bad in ("tiny-xgb/7", "tiny-xgb@nope", "other"):
        res = _explain(api, bad, ROWS[:1])
        assert res.status_code == 404 and "not" in res.json()["error"]["message"], bad


def test_top_k_truncates_and_keeps_additivity_checkable(api):
    exp = _explain(api, "tiny-xgb", ROWS[:1], top_k=2).json()["explanations"][0]
    full = _explain(api, "tiny-xgb", ROWS[:1]).json()["explanations"][0]
    assert exp["dropped"] == 3 and len(exp["features"]) == 2 and len(exp["values"][0]) == 2
    top = sorted(np.abs(full["values"][1]))[-2:]
    assert sorted(np.abs(exp["values"][1])) == pytest.approx(top)
    total = np.array(exp["base_values"]) + np.sum(exp["values"], 1) + np.array(exp["rest"])
    assert np.abs(total - exp["prediction"]).max() < 1e-5
    # a sampled method's errors keep the same features as its values
    # 29 evaluations: two orders of 5 features, sampled (2^5 - 2 = 30 would be exact)
    mlp = _explain(api, "tiny-mlp", ROWS[:1], top_k=2, seed=3, max_evals=29).json()
    mlp = mlp["explanations"][0]
    whole = _explain(api, "tiny-mlp", ROWS[:1], seed=3, max_evals=29).json()["explanations"][0]
    keep = [whole["features"].index(f) for f in mlp["features"]]
    assert mlp["approximation_error"] == [[row[j] for j in keep]
                                          for row in whole["approximation_error"]]
    assert np.min(mlp["approximation_error"]) > 0


def test_png_by_query_and_by_accept_header(api):
    for res in (
        api.post("/v1/models/tiny-mlp:explain?format=png", json={"instances": ROWS[:1]}),
        api.post(
            "/v1/models/tiny-bert:explain",
            json={"instances": ["great film"]},
            headers={"Accept": "image/png"},
        ),
    ):
        assert res.status_code == 200 and res.headers["content-type"] == "image/png"
        img = Image.open(io.BytesIO(res.content))
        assert img.format == "PNG" and img.size[0] >= 400 and img.size[1] >= 150
    two = api.post("/v1/models/tiny-mlp:explain?format=png", json={"instances": ROWS})
    assert two.status_code == 400 and "exactly one" in two.json()["error"]["message"]


BAD = [
    ("tiny-mlp", b'{"instances": [', 400, "malformed JSON"),
    ("tiny-mlp", {"instances": []}, 422, "instances: must not be empty"),
    ("tiny-mlp", {"rows": []}, 422, "instances"),
    ("tiny-mlp", {"instances": [{**ROWS[0], "f9": SECRET}]}, 422, "instances[0].f9: unexpected"),
    ("tiny-mlp", {"instances": [ROWS[0], {"f0": SECRET}]}, 422, "instances[1].f1: missing"),
    ("tiny-mlp", {"instances": [{**ROWS[0], "f2": "high"}]}, 422, "instances[0].f2: not a number"),
    ("tiny-mlp", {"instances": [{**ROWS[0], "f2": True}]}, 422, "instances[0].f2: not a number"),
    ("tiny-mlp", {"instances": [{**ROWS[0], "f3": None}]}, 422, "instances[0].f3: missing value"),
    (
        "tiny-mlp",
        b'{"instances": [{"f0": NaN, "f1": 0, "f2": 0, "f3": 0, "f4": 0}]}',
        422,
        "instances[0].f0: missing value",
    ),
    (
        "tiny-mlp",
        b'{"instances": [{"f0": Infinity, "f1": 0, "f2": 0, "f3": 0, "f4": 0}]}',
        422,
        "instances[0].f0: infinite",
    ),
    ("tiny-mlp", {"instances": ["some text"]}, 422, "instances[0]: expected an object"),
    ("tiny-bert", {"instances": [{"text": "x"}]}, 422, "instances[0].text: not a string"),
    ("tiny-mlp", {"instances": ROWS, "parameters": {"alpha": 1}}, 422, "parameters.alpha"),
    ("tiny-mlp", {"instances": ROWS, "parameters": {"max_evals": 0}}, 422, "max_evals"),
    ("tiny-mlp", {"instances": ROWS, "parameters": {"max_evals": 10**9}}, 422, "at most"),
    ("tiny-mlp", {"instances": ROWS, "parameters": {"max_evals": 3}}, 422, "at least 11"),
    ("tiny-mlp", {"instances": [ROWS[0]] * 257}, 413, "more than 256"),
    ("tiny-bert", {"instances": ["word " * 1001]}, 413, "longer than 5000"),
    ("tiny-mlp", b'{"instances": ["' + b"x" * (1 << 20) + b'"]}', 413, "larger than"),
]


@pytest.mark.parametrize("name, body, status, reason", BAD)
def test_bad_requests_get_a_clear_error_without_echo(api, name, body, status, reason):
    kw = {"content": body} if isinstance(body, bytes) else {"json": body}
    res = api.post(f"/v1/models/{name}:explain", **kw)
    assert res.status_code == status, res.text
    err = res.json()["error"]
    assert set(res.json()) == {"error"} and set(err) == {"code", "message"}
    assert reason in err["message"], err
    assert str(SECRET) not in res.text and "Traceback" not in res.text and "high" not in res.text


def test_xgboost_takes_null_as_missing(api):
    res = _explain(api, "tiny-xgb", [{**ROWS[0], "f3": None}])
    assert res.status_code == 200 and res.json()["explanations"][0]["data"][3] is None


def test_one_log_line_per_request_without_payload(api, caplog):
    caplog.set_level(logging.INFO, logger="eaas.api")
    res = _explain(api, "tiny-xgb", [{**ROWS[0], "f0": SECRET}], top_k=1)
    rid = res.headers["x-request-id"]
    lines = [
        json.loads(r.getMessage())
        for r in caplog.records
        if r.name == "eaas.api" and rid in r.getMessage()
    ]
    assert len(lines) == 1
    line = lines[0]
    assert line["model"] == "tiny-xgb" and line["version"] == "1" and line["status"] == 200
    assert line["batch_size"] == 1 and line["latency_ms"] > 0
    assert str(SECRET) not in caplog.text


def test_openapi_documents_the_api(api):
    spec = api.get("/openapi.json").json()
    path = spec["paths"]["/v1/models/{name}:explain"]["post"]
    assert "examples" in json.dumps(path["requestBody"])
    assert {"200", "404", "413", "422", "503", "504"} <= set(path["responses"])
    assert {"/healthz", "/readyz", "/metrics", "/v1/models"} <= set(spec["paths"])
    assert api.get("/docs").status_code == 200
