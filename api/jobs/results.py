"""A job's results: one row per instance, in order, with its status, its error and its
explanation in the Explanation schema (fields null where it has none).

JSON Lines streams straight from the database a page at a time. Parquet needs its footer at the
end, so it is written to a temporary file off the event loop and streamed from there.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterator
from typing import Any

import pandas as pd

from eaas.api.jobs.store import JobStore
from eaas.explain.schema import COLUMNS, typed_data

ROW_KEYS = ["index", "status", "error", "explanation_id"]
RESULT_COLUMNS = [*ROW_KEYS, *COLUMNS]


def flat(item: dict[str, Any]) -> dict[str, Any]:
    """One result row: the instance's place and fate, then every Explanation field."""
    exp = item["explanation"] or {}
    return {**{k: item[k] for k in ROW_KEYS}, **{c: exp.get(c) for c in COLUMNS}}


def _safe(v: Any) -> Any:
    """JSON has no NaN: a number without a value goes out as null."""
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, list):
        return [_safe(x) for x in v]
    return v


def jsonl(jobs: JobStore, job_id: str) -> Iterator[bytes]:
    for page in jobs.results(job_id):
        yield "".join(
            json.dumps({k: _safe(v) for k, v in flat(item).items()}) + "\n" for item in page
        ).encode()


def parquet_file(jobs: JobStore, job_id: str) -> str:
    """Every row in one Parquet file (a temporary path the caller removes)."""
    rows = [flat(item) for page in jobs.results(job_id) for item in page]
    frame = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    frame["data"] = pd.Series(typed_data(frame["data"].tolist()), index=frame.index, dtype=object)
    fd, path = tempfile.mkstemp(prefix="eaas-job-", suffix=".parquet")
    os.close(fd)
    frame.to_parquet(path, index=False)
    return path
