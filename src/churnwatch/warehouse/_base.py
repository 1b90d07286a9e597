"""The warehouse interface, the bookkeeping tables and what every engine shares."""

from __future__ import annotations

import abc
import contextlib
import re
from collections.abc import Sequence
from types import TracebackType
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from sqlglot import exp

from churnwatch.errors import WarehouseError
from churnwatch.schema import TABLES, ColumnType, Table, arrow_type, sql_type

__all__ = [
    "LOADS_TABLE",
    "QUARANTINE_TABLE",
    "SYSTEM_TABLES",
    "Warehouse",
    "arrow_schema",
    "key_index_columns",
    "table_columns",
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


class Warehouse(abc.ABC):
    """Common behaviour of every warehouse engine.

    Subclasses provide statement execution, bulk appends and transactions;
    this class builds the schema and the bookkeeping queries once for all.
    """

    #: sqlglot dialect name of the engine.
    dialect: str = "duckdb"
    url: str = ""

    # -- engine primitives -------------------------------------------------
    @abc.abstractmethod
    def execute(self, statement: exp.Expr) -> int:
        """Run a statement; return the number of rows it changed (or -1)."""

    @abc.abstractmethod
    def query(self, statement: exp.Expr) -> pa.Table:
        """Run a query and return its result as an Arrow table."""

    @abc.abstractmethod
    def append(self, table: str, rows: pa.Table) -> None:
        """Insert Arrow rows into ``table`` (columns matched by name)."""

    @abc.abstractmethod
    def transaction(self) -> contextlib.AbstractContextManager[None]:
        """A context in which every statement commits together or not at all."""

    @abc.abstractmethod
    def table_exists(self, name: str) -> bool:
        """Whether a (non-temporary) table of that name exists."""

    @abc.abstractmethod
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

    def drop_table(self, name: str, *, temporary: bool = False) -> None:
        """Drop a table if it exists (``temporary``: one made with ``temporary=True``)."""
        # MySQL commits an open transaction on a plain DROP TABLE, not on
        # DROP TEMPORARY TABLE: say which, so a transaction stays whole.
        drop_temporary = temporary and self.dialect == "mysql"
        self.execute(
            exp.Drop(
                tables=[exp.to_table(name)], kind="TABLE", exists=True, temporary=drop_temporary
            )
        )

    def create_index(self, table: str, columns: Sequence[str]) -> None:
        """Index ``columns`` of ``table`` if the engine needs it to match keys.

        DuckDB hashes its joins and would only append more slowly with an
        index, so it creates none. Postgres and MySQL compare keys through
        correlated subqueries (``EXISTS``, ``UPDATE ... SET = (SELECT ...)``)
        that scan the whole table once per row without one.
        """
        return  # the default engine (DuckDB) needs no index

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


def redact(url: str) -> str:
    """The URL as safe to show: without its password."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except (sa.exc.ArgumentError, ValueError):
        return re.sub(r"//[^@/]*@", "//***@", url)


def driver_message(exc: BaseException) -> str:
    """The driver's own words, in one line, without SQLAlchemy's wrapping."""
    original = getattr(exc, "orig", None) or exc
    args: tuple[Any, ...] = tuple(getattr(original, "args", ()))
    if len(args) >= 2 and isinstance(args[0], int) and isinstance(args[1], str):
        text = args[1]  # PyMySQL errors are (code, message)
    else:
        text = str(original)
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else type(original).__name__


def statement_error(dialect: str, what: str, message: str) -> WarehouseError:
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    first = lines[0] if lines else "failed"
    shown = what if len(what) <= 300 else what[:300] + " ..."
    return WarehouseError(f"{dialect} warehouse: {first}\n  while running: {shown}")
