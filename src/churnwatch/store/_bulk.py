"""Many rows at once: the driver's ``executemany`` with values converted column by column.

SQLAlchemy converts every parameter of every row on its own (a dictionary
per row, a processor call per value): right for a few hundred rows, tens of
seconds for the million rows of a first snapshot day. Here the statement is
compiled once, each column's values are converted once by the column type's
own bind processor (a constant column once in all), and the rows go to the
driver as plain tuples in large batches — the same SQL and the same stored
values, without the per-row work.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.compiler import SQLCompiler

__all__ = ["Constant", "bulk_write", "read_columns"]


class Constant:
    """One value for every row of a :func:`bulk_write` column."""

    def __init__(self, value: Any) -> None:
        self.value = value


def bulk_write(
    connection: sa.Connection,
    statement: sa.Insert | sa.Update | sa.Delete,
    columns: Mapping[str, Sequence[Any] | Constant],
    *,
    batch_rows: int = 50_000,
) -> int:
    """Execute ``statement`` once per row, the rows given column by column.

    Parameters
    ----------
    connection : sqlalchemy.Connection
        In the caller's transaction.
    statement : Insert, Update or Delete
        An ``insert()`` of a table (its parameters are the column names
        given), or an update/delete whose parameters are ``bindparam`` names.
    columns : mapping of str to sequence or Constant
        Values per parameter name, Python values (``None`` for null); a
        :class:`Constant` stands for the same value in every row.
    batch_rows : int
        Rows per ``executemany`` call.

    Returns
    -------
    int
        Rows written.

    Examples
    --------
    >>> import datetime as dt
    >>> from churnwatch.store import TRACKER_RUNS, open_store
    >>> store = open_store("sqlite://")
    >>> with store.transaction() as connection:
    ...     bulk_write(connection, TRACKER_RUNS.insert(), {
    ...         "snapshot_date": [dt.date(2024, 3, 1), dt.date(2024, 3, 2)],
    ...         "processed_at": Constant(dt.datetime(2024, 3, 2, tzinfo=dt.UTC)),
    ...         "rows": [10, 12],
    ...         "counts": Constant("{}"),
    ...     })
    2
    >>> with store.engine.connect() as connection:
    ...     connection.execute(sa.select(TRACKER_RUNS.c.snapshot_date)).scalars().all()
    [datetime.date(2024, 3, 1), datetime.date(2024, 3, 2)]
    """
    names = list(columns)
    lengths = {len(v) for v in columns.values() if not isinstance(v, Constant)}
    if len(lengths) > 1:
        raise ValueError(f"columns of different lengths: {sorted(lengths)}")
    count = lengths.pop() if lengths else 1
    if count == 0:
        return 0
    dialect = connection.dialect
    compiled = statement.compile(dialect=dialect, column_keys=names)
    assert isinstance(compiled, SQLCompiler)
    processors: dict[str, Callable[[Any], Any] | None] = {}
    constants: dict[str, Any] = {}
    for name in names:
        bind = compiled.binds[name]
        process: Callable[[Any], Any] | None
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if isinstance(bind.type, sa.Boolean):
            # Every driver takes Python booleans (SQLite stores them as 1/0);
            # bool() is far cheaper than the processor's checks per value.
            process = bool
        values = columns[name]
        if isinstance(values, Constant):
            one = values.value
            constants[name] = one if process is None or one is None else process(one)
        processors[name] = process
    order = list(compiled.positiontup or []) if compiled.positional else names
    # Converted and zipped a batch at a time, so that a million rows never
    # exist twice over as Python tuples.
    for start in range(0, count, batch_rows):
        stop = min(start + batch_rows, count)
        parts: list[Sequence[Any]] = []
        for name in order:
            values = columns[name]
            process = processors[name]
            if isinstance(values, Constant):
                parts.append([constants[name]] * (stop - start))
            elif process is None:
                parts.append(values[start:stop])
            else:
                parts.append([None if v is None else process(v) for v in values[start:stop]])
        rows: list[Any] = list(zip(*parts, strict=True))
        if not compiled.positional:
            rows = [dict(zip(order, row, strict=True)) for row in rows]
        connection.exec_driver_sql(compiled.string, rows)
    return count


def read_columns(
    connection: sa.Connection, query: sa.Select[Any], *, shared: Sequence[str] = ()
) -> dict[str, list[Any]]:
    """The result of a query as lists per column, as the driver returns them.

    Without SQLAlchemy's per-value conversion: dates may come back as text
    (SQLite) and booleans as 0/1 (SQLite, MySQL). For large reads whose
    caller converts what it needs, column by column. Parameters of the
    query are passed as they are: keep them to plain strings and numbers.

    The columns named in ``shared`` hold few distinct values (regions,
    states...): equal values are made one object as they are read, so a
    million rows do not hold a million copies of the same few strings.
    """
    compiled = query.compile(dialect=connection.dialect)
    assert isinstance(compiled, SQLCompiler)
    params: Any = compiled.params
    if compiled.positional:
        params = tuple(params[name] for name in compiled.positiontup or [])
    # The DBAPI cursor of the connection (so, inside its transaction): no
    # result wrapping per row.
    cursor = connection.connection.cursor()
    try:
        cursor.execute(compiled.string, params)
        names = [d[0] for d in cursor.description]
        columns: list[list[Any]] = [[] for _ in names]
        pools: list[dict[Any, Any] | None] = [{} if n in shared else None for n in names]
        # In batches: a million rows are never held as tuples and lists at once.
        while batch := cursor.fetchmany(100_000):
            for column, pool, values in zip(columns, pools, zip(*batch, strict=True), strict=True):
                if pool is None:
                    column.extend(values)
                else:
                    column.extend([pool.setdefault(v, v) for v in values])
    finally:
        cursor.close()
    return dict(zip(names, columns, strict=True))
