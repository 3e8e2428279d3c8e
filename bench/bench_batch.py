"""Batch throughput: the Spark job on local[2] vs a plain single-process loop over the same pyfunc.

    .venv/bin/python bench/bench_batch.py [--rows 50000] [--texts 500] [--repeats 3]

Builds its own temporary registry (an xgboost on breast-cancer features with a tree explainer,
and a tiny BERT-like text classifier with a text explainer), so it needs nothing registered.
Threads are pinned to 1 per worker in both. Both sides are timed warm (model loaded, Spark
running): the first, cold Spark run (worker start + explainer load) is printed separately.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

for _var in ("EAAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy/torch load: one numeric thread per process
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

TAB_BATCH, TEXT_BATCH = 5000, 64
TEXT_MAX_EVALS = 100


def setup_registry(home: Path) -> None:
    os.environ["EAAS_HOME"] = str(home)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{home / 'mlflow.db'}"
    os.environ["HF_HUB_OFFLINE"] = "1"
    from explain.registry import use_experiment

    use_experiment("bench")


def register_models() -> tuple[pd.DataFrame, list[str]]:
    """breast-cancer xgboost + tiny BERT, alias champion, explainers built; returns bench data."""
    import mlflow
    import mlflow.transformers
    import mlflow.xgboost
    from mlflow.tracking import MlflowClient
    from sklearn.datasets import load_breast_cancer
    from xgboost import XGBClassifier

    from explain.build import build_explainer
    from tests import fixtures as fx

    x, y = load_breast_cancer(return_X_y=True, as_frame=True)
    model = XGBClassifier(n_estimators=100, max_depth=4, n_jobs=1, random_state=0).fit(x, y)
    fx.register("bench-cancer", mlflow.xgboost.log_model, model, x.head(50))
    bert, tok = fx.train_tiny_bert()
    with mlflow.start_run(run_name="bench-text"):
        mlflow.transformers.log_model(
            transformers_model={"model": bert, "tokenizer": tok},
            name="model",
            task="text-classification",
            registered_model_name="bench-text",
            input_example=["good movie"],
            pip_requirements=fx.PIP,
        )
    client = MlflowClient()
    for name in ("bench-cancer", "bench-text"):
        client.set_registered_model_alias(name, "champion", "1")
    build_explainer("models:/bench-cancer@champion")
    build_explainer("models:/bench-text@champion", max_evals=TEXT_MAX_EVALS)
    texts, _ = fx.text_data(n=2000, seed=3)
    return x, texts


def make_inputs(x: pd.DataFrame, texts: list[str], n_rows: int, n_texts: int, d: Path) -> None:
    rng = np.random.default_rng(0)
    rows = x.sample(n_rows, replace=True, random_state=0).reset_index(drop=True)
    rows = rows * rng.normal(1.0, 0.05, size=rows.shape)  # distinct rows, realistic ranges
    rows.insert(0, "id", np.arange(n_rows))
    rows.to_parquet(d / "tabular.parquet", index=False)
    docs = [" ".join([texts[i], texts[i + 1]]) for i in range(n_texts)]  # ~10 words each
    pd.DataFrame({"id": np.arange(n_texts), "text": docs}).to_parquet(d / "text.parquet")


def plain_loop(uri: str, path: Path, batch: int, repeats: int, params: dict) -> list[float]:
    """The same pyfunc in one process, in batches; seconds per full pass (model loaded once)."""
    import mlflow.pyfunc

    df = pd.read_parquet(path).drop(columns="id")
    model = mlflow.pyfunc.load_model(uri)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for i in range(0, len(df), batch):
            model.predict(df.iloc[i : i + batch], params=params or None)
        times.append(time.perf_counter() - t0)
    return times


def spark_runs(model: str, path: Path, out: Path, repeats: int) -> tuple[float, list[float]]:
    """The whole job (read, explain, write, check, commit) on the running local[2] session."""
    from batch.job import JobSpec, run_job

    times = []
    for _ in range(repeats + 1):  # the first run is cold: Python workers start and load
        res = run_job(JobSpec(model, str(path), str(out)), echo=lambda s: None)
        times.append(res.seconds)
    return times[0], times[1:]


def spark_explain_only(model: str, path: Path, repeats: int) -> list[float]:
    """Only the explain stage: same plan and partitions, into Spark's no-op sink."""
    from pyspark.sql import SparkSession

    from batch.frame import ExplainerInfo, plan
    from explain.registry import resolve_explainer

    spark = SparkSession.getActiveSession()
    info = ExplainerInfo.load(resolve_explainer(model))
    df = plan(spark.read.parquet(str(path)), info, ["id"], partitions=2)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        df.write.format("noop").mode("overwrite").save()
        times.append(time.perf_counter() - t0)
    return times


def report(name: str, n: int, cold: float, job: list, only: list, plain: list) -> None:
    j, e, p = (n / statistics.median(t) for t in (job, only, plain))
    print(
        f"{name:<28} {n:>6} rows | spark job {j:>8.1f} rows/s ({j / p:4.2f}x) | spark explain"
        f" stage {e:>8.1f} rows/s ({e / p:4.2f}x) | plain loop {p:>8.1f} rows/s"
        f" | cold job {n / cold:.1f} rows/s"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=50_000)
    ap.add_argument("--texts", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="eaas-bench-") as tmp:
        d = Path(tmp)
        setup_registry(d / "home")
        x, texts = register_models()
        make_inputs(x, texts, a.rows, a.texts, d)
        from batch.session import start_session

        spark, _ = start_session("local[2]")
        try:
            results = []
            for name, model, uri, batch, params, n in (
                ("tree (breast cancer xgb)", "bench-cancer", "tabular", TAB_BATCH, {}, a.rows),
                ("text (tiny BERT, 100 evals)", "bench-text", "text", TEXT_BATCH, {}, a.texts),
            ):
                path = d / f"{uri}.parquet"
                spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(batch))
                cold, warm = spark_runs(model, path, d / f"out-{uri}", a.repeats)
                only = spark_explain_only(model, path, a.repeats)
                plain = plain_loop(f"models:/{model}-explainer/1", path, batch, a.repeats, params)
                results.append((name, n, cold, warm, only, plain))
        finally:
            spark.stop()
        print(f"medians of {a.repeats} warm repeats; 1 numeric thread per worker; 2 cores")
        for r in results:
            report(*r)


if __name__ == "__main__":
    main()
