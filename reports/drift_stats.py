"""The numbers of an attribution drift report, from two sets of explained rows.

Per output and feature (or word): mean |SHAP| on each side, its change and rank change, a
two-sample Mann-Whitney U test on the per-row |SHAP| values with Benjamini-Hochberg correction
over every (output, feature) test, and the NDCG of the current ranking against the baseline's
as SageMaker Clarify defines it: DCG = sum_i F(x_i) / log2(i + 1) over the current top-k
features x_i, with relevance F the baseline's mean |SHAP|; iDCG the same over the baseline's
own top k; NDCG = DCG / iDCG (1 when nothing moved).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.stats import mannwhitneyu

ALPHA = 0.05
TOP_K = 10


def per_row_abs(frame: pd.DataFrame, output: int, features: list[str]) -> np.ndarray:
    """(rows, features) |SHAP| per row; a word absent from a row is 0, repeats add up."""
    index = {f: j for j, f in enumerate(features)}
    out = np.zeros((len(frame), len(features)))
    for i, (feats, vals) in enumerate(zip(frame["features"], frame["values"], strict=True)):
        for f, v in zip(feats, vals[output], strict=True):
            j = index.get(str(f))
            if j is not None:
                out[i, j] += abs(float(v))
    return out


def vocabulary(base: pd.DataFrame, cur: pd.DataFrame, limit: int) -> list[str]:
    """Features of both sides: for text, the `limit` most important words of either side."""
    seen: dict[str, float] = {}
    for frame in (base, cur):
        acc: dict[str, float] = {}
        for feats, vals in zip(frame["features"], frame["values"], strict=True):
            mags = np.abs(np.stack([np.asarray(v, dtype=float) for v in vals])).max(axis=0)
            for f, m in zip(feats, mags, strict=True):
                acc[str(f)] = acc.get(str(f), 0.0) + float(m)
        for f in sorted(acc, key=lambda k: -acc[k])[:limit]:
            seen.setdefault(f, 0.0)
    return list(seen)


def ndcg(baseline: pd.Series, current: pd.Series, k: int = TOP_K) -> float:
    """Clarify's NDCG of the current importance ranking, relevance from the baseline's."""
    k = min(k, len(baseline))
    rel = baseline.to_dict()
    cur_top = list(current.sort_values(ascending=False, kind="stable").index[:k])
    ideal = list(baseline.sort_values(ascending=False, kind="stable").index[:k])
    dcg = sum(rel.get(f, 0.0) / math.log2(i + 2) for i, f in enumerate(cur_top))
    idcg = sum(rel[f] / math.log2(i + 2) for i, f in enumerate(ideal))
    return 1.0 if idcg == 0 else float(dcg / idcg)


def bh(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values)."""
    n = len(p)
    if n == 0:
        return p
    order = np.argsort(p)
    ranked = p[order] * n / np.arange(1, n + 1)
    q = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(n)
    out[order] = np.minimum(q, 1.0)
    return out


def _test(a: np.ndarray, b: np.ndarray) -> float:
    if np.array_equal(np.sort(a), np.sort(b)):
        return 1.0  # the same sample: nothing to test (scipy's tie handling aside)
    p = mannwhitneyu(a, b, alternative="two-sided").pvalue
    return 1.0 if not np.isfinite(p) else float(p)


def output_table(base: np.ndarray, cur: np.ndarray, features: list[str]) -> pd.DataFrame:
    """One row per feature for one output, before the correction across outputs."""
    mb, mc = base.mean(axis=0), cur.mean(axis=0)
    rank_b = pd.Series(mb, index=features).rank(ascending=False, method="first").astype(int)
    rank_c = pd.Series(mc, index=features).rank(ascending=False, method="first").astype(int)
    table = pd.DataFrame(
        {
            "feature": features,
            "baseline": mb,
            "current": mc,
            "change": mc - mb,
            "rank_baseline": rank_b.to_numpy(),
            "rank_current": rank_c.to_numpy(),
            "p_value": [_test(base[:, j], cur[:, j]) for j in range(len(features))],
        }
    )
    table["rank_change"] = table["rank_baseline"] - table["rank_current"]  # > 0: more important
    return table


def drift_tables(
    base: pd.DataFrame, cur: pd.DataFrame, outputs: list[str], fixed_features: bool,
    k: int = TOP_K,
) -> tuple[dict[str, pd.DataFrame], dict[str, float]]:
    """Per output: the feature table (sorted by the size of the move) and the NDCG; rows with
    their own words (text) are compared over their shared vocabulary."""
    if fixed_features:
        features = [str(f) for f in base["features"].iloc[0]]
    else:
        features = vocabulary(base, cur, limit=50)
    tables, scores = {}, {}
    for o, name in enumerate(outputs):
        t = output_table(per_row_abs(base, o, features), per_row_abs(cur, o, features), features)
        tables[name] = t
        b = pd.Series(t["baseline"].to_numpy(), index=features)
        c = pd.Series(t["current"].to_numpy(), index=features)
        scores[name] = ndcg(b, c, k)
    q = bh(np.concatenate([t["p_value"].to_numpy() for t in tables.values()]))
    start = 0
    for name, t in tables.items():
        t["q_value"] = q[start : start + len(t)]
        t["significant"] = t["q_value"] < ALPHA
        start += len(t)
        order = t["change"].abs().sort_values(ascending=False, kind="stable").index
        tables[name] = t.loc[order].reset_index(drop=True)  # biggest movers first
    return tables, scores
