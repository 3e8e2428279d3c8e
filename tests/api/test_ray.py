"""`eaas serve --ray` on a real local Ray cluster: a head node and a second (worker) node on
127.0.0.1, each with its own CPU count and a custom resource so the replica is placed on the
worker node; driven over HTTP against the single-process service's numbers; a replica killed
mid-run recovers. Skipped where Ray is not installed (`pip install 'eaas[ray]'`; CI installs it)."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from tests import fixtures as fx
from tests.api.conftest import free_port, live_server
from tests.api.ray_cluster import BIN, env, ray_cli, replica_pids, two_nodes
from tests.api.test_audit import rows

pytest.importorskip("ray.serve")
MODELS = ["tiny-xgb@champion", "tiny-mlp@champion", "tiny-bert@champion"]
LOAN = ["loan-pipeline", "loan-pyfunc"]  # a sklearn pipeline on strings, a custom pyfunc
LOAN_ROWS = [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()}
             for r in fx.loan_data(400)[0].iloc[[50, 51]].astype(object).to_dict("records")]
LOAN_ROWS[0]["purpose"] = "wedding"  # unseen: coded with the request's own vocabulary


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    with two_nodes() as address:
        yield address


@pytest.fixture(scope="module")
def on_ray(built, slow_mlp, loan_built, cluster) -> Iterator[httpx.Client]:
    """`eaas serve --ray --address` with the replica pinned to the worker node's resource."""
    port = free_port()
    log = tempfile.TemporaryFile()
    extra = {"EAAS_RAY_REPLICA_RESOURCES": '{"explain": 1}', "EAAS_NUM_THREADS": "1",
             "EAAS_RAY_FANOUT": "1"}  # one batch worker per text explainer: the head's CPU
    proc = subprocess.Popen(
        [str(BIN / "eaas"), "serve", "--ray", "--address", cluster, "--port", str(port),
         "--models", ",".join([*MODELS, *LOAN, slow_mlp])],
        env={**env(), **extra}, stdout=subprocess.DEVNULL, stderr=log,
    )  # fmt: skip
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
    try:
        deadline = time.monotonic() + 120
        while not ready(client):
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                why = readyz_text(client)
                raise RuntimeError(f"eaas serve --ray not ready ({why}): {log.read()[-2000:]!r}")
            time.sleep(0.5)
        yield client
    finally:
        client.close()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def readyz_text(client: httpx.Client) -> str:
    try:
        return client.get("/readyz").text[:500]
    except httpx.TransportError as exc:
        return type(exc).__name__


def ready(client: httpx.Client) -> bool:
    try:
        return client.get("/readyz").status_code == 200
    except httpx.TransportError:
        return False


CASES = {
    "tiny-xgb": rows(3),
    "tiny-mlp": rows(2, 0.7),
    "tiny-bert": ["good movie", "a dull and bad film"],
    "loan-pipeline": LOAN_ROWS,
    "loan-pyfunc": LOAN_ROWS,
}


LONG = "the plot was dull and boring but the acting was good and the music great too"


def test_one_heavy_explanation_spread_over_the_cluster_gives_the_same_numbers(on_ray):
    """Sampled over 16 words at 600 evaluations: 10 forward batches, half of them run by the
    batch worker on the head node; equal to the single-process service to the last bit."""
    body = {"instances": [LONG], "parameters": {"seed": 11, "max_evals": 600, "tolerance": 0}}
    got = on_ray.post("/v1/models/tiny-bert:explain", json=body).json()
    with live_server(models=MODELS, store=False) as local:
        want = local.post("/v1/models/tiny-bert:explain", json=body).json()
    a, b = got["explanations"][0], want["explanations"][0]
    assert len(a["features"]) == 16
    for k in ("values", "prediction", "base_values", "approximation_error"):
        np.testing.assert_allclose(a[k], b[k], rtol=0, atol=1e-12, err_msg=k)


def test_a_heavy_black_box_explanation_spread_gives_the_same_numbers(on_ray, slow_mlp):
    """Permutation at 20,000 evaluations over 20 background rows: 18 model calls of 819
    coalitions, about half run by the batch worker; equal to a local run to 1e-12."""
    body = {"instances": rows(2, 0.3), "parameters": {"seed": 2, "max_evals": 20000,
                                                       "tolerance": 0}}  # fmt: skip
    got = on_ray.post("/v1/models/jobs-mlp:explain", json=body).json()
    with live_server(models=[slow_mlp], store=False) as local:
        want = local.post("/v1/models/jobs-mlp:explain", json=body).json()
    assert got["explainer"]["method"] == "permutation"
    for a, b in zip(got["explanations"], want["explanations"], strict=True):
        for k in ("values", "prediction", "base_values", "approximation_error"):
            np.testing.assert_allclose(a[k], b[k], rtol=0, atol=1e-12, err_msg=k)


def test_a_heavy_custom_pyfunc_explanation_on_strings_spread_gives_the_same_numbers(on_ray):
    """A custom pyfunc over strings, a category and numbers (permutation, 20,000 evaluations
    over its 40 input-example rows): its coded model calls go out with the request's own
    vocabulary; equal to a local run to 1e-12."""
    body = {"instances": LOAN_ROWS, "parameters": {"seed": 6, "max_evals": 20000,
                                                    "tolerance": 0}}  # fmt: skip
    got = on_ray.post("/v1/models/loan-pyfunc:explain", json=body).json()
    with live_server(models=LOAN, store=False) as local:
        want = local.post("/v1/models/loan-pyfunc:explain", json=body).json()
    assert got["explainer"]["method"] == "permutation", got
    for a, b in zip(got["explanations"], want["explanations"], strict=True):
        assert a["features"] == b["features"] and len(a["features"]) == 7
        for k in ("values", "prediction", "base_values", "approximation_error"):
            np.testing.assert_allclose(a[k], b[k], rtol=0, atol=1e-12, err_msg=k)


def test_shares_deal_the_batches_in_turn():
    from eaas.api.ray_fanout import shares

    assert shares(5, 2) == [[0, 2, 4], [1, 3]] and shares(2, 5) == [[0], [1]]
    assert sorted(i for s in shares(7, 3) for i in s) == list(range(7))


def test_same_numbers_as_the_single_process_service(on_ray, tmp_path):
    got = {m: on_ray.post(f"/v1/models/{m}:explain",
                          json={"instances": x, "parameters": {"seed": 5}}).json()
           for m, x in CASES.items()}  # fmt: skip
    with live_server(models=[*MODELS, *LOAN], store=False) as local:
        for m, x in CASES.items():
            want = local.post(f"/v1/models/{m}:explain",
                              json={"instances": x, "parameters": {"seed": 5}}).json()  # fmt: skip
            assert got[m]["explainer"] == want["explainer"]
            for a, b in zip(got[m]["explanations"], want["explanations"], strict=True):
                assert a["features"] == b["features"]
                np.testing.assert_array_equal(a["values"], b["values"], err_msg=m)
                np.testing.assert_array_equal(a["prediction"], b["prediction"], err_msg=m)


def test_the_replica_runs_on_the_worker_node(on_ray, cluster):
    status = ray_cli("status", "--address", cluster)
    assert "1.0/1.0 explain" in status  # the replica holds the worker node's resource
    assert "0.0/1.0 head" in status
    assert "2.0/2.0 CPU" in status  # and the text explainer's batch worker the head's CPU


def test_keys_and_routes_are_the_same(on_ray):
    assert on_ray.get("/v1/models").status_code == 200
    assert on_ray.post("/v1/models/tiny-xgb:explain", json={"rows": []}).status_code == 422
    assert on_ray.get("/v1/jobs/" + "0" * 32).status_code == 404


def test_a_killed_replica_recovers_with_no_5xx_but_503(on_ray):
    pids = replica_pids()
    assert pids, "no replica process found"
    codes: list[int] = []
    deadline, killed, recovered = time.monotonic() + 180, False, 0
    while recovered < 3:
        assert time.monotonic() < deadline, f"no recovery: {codes[-10:]}"
        if not killed and len(codes) >= 3:
            os.kill(pids[0], signal.SIGKILL)
            killed = True
        res = on_ray.post("/v1/models/tiny-mlp:explain", json={"instances": rows(1, 0.1)})
        codes.append(res.status_code)
        assert res.status_code in (200, 503), (res.status_code, res.text[:300])
        if res.status_code == 503:
            assert "retry-after" in res.headers
        recovered = recovered + 1 if killed and res.status_code == 200 else 0
        time.sleep(0.2)
    assert killed and replica_pids() and replica_pids() != pids
