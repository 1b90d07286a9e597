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

import re
from pathlib import Path

from churnwatch.errors import WarehouseError
from churnwatch.warehouse._base import (
    LOADS_TABLE,
    QUARANTINE_TABLE,
    SYSTEM_TABLES,
    Warehouse,
    arrow_schema,
    key_index_columns,
    redact,
    table_columns,
)
from churnwatch.warehouse._duckdb import DuckDBWarehouse
from churnwatch.warehouse._spark import SparkWarehouse  # imports PySpark only when opened
from churnwatch.warehouse._sql import SQLWarehouse, normalize_url

__all__ = [
    "LOADS_TABLE",
    "QUARANTINE_TABLE",
    "SYSTEM_TABLES",
    "DuckDBWarehouse",
    "SQLWarehouse",
    "SparkWarehouse",
    "Warehouse",
    "arrow_schema",
    "connect",
    "key_index_columns",
    "normalize_url",
    "table_columns",
]


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
        ``duckdb:///:memory:``, ``postgresql://...``, ``mysql://...``,
        ``spark://local`` (Spark local mode, tables in a temporary folder) or
        ``spark:///DIR`` (Spark local mode, tables and catalog kept in DIR;
        relative paths are taken from ``base_dir``). Spark needs the
        ``spark`` extra and Java 17+.
    base_dir : str or Path, optional
        Folder that relative DuckDB and Spark paths are resolved against.
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
    if url == "spark://local":
        return SparkWarehouse()
    if url.startswith("spark:///") and url != "spark:///":
        folder = Path(url.removeprefix("spark:///"))
        if not folder.is_absolute() and base_dir is not None:
            folder = Path(base_dir) / folder
        return SparkWarehouse(folder)
    raise WarehouseError(
        f"unsupported warehouse URL {redact(url)!r}: use duckdb:///FILE, "
        "postgresql://..., mysql://..., spark://local or spark:///DIR"
    )
