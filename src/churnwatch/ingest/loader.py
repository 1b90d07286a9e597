"""Loading sources into the warehouse without losing a row.

Every row read ends in exactly one place: its canonical table, or the
``quarantine`` table with its file, row number, column, value and reason. A
load runs in three steps:

1. **Read and type** each batch (:mod:`~churnwatch.ingest.sources`,
   :mod:`~churnwatch.ingest.mapping`): rows with a value problem go to
   quarantine, the rest to a staging table in the warehouse.
2. **Check against the warehouse**, in SQL: look-ups, duplicate keys inside the
   load, accounts that are not loaded, events already loaded.
3. **Publish**: mutable tables replace rows with the same key (a later export
   revises an account); immutable events are only appended.

Each file loads in one transaction, recorded in ``_loads`` with a fingerprint
of its content, so loading the same file again changes nothing and a load
killed halfway leaves no trace. A strict load runs every file in one
transaction and fails it whole at the first rejected row.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlglot import exp

from churnwatch.config import Settings, SourceSpec
from churnwatch.errors import ChurnwatchError, MappingError, StrictLoadError, WarehouseError
from churnwatch.ingest.mapping import (
    BAD_COLUMN,
    BAD_REASON,
    BATCH_VIEW,
    INDEX_COLUMN,
    ROW_NUMBER_COLUMN,
    CompiledMapping,
    compile_mapping,
)
from churnwatch.ingest.sources import Batch, SourceFile, fingerprint, list_files, read_batches
from churnwatch.schema import LOAD_ORDER, TABLES, ColumnType, Table
from churnwatch.warehouse import (
    LOADS_TABLE,
    QUARANTINE_TABLE,
    DuckDBWarehouse,
    Warehouse,
    arrow_schema,
    key_index_columns,
)

__all__ = ["FileLoad", "IngestReport", "ingest"]

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


@dataclass
class FileLoad:
    """What happened to one file (or query) of a source."""

    source: str
    table: str
    file: str
    rows_read: int = 0
    inserted: int = 0
    updated: int = 0
    quarantined: int = 0
    accounts_created: int = 0
    skipped: bool = False
    error: str | None = None
    reasons: Counter[str] = field(default_factory=Counter)

    @property
    def loaded(self) -> int:
        """Rows now in the canonical table from this file (new or replacing)."""
        return self.inserted + self.updated


@dataclass
class IngestReport:
    """The outcome of one ``ingest`` run."""

    files: list[FileLoad] = field(default_factory=list)

    @property
    def rows_read(self) -> int:
        """Rows read across every file."""
        return sum(f.rows_read for f in self.files)

    @property
    def quarantined(self) -> int:
        """Rows rejected across every file."""
        return sum(f.quarantined for f in self.files)

    @property
    def errors(self) -> list[FileLoad]:
        """Files that could not be loaded at all."""
        return [f for f in self.files if f.error]

    @property
    def reasons(self) -> Counter[str]:
        """Rejected rows by reason."""
        total: Counter[str] = Counter()
        for f in self.files:
            total.update(f.reasons)
        return total


ProgressFn = Callable[[FileLoad], None]


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


class _Load:
    """One ``ingest`` run: the warehouse, the staging engine and the clock."""

    def __init__(
        self,
        settings: Settings,
        base_dir: Path,
        warehouse: Warehouse,
        now: dt.datetime,
        strict: bool,
        progress: ProgressFn | None,
    ) -> None:
        self.settings = settings
        self.base_dir = base_dir
        self.wh = warehouse
        self.now = now
        self.strict = strict
        self.progress = progress
        # Batches are typed by DuckDB: the warehouse's own connection when it
        # is DuckDB (no copy at all), a private in-memory one otherwise.
        if isinstance(warehouse, DuckDBWarehouse):
            self.engine = warehouse.connection
            self._own_engine = False
        else:
            self.engine = duckdb.connect()
            self.engine.execute("SET TimeZone = 'UTC'")
            self.engine.execute("SET enable_progress_bar = false")
            self._own_engine = True
        self._native = not self._own_engine
        self._marked = 0
        self._compiled: dict[tuple[str, pa.Schema], CompiledMapping] = {}
        self.load_id = ""
        self._quarantine: list[dict[str, Any]] = []

    def close(self) -> None:
        if self._own_engine:
            self.engine.close()

    # -- one file ------------------------------------------------------------------
    def load_file(self, spec: SourceSpec, source: SourceFile) -> FileLoad:
        table = TABLES[spec.table]
        result = FileLoad(source=spec.name, table=spec.table, file=source.label)
        print_fp = fingerprint(source.path) if source.path is not None else None
        if print_fp is not None and self.wh.fingerprint_loaded(print_fp, spec.table):
            result.skipped = True
            return result
        self.load_id = uuid.uuid4().hex
        self._quarantine = []
        started = dt.datetime.now(dt.UTC)
        stage = _stage_name(spec.table)
        # Staging writes only the stage, which every load empties first: it
        # needs no transaction, and outside one DuckDB frees each batch as it
        # goes (inside, it keeps them all until the commit).
        self.wh.execute(exp.delete(stage))
        self.wh.execute(exp.delete(_MARKS))
        self._marked = 0
        if self._native and source.format == "parquet":
            self._stage_parquet(spec, source, stage, result)
        else:
            self._stage_batches(spec, source, stage, result)
        with self.wh.transaction():
            self._check_and_publish(spec, source, table, stage, result)
            result.quarantined = len(self._quarantine)
            result.reasons = Counter(q["reason"] for q in self._quarantine)
            if self.strict and self._quarantine:
                sample = self._quarantine[:_STRICT_SAMPLE]
                raise StrictLoadError(
                    f"strict load: {len(self._quarantine)} row(s) of {source.label} would be "
                    f"quarantined; nothing was loaded. First: row {sample[0]['row_number']}: "
                    f"{sample[0]['message']}",
                    problems=sample,
                )
            self._flush_quarantine()
            self.wh.append(
                LOADS_TABLE,
                pa.Table.from_pylist(
                    [
                        {
                            "load_id": self.load_id,
                            "source": spec.name,
                            "target_table": spec.table,
                            "file": source.label,
                            "fingerprint": print_fp,
                            "rows_read": result.rows_read,
                            "rows_inserted": result.inserted,
                            "rows_updated": result.updated,
                            "rows_quarantined": result.quarantined,
                            "accounts_created": result.accounts_created,
                            "started_at": started,
                            "finished_at": dt.datetime.now(dt.UTC),
                        }
                    ],
                    schema=arrow_schema(LOADS_TABLE),
                ),
            )
        return result

    # -- step 1: type the rows ---------------------------------------------------------
    def _compile(self, spec: SourceSpec, schema: pa.Schema) -> CompiledMapping:
        mapping = self._compiled.get((spec.name, schema))
        if mapping is None:
            mapping = compile_mapping(
                spec,
                schema,
                now=self.now,
                future_tolerance_hours=self.settings.ingest.future_tolerance_hours,
            )
            self._compiled[(spec.name, schema)] = mapping
        return mapping

    def _staged_columns(self, mapping: CompiledMapping) -> list[str]:
        columns = [c for c in mapping.columns if c not in mapping.lookups]
        return columns + [f"_lookup_{name}" for name in mapping.lookups]

    def _insert_typed(self, spec: SourceSpec, mapping: CompiledMapping, stage: str) -> None:
        """DuckDB: type every row straight into the stage, bad ones with their problem.

        Each row also gets a hash of its key, computed while the row is at
        hand, so that finding duplicate keys later groups one integer column.
        """
        columns = self._staged_columns(mapping)
        # Looked-up columns are filled later: the hash covers the rest of the
        # key, which only widens the candidates the exact check looks at.
        key = [c for c in _key_columns(TABLES[spec.table], spec) if c not in mapping.lookups]
        hashed: list[exp.Expr] = [_col(c) for c in key] or [exp.Literal.number(0)]
        # Shifted right by one bit: an unsigned 64-bit hash fits a BIGINT.
        key_hash = exp.cast(
            exp.BitwiseRightShift(
                this=exp.func("HASH", *hashed),
                expression=exp.Literal.number(1),
            ),
            "BIGINT",
        )
        typed = exp.select(
            *[_col(c) for c in columns],
            exp.alias_(_col(_ROW_NUMBER), "_row"),
            _col(BAD_COLUMN),
            _col(BAD_REASON),
            exp.alias_(key_hash, _KEY_HASH),
        ).from_(mapping.query.subquery("_cw_all"))
        names = [*columns, "_row", BAD_COLUMN, BAD_REASON, _KEY_HASH]
        self.wh.execute(
            exp.insert(typed, stage, columns=[exp.to_identifier(c, quoted=True) for c in names])
        )

    def _bad_rows(
        self,
        mapping: CompiledMapping,
        stage: str,
        first: int | None = None,
        last: int | None = None,
    ) -> list[dict[str, Any]]:
        where: exp.Expr = _col(BAD_REASON).is_(exp.null()).not_()
        if first is not None and last is not None:
            where = exp.and_(
                where,
                exp.Between(
                    this=_col("_row"), low=exp.Literal.number(first), high=exp.Literal.number(last)
                ),
            )
        query = (
            exp.select(
                *[_col(c) for c in mapping.columns if c not in mapping.lookups],
                _col("_row"),
                _col(BAD_COLUMN),
                _col(BAD_REASON),
            )
            .from_(stage)
            .where(where)
        )
        rows: list[dict[str, Any]] = self.wh.query(query.order_by(_col("_row"))).to_pylist()
        return rows

    def _stage_batches(
        self, spec: SourceSpec, source: SourceFile, stage: str, result: FileLoad
    ) -> None:
        for batch in read_batches(spec, source, self.settings.ingest.batch_rows):
            result.rows_read += batch.rows.num_rows + len(batch.malformed)
            for row in batch.malformed:
                self._reject(
                    spec,
                    source,
                    row.row_number,
                    None,
                    row.text,
                    "malformed_row",
                    row.message,
                    {"line": row.text},
                )
            if batch.rows.num_rows:
                self._stage_batch(
                    spec, source, batch, self._compile(spec, batch.rows.schema), stage
                )
            if self.progress is not None:
                self.progress(result)

    def _stage_batch(
        self,
        spec: SourceSpec,
        source: SourceFile,
        batch: Batch,
        mapping: CompiledMapping,
        stage: str,
    ) -> None:
        rows = batch.rows.append_column(INDEX_COLUMN, pa.array(np.arange(batch.rows.num_rows)))
        rows = rows.append_column(_ROW_NUMBER, pa.array(batch.row_numbers, type=pa.int64()))
        self.engine.register(BATCH_VIEW, rows)
        try:
            bad = self._type_batch(spec, source, mapping, stage, batch)
        finally:
            self.engine.unregister(BATCH_VIEW)
        if bad:
            positions = np.searchsorted(batch.row_numbers, [row["_row"] for row in bad])
            raw = batch.rows.take(pa.array(positions)).to_pylist()
            self._reject_typed(spec, source, mapping, bad, raw)

    def _type_batch(
        self,
        spec: SourceSpec,
        source: SourceFile,
        mapping: CompiledMapping,
        stage: str,
        batch: Batch,
    ) -> list[dict[str, Any]]:
        """Type a registered batch into the stage; return its rows with a problem."""
        if self._native:
            # DuckDB warehouse: one pass from the Arrow batch into the stage,
            # with no round trip through Python.
            with _mapping_errors(spec, source):
                self._insert_typed(spec, mapping, stage)
            first, last = int(batch.row_numbers[0]), int(batch.row_numbers[-1])
            return self._bad_rows(mapping, stage, first, last)
        with _mapping_errors(spec, source):
            typed = self.engine.execute(mapping.query.sql(dialect="duckdb")).to_arrow_table()
        # Outside the mapping's errors: a server that refuses a value (an id too
        # long for MySQL's VARCHAR(255)) is a warehouse error, not a mapping one.
        bad_mask = typed.column("_cw_bad")
        good_rows = typed.filter(pc.invert(bad_mask))
        staged = good_rows.select(self._staged_columns(mapping)).append_column(
            "_row", good_rows.column(_ROW_NUMBER)
        )
        self.wh.append(stage, staged)
        bad = typed.filter(bad_mask)
        names = ["_row" if c == _ROW_NUMBER else c for c in bad.column_names]
        rows: list[dict[str, Any]] = bad.rename_columns(names).to_pylist()
        return rows

    def _stage_parquet(
        self, spec: SourceSpec, source: SourceFile, stage: str, result: FileLoad
    ) -> None:
        """DuckDB reads Parquet itself: in parallel, in bounded memory, in one statement."""
        assert source.path is not None
        mapping = self._compile(spec, pq.read_schema(source.path))
        scan = exp.func(
            "READ_PARQUET",
            exp.Literal.string(str(source.path)),
            exp.EQ(this=exp.var("file_row_number"), expression=exp.true()),
        )
        view = exp.select(
            exp.Star(except_=[exp.column("file_row_number")]),
            exp.alias_(exp.column("file_row_number"), INDEX_COLUMN),
            exp.alias_(
                exp.Add(this=exp.column("file_row_number"), expression=exp.Literal.number(1)),
                _ROW_NUMBER,
            ),
        ).from_(scan)
        self.engine.execute(
            exp.Create(
                this=exp.to_table(BATCH_VIEW),
                kind="VIEW",
                replace=True,
                properties=exp.Properties(expressions=[exp.TemporaryProperty()]),
                expression=view,
            ).sql(dialect="duckdb")
        )
        try:
            with _mapping_errors(spec, source):
                self._insert_typed(spec, mapping, stage)
        finally:
            self.engine.execute(
                exp.Drop(tables=[exp.to_table(BATCH_VIEW)], kind="VIEW", exists=True).sql(
                    dialect="duckdb"
                )
            )
        result.rows_read = pq.ParquetFile(source.path).metadata.num_rows
        bad = self._bad_rows(mapping, stage)
        if bad:
            numbers = pa.table({"n": pa.array([row["_row"] - 1 for row in bad], pa.int64())})
            self.engine.register("_cw_bad_numbers", numbers)
            try:
                raw_query = (
                    exp.select(exp.Star(except_=[exp.column("file_row_number")]))
                    .from_(scan)
                    .where(
                        exp.In(
                            this=exp.column("file_row_number"),
                            query=exp.select("n").from_("_cw_bad_numbers").subquery(),
                        )
                    )
                    .order_by(exp.column("file_row_number"))
                )
                raw = (
                    self.engine.execute(raw_query.sql(dialect="duckdb"))
                    .to_arrow_table()
                    .to_pylist()
                )
            finally:
                self.engine.unregister("_cw_bad_numbers")
            self._reject_typed(spec, source, mapping, bad, raw)
        if self.progress is not None:
            self.progress(result)

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
    def _mark(self, query: exp.Select) -> None:
        """Insert (_row, reason, detail) rows into the marks table."""
        changed = self.wh.execute(exp.insert(query, _MARKS, columns=["_row", "reason", "detail"]))
        # A driver that cannot count is taken to have marked something.
        self._marked += changed if changed >= 0 else 1

    def _unmarked(self, alias: str) -> exp.Expr:
        """Rows of ``alias`` not yet marked; no test at all while nothing is."""
        if not self._marked:
            return exp.true()
        marked = (
            exp.select(exp.Literal.number(1))
            .from_(exp.to_table(_MARKS).as_("m"))
            .where(_col("_row", "m").eq(_col("_row", alias)))
        )
        return exp.Not(this=exp.Exists(this=marked))

    def _check_and_publish(
        self, spec: SourceSpec, source: SourceFile, table: Table, stage: str, result: FileLoad
    ) -> None:
        mapped = [c for c in table.column_names if c in spec.columns]
        # Rows that failed a value check are already quarantined: keep them out.
        self._mark(
            exp.select(_col("_row"), exp.Literal.string(_VALUE_MARK), exp.null())
            .from_(stage)
            .where(_col(BAD_REASON).is_(exp.null()).not_())
        )
        for name, (other, on, column) in self._lookups(spec).items():
            found = (
                exp.select(exp.func("MIN", _col(column, "t")))
                .from_(exp.to_table(other).as_("t"))
                .where(exp.column(on, "t", quoted=True).eq(_col(f"_lookup_{name}", stage)))
            )
            self.wh.execute(exp.update(stage, {name: found.subquery()}))
            self._mark(
                exp.select(
                    _col("_row"), exp.Literal.string("lookup_failed"), _col(f"_lookup_{name}")
                )
                .from_(stage)
                .where(_col(name).is_(exp.null()))
            )
        if table.references_accounts:
            self._check_accounts(spec, table, stage, result)
        # Duplicate keys inside this load: the first occurrence stays.
        key = _key_columns(table, spec)
        candidates = exp.select("*").from_(exp.to_table(stage).as_("s")).where(self._unmarked("s"))
        if self._native:
            # Only rows whose key hash repeats can be duplicates: a cheap
            # aggregate on one integer spares the window over every row.
            repeated = (
                exp.select(_col(_KEY_HASH))
                .from_(stage)
                .group_by(_col(_KEY_HASH))
                .having(exp.func("COUNT", exp.Star()) > 1)
            )
            candidates = candidates.where(
                exp.In(this=_col(_KEY_HASH, "s"), query=repeated.subquery())
            )
        window = exp.select(
            _col("_row"),
            exp.alias_(
                exp.Window(
                    this=exp.func("ROW_NUMBER"),
                    partition_by=[_col(c) for c in key],
                    order=exp.Order(expressions=[exp.Ordered(this=_col("_row"))]),
                ),
                "rn",
            ),
            exp.alias_(
                exp.Window(this=exp.func("MIN", _col("_row")), partition_by=[_col(c) for c in key]),
                "first_row",
            ),
        ).from_(candidates.subquery("c"))
        self._mark(
            exp.select(
                _col("_row"),
                exp.Literal.string("duplicate_in_load"),
                exp.cast(_col("first_row"), "VARCHAR"),
            )
            .from_(window.subquery("d"))
            .where(exp.column("rn").neq(1))
        )
        if not table.mutable:
            present = (
                exp.select(exp.Literal.number(1))
                .from_(exp.to_table(table.name).as_("t"))
                .where(_null_safe_match(key, "t", "s", table.required))
            )
            self._mark(
                exp.select(_col("_row", "s"), exp.Literal.string("duplicate_loaded"), exp.null())
                .from_(exp.to_table(stage).as_("s"))
                .where(exp.and_(exp.Exists(this=present), self._unmarked("s")))
            )
        self._collect_marks(spec, source, table, stage, mapped, key)
        if table.mutable:
            replaced = (
                exp.select(exp.Literal.number(1))
                .from_(exp.to_table(stage).as_("s"))
                .where(
                    exp.and_(
                        _null_safe_match(key, "s", table.name, table.required),
                        self._unmarked("s"),
                    )
                )
            )
            result.updated = max(
                self.wh.execute(exp.delete(table.name, where=exp.Exists(this=replaced))), 0
            )
        insert = exp.insert(
            exp.select(*[_col(c, "s") for c in mapped])
            .from_(exp.to_table(stage).as_("s"))
            .where(self._unmarked("s")),
            table.name,
            columns=[exp.to_identifier(c, quoted=True) for c in mapped],
        )
        inserted = self.wh.execute(insert)
        result.inserted = max(inserted - result.updated, 0)

    def _lookups(self, spec: SourceSpec) -> dict[str, tuple[str, str, str]]:
        return {
            name: (m.lookup.table, m.lookup.on, m.lookup.column)
            for name, m in spec.columns.items()
            if m.lookup is not None
        }

    def _check_accounts(self, spec: SourceSpec, table: Table, stage: str, result: FileLoad) -> None:
        policy = spec.unknown_account or table.unknown_account
        # A left join rather than NOT EXISTS: one hash join over the stage.
        missing = _col("account_id", "a").is_(exp.null())
        on = _col("account_id", "a").eq(_col("account_id", "s"))
        if policy == "create":
            when = table.time_column
            first_seen: exp.Expr = exp.null()
            if when is not None and when in spec.columns:
                first_seen = exp.func("MIN", _col(when, "s"))
                if table.column(when).type == "date":
                    first_seen = exp.cast(first_seen, "TIMESTAMP")
            new_accounts = (
                exp.select(_col("account_id", "s"), exp.alias_(first_seen, "created_at"))
                .from_(exp.to_table(stage).as_("s"))
                .join(exp.to_table("accounts").as_("a"), on=on, join_type="LEFT")
                .where(
                    exp.and_(
                        missing, self._unmarked("s"), _col("account_id", "s").is_(exp.null()).not_()
                    )
                )
                .group_by(_col("account_id", "s"))
            )
            result.accounts_created = max(
                self.wh.execute(
                    exp.insert(new_accounts, "accounts", columns=["account_id", "created_at"])
                ),
                0,
            )
        else:
            self._mark(
                exp.select(
                    _col("_row", "s"),
                    exp.Literal.string("unknown_account"),
                    _col("account_id", "s"),
                )
                .from_(exp.to_table(stage).as_("s"))
                .join(exp.to_table("accounts").as_("a"), on=on, join_type="LEFT")
                .where(exp.and_(missing, self._unmarked("s")))
            )

    def _collect_marks(
        self,
        spec: SourceSpec,
        source: SourceFile,
        table: Table,
        stage: str,
        mapped: list[str],
        key: list[str],
    ) -> None:
        rows = self.wh.query(
            exp.select(
                *[_col(c, "s") for c in mapped],
                _col("_row", "s"),
                _col("reason", "m"),
                _col("detail", "m"),
            )
            .from_(exp.to_table(stage).as_("s"))
            .join(exp.to_table(_MARKS).as_("m"), on=_col("_row", "s").eq(_col("_row", "m")))
            .where(_col("reason", "m").neq(exp.Literal.string(_VALUE_MARK)))
            .order_by(_col("_row", "s"))
        )
        for row in rows.to_pylist():
            reason, detail, number = row.pop("reason"), row.pop("detail"), int(row.pop("_row"))
            record = {k: v for k, v in row.items() if not k.startswith("_lookup_")}
            if reason == "duplicate_in_load":
                column, value = ",".join(key), None
                message = f"same key ({', '.join(key)}) as row {detail} of this file"
            elif reason == "duplicate_loaded":
                column, value = ",".join(key), None
                message = f"already loaded: {table.name} has a row with the same {', '.join(key)}"
            elif reason == "unknown_account":
                column, value = "account_id", detail
                message = (
                    f"account {detail!r} is not in accounts; load accounts first, or set "
                    "unknown_account = 'create' on the source"
                )
            else:  # lookup_failed
                column = next(
                    n
                    for n, m in spec.columns.items()
                    if m.lookup is not None and row.get(n) is None
                )
                lookup = spec.columns[column].lookup
                assert lookup is not None
                value = detail
                message = f"{column}: no {lookup.table} row has {lookup.on} = {detail!r}"
            self._reject(spec, source, number, column, value, reason, message, record)


def _fill_account_dates(wh: Warehouse) -> None:
    """Accounts loaded without a signup time take their first subscription or event."""
    for other, when in (("subscriptions", "started_at"), ("events", "event_time")):
        first = (
            exp.select(exp.func("MIN", _col(when, "o")))
            .from_(exp.to_table(other).as_("o"))
            .where(_col("account_id", "o").eq(_col("account_id", "accounts")))
        )
        wh.execute(
            exp.update(
                "accounts",
                {"created_at": first.subquery()},
                where=_col("created_at").is_(exp.null()),
            )
        )


@contextlib.contextmanager
def _stages(wh: Warehouse, specs: Sequence[SourceSpec]) -> Iterator[None]:
    # Created outside any transaction: on MySQL, DDL commits implicitly.
    wh.create_table(_MARKS, [("_row", "bigint"), ("reason", "string"), ("detail", "string")])
    # DuckDB keeps temporary tables in memory, spilling past its limit: the
    # staging never touches the database file.
    temporary = wh.dialect == "duckdb"
    tables = {spec.table for spec in specs}
    for name in tables:
        wh.drop_table(_stage_name(name))
        columns = _stage_columns(TABLES[name], [spec for spec in specs if spec.table == name])
        wh.create_table(_stage_name(name), columns, temporary=temporary)
        # Postgres/MySQL: the checks probe the stage, the marks and the looked-up
        # tables row by row; indexed, each probe is a look-up, not a scan.
        wh.create_index(_stage_name(name), key_index_columns(TABLES[name]))
    wh.create_index(_MARKS, ["_row"])
    for spec in specs:
        for mapping in spec.columns.values():
            if mapping.lookup is not None:
                wh.create_index(mapping.lookup.table, [mapping.lookup.on])
    try:
        yield
    finally:
        for name in tables:
            wh.drop_table(_stage_name(name))
        wh.drop_table(_MARKS)


def ingest(
    settings: Settings,
    warehouse: Warehouse,
    *,
    base_dir: str | Path = ".",
    sources: Sequence[str] | None = None,
    strict: bool | None = None,
    now: dt.datetime | None = None,
    progress: ProgressFn | None = None,
) -> IngestReport:
    """Load a project's sources into the warehouse.

    Sources run in dependency order (CSMs and accounts before what refers to
    them). Rows that fail a check go to ``quarantine``; the rest load.

    Parameters
    ----------
    settings : Settings
        The project settings, whose ``sources`` are loaded.
    warehouse : Warehouse
        Where the canonical tables live.
    base_dir : str or Path
        Folder relative source paths are taken from.
    sources : sequence of str, optional
        Names of the sources to load; all when omitted.
    strict : bool, optional
        Fail the whole run, loading nothing, at any rejected row. Defaults
        to ``settings.ingest.strict``.
    now : datetime, optional
        The load time (timestamps after it are rejected); the clock's if omitted.
    progress : callable, optional
        Called with the :class:`FileLoad` in progress after each batch.

    Returns
    -------
    IngestReport
        One :class:`FileLoad` per file: rows read, inserted, updated and
        quarantined by reason. A file that cannot be read at all has ``error``
        set and loads nothing; the other files still load (unless strict).

    Raises
    ------
    StrictLoadError
        In strict mode, when any row would be quarantined.
    """
    strict = settings.ingest.strict if strict is None else strict
    chosen = [s for s in settings.sources if sources is None or s.name in sources]
    if sources is not None:
        unknown = sorted(set(sources) - {s.name for s in settings.sources})
        if unknown:
            raise ChurnwatchError(
                f"no source named {', '.join(unknown)}; the project has: "
                f"{', '.join(s.name for s in settings.sources) or '(none)'}"
            )
    chosen.sort(key=lambda s: LOAD_ORDER.index(s.table))
    warehouse.ensure_schema()
    report = IngestReport()
    run = _Load(
        settings, Path(base_dir), warehouse, now or dt.datetime.now(dt.UTC), strict, progress
    )
    try:
        with _stages(warehouse, chosen):
            outer = warehouse.transaction() if strict else contextlib.nullcontext()
            with outer:
                for spec in chosen:
                    try:
                        files = list_files(spec, Path(base_dir))
                    except ChurnwatchError as exc:
                        if strict:
                            raise
                        report.files.append(
                            FileLoad(spec.name, spec.table, spec.path or "", error=str(exc))
                        )
                        continue
                    for source in files:
                        try:
                            report.files.append(run.load_file(spec, source))
                        except StrictLoadError:
                            raise
                        except ChurnwatchError as exc:
                            if strict:
                                raise
                            report.files.append(
                                FileLoad(spec.name, spec.table, source.label, error=str(exc))
                            )
                with warehouse.transaction():
                    _fill_account_dates(warehouse)
    finally:
        run.close()
    return report
