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
import uuid
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from sqlglot import exp

from churnwatch.config import Settings, SourceSpec
from churnwatch.errors import ChurnwatchError, StrictLoadError
from churnwatch.ingest.checks import Checks, _fill_account_dates
from churnwatch.ingest.mapping import (
    CompiledMapping,
)
from churnwatch.ingest.quarantine import _MARKS, _STRICT_SAMPLE, _stage_name
from churnwatch.ingest.report import FileLoad, IngestReport, ProgressFn
from churnwatch.ingest.sources import SourceFile, fingerprint, list_files
from churnwatch.ingest.staging import Staging, _stages
from churnwatch.schema import LOAD_ORDER, TABLES
from churnwatch.warehouse import (
    LOADS_TABLE,
    DuckDBWarehouse,
    Warehouse,
    arrow_schema,
)

__all__ = ["FileLoad", "IngestReport", "ingest"]


class _Load(Staging, Checks):
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
