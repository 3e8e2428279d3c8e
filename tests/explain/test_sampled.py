"""Sampled methods: no global random state (threads, batches and other models do not change a
row's numbers), the seed range is checked, and the new estimators agree with a 5,000-evaluation
reference; partition is shap's own recursion."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest

from tests import fixtures as fx

NF = 12  # more features than a 500-evaluation budget can enumerate for kernel (2^12)


@pytest.fixture(scope="module")
def mlp():
    from sklearn.neural_network import MLPClassifier

    x, y = fx.tabular_data(400, NF)
    return MLPClassifier((16,), max_iter=400, random_state=0).fit(x, y), x


def _engine(model, x: pd.DataFrame, method: str, bg_rows: int = 20, seed: int = 0):
    from eaas.explain.engine import Engine
    from eaas.explain.source import SourceModel

    src = SourceModel("sklearn", model, "tabular", list(x.columns), ["no", "yes"], True)
    bg = x.sample(bg_rows, random_state=seed)
    return Engine(src, method, bg, {"max_evals": 500, "seed": 0})


def _values(engine, rows: pd.DataFrame, **params) -> list:
    return [r["values"] for r in engine.explain_records(engine.check(rows, params))]


def test_parallel_engines_equal_their_sequential_results_bit_for_bit(mlp):
    model, x = mlp
    rows = x.iloc[:3]
    engines = [_engine(model, x, m, seed=s) for m in ("permutation", "kernel") for s in (1, 2)]
    alone = [_values(e, rows, seed=5) for e in engines]
    results: dict[int, list] = {}
    start = threading.Barrier(len(engines) + 1)

    def work(i: int) -> None:
        start.wait()
        results[i] = [_values(engines[i], rows, seed=5) for _ in range(3)]

    def noise() -> None:  # someone else's code using numpy's global generator meanwhile
        start.wait()
        for k in range(2000):
            np.random.seed(k)
            np.random.rand(10)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(engines))]
    threads.append(threading.Thread(target=noise))
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for i in range(len(engines)):
        assert all(r == alone[i] for r in results[i])


@pytest.mark.parametrize("method", ["permutation", "kernel", "partition"])
def test_same_seed_same_numbers_whatever_the_batch(mlp, method):
    model, x = mlp
    e = _engine(model, x, method)
    rows = x.iloc[10:14]
    a, b = _values(e, rows, seed=3), _values(e, rows, seed=3)
    assert a == b
    assert _values(e, rows.iloc[[2]], seed=3)[0] == a[2]
    out = e.explain_records(e.check(rows, {"seed": 3}))
    assert max(r["additivity_error"] for r in out) < 1e-9
    if method != "partition":  # partition draws nothing
        assert _values(e, rows, seed=4) != a


@pytest.mark.parametrize("seed", [-1, 2**32])
def test_seed_outside_numpys_range_is_a_422_naming_the_field(mlp, seed):
    from eaas.explain.errors import InvalidInput

    model, x = mlp
    with pytest.raises(InvalidInput, match="seed") as exc:
        _engine(model, x, "permutation").check(x.iloc[:1], {"seed": seed})
    assert exc.value.status == 422 and exc.value.field == "parameters.seed"


def _spearman(a, b) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


@pytest.mark.parametrize("method", ["permutation", "kernel"])
def test_default_budget_ranks_like_a_5000_evaluation_reference(mlp, method):
    model, x = mlp
    e = _engine(model, x, method)
    rows = x.iloc[20:24]
    est, ref = _values(e, rows), _values(e, rows, max_evals=5000, seed=1)
    rho = [_spearman(np.array(a[1]), np.array(b[1])) for a, b in zip(est, ref, strict=True)]
    assert min(rho) >= 0.9, rho


def test_partition_equals_shaps_partition_explainer(mlp):
    import shap

    from eaas.explain.tabular.partition import partition_batch

    model, x = mlp
    e = _engine(model, x, "partition")
    impl = e.method
    masker = shap.maskers.Partition(impl.bg, max_samples=len(impl.bg), clustering="correlation")
    ex = shap.PartitionExplainer(impl.fn, masker)
    rows = x.iloc[30:33]
    ours = np.array(_values(e, rows))
    batch = partition_batch(len(impl.bg))
    theirs = ex(rows.to_numpy(), max_evals=500, batch_size=batch, silent=True)
    assert np.abs(ours - np.transpose(theirs.values, (0, 2, 1))).max() < 1e-9


def test_partition_recursion_equals_shaps_at_its_default_batch(mlp):
    import shap

    from eaas.explain.tabular.estimators import partition_shap

    model, x = mlp
    impl = _engine(model, x, "partition").method
    masker = shap.maskers.Partition(impl.bg, max_samples=len(impl.bg), clustering="correlation")
    ex = shap.PartitionExplainer(impl.fn, masker)
    row = x.iloc[40].to_numpy()
    theirs = ex(row[None, :], max_evals=300, silent=True).values[0].T  # 10 masks per call
    ours = partition_shap(impl.fn, row, impl.bg, impl.base, impl.fn(row[None, :])[0], 300,
                          impl.clustering, impl.cluster_masks, 10)
    assert np.abs(ours - theirs).max() < 1e-9
