"""Category tables: for each string/category input of a mixed-type explainer, each value's rows
and mean attribution per output, so a reviewer sees which values push toward which class.

The values are the explained ones (each row's `data`, through `from_typed`); a missing value is
its own row (value None). Tables are sorted by the mean attribution of the main output (the
last: the "positive" class of a classifier, the only output of a regressor), largest first.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from eaas.explain.columns import is_missing
from eaas.explain.config import ExplainerConfig
from eaas.reports.values import category_columns, rows_of

MISSING = "(missing)"  # how the page names a missing value; the JSON keeps null


def main_output(config: ExplainerConfig) -> str:
    return config.output_names[-1]


def mean_column(output: str) -> str:
    """The table's column of one output's mean attribution (never clashes with value/rows)."""
    return f"mean SHAP '{output}'"


def category_table(
    frame: pd.DataFrame, column: str, outputs: list[str], sort_by: str
) -> pd.DataFrame:
    """One row per value of `column` over the explained rows of `frame`: `value` (str, None
    when missing), `rows`, then the column's mean attribution per output (`mean_column(o)`),
    sorted by `sort_by`'s mean, largest first (ties: more rows first)."""
    j = [str(f) for f in frame["features"].iloc[0]].index(column)
    labels = [None if is_missing(d[j]) else str(d[j]) for d in rows_of(frame)]
    means = [mean_column(o) for o in outputs]
    shap = np.array(
        [[float(v[o][j]) for o in range(len(outputs))] for v in frame["values"]], dtype=float
    ).reshape(len(frame), len(outputs))
    df = pd.DataFrame(shap, columns=means)
    df.insert(0, "value", pd.Series(labels, dtype=object))
    grouped = df.groupby("value", dropna=False, sort=False)
    table = grouped[means].mean()
    table.insert(0, "rows", grouped.size())
    table = table.reset_index()
    table["value"] = pd.Series(
        [None if is_missing(v) else v for v in table["value"]], index=table.index, dtype=object
    )
    key = mean_column(sort_by)
    table = table.sort_values([key, "rows"], ascending=[False, False], kind="stable")
    return table.reset_index(drop=True)


def category_tables(frame: pd.DataFrame, config: ExplainerConfig) -> dict[str, pd.DataFrame]:
    """A table per string/category input (none for a numbers-only or text explainer)."""
    if frame.empty:
        return {}
    outputs = list(config.output_names)
    return {
        c: category_table(frame, c, outputs, main_output(config)) for c in category_columns(config)
    }


def categories_json(
    tables: dict[str, pd.DataFrame], outputs: list[str], main: str
) -> dict[str, Any]:
    """What `categories.json` holds: per column, its values in the tables' order."""
    return {
        "output": main,
        "columns": {
            col: [
                {
                    "value": r["value"],
                    "rows": int(r["rows"]),
                    "mean_shap": {o: float(r[mean_column(o)]) for o in outputs},
                }
                for _, r in t.iterrows()
            ]
            for col, t in tables.items()
        },
    }
