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
