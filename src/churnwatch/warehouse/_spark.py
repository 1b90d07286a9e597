"""Spark (local mode): the warehouse for when one machine's DuckDB is not enough.

Spark runs the same sqlglot queries as the other engines (labels, features,
cohorts) over Parquet-backed Spark SQL tables, and only the per-account result
comes back to Python as Arrow.

What Spark does not do, on purpose:

- **No ingest.** Spark's Parquet tables cannot ``UPDATE`` or ``DELETE`` rows,
  and the loader matches and updates rows by key. Load with DuckDB, Postgres
  or MySQL, or write the canonical tables as Parquet where Spark reads them;
  Spark computes labels and features where the data already lives.
  ``UPDATE``, ``DELETE`` and ``MERGE`` raise :class:`WarehouseError`.
- **No transactions.** Spark has no multi-statement transactions:
  :meth:`SparkWarehouse.transaction` is a context that does nothing, and a
  failure inside it keeps what was written before it.
- **No changed-row counts.** Spark does not report them: ``execute`` returns -1.

The catalog: ``spark://local`` keeps it in memory and the table files in a
temporary folder, both gone on :meth:`~SparkWarehouse.close`.
``spark:///path/to/dir`` keeps table files under ``dir/tables`` and the
catalog in an embedded Derby metastore under ``dir/metastore`` (one process
at a time), so tables outlive the session.

PySpark is optional (``pip install 'churnwatch[spark]'``): it is imported only
when a Spark warehouse is opened.
"""

from __future__ import annotations

import contextlib
import functools
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pyarrow as pa
from sqlglot import exp

from churnwatch.errors import WarehouseError
from churnwatch.schema import ColumnType, sql_type
from churnwatch.warehouse._base import Warehouse, statement_error
from churnwatch.warehouse._results import uniform_types

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["SparkWarehouse"]

_T = TypeVar("_T")


def _spark_sql(statement: exp.Expr) -> str:
    """The statement in Spark SQL, as Churnwatch's queries mean it.

    Spark's ``DATE_ADD`` returns a DATE, dropping the time of day: adding
    days to an instant becomes ``TIMESTAMPADD`` (exact in a UTC session).

    Examples
    --------
    >>> day = exp.DateAdd(
    ...     this=exp.column("cutoff"), expression=exp.Literal.number(-14), unit=exp.var("DAY")
    ... )
    >>> _spark_sql(exp.select(day))
    'SELECT TIMESTAMPADD(DAY, -14, cutoff)'
    """

    def interval(node: exp.Expr) -> exp.Expr:
        if not isinstance(node, exp.DateAdd):
            return node
        unit = node.args.get("unit") or exp.var("DAY")
        return exp.Anonymous(
            this="TIMESTAMPADD",
            expressions=[exp.var(unit.name.upper()), node.expression, node.this],
        )

    return statement.transform(interval).sql(dialect="spark")


#: Statements Spark's Parquet tables cannot run.
_UNSUPPORTED: dict[type[exp.Expr], str] = {
    exp.Update: "UPDATE",
    exp.Delete: "DELETE",
    exp.Merge: "MERGE",
}


class SparkWarehouse(Warehouse):
    """A warehouse in Spark SQL tables (Parquet), computed by Spark in local mode.

    Parameters
    ----------
    path : str or Path, optional
        Folder holding the tables (``tables/``) and their catalog
        (``metastore/``), created when missing. ``None`` keeps the catalog in
        memory and the tables in a temporary folder removed on close.
    session : SparkSession, optional
        Run in this session instead of starting one; it is left running on
        close. Each warehouse gets its own SQL session (temporary tables and
        current database are its own) over the shared Spark context.
    database : str, optional
        Spark database to create (when missing) and work in; ``default``
        otherwise.
    driver_memory_mb : int
        Memory of the Spark driver (in local mode, all of Spark).
    cores_count : int
        Worker threads of the local master.
    shuffle_partitions_count : int
        Partitions of every shuffle; small suits one machine's data.

    Examples
    --------
    >>> from churnwatch.warehouse import connect
    >>> with connect("spark://local") as wh:  # doctest: +SKIP
    ...     wh.ensure_schema()
    ...     wh.count("events")
    0
    """

    dialect = "spark"

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        session: SparkSession | None = None,
        database: str | None = None,
        driver_memory_mb: int = 1024,
        cores_count: int = 2,
        shuffle_partitions_count: int = 4,
    ) -> None:
        try:
            from pyspark.sql import SparkSession
        except ImportError:
            raise WarehouseError(
                "the Spark warehouse needs PySpark: pip install 'churnwatch[spark]' "
                "(and Java 17 or later)"
            ) from None
        self._temporary: dict[str, DataFrame] = {}
        self._scratch: str | None = None
        self._owns_session = session is None
        if session is not None:
            self.url = "spark://session"
            self.session = session.newSession()
        else:
            if SparkSession.getActiveSession() is not None:
                raise WarehouseError(
                    "spark warehouse: a Spark session is already running in this process; "
                    "close the warehouse that started it, or pass it as "
                    "SparkWarehouse(session=...)"
                )
            if path is None:
                self._scratch = tempfile.mkdtemp(prefix="churnwatch-spark-")
                root = Path(self._scratch)
                self.url = "spark://local"
            else:
                root = Path(path).absolute()
                self.url = f"spark:///{root}"
            builder = SparkSession.builder.master(f"local[{int(cores_count)}]").appName(
                "churnwatch"
            )
            for key, value in _settings(
                root, persistent=path is not None, driver_memory_mb=driver_memory_mb
            ).items():
                builder = builder.config(key, value)
            builder = builder.config("spark.sql.shuffle.partitions", str(shuffle_partitions_count))
            try:
                root.mkdir(parents=True, exist_ok=True)
                self.session = self._spark(builder.getOrCreate)
            except (OSError, WarehouseError) as exc:
                self._remove_scratch()
                reason = str(exc).splitlines()[0].removeprefix("spark warehouse: ")
                raise WarehouseError(
                    f"cannot start the Spark warehouse at {root}: {reason}. Spark needs "
                    "Java 17 or later on the PATH (or JAVA_HOME)."
                ) from None
            self.session.sparkContext.setLogLevel("ERROR")
        if database is not None:
            name = exp.to_identifier(database, quoted=True)
            self.execute(exp.Create(this=exp.Table(this=name), kind="SCHEMA", exists=True))
            self._spark(lambda: self.session.catalog.setCurrentDatabase(database))
        self._database: str = self._spark(self.session.catalog.currentDatabase)

    # -- errors --------------------------------------------------------------
    def _spark(self, call: Callable[[], _T], what: str = "") -> _T:
        """Run a Spark call; Spark's and Py4J's errors become one WarehouseError."""
        from py4j.protocol import Py4JError
        from pyspark.errors import PySparkException

        try:
            with warnings.catch_warnings():
                # PySpark warns that it does not yet vouch for pandas 3; Churnwatch
                # hands it Arrow, never pandas.
                warnings.filterwarnings(
                    "ignore",
                    message="PySpark does not yet fully support pandas",
                    category=FutureWarning,
                )
                return call()
        except (PySparkException, Py4JError) as exc:
            raise statement_error("spark", what or "a Spark call", _one_line(exc)) from None

    # -- engine primitives ---------------------------------------------------
    def execute(self, statement: exp.Expr) -> int:
        for kind, name in _UNSUPPORTED.items():
            if isinstance(statement, kind):
                raise WarehouseError(
                    f"spark warehouse: {name} is not supported: Spark's Parquet tables cannot "
                    "change rows in place. Load and correct data with DuckDB, Postgres or "
                    "MySQL; Spark computes labels and features over it."
                )
        sql = _spark_sql(statement)
        if isinstance(statement, exp.Drop):
            for table in statement.args.get("tables") or statement.expressions:
                self._temporary.pop(table.name, None)
        frame = self._spark(lambda: self.session.sql(sql), sql)
        if isinstance(statement, exp.Query):
            # A query's plan is lazy: run it without bringing rows back.
            self._spark(lambda: frame.write.format("noop").mode("overwrite").save(), sql)
        return -1

    def query(self, statement: exp.Expr) -> pa.Table:
        sql = _spark_sql(statement)
        arrow: pa.Table = self._spark(lambda: self.session.sql(sql).toArrow(), sql)
        return uniform_types(arrow)

    def append(self, table: str, rows: pa.Table) -> None:
        if rows.num_rows == 0:
            return
        what = f"append to {table}"
        if table in self._temporary:
            target = self._temporary[table]
        else:
            target = self._spark(lambda: self.session.table(table), what)
        schema = target.schema
        unknown = sorted(set(rows.column_names) - set(schema.fieldNames()))
        if unknown:
            raise WarehouseError(
                f"spark warehouse: cannot append to {table}: it has no column "
                f"{', '.join(unknown)} (columns: {', '.join(schema.fieldNames())})"
            )
        incoming = self._spark(lambda: self.session.createDataFrame(rows), what)
        typed = self._spark(
            lambda: incoming.select(*_columns_like(schema, rows.column_names)), what
        )
        if table in self._temporary:
            combined = target.unionByName(typed)
            self._spark(lambda: combined.createOrReplaceTempView(table), what)
            self._temporary[table] = combined
        else:
            self._spark(lambda: typed.write.insertInto(table), what)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Nothing: Spark has no multi-statement transactions (see the module docstring)."""
        yield

    def table_exists(self, name: str) -> bool:
        qualified = f"{self._database}.{name}"
        found: bool = self._spark(
            lambda: self.session.catalog.tableExists(qualified), f"look up table {name}"
        )
        return found

    def close(self) -> None:
        for name in list(self._temporary):
            with contextlib.suppress(WarehouseError):
                self._spark(functools.partial(self.session.catalog.dropTempView, name))
        self._temporary.clear()
        if self._owns_session:
            with contextlib.suppress(WarehouseError):
                self._spark(self.session.stop)
            self._remove_scratch()

    def _remove_scratch(self) -> None:
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    # -- schema ----------------------------------------------------------------
    def create_table(
        self,
        name: str,
        columns: Sequence[tuple[str, ColumnType]],
        *,
        if_not_exists: bool = True,
        temporary: bool = False,
    ) -> None:
        """Create a Parquet table, or (``temporary``) a view of this session only.

        Spark has no temporary tables with a declared schema: a temporary
        table is a temporary view over the rows appended to it, dropped with
        ``DROP TABLE`` or on close.
        """
        if not temporary:
            super().create_table(name, columns, if_not_exists=if_not_exists)
            return
        if if_not_exists and name in self._temporary:
            return
        ddl = ", ".join(
            f"{exp.to_identifier(column, quoted=True).sql('spark')} {sql_type(kind, 'spark')}"
            for column, kind in columns
        )
        empty = self._spark(lambda: self.session.createDataFrame([], schema=ddl), f"create {name}")
        self._spark(lambda: empty.createOrReplaceTempView(name), f"create {name}")
        self._temporary[name] = empty

    def _table_properties(self, temporary: bool = False) -> exp.Properties | None:
        return exp.Properties(expressions=[exp.FileFormatProperty(this=exp.var("PARQUET"))])


def _settings(root: Path, *, persistent: bool, driver_memory_mb: int) -> dict[str, str]:
    """The Spark configuration of a local warehouse rooted at ``root``."""
    settings = {
        "spark.driver.memory": f"{int(driver_memory_mb)}m",
        # Instants in UTC, whatever the machine's zone; TIMESTAMP is an instant.
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.timestampType": "TIMESTAMP_LTZ",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.warehouse.dir": str(root / "tables"),
        "spark.local.dir": str(root / "spill"),
        "spark.sql.catalogImplementation": "in-memory",
    }
    if persistent:
        metastore = root / "metastore"
        scratch = root / "spill" / "hive"
        settings |= {
            "spark.sql.catalogImplementation": "hive",
            "spark.hadoop.javax.jdo.option.ConnectionURL": (
                f"jdbc:derby:;databaseName={metastore};create=true"
            ),
            "spark.driver.extraJavaOptions": f"-Dderby.system.home={root}",
            "spark.hadoop.hive.exec.scratchdir": str(scratch),
            "spark.hadoop.hive.exec.local.scratchdir": str(scratch),
            "spark.hadoop.hive.downloaded.resources.dir": str(scratch / "resources"),
        }
    return settings


def _columns_like(schema: Any, present: Sequence[str]) -> list[Any]:
    """Every column of ``schema`` in order, cast to its type; absent ones NULL."""
    from pyspark.sql import functions

    found = set(present)
    return [
        (functions.col(f"`{field.name}`") if field.name in found else functions.lit(None))
        .cast(field.dataType)
        .alias(field.name)
        for field in schema.fields
    ]


def _one_line(exc: BaseException) -> str:
    """Spark's message without its SQLSTATE, JVM stack trace or query context."""
    getter = getattr(exc, "getMessage", None)
    text = str(getter() if callable(getter) else exc)
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
