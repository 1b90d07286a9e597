"""The project file's ``[[sources]]``: where each canonical table's rows come from.

A source is a file or a database query and a mapping of its columns onto a
canonical table (:mod:`churnwatch.schema`). Kept apart from
:mod:`churnwatch.config`, which re-exports these names, to keep each
settings module small; this one needs only pydantic and the schema.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from churnwatch._settings_base import _Model
from churnwatch.schema import TABLES

__all__ = ["ColumnMapping", "LookupSpec", "SourceFormat", "SourceSpec", "TableName", "Transform"]

TableName = Literal[
    "csms", "accounts", "users", "subscriptions", "payments", "events", "adoption_snapshots"
]
SourceFormat = Literal["auto", "csv", "parquet", "json", "jsonl", "whitespace"]
Transform = Literal["epoch_s", "epoch_ms", "epoch_us", "bool", "lower", "upper"]


class LookupSpec(_Model):
    """Find a value in a table already loaded, by a key the source holds.

    For example, usage rows that carry only a ``subscription_id`` get their
    ``account_id`` from the ``subscriptions`` table.
    """

    table: TableName = Field(description="Canonical table to look in.")
    on: str = Field(description="Column of that table matched against the source value.")
    column: str = Field(default="account_id", description="Column of that table to take.")


class ColumnMapping(_Model):
    """How one canonical column is filled from a source row.

    Exactly one of ``source``, ``value``, ``expr``, ``seconds_between`` or
    ``json_columns`` says where the value comes from; the other options
    transform it. The result is cast to the canonical column's type, and a
    value that does not cast sends its row to quarantine.
    """

    source: str | None = Field(
        default=None,
        description="Source column; a dotted path (properties.time) reaches into nested JSON.",
    )
    value: str | float | bool | None = Field(default=None, description="A constant for every row.")
    expr: str | None = Field(
        default=None,
        description="A SQL expression over source columns (DuckDB dialect), such as "
        "'amount / 100'. Source values are text unless the file is typed.",
    )
    seconds_between: tuple[str, str] | None = Field(
        default=None, description="Two timestamp source columns: the value is end - start in s."
    )
    json_columns: list[str] | Literal["*"] | None = Field(
        default=None,
        description="Source columns gathered into a JSON object; '*' takes every source "
        "column no other mapping uses.",
    )
    lookup: LookupSpec | None = Field(
        default=None, description="Take the value from a loaded table by the source's key."
    )
    transform: Transform | None = Field(
        default=None,
        description="epoch_s/epoch_ms/epoch_us: a number of seconds/ms/µs since 1970 UTC; "
        "bool: yes/no, true/false, 1/0 (see true_values); lower/upper: change case.",
    )
    format: str | None = Field(
        default=None, description="strptime format of a timestamp or date text, e.g. '%Y%m%d'."
    )
    values: dict[str, str | float | bool] | None = Field(
        default=None, description="Replace source values: {'Yes' = true, 'No' = false}."
    )
    true_values: list[str] | None = Field(
        default=None, description="Texts read as true by transform 'bool' (case-insensitive)."
    )
    false_values: list[str] | None = Field(
        default=None, description="Texts read as false by transform 'bool' (case-insensitive)."
    )
    scale: float | None = Field(
        default=None, description="Multiply a number: 0.01 turns cents into units."
    )

    @model_validator(mode="after")
    def _one_origin(self) -> ColumnMapping:
        origins = [
            name
            for name in ("source", "value", "expr", "seconds_between", "json_columns")
            if getattr(self, name) is not None
        ]
        if self.lookup is not None and self.source is None:
            raise ValueError("'lookup' needs 'source': the source column holding the key")
        if len(origins) != 1:
            raise ValueError(
                "give exactly one of source, value, expr, seconds_between, json_columns"
                + (f" (got {', '.join(origins)})" if origins else "")
            )
        return self


class SourceSpec(_Model):
    """One source of data and its mapping onto a canonical table."""

    name: str = Field(description="A name for the source, shown in summaries and quarantine.")
    table: TableName = Field(description="The canonical table the source fills.")
    path: str | None = Field(
        default=None,
        description="File or glob, relative to the project folder. CSV (also .gz), "
        "Parquet, JSON, JSONL.",
    )
    format: SourceFormat = Field(
        default="auto", description="File format; 'auto' goes by the file name."
    )
    delimiter: str = Field(default=",", description="CSV field delimiter.")
    url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of a database source (sqlite:///, postgresql://, mysql://).",
    )
    query: str | None = Field(default=None, description="SQL query run on 'url'.")
    sql_table: str | None = Field(default=None, description="Table read whole from 'url'.")
    timezone: str = Field(
        default="UTC", description="Time zone of timestamps that carry no offset."
    )
    unknown_account: Literal["quarantine", "create"] | None = Field(
        default=None,
        description="Rows whose account is not loaded: quarantine them, or create the "
        "account. Default: the table's own (create for adoption_snapshots).",
    )
    columns: dict[str, ColumnMapping] = Field(
        description="Canonical column -> mapping. A plain string is a source column name."
    )

    @field_validator("columns", mode="before")
    @classmethod
    def _plain_names(cls, columns: Any) -> Any:
        if isinstance(columns, dict):
            return {k: {"source": v} if isinstance(v, str) else v for k, v in columns.items()}
        return columns

    @model_validator(mode="after")
    def _fits_table(self) -> SourceSpec:
        if (self.path is None) == (self.url is None):
            raise ValueError("give either 'path' (a file) or 'url' (a database), not both")
        if self.url is not None and (self.query is None) == (self.sql_table is None):
            raise ValueError("a database source needs either 'query' or 'sql_table'")
        table = TABLES[self.table]
        unknown = sorted(set(self.columns) - set(table.column_names))
        if unknown:
            raise ValueError(
                f"table {self.table!r} has no column(s) {', '.join(unknown)}; "
                f"expected some of {', '.join(table.column_names)}"
            )
        missing = [c for c in table.required if c not in self.columns]
        if missing:
            raise ValueError(
                f"required column(s) of {self.table!r} not mapped: {', '.join(missing)}"
            )
        return self
