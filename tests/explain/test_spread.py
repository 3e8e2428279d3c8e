"""A method's evaluation batches run through a `spread` (here: a thread pool standing in for
the Ray batch workers of api/ray_fanout.py) give the numbers of a local run, bit for bit."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

from tests import fixtures as fx


def pool_spread(method, seen: list[int]):
    pool = ThreadPoolExecutor(2)

    def spread(batches, stop=None):
        seen.append(len(batches))
        return list(pool.map(method.run_batch, batches))

    return spread


def test_tabular_model_calls_spread_equal_a_local_run():
    model = fx.SumModel({c: 1.0 + i for i, c in enumerate("abcdefghijkl")})  # kernel samples
    rng = np.random.default_rng(1)
    bg = pd.DataFrame(rng.normal(size=(40, len(model.weights))), columns=list(model.weights))
    x = bg.head(3) + 0.5
    for method in ("permutation", "kernel"):
        engine = fx.fake_engine(method, model=model, background=bg)
        params = {"seed": 4, "max_evals": 3000, "tolerance": 0.0}
        local = engine.explain(x, params)
        seen: list[int] = []
        assert engine.method.spread_to(pool_spread(engine.method, seen))
        spread = engine.explain(x, params)
        assert seen and min(seen) > 1, method  # more than one model call each time
        for col in ("values", "approximation_error", "prediction"):
            assert np.array_equal(np.stack(local[col].tolist()), np.stack(spread[col].tolist()))


def test_text_forward_batches_spread_equal_a_local_run(built):
    from eaas.explain.pyfunc import load_explainer

    engine = load_explainer(built["tiny-bert"])
    text = pd.DataFrame({"text": ["the plot was dull and boring but the acting was good "
                                  "and the music great too"]})  # fmt: skip
    params = {"seed": 3, "max_evals": 600, "tolerance": 0.0}
    local = engine.explain(text, params)
    seen: list[int] = []
    assert engine.method.spread_to(pool_spread(engine.method, seen))
    spread = engine.explain(text, params)
    assert seen and max(seen) > 1
    assert np.array_equal(np.stack(local["values"][0]), np.stack(spread["values"][0]))


class Loaded:
    """A custom PythonModel as `mlflow.pyfunc.load_model` hands it over: `predict(frame)`."""

    def __init__(self, model) -> None:
        self.model = model

    def predict(self, frame):
        return self.model.predict(None, frame)


def test_mixed_type_pipeline_and_custom_pyfunc_calls_spread_equal_a_local_run():
    """Strings, a category, a boolean, integers and floats: the coded rows go out with the
    request's own vocabulary (an unseen purpose, a missing region), decoded there as here."""
    from sklearn.linear_model import LogisticRegression

    from eaas.explain.engine import Engine
    from eaas.explain.source import SourceModel

    x, y = fx.loan_data(300)
    features, bg = list(x.columns), x[x["purpose"] != "home"].head(30)
    rows = x.iloc[[3, 8]].astype(object).to_dict("records")
    # "home": unseen by the background's codes, yet the scorer weighs it; and a missing region
    rows[0]["purpose"], rows[1]["region"] = "home", None
    pipe = fx.loan_pipeline(LogisticRegression(max_iter=2000)).fit(x, y)
    sources = {
        "pipeline": SourceModel("sklearn", pipe, "tabular", features, ["0", "1"], True, bg),
        "pyfunc": SourceModel("pyfunc", Loaded(fx.LoanScorer()), "tabular", features, ["risk"],
                              False, bg),  # fmt: skip
    }
    for name, source in sources.items():
        for method in ("permutation", "kernel"):
            engine = Engine(source, method, bg, {"max_evals": 2000, "seed": 5})
            engine.method.rows_per_call = 1000  # 33 coalitions a call: several calls a row
            params = {"seed": 5, "max_evals": 2000, "tolerance": 0.0}
            checked = engine.check(rows, params)
            local = engine.explain_records(checked)
            seen: list[int] = []
            assert engine.method.spread_to(pool_spread(engine.method, seen))
            spread = engine.explain_records(engine.check(rows, params))
            assert seen and min(seen) > 1, (name, method)
            for a, b in zip(local, spread, strict=True):
                for k in ("values", "approximation_error", "prediction"):
                    assert np.array_equal(np.asarray(a[k]), np.asarray(b[k])), (name, method, k)
