"""Step 1 of a load: read each batch and type it into the staging table."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlglot import exp

from churnwatch.config import SourceSpec
from churnwatch.ingest.mapping import (
    BAD_COLUMN,
    BAD_REASON,
    BATCH_VIEW,
    INDEX_COLUMN,
    CompiledMapping,
    compile_mapping,
)
from churnwatch.ingest.quarantine import (
    _KEY_HASH,
    _MARKS,
    _ROW_NUMBER,
    Rejections,
    _col,
    _key_columns,
    _mapping_errors,
    _stage_columns,
    _stage_name,
)
from churnwatch.ingest.report import FileLoad
from churnwatch.ingest.sources import Batch, SourceFile, read_batches
from churnwatch.schema import TABLES
from churnwatch.warehouse import (
    Warehouse,
    key_index_columns,
)

__all__ = ["Staging"]


class Staging(Rejections):
    """Reading sources and typing their rows into the stage."""

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
