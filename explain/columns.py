"""Typed tabular columns: what each model input takes, and the code space methods mask in.

A tabular model's inputs may be numbers, integers, booleans, strings or pandas categories. The
explainer keeps one `Column` per input (stored in its config). Methods that mask (permutation,
kernel, partition) work on float arrays: a `Codec` codes each string/category value as its index
among the column's known values (a value first seen in a request gets the next index, for that
call only), and decodes masked rows back into the frame the model takes, with its dtypes. So the
players are always the model's own input columns and the background keeps its mixed types.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import (
    is_bool_dtype,
    is_datetime64_any_dtype,
    is_float_dtype,
    is_integer_dtype,
    is_numeric_dtype,
)

from eaas.explain.validation import NO_NAN, cell_reason

TYPES = ("number", "integer", "boolean", "string", "category")
NUMERIC = ("number", "integer")
CODED = ("string", "category")
# MLflow's signature types -> ours (a signature says "string" for a pandas category column)
SIGNATURE = {"double": "number", "float": "number", "long": "integer", "integer": "integer",
             "boolean": "boolean", "string": "string"}


@dataclass(frozen=True)
class Column:
    """One model input: its type, its known values (string/category), what the model accepts."""

    name: str
    type: str
    categories: tuple[str, ...] = ()  # known values; a category column's dtype order first
    nullable: bool = False  # the model takes a missing value here
    unseen: bool = True  # the model takes a string/category value it has never seen

    @property
    def coded(self) -> bool:
        return self.type in CODED


@dataclass(frozen=True)
class Columns:
    items: tuple[Column, ...] = field(default_factory=tuple)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.items]

    @property
    def numeric(self) -> bool:
        """Numbers only: the explainer keeps the plain float path ("double" data)."""
        return all(c.type in NUMERIC for c in self.items)

    def to_dicts(self) -> list[dict[str, Any]]:
        return [{**asdict(c), "categories": list(c.categories)} for c in self.items]

    @classmethod
    def from_dicts(cls, items: list[dict[str, Any]] | None) -> Columns:
        return cls(tuple(
            Column(d["name"], d["type"], tuple(d.get("categories", ())),
                   bool(d.get("nullable", False)), bool(d.get("unseen", True)))
            for d in items or ()
        ))


def column_type(declared: str | None, dtype: Any, categorical: bool) -> str | None:
    """Our type of one input from its signature type, its example's dtype and whether the model
    itself treats it as categorical; None: a type eaas cannot take (dates, bytes...)."""
    if categorical or isinstance(dtype, pd.CategoricalDtype):
        return "category"
    if declared is not None:
        return SIGNATURE.get(declared)
    if dtype is None:
        return "number"
    if is_bool_dtype(dtype):
        return "boolean"
    if is_integer_dtype(dtype):
        return "integer"
    if is_float_dtype(dtype) or is_numeric_dtype(dtype):
        return "number"
    if is_datetime64_any_dtype(dtype):
        return None
    return "string"  # object / str columns: their values are judged per cell


def known_values(values: pd.Series, extra: list[str] | None = None) -> tuple[str, ...]:
    """A column's known string values: declared categories first (their order is the dtype's),
    then the example's others, sorted."""
    seen: dict[str, None] = {str(v): None for v in extra or []}
    if isinstance(values.dtype, pd.CategoricalDtype):
        seen.update({str(v): None for v in values.cat.categories})
    rest = sorted({str(v) for v in values.dropna().tolist()} - set(seen))
    return (*seen, *rest)


def is_missing(v: Any) -> bool:
    return v is None or v is pd.NA or (isinstance(v, (float, np.floating)) and math.isnan(v))


class Codec:
    """Mixed rows <-> float codes, for methods that mask. Immutable: a call's unseen values live
    in the vocabulary `encode` returns, never on the codec (re-entrant, no shared state)."""

    def __init__(self, columns: Columns) -> None:
        self.columns = columns
        self.vocab: list[tuple[str, ...]] = [c.categories for c in columns.items]

    def encode(self, rows: np.ndarray) -> tuple[np.ndarray, list[list[str]]]:
        """Object rows (n, features) of plain values -> (float codes, the call's vocabulary)."""
        rows = np.asarray(rows, dtype=object).reshape(-1, len(self.columns.items))
        out = np.empty(rows.shape, dtype=float)
        vocab = [list(v) for v in self.vocab]
        for j, col in enumerate(self.columns.items):
            if not col.coded:
                out[:, j] = [np.nan if is_missing(v) else float(v) for v in rows[:, j]]
                continue
            index = {v: i for i, v in enumerate(vocab[j])}
            codes = []
            for v in rows[:, j]:
                if is_missing(v):
                    codes.append(np.nan)
                    continue
                code = index.setdefault(str(v), len(index))
                if code == len(vocab[j]):
                    vocab[j].append(str(v))
                codes.append(code)
            out[:, j] = codes
        return out, vocab

    def decode(self, codes: np.ndarray, vocab: list[list[str]]) -> pd.DataFrame:
        """Float codes -> the frame the model takes, each column with its dtype."""
        cols: dict[str, Any] = {}
        for j, col in enumerate(self.columns.items):
            values = _decode_column(col, codes[:, j], vocab[j])
            if isinstance(values, np.ndarray) and values.dtype == object:
                # said to be objects: pandas would otherwise scan every value to infer "str"
                # (4x the cost of the rest of the decode)
                values = pd.Series(values, dtype=object, copy=False)
            cols[col.name] = values
        return pd.DataFrame(cols)

    def frame(self, rows: np.ndarray) -> pd.DataFrame:
        """Checked object rows -> the model's frame (encode then decode: the same dtypes)."""
        codes, vocab = self.encode(rows)
        return self.decode(codes, vocab)


def _decode_column(col: Column, codes: np.ndarray, vocab: list[str]) -> Any:
    missing = np.isnan(codes)
    if col.type == "number":
        return codes
    if col.type in ("integer", "boolean"):
        filled = np.where(missing, 0, codes)
        if col.type == "integer":
            ints = filled.astype(np.int64)
            # pandas' nullable dtype keeps the type and the gap
            return pd.arrays.IntegerArray(ints, missing) if missing.any() else ints
        flags = filled.astype(bool)
        return pd.arrays.BooleanArray(flags, missing) if missing.any() else flags
    ints = np.where(missing, -1, codes).astype(np.int64)
    if col.type == "category":  # from codes: no hashing of the values
        return pd.Categorical.from_codes(ints, categories=pd.Index(vocab))
    table = np.array([*vocab, None], dtype=object)
    return table[ints]  # -1: the last entry, None


# --- describing a model's columns at build time ----------------------------------------------

PROBE = "\x00eaas-unseen"  # a value no model has seen: does it take one?


def describe(
    features: list[str], declared: dict[str, str], example: pd.DataFrame | None,
    categorical: dict[str, list[str]], predict: Any, accepts_nan: bool,
) -> Columns:
    """Each input's type (signature, else the example's dtype, categorical where the model
    itself says so) and known values (the categories the model stored, then the example's).
    Where strings or categories are involved, whether the model takes a missing or an unseen
    value is asked of the model itself, once per column, on its own example: measured, not
    guessed. Raises ValueError naming a column it cannot take."""
    items = []
    for f in features:
        has = example is not None and f in example.columns
        values = example[f] if example is not None and has else pd.Series([], dtype=object)
        dtype = values.dtype if has else None
        kind = column_type(declared.get(f), dtype, f in categorical)
        if kind is None:
            said = declared.get(f) or str(dtype)  # the signature's word, else the dtype's
            raise ValueError(f"input column '{f[:100]}' is {said[:40]}")
        cats = known_values(values, categorical.get(f, [])) if kind in CODED else ()
        items.append(Column(f, kind, cats, nullable=accepts_nan))
    cols = Columns(tuple(items))
    if cols.numeric or example is None or not len(example):
        return cols
    return _probed(cols, example, predict)


def _probed(cols: Columns, example: pd.DataFrame, predict: Any) -> Columns:
    codec = Codec(cols)
    row = example[cols.names].head(1).to_numpy(dtype=object)
    out = []
    for j, col in enumerate(cols.items):
        gap = row.copy()
        gap[0, j] = None
        nullable = _takes(codec, gap, predict)
        unseen = True
        if col.coded:
            new = row.copy()
            new[0, j] = PROBE
            unseen = _takes(codec, new, predict)
        out.append(Column(col.name, col.type, col.categories, nullable, unseen))
    return Columns(tuple(out))


def _takes(codec: Codec, row: np.ndarray, predict: Any) -> bool:
    try:
        y = np.asarray(predict(codec.frame(row)), dtype=float)
    except Exception:  # the model refused the value: that is the answer sought
        return False
    return bool(np.isfinite(y).all())


# --- the per-cell rule of a mixed row ---------------------------------------------------------

def value_reason(col: Column, v: Any) -> tuple[str | None, Any]:
    """(why the value is refused or None, the value as the model takes it: a Python float, int,
    bool, str or None). Messages never hold the value."""
    if is_missing(v):
        return (None if col.nullable else NO_NAN), None
    if col.type in NUMERIC:
        if isinstance(v, str):
            return "not a number", None
        why = cell_reason(v, col.nullable)
        if why is not None:
            return why, None
        if col.type == "integer":
            if float(v) != int(v):
                return "not an integer", None
            return None, int(v)
        return None, float(v)
    if col.type == "boolean":
        if isinstance(v, (bool, np.bool_)):
            return None, bool(v)
        return "not a boolean (true or false)", None
    if not isinstance(v, str):
        return "not a string", None
    if not col.unseen and v not in col.categories:
        return "a value the model has not seen, and it cannot take one", None
    return None, v
