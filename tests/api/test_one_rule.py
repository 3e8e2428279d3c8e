"""One input rule, three paths: the same bad input gets the same verdict and message over REST
(real HTTP), through the explainer pyfunc and in the Spark worker (its function, and a local[2]
job). The batch output writes the error on the row it belongs to, so it leaves out the
`instances[i].` position and keeps the rest of the message."""

from __future__ import annotations

import math

import mlflow
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from eaas.batch.worker import WorkerSpec, explain_record_batch
from eaas.explain.errors import InvalidInput
from eaas.explain.validation import NO_NAN
from tests.batch.conftest import spark  # noqa: F401 - the session's local[2] SparkSession

ROW = {"f0": 0.5, "f1": -1.2, "f2": 0.3, "f3": 1.1, "f4": -0.4}
SECRET = 31337.75  # never echoed

# (model, one instance, message); every case is a single instance, so it is instances[0]
VALUES = [
    ("tiny-mlp", {**ROW, "f2": "high"}, "instances[0].f2: not a number"),
    ("tiny-mlp", {**ROW, "f2": True}, "instances[0].f2: not a number"),
    ("tiny-mlp", {**ROW, "f3": None}, "instances[0].f3: " + NO_NAN),
    ("tiny-mlp", {**ROW, "f0": math.inf}, "instances[0].f0: infinite value"),
    ("tiny-mlp", {**ROW, "f1": 1e308}, "instances[0].f1: out of range (magnitude above 3.4e38)"),
    ("tiny-xgb", {**ROW, "f4": -1e300}, "instances[0].f4: out of range (magnitude above 3.4e38)"),
    ("tiny-xgb", {**ROW, "f1": [SECRET]}, "instances[0].f1: not a number"),
    ("tiny-bert", None, "instances[0].text: missing value"),
    ("tiny-bert", 12, "instances[0].text: not a string"),
]
# a batch keeps non-feature columns as ids and checks feature columns on the driver, so column
# faults are a REST + pyfunc matter
COLUMNS = [
    ("tiny-mlp", {**ROW, "f9": SECRET}, "instances[0].f9: unexpected feature (not a model input)"),
    ("tiny-mlp", {"f0": SECRET}, "instances[0].f1: missing feature"),
    ("tiny-mlp", {**ROW, "x" * 300: 1}, f"instances[0].{'x' * 100}: unexpected feature"),
]


def _frame(name: str, instance) -> pd.DataFrame:
    if name == "tiny-bert":
        return pd.DataFrame({"text": pd.Series([instance], dtype=object)})
    return pd.DataFrame([instance])


def _rest(api, name: str, instance) -> tuple[int, str]:
    if isinstance(instance, dict) and any(isinstance(v, float) and math.isinf(v)
                                          for v in instance.values()):
        body = ('{"instances": [{' + ", ".join(
            f'"{k}": {"Infinity" if math.isinf(v) else v}' for k, v in instance.items()
        ) + "}]}").encode()
        res = api.post(f"/v1/models/{name}:explain", content=body)
    else:
        res = api.post(f"/v1/models/{name}:explain", json={"instances": [instance]})
    assert str(SECRET) not in res.text and "Traceback" not in res.text
    return res.status_code, res.json()["error"]["message"]


def _pyfunc(built, name: str, instance) -> str:
    model = mlflow.pyfunc.load_model(built[name])
    with pytest.raises(InvalidInput) as err:
        model.predict(_frame(name, instance))
    return err.value.message


def _worker(built, name: str, instance) -> str:
    from eaas.explain.pyfunc import load_explainer

    engine = load_explainer(built[name])
    spec = WorkerSpec(built[name], "", "", tuple(engine.config.features), ("id",))
    pdf = pd.concat([pd.DataFrame({"id": [7]}), _frame(name, instance)], axis=1)
    batch = pa.RecordBatch.from_pandas(pdf, preserve_index=False)
    out = explain_record_batch(batch, spec, engine).to_pandas()
    assert out["status"].tolist() == ["error"] and out["values"].tolist() == [None]
    return out["error"].iloc[0]


@pytest.mark.parametrize("name, instance, message", VALUES)
def test_a_bad_value_gets_one_verdict_on_every_path(api, built, name, instance, message):
    assert _rest(api, name, instance) == (422, message)
    assert _pyfunc(built, name, instance) == message
    # the batch output puts the error on its row: the same message, less the position
    assert "instances[0]." + _worker(built, name, instance) == message


@pytest.mark.parametrize("name, instance, message", COLUMNS)
def test_a_bad_column_gets_one_verdict_over_rest_and_the_pyfunc(api, built, name, instance,
                                                                 message):
    status, got = _rest(api, name, instance)
    assert status == 422 and got.startswith(message) and len(got) < 200
    assert _pyfunc(built, name, instance).startswith(message)


def test_a_spark_job_marks_exactly_the_bad_rows(spark, built):  # noqa: F811
    from eaas.batch.frame import explain_dataframe

    good = [ROW, {**ROW, "f0": -0.3}]
    bad = [({**ROW, "f3": None}, "f3: missing value and the model cannot take it"),
           ({**ROW, "f0": math.inf}, "f0: infinite value"),
           ({**ROW, "f1": 1e308}, "f1: out of range (magnitude above 3.4e38)")]
    rows = good + [r for r, _ in bad]
    pdf = pd.DataFrame(rows).assign(id=np.arange(len(rows)))
    out = explain_dataframe(spark.createDataFrame(pdf), "tiny-mlp", id_cols=["id"],
                            partitions=1).toPandas().set_index("id").sort_index()
    assert out["status"].tolist() == ["ok", "ok", "error", "error", "error"]
    for i, (_, reason) in enumerate(bad, start=2):
        assert out.loc[i, "error"] == reason
    want = mlflow.pyfunc.load_model(built["tiny-mlp"]).predict(pd.DataFrame(good))
    for i in range(2):
        np.testing.assert_allclose(out.loc[i, "values"].tolist(), want["values"][i], atol=1e-12)


def test_a_model_overflow_is_422_not_500(api, built):
    """Inputs inside the float32 range can still overflow a model: refused, naming the row."""
    big = {k: 3e38 for k in ROW}
    res = api.post("/v1/models/tiny-mlp:explain", json={"instances": [ROW, big]})
    assert res.status_code in (200, 422), res.text
    if res.status_code == 422:
        assert res.json()["error"]["message"].startswith("instances[1]")
    else:  # the model stayed finite: every number is JSON
        assert all(np.isfinite(e["values"]).all() for e in res.json()["explanations"])
