"""The analytical warehouse: where the canonical tables live.

One interface over three engines. DuckDB (an embedded file, nothing to start)
is the default; Postgres and MySQL/MariaDB serve where the data already lives.
Statements are sqlglot expressions rendered for the engine's dialect, never
SQL assembled from strings, so one query serves every engine.

Examples
--------
>>> from churnwatch.warehouse import connect
>>> with connect("duckdb:///:memory:") as wh:
...     wh.ensure_schema()
...     wh.count("events")
0
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import duckdb
import pyarrow as pa
import sqlalchemy as sa
from sqlglot import exp

from churnwatch.errors import WarehouseError
from churnwatch.schema import TABLES, ColumnType, sql_type

__all__ = [
    "LOADS_TABLE",
    "QUARANTINE_TABLE",
    "SYSTEM_TABLES",
    "DuckDBWarehouse",
    "SQLWarehouse",
    "Warehouse",
    "connect",
]

LOADS_TABLE = "_loads"
QUARANTINE_TABLE = "quarantine"

#: Bookkeeping tables: what was loaded when, and every rejected row.
SYSTEM_TABLES: dict[str, tuple[tuple[str, ColumnType], ...]] = {
    LOADS_TABLE: (
        ("load_id", "string"),
        ("source", "string"),
        ("target_table", "string"),
        ("file", "string"),
        ("fingerprint", "string"),
        ("rows_read", "bigint"),
        ("rows_inserted", "bigint"),
        ("rows_updated", "bigint"),
        ("rows_quarantined", "bigint"),
        ("accounts_created", "bigint"),
        ("started_at", "timestamp"),
        ("finished_at", "timestamp"),
    ),
    QUARANTINE_TABLE: (
        ("load_id", "string"),
        ("source", "string"),
        ("target_table", "string"),
        ("file", "string"),
        ("row_number", "bigint"),
        ("column_name", "string"),
        ("value", "string"),
        ("reason", "string"),
        ("message", "string"),
        ("record", "string"),
        ("quarantined_at", "timestamp"),
    ),
}


def table_columns(name: str) -> tuple[tuple[str, ColumnType], ...]:
    """Columns and abstract types of a canonical or system table."""
    if name in SYSTEM_TABLES:
        return SYSTEM_TABLES[name]
    return tuple((c.name, c.type) for c in TABLES[name].columns)


class Warehouse:
    """Common behaviour of every warehouse engine.

    Subclasses provide statement execution, bulk appends and transactions;
    this class builds the schema and the bookkeeping queries once for all.
    """

    #: sqlglot dialect name of the engine.
    dialect: str = "duckdb"
    url: str = ""

    # -- engine primitives -------------------------------------------------
    def execute(self, statement: exp.Expression) -> int:
        """Run a statement; return the number of rows it changed (or -1)."""
        raise NotImplementedError  # pragma: no cover - abstract

    def query(self, statement: exp.Expression) -> pa.Table:
        """Run a query and return its result as an Arrow table."""
        raise NotImplementedError  # pragma: no cover - abstract

    def append(self, table: str, rows: pa.Table) -> None:
        """Insert Arrow rows into ``table`` (columns matched by name)."""
        raise NotImplementedError  # pragma: no cover - abstract

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        """A context in which every statement commits together or not at all."""
        raise NotImplementedError  # pragma: no cover - abstract

    def table_exists(self, name: str) -> bool:
        """Whether a (non-temporary) table of that name exists."""
        raise NotImplementedError  # pragma: no cover - abstract

    def close(self) -> None:
        """Release the connection."""

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- schema ------------------------------------------------------------
    def create_table(
        self, name: str, columns: Sequence[tuple[str, ColumnType]], *, if_not_exists: bool = True
    ) -> None:
        """Create a table from abstract column types."""
        schema = exp.Schema(
            this=exp.to_table(name),
            expressions=[
                exp.ColumnDef(
                    this=exp.to_identifier(column, quoted=True),
                    kind=exp.DataType.build(sql_type(kind, self.dialect), dialect=self.dialect),
                )
                for column, kind in columns
            ],
        )
        self.execute(exp.Create(this=schema, kind="TABLE", exists=if_not_exists))

    def drop_table(self, name: str) -> None:
        """Drop a table if it exists."""
        self.execute(exp.Drop(tables=[exp.to_table(name)], kind="TABLE", exists=True))

    def ensure_schema(self) -> None:
        """Create every canonical and bookkeeping table that is missing."""
        for name in (*TABLES, *SYSTEM_TABLES):
            if not self.table_exists(name):
                self.create_table(name, table_columns(name))

    # -- bookkeeping queries -------------------------------------------------
    def count(self, table: str, where: exp.Expression | None = None) -> int:
        """Number of rows of ``table`` (matching ``where``)."""
        query = exp.select(exp.func("COUNT", exp.Star())).from_(table)
        if where is not None:
            query = query.where(where)
        return int(self.query(query).column(0)[0].as_py())

    def fingerprint_loaded(self, fingerprint: str, target_table: str) -> bool:
        """Whether a file with this content was already loaded into ``target_table``."""
        return (
            self.count(
                LOADS_TABLE,
                exp.and_(
                    exp.column("fingerprint").eq(exp.Literal.string(fingerprint)),
                    exp.column("target_table").eq(exp.Literal.string(target_table)),
                ),
            )
            > 0
        )


def _arrow_for(columns: Sequence[tuple[str, ColumnType]]) -> pa.Schema:
    types: dict[ColumnType, pa.DataType] = {
        "string": pa.string(),
        "timestamp": pa.timestamp("us", tz="UTC"),
        "date": pa.date32(),
        "double": pa.float64(),
        "bigint": pa.int64(),
        "boolean": pa.bool_(),
        "json": pa.string(),
    }
    return pa.schema([(name, types[kind]) for name, kind in columns])


def arrow_schema(table: str) -> pa.Schema:
    """The Arrow schema of a canonical or system table (JSON as text)."""
    return _arrow_for(table_columns(table))


class DuckDBWarehouse(Warehouse):
    """A warehouse in a DuckDB file (or in memory with ``:memory:``).

    Parameters
    ----------
    path : str or Path
        Database file; created when missing.
    memory_limit_mb : int
        Memory DuckDB may use before spilling to disk next to the file.
    threads_count : int
        Worker threads; 0 keeps DuckDB's default (every core).
    """

    dialect = "duckdb"

    def __init__(
        self, path: str | Path = ":memory:", memory_limit_mb: int = 1536, threads_count: int = 0
    ) -> None:
        self.path = str(path)
        self.url = f"duckdb:///{self.path}"
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.connection = duckdb.connect(self.path)
        except duckdb.Error as exc:
            raise WarehouseError(f"cannot open the DuckDB warehouse {self.path}: {exc}") from None
        # Settings are values we choose, not user text: still set through
        # DuckDB's own SET so that no SQL is assembled by hand.
        self.connection.execute("SET TimeZone = 'UTC'")
        self.connection.execute(f"SET memory_limit = '{int(memory_limit_mb)}MB'")
        self.connection.execute("SET preserve_insertion_order = false")
        if threads_count:
            self.connection.execute(f"SET threads = {int(threads_count)}")
        self._in_transaction = False

    def execute(self, statement: exp.Expression) -> int:
        result = self.connection.execute(statement.sql(dialect="duckdb"))
        if isinstance(statement, exp.Insert | exp.Update | exp.Delete):
            row = result.fetchone()
            return int(row[0]) if row else 0
        return -1

    def query(self, statement: exp.Expression) -> pa.Table:
        return self.connection.execute(statement.sql(dialect="duckdb")).to_arrow_table()

    def append(self, table: str, rows: pa.Table) -> None:
        if rows.num_rows == 0:
            return
        self.connection.register("_cw_append", rows)
        try:
            insert = exp.insert(
                exp.select(*[exp.column(c, quoted=True) for c in rows.column_names]).from_(
                    "_cw_append"
                ),
                table,
                columns=[exp.to_identifier(c, quoted=True) for c in rows.column_names],
            )
            self.connection.execute(insert.sql(dialect="duckdb"))
        finally:
            self.connection.unregister("_cw_append")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        if self._in_transaction:  # nested: the outer transaction decides
            yield
            return
        self.connection.execute("BEGIN TRANSACTION")
        self._in_transaction = True
        try:
            yield
        except BaseException:
            self.connection.execute("ROLLBACK")
            raise
        else:
            self.connection.execute("COMMIT")
        finally:
            self._in_transaction = False

    def table_exists(self, name: str) -> bool:
        found = self.connection.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]
        ).fetchone()
        return bool(found and found[0])

    def close(self) -> None:
        self.connection.close()


def normalize_url(url: str) -> str:
    """Give a database URL the driver Churnwatch installs.

    ``postgresql://`` would pick psycopg2 and ``mysql://`` mysqlclient, neither
    of which is installed; psycopg 3 and PyMySQL are.

    Examples
    --------
    >>> normalize_url("postgresql://postgres@127.0.0.1/test")
    'postgresql+psycopg://postgres@127.0.0.1/test'
    >>> normalize_url("mariadb://root@127.0.0.1/test")
    'mysql+pymysql://root@127.0.0.1/test'
    """
    url = re.sub(r"^postgres(ql)?://", "postgresql+psycopg://", url)
    return re.sub(r"^(mysql|mariadb)://", "mysql+pymysql://", url)


class SQLWarehouse(Warehouse):
    """A warehouse in Postgres or MySQL/MariaDB, reached through SQLAlchemy.

    One connection is held for the warehouse's lifetime, so staging tables and
    transactions span statements.
    """

    def __init__(self, url: str) -> None:
        self.url = normalize_url(url)
        try:
            self.engine = sa.create_engine(self.url)
            self.connection = self.engine.connect()
        except (sa.exc.SQLAlchemyError, ImportError) as exc:
            raise WarehouseError(f"cannot connect to the warehouse {url}: {exc}") from None
        name = self.engine.dialect.name
        if name == "postgresql":
            self.dialect = "postgres"
            self.connection.exec_driver_sql("SET TIME ZONE 'UTC'")
        elif name in ("mysql", "mariadb"):
            self.dialect = "mysql"
            self.connection.exec_driver_sql("SET time_zone = '+00:00'")
        else:
            raise WarehouseError(
                f"unsupported warehouse {url}: use duckdb:///FILE, postgresql:// or mysql://"
            )
        self.connection.commit()
        self._depth = 0

    def _run(self, statement: exp.Expression) -> sa.CursorResult[Any]:
        result = self.connection.exec_driver_sql(statement.sql(dialect=self.dialect))
        if self._depth == 0:
            self.connection.commit()
        return result

    def execute(self, statement: exp.Expression) -> int:
        return int(self._run(statement).rowcount)

    def query(self, statement: exp.Expression) -> pa.Table:
        result = self._run(statement)
        names = list(result.keys())
        columns = list(zip(*result.fetchall(), strict=False)) or [() for _ in names]
        arrays = [pa.array([_utc(v) for v in col]) for col in columns]
        return pa.table(arrays, names=names) if names else pa.table({})

    def append(self, table: str, rows: pa.Table) -> None:
        if rows.num_rows == 0:
            return
        names = rows.column_names
        values = zip(*(rows.column(n).to_pylist() for n in names), strict=True)
        raw = self.connection.connection.driver_connection
        assert raw is not None  # an open SQLAlchemy connection always has one
        if self.dialect == "postgres":
            # COPY is the fast path into Postgres: one round trip per batch.
            columns = ", ".join(exp.to_identifier(n, quoted=True).sql("postgres") for n in names)
            target = exp.to_table(table).sql("postgres")
            with raw.cursor() as cursor, cursor.copy(f"COPY {target} ({columns}) FROM STDIN") as copy:
                for row in values:
                    copy.write_row(row)
        else:
            columns = ", ".join(exp.to_identifier(n, quoted=True).sql("mysql") for n in names)
            placeholders = ", ".join(["%s"] * len(names))
            target = exp.to_table(table).sql("mysql")
            with raw.cursor() as cursor:
                # PyMySQL folds executemany into multi-row INSERTs; DATETIME
                # takes naive UTC values.
                cursor.executemany(
                    f"INSERT INTO {target} ({columns}) VALUES ({placeholders})",
                    [tuple(_naive_utc(v) for v in row) for row in values],
                )
        if self._depth == 0:
            self.connection.commit()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        self._depth += 1
        try:
            yield
        except BaseException:
            self._depth -= 1
            if self._depth == 0:
                self.connection.rollback()
            raise
        else:
            self._depth -= 1
            if self._depth == 0:
                self.connection.commit()

    def table_exists(self, name: str) -> bool:
        return bool(sa.inspect(self.connection).has_table(name))

    def close(self) -> None:
        self.connection.close()
        self.engine.dispose()


def _utc(value: Any) -> Any:
    # MySQL hands back naive DATETIMEs that hold UTC; make them say so.
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def _naive_utc(value: Any) -> Any:
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def connect(
    url: str, *, base_dir: str | Path | None = None, memory_limit_mb: int = 1536,
    threads_count: int = 0,
) -> Warehouse:
    """Open the warehouse at ``url``.

    Parameters
    ----------
    url : str
        ``duckdb:///FILE`` (relative paths are taken from ``base_dir``),
        ``duckdb:///:memory:``, ``postgresql://...`` or ``mysql://...``.
    base_dir : str or Path, optional
        Folder that relative DuckDB paths are resolved against.
    memory_limit_mb, threads_count : int
        DuckDB resource limits (ignored by other engines).

    Raises
    ------
    WarehouseError
        If the URL names no supported engine or the engine cannot be reached.
    """
    if url.startswith("duckdb://"):
        path = url.removeprefix("duckdb://").removeprefix("/") or ":memory:"
        if path != ":memory:" and not Path(path).is_absolute() and base_dir is not None:
            path = str(Path(base_dir) / path)
        return DuckDBWarehouse(path, memory_limit_mb=memory_limit_mb, threads_count=threads_count)
    if re.match(r"^(postgres(ql)?|mysql|mariadb)(\+\w+)?://", url):
        return SQLWarehouse(url)
    raise WarehouseError(
        f"unsupported warehouse URL {url!r}: use duckdb:///FILE, postgresql://... or mysql://..."
    )
