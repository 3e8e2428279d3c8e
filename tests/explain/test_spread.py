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
