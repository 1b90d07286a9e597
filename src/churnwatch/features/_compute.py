"""Running compiled features: upload the cutoffs, run one query per table, assemble.

The cutoffs go to a temporary table together with the window starts the
queries need (``cutoff - n days``, computed once per cutoff here rather than
per event in the engine). The parts come back as Arrow and are joined on
(account_id, cutoff) in the order of the cutoffs given; every column is cast
to its spec's dtype so that the frame is identical whichever engine computed it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from churnwatch.errors import ConfigError
from churnwatch.features._compile import KNOWN_USERS_COLUMN, active_users_column, compile_features
from churnwatch.features._context import (
    _CUTOFF_TYPE,
    INTERVAL_COLUMN,
    PREVIOUS_CUTOFF_COLUMN,
    ROW_COLUMN,
    window_start_column,
)
from churnwatch.features._defaults import default_features
from churnwatch.features._spec import FeatureSpec
from churnwatch.schema import ColumnType
from churnwatch.warehouse import Warehouse

__all__ = ["accounts_at", "compute_features"]


def accounts_at(warehouse: Warehouse, dates: Sequence[dt.datetime]) -> pa.Table:
    """Every account that existed before each date, as a cutoffs table.

    An account exists before ``d`` when it was created before ``d`` (or has
    no creation time). Built in Arrow, date by date, not row by row.

    Parameters
    ----------
    warehouse : Warehouse
        Holds the ``accounts`` table.
    dates : sequence of datetime
        Timezone-aware cutoffs.

    Returns
    -------
    pyarrow.Table
        Columns ``account_id`` (string) and ``cutoff`` (``timestamp[us, tz=UTC]``),
        date by date in the order given.
    """
    accounts = warehouse.query(exp.select("account_id", "created_at").from_("accounts"))
    created = accounts.column("created_at").cast(_CUTOFF_TYPE)
    ids = accounts.column("account_id").cast(pa.string())
    parts = []
    for day in dates:
        at = pa.scalar(day, _CUTOFF_TYPE)
        alive = pc.or_kleene(pc.is_null(created), pc.less(created, at))
        existing = ids.filter(alive)
        cutoff = pa.nulls(len(existing), _CUTOFF_TYPE).fill_null(at)
        parts.append(pa.table({"account_id": existing, "cutoff": cutoff}))
    if not parts:
        return pa.table(
            {"account_id": pa.array([], pa.string()), "cutoff": pa.array([], _CUTOFF_TYPE)}
        )
    return pa.concat_tables(parts)


def _check_cutoffs(cutoffs: pa.Table) -> pa.Table:
    missing = [c for c in ("account_id", "cutoff") if c not in cutoffs.column_names]
    if missing:
        raise ConfigError(
            f"cutoffs need the columns account_id and cutoff; missing {', '.join(missing)}"
        )
    cutoff_type = cutoffs.schema.field("cutoff").type
    if not pa.types.is_timestamp(cutoff_type) or cutoff_type.tz is None:
        raise ConfigError(
            f"cutoffs.cutoff must be a timezone-aware timestamp (UTC), not {cutoff_type}"
        )
    table = pa.table(
        {
            "account_id": cutoffs.column("account_id").cast(pa.string()),
            "cutoff": cutoffs.column("cutoff").cast(_CUTOFF_TYPE),
        }
    )
    for name in ("account_id", "cutoff"):
        if table.column(name).null_count:
            raise ConfigError(f"cutoffs.{name} holds nulls; every row needs an account and a time")
    return table


def compute_features(
    warehouse: Warehouse,
    cutoffs: pa.Table,
    specs: Sequence[FeatureSpec] | None = None,
    *,
    on_progress: Callable[[int, int], None] | None = None,
    batch_rows: int = 2_000_000,
) -> pa.Table:
    """Compute point-in-time features of each account at each of its cutoffs.

    Parameters
    ----------
    warehouse : Warehouse
        The warehouse holding the canonical tables.
    cutoffs : pyarrow.Table
        Columns ``account_id`` (string) and ``cutoff`` (timezone-aware
        timestamp). A feature at cutoff ``c`` reads only rows dated before ``c``.
    specs : sequence of FeatureSpec, optional
        The features; :func:`default_features` of the warehouse when omitted.
    on_progress : callable, optional
        Called as ``on_progress(done, total)`` after each warehouse query.
    batch_rows : int
        More distinct (account, cutoff) pairs than this are computed in
        batches (of consecutive pairs; of whole accounts when running totals
        need every cutoff of an account together), so that the warehouse's
        working set stays bounded: a query joining
        each cutoff to the rows before it keeps an aggregate per pair and
        per feature, and past a few million pairs those spill to disk. The
        all-time event features of a shared schedule aggregate per account
        and interval instead, whatever the pairs, so they run over all the
        pairs at once (in batches of ``8 * batch_rows``): a batch would read
        every event again.

    Returns
    -------
    pyarrow.Table
        One row per row of ``cutoffs``, in their order: ``account_id``,
        ``cutoff`` (``timestamp[us, tz=UTC]``), then one column per spec typed
        ``int64``, ``float64`` or ``string`` as the spec's ``dtype`` says.

    Raises
    ------
    ConfigError
        If the cutoffs or the specs are invalid.
    WarehouseError
        If a query fails.

    Examples
    --------
    >>> import datetime as dt
    >>> import pyarrow as pa
    >>> from churnwatch.features import FeatureSpec
    >>> from churnwatch.warehouse import connect
    >>> with connect("duckdb:///:memory:") as wh:
    ...     wh.ensure_schema()
    ...     cutoffs = pa.table({
    ...         "account_id": ["a1"],
    ...         "cutoff": pa.array([dt.datetime(2024, 2, 1, tzinfo=dt.UTC)],
    ...                            pa.timestamp("us", tz="UTC"))})
    ...     frame = compute_features(wh, cutoffs, [FeatureSpec("events_30d", "aggregate",
    ...                                                        "count", window_days=30)])
    >>> frame.column("events_30d").to_pylist()
    [0]
    """
    table = _check_cutoffs(cutoffs)
    if specs is None:
        specs = default_features(warehouse)
    specs = list(specs)
    name = f"_cw_cutoffs_{uuid.uuid4().hex[:12]}"
    # Several cutoffs of one account (``running``): all-time features are
    # summed over the intervals between them (see compile_features).
    distinct, position, running = _distinct_cutoffs(table)
    bounds: set[int] = set()
    # A few instants shared by the accounts (a schedule): all-time features
    # are aggregated per interval between them (see compile_features).
    instants = pc.unique(distinct.column("cutoff"))
    grid = None
    if 0 < len(instants) <= GRID_INSTANTS:
        grid = sorted(instants.to_pylist())

    def compile_for(table_name: str, rows: pa.Table) -> dict[str, exp.Select]:
        # The rows' own earliest and latest cutoff bound the rows each query scans.
        return compile_features(
            specs,
            warehouse.dialect,
            cutoffs_table=table_name,
            window_bounds=bounds,
            running=running,
            cutoff_range=_cutoff_range(rows),
            cutoff_grid=grid,
        )

    queries = compile_for(name, distinct)
    columns: list[tuple[str, ColumnType]] = [
        (ROW_COLUMN, "bigint"),
        ("account_id", "string"),
        ("cutoff", "timestamp"),
    ]
    if grid is not None:
        micros = pa.array(grid, _CUTOFF_TYPE).cast(pa.int64()).to_numpy()
        cut = distinct.column("cutoff").cast(pa.int64()).to_numpy()
        index = np.searchsorted(micros, cut).astype(np.int64)
        distinct = distinct.append_column(INTERVAL_COLUMN, pa.array(index))
        columns.append((INTERVAL_COLUMN, "bigint"))
    elif running:
        distinct = distinct.append_column(
            PREVIOUS_CUTOFF_COLUMN, _previous_cutoffs(distinct, warehouse.dialect)
        )
        columns.append((PREVIOUS_CUTOFF_COLUMN, "timestamp"))
    for days in sorted(bounds):
        start = pc.subtract(distinct.column("cutoff"), pa.scalar(dt.timedelta(days=days)))
        distinct = distinct.append_column(window_start_column(days), start.cast(_CUTOFF_TYPE))
        columns.append((window_start_column(days), "timestamp"))
    parts: list[pa.Table] = []
    if queries and distinct.num_rows:
        # The grid's all-time query aggregates per account and interval, not
        # per pair: it runs over all the pairs at once (a batch would read every
        # event again).
        whole = ["events_history"] if grid is not None and "events_history" in queries else []
        batched = [key for key in queries if key not in whole]
        # Running totals over an account's intervals need all its cutoffs in one
        # batch; otherwise each pair stands alone, and batches of consecutive
        # pairs return their rows in order, which spares a reordering of the
        # whole frame (a take per column) when it is assembled.
        split: Callable[[pa.Table, int], Sequence[slice | pa.Array]] = (
            _account_batches if running and grid is None else _row_batches
        )
        plan = [
            (name, batched, split(distinct, batch_rows)),
            (f"{name}_all", whole, split(distinct, _WHOLE_BATCH * batch_rows)),
        ]
        total = sum(len(group) * len(batches) for _, group, batches in plan)
        results: dict[str, list[pa.Table]] = {query: [] for query in queries}
        done = 0
        for table_name, group, batches in plan:
            for batch in batches if group else []:
                rows = (
                    distinct.slice(batch.start, batch.stop - batch.start)
                    if isinstance(batch, slice)
                    else distinct.take(batch)
                )
                compiled = compile_for(table_name, rows)
                warehouse.create_table(table_name, columns, temporary=True)
                try:
                    warehouse.append(table_name, rows)
                    for query_name in group:
                        query = compiled[query_name].order_by(exp.column(ROW_COLUMN, quoted=True))
                        results[query_name].append(warehouse.query(query))
                        done += 1
                        if on_progress is not None:
                            on_progress(done, total)
                finally:
                    warehouse.drop_table(table_name, temporary=True)
        parts = [
            pa.concat_tables(found, promote_options="permissive") for found in results.values()
        ]
        results.clear()  # the parts hold the batches now; let them go as they are placed
    return _assemble(table, position, parts, specs)


#: Cutoffs on at most this many distinct instants are treated as a shared schedule.
GRID_INSTANTS = 64
#: The grid's all-time query runs in batches this many times ``batch_rows``.
_WHOLE_BATCH = 8


def _cutoff_range(rows: pa.Table) -> tuple[dt.datetime, dt.datetime] | None:
    """The earliest and latest cutoff of ``rows`` (None when there are none)."""
    if rows.num_rows == 0:
        return None
    extremes = pc.min_max(rows.column("cutoff"))
    return extremes["min"].as_py(), extremes["max"].as_py()


def _row_batches(distinct: pa.Table, batch_rows: int) -> list[slice]:
    """Consecutive rows of ``distinct``, ``batch_rows`` at a time."""
    if batch_rows < 1:
        raise ConfigError(f"batch_rows must be 1 or more, not {batch_rows}")
    return [
        slice(start, min(start + batch_rows, distinct.num_rows))
        for start in range(0, distinct.num_rows, batch_rows)
    ]


def _account_batches(distinct: pa.Table, batch_rows: int) -> list[pa.Array]:
    """Row indices of ``distinct`` in batches of whole accounts, each about ``batch_rows``."""
    if batch_rows < 1:
        raise ConfigError(f"batch_rows must be 1 or more, not {batch_rows}")
    if distinct.num_rows <= batch_rows:
        return [pa.array(np.arange(distinct.num_rows, dtype=np.int64))]
    order = pc.sort_indices(distinct, [("account_id", "ascending")])
    accounts = distinct.column("account_id").take(order)
    first_of_account = _starts(pa.table({"account_id": accounts}), ["account_id"])
    # An account goes, whole, to the batch where its first row falls.
    account = np.cumsum(first_of_account) - 1
    starts = np.flatnonzero(first_of_account)
    batch = (starts // batch_rows)[account]
    indices = order.to_numpy()
    return [pa.array(indices[batch == b]) for b in np.unique(batch)]


def _distinct_cutoffs(table: pa.Table) -> tuple[pa.Table, np.ndarray | None, bool]:
    """The distinct (account, cutoff) pairs, numbered, where each row of ``table`` is, and more.

    The pairs keep the order of their first row in ``table`` and are
    numbered 0, 1, ... in the column ``_row``; the array gives the number of
    each row of ``table``, or is None when every row is distinct (the
    common case, where the numbers are the row numbers). The flag says
    whether some account has several cutoffs.

    Pairs are compared as one integer each (the account's and the cutoff's
    codes, from hash tables), not by sorting the account ids: a string sort
    of millions of rows took longer than some of the queries.
    """
    accounts = pc.dictionary_encode(table.column("account_id").combine_chunks())
    cutoffs = table.column("cutoff").combine_chunks()
    instants = pc.unique(cutoffs)
    account = accounts.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    instant = pc.index_in(cutoffs, value_set=instants).to_numpy(zero_copy_only=False)
    key = account * len(instants) + instant.astype(np.int64)
    ordered = np.sort(key)
    if table.num_rows < 2 or bool((ordered[1:] != ordered[:-1]).all()):
        distinct, position = table, None
    else:
        _, first_rows, pair = np.unique(key, return_index=True, return_inverse=True)
        # Number the pairs by their first row in the table's order.
        number = np.empty(len(first_rows), dtype=np.int64)
        number[np.argsort(first_rows)] = np.arange(len(first_rows), dtype=np.int64)
        distinct, position = table.take(pa.array(np.sort(first_rows))), number[pair.reshape(-1)]
    rows = pa.array(np.arange(distinct.num_rows, dtype=np.int64))
    running = len(accounts.dictionary) < distinct.num_rows
    return distinct.add_column(0, ROW_COLUMN, rows), position, running


def _starts(ordered: pa.Table, columns: Sequence[str]) -> np.ndarray:
    """For rows sorted by ``columns``: True where a row differs from the one before."""
    new = np.ones(ordered.num_rows, dtype=bool)
    if ordered.num_rows > 1:
        differs = np.zeros(ordered.num_rows - 1, dtype=bool)
        for name in columns:
            column = ordered.column(name)
            step = pc.not_equal(column.slice(1), column.slice(0, ordered.num_rows - 1))
            differs |= step.to_numpy(zero_copy_only=False)
        new[1:] = differs
    return new


#: Before any row a warehouse can hold: MySQL's DATETIME starts in the year 1000.
_EARLIEST = {"mysql": dt.datetime(1000, 1, 1, tzinfo=dt.UTC)}
_EARLIEST_DEFAULT = dt.datetime(1, 1, 1, tzinfo=dt.UTC)


def _previous_cutoffs(distinct: pa.Table, dialect: str) -> pa.Array:
    """Each pair's previous cutoff of the same account, in the order of ``distinct``.

    An account's first cutoff gets the earliest instant the warehouse can
    store, so its interval holds every earlier row.
    """
    order = pc.sort_indices(distinct, [("account_id", "ascending"), ("cutoff", "ascending")])
    ordered = distinct.select(["account_id", "cutoff"]).take(order)
    first_of_account = _starts(ordered, ["account_id"])
    micros = ordered.column("cutoff").cast(pa.int64()).to_numpy()
    earliest = _EARLIEST.get(dialect, _EARLIEST_DEFAULT)
    first = int((earliest - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) / dt.timedelta(microseconds=1))
    previous = np.full(len(micros), first, dtype=np.int64)
    if len(micros) > 1:
        previous[1:] = np.where(first_of_account[1:], first, micros[:-1])
    in_order = np.empty(len(micros), dtype=np.int64)
    in_order[order.to_numpy()] = previous
    return pa.array(in_order, pa.int64()).cast(_CUTOFF_TYPE)


def _assemble(
    table: pa.Table,
    position: np.ndarray | None,
    parts: list[pa.Table],
    specs: Sequence[FeatureSpec],
) -> pa.Table:
    """Place the parts' rows at the rows of ``table``, typed by the specs.

    Each part holds one row per distinct pair, keyed by ``_row``; ``position``
    gives each row of ``table`` its pair (None: row i is pair i).
    """
    found: dict[str, pa.ChunkedArray] = {}
    while parts:
        part = parts.pop(0)  # let each part go once placed: the frame can be large
        rows = part.column(ROW_COLUMN).to_numpy()
        where = np.empty(len(rows), dtype=np.int64)
        where[rows] = np.arange(len(rows), dtype=np.int64)
        if position is not None:
            where = where[position]
        # Column by column, so that one column at a time is copied (combined
        # from the batches, then taken; a take across chunks is ~6x slower).
        order = None if np.array_equal(where, np.arange(len(where))) else pa.array(where)
        for name in part.column_names[1:]:
            column = part.column(name)
            if order is not None:
                column = pa.chunked_array([column.combine_chunks().take(order)])
            found[name] = column
        del part
    for spec in specs:
        active = found.get(active_users_column(spec.name))
        if active is not None:  # the share of active users, from two queries
            known = pc.cast(found[KNOWN_USERS_COLUMN], pa.float64())
            share = pc.divide(pc.cast(active, pa.float64()), known)
            found[spec.name] = pc.if_else(pc.equal(known, 0.0), None, share)
    columns = [table.column("account_id"), table.column("cutoff")]
    for spec in specs:
        target = spec.arrow_type
        column = found.get(spec.name)
        if column is None or pa.types.is_null(column.type):
            columns.append(pa.nulls(table.num_rows, target))
        else:
            columns.append(pc.cast(column, target))
    return pa.table(columns, names=["account_id", "cutoff", *(s.name for s in specs)])
