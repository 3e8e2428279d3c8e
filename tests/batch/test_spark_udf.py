"""The registered explainer used directly as MLflow's spark_udf (result type from the signature)."""

from __future__ import annotations

import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
from pyspark.sql.functions import struct
from pyspark.sql.types import ArrayType, BooleanType, DoubleType, StringType, StructType

from tests.batch.conftest import tabular_rows


def test_spark_udf_infers_a_typed_struct_and_matches_the_pyfunc(spark, built):
    udf = mlflow.pyfunc.spark_udf(spark, "models:/tiny-xgb-explainer@champion", env_manager="local")
    rows = tabular_rows(12, seed=4)
    features = [f"f{i}" for i in range(5)]
    df = spark.createDataFrame(rows).withColumn("e", udf(struct(*features)))
    t = df.schema["e"].dataType
    assert isinstance(t, StructType)
    num = ArrayType(DoubleType())
    assert {f.name: f.dataType for f in t.fields} == {
        "output_names": ArrayType(StringType()),
        "prediction": num,
        "base_values": num,
        "values": ArrayType(num),
        "features": ArrayType(StringType()),
        "data": num,
        "additivity_error": DoubleType(),
        "approximation_error": ArrayType(ArrayType(DoubleType())),
        "tolerance_met": BooleanType(),
        "truncated": BooleanType(),
    }
    got = {r["id"]: r["e"] for r in df.select("id", "e").collect()}
    want = mlflow.pyfunc.load_model(built["tiny-xgb"]).predict(rows[features])
    for i in range(12):
        assert got[i]["features"] == features  # struct fields arrived as named columns
        np.testing.assert_allclose(got[i]["values"], want["values"][i], rtol=1e-12, atol=1e-12)
        assert got[i]["data"] == rows.loc[i, features].tolist()


def test_spark_udf_text_explainer(spark, built):
    udf = mlflow.pyfunc.spark_udf(spark, built["tiny-bert"], env_manager="local")
    df = spark.createDataFrame(pd.DataFrame({"text": ["good movie", "bad film"]}))
    out = df.withColumn("e", udf(struct("text")))
    fields = {f.name: f.dataType for f in out.schema["e"].dataType.fields}
    assert fields["data"] == ArrayType(StringType())
    assert fields["values"] == ArrayType(ArrayType(DoubleType()))
    rows = out.collect()
    assert [r["e"]["features"] for r in rows] == [["good", "movie"], ["bad", "film"]]
    pos = [r["e"]["prediction"][1] for r in rows]
    assert pos[0] > 0.5 > pos[1]
