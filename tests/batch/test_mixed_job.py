"""The Spark job over mixed-type models: typed input columns in, one row out per row in,
`data` typed (struct of number/text), the same numbers as the pyfunc."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd

from eaas.batch.job import JobSpec, run_job
from eaas.explain.schema import from_typed
from tests import fixtures as fx


def _input(n: int = 12) -> pd.DataFrame:
    x, _ = fx.loan_data(n, seed=5)
    x = x.astype({"grade": str})  # Parquet from another tool: categories as plain strings
    x.loc[3, "purpose"] = None  # missing: the pipeline's encoder takes it as unknown
    x.loc[4, "purpose"] = "wedding"  # never seen
    return pd.concat([pd.DataFrame({"id": np.arange(n, dtype=np.int64)}), x], axis=1)


def test_mixed_job_typed_rows(spark, loan_built, tmp_path):
    rows = _input()
    rows.to_parquet(tmp_path / "in.parquet", index=False)
    for name in ("loan-pipeline", "loan-lgbm"):
        out = tmp_path / name
        res = run_job(JobSpec(name, str(tmp_path / "in.parquet"), str(out), ["id"]))
        assert (res.rows_in, res.rows_ok, res.rows_error) == (12, 12, 0)
        got = spark.read.parquet(str(out)).toPandas().sort_values("id").reset_index(drop=True)
        assert dict(spark.read.parquet(str(out)).dtypes)["data"] == (
            "array<struct<number:double,text:string>>"
        )
        data = [from_typed(d) for d in got["data"]]
        purpose = rows["purpose"].astype(object)
        assert [d[0] for d in data] == purpose.where(purpose.notna(), None).tolist()
        assert [d[3] for d in data] == rows["owner"].astype(float).tolist()  # 1.0 / 0.0
        assert [d[4] for d in data] == rows["age"].astype(float).tolist()
        pyfunc = mlflow.pyfunc.load_model(loan_built[name]).predict(rows.drop(columns="id"))
        np.testing.assert_array_equal(np.stack([np.stack(v) for v in got["values"]]),
                                      np.stack([np.stack(v) for v in pyfunc["values"]]))
