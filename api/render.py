"""Response shaping: top-k truncation and the PNG bar chart of one explanation."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd

from eaas.api.store import Loaded
from eaas.explain import plots


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
    return {
        **exp,
        "values": values[:, keep].tolist(),
        "features": [exp["features"][i] for i in keep],
        "data": [exp["data"][i] for i in keep],
        "dropped": int(len(drop)),
        "rest": values[:, drop].sum(axis=1).tolist(),
    }


def explanation_png(exp: dict[str, Any], loaded: Loaded) -> bytes:
    """Bar chart for the output with the highest prediction (the predicted class)."""
    o = int(np.argmax(exp["prediction"]))
    m = loaded.model
    fig = plots.instance_bar(pd.Series(exp), output=o, title=f"{m['name']} v{m['version']}")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plots.close(fig)
    return buf.getvalue()
