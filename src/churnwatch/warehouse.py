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
import hashlib
import re
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any

import duckdb
import pyarrow as pa
import sqlalchemy as sa
from sqlglot import exp

from churnwatch.errors import WarehouseError
from churnwatch.schema import TABLES, ColumnType, Table, arrow_type, sql_type

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


def key_index_columns(table: Table) -> list[str]:
    """The key columns every row fills, account first: what loads match rows by.

    Examples
    --------
    >>> key_index_columns(TABLES["events"])
    ['account_id', 'event_time', 'event_type']
    """
    required = [c for c in table.key if c in table.required]
    return sorted(required, key=lambda c: c != "account_id")


class Warehouse:
    """Common behaviour of every warehouse engine.

    Subclasses provide statement execution, bulk appends and transactions;
    this class builds the schema and the bookkeeping queries once for all.
    """

    #: sqlglot dialect name of the engine.
    dialect: str = "duckdb"
    url: str = ""

    # -- engine primitives -------------------------------------------------
    def execute(self, statement: exp.Expr) -> int:
        """Run a statement; return the number of rows it changed (or -1)."""
        raise NotImplementedError  # pragma: no cover - abstract

    def query(self, statement: exp.Expr) -> pa.Table:
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
        self,
        name: str,
        columns: Sequence[tuple[str, ColumnType]],
        *,
        if_not_exists: bool = True,
        temporary: bool = False,
    ) -> None:
        """Create a table from abstract column types (``temporary``: session-only)."""
        schema = exp.Schema(
            this=exp.to_table(name),
            expressions=[
                exp.ColumnDef(
                    this=exp.to_identifier(column, quoted=True),
                    kind=exp.DataType.build(self._column_type(column, kind), dialect=self.dialect),
                )
                for column, kind in columns
            ],
        )
        self.execute(
            exp.Create(
                this=schema,
                kind="TABLE",
                exists=if_not_exists,
                properties=self._table_properties(temporary),
            )
        )

    def _column_type(self, column: str, kind: ColumnType) -> str:
        """The engine's spelling of a column's type (a column name may refine it)."""
        return sql_type(kind, self.dialect)

    def _table_properties(self, temporary: bool = False) -> exp.Properties | None:
        """Options every created table carries (character set, collation)."""
        return exp.Properties(expressions=[exp.TemporaryProperty()]) if temporary else None

    def drop_table(self, name: str) -> None:
        """Drop a table if it exists."""
        self.execute(exp.Drop(tables=[exp.to_table(name)], kind="TABLE", exists=True))

    def create_index(self, table: str, columns: Sequence[str]) -> None:
        """Index ``columns`` of ``table`` if the engine needs it to match keys.

        DuckDB hashes its joins and would only append more slowly with an
        index, so it creates none. Postgres and MySQL compare keys through
        correlated subqueries (``EXISTS``, ``UPDATE ... SET = (SELECT ...)``)
        that scan the whole table once per row without one.
        """

    def ensure_schema(self) -> None:
        """Create every canonical and bookkeeping table that is missing."""
        for name in (*TABLES, *SYSTEM_TABLES):
            if not self.table_exists(name):
                self.create_table(name, table_columns(name))
        for name, table in TABLES.items():
            self.create_index(name, key_index_columns(table))

    # -- bookkeeping queries -------------------------------------------------
    def count(self, table: str, where: exp.Expr | None = None) -> int:
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
    return pa.schema([(name, arrow_type(kind)) for name, kind in columns])


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
        self, path: str | Path = ":memory:", memory_limit_mb: int = 1024, threads_count: int = 0
    ) -> None:
        self.path = str(path)
        self.url = f"duckdb:///{self.path}"
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self.connection = duckdb.connect(self.path)
        except (duckdb.Error, OSError) as exc:
            raise WarehouseError(f"cannot open the DuckDB warehouse {self.path}: {exc}") from None
        # Settings are values we choose, not user text: still set through
        # DuckDB's own SET so that no SQL is assembled by hand.
        self.connection.execute("SET TimeZone = 'UTC'")
        self.connection.execute(f"SET memory_limit = '{int(memory_limit_mb)}MB'")
        self.connection.execute("SET preserve_insertion_order = false")
        # A progress bar on stdout is the CLI's job, not the engine's.
        self.connection.execute("SET enable_progress_bar = false")
        # Freed memory goes back to the system promptly: without this the
        # allocator keeps pages past the limit and the process outgrows it.
        self.connection.execute("SET allocator_flush_threshold = '32MB'")
        self.connection.execute("SET allocator_background_threads = true")
        if threads_count:
            self.connection.execute(f"SET threads = {int(threads_count)}")
        self._in_transaction = False

    def execute(self, statement: exp.Expr) -> int:
        sql = statement.sql(dialect="duckdb")
        try:
            result = self.connection.execute(sql)
            if isinstance(statement, exp.Insert | exp.Update | exp.Delete):
                row = result.fetchone()
                return int(row[0]) if row else 0
        except duckdb.Error as exc:
            raise _statement_error("duckdb", sql, str(exc)) from None
        return -1

    def query(self, statement: exp.Expr) -> pa.Table:
        sql = statement.sql(dialect="duckdb")
        try:
            return _uniform_types(self.connection.execute(sql).to_arrow_table())
        except duckdb.Error as exc:
            raise _statement_error("duckdb", sql, str(exc)) from None

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
        except duckdb.Error as exc:
            raise _statement_error("duckdb", f"append to {table}", str(exc)) from None
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

    Every engine answers alike: each connection works in UTC, JSON comes back
    as text, MySQL's ``TINYINT(1)`` booleans come back as booleans and its
    zone-less ``DATETIME`` values as UTC instants, and MySQL tables compare
    strings byte for byte (case and trailing blanks count) as DuckDB and
    Postgres do.
    """

    def __init__(self, url: str) -> None:
        self.url = normalize_url(url)
        shown = _redact(url)
        self._collation = "utf8mb4_bin"
        try:
            parsed = sa.make_url(self.url)
        except (sa.exc.ArgumentError, ValueError) as exc:
            raise WarehouseError(
                f"invalid warehouse URL {shown}: {exc}; expected "
                "postgresql://USER@HOST:5432/DATABASE or mysql://USER@HOST:3306/DATABASE"
            ) from None
        try:
            # A server that never answers must not hang the caller forever.
            connect_args = {} if "connect_timeout" in parsed.query else {"connect_timeout": 10}
            self.engine = sa.create_engine(parsed, connect_args=connect_args)
            name = self.engine.dialect.name
            if name not in ("postgresql", "mysql", "mariadb"):
                raise WarehouseError(
                    f"unsupported warehouse {shown}: use duckdb:///FILE, postgresql:// or mysql://"
                )
            self.dialect = "postgres" if name == "postgresql" else "mysql"
            sa.event.listen(self.engine, "connect", self._on_connect)
            # Statements carry no parameters: without this, the drivers would
            # read a '%' in a literal ('U%') as a placeholder.
            self.connection = self.engine.connect().execution_options(no_parameters=True)
        except WarehouseError:
            raise
        except (sa.exc.NoSuchModuleError, ImportError) as exc:
            raise WarehouseError(
                f"no database driver for the warehouse {shown}: {_driver_message(exc)}; "
                "use postgresql:// (psycopg) or mysql:// (PyMySQL) without a driver suffix"
            ) from None
        except Exception as exc:  # any driver failure to connect is one error to the user
            raise WarehouseError(
                f"cannot connect to the {_ENGINE_NAMES.get(getattr(self, 'dialect', ''), '')}"
                f"warehouse at {shown}: {_driver_message(exc)}. Check that the server is "
                "running and that the URL's host, port, user, password and database are right."
            ) from None
        self._depth = 0

    def _on_connect(self, dbapi_connection: Any, _record: Any) -> None:
        """Settle each new driver connection's session the same way."""
        cursor = dbapi_connection.cursor()
        try:
            if self.dialect == "postgres":
                cursor.execute("SET TIME ZONE 'UTC'")
                # JSON as the text stored, as DuckDB and MySQL return it (psycopg
                # would parse it into dicts and lists).
                from psycopg.types.string import TextLoader

                for type_name in ("json", "jsonb"):
                    dbapi_connection.adapters.register_loader(type_name, TextLoader)
            else:
                cursor.execute(
                    "SELECT COLLATION_NAME FROM information_schema.COLLATIONS "
                    "WHERE COLLATION_NAME IN ('utf8mb4_nopad_bin', 'utf8mb4_0900_bin')"
                )
                found = sorted(row[0] for row in cursor.fetchall())
                # Byte-wise and NO PAD: 'a' <> 'A' and 'a' <> 'a ', as elsewhere.
                self._collation = found[-1] if found else "utf8mb4_bin"
                cursor.execute(f"SET NAMES utf8mb4 COLLATE {self._collation}")
                # DATETIME holds UTC; nothing may shift it.
                cursor.execute("SET time_zone = '+00:00'")
                # Strict whatever the server's default: a value that does not
                # fit is an error, never silently truncated or zeroed.
                cursor.execute(
                    "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ZERO_IN_DATE,"
                    "NO_ENGINE_SUBSTITUTION'"
                )
        finally:
            cursor.close()
        # Postgres settings are transactional: keep them.
        dbapi_connection.commit()

    # -- MySQL table layout ----------------------------------------------------
    def _column_type(self, column: str, kind: ColumnType) -> str:
        if self.dialect == "mysql" and kind == "string" and column not in _MYSQL_KEY_COLUMNS:
            # VARCHAR(255) would refuse long names, messages and quarantined
            # records; identifiers stay VARCHAR(255) because MySQL indexes no
            # TEXT column whole, and loads match rows by them (see create_index).
            return "LONGTEXT"
        return sql_type(kind, self.dialect)

    def _table_properties(self, temporary: bool = False) -> exp.Properties | None:
        found: list[exp.Expr] = [exp.TemporaryProperty()] if temporary else []
        if self.dialect == "mysql":
            found += [
                exp.CharacterSetProperty(this=exp.var("utf8mb4"), default=True),
                exp.CollateProperty(this=exp.var(self._collation), default=True),
            ]
        return exp.Properties(expressions=found) if found else None

    # -- statements --------------------------------------------------------------
    def _begin(self) -> None:
        # Raw driver work (COPY, executemany) must sit in a transaction that
        # SQLAlchemy knows of, or its commit would not reach the driver.
        if not self.connection.in_transaction():
            self.connection.begin()

    def _finish(self) -> None:
        """Commit outside an explicit transaction: every statement stands alone."""
        if self._depth == 0:
            self.connection.commit()

    def _fail(self, exc: Exception, what: str) -> WarehouseError:
        if self._depth == 0:
            with contextlib.suppress(Exception):
                self.connection.rollback()
        return _statement_error(self.dialect, what, _driver_message(exc))

    def _run(self, statement: exp.Expr) -> sa.CursorResult[Any]:
        sql = statement.sql(dialect=self.dialect)
        if self.dialect == "mysql" and self._depth > 0 and _commits_implicitly(statement):
            # MySQL commits the open transaction before any DDL: what came
            # before would be kept even if the transaction later failed.
            raise WarehouseError(
                "mysql warehouse: tables cannot be created, altered or dropped inside a "
                f"transaction (MySQL would commit it halfway); run it before: {sql[:200]}"
            )
        try:
            self._begin()
            return self.connection.exec_driver_sql(sql)
        except sa.exc.SQLAlchemyError as exc:
            raise self._fail(exc, sql) from None

    def execute(self, statement: exp.Expr) -> int:
        result = self._run(statement)
        count = int(result.rowcount)
        result.close()
        self._finish()
        return count

    def query(self, statement: exp.Expr) -> pa.Table:
        result = self._run(statement)
        try:
            description = result.cursor.description if result.returns_rows else None
            rows = result.fetchall() if result.returns_rows else []
        except sa.exc.SQLAlchemyError as exc:
            raise self._fail(exc, statement.sql(dialect=self.dialect)) from None
        self._finish()
        if not description:
            return pa.table({})
        columns = list(zip(*rows, strict=True)) if rows else [() for _ in description]
        kinds = _PG_KINDS if self.dialect == "postgres" else _MYSQL_KINDS
        return pa.table(
            [
                _arrow_array(list(values), kinds.get(column[1]), _scale(column))
                for column, values in zip(description, columns, strict=True)
            ],
            names=[column[0] for column in description],
        )

    def append(self, table: str, rows: pa.Table) -> None:
        if rows.num_rows == 0:
            return
        names = rows.column_names
        values = zip(*(rows.column(n).to_pylist() for n in names), strict=True)
        self._begin()
        raw = self.connection.connection.driver_connection
        assert raw is not None  # an open SQLAlchemy connection always has one
        columns = ", ".join(exp.to_identifier(n, quoted=True).sql(self.dialect) for n in names)
        target = exp.to_table(table).sql(self.dialect)
        try:
            if self.dialect == "postgres":
                # COPY is the fast path into Postgres: one round trip per batch.
                with (
                    raw.cursor() as cursor,
                    cursor.copy(f"COPY {target} ({columns}) FROM STDIN") as copy,
                ):
                    for row in values:
                        copy.write_row(row)
            else:
                placeholders = ", ".join(["%s"] * len(names))
                with raw.cursor() as cursor:
                    # PyMySQL folds executemany into multi-row INSERTs; DATETIME
                    # takes naive UTC values.
                    cursor.executemany(
                        f"INSERT INTO {target} ({columns}) VALUES ({placeholders})",
                        [tuple(_naive_utc(v) for v in row) for row in values],
                    )
        except self.engine.dialect.loaded_dbapi.Error as exc:
            raise self._fail(exc, f"append to {table}") from None
        self._finish()

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
                try:
                    self.connection.commit()
                except sa.exc.SQLAlchemyError as exc:
                    raise self._fail(exc, "COMMIT") from None

    def table_exists(self, name: str) -> bool:
        try:
            found = bool(sa.inspect(self.connection).has_table(name))
        except sa.exc.SQLAlchemyError as exc:
            raise self._fail(exc, f"look up table {name}") from None
        self._finish()
        return found

    def create_index(self, table: str, columns: Sequence[str]) -> None:
        try:
            inspector = sa.inspect(self.connection)
            types = {c["name"]: c["type"] for c in inspector.get_columns(table)}
            existing = {i["name"] for i in inspector.get_indexes(table)}
        except sa.exc.SQLAlchemyError as exc:
            raise self._fail(exc, f"look up the indexes of {table}") from None
        self._finish()
        # MySQL indexes no TEXT or JSON column whole; those stay unindexed.
        usable = [
            c
            for c in columns
            if c in types
            and not (self.dialect == "mysql" and isinstance(types[c], sa.Text | sa.JSON))
        ]
        digest = hashlib.sha1(",".join(usable).encode()).hexdigest()[:8]
        name = f"cw_{table.strip('_')[:40]}_{digest}"
        if not usable or name in existing:
            return
        self.execute(
            exp.Create(
                kind="INDEX",
                this=exp.Index(
                    this=exp.to_identifier(name),
                    table=exp.to_table(table),
                    params=exp.IndexParameters(
                        columns=[exp.column(c, quoted=True) for c in usable]
                    ),
                ),
            )
        )

    def close(self) -> None:
        self.connection.close()
        self.engine.dispose()


_ENGINE_NAMES = {"postgres": "Postgres ", "mysql": "MySQL/MariaDB "}

#: String columns that name an entity: what keys and references are made of.
_MYSQL_KEY_COLUMNS = frozenset(
    column
    for table in TABLES.values()
    for column in (*table.key, "account_id", "csm_id", "user_id", "subscription_id")
    if column in table.column_names and table.column(column).type == "string"
)

# How each driver's type codes read as Arrow: Postgres type OIDs, MySQL field
# types. MySQL spells BOOLEAN as TINYINT, and Churnwatch creates no other
# TINYINT, so TINYINT reads as boolean.
_PG_KINDS: dict[Any, str] = {
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
_MYSQL_KINDS: dict[Any, str] = {
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


def _scale(column: Any) -> int | None:
    scale = column[5] if len(column) > 5 else None
    return scale if isinstance(scale, int) else None


def _arrow_array(values: list[Any], kind: str | None, scale: int | None) -> pa.Array:
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


def _uniform_types(table: pa.Table) -> pa.Table:
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


def _commits_implicitly(statement: exp.Expr) -> bool:
    """Whether MySQL ends the open transaction to run ``statement`` (DDL)."""
    if isinstance(statement, exp.Create):
        properties = statement.args.get("properties")
        temporary = properties is not None and any(
            isinstance(p, exp.TemporaryProperty) for p in properties.expressions
        )
        return not temporary
    if isinstance(statement, exp.Drop):
        return not statement.args.get("temporary")
    return isinstance(statement, exp.Alter | exp.TruncateTable)


def _utc(value: Any) -> Any:
    # MySQL hands back naive DATETIMEs that hold UTC; make them say so.
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def _naive_utc(value: Any) -> Any:
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def _redact(url: str) -> str:
    """The URL as safe to show: without its password."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except (sa.exc.ArgumentError, ValueError):
        return re.sub(r"//[^@/]*@", "//***@", url)


def _driver_message(exc: BaseException) -> str:
    """The driver's own words, in one line, without SQLAlchemy's wrapping."""
    original = getattr(exc, "orig", None) or exc
    args: tuple[Any, ...] = tuple(getattr(original, "args", ()))
    if len(args) >= 2 and isinstance(args[0], int) and isinstance(args[1], str):
        text = args[1]  # PyMySQL errors are (code, message)
    else:
        text = str(original)
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else type(original).__name__


def _statement_error(dialect: str, what: str, message: str) -> WarehouseError:
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    first = lines[0] if lines else "failed"
    shown = what if len(what) <= 300 else what[:300] + " ..."
    return WarehouseError(f"{dialect} warehouse: {first}\n  while running: {shown}")


def connect(
    url: str,
    *,
    base_dir: str | Path | None = None,
    memory_limit_mb: int = 1024,
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
        f"unsupported warehouse URL {_redact(url)!r}: use duckdb:///FILE, "
        "postgresql://... or mysql://..."
    )
