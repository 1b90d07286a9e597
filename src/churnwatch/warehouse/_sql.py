"""Postgres and MySQL/MariaDB warehouses, reached through SQLAlchemy."""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from sqlglot import exp

from churnwatch.errors import WarehouseError
from churnwatch.schema import TABLES, ColumnType, sql_type
from churnwatch.warehouse._base import Warehouse, driver_message, redact, statement_error
from churnwatch.warehouse._results import (
    MYSQL_KINDS,
    PG_KINDS,
    arrow_array,
    column_scale,
    naive_utc,
)

__all__ = ["SQLWarehouse", "normalize_url"]


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
        shown = redact(url)
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
                f"no database driver for the warehouse {shown}: {driver_message(exc)}; "
                "use postgresql:// (psycopg) or mysql:// (PyMySQL) without a driver suffix"
            ) from None
        except Exception as exc:  # any driver failure to connect is one error to the user
            raise WarehouseError(
                f"cannot connect to the {_ENGINE_NAMES.get(getattr(self, 'dialect', ''), '')}"
                f"warehouse at {shown}: {driver_message(exc)}. Check that the server is "
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
        return statement_error(self.dialect, what, driver_message(exc))

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
        kinds = PG_KINDS if self.dialect == "postgres" else MYSQL_KINDS
        return pa.table(
            [
                arrow_array(list(values), kinds.get(column[1]), column_scale(column))
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
                        [tuple(naive_utc(v) for v in row) for row in values],
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
