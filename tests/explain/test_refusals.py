"""A tabular model with an input eaas cannot take (a date column) is refused at build with one
line naming the column, never a traceback, never a guess; nothing is registered."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest

from tests import fixtures as fx


class DatedScorer(mlflow.pyfunc.PythonModel):
    """A custom pyfunc whose input has a date column (`opened`)."""

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        days = (model_input["opened"] - pd.Timestamp("2020-01-01")).dt.days.to_numpy()
        return pd.DataFrame({"risk": 1 / (1 + np.exp(-days / 1000))})


@pytest.fixture(scope="module")
def dated_models(registry) -> None:
    x = pd.DataFrame({
        "amount": np.linspace(1, 10, 20),
        "opened": pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(20), "D"),
    })
    signature = mlflow.models.infer_signature(x, DatedScorer().predict(None, x))
    for name, example in (("dated-signature", None), ("dated-example", x.head(10))):
        with mlflow.start_run(run_name=name):
            mlflow.pyfunc.log_model(name="model", python_model=DatedScorer(),
                                    input_example=example, registered_model_name=name,
                                    signature=signature if example is None else None,
                                    pip_requirements=fx.PIP)


@pytest.mark.parametrize("name", ["dated-signature", "dated-example"])
def test_refused_at_build_with_one_line_naming_the_column(dated_models, name):
    from typer.testing import CliRunner

    from eaas.cli import app

    res = CliRunner().invoke(app, ["explainer", "build", "--model", f"models:/{name}/1"])
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.output, res.output
    # the signature's type (MLflow infers one from an input example too)
    assert lines[0].startswith("error: model: input column 'opened' is datetime; ")
    assert lines[0].endswith("eaas explains columns of numbers, booleans, strings and categories")
    client = mlflow.tracking.MlflowClient()
    assert not client.search_registered_models(f"name = '{name}-explainer'")  # nothing registered
