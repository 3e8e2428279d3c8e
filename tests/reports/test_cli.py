"""`eaas report` as a user runs it: a subprocess, exit code and last stdout line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def _eaas(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "eaas.cli", "report", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def test_cli_report(tab_parquet, tmp_path):
    res = _eaas("--model", "tiny-xgb@champion", "--explanations", str(tab_parquet),
                "--output", str(tmp_path / "out"))  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    last = res.stdout.strip().splitlines()[-1]
    assert Path(last) == tmp_path / "out" / "report.html" and Path(last).is_file()


def test_cli_bad_input_is_one_line(tab_parquet):
    res = _eaas("--model", "tiny-xgb/1", "--explanations", str(tab_parquet), "--data", "x.csv")
    assert res.returncode == 2
    assert res.stderr.strip() == "error: give exactly one of --explanations or --data"
