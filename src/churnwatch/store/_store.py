"""Opening the operational store, its versioned migrations and its transactions.

The store holds what the daily workflow writes in many small transactions
while the dashboard and the API read: tracker state, ledgers, the outbox,
outcomes. SQLite in WAL mode is the default (one file, readers never block
the writer); Postgres and MySQL/MariaDB serve in production, through
SQLAlchemy Core.

Migrations are an ordered tuple of small functions; ``schema_migrations``
records the versions applied. :meth:`Store.migrate` applies the missing ones,
each in a transaction of its own together with its row in
``schema_migrations`` — on SQLite and Postgres DDL is transactional, so a
migration killed halfway leaves nothing; MySQL commits each DDL statement
implicitly, so there a migration is written to be safe to run again
(``checkfirst``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from churnwatch.errors import StoreError
from churnwatch.store._tables import SCHEMA_MIGRATIONS, define_api_tables, define_tables
from churnwatch.warehouse import normalize_url

__all__ = ["DEFAULT_STORE_URL", "MIGRATIONS", "Migration", "Store", "open_store"]

#: The store of a project unless ``[store] url`` says otherwise: a file beside the project file.
DEFAULT_STORE_URL = "sqlite:///churnwatch_ops.sqlite"

Migration = Callable[[sa.Connection], None]


def _v1_initial_tables(connection: sa.Connection) -> None:
    """Create every table of schema version 1."""
    meta = sa.MetaData()
    define_tables(meta)
    meta.create_all(connection, checkfirst=True)


def _v2_api_tables(connection: sa.Connection) -> None:
    """Create the API's tables: hashed API keys and the inbox of posted events."""
    meta = sa.MetaData()
    define_api_tables(meta)
    meta.create_all(connection, checkfirst=True)


#: Every migration, in order: version ``i + 1`` is ``MIGRATIONS[i]``. Append only.
MIGRATIONS: tuple[Migration, ...] = (_v1_initial_tables, _v2_api_tables)


def _redact(url: sa.URL) -> str:
    return url.render_as_string(hide_password=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own transaction handling is switched off, so that the
    # "begin" hook below issues BEGIN IMMEDIATE: a writer takes the write lock
    # when its transaction starts and others queue on busy_timeout, instead of
    # failing when a deferred read transaction tries to upgrade.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode loses no committed transaction when the process dies
    # (only at a power cut), and saves an fsync per commit.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(connection: sa.Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _mysql_session(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("SET time_zone = '+00:00'")
    cursor.close()


class Store:
    """The operational store: an engine, its migrations and short transactions.

    Use :func:`open_store` to get one.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The engine of the database.

    Attributes
    ----------
    engine : sqlalchemy.Engine
        The engine; read with ``store.engine.connect()``.
    """

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    @property
    def dialect(self) -> str:
        """The database's dialect name: ``sqlite``, ``postgresql``, ``mysql`` or ``mariadb``."""
        return str(self.engine.dialect.name)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        """A connection inside one transaction: committed at the end, rolled back on error.

        Keep it short: on SQLite it holds the database's write lock.

        Examples
        --------
        >>> from churnwatch.store import TRACKER_RUNS, open_store
        >>> store = open_store("sqlite://")
        >>> with store.transaction() as connection:
        ...     connection.execute(sa.select(sa.func.count()).select_from(TRACKER_RUNS)).scalar()
        0
        """
        with self.engine.begin() as connection:
            yield connection

    def version(self) -> int:
        """The schema version of the database (0 when it is empty)."""
        with self.engine.connect() as connection:
            if not sa.inspect(connection).has_table(SCHEMA_MIGRATIONS.name):
                return 0
            found = connection.execute(sa.select(sa.func.max(SCHEMA_MIGRATIONS.c.version)))
            return int(found.scalar() or 0)

    def migrate(self) -> int:
        """Apply the migrations this database lacks; return how many ran.

        Raises
        ------
        StoreError
            If the database is of a newer schema version than this code knows.
        """
        current = self.version()
        known = len(MIGRATIONS)
        if current > known:
            raise StoreError(
                f"the operational store at {_redact(self.engine.url)} is at schema version "
                f"{current}, newer than this Churnwatch knows ({known}); upgrade Churnwatch "
                "or point [store] url at another database"
            )
        for version in range(current + 1, known + 1):
            with self.transaction() as connection:
                MIGRATIONS[version - 1](connection)
                connection.execute(
                    SCHEMA_MIGRATIONS.insert().values(
                        version=version, applied_at=dt.datetime.now(dt.UTC)
                    )
                )
        return known - current

    def close(self) -> None:
        """Release the engine's connections."""
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({_redact(self.engine.url)!r})"


def _resolve(url: str, base_dir: str | Path | None) -> sa.URL:
    try:
        parsed = sa.make_url(normalize_url(url))
    except (sa.exc.ArgumentError, ValueError) as exc:
        raise StoreError(
            f"invalid store URL {url!r}: {exc}; expected sqlite:///FILE, "
            "postgresql://USER@HOST:5432/DATABASE or mysql://USER@HOST:3306/DATABASE"
        ) from None
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql", "mysql", "mariadb"):
        raise StoreError(
            f"the operational store cannot live in {backend!r} ({_redact(parsed)}); "
            "use sqlite:///FILE, postgresql://... or mysql://..."
        )
    database = parsed.database
    if backend == "sqlite" and database and database != ":memory:" and base_dir is not None:
        # A relative file is the project's, wherever the command runs from.
        path = Path(database)
        if not path.is_absolute():
            parsed = parsed.set(database=str(Path(base_dir) / path))
    return parsed


def open_store(url: str = DEFAULT_STORE_URL, *, base_dir: str | Path | None = None) -> Store:
    """Open the operational store at ``url`` and bring its schema up to date.

    Parameters
    ----------
    url : str
        ``sqlite:///FILE`` (the default, ``churnwatch_ops.sqlite``),
        ``sqlite://`` (in memory, for a test), ``postgresql://...`` or
        ``mysql://...`` (SQLAlchemy URLs).
    base_dir : str or Path, optional
        Folder a relative SQLite file is taken from (the project folder).

    Returns
    -------
    Store
        Migrated to the newest schema version.

    Raises
    ------
    StoreError
        If the URL is invalid, the database cannot be reached, or it is of a
        newer schema version than this code knows.

    Examples
    --------
    >>> store = open_store("sqlite://")
    >>> store.version()
    2
    """
    parsed = _resolve(url, base_dir)
    backend = parsed.get_backend_name()
    options: dict[str, Any] = {}
    if backend == "sqlite" and parsed.database in (None, "", ":memory:"):
        # One shared connection, or every checkout would see a new empty database.
        options["poolclass"] = sa.pool.StaticPool
        options["connect_args"] = {"check_same_thread": False}
    elif backend in ("postgresql", "mysql", "mariadb") and "connect_timeout" not in parsed.query:
        options["connect_args"] = {"connect_timeout": 10}
    if backend in ("postgresql", "mysql", "mariadb"):
        options["pool_pre_ping"] = True
    engine = sa.create_engine(parsed, **options)
    if backend == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        sa.event.listen(engine, "begin", _sqlite_begin)
    elif backend in ("mysql", "mariadb"):
        sa.event.listen(engine, "connect", _mysql_session)
    store = Store(engine)
    try:
        store.migrate()
    except sa.exc.OperationalError as exc:
        engine.dispose()
        first = str(exc.orig or exc).splitlines()[0]
        raise StoreError(
            f"cannot open the operational store at {_redact(parsed)}: {first}"
        ) from None
    except BaseException:
        engine.dispose()
        raise
    return store
