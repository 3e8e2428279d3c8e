"""Sampled-method benchmark (P8, P9) on an MLP like the demo's (breast cancer, 30 features).

P8: permutation, partition, kernel at the default budget (500 evaluations, 100 background
rows), warm: time per row / evaluation floor, the floor being (model rows the method evaluated,
counted in the same run) x (the model's per-row cost on one large batch). The check is the
Spearman correlation of each row's values against a 5,000-evaluation reference of the same
method (the permutation and kernel estimators changed), and the additivity error.
P9: a fresh process loads the registered explainer (`mlflow.pyfunc.load_model`) and times its
first explanation against the following ones, same input (temp EAAS_HOME, SQLite registry).

Usage: python bench/bench_sampled.py [--quick]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import interleaved, pin_threads, print_rows, row

pin_threads(1)

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

METHODS = ("permutation", "partition", "kernel")
OUTPUTS = ["malignant", "benign"]


def _mlp():
    from sklearn.datasets import load_breast_cancer
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    ds = load_breast_cancer(as_frame=True)
    model = make_pipeline(StandardScaler(), MLPClassifier((32,), max_iter=500, random_state=0))
    return model.fit(ds.data, ds.target), ds.data


def _engine(model, x: pd.DataFrame, method: str):
    from eaas.explain.engine import Engine
    from eaas.explain.source import SourceModel

    src = SourceModel("sklearn", model, "tabular", list(x.columns), OUTPUTS, True)
    return Engine(src, method, x.sample(100, random_state=0), {"max_evals": 500, "seed": 0})


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def _count_rows(engine, rows: pd.DataFrame) -> tuple[int, list]:
    """Model rows one explanation of `rows` evaluates (the engine's model calls, counted)."""
    fn, seen = engine.method.fn, [0]

    def counting(arr):
        seen[0] += len(arr)
        return fn(arr)

    engine.method.fn = counting
    out = engine.explain_records(engine.check(rows))
    engine.method.fn = fn  # back to the method's own
    return seen[0], out


def _p8(method: str, model, x: pd.DataFrame, rows: pd.DataFrame, rounds: int):
    engine = _engine(model, x, method)
    model_rows, out = _count_rows(engine, rows)
    # the floor: the model's per-row cost on one 50,000-row batch, called as the explainer
    # calls it, timed in the same interleaved rounds
    big = np.tile(x.to_numpy(), (50_000 // len(x) + 1, 1))[:50_000]
    times = interleaved({"explain": lambda: engine.explain_records(engine.check(rows)),
                         "batch": lambda: engine.method.fn(big)}, rounds)
    took = times["explain"]
    floor = model_rows * times["batch"] / len(big)
    ref = engine.explain_records(engine.check(rows, {"max_evals": 5000}))
    rho = [_spearman(np.array(a["values"][1]), np.array(b["values"][1]))
           for a, b in zip(out, ref, strict=True)]
    add = max(r["additivity_error"] for r in out)
    extra = _same_as_shap(engine, rows, out) if method == "partition" else ""
    return row(
        f"P8-{method}", f"{1e3 * took / len(rows):.1f} ms/row vs floor "
        f"{1e3 * floor / len(rows):.1f} ms/row ({model_rows // len(rows)} model rows/row)",
        took / floor, "ratio", "<= 1.3", "<= 1.1",
        f"Spearman vs 5,000 evals min {min(rho):.3f} mean {statistics.mean(rho):.3f}, "
        f"additivity {add:.1e}{extra}",
    )


def _same_as_shap(engine, rows: pd.DataFrame, out: list) -> str:
    """Partition re-implements shap's recursion: compare with shap's own at the same batch."""
    import shap

    from eaas.explain.tabular.partition import partition_batch

    impl = engine.method
    masker = shap.maskers.Partition(impl.bg, max_samples=len(impl.bg), clustering="correlation")
    theirs = shap.PartitionExplainer(impl.fn, masker)(
        rows.to_numpy(), max_evals=500, batch_size=partition_batch(len(impl.bg)), silent=True
    ).values[:, :, 1]
    ours = np.array([r["values"][1] for r in out])
    return f"; max |eaas - shap PartitionExplainer| {np.abs(ours - theirs).max():.1e}"


def _p8_pipeline(rounds: int):
    """P8 for a mixed-type pipeline (strings, a category, a boolean, numbers; one-hot + scaling
    + a small MLP): permutation masks in code space and decodes typed frames for the model.
    The floor, as for the other P8 rows, is the model called as the explainer calls it (decoding
    coded rows into the typed frame, then the pipeline) on one 50,000-row batch; the pipeline
    alone on its own 50,000-row frame is printed beside it. The check is the Spearman
    correlation against 5,000 evaluations."""
    from sklearn.neural_network import MLPClassifier

    from eaas.explain.engine import Engine
    from eaas.explain.source import SourceModel
    from tests.fixtures import loan_data, loan_pipeline

    x, y = loan_data(2000)
    model = loan_pipeline(MLPClassifier((16,), max_iter=300, random_state=0)).fit(x, y)
    src = SourceModel("sklearn", model, "tabular", list(x.columns), OUTPUTS, True, x.head(50))
    engine = Engine(src, "permutation", x.sample(100, random_state=0),
                    {"max_evals": 500, "seed": 0})
    rows, method = x.iloc[300:305], engine.method
    own = method.source.predict_output  # the engine's own (typed) copy of the source
    seen = [0]

    def counting(frame):
        seen[0] += len(frame)
        return own(frame)

    method.source.predict_output = counting  # type: ignore[method-assign]
    out = engine.explain_records(engine.check(rows))
    method.source.predict_output = own  # type: ignore[method-assign]
    big = pd.concat([x] * 25, ignore_index=True)
    codes, vocab = method.codec.encode(big.to_numpy(dtype=object))
    as_called = method.model_on(vocab)
    times = interleaved({"explain": lambda: engine.explain_records(engine.check(rows)),
                         "floor": lambda: as_called(codes), "alone": lambda: own(big)}, rounds)
    floor, alone = (seen[0] * times[k] / len(big) for k in ("floor", "alone"))
    ref = engine.explain_records(engine.check(rows, {"max_evals": 5000}))
    rho = [_spearman(np.array(a["values"][1]), np.array(b["values"][1]))
           for a, b in zip(out, ref, strict=True)]
    per_row = 1e3 * times["explain"] / len(rows)
    return row(
        "P8-pipeline", f"mixed-type pipeline, permutation: {per_row:.1f} ms/row vs floor "
        f"{1e3 * floor / len(rows):.1f} ms/row ({seen[0] // len(rows)} model rows/row; the "
        f"pipeline alone on its own frame: {1e3 * alone / len(rows):.1f} ms/row, ratio "
        f"{times['explain'] / alone:.2f})",
        times["explain"] / floor, "ratio", "<= 1.3", "<= 1.1",
        f"Spearman vs 5,000 evals min {min(rho):.3f}, additivity "
        f"{max(r['additivity_error'] for r in out):.1e}",
    )


P9_CHILD = """
import io, json, sys, time, statistics
import mlflow.pyfunc, pandas as pd
t = time.perf_counter(); m = mlflow.pyfunc.load_model(sys.argv[1]); load = time.perf_counter() - t
text = open(sys.argv[2]).read()
times, outs = [], []
for _ in range(8):
    x = pd.read_json(io.StringIO(text), orient="split")  # every call a new request's frame
    t = time.perf_counter(); outs.append(m.predict(x)); times.append(time.perf_counter() - t)
same = all(o["values"].tolist() == outs[0]["values"].tolist() for o in outs)
print(json.dumps({"load": load, "first": times[0], "warm": statistics.median(times[1:]),
                  "same": same}))
"""


def _first_vs_warm(uri: str, x: pd.DataFrame, home: str, env: dict) -> dict:
    """A fresh process loads the explainer and times its first and following explanations."""
    rows = Path(home) / "rows.json"
    x.iloc[:1].to_json(rows, orient="split")
    proc = subprocess.run([sys.executable, "-c", P9_CHILD, uri, str(rows)],
                          env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=300, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _p9(model, x: pd.DataFrame) -> list:
    import mlflow.sklearn
    import mlflow.xgboost
    import skops.io
    from xgboost import XGBClassifier

    from eaas.explain.build import build_explainer
    from eaas.explain.registry import configure, use_experiment

    example = x.sample(100, random_state=0)
    with tempfile.TemporaryDirectory() as home:
        env = {"EAAS_HOME": home, "MLFLOW_TRACKING_URI": f"sqlite:///{home}/mlflow.db",
               "EAAS_TRUST_REGISTRY": "true"}
        os.environ.update(env)
        configure()
        use_experiment("bench")
        trusted = skops.io.get_untrusted_types(data=skops.io.dumps(model))
        with mlflow.start_run():
            mlflow.sklearn.log_model(model, name="model", input_example=example,
                                     registered_model_name="bench-mlp",
                                     skops_trusted_types=trusted)
            y = model.predict(x)
            trees = XGBClassifier(n_estimators=300, max_depth=6, n_jobs=1).fit(x, y)
            mlflow.xgboost.log_model(trees, name="trees", input_example=example,
                                     registered_model_name="bench-xgb")
        mlp = build_explainer("models:/bench-mlp/1", method="permutation", max_evals=500)
        tree = build_explainer("models:/bench-xgb/1")
        got = _first_vs_warm(mlp.uri, x, home, env)
        got_tree = _first_vs_warm(tree.uri, x, home, env)
    same = f"same input (a new frame per call), one row; same numbers on every call: " \
        f"{got['same'] and got_tree['same']}"
    return [
        row("P9-permutation", f"permutation MLP, fresh process: first {1e3 * got['first']:.1f} ms"
            f" / warm {1e3 * got['warm']:.1f} ms (load_model {got['load']:.2f}s, warm-up "
            "included)", got["first"] / got["warm"], "ratio", "<= 1.5", "<= 1.1", same),
        row("P9-tree", f"tree (xgboost 300 trees), fresh process: first "
            f"{1e3 * got_tree['first']:.2f} ms / warm {1e3 * got_tree['warm']:.2f} ms (load "
            f"{got_tree['load']:.2f}s)", got_tree["first"] / got_tree["warm"], "ratio", "<= 1.5",
            "<= 1.1", same),
    ]  # fmt: skip


def run(quick: bool = False) -> list:
    model, x = _mlp()
    n_rows, rounds = (2, 4) if quick else (5, 7)
    rows = x.iloc[200 : 200 + n_rows]
    out = [_p8(m, model, x, rows, rounds) for m in METHODS]
    out.append(_p8_pipeline(rounds))
    out.extend(_p9(model, x))
    return out


def main() -> None:
    print_rows(run("--quick" in sys.argv))


if __name__ == "__main__":
    main()
