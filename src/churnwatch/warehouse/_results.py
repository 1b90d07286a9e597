"""Query results in the same Arrow types whatever the engine."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pyarrow as pa

__all__: list[str] = []


PG_KINDS: dict[Any, str] = {
    16: "bool",
    20: "int",
    21: "int",
    23: "int",
    26: "int",
    700: "float",
    701: "float",
    1700: "decimal",
    19: "string",
    25: "string",
    114: "string",
    705: "string",
    1042: "string",
    1043: "string",
    3802: "string",
    1082: "date",
    1114: "timestamp",
    1184: "timestamp",
    17: "binary",
}
MYSQL_KINDS: dict[Any, str] = {
    1: "bool",
    2: "int",
    3: "int",
    8: "int",
    9: "int",
    13: "int",
    4: "float",
    5: "float",
    0: "decimal",
    246: "decimal",
    7: "timestamp",
    12: "timestamp",
    10: "date",
    14: "date",
    15: "string",
    245: "string",
    249: "string",
    250: "string",
    251: "string",
    252: "string",
    253: "string",
    254: "string",
    6: "null",
}
_ARROW_KINDS = {
    "bool": pa.bool_(),
    "int": pa.int64(),
    "float": pa.float64(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "date": pa.date32(),
    "string": pa.string(),
    "binary": pa.binary(),
    "null": pa.null(),
}


def column_scale(column: Any) -> int | None:
    scale = column[5] if len(column) > 5 else None
    return scale if isinstance(scale, int) else None


def arrow_array(values: list[Any], kind: str | None, scale: int | None) -> pa.Array:
    """One result column as Arrow, typed by what the driver says it is.

    Typing by the column's declared type rather than by its values keeps the
    type of an empty or all-null column, and makes a MySQL boolean a boolean.
    """
    if kind == "bool":
        values = [None if v is None else bool(v) for v in values]
    elif kind == "float":
        values = [None if v is None else float(v) for v in values]
    elif kind == "timestamp":
        values = [_utc(v) for v in values]
    elif kind == "decimal":
        # Sums of integers come back as DECIMAL (MySQL) or NUMERIC (Postgres):
        # whole when the scale is 0, or when no value has a fractional digit.
        whole = scale == 0 or (
            scale is None
            and all(v is None or _exponent(v) >= 0 for v in values)
            and any(v is not None for v in values)
        )
        kind = "int" if whole else "float"
        values = [None if v is None else (int(v) if whole else float(v)) for v in values]
    arrow_type = _ARROW_KINDS.get(kind or "")
    try:
        return pa.array(values, type=arrow_type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())


def _exponent(value: Any) -> int:
    exponent = value.as_tuple().exponent if isinstance(value, Decimal) else -1
    return exponent if isinstance(exponent, int) else -1


def uniform_types(table: pa.Table) -> pa.Table:
    """DuckDB's result types as the other engines' results read.

    Every engine answers with the same few Arrow types: integers as int64
    (DuckDB sums BIGINTs into HUGEINT, a DECIMAL(38, 0)), other decimals and
    floats as float64, instants as UTC microseconds.
    """
    columns = []
    for field, column in zip(table.schema, table.columns, strict=True):
        kind = field.type
        target: pa.DataType | None = None
        if pa.types.is_integer(kind) and kind != pa.int64():
            target = pa.int64()
        elif pa.types.is_decimal(kind):
            target = pa.int64() if kind.scale == 0 else pa.float64()
        elif pa.types.is_floating(kind) and kind != pa.float64():
            target = pa.float64()
        elif pa.types.is_timestamp(kind) and kind != pa.timestamp("us", tz="UTC"):
            # Zone-less timestamps hold UTC, as MySQL's DATETIME does.
            target = pa.timestamp("us", tz="UTC")
        if target is not None:
            try:
                column = column.cast(target)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                if pa.types.is_decimal(kind):
                    column = column.cast(pa.float64())
        columns.append(column)
    return pa.table(columns, names=table.column_names)


def _utc(value: Any) -> Any:
    # MySQL hands back naive DATETIMEs that hold UTC; make them say so.
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def naive_utc(value: Any) -> Any:
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value
