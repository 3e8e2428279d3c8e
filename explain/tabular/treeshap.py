"""Exact path-dependent TreeSHAP, extracted once per model and run by numba kernels.

xgboost and sklearn trees come from shap's own `TreeEnsemble` parser (which already turns
xgboost's `x < t` into `x <= nextafter(t)` and knows the default child for missing values);
LightGBM trees are read from `dump_model()` here, because shap's parser ignores LightGBM's
missing-value types. The numbers are the same Shapley values the native libraries compute
(see `treeshap_kernels` for the formula); anything this module cannot represent exactly
(categorical splits, linear trees, a non-NaN `missing` marker) raises `NotSupported`, and the
caller falls back to shap's TreeExplainer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from eaas.explain.tabular import treeshap_kernels as K

# Per-leaf tables hold 2^d doubles; beyond this many in total (or d > MAX_TABLE_DEPTH) leaves
# use the O(d^2) run-time formula instead. 24M doubles = 192 MB at most per model.
TABLE_BUDGET = 24_000_000
MAX_TABLE_DEPTH = 12
MISSING = {"None": 2, "Zero": 1, "NaN": 0}


class NotSupported(Exception):
    """The model has something the fast path does not represent exactly."""


@dataclass
class _Dense:
    """Trees as padded arrays (T, nodes): the layout shap's TreeEnsemble uses."""

    left: np.ndarray
    right: np.ndarray
    default: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    mtype: np.ndarray
    cover: np.ndarray
    values: np.ndarray  # (T, nodes, outputs)
    num_nodes: np.ndarray
    base: np.ndarray  # (outputs,)
    input_dtype: Any


def _from_shap(model: Any) -> _Dense:
    from shap.explainers._tree import TreeEnsemble

    missing = getattr(model, "missing", None)  # xgboost's sklearn wrapper: NaN by default
    if missing is not None and not np.isnan(missing):
        raise NotSupported("xgboost with a non-NaN missing marker")
    ens = TreeEnsemble(model)
    if ens.trees is None or not ens.trees:
        raise NotSupported("no trees parsed")
    limit = ens.tree_limit or len(ens.trees)
    internal = ens.children_left[:limit] >= 0
    if (ens.threshold_types[:limit][internal] != 0).any():
        raise NotSupported("categorical splits")
    return _Dense(
        ens.children_left[:limit], ens.children_right[:limit], ens.children_default[:limit],
        ens.features[:limit], ens.thresholds[:limit].astype(float),
        np.zeros_like(ens.features[:limit]), ens.node_sample_weight[:limit].astype(float),
        ens.values[:limit].astype(float), ens.num_nodes[:limit],
        np.asarray(ens.base_offset, dtype=float).reshape(-1), ens.input_dtype,
    )


def _lgbm_nodes(node: dict, out: list) -> int:
    """Append `node` and its subtree to `out` in preorder; return its index."""
    idx = len(out)
    if "split_index" not in node:
        out.append((-1, -1, -1, 0.0, 0, node.get("leaf_count", 0), node["leaf_value"]))
        return idx
    if node["decision_type"] != "<=":
        raise NotSupported("categorical splits")
    out.append(None)
    li = _lgbm_nodes(node["left_child"], out)
    ri = _lgbm_nodes(node["right_child"], out)
    out[idx] = (li, ri, node["split_feature"], float(node["threshold"]),
                MISSING[node["missing_type"]] * 4 + (1 if node["default_left"] else 0),
                node["internal_count"], 0.0)
    return idx


def _from_lightgbm(booster: Any) -> _Dense:
    dump = booster.dump_model()
    per_iter = int(dump.get("num_tree_per_iteration", 1))
    trees = []
    for info in dump["tree_info"]:
        if info.get("is_linear"):
            raise NotSupported("linear trees")
        nodes: list = []
        _lgbm_nodes(info["tree_structure"], nodes)
        trees.append(nodes)
    t, m = len(trees), max(len(n) for n in trees)
    left, right, feat = (-np.ones((t, m), np.int64) for _ in range(3))
    thr, cover = np.zeros((t, m)), np.zeros((t, m))
    mtype, default = np.zeros((t, m), np.int64), -np.ones((t, m), np.int64)
    values = np.zeros((t, m, per_iter))
    for i, nodes in enumerate(trees):
        for j, (lc, rc, f, th, code, cnt, val) in enumerate(nodes):
            left[i, j], right[i, j], feat[i, j], thr[i, j], cover[i, j] = lc, rc, f, th, cnt
            mtype[i, j] = code // 4
            default[i, j] = lc if code % 4 else rc
            values[i, j, i % per_iter] = val
    return _Dense(left, right, default, feat, thr, mtype, cover, values,
                  np.array([len(n) for n in trees]), np.zeros(per_iter), np.float64)


class FastTreeShap:
    """Per-model tables built once; `shap_values(x)` -> (phi (n, features, outputs), base)."""

    def __init__(self, model: Any, flavor: str, n_features: int) -> None:
        if flavor == "lightgbm":
            booster = getattr(model, "booster_", model)
            dense = _from_lightgbm(booster)
        else:
            dense = _from_shap(model)
        self.n_features = n_features
        self.input_dtype = dense.input_dtype
        self.n_outputs = dense.values.shape[2]
        # path arrays are sized by the deepest path, measured here rather than trusted
        depth = max(K.tree_depth(dense.left[t, :n].astype(np.int64),
                                 dense.right[t, :n].astype(np.int64))
                    for t, n in enumerate(dense.num_nodes))
        dmax = max(1, min(n_features, depth))
        if dmax > 62:
            raise NotSupported("paths with more than 62 distinct features (64-bit masks)")
        parts = [
            K.prepare_tree(
                dense.left[t, :n].astype(np.int64), dense.right[t, :n].astype(np.int64),
                dense.default[t, :n].astype(np.int64), dense.feature[t, :n].astype(np.int64),
                dense.threshold[t, :n], dense.mtype[t, :n].astype(np.int64), dense.cover[t, :n],
                np.ascontiguousarray(dense.values[t, :n]), dmax,
            )
            for t, n in enumerate(dense.num_nodes)
        ]
        cat = [np.concatenate([p[i] for p in parts]) for i in range(11)]
        (self.in_feat, self.in_thr, self.in_mtype, self.in_dleft, self.in_slot, self.in_left,
         self.in_right, self.leaf_d, self.leaf_feat, self.leaf_z, self.leaf_val) = cat
        self.in_start = np.concatenate([[0], np.cumsum([len(p[0]) for p in parts])])
        self.leaf_start = np.concatenate([[0], np.cumsum([len(p[7]) for p in parts])])
        # expected value of each tree under its covers: sum_l v_l * prod_j z_lj
        reach = np.prod(np.where(np.arange(dmax) < self.leaf_d[:, None], self.leaf_z, 1.0), 1)
        self.base = dense.base + reach @ self.leaf_val
        self.w = K.shapley_weights(dmax)
        self._tables(dmax)

    def _tables(self, dmax: int) -> None:
        z = self.leaf_z
        with np.errstate(divide="ignore", invalid="ignore"):
            self.leaf_r = np.where(z > 0, (1.0 - z) / z, 0.0)
        cols = np.arange(dmax) < self.leaf_d[:, None]
        ok = (self.leaf_d <= MAX_TABLE_DEPTH) & ~((z <= 0) & cols).any(axis=1)
        sizes = np.where(ok, 1 << np.minimum(self.leaf_d, MAX_TABLE_DEPTH), 0)
        ok &= np.cumsum(sizes) <= TABLE_BUDGET
        sizes = np.where(ok, sizes, 0)
        offs = np.cumsum(sizes) - sizes
        self.leaf_tab = np.where(ok, offs, -1).astype(np.int64)
        self.table = np.zeros(max(1, int(sizes.sum())))
        K.fill_tables(self.leaf_d, z, self.leaf_tab, self.table, self.w)
        self.tabled_leaves = float(ok.mean()) if len(ok) else 1.0

    def prepare_input(self, x: np.ndarray) -> np.ndarray:
        """The model's own rounding: xgboost and sklearn compare float32 inputs."""
        x = np.asarray(x, dtype=float)
        if self.input_dtype != np.float64:
            x = x.astype(self.input_dtype).astype(float)
        return np.ascontiguousarray(x)

    def shap_values(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = self.prepare_input(x)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"expected (rows, {self.n_features}) input, got {x.shape}")
        phi = np.zeros((x.shape[0], self.n_features, self.n_outputs))
        K.explain_batch(
            x, phi, self.in_start, self.leaf_start, self.in_feat, self.in_thr, self.in_mtype,
            self.in_dleft, self.in_slot, self.in_left, self.in_right, self.leaf_d,
            self.leaf_feat, self.leaf_z, self.leaf_r, self.leaf_val, self.leaf_tab, self.table,
            self.w,
        )
        return phi, self.base
