"""One day's adoption snapshot, checked and put in the tracker's shape.

A snapshot is the canonical ``adoption_snapshots`` rows of one date: an
account, optionally a product, whether it is enabled, and the account's
attributes that day (name, CSM, region, revenue, GMV). It comes as an Arrow
table (rows already loaded), or is read from a warehouse table for a date.
Files go through ingestion first (see :func:`churnwatch.ingest.ingest`), so
that bad rows are quarantined with their file, row and column rather than
stopping the day.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from churnwatch.errors import TrackerError
from churnwatch.warehouse import Warehouse

__all__ = [
    "ATTRIBUTES",
    "KEY",
    "SNAPSHOT_COLUMNS",
    "prepare_snapshot",
    "read_snapshot",
    "snapshot_dates",
]

KEY = ("account_id", "product")
ATTRIBUTES = ("name", "csm_id", "region", "revenue", "gmv")
SNAPSHOT_COLUMNS = (*KEY, "is_enabled", *ATTRIBUTES)
_STRINGS = ("account_id", "product", "name", "csm_id", "region")
_NUMBERS = ("revenue", "gmv")


def _single_date(rows: pa.Table, day: dt.date | None) -> tuple[dt.date, pa.Table]:
    if "snapshot_date" not in rows.column_names:
        if day is None:
            raise TrackerError(
                "the snapshot has no snapshot_date column: give its date (--date YYYY-MM-DD)"
            )
        return day, rows
    dates = rows.column("snapshot_date").cast(pa.date32())
    if day is not None:
        return day, rows.filter(pc.equal(dates, pa.scalar(day, pa.date32())))
    found = sorted(d for d in pc.unique(dates).to_pylist() if d is not None)
    if len(found) != 1:
        shown = ", ".join(d.isoformat() for d in found[:5]) or "none"
        raise TrackerError(
            f"the snapshot holds {len(found)} dates ({shown}); give the one to track "
            "(--date YYYY-MM-DD)"
        )
    return found[0], rows


def prepare_snapshot(rows: pa.Table, day: dt.date | None = None) -> tuple[dt.date, pd.DataFrame]:
    """Check a snapshot and return its date and rows, one per (account, product), sorted.

    Parameters
    ----------
    rows : pyarrow.Table
        ``account_id`` and ``is_enabled`` at least; ``product``, ``name``,
        ``csm_id``, ``region``, ``revenue``, ``gmv`` and ``snapshot_date`` if
        known. Other columns are ignored.
    day : date, optional
        The snapshot's date; only rows of that date are kept when the table
        has a ``snapshot_date`` column. Needed when it has none.

    Returns
    -------
    date, pandas.DataFrame
        The date, and the rows with every column of ``SNAPSHOT_COLUMNS``
        (``product`` ``''`` when absent), sorted by account and product.

    Raises
    ------
    TrackerError
        If a required column is missing or null, an (account, product)
        appears twice, or the date is unknown or ambiguous.

    Examples
    --------
    >>> import pyarrow as pa
    >>> rows = pa.table({"account_id": ["b", "a"], "is_enabled": [True, False]})
    >>> day, frame = prepare_snapshot(rows, dt.date(2024, 3, 1))
    >>> day
    datetime.date(2024, 3, 1)
    >>> frame[["account_id", "product", "is_enabled"]].values.tolist()
    [['a', '', False], ['b', '', True]]
    """
    missing = [c for c in ("account_id", "is_enabled") if c not in rows.column_names]
    if missing:
        raise TrackerError(
            f"the snapshot has no {', '.join(missing)} column; expected the columns of "
            "adoption_snapshots (account_id, is_enabled, optional product, name, csm_id, "
            "region, revenue, gmv)"
        )
    day, rows = _single_date(rows, day)
    columns: dict[str, pa.Array | pa.ChunkedArray] = {}
    for name in SNAPSHOT_COLUMNS:
        column = rows.column(name) if name in rows.column_names else pa.nulls(rows.num_rows)
        if name in _STRINGS:
            column = column.cast(pa.string())
        elif name in _NUMBERS:
            column = column.cast(pa.float64())
        else:
            column = column.cast(pa.bool_())
        columns[name] = column
    columns["product"] = pc.fill_null(columns["product"], "")
    for name in ("account_id", "is_enabled"):
        nulls = pc.is_null(columns[name])
        if pc.any(nulls).as_py():
            row = pc.index(nulls, True).as_py()
            raise TrackerError(
                f"snapshot row {row + 1} of {day.isoformat()} has no {name}; every row "
                "needs one (load files with ingest, which quarantines such rows)"
            )
    table = pa.table(columns)
    frame = table.to_pandas()
    duplicated = frame.duplicated(list(KEY), keep=False)
    if duplicated.any():
        first = frame.loc[duplicated, list(KEY)].iloc[0]
        raise TrackerError(
            f"the snapshot of {day.isoformat()} has {int(duplicated.sum())} rows sharing an "
            f"(account_id, product), such as ({first['account_id']!r}, {first['product']!r}); "
            "keep one row per account and product"
        )
    frame = frame.sort_values(list(KEY), kind="stable", ignore_index=True)
    return day, frame


def read_snapshot(warehouse: Warehouse, table: str, day: dt.date) -> pa.Table:
    """The rows of one date of a warehouse table shaped like ``adoption_snapshots``.

    Raises
    ------
    TrackerError
        If the table does not exist or has no ``snapshot_date`` column.
    """
    present = _columns(warehouse, table)
    wanted = [c for c in ("snapshot_date", *SNAPSHOT_COLUMNS) if c in present]
    query = (
        exp.select(*[exp.column(c, quoted=True) for c in wanted])
        .from_(exp.to_table(table, quoted=True))
        .where(
            exp.column("snapshot_date", quoted=True).eq(
                exp.cast(exp.Literal.string(day.isoformat()), exp.DataType.build("date"))
            )
        )
    )
    return warehouse.query(query)


def snapshot_dates(warehouse: Warehouse, table: str, after: dt.date | None = None) -> list[dt.date]:
    """The dates of a warehouse snapshot table, in order, after ``after`` if given."""
    _columns(warehouse, table)
    column = exp.column("snapshot_date", quoted=True)
    query = exp.select(column).distinct().from_(exp.to_table(table, quoted=True))
    if after is not None:
        query = query.where(
            column > exp.cast(exp.Literal.string(after.isoformat()), exp.DataType.build("date"))
        )
    found = warehouse.query(query).column(0).to_pylist()
    return sorted(_as_date(d) for d in found if d is not None)


def _as_date(value: object) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def _columns(warehouse: Warehouse, table: str) -> list[str]:
    if not warehouse.table_exists(table):
        raise TrackerError(
            f"no file or warehouse table named {table!r}; give a snapshot file (.parquet, "
            ".csv) or a table of the warehouse such as adoption_snapshots"
        )
    names = warehouse.query(exp.select("*").from_(exp.to_table(table, quoted=True)).limit(0))
    if "snapshot_date" not in names.column_names or "account_id" not in names.column_names:
        raise TrackerError(
            f"warehouse table {table!r} has no snapshot_date or account_id column; it must be "
            "shaped like adoption_snapshots"
        )
    return list(names.column_names)
