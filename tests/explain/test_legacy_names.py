"""Explainers logged by eaas 0.1 keep loading: their stored code imports `explain.pyfunc`.

`tests/data/legacy_explainer_v0_1` is an explainer folder logged by eaas 0.1 (a logistic
regression on three columns, method linear), kept as it was written.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

LEGACY = Path(__file__).parents[1] / "data" / "legacy_explainer_v0_1"


@pytest.mark.fast
def test_the_stored_code_imports_the_old_name():
    code = (LEGACY / "explainer_model.py").read_text()
    assert "from explain.pyfunc import ExplainerModel" in code


@pytest.fixture()
def legacy(tmp_path) -> Path:
    dst = tmp_path / "explainer"
    shutil.copytree(LEGACY, dst)
    return dst


def test_an_explainer_logged_by_0_1_loads_and_explains(legacy, registry):
    import mlflow.pyfunc

    from eaas.explain.source import load_source

    model = mlflow.pyfunc.load_model(str(legacy))
    x = pd.DataFrame({"a": [0.5, -1.0, 2.0], "b": [1.0, 0.0, -0.3], "c": [0.1, 0.2, 0.3]})
    out = model.predict(x)
    # oracle: exact linear SHAP of the stored source model over the stored background
    lr = load_source(legacy / "artifacts" / "source_model").model
    bg = pd.read_parquet(legacy / "artifacts" / "background.parquet")
    expected = lr.coef_[0] * (x.to_numpy() - bg.to_numpy().mean(axis=0))
    got = np.array([row[1] for row in out["values"]])
    assert np.abs(got - expected).max() < 1e-9
    assert np.allclose([p[1] for p in out["prediction"]], lr.decision_function(x), atol=1e-12)
    assert out["additivity_error"].max() < 1e-9


@pytest.mark.fast
def test_the_alias_is_the_same_module_and_warns():
    code = (
        "import warnings; warnings.simplefilter('error', DeprecationWarning)\n"
        "import eaas.explain.pyfunc as new\n"
        "try:\n"
        "    import explain.pyfunc\n"
        "except DeprecationWarning as w:\n"
        "    print('warned', 'eaas.explain' in str(w))\n"
        "warnings.simplefilter('ignore')\n"
        "import explain.pyfunc as old\n"
        "print(old is new, old.ExplainerModel is new.ExplainerModel)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd="/", timeout=120, check=True).stdout.split()
    assert out == ["warned", "True", "True", "True"]


@pytest.mark.fast
def test_generic_names_are_not_installed():
    names = "('api', 'batch', 'reports')"
    code = f"import importlib.util as u; print([u.find_spec(n) is None for n in {names}])"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # as installed, not a checkout
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/",
                         timeout=60, check=True, env=env).stdout.strip()
    assert out == "[True, True, True]"
