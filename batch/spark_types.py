"""The output's column types, as Spark types (driver) and the matching Arrow fields (workers)."""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DataType,
    DoubleType,
    StringType,
    StructField,
    StructType,
)

from eaas.explain.schema import FIELDS

STATUS_FIELDS = [StructField("status", StringType(), False), StructField("error", StringType())]


def _spark_type(logical: str, kind: str) -> DataType:
    dbl, txt = DoubleType(), StringType()
    return {
        "strings": ArrayType(txt),
        "doubles": ArrayType(dbl),
        "matrix": ArrayType(ArrayType(dbl)),
        "data": ArrayType(txt if kind == "text" else dbl),
        "double": dbl,
        "bool": BooleanType(),
    }[logical]


def explanation_fields(kind: str) -> list[StructField]:
    """The Explanation (explain/schema.py's field table) as typed Spark columns, null on error
    rows; `data` follows the kind."""
    return [StructField(f.name, _spark_type(f.type, kind)) for f in FIELDS]


def output_schema(input_schema: StructType, id_cols: Sequence[str], kind: str) -> StructType:
    """Id columns exactly as in the input, then the Explanation, then status and error."""
    ids = [input_schema[c] for c in id_cols]
    return StructType(ids + explanation_fields(kind) + STATUS_FIELDS)


def arrow_fields(kind: str) -> list[pa.Field]:
    """Arrow twins of the Explanation + status fields (what Spark expects back from a worker)."""
    return list(to_arrow_schema(StructType(explanation_fields(kind) + STATUS_FIELDS)))
