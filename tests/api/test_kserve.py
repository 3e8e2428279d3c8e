"""KServe V1 data plane, checked with KServe's own Python client (`kserve` SDK,
InferenceRESTClient, protocol v1) against a real uvicorn.

The SDK pins pandas < 3, so it cannot share eaas's environment: the set-up makes a small venv
once (python3.11 -m venv + pip install kserve==KSERVE) and caches it in ~/.cache (or
EAAS_KSERVE_VENV); the first creation downloads from PyPI and takes a few minutes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

KSERVE = "0.21.0"
SCRIPT = Path(__file__).parent / "kserve" / "client_script.py"
ROW = {"f0": 0.5, "f1": -1.2, "f2": 0.3, "f3": 1.1, "f4": -0.4}


def _venv() -> Path:
    default = Path.home() / ".cache" / f"eaas-kserve-venv-{KSERVE}"
    root = Path(os.environ.get("EAAS_KSERVE_VENV", default))
    python = root / "bin" / "python"
    if (root / ".complete").exists():
        return python
    base = shutil.which("python3.11")
    if base is None:
        pytest.skip("python3.11 is needed to make the kserve venv")
    tmp = root.with_name(root.name + ".building")
    shutil.rmtree(tmp, ignore_errors=True)
    subprocess.run([base, "-m", "venv", str(tmp)], check=True, timeout=300)
    subprocess.run([str(tmp / "bin" / "python"), "-m", "pip", "install", "-q",
                    f"kserve=={KSERVE}"], check=True, timeout=1200)
    (tmp / ".complete").touch()
    shutil.rmtree(root, ignore_errors=True)
    tmp.rename(root)  # whole or not at all: a half-made venv is never used
    return python


@pytest.fixture(scope="module")
def kserve_python() -> Path:
    return _venv()


def test_kserve_v1_client_talks_to_the_service(api, built, kserve_python):
    res = subprocess.run(
        [str(kserve_python), str(SCRIPT), str(api.base_url).rstrip("/"), "tiny-xgb",
         json.dumps(ROW)],
        capture_output=True, text=True, timeout=120,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    assert res.returncode == 0, res.stderr[-2000:]
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert got["live"] is True and got["ready"] is True
    assert got["unknown_status"] == 404
    exp = got["explain"]
    assert exp["model"] == {"name": "tiny-xgb", "version": "1"}
    want = mlflow.pyfunc.load_model(built["tiny-xgb"]).predict(pd.DataFrame([ROW]))
    np.testing.assert_allclose(exp["explanations"][0]["values"], want["values"][0], atol=0)
    assert exp["predictions"] == [exp["explanations"][0]["prediction"]]


def test_v1_routes_answer_what_the_protocol_expects(api):
    assert api.get("/").json() == {"status": "alive"}
    detail = api.get("/v1/models/tiny-xgb").json()
    assert detail["ready"] is True and detail["name"] == "tiny-xgb"
    assert detail["inputs"] == ["f0", "f1", "f2", "f3", "f4"]  # eaas's own fields stay
