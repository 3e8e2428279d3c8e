"""Exact TreeSHAP on categorical features (P10): eaas's fast path vs the native libraries.

P10: 2,000 rows of a typed frame (5 category columns of 5 to 30 values, 5 numeric columns with
5% missing values), 300 trees: eaas's `native_matrix` + `FastTreeShap.shap_values` vs LightGBM
`pred_contrib=True` and xgboost `pred_contribs=True` (enable_categorical) on the same frame,
one thread. Interleaved rounds; the check is the largest difference to the native
contributions, measured in the same run.

Models are trained here on synthetic data. Usage: python bench/bench_categorical.py [--quick]
"""

from __future__ import annotations

import sys
import time

from bench.common import interleaved, pin_threads, print_rows, row

pin_threads(1)

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

N_CATEGORIES = (5, 10, 15, 20, 30)
N_NUMERIC = 5


def _data(n: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    cols: dict[str, object] = {}
    score = rng.normal(0, 0.5, n)
    for i, k in enumerate(N_CATEGORIES):
        codes = rng.integers(0, k, n)
        effect = np.random.default_rng(100 + i).normal(0, 1, k)  # same effects for any seed
        score += effect[codes]
        cols[f"c{i}"] = pd.Categorical.from_codes(codes, [f"v{j:02d}" for j in range(k)])
    for i in range(N_NUMERIC):
        x = rng.normal(size=n)
        score += np.sin(2 * x) if i % 2 else 0.5 * x
        cols[f"x{i}"] = np.where(rng.random(n) < 0.05, np.nan, x)
    return pd.DataFrame(cols), (score > np.median(score)).astype(int)


def _models(trees: int, x: pd.DataFrame, y: np.ndarray) -> dict:
    import lightgbm as lgb
    import xgboost as xgb

    return {
        "P10-lgbm": (
            "lightgbm",
            lgb.LGBMClassifier(n_estimators=trees, num_leaves=31, n_jobs=1, verbose=-1).fit(x, y),
        ),
        "P10-xgb": (
            "xgboost",
            xgb.XGBClassifier(
                n_estimators=trees,
                max_depth=6,
                n_jobs=1,
                tree_method="hist",
                enable_categorical=True,
            ).fit(x, y),
        ),
    }


def _native(flavor: str, model, x: pd.DataFrame):
    """The library's own contributions on the typed frame, (rows, features, outputs)."""
    if flavor == "xgboost":
        import xgboost as xgb

        booster = model.get_booster()

        def call():
            return booster.predict(xgb.DMatrix(x, enable_categorical=True), pred_contribs=True)
    else:

        def call():
            return model.predict(x, pred_contrib=True)

    return call, call()[:, :-1, None]


def _p10(rid: str, flavor: str, model, x: pd.DataFrame, rounds: int):
    from eaas.explain.tabular.tree_inputs import native_matrix
    from eaas.explain.tabular.treeshap import FastTreeShap

    t0 = time.perf_counter()
    fast = FastTreeShap(model, flavor, x.shape[1])
    prep = time.perf_counter() - t0

    def ours():
        return fast.shap_values(native_matrix(model, flavor, x))[0]

    native, ref = _native(flavor, model, x)  # the reference call also warms both up
    phi = ours()
    err, scale = float(np.abs(phi - ref).max()), float(np.abs(ref).max())
    med = interleaved({"ours": ours, "native": native}, rounds, warmup=False)
    o, n = med["ours"], med["native"]
    nan_rows = int(x.isna().any(axis=1).sum())
    return row(
        rid,
        f"{len(x)} rows, {len(N_CATEGORIES)} categorical + {N_NUMERIC} numeric columns: "
        f"eaas {o:.3f}s (codes + SHAP) / native {n:.3f}s (tables built in {prep:.2f}s)",
        o / n,
        "ratio",
        "<= 0.5",
        "<= 0.25",
        f"max |eaas - native| {err:.1e} (scale {scale:.2g}, {nan_rows} rows with NaN), "
        f"{'ok' if err <= 1e-4 * max(1.0, scale) else 'FAIL'}",
    )


def run(quick: bool = False) -> list:
    trees, n_rows, rounds = (100, 500, 3) if quick else (300, 2000, 5)
    x, y = _data(5000 + n_rows)
    train, test = x.iloc[:5000], x.iloc[5000:].reset_index(drop=True)
    models = _models(trees, train, y[:5000])
    return [_p10(rid, flavor, model, test, rounds) for rid, (flavor, model) in models.items()]


def main() -> None:
    print_rows(run("--quick" in sys.argv))


if __name__ == "__main__":
    main()
