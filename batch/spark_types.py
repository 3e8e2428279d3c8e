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

from eaas.explain.schema import FIELDS, VALUE_FIELDS

STATUS_FIELDS = [StructField("status", StringType(), False), StructField("error", StringType())]
# one "value" of a mixed-type row: a number (a boolean as 1.0/0.0) or a string, both null when
# missing (explain/schema.py `to_typed`/`from_typed`)
VALUE_TYPE = StructType(
    [StructField(n, t) for n, t in zip(VALUE_FIELDS, (DoubleType(), StringType()), strict=True)]
)


def data_element(data_type: str) -> DataType:
    """The type of one item of `data`: "double", "string" or "value" (the struct)."""
    return {"double": DoubleType(), "string": StringType(), "value": VALUE_TYPE}[data_type]


def _spark_type(logical: str, data_type: str) -> DataType:
    dbl, txt = DoubleType(), StringType()
    return {
        "strings": ArrayType(txt),
        "doubles": ArrayType(dbl),
        "matrix": ArrayType(ArrayType(dbl)),
        "errors": ArrayType(ArrayType(dbl)),
        "data": ArrayType(data_element(data_type)),
        "double": dbl,
        "bool": BooleanType(),
    }[logical]


def explanation_fields(data_type: str) -> list[StructField]:
    """The Explanation (explain/schema.py's field table) as typed Spark columns, null on error
    rows; `data` holds the input rule's `data_type` ("double" | "string" | "value")."""
    return [StructField(f.name, _spark_type(f.type, data_type)) for f in FIELDS]


def output_schema(input_schema: StructType, id_cols: Sequence[str], data_type: str) -> StructType:
    """Id columns exactly as in the input, then the Explanation, then status and error."""
    ids = [input_schema[c] for c in id_cols]
    return StructType(ids + explanation_fields(data_type) + STATUS_FIELDS)


def arrow_fields(data_type: str) -> list[pa.Field]:
    """Arrow twins of the Explanation + status fields (what Spark expects back from a worker)."""
    return list(to_arrow_schema(StructType(explanation_fields(data_type) + STATUS_FIELDS)))
