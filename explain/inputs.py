"""Input rules, one per kind of input a method takes: the only place that knows the kinds.

The engine, the REST data plane, the pyfunc and the Spark worker all ask the rule of their
explainer (`rule_for`): how to check instances, which parameters apply, what `data` holds, how
many rows a Spark batch or a stop check should span. Adding a kind of input is one class here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, cast

import numpy as np
import pandas as pd

from eaas.explain.columns import NUMERIC, Columns, describe, value_reason
from eaas.explain.errors import InvalidInput, TooLarge, UnsupportedModel
from eaas.explain.validation import (
    check_columns,
    check_tabular,
    check_text,
    invalid,
    tabular_split,
    text_reason,
)

if TYPE_CHECKING:
    from eaas.explain.source import SourceModel

COMMON_PARAMS = ("max_evals", "seed", "tolerance")


class InputRule(ABC):
    kind: ClassVar[str]
    data_type: ClassVar[str]  # what `data` holds per feature: "double" | "string"
    params: ClassVar[tuple[str, ...]] = COMMON_PARAMS  # the parameters that apply
    chunk: ClassVar[int]  # instances between two checks for abandoned work
    batch_rows: ClassVar[int]  # rows per Spark Arrow batch (cheap methods: big; text: small)
    # the background is feature rows the methods mask with (stored with the explainer, rows
    # with missing values dropped); otherwise it is only examples for the build's charts
    background_is_data: ClassVar[bool] = True
    chart_rows: ClassVar[int | None] = None  # rows explained for the charts (None: all)
    player: ClassVar[str] = "feature"  # what one attribution is for, as reports name it
    # every row has the same features in the same order (columns); else each row its own (words)
    fixed_features: ClassVar[bool] = True

    def __init__(
        self, features: list[str], accepts_nan: bool = False, columns: Columns | None = None
    ) -> None:
        self.features = list(features)
        self.accepts_nan = accepts_nan
        self.columns = columns or Columns()

    @classmethod
    def describe(cls, source: SourceModel, example: pd.DataFrame | None) -> Columns:
        """The typed columns of a model this rule takes (none: the rule needs no types)."""
        return Columns()

    @abstractmethod
    def check(self, data: Any, max_chars: int | None = None) -> Any:
        """Records or a DataFrame -> what the method takes; raises naming `instances[i].f`."""

    @abstractmethod
    def split(
        self, frame: pd.DataFrame, max_chars: int | None = None, limit_hint: str = ""
    ) -> tuple[Any, list[int], list[str | None]]:
        """The rule applied once per row of a frame, keeping going past bad rows: (what the
        method takes for the good rows, their positions, per row why it alone is refused or
        None). Messages drop the `instances[i].` position: the error sits on its row."""

    @abstractmethod
    def stack(self, items: list[Any]) -> Any:
        """Checked instances (one each) -> one batch the method takes."""

    def placeholder(self) -> pd.DataFrame | None:
        """An instance to warm an explainer up with when the model logged no example."""
        return None


class TabularInputs(InputRule):
    kind = "tabular"
    data_type = "double"
    chunk = 4
    batch_rows = 5000

    def check(self, data: Any, max_chars: int | None = None) -> np.ndarray:
        return check_tabular(data, self.features, self.accepts_nan)

    def split(
        self, frame: pd.DataFrame, max_chars: int | None = None, limit_hint: str = ""
    ) -> tuple[np.ndarray, list[int], list[str | None]]:
        """Numbers written as text (a CSV column with one bad cell is read as strings) are
        parsed first, so only the bad cell's row fails."""
        frame = _parse_text_numbers(frame.reset_index(drop=True), self.features)
        fast, errors = tabular_split(frame, self.features, self.accepts_nan)
        ok = [i for i, e in enumerate(errors) if e is None]
        if fast is not None:
            return fast, ok, errors
        values = frame[self.features].iloc[ok].to_numpy(dtype=object).tolist()
        return np.array(values, dtype=float).reshape(len(ok), len(self.features)), ok, errors

    def stack(self, items: list[Any]) -> np.ndarray:
        return np.vstack(items) if items else np.empty((0, len(self.features)))

    @classmethod
    def describe(cls, source: SourceModel, example: pd.DataFrame | None) -> Columns:
        """Each input column's type and known values; a type eaas cannot take (dates without
        a signature, bytes) is refused here, at build, in one line naming the column."""
        try:
            return describe(source.feature_names, source.input_types, example,
                            source.categorical, source.predict_output, source.accepts_nan)
        except ValueError as exc:
            raise UnsupportedModel(
                f"model: {exc}; eaas explains columns of numbers, booleans, strings and "
                "categories"
            ) from None


class MixedInputs(TabularInputs):
    """Tabular rows whose columns are not all numbers: strings, categories, booleans beside
    numbers. Checked rows are object arrays of the values as the model takes them."""

    data_type = "value"
    batch_rows = 1000  # rows are decoded to typed frames: smaller Arrow batches

    def check(self, data: Any, max_chars: int | None = None) -> np.ndarray:
        if isinstance(data, pd.DataFrame):
            _frame_columns(data, self.features)
            rows = data[self.features].to_numpy(dtype=object)
        else:
            rows = np.array([_record_values(i, r, self.features) for i, r in enumerate(data)],
                            dtype=object).reshape(-1, len(self.features))
        for i in range(len(rows)):
            why = self._row(rows, i)
            if why is not None:
                raise invalid(i, *why)
        return rows

    def split(
        self, frame: pd.DataFrame, max_chars: int | None = None, limit_hint: str = ""
    ) -> tuple[np.ndarray, list[int], list[str | None]]:
        frame = frame.reset_index(drop=True)
        try:
            _frame_columns(frame, self.features)
        except InvalidInput as exc:
            why = getattr(exc, "row_message", exc.message)
            return np.empty((0, len(self.features)), dtype=object), [], [why] * len(frame)
        numeric = [c.name for c in self.columns.items if c.type in NUMERIC]
        frame = _parse_text_numbers(frame, numeric)  # a CSV's numbers, read as text
        rows = frame[self.features].to_numpy(dtype=object)
        errors: list[str | None] = []
        for i in range(len(rows)):
            why = self._row(rows, i)
            errors.append(None if why is None else invalid(i, *why).row_message)
        ok = [i for i, e in enumerate(errors) if e is None]
        return rows[ok], ok, errors

    def _row(self, rows: np.ndarray, i: int) -> tuple[str, str] | None:
        """Judge row i in place (values become what the model takes); (column, why) if not."""
        for j, col in enumerate(self.columns.items):
            why, value = value_reason(col, rows[i, j])
            if why is not None:
                return col.name, why
            rows[i, j] = value
        return None

    def stack(self, items: list[Any]) -> np.ndarray:
        if not items:
            return np.empty((0, len(self.features)), dtype=object)
        return np.vstack(items).astype(object)


def _frame_columns(frame: pd.DataFrame, features: list[str]) -> None:
    check_columns([str(c) for c in frame.columns], features)


def _record_values(i: int, rec: Any, features: list[str]) -> list[Any]:
    if not isinstance(rec, dict):
        raise invalid(i, None, "expected an object of feature -> value")
    check_columns([str(k) for k in rec], features, i)
    return [rec[f] for f in features]


class TextInputs(InputRule):
    kind = "text"
    data_type = "string"
    params = (*COMMON_PARAMS, "long_text")
    chunk = 1  # a text polls `stop` within, before each forward batch
    batch_rows = 64  # a bad row's fallback (row by row) stays cheap, and progress moves
    background_is_data = False
    chart_rows = 20  # each a full explanation
    player = "word"
    fixed_features = False

    def check(self, data: Any, max_chars: int | None = None) -> list[str]:
        """A text over `max_chars` is a 413 (the caller's size limit), not a 422."""
        texts = check_text(data, column=self.column)
        if max_chars is not None:
            for i, t in enumerate(texts):
                if len(t) > max_chars:
                    why = f"longer than {max_chars} characters"
                    raise TooLarge(invalid(i, self.column, why).message)
        return texts

    def split(
        self, frame: pd.DataFrame, max_chars: int | None = None, limit_hint: str = ""
    ) -> tuple[list[str], list[int], list[str | None]]:
        errors: list[str | None] = []
        col = self.column
        texts = frame[col].tolist() if col in frame.columns else [None] * len(frame)
        for i, v in enumerate(texts):
            why = text_reason(v, max_chars)
            if why is not None and why.startswith("longer than"):
                why += limit_hint
            errors.append(None if why is None else invalid(i, col, why).row_message)
        ok = [i for i, e in enumerate(errors) if e is None]
        return cast(list[str], [texts[i] for i in ok]), ok, errors  # ok rows hold strings

    def stack(self, items: list[Any]) -> list[str]:
        return list(items)

    def placeholder(self) -> pd.DataFrame | None:
        return pd.DataFrame({self.column: ["warm up"]})

    @property
    def column(self) -> str:
        """The model's one string column (`text` for transformers models)."""
        return self.features[0] if self.features else "text"


def _parse_text_numbers(frame: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    """Numbers written as text (CSV) -> numbers; anything else is left for the rule to judge."""
    text_cols = [f for f in features if f in frame.columns
                 and (pd.api.types.is_string_dtype(frame[f]) or frame[f].dtype == object)]
    if not text_cols:
        return frame
    frame = frame.copy()
    for f in text_cols:
        frame[f] = pd.Series([_number(v) for v in frame[f]], index=frame.index, dtype=object)
    return frame


def _number(v: Any) -> Any:
    if not isinstance(v, str):
        return v
    s = v.strip()
    if s.lower() in ("", "nan", "null"):
        return None
    try:
        return float(s)
    except ValueError:
        return v


RULES: dict[str, type[InputRule]] = {r.kind: r for r in (TabularInputs, TextInputs)}


def rule_for(
    kind: str, features: list[str], accepts_nan: bool = False, columns: Columns | None = None
) -> InputRule:
    """The input rule of an explainer whose methods take `kind` inputs; tabular columns that
    are not all numbers take the mixed rule."""
    if kind not in RULES:
        raise InvalidInput(f"kind: unknown input kind '{kind[:40]}'", field="kind")
    cls = RULES[kind]
    if columns is not None and columns.items and not columns.numeric:
        cls = MixedInputs
    return cls(features, accepts_nan, columns)


def params_for(kind: str) -> tuple[str, ...]:
    """The parameters that apply to an explainer of `kind` (long_text only to text)."""
    return RULES[kind].params
