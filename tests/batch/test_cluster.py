"""The same job on a real Spark standalone cluster (master + one worker) on loopback."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pyarrow.parquet as pq
import pyspark
import pytest

from eaas.explain.schema import COLUMNS
from tests.batch.conftest import tabular_rows
from tests.batch.test_cli import eaas, summary

SPARK_HOME = Path(pyspark.__file__).parent
HOST = "127.0.0.1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _spark_class(cls: str, args: list[str], log: Path, work: Path) -> subprocess.Popen:
    env = {**os.environ, "SPARK_HOME": str(SPARK_HOME), "SPARK_LOCAL_IP": HOST}
    env["SPARK_WORKER_DIR"] = str(work)
    with open(log, "w") as fh:
        return subprocess.Popen(
            [str(SPARK_HOME / "bin" / "spark-class"), cls, *args],
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # its own process group: teardown kills the JVM's children
        )


def _alive_workers(ui_port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{ui_port}/json/", timeout=2) as resp:
            return int(json.load(resp).get("aliveworkers", 0))
    except OSError:
        return 0


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """spark://127.0.0.1:PORT with one 1-core worker; both stopped (process group) at the end."""
    d = tmp_path_factory.mktemp("spark-cluster")
    port, ui, wui = _free_port(), _free_port(), _free_port()
    master = _spark_class(
        "org.apache.spark.deploy.master.Master",
        ["--host", HOST, "--port", str(port), "--webui-port", str(ui)],
        d / "master.log",
        d,
    )
    url = f"spark://{HOST}:{port}"
    worker = _spark_class(
        "org.apache.spark.deploy.worker.Worker",
        [url, "--host", HOST, "--cores", "1", "--memory", "1g", "--webui-port", str(wui),
         "--work-dir", str(d / "work")],
        d / "worker.log",
        d,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while _alive_workers(ui) < 1:
            if time.monotonic() > deadline or master.poll() is not None:
                logs = (d / "master.log").read_text()[-2000:] + (d / "worker.log").read_text()[
                    -2000:
                ]
                pytest.fail(f"standalone worker did not register in 90 s:\n{logs}")
            time.sleep(1)
        yield url
    finally:
        _stop(worker)
        _stop(master)


def test_cli_runs_the_job_on_a_standalone_cluster(cluster, built, tmp_path):
    """`eaas batch --master spark://...` on a CSV: exit 0, summary, progress, typed Parquet."""
    rows = tabular_rows(30, seed=5).astype({"f0": object})
    rows.loc[[4, 11], "f0"] = "n/a"  # not a number: those rows only are errors
    rows.to_csv(tmp_path / "day.csv", index=False)
    out = tmp_path / "explained"
    r = eaas(
        "batch", "--model", "tiny-xgb@champion", "--input", str(tmp_path / "day.csv"),
        "--output", str(out), "--id-cols", "id", "--master", cluster, "--partitions", "3",
        "--conf", "spark.ui.enabled=false",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    assert summary(r.stdout) == (30, 28, 2, f"file:{out}")
    assert "explaining with models:/tiny-xgb-explainer/1 (3 partitions)" in r.stderr
    assert re.search(r"stage \d+: \d+/3 tasks done", r.stderr)
    table = pq.read_table(out)
    assert table.column_names == ["id"] + COLUMNS + ["status", "error"]
    df = table.to_pandas().set_index("id").sort_index()
    assert list(df.index) == list(range(30))
    assert set(df.index[df["status"] == "error"]) == {4, 11}
    assert set(df.loc[[4, 11], "error"]) == {"f0: not a number"}
    ok = df[df["status"] == "ok"]
    assert all(len(v) == 2 and len(v[0]) == 5 for v in ok["values"])
    assert ok["additivity_error"].max() < 1e-4
