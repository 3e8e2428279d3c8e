"""Exact TreeSHAP benchmark (P1, P2): eaas's tree path vs the native libraries, one thread.

P1: 300 trees, 30 features, 2,000 rows (5% missing values for xgboost/lightgbm): eaas's
`FastTreeShap` vs xgboost `pred_contribs=True`, lightgbm `pred_contrib=True`, and for a sklearn
random forest shap's C++ TreeExplainer. Interleaved rounds; the check is the largest difference
to the native contributions, measured in the same run.
P2: one row in-process, input checks and output records included (`Engine.explain_records`),
vs native one-row contributions from the same one-row DataFrame.

Models are trained here on synthetic data. Usage: python bench/bench_tree.py [--quick]
"""

from __future__ import annotations

import statistics
import sys
import time

from bench.common import pin_threads, print_rows, row

pin_threads(1)

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

N_FEATURES = 30


def _data(n: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    from sklearn.datasets import make_classification

    x, y = make_classification(n, N_FEATURES, n_informative=12, random_state=seed)
    return pd.DataFrame(x, columns=[f"f{i}" for i in range(N_FEATURES)]), y


def _with_nan(x: pd.DataFrame, frac: float = 0.05) -> pd.DataFrame:
    mask = np.random.default_rng(1).random(x.shape) < frac
    return x.mask(mask)


def _models(trees: int, x: pd.DataFrame, y: np.ndarray) -> dict:
    import lightgbm as lgb
    import xgboost as xgb
    from sklearn.ensemble import RandomForestClassifier

    xn = _with_nan(x)
    return {
        "P1-xgb-d6": ("xgboost", xgb.XGBClassifier(n_estimators=trees, max_depth=6, n_jobs=1)
                      .fit(xn, y)),
        "P1-xgb-d8": ("xgboost", xgb.XGBClassifier(n_estimators=trees, max_depth=8, n_jobs=1)
                      .fit(xn, y)),
        "P1-lgbm-63": ("lightgbm", lgb.LGBMClassifier(n_estimators=trees, num_leaves=63,
                                                      n_jobs=1, verbose=-1).fit(xn, y)),
        "P1-sklearn-rf": ("sklearn", RandomForestClassifier(trees, max_depth=8, n_jobs=1,
                                                            random_state=0).fit(x, y)),
    }


def _native(flavor: str, model, x: pd.DataFrame):
    """The library's own contributions, in the (rows, features, outputs) layout."""
    if flavor == "xgboost":
        import xgboost as xgb

        booster = model.get_booster()
        c = booster.predict(xgb.DMatrix(x), pred_contribs=True)
        return lambda: booster.predict(xgb.DMatrix(x), pred_contribs=True), c[:, :-1, None]
    if flavor == "lightgbm":
        c = model.predict(x, pred_contrib=True)
        return lambda: model.predict(x, pred_contrib=True), c[:, :-1, None]
    import shap

    ex = shap.TreeExplainer(model)
    c = ex.shap_values(x)
    return lambda: ex.shap_values(x), c


def _p1(rid: str, flavor: str, model, x: pd.DataFrame, rounds: int):
    from eaas.explain.tabular.treeshap import FastTreeShap

    t0 = time.perf_counter()
    fast = FastTreeShap(model, flavor, N_FEATURES)
    prep = time.perf_counter() - t0
    arr = x.to_numpy(dtype=float)
    ours = lambda: fast.shap_values(arr)  # noqa: E731
    t0 = time.perf_counter()
    native, ref = _native(flavor, model, x)  # the reference call is also the first timing
    first_native = time.perf_counter() - t0
    t0 = time.perf_counter()
    phi, _ = ours()
    times: dict[str, list[float]] = {"ours": [time.perf_counter() - t0],
                                     "native": [first_native]}
    err = float(np.abs(phi - ref).max())
    scale = float(np.abs(ref).max())
    for _ in range(rounds - 1):
        for k, f in (("ours", ours), ("native", native)):
            t = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t)
    o, n = statistics.median(times["ours"]), statistics.median(times["native"])
    nan_rows = int(np.isnan(arr).any(axis=1).sum())
    ref_name = "shap C++" if flavor == "sklearn" else "native"
    return row(
        rid, f"{len(x)} rows: eaas {o:.3f}s / {ref_name} {n:.3f}s (tables built in {prep:.2f}s)",
        o / n, "ratio", "<= 0.4", "<= 0.25",
        f"max |eaas - {ref_name}| {err:.1e} (scale {scale:.2g}, {nan_rows} rows with NaN), "
        f"{'ok' if err <= 1e-4 * max(1.0, scale) else 'FAIL'}",
    )


def _p2(model, x: pd.DataFrame, reps: int):
    import xgboost as xgb

    from eaas.explain.engine import Engine
    from eaas.explain.source import SourceModel

    cols = list(x.columns)
    src = SourceModel("xgboost", model, "tabular", cols, ["0", "1"], True)
    engine = Engine(src, "tree", None, {"max_evals": 500, "seed": 0})
    one = x.iloc[[7]]
    booster = model.get_booster()
    fns = {
        "records": lambda: engine.explain_records(engine.check(one)),
        "frame": lambda: engine.explain(one),
        "native": lambda: booster.predict(xgb.DMatrix(one), pred_contribs=True),
    }
    times: dict[str, list[float]] = {k: [] for k in fns}
    for f in fns.values():
        f()
    for _ in range(reps):
        for k, f in fns.items():
            t = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t)
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    out = engine.explain_records(engine.check(one))[0]
    native = fns["native"]()[0]
    err = float(np.abs(np.array(out["values"][1]) - native[:-1]).max())
    return row(
        "P2", f"one row (xgboost d6): engine {med['records']:.3f} ms / native "
        f"{med['native']:.3f} ms (explain() with its DataFrame out: {med['frame']:.3f} ms)",
        med["records"] / med["native"], "ratio", "<= 1.1", "<= 1.0",
        f"max |eaas - native| {err:.1e}, additivity {out['additivity_error']:.1e}",
    )


def run(quick: bool = False) -> list:
    trees, n_rows, rounds = (100, 500, 2) if quick else (300, 2000, 3)
    x, y = _data(3000 + n_rows)
    train, test = x.iloc[:3000], x.iloc[3000:].reset_index(drop=True)
    models = _models(trees, train, y[:3000])
    rows = []
    for rid, (flavor, model) in models.items():
        data = test if flavor == "sklearn" else _with_nan(test)
        rows.append(_p1(rid, flavor, model, data, rounds))
    rows.append(_p2(models["P1-xgb-d6"][1], test, 50 if quick else 200))
    return rows


def main() -> None:
    print_rows(run("--quick" in sys.argv))


if __name__ == "__main__":
    main()
