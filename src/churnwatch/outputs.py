"""Result frames saved as warehouse tables, next to the data they came from.

Labels and features are per-(account, cutoff) frames computed from the
canonical tables. :func:`write_table` stores one as a table of its own in the
same warehouse, so that SQL tools, dashboards and later queries can join it
without a file in between. The canonical and bookkeeping tables are never
overwritten.

Examples
--------
>>> import pyarrow as pa
>>> from sqlglot import exp
>>> from churnwatch.warehouse import connect
>>> with connect("duckdb:///:memory:") as wh:
...     write_table(wh, "scores", pa.table({"account_id": ["a1"], "risk": [0.25]}))
...     wh.query(exp.select("*").from_("scores")).to_pylist()
[{'account_id': 'a1', 'risk': 0.25}]
"""

from __future__ import annotations

import re
import uuid

import pyarrow as pa
from sqlglot import exp

from churnwatch.errors import WarehouseError
from churnwatch.schema import TABLES, ColumnType, arrow_type
from churnwatch.warehouse import SYSTEM_TABLES, Warehouse

__all__ = ["PROTECTED_TABLES", "check_table_name", "write_table"]

#: Tables a result may never replace: the canonical data and its bookkeeping.
PROTECTED_TABLES = frozenset({*TABLES, *SYSTEM_TABLES})

# Lower case only: Postgres folds unquoted names to lower case, so "Labels"
# would be created as one table and looked up as another. 63 characters is
# Postgres's limit (MySQL's is 64).
_TABLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _column_type(name: str, column_type: pa.DataType) -> ColumnType:
    """The abstract type that holds an Arrow column of a result frame."""
    if pa.types.is_string(column_type) or pa.types.is_large_string(column_type):
        return "string"
    if pa.types.is_boolean(column_type):
        return "boolean"
    if pa.types.is_integer(column_type):
        return "bigint"
    if pa.types.is_floating(column_type):
        return "double"
    if pa.types.is_timestamp(column_type):
        return "timestamp"
    raise WarehouseError(
        f"column {name!r} is {column_type}: a table can hold string, integer, float, "
        "boolean and timestamp columns"
    )


def check_table_name(name: str) -> None:
    """Refuse a name that is not a plain table name or that names a protected table.

    Raises
    ------
    WarehouseError
        If the name is not 1-63 lower-case letters, digits and ``_`` starting
        with a letter or ``_``, or is a canonical or bookkeeping table.

    Examples
    --------
    >>> check_table_name("events")
    Traceback (most recent call last):
    ...
    churnwatch.errors.WarehouseError: cannot write to table 'events': it holds the canonical ...
    """
    if name in PROTECTED_TABLES:
        raise WarehouseError(
            f"cannot write to table {name!r}: it holds the canonical data or its bookkeeping; "
            "choose another name"
        )
    if not _TABLE_NAME.match(name):
        raise WarehouseError(
            f"invalid table name {name!r}: use 1-63 lower-case letters, digits or '_', "
            "starting with a letter or '_'"
        )


def write_table(warehouse: Warehouse, name: str, frame: pa.Table) -> None:
    """Store ``frame`` in the warehouse as table ``name``, replacing any table of that name.

    Column types follow the frame: strings, integers (as ``int64``), floats
    (as ``float64``), booleans and timestamps (as UTC instants; zone-less
    ones are taken as UTC). Reading the table back gives the same frame.

    Parameters
    ----------
    warehouse : Warehouse
        Where to write.
    name : str
        The table's name: lower-case letters, digits and ``_``; never a
        canonical or bookkeeping table (:data:`PROTECTED_TABLES`).
    frame : pyarrow.Table
        The rows, such as :attr:`LabelTable.frame` or the result of
        :func:`compute_features`.

    Raises
    ------
    WarehouseError
        If the name is refused, a column's type has no table type, or the
        warehouse fails; an existing table of that name is then left as it was.
    """
    check_table_name(name)
    columns = [(field.name, _column_type(field.name, field.type)) for field in frame.schema]
    rows = frame.cast(pa.schema([(column, arrow_type(kind)) for column, kind in columns]))
    # Build the new table aside and swap it in only once it is complete: a load
    # that fails halfway (a value the engine refuses) leaves the old one intact.
    # MySQL cannot create or drop tables inside a transaction, so the swap is a
    # drop and a rename rather than one transaction.
    staging = f"_cw_new_{uuid.uuid4().hex[:12]}"
    warehouse.create_table(staging, columns, if_not_exists=False)
    try:
        warehouse.append(staging, rows)
    except BaseException:
        warehouse.drop_table(staging)
        raise
    warehouse.drop_table(name)
    warehouse.execute(
        exp.Alter(
            this=exp.to_table(staging),
            kind="TABLE",
            actions=[exp.AlterRename(this=exp.to_table(name))],
        )
    )
