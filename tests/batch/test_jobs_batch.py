"""A job's numbers equal `eaas batch`'s (explain_dataframe on local[2] Spark) for the same
inputs and seed, error rows included: the same engine call, the same per-row seeds."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd

from eaas.batch import explain_dataframe
from tests.api.conftest import live_server
from tests.batch.conftest import by_id, tabular_rows


def run_job(client, model: str, instances: list, **params) -> list[dict]:
    res = client.post(f"/v1/models/{model}/jobs", params={"on_invalid": "row"},
                      json={"instances": instances, "parameters": params})  # fmt: skip
    assert res.status_code == 202, res.text
    deadline = time.monotonic() + 120
    while client.get(res.headers["location"]).json()["status"] != "done":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    lines = client.get(f"{res.headers['location']}/results").text.splitlines()
    return [json.loads(x) for x in lines]


def test_job_equals_eaas_batch_for_tabular_and_text(spark, built, tmp_path):
    rows = tabular_rows(8, seed=5)
    rows.loc[3, "f2"] = np.nan  # the MLP cannot take it: an error row in both
    texts = ["good movie", "the plot was dull and boring", "a", "bad film"]
    batch = by_id(explain_dataframe(spark.createDataFrame(rows).coalesce(2), "tiny-mlp",
                                    id_cols=["id"], max_evals=29, seed=7).collect())  # fmt: skip
    tdf = spark.createDataFrame(pd.DataFrame({"doc": range(4), "text": texts}))
    tbatch = {r["doc"]: r for r in explain_dataframe(tdf, "tiny-bert@champion", max_evals=40,
                                                     seed=3).collect()}  # fmt: skip
    records = [{k: (None if pd.isna(v) else float(v)) for k, v in r.items() if k != "id"}
               for r in rows.to_dict("records")]  # fmt: skip
    url = f"sqlite:///{tmp_path / 'explanations.db'}"
    with live_server(models=["tiny-mlp@champion", "tiny-bert@champion"], store_url=url,
                     job_poll_s=0.2) as client:  # fmt: skip
        got = run_job(client, "tiny-mlp", records, max_evals=29, seed=7)
        tgot = run_job(client, "tiny-bert", texts, max_evals=40, seed=3)
    for i, line in enumerate(got):
        want = batch[i]
        if i == 3:
            assert line["status"] == "error" and want["status"] == "error"
            why = "f2: missing value and the model cannot take it"
            assert line["error"] == want["error"] == why
            continue
        assert line["status"] == "done" and want["status"] == "ok"
        for k in ("values", "prediction", "base_values", "approximation_error"):
            np.testing.assert_allclose(line[k], want[k], rtol=1e-12, atol=1e-15, err_msg=k)
    for i, line in enumerate(tgot):
        want = tbatch[i]
        assert line["features"] == want["features"]
        for k in ("values", "prediction", "approximation_error"):  # torch: batch composition
            np.testing.assert_allclose(line[k], want[k], rtol=1e-5, atol=1e-7, err_msg=k)
