"""`eaas batch` as a user runs it, in a fresh process (a full run: see test_cluster.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.batch.conftest import tabular_rows

EAAS = str(Path(sys.executable).with_name("eaas"))
SUMMARY = re.compile(
    r"^summary: rows_in=(\d+) rows_ok=(\d+) rows_error=(\d+) seconds=([\d.]+) "
    r"rows_per_s=([\d.]+) output=(\S+)$"
)


def eaas(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"}
    return subprocess.run([EAAS, *args], capture_output=True, text=True, timeout=timeout, env=env)


def summary(stdout: str) -> tuple[int, int, int, str]:
    m = SUMMARY.match(stdout.strip().splitlines()[-1])
    assert m, stdout
    assert float(m[4]) > 0 and float(m[5]) > 0
    return int(m[1]), int(m[2]), int(m[3]), m[6]


def test_cli_unknown_model_is_a_one_line_error(registry, tmp_path):
    tabular_rows(3).to_parquet(tmp_path / "in.parquet")
    r = eaas("batch", "--model", "no-such-model", "--input", str(tmp_path / "in.parquet"),
             "--output", str(tmp_path / "out"))  # fmt: skip
    assert r.returncode == 2
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error")]
    assert errors == ["error: model 'no-such-model' is not registered"]
    assert "Traceback" not in r.stderr and r.stdout == ""
    assert not (tmp_path / "out").exists()


def test_spark_submit_runs_the_same_command(built, tmp_path):
    """spark-submit takes batch/command.py as its application file (the options declared once):
    the same summary line, one row per input row."""
    import pandas as pd

    import eaas.batch.command as command

    tabular_rows(30).to_parquet(tmp_path / "in.parquet")
    submit = str(Path(sys.executable).with_name("spark-submit"))
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable,
           "PYSPARK_DRIVER_PYTHON": sys.executable}
    r = subprocess.run(
        [submit, "--master", "local[1]", command.__file__, "--model", "tiny-xgb@champion",
         "--input", str(tmp_path / "in.parquet"), "--output", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    rows_in, rows_ok, rows_error, _ = summary(r.stdout)
    assert (rows_in, rows_ok, rows_error) == (30, 30, 0)
    out = pd.read_parquet(tmp_path / "out")
    assert sorted(out["id"]) == list(range(30)) and set(out["status"]) == {"ok"}
