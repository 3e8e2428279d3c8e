"""Status discipline over real HTTP: 400 not JSON, 422 not a valid request (field named),
413 too large, 404 unknown model; never a 500 for what a client sends, never an echoed value."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROW = {"f0": 0.5, "f1": -1.2, "f2": 0.3, "f3": 1.1, "f4": -0.4}
SECRET = "s3cr3t-value"


def _raw(api, path: str, body: bytes) -> tuple[int, dict]:
    """A raw POST on its own connection: a dropped connection fails the test here."""
    conn = http.client.HTTPConnection(api.base_url.host, api.base_url.port, timeout=60)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        res = conn.getresponse()
        return res.status, json.loads(res.read())
    finally:
        conn.close()


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 200_000 + b"]" * 200_000,
        b'{"instances": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"instances": [' + b'{"a":' * 50_000 + b"1" + b"}" * 50_000 + b"]}",
    ],
    ids=["list", "instances", "objects"],
)
def test_pathologically_nested_json_is_400_not_a_dropped_connection(api, body):
    status, payload = _raw(api, "/v1/models/tiny-mlp:explain", body)
    assert status == 400 and payload["error"]["message"] == "body: JSON nested too deeply"
    assert api.get("/healthz").status_code == 200


SEED = "parameters.seed: must be between 0 and 4294967295"
CASES = [
    (b"not json at all " + SECRET.encode(), 400, "body: malformed JSON"),
    (b"\xff\xfe\x00", 400, "body: malformed JSON"),
    (b'"just a string"', 422, "body: expected an object with 'instances'"),
    (b"[1, 2]", 422, "body: expected an object with 'instances'"),
    (b'{"instances": "' + SECRET.encode() + b'"}', 422, "instances: expected a list"),
    (b'{"parameters": {}}', 422, "instances: missing field"),
    (b'{"instances": [{}], "parameters": [1]}', 422, "parameters: expected an object"),
    (b'{"instances": [], "extra": 1}', 422, "extra: unexpected field"),
]


@pytest.mark.parametrize("body, status, message", CASES)
def test_bodies_that_are_not_requests(api, body, status, message):
    status_got, payload = _raw(api, "/v1/models/tiny-mlp:explain", body)
    assert (status_got, set(payload)) == (status, {"error"})
    assert payload["error"]["message"].startswith(message)
    assert SECRET not in str(payload)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"seed": -1}, SEED),
        ({"seed": 2**32}, SEED),
        ({"seed": 10**30}, SEED),
        ({"seed": "1"}, "parameters.seed: must be an integer"),
        ({"seed": 1.5}, "parameters.seed: must be an integer"),
        ({"seed": True}, "parameters.seed: must be an integer"),
        ({"max_evals": [1]}, "parameters.max_evals: must be an integer"),
        ({"top_k": 0}, "parameters.top_k: must be an integer, at least 1"),
        ({"long_text": "x"}, "parameters.long_text: must be one of truncate, window"),
        ({SECRET: 1}, f"parameters.{SECRET}: unknown parameter"),
    ],
)
def test_bad_parameters_are_422_naming_the_parameter(api, params, message):
    for name in ("tiny-mlp", "tiny-bert"):
        inst = ROW if name == "tiny-mlp" else "good film"
        res = api.post(f"/v1/models/{name}:explain", json={"instances": [inst],
                                                            "parameters": params})
        assert res.status_code == 422, res.text
        assert res.json()["error"]["message"] == message


def test_seed_at_the_edges_of_numpys_range_is_served(api):
    for seed in (0, 2**32 - 1):
        body = {"instances": [ROW], "parameters": {"seed": seed, "max_evals": 11}}
        assert api.post("/v1/models/tiny-mlp:explain", json=body).status_code == 200


def test_unknown_format_is_400_naming_format(api):
    res = api.post("/v1/models/tiny-xgb:explain?format=" + SECRET, json={"instances": [ROW]})
    assert res.status_code == 400
    assert res.json()["error"]["message"] == "format: must be json or png"
    ok = api.post("/v1/models/tiny-xgb:explain?format=json", json={"instances": [ROW]})
    assert ok.status_code == 200 and ok.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    "name, status",
    [("nope", 404), ("tiny-xgb/99", 404), ("tiny-xgb@nope", 404), ("tiny-lgbm", 404),
     ("..%2F..%2Fetc", 400), ("tiny-xgb@", 400), ("%00", 400), ("a" * 300, 404)],
)
def test_model_names(api, name, status):
    res = api.post(f"/v1/models/{name}:explain", json={"instances": [ROW]})
    assert res.status_code == status, res.text
    assert len(res.json()["error"]["message"]) <= 200


def test_cli_build_with_a_seed_out_of_range_is_one_line_and_exit_2(registry, tmp_path):
    eaas = str(Path(sys.executable).with_name("eaas"))
    res = subprocess.run(
        [eaas, "explainer", "build", "--model", "models:/tiny-mlp/1", "--seed", "-1"],
        env={**os.environ, "EAAS_HOME": str(tmp_path)}, capture_output=True, text=True,
        timeout=120,
    )
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [f"error: {SEED}"]
