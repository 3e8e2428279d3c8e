"""Response shaping: JSON-safe records, top-k truncation and the PNG bar chart of one
explanation."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd

from eaas.explain import plots


def null_missing(record: dict[str, Any]) -> dict[str, Any]:
    """JSON has no NaN: a missing input value in `data` goes back as null (in place); strings,
    booleans and numbers keep their type (a numpy scalar becomes its Python twin)."""
    record["data"] = [
        None if _missing(v) else v.item() if isinstance(v, np.generic) else v
        for v in record["data"]
    ]
    return record


def _missing(v: Any) -> bool:
    return v is None or v is pd.NA or (isinstance(v, (float, np.floating)) and v != v)


def truncate(exp: dict[str, Any], k: int) -> dict[str, Any]:
    """Keep the k features with the largest |value| (max over outputs), in their order.

    `rest` carries, per output, the sum of what was dropped, so base + sum + rest still equals
    the prediction and the additivity check stays possible on a truncated explanation.
    """
    values = np.asarray(exp["values"], dtype=float)
    if values.shape[1] <= k:
        return {**exp, "dropped": 0, "rest": [0.0] * values.shape[0]}
    keep = np.sort(np.argsort(-np.abs(values).max(axis=0), kind="stable")[:k])
    drop = np.setdiff1d(np.arange(values.shape[1]), keep)
    errors = exp.get("approximation_error")
    if errors is not None:  # the same features as `values`
        errors = np.asarray(errors, dtype=float)[:, keep].tolist()
    return {
        **exp,
        "approximation_error": errors,
        "values": values[:, keep].tolist(),
        "features": [exp["features"][i] for i in keep],
        "data": [exp["data"][i] for i in keep],
        "dropped": int(len(drop)),
        "rest": values[:, drop].sum(axis=1).tolist(),
    }


def shown_output(exp: dict[str, Any]) -> int:
    """The output a chart shows: the highest prediction (the predicted class)."""
    return int(np.argmax(exp["prediction"]))


def explanation_png(exp: dict[str, Any], model: dict[str, str]) -> bytes:
    """Bar chart of one explanation for `shown_output`, titled with the model version."""
    title = f"{model['name']} v{model['version']}"
    fig = plots.instance_bar(pd.Series(exp), output=shown_output(exp), title=title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plots.close(fig)
    return buf.getvalue()
