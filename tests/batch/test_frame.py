"""explain_dataframe on local[2] Spark: typed columns, parity with the pyfunc, error rows."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
from pyspark.sql.types import ArrayType, BooleanType, DoubleType, LongType, StringType

from eaas.batch import explain_dataframe
from eaas.explain.schema import COLUMNS
from tests.batch.conftest import by_id, tabular_rows

NUM = ArrayType(DoubleType())
TXT = ArrayType(StringType())


def _types(df) -> dict:
    return {f.name: f.dataType for f in df.schema.fields}


def test_tree_output_is_typed_and_matches_the_pyfunc(spark, built):
    rows = tabular_rows(40)
    out = explain_dataframe(spark.createDataFrame(rows).repartition(3), "tiny-xgb@champion")
    assert out.columns == list(rows.columns) + COLUMNS + ["status", "error"]
    assert _types(out) == {
        "id": LongType(),
        **{f"f{i}": DoubleType() for i in range(5)},
        "output_names": TXT,
        "prediction": NUM,
        "base_values": NUM,
        "values": ArrayType(NUM),
        "features": TXT,
        "data": NUM,
        "additivity_error": DoubleType(),
        "approximation_error": ArrayType(ArrayType(DoubleType())),
        "tolerance_met": BooleanType(),
        "truncated": BooleanType(),
        "status": StringType(),
        "error": StringType(),
    }
    got = by_id(out.collect())
    assert len(got) == 40 and {r["status"] for r in got.values()} == {"ok"}
    want = mlflow.pyfunc.load_model(built["tiny-xgb"]).predict(rows.drop(columns="id"))
    for i in range(40):
        r = got[i]
        assert r["error"] is None
        assert r["output_names"] == want["output_names"][i]
        assert r["features"] == ["f0", "f1", "f2", "f3", "f4"]
        np.testing.assert_allclose(r["values"], want["values"][i], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(r["prediction"], want["prediction"][i], rtol=1e-12)
        np.testing.assert_allclose(r["base_values"], want["base_values"][i], rtol=1e-12)
        assert r["data"] == rows.iloc[i, 1:].tolist()
        assert r["additivity_error"] < 1e-4


def test_black_box_keeps_unexplainable_rows_with_the_reason(spark, built):
    rows = tabular_rows(10, seed=2)
    rows.loc[[3, 7], "f2"] = np.nan  # the MLP cannot take a missing value
    # 29 evaluations: two orders of 5 features, sampled (2^5 - 2 = 30 would be exact)
    out = explain_dataframe(spark.createDataFrame(rows).coalesce(1), "tiny-mlp", id_cols=["id"],
                            max_evals=29)
    assert out.columns == ["id"] + COLUMNS + ["status", "error"]
    got = by_id(out.collect())
    assert sorted(got) == list(range(10))
    for i in (3, 7):
        assert got[i]["status"] == "error"
        assert got[i]["error"] == "f2: missing value and the model cannot take it"
        assert all(got[i][c] is None for c in COLUMNS)
    ok = [i for i in range(10) if i not in (3, 7)]
    assert all(got[i]["status"] == "ok" and got[i]["error"] is None for i in ok)
    want = mlflow.pyfunc.load_model(built["tiny-mlp"]).predict(rows.iloc[ok, 1:],
                                                               params={"max_evals": 29})
    for j, i in enumerate(ok):  # seeded per row: batch composition does not change numbers
        np.testing.assert_allclose(got[i]["values"], want["values"][j], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(got[i]["prediction"], want["prediction"][j], rtol=1e-12)
        # the standard errors travel with the values, equal to the pyfunc's, never all zero
        np.testing.assert_allclose(got[i]["approximation_error"],
                                   want["approximation_error"][j], rtol=1e-12, atol=1e-15)
        assert np.min(got[i]["approximation_error"]) > 0
        assert got[i]["tolerance_met"] == bool(want["tolerance_met"][j])


def test_text_rows_typed_with_over_long_and_missing_texts_as_errors(spark, built):
    texts = ["good movie", "the plot was dull and boring", None, "great " * 20, "a", "bad film"]
    df = spark.createDataFrame(pd.DataFrame({"doc": range(6), "text": texts}))
    out = explain_dataframe(df, "tiny-bert@champion", max_text_chars=60, max_evals=40)
    assert _types(out)["data"] == TXT and _types(out)["values"] == ArrayType(NUM)
    got = {r["doc"]: r for r in out.collect()}
    assert got[2]["status"] == "error" and got[2]["error"] == "text: missing value"
    assert got[3]["status"] == "error" and got[3]["error"].startswith(
        "text: longer than 60 characters"
    )
    ok = [0, 1, 4, 5]
    want = mlflow.pyfunc.load_model(built["tiny-bert"]).predict(
        pd.DataFrame({"text": [texts[i] for i in ok]}), params={"max_evals": 40}
    )
    for j, i in enumerate(ok):
        r = got[i]
        assert r["status"] == "ok" and r["text"] == texts[i]
        assert r["output_names"] == ["negative", "positive"]
        assert r["features"] == want["features"][j] == r["data"]
        assert len(r["values"]) == 2 and len(r["values"][0]) == len(r["features"])
        np.testing.assert_allclose(r["values"], want["values"][j], rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(r["prediction"], want["prediction"][j], rtol=1e-5)
        assert np.shape(r["approximation_error"]) == np.shape(r["values"])
        np.testing.assert_allclose(r["approximation_error"], want["approximation_error"][j],
                                   rtol=1e-5, atol=1e-7)


def test_missing_feature_column_fails_before_running(spark, built):
    from eaas.explain.errors import InvalidInput

    df = spark.createDataFrame(tabular_rows(3).drop(columns="f4"))
    with pytest.raises(InvalidInput, match="input: missing column 'f4'"):
        explain_dataframe(df, "tiny-xgb")
