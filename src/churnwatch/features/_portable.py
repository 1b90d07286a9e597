"""Portable pieces of feature SQL: time spans, ratios and JSON lookups.

sqlglot transpiles most expressions faithfully, but a few do not mean the
same thing on every engine, and those are built here per dialect:

- *Seconds between two instants.* ``TimeToUnix`` renders ``EPOCH`` (DuckDB),
  ``DATE_PART('epoch', ...)`` (Postgres) and ``UNIX_TIMESTAMP`` (Spark), but
  ``TIME_TO_UNIX`` on MySQL, which does not exist; MySQL gets
  ``TIMESTAMPDIFF(MICROSECOND, ...)``, exact and free of the 2038 limit of
  ``UNIX_TIMESTAMP``, and Spark ``UNIX_MICROS``, whose ``UNIX_TIMESTAMP``
  drops fractions of a second. DuckDB gets ``EPOCH_US``: integer
  microseconds, about twice as fast as ``EPOCH`` (a double) on timestamps
  with a zone, which matters in expressions evaluated once per event.
- *Division.* MySQL divides integers into a DECIMAL with four digits
  (``1 / 3 = 0.3333``) and Postgres truncates them, so ratios cast their
  numerator to DOUBLE first.
- *A JSON property as text.* ``->>`` is DuckDB's and MySQL 8's but not
  MariaDB's, and Postgres' ``JSON_EXTRACT_PATH_TEXT`` refuses JSONB:
  MySQL/MariaDB read ``JSON_VALUE``, Postgres ``JSONB_EXTRACT_PATH_TEXT``.

Window bounds are written as ``cutoff - INTERVAL 'n' DAY``, which every
dialect renders as instant arithmetic (``DATE_SUB`` on Spark would truncate
to a date).
"""

from __future__ import annotations

import datetime as dt

from sqlglot import exp

from churnwatch.schema import sql_type

__all__ = [
    "bit_count",
    "days_before",
    "days_between",
    "instant",
    "json_text",
    "micros_between",
    "ratio",
    "seconds_between",
    "shift_left_one",
]

SECONDS_PER_DAY = 86_400


def days_before(instant: exp.Expr, days: int) -> exp.Expr:
    """``instant - INTERVAL 'days' DAY``, an instant on every engine.

    Examples
    --------
    >>> days_before(exp.column("cutoff"), 30).sql("postgres")
    "cutoff - INTERVAL '30 DAY'"
    """
    return exp.Sub(this=instant, expression=_interval(days))


def days_after(instant: exp.Expr, days: int) -> exp.Expr:
    """``instant + INTERVAL 'days' DAY``."""
    return exp.Add(this=instant, expression=_interval(days))


def _interval(days: int) -> exp.Interval:
    return exp.Interval(this=exp.Literal.string(str(int(days))), unit=exp.var("DAY"))


def micros_between(later: exp.Expr, earlier: exp.Expr, dialect: str) -> exp.Expr | None:
    """Whole microseconds from ``earlier`` to ``later`` as an integer, where an engine has them.

    None on Postgres, whose instant arithmetic answers in (fractional) seconds.

    Examples
    --------
    >>> micros_between(exp.column("c"), exp.column("t"), "duckdb").sql("duckdb")
    'EPOCH_US(c) - EPOCH_US(t)'
    """
    if dialect == "mysql":
        return exp.TimestampDiff(this=later, expression=earlier, unit=exp.var("MICROSECOND"))
    spark = dialect in ("spark", "spark2", "databricks")
    if spark or dialect == "duckdb":
        # Spark's UNIX_TIMESTAMP would drop the fraction of a second.
        function = "UNIX_MICROS" if spark else "EPOCH_US"
        return exp.Sub(
            this=exp.Anonymous(this=function, expressions=[later]),
            expression=exp.Anonymous(this=function, expressions=[earlier]),
        )
    return None


def seconds_between(later: exp.Expr, earlier: exp.Expr, dialect: str) -> exp.Expr:
    """Seconds from ``earlier`` to ``later`` as a DOUBLE (null if either is null).

    Examples
    --------
    >>> seconds_between(exp.column("c"), exp.column("t"), "mysql").sql("mysql")
    'TIMESTAMPDIFF(MICROSECOND, t, c) / 1000000.0E0'
    """
    micros = micros_between(later, earlier, dialect)
    if micros is not None:
        if isinstance(micros, exp.Sub):
            micros = exp.paren(micros)
        return exp.Div(this=micros, expression=exp.Literal.number("1000000.0E0"))
    return exp.Sub(
        this=exp.TimeToUnix(this=later),
        expression=exp.TimeToUnix(this=earlier),
    )


def days_between(later: exp.Expr, earlier: exp.Expr, dialect: str) -> exp.Expr:
    """Fractional days from ``earlier`` to ``later``."""
    return exp.Div(
        this=exp.paren(seconds_between(later, earlier, dialect), copy=False),
        expression=exp.Literal.number(SECONDS_PER_DAY),
    )


def ratio(numerator: exp.Expr, denominator: exp.Expr) -> exp.Expr:
    """``numerator / denominator`` as a DOUBLE, null when the denominator is 0."""
    return exp.Div(
        this=exp.cast(numerator, exp.DataType.Type.DOUBLE),
        expression=exp.Nullif(this=denominator, expression=exp.Literal.number(0)),
    )


def instant(value: dt.datetime, dialect: str) -> exp.Expr:
    """A UTC instant as a typed literal of the warehouse's timestamp type.

    MySQL's DATETIME holds UTC without a zone (and MariaDB refuses an offset
    in the literal); the other engines are given the offset explicitly.

    Examples
    --------
    >>> instant(dt.datetime(2024, 3, 1, tzinfo=dt.UTC), "postgres").sql("postgres")
    "CAST('2024-03-01 00:00:00.000000+00:00' AS TIMESTAMPTZ)"
    """
    text = value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if dialect != "mysql":
        text += "+00:00"
    kind = "spark" if dialect in ("spark", "spark2", "databricks") else dialect
    target = exp.DataType.build(sql_type("timestamp", kind), dialect=dialect)
    return exp.cast(exp.Literal.string(text), target)


def shift_left_one(bits: exp.Expr, dialect: str) -> exp.Expr:
    """``1 << bits`` as a BIGINT (``bits`` from 0 to 62).

    Examples
    --------
    >>> shift_left_one(exp.column("k"), "postgres").sql("postgres")
    'CAST(1 AS BIGINT) << CAST(k AS INT)'
    """
    if dialect == "postgres":  # Postgres shifts by an INT only
        bits = exp.cast(bits, exp.DataType.Type.INT)
    return exp.BitwiseLeftShift(this=exp.cast(exp.Literal.number(1), "BIGINT"), expression=bits)


def bit_count(value: exp.Expr, dialect: str) -> exp.Expr:
    """Number of bits set in a non-negative BIGINT.

    Examples
    --------
    >>> bit_count(exp.column("mask"), "postgres").sql("postgres")
    'BIT_COUNT(CAST(mask AS BIT(64)))'
    """
    if dialect == "postgres":  # BIT_COUNT takes bit strings, not integers (PostgreSQL 14+)
        bits = exp.DataType.build("BIT(64)", dialect="postgres")
        return exp.Anonymous(this="BIT_COUNT", expressions=[exp.cast(value, bits)])
    return exp.BitwiseCount(this=value)


def json_text(document: exp.Expr, key: str, dialect: str) -> exp.Expr:
    """The text of top-level ``key`` of a JSON column (null when absent).

    ``key`` is a plain identifier (checked by the spec), so it can be written
    into a JSON path as it is.
    """
    if dialect == "postgres":
        return exp.Anonymous(
            this="JSONB_EXTRACT_PATH_TEXT", expressions=[document, exp.Literal.string(key)]
        )
    if dialect == "mysql":
        return exp.Anonymous(
            this="JSON_VALUE", expressions=[document, exp.Literal.string(f"$.{key}")]
        )
    return exp.JSONExtractScalar(
        this=document,
        expression=exp.JSONPath(expressions=[exp.JSONPathRoot(), exp.JSONPathKey(this=key)]),
    )
