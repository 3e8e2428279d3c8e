"""The output's column types, as Spark types (driver) and the matching Arrow fields (workers)."""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.types import ArrayType, DoubleType, StringType, StructField, StructType

STATUS_FIELDS = [StructField("status", StringType(), False), StructField("error", StringType())]


def explanation_fields(kind: str) -> list[StructField]:
    """The Explanation as typed Spark columns (null on error rows); `data` follows the kind."""
    dbl, txt = DoubleType(), StringType()
    return [
        StructField("output_names", ArrayType(txt)),
        StructField("prediction", ArrayType(dbl)),
        StructField("base_values", ArrayType(dbl)),
        StructField("values", ArrayType(ArrayType(dbl))),
        StructField("features", ArrayType(txt)),
        StructField("data", ArrayType(txt if kind == "text" else dbl)),
        StructField("additivity_error", dbl),
    ]


def output_schema(input_schema: StructType, id_cols: Sequence[str], kind: str) -> StructType:
    """Id columns exactly as in the input, then the Explanation, then status and error."""
    ids = [input_schema[c] for c in id_cols]
    return StructType(ids + explanation_fields(kind) + STATUS_FIELDS)


def arrow_fields(kind: str) -> list[pa.Field]:
    """Arrow twins of the Explanation + status fields (what Spark expects back from a worker)."""
    return list(to_arrow_schema(StructType(explanation_fields(kind) + STATUS_FIELDS)))
