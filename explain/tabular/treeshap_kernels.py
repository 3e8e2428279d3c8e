"""Numba kernels for exact path-dependent TreeSHAP with per-leaf subset tables.

For one leaf with value v, unique path features P (|P| = d), cover fractions z_j (the product
of child/parent cover over the splits on feature j) and x's one-fractions o_j in {0, 1}, the
leaf's game is f(S) = v * prod_{j in S} o_j * prod_{j in P \\ S} z_j. With A = {j : o_j = 1},
U = P \\ A and K(B) = sum_{S subset B} w(|S|, d) * prod_{j in P \\ S} z_j, w(s, d) =
s!(d-s-1)!/d!, its exact Shapley values are

    phi_i = -v * K(A)                         for i in U
    phi_i =  v * (1 - z_i) / z_i * K(A \\ i)   for i in A.

K depends only on the leaf, not on x, so it is tabulated once per model over all 2^d subsets
(FastTreeSHAP v2's idea); explaining a row is then O(d) per leaf instead of TreeSHAP's O(d^2).
Leaves too deep for the table budget (or with a zero cover fraction) take the same formula
with elementary symmetric polynomials at run time, O(d^2). Missing values follow each split's
default child; `mtype` 2 is LightGBM's "None" missing type (NaN is read as 0), 1 its "Zero".

Categorical splits (`mtype` >= CAT_LGBM) read a per-node table of the codes that go LEFT:
`cat_bits[off]` (int64) holds the number of 64-bit words, the words follow. A code c (the
float cast to an int, as the libraries do) inside the table goes left iff its bit is set; NaN
follows the node's default child; a code outside the table (negative, or past the last word)
goes where its library sends it: right in LightGBM, left in xgboost (its sets go right), the
default child in scikit-learn's HistGradientBoosting (unknown categories are missing there).

Players: `prepare_tree` merges path splits by `player[node]` (the feature's group, or the
feature itself), so a leaf's path "features" above are players and phi has one column each.
"""

from __future__ import annotations

import numpy as np
from numba import njit

CAT_LGBM = 3  # int cast first (-0.5 is category 0); negative or unlisted: right
CAT_XGB = 4  # negative: left; listed codes go right, so the table holds their complement
CAT_HGB = 5  # negative, unknown or past the table: the default (missing) child


@njit(cache=True)
def shapley_weights(dmax: int) -> np.ndarray:
    """W[d, s] = s! (d - s - 1)! / d! for 0 <= s < d <= dmax."""
    w = np.zeros((dmax + 1, dmax + 1))
    for d in range(1, dmax + 1):
        for s in range(d):
            acc = 1.0 / d
            # s!(d-s-1)!/d! = 1 / (d * C(d-1, s))
            c = 1.0
            for j in range(s):
                c = c * (d - 1 - j) / (j + 1)
            w[d, s] = acc / c
    return w


@njit(cache=True)
def tree_depth(left, right) -> int:
    """Edges on the longest root-to-leaf path (node 0 the root, leaf where left < 0)."""
    depth = np.zeros(len(left), np.int64)
    stack = np.empty(len(left), np.int64)
    stack[0] = 0
    top = 0
    best = 0
    while top >= 0:
        node = stack[top]
        top -= 1
        best = max(best, depth[node])
        if left[node] >= 0:
            for child in (left[node], right[node]):
                depth[child] = depth[node] + 1
                top += 1
                stack[top] = child
    return best


@njit(cache=True)
def prepare_tree(left, right, dflt, feat, player, thr, mtype, cat, cover, values, dmax):
    """One tree (node 0 the root, leaf where left < 0) -> preorder internal nodes with the slot
    of their player on the path, and per leaf its unique path players and cover fractions."""
    n = len(left)
    k = values.shape[1]
    path_f = np.full((n, dmax), -1, np.int64)
    path_z = np.ones((n, dmax))
    path_d = np.zeros(n, np.int64)
    new_id = np.full(n, -1, np.int64)  # internal: local index; leaf: -(leaf index) - 1
    order = np.empty(n, np.int64)
    stack = np.empty(n, np.int64)
    top = 0
    stack[0] = 0
    n_in = 0
    n_leaf = 0
    n_seen = 0
    while top >= 0:
        node = stack[top]
        top -= 1
        order[n_seen] = node
        n_seen += 1
        if left[node] < 0:
            new_id[node] = -n_leaf - 1
            n_leaf += 1
            continue
        new_id[node] = n_in
        n_in += 1
        for child in (right[node], left[node]):  # left popped first: preorder
            d = path_d[node]
            path_f[child, :d] = path_f[node, :d]
            path_z[child, :d] = path_z[node, :d]
            slot = d
            for j in range(d):
                if path_f[node, j] == player[node]:
                    slot = j
            ratio = cover[child] / cover[node] if cover[node] > 0 else 0.0
            if slot == d:
                path_f[child, d] = player[node]
                path_z[child, d] = ratio
                path_d[child] = d + 1
            else:
                path_z[child, slot] *= ratio
                path_d[child] = d
            top += 1
            stack[top] = child
    in_feat = np.empty(n_in, np.int64)
    in_thr = np.empty(n_in)
    in_mtype = np.empty(n_in, np.int64)
    in_cat = np.empty(n_in, np.int64)
    in_dleft = np.empty(n_in, np.bool_)
    in_slot = np.empty(n_in, np.int64)
    in_left = np.empty(n_in, np.int64)
    in_right = np.empty(n_in, np.int64)
    leaf_d = np.empty(n_leaf, np.int64)
    leaf_feat = np.full((n_leaf, dmax), 0, np.int64)
    leaf_z = np.ones((n_leaf, dmax))
    leaf_val = np.empty((n_leaf, k))
    for i in range(n_seen):
        node = order[i]
        c = new_id[node]
        if c < 0:
            li = -c - 1
            d = path_d[node]
            leaf_d[li] = d
            leaf_feat[li, :d] = path_f[node, :d]
            leaf_z[li, :d] = path_z[node, :d]
            leaf_val[li] = values[node]
            continue
        in_feat[c] = feat[node]
        in_thr[c] = thr[node]
        in_mtype[c] = mtype[node]
        in_cat[c] = cat[node]
        in_dleft[c] = dflt[node] == left[node]
        slot = path_d[node]
        for j in range(path_d[node]):
            if path_f[node, j] == player[node]:
                slot = j
        in_slot[c] = slot
        in_left[c] = new_id[left[node]]
        in_right[c] = new_id[right[node]]
    return (in_feat, in_thr, in_mtype, in_cat, in_dleft, in_slot, in_left, in_right,
            leaf_d, leaf_feat, leaf_z, leaf_val)


@njit(cache=True)
def fill_tables(leaf_d, leaf_z, leaf_tab, table, w):
    """table[leaf_tab[l] + B] = K(B) for every subset B of leaf l's path features."""
    for li in range(len(leaf_d)):
        off = leaf_tab[li]
        if off < 0:
            continue
        d = leaf_d[li]
        m = 1 << d
        e = np.zeros((m, d + 1))
        e[0, 0] = 1.0
        for b in range(1, m):
            h = 0
            while (b >> (h + 1)) > 0:
                h += 1
            prev = b ^ (1 << h)
            e[b, 0] = 1.0
            for j in range(1, d + 1):
                e[b, j] = e[prev, j] + leaf_z[li, h] * e[prev, j - 1]
        for b in range(m):
            size = 0
            zc = 1.0
            for j in range(d):
                if (b >> j) & 1:
                    size += 1
                else:
                    zc *= leaf_z[li, j]
            if size == d:
                table[off + b] = 0.0  # K(P) is never needed: U empty and A \\ i is smaller
                continue
            acc = 0.0
            for s in range(size + 1):
                acc += w[d, s] * e[b, size - s]
            table[off + b] = zc * acc


@njit(cache=True, nogil=True)
def _cat_left(fv, mtype, dleft, off, cat_bits):
    """A categorical split: is the code of fv in the node's table of left-going codes?"""
    if np.isnan(fv):
        return dleft
    outside = dleft if mtype == CAT_HGB else mtype == CAT_XGB
    if fv <= -1.0 or (fv < 0.0 and mtype != CAT_LGBM):
        return outside
    if fv >= cat_bits[off] * 64.0:
        return outside
    c = np.int64(fv)
    return ((cat_bits[off + 1 + (c >> 6)] >> (c & 63)) & 1) == 1


@njit(cache=True, nogil=True)
def _go_left(fv, thr, mtype, dleft, off, cat_bits):
    if mtype != 0:  # LightGBM's Zero/None missing types, categorical splits
        return _other_left(fv, thr, mtype, dleft, off, cat_bits)
    if np.isnan(fv):
        return dleft
    return fv <= thr


@njit(cache=True, nogil=True)
def _other_left(fv, thr, mtype, dleft, off, cat_bits):
    if mtype >= CAT_LGBM:
        return _cat_left(fv, mtype, dleft, off, cat_bits)
    if np.isnan(fv):
        if mtype == 2:
            return 0.0 <= thr
        return dleft
    if mtype == 1 and abs(fv) <= 1e-35:
        return dleft
    return fv <= thr


@njit(cache=True, nogil=True)
def _leaf_direct(phi_row, d, feats, z, vals, a_mask, w, e, e2):
    """The leaf's Shapley values by elementary symmetric polynomials, O(d^2)."""
    zu = 1.0
    e[0] = 1.0
    cnt = 0
    for j in range(d):
        if (a_mask >> j) & 1:
            cnt += 1
            e[cnt] = 0.0
            for m in range(cnt, 0, -1):
                e[m] += z[j] * e[m - 1]
        else:
            zu *= z[j]
    k_a = 0.0
    if cnt < d:
        for s in range(cnt + 1):
            k_a += w[d, s] * e[cnt - s]
        k_a *= zu
    for j in range(d):
        if (a_mask >> j) & 1:
            e2[0] = 1.0
            for m in range(1, cnt):
                e2[m] = e[m] - z[j] * e2[m - 1]
            acc = 0.0
            for s in range(cnt):
                acc += w[d, s] * e2[cnt - 1 - s]
            coef = (1.0 - z[j]) * zu * acc
        else:
            coef = -k_a
        f = feats[j]
        for o in range(len(vals)):
            phi_row[f, o] += coef * vals[o]


@njit(cache=True, nogil=True)
def _route(xs, i0, ni, in_feat, in_thr, in_mtype, in_cat, cat_bits, in_dleft, in_slot,
           in_left, in_right, viol_in, viol_leaf):
    """One row through one tree: per leaf, the bits of the path features the row does not
    follow (one comparison per internal node, preorder so parents come first)."""
    viol_in[0] = 0
    for a in range(ni):
        g = i0 + a
        v = viol_in[a]
        bit = np.int64(1) << in_slot[g]
        if _go_left(xs[in_feat[g]], in_thr[g], in_mtype[g], in_dleft[g], in_cat[g], cat_bits):
            lv, rv = v, v | bit
        else:
            lv, rv = v | bit, v
        c = in_left[g]
        if c >= 0:
            viol_in[c] = lv
        else:
            viol_leaf[-c - 1] = lv
        c = in_right[g]
        if c >= 0:
            viol_in[c] = rv
        else:
            viol_leaf[-c - 1] = rv


@njit(cache=True, nogil=True)
def _add_leaves(phi_s, l0, nl, viol_leaf, leaf_d, leaf_feat, leaf_z, leaf_r, leaf_val,
                leaf_tab, table, w, e, e2):
    """Every leaf's Shapley values for one row, from its table (or the run-time formula)."""
    n_out = leaf_val.shape[1]
    for b in range(nl):
        li = l0 + b
        d = leaf_d[li]
        a_mask = ((np.int64(1) << d) - 1) & ~viol_leaf[b]
        off = leaf_tab[li]
        if off < 0:
            _leaf_direct(phi_s, d, leaf_feat[li], leaf_z[li], leaf_val[li], a_mask, w, e, e2)
            continue
        k_a = table[off + a_mask]
        for j in range(d):
            bit = np.int64(1) << j
            if a_mask & bit:
                coef = leaf_r[li, j] * table[off + (a_mask ^ bit)]
            else:
                coef = -k_a
            f = leaf_feat[li, j]
            for o in range(n_out):
                phi_s[f, o] += coef * leaf_val[li, o]


@njit(cache=True, nogil=True)  # pure: service threads may explain at the same time
def explain_batch(x, phi, in_start, leaf_start, in_feat, in_thr, in_mtype, in_cat, cat_bits,
                  in_dleft, in_slot, in_left, in_right, leaf_d, leaf_feat, leaf_z, leaf_r,
                  leaf_val, leaf_tab, table, w):
    """Add every tree's Shapley values for every row of x into phi (rows, players, outputs).
    Trees outside, rows inside: a tree's nodes and tables stay in cache for the whole batch."""
    n_trees = len(in_start) - 1
    max_in, max_leaf = 1, 1
    for t in range(n_trees):
        max_in = max(max_in, in_start[t + 1] - in_start[t])
        max_leaf = max(max_leaf, leaf_start[t + 1] - leaf_start[t])
    viol_in = np.zeros(max_in, np.int64)
    viol_leaf = np.zeros(max_leaf, np.int64)
    e = np.zeros(w.shape[0] + 1)
    e2 = np.zeros(w.shape[0] + 1)
    for t in range(n_trees):
        i0, ni = in_start[t], in_start[t + 1] - in_start[t]
        l0, nl = leaf_start[t], leaf_start[t + 1] - leaf_start[t]
        if ni == 0:
            continue  # a stump moves only the base value
        for s in range(x.shape[0]):
            _route(x[s], i0, ni, in_feat, in_thr, in_mtype, in_cat, cat_bits, in_dleft,
                   in_slot, in_left, in_right, viol_in, viol_leaf)
            _add_leaves(phi[s], l0, nl, viol_leaf, leaf_d, leaf_feat, leaf_z, leaf_r,
                        leaf_val, leaf_tab, table, w, e, e2)
