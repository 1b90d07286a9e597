"""Rejected rows: the quarantine record of each, with a sentence saying why."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from sqlglot import exp

from churnwatch.config import Settings, SourceSpec
from churnwatch.errors import MappingError, WarehouseError
from churnwatch.ingest.mapping import (
    BAD_COLUMN,
    BAD_REASON,
    ROW_NUMBER_COLUMN,
    CompiledMapping,
)
from churnwatch.ingest.report import ProgressFn
from churnwatch.ingest.sources import SourceFile
from churnwatch.schema import TABLES, ColumnType, Table
from churnwatch.warehouse import (
    QUARANTINE_TABLE,
    Warehouse,
    arrow_schema,
)

__all__ = ["LoadState", "Rejections"]


_MARKS = "_cw_marks"
_VALUE_MARK = "value_problem"
_KEY_HASH = "_key_hash"
_ROW_NUMBER = ROW_NUMBER_COLUMN
_STRICT_SAMPLE = 20

_MESSAGES = {
    "unparseable": "{column}: cannot read {value!r} as {type}{hint}",
    "missing_value": "{column} is required but empty",
    "negative": "{column} = {value} is below the minimum {minimum}",
    "invalid_choice": "{column} = {value!r} is not one of {choices}",
    "future": "{column} = {value} is later than the load time {now}",
    "end_before_start": "{column} = {value} is before {start}",
}
_HINTS = {
    "timestamp": (
        " (set format = '%Y%m%d...' for other layouts, or transform = 'epoch_s' for numbers)"
    ),
    "date": " (set format for layouts other than YYYY-MM-DD)",
    "boolean": " (set true_values / false_values for other spellings)",
}


def _stage_name(table: str) -> str:
    return f"_cw_stage_{table}"


def _stage_columns(table: Table, specs: Sequence[SourceSpec]) -> list[tuple[str, ColumnType]]:
    """The stage holds what the table's sources map, no more: narrow rows copy fast."""
    mapped = {name for spec in specs for name in spec.columns}
    looked_up = {name for spec in specs for name, m in spec.columns.items() if m.lookup is not None}
    columns: list[tuple[str, ColumnType]] = [
        (c.name, c.type) for c in table.columns if c.name in mapped
    ]
    columns.append(("_row", "bigint"))
    columns += [(f"_lookup_{c.name}", "string") for c in table.columns if c.name in looked_up]
    # Rows whose values failed a check stay in the stage with their first
    # problem (DuckDB path) and are marked before anything is published.
    columns += [(BAD_COLUMN, "string"), (BAD_REASON, "string"), (_KEY_HASH, "bigint")]
    return columns


@contextlib.contextmanager
def _mapping_errors(spec: SourceSpec, source: SourceFile) -> Iterator[None]:
    """An engine error while typing rows is a mapping that does not fit the data."""
    try:
        yield
    except (duckdb.Error, WarehouseError) as exc:
        message = str(exc).splitlines()[0].removeprefix("duckdb warehouse: ")
        raise MappingError(
            f"source {spec.name!r}: its mapping cannot be applied to {source.label}: {message}; "
            "check the expr and transform mappings against the file's columns"
        ) from None


def _key_columns(table: Table, spec: SourceSpec) -> list[str]:
    """The table's key columns that the source fills (the others are null alike)."""
    return [c for c in table.key if c in spec.columns]


def _col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(name, table=table, quoted=True)


def _null_safe_match(
    columns: Sequence[str], left: str, right: str, required: Sequence[str] = ()
) -> exp.Expr:
    # Required columns are never null in staged or loaded rows, so plain
    # equality means the same there, and Postgres can hash-join (and MySQL
    # look up an index) on '=' but never on IS NOT DISTINCT FROM / <=>.
    return exp.and_(
        *[
            _col(c, left).eq(_col(c, right))
            if c in required
            else exp.NullSafeEQ(this=_col(c, left), expression=_col(c, right))
            for c in columns
        ]
    )


class LoadState:
    """What every step of one ``ingest`` run shares."""

    settings: Settings
    base_dir: Path
    wh: Warehouse
    now: dt.datetime
    strict: bool
    progress: ProgressFn | None
    engine: duckdb.DuckDBPyConnection
    load_id: str
    _own_engine: bool
    _native: bool
    _marked: int
    _compiled: dict[tuple[str, pa.Schema], CompiledMapping]
    _quarantine: list[dict[str, Any]]


class Rejections(LoadState):
    """Turning rejected rows into quarantine records."""

    def _reject_typed(
        self,
        spec: SourceSpec,
        source: SourceFile,
        mapping: CompiledMapping,
        bad: list[dict[str, Any]],
        raw: list[dict[str, Any]],
    ) -> None:
        """Quarantine rows whose values failed a check, with their source record."""
        table = TABLES[spec.table]
        for row, record in zip(bad, raw, strict=True):
            column, reason = row[BAD_COLUMN], row[BAD_REASON]
            used = mapping.sources.get(column, ())
            if reason in ("unparseable", "missing_value") and used:
                values = [record.get(n) for n in used]
                value: Any = values[0] if len(values) == 1 else dict(zip(used, values, strict=True))
            else:
                value = row.get(column)
            target = table.column(column)
            start = next((s for s, e in table.ordered_pairs if e == column), "")
            message = _MESSAGES[reason].format(
                column=column,
                value=value,
                type=target.type,
                hint=_HINTS.get(target.type, ""),
                minimum=target.minimum,
                choices=", ".join(target.choices or ()),
                now=self.now.isoformat(timespec="seconds"),
                start=start,
            )
            self._reject(spec, source, int(row["_row"]), column, value, reason, message, record)

    def _reject(
        self,
        spec: SourceSpec,
        source: SourceFile,
        row_number: int,
        column: str | None,
        value: Any,
        reason: str,
        message: str,
        record: dict[str, Any],
    ) -> None:
        self._quarantine.append(
            {
                "load_id": self.load_id,
                "source": spec.name,
                "target_table": spec.table,
                "file": source.label,
                "row_number": row_number,
                "column_name": column,
                "value": None
                if value is None
                else (value if isinstance(value, str) else json.dumps(value, default=str)),
                "reason": reason,
                "message": message,
                "record": json.dumps(record, default=str, ensure_ascii=False),
                "quarantined_at": self.now,
            }
        )

    def _flush_quarantine(self) -> None:
        if self._quarantine:
            self.wh.append(
                QUARANTINE_TABLE,
                pa.Table.from_pylist(self._quarantine, schema=arrow_schema(QUARANTINE_TABLE)),
            )

    # -- steps 2 and 3: check against the warehouse, publish ----------------------------
