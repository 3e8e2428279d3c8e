"""Exact path-dependent TreeSHAP, extracted once per model and run by numba kernels.

xgboost and sklearn trees come from shap's own `TreeEnsemble` parser (which already turns
xgboost's `x < t` into `x <= nextafter(t)` and knows the default child for missing values);
xgboost's categorical splits, which that parser reads as numeric ones, are overlaid here from
the model's JSON. LightGBM trees are read from `dump_model()` here, because shap's parser
ignores LightGBM's missing-value types and categorical sets; scikit-learn's
HistGradientBoosting predictors are read here too, because shap's reader ignores their
categorical splits and the column order their preprocessor gives the trees. The numbers are
the same Shapley values the native libraries compute (see `treeshap_kernels` for the formula
and for each library's rule at a categorical split); anything this module cannot represent
exactly (linear trees, a non-NaN `missing` marker) raises `NotSupported`, and the caller falls
back to shap's TreeExplainer.

Categorical features are read as the libraries' own integer codes: `tree_inputs.native_matrix`
turns a typed DataFrame into them.
"""

from __future__ import annotations

import json
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


class _Bits:
    """Every categorical node's table of left-going codes, in one flat int64 array: at a node's
    offset the number of 64-bit words, then the words (bit c of the table = code c)."""

    def __init__(self) -> None:
        self.words: list[int] = [0]  # offset 0: an empty table, never read

    def add(self, left: np.ndarray, pad: bool = False) -> int:
        """`left`: one bool per code 0..n-1, `pad` for the codes up to the word's end (those
        past the table go where the kernel sends them); returns the node's offset."""
        n = max(1, -(-len(left) // 64))
        packed = np.full(n * 64, pad)
        packed[: len(left)] = left
        off = len(self.words)
        self.words += [n, *np.packbits(packed, bitorder="little").view("<i8").tolist()]
        return off

    def array(self) -> np.ndarray:
        return np.array(self.words, np.int64)


@dataclass
class _Dense:
    """Trees as padded arrays (T, nodes): the layout shap's TreeEnsemble uses."""

    left: np.ndarray
    right: np.ndarray
    default: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    mtype: np.ndarray  # 0-2 numeric (see treeshap_kernels), K.CAT_* categorical
    cover: np.ndarray
    values: np.ndarray  # (T, nodes, outputs)
    num_nodes: np.ndarray
    base: np.ndarray  # (outputs,)
    input_dtype: Any
    cat: np.ndarray | None = None  # (T, nodes) offsets into cat_bits, for categorical nodes
    cat_bits: np.ndarray | None = None


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
    dense = _Dense(
        ens.children_left[:limit], ens.children_right[:limit], ens.children_default[:limit],
        ens.features[:limit], ens.thresholds[:limit].astype(float),
        np.zeros_like(ens.features[:limit]), ens.node_sample_weight[:limit].astype(float),
        ens.values[:limit].astype(float), ens.num_nodes[:limit],
        np.asarray(ens.base_offset, dtype=float).reshape(-1), ens.input_dtype,
    )
    if getattr(ens, "model_type", None) == "xgboost":
        booster = getattr(model, "get_booster", lambda: model)()
        dense.base = _xgb_base(booster, dense.base)
        if ens.cat_feature_indices is not None:
            _xgb_categories(booster, dense)
    return dense


def _xgb_base(booster: Any, base: np.ndarray) -> np.ndarray:
    """xgboost >= 3.1 keeps one intercept per class (shap reads the first only): the margin
    of each, by the link shap applies to the first."""
    learner = json.loads(booster.save_config())["learner"]
    raw = json.loads(str(learner["learner_model_param"]["base_score"]))  # "[5E-1]" or "5E-1"
    scores = np.atleast_1d(np.asarray(raw, dtype=float))
    if scores.size <= 1 or scores.size != base.size and base.size != 1:
        return base
    name = learner["objective"]["name"]
    if name in ("binary:logistic", "reg:logistic"):
        return np.log(scores / (1.0 - scores))
    if name in ("reg:gamma", "reg:tweedie", "count:poisson", "survival:cox", "survival:aft"):
        return np.log(scores)
    return scores


def _xgb_categories(booster: Any, dense: _Dense) -> None:
    """Overlay xgboost's categorical splits: the codes a node lists go RIGHT, every other code
    (negative ones and those past the list included) goes left, NaN takes the default child."""
    gbm = json.loads(booster.save_raw("json"))["learner"]["gradient_booster"]
    trees = gbm.get("gbtree", gbm)["model"]["trees"]
    bits, cat = _Bits(), np.zeros(dense.feature.shape, np.int64)
    for t in range(len(dense.num_nodes)):
        tree = trees[t]
        for node, beg, size in zip(tree["categories_nodes"], tree["categories_segments"],
                                   tree["categories_sizes"], strict=True):
            listed = np.asarray(tree["categories"][beg:beg + size], np.int64)
            left = np.ones(int(listed.max()) + 1, bool)
            left[listed] = False
            cat[t, node] = bits.add(left, pad=True)
            dense.mtype[t, node] = K.CAT_XGB
    dense.cat, dense.cat_bits = cat, bits.array()


def _lgbm_nodes(node: dict, out: list, bits: _Bits) -> int:
    """Append `node` and its subtree to `out` in preorder; return its index. A categorical
    node lists the codes that go left ("1||3||7"); NaN and every other code go right."""
    idx = len(out)
    if "split_index" not in node:
        out.append((-1, -1, -1, 0.0, 0, False, 0, node.get("leaf_count", 0), node["leaf_value"]))
        return idx
    out.append(None)
    li = _lgbm_nodes(node["left_child"], out, bits)
    ri = _lgbm_nodes(node["right_child"], out, bits)
    if node["decision_type"] == "==":
        codes = np.array([int(c) for c in str(node["threshold"]).split("||")], np.int64)
        left = np.zeros(int(codes.max()) + 1, bool)
        left[codes] = True
        mtype, dleft, thr, cat = K.CAT_LGBM, False, 0.0, bits.add(left)
    elif node["decision_type"] == "<=":
        mtype, dleft = MISSING[node["missing_type"]], bool(node["default_left"])
        thr, cat = float(node["threshold"]), 0
    else:
        raise NotSupported(f"LightGBM decision type {node['decision_type']}")
    out[idx] = (li, ri, node["split_feature"], thr, mtype, dleft, cat,
                node["internal_count"], 0.0)
    return idx


def _from_lightgbm(booster: Any) -> _Dense:
    dump = booster.dump_model()
    per_iter = int(dump.get("num_tree_per_iteration", 1))
    trees, bits = [], _Bits()
    for info in dump["tree_info"]:
        if info.get("is_linear"):
            raise NotSupported("linear trees")
        nodes: list = []
        _lgbm_nodes(info["tree_structure"], nodes, bits)
        trees.append(nodes)
    t, m = len(trees), max(len(n) for n in trees)
    left, right, feat = (-np.ones((t, m), np.int64) for _ in range(3))
    thr, cover = np.zeros((t, m)), np.zeros((t, m))
    mtype, cat, default = (np.zeros((t, m), np.int64) for _ in range(3))
    values = np.zeros((t, m, per_iter))
    for i, nodes in enumerate(trees):
        for j, (lc, rc, f, th, mt, dleft, off, cnt, val) in enumerate(nodes):
            left[i, j], right[i, j], feat[i, j], thr[i, j], cover[i, j] = lc, rc, f, th, cnt
            mtype[i, j], cat[i, j] = mt, off
            default[i, j] = lc if dleft else rc
            values[i, j, i % per_iter] = val
    return _Dense(left, right, default, feat, thr, mtype, cover, values,
                  np.array([len(n) for n in trees]), np.zeros(per_iter), np.float64,
                  cat, bits.array())


def _hgb_tree(p: Any, known: np.ndarray | None, f_map: np.ndarray | None,
              bits: _Bits) -> tuple[np.ndarray, ...]:
    """One HistGradientBoosting predictor: (left, right, default, feature, threshold, mtype,
    cat, cover, value) over its nodes, features still in the order its trees see them."""
    nodes = p.nodes
    leaf = nodes["is_leaf"].astype(bool)
    left = np.where(leaf, -1, nodes["left"].astype(np.int64))  # uint32 there
    right = np.where(leaf, -1, nodes["right"].astype(np.int64))
    dleft = nodes["missing_go_to_left"].astype(bool)
    mtype, cat = np.zeros(len(nodes), np.int64), np.zeros(len(nodes), np.int64)
    for j in np.flatnonzero(nodes["is_categorical"].astype(bool) & ~leaf):
        # sklearn's rule: a code in the left bitset goes left, another known code right, and
        # an unknown one (or a negative one) takes the missing values' child
        in_left = _bitset(p.raw_left_cat_bitsets[nodes["bitset_idx"][j]])
        known_f = _bitset(known[f_map[nodes["feature_idx"][j]]])  # type: ignore[index]
        cat[j] = bits.add(in_left | (~known_f & dleft[j]))
        mtype[j] = K.CAT_HGB
    feature = np.where(leaf, -1, nodes["feature_idx"].astype(np.int64))
    return (left, right, np.where(dleft, left, right), feature,
            nodes["num_threshold"].astype(float), mtype, cat, nodes["count"].astype(float),
            nodes["value"].astype(float))


def _bitset(words: np.ndarray) -> np.ndarray:
    """sklearn's 8 x uint32 bitset as 256 bools (bit c = code c)."""
    return np.unpackbits(np.asarray(words, "<u4").view(np.uint8), bitorder="little").astype(bool)


def _from_hgb(model: Any) -> _Dense:
    """HistGradientBoosting: trees see the categorical columns first (its ColumnTransformer's
    order); features are mapped back to the model's input columns here."""
    known = f_map = None
    order = np.arange(model.n_features_in_)
    if model.is_categorical_ is not None:
        known, f_map = model._bin_mapper.make_known_categories_bitsets()
        cats = np.asarray(model.is_categorical_, bool)
        order = np.concatenate([np.flatnonzero(cats), np.flatnonzero(~cats)])
    n_out, bits = model.n_trees_per_iteration_, _Bits()
    trees = [(k, _hgb_tree(p, known, f_map, bits))
             for per_iter in model._predictors for k, p in enumerate(per_iter)]
    t, m = len(trees), max(len(tr[0]) for _, tr in trees)
    # left, right, default, feature, threshold, mtype, cat, cover: (T, nodes) each
    cols = [np.full((t, m), -1, np.int64) for _ in range(4)] + [np.zeros((t, m)),
            np.zeros((t, m), np.int64), np.zeros((t, m), np.int64), np.zeros((t, m))]
    values = np.zeros((t, m, n_out))
    for i, (k, tree) in enumerate(trees):
        n = len(tree[0])
        for col, v in zip(cols, tree[:8], strict=True):
            col[i, :n] = v
        cols[3][i, :n] = np.where(tree[3] >= 0, order[np.maximum(tree[3], 0)], -1)
        values[i, :n, k] = np.where(tree[0] < 0, tree[8], 0.0)
    left, right, default, feat, thr, mtype, cat, cover = cols
    return _Dense(left, right, default, feat, thr, mtype, cover, values,
                  np.array([len(tr[0]) for _, tr in trees]),
                  np.asarray(model._baseline_prediction, float).reshape(-1), np.float64,
                  cat, bits.array())


def _read(model: Any, flavor: str) -> _Dense:
    if flavor == "lightgbm":
        return _from_lightgbm(getattr(model, "booster_", model))
    if flavor == "sklearn" and type(model).__name__.startswith("HistGradientBoosting"):
        return _from_hgb(model)
    return _from_shap(model)


def _player_map(players: np.ndarray | list[int] | None, n_features: int) -> tuple[np.ndarray, int]:
    if players is None:
        return np.arange(n_features, dtype=np.int64), n_features
    p = np.asarray(players)
    if p.shape != (n_features,) or not np.issubdtype(p.dtype, np.integer) or (p < 0).any():
        raise ValueError(f"players must be {n_features} non-negative ints, one per feature")
    return p.astype(np.int64), int(p.max()) + 1 if n_features else 0


class FastTreeShap:
    """Per-model tables built once; `shap_values(x)` -> (phi (n, players, outputs), base).

    `players` (optional, one int per model feature) groups features: phi then has one column
    per group, the exact Shapley values of the path-dependent game whose players are the
    groups (a split on a feature of a player in S follows x, any other split weighs both
    children by cover). None: every feature its own player.
    """

    def __init__(self, model: Any, flavor: str, n_features: int,
                 players: np.ndarray | list[int] | None = None) -> None:
        dense = _read(model, flavor)
        self.n_features = n_features
        self.player, self.n_players = _player_map(players, n_features)
        self.input_dtype = dense.input_dtype
        self.n_outputs = dense.values.shape[2]
        if dense.cat is None:
            dense.cat = np.zeros_like(dense.feature)
        self.cat_bits = dense.cat_bits if dense.cat_bits is not None else np.zeros(1, np.int64)
        # path arrays are sized by the deepest path, measured here rather than trusted
        depth = max(K.tree_depth(dense.left[t, :n].astype(np.int64),
                                 dense.right[t, :n].astype(np.int64))
                    for t, n in enumerate(dense.num_nodes))
        dmax = max(1, min(self.n_players, depth))
        if dmax > 62:
            raise NotSupported("paths with more than 62 distinct players (64-bit masks)")
        parts = [self._prepare(dense, t, n, dmax) for t, n in enumerate(dense.num_nodes)]
        cat = [np.concatenate([p[i] for p in parts]) for i in range(12)]
        (self.in_feat, self.in_thr, self.in_mtype, self.in_cat, self.in_dleft, self.in_slot,
         self.in_left, self.in_right, self.leaf_d, self.leaf_feat, self.leaf_z,
         self.leaf_val) = cat
        self.in_start = np.concatenate([[0], np.cumsum([len(p[0]) for p in parts])])
        self.leaf_start = np.concatenate([[0], np.cumsum([len(p[8]) for p in parts])])
        # expected value of each tree under its covers: sum_l v_l * prod_j z_lj
        reach = np.prod(np.where(np.arange(dmax) < self.leaf_d[:, None], self.leaf_z, 1.0), 1)
        self.base = dense.base + reach @ self.leaf_val
        self.w = K.shapley_weights(dmax)
        self._tables(dmax)

    def _prepare(self, dense: _Dense, t: int, n: int, dmax: int) -> tuple:
        feat = dense.feature[t, :n].astype(np.int64)
        player = np.where(feat >= 0, self.player[np.maximum(feat, 0)], -1)
        assert dense.cat is not None
        return K.prepare_tree(
            dense.left[t, :n].astype(np.int64), dense.right[t, :n].astype(np.int64),
            dense.default[t, :n].astype(np.int64), feat, player, dense.threshold[t, :n],
            dense.mtype[t, :n].astype(np.int64), dense.cat[t, :n].astype(np.int64),
            dense.cover[t, :n], np.ascontiguousarray(dense.values[t, :n]), dmax,
        )

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
        phi = np.zeros((x.shape[0], self.n_players, self.n_outputs))
        K.explain_batch(
            x, phi, self.in_start, self.leaf_start, self.in_feat, self.in_thr, self.in_mtype,
            self.in_cat, self.cat_bits, self.in_dleft, self.in_slot, self.in_left,
            self.in_right, self.leaf_d, self.leaf_feat, self.leaf_z, self.leaf_r,
            self.leaf_val, self.leaf_tab, self.table, self.w,
        )
        return phi, self.base
