"""Explanation jobs on `eaas serve --ray`: two replicas (one per node of a real local two-node
cluster) share one job through the PostgreSQL store, chunk by chunk; /metrics adds up both
replicas' figures; a replica SIGKILLed mid-job loses nothing and doubles nothing (its chunk in
flight is taken over once its lease runs out). Skipped where Ray or PostgreSQL is missing."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from tests.api.conftest import serve_process
from tests.api.ray_cluster import RAY_ENV, replica_pids, two_nodes
from tests.api.test_audit import rows
from tests.api.test_audit_pg import running_postgres
from tests.api.test_jobs import SLOW, same
from tests.api.test_jobs_kept import each_once

pytest.importorskip("ray.serve")


@pytest.fixture(scope="module")
def store_url() -> Iterator[str]:
    with running_postgres() as server:
        yield server.url


@pytest.fixture(scope="module")
def two_replicas(built, slow_mlp, store_url) -> Iterator[httpx.Client]:
    """`eaas serve --ray --replicas 2`: 1 CPU each on two 1-CPU nodes, so one on each node."""
    env = {**RAY_ENV, "EAAS_STORE_URL": store_url, "EAAS_JOB_LEASE_S": "2",
           "EAAS_JOB_POLL_S": "0.3", "EAAS_RAY_REPLICA_CPUS": "1"}  # fmt: skip
    with two_nodes() as address, serve_process(
        env, "--ray", "--address", address, "--replicas", "2", "--models", slow_mlp
    ) as client:  # fmt: skip
        deadline = time.monotonic() + 120
        while metric(client, "eaas_workers") != 2:  # both replicas up and reporting
            assert time.monotonic() < deadline, "the second replica did not start"
            time.sleep(0.5)
        yield client


def metric(client: httpx.Client, name: str, **labels: str) -> float | None:
    res = client.get("/metrics")
    if res.status_code != 200:
        return None
    for family in text_string_to_metric_families(res.text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return None


def submit(client: httpx.Client, inst: list, seed: int) -> str:
    res = client.post("/v1/models/jobs-mlp/jobs",
                      json={"instances": inst, "parameters": {**SLOW, "seed": seed}})  # fmt: skip
    assert res.status_code == 202, res.text
    return str(res.json()["id"])


def get(client: httpx.Client, path: str) -> httpx.Response | None:
    """A GET through the proxy: only a 200, or a 503 with Retry-After while a replica is
    replaced (None then)."""
    res = client.get(path)
    assert res.status_code in (200, 503), (res.status_code, res.text[:300])
    if res.status_code == 503:
        assert "retry-after" in res.headers
        return None
    return res


def wait_done(client: httpx.Client, job_id: str, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while (res := get(client, f"/v1/jobs/{job_id}")) is None or res.json()["status"] != "done":
        if res is not None:
            assert res.json()["status"] in ("queued", "running"), res.json()["error"]
        assert time.monotonic() < deadline, "the job did not end"
        time.sleep(0.2)


def claims(store_url: str, job_id: str) -> list[tuple[int, int, int, bool]]:
    """The job's chunks: (first index, last index, owner's pid, committed)."""
    engine = sa.create_engine(store_url)
    with engine.connect() as conn:
        rows_ = conn.execute(sa.text(
            "SELECT first_idx, last_idx, owner, committed_ms FROM eaas_job_claims "
            "WHERE job_id = :j ORDER BY first_idx"), {"j": job_id}).fetchall()  # fmt: skip
    engine.dispose()
    return [(r[0], r[1], int(r[2].split(":")[1]), r[3] is not None) for r in rows_]


def tiles(chunks: list[tuple[int, int, int, bool]], n: int) -> bool:
    """Committed chunks cover 0..n-1 exactly once, in order, with no gap or overlap."""
    covered = [i for first, last, _, done in chunks if done for i in range(first, last + 1)]
    return covered == list(range(n))


def results(client: httpx.Client, job_id: str) -> list[dict]:
    res = get(client, f"/v1/jobs/{job_id}/results")
    assert res is not None
    return [json.loads(x) for x in res.text.splitlines()]


def test_both_replicas_work_on_one_job_and_metrics_add_up(two_replicas, store_url):
    inst = rows(80, 1.5)
    job_id = submit(two_replicas, inst, seed=4)
    wait_done(two_replicas, job_id)
    chunks = claims(store_url, job_id)
    assert tiles(chunks, 80)
    assert len({pid for *_, pid, _ in chunks}) == 2  # both replicas explained some of it
    each_once(store_url, job_id, inst, results(two_replicas, job_id))
    time.sleep(1.5)  # past one push interval: the other replica's figures have arrived
    for _ in range(4):  # whichever replica answers, the same sums
        assert metric(two_replicas, "eaas_job_instances_total", result="done") == 80
        assert metric(two_replicas, "eaas_workers") == 2


def test_a_replica_killed_mid_job_loses_and_doubles_nothing(two_replicas, store_url):
    inst = rows(240, 2.5)
    job_id = submit(two_replicas, inst, seed=9)
    deadline = time.monotonic() + 60
    while True:  # both replicas have committed chunks, and one holds a chunk in flight now
        chunks = claims(store_url, job_id)
        busy = [pid for _, _, pid, done in chunks if not done]
        if len({pid for *_, pid, done in chunks if done}) == 2 and busy:
            break
        assert time.monotonic() < deadline, chunks
        time.sleep(0.05)
    victim = busy[0]
    assert victim in replica_pids()
    os.kill(victim, signal.SIGKILL)
    lost = [(first, last) for first, last, pid, done in claims(store_url, job_id)
            if pid == victim and not done]  # fmt: skip
    wait_done(two_replicas, job_id)
    chunks = claims(store_url, job_id)
    assert tiles(chunks, 240)
    by_first = {first: (pid, done) for first, _, pid, done in chunks}
    for first, _ in lost:  # the dead replica's chunk in flight: taken over, committed once
        assert by_first[first][0] != victim and by_first[first][1]
    lines = results(two_replicas, job_id)
    each_once(store_url, job_id, inst, lines)
    sync = two_replicas.post("/v1/models/jobs-mlp:explain",
                             json={"instances": inst[:3], "parameters": {**SLOW, "seed": 9}})
    assert sync.status_code == 200, sync.text
    for line, exp in zip(lines, sync.json()["explanations"], strict=False):
        same(line, exp)  # the same numbers as a synchronous request
