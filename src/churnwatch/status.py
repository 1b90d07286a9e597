"""What the warehouse holds: rows and time range per table, rejected rows by reason.

Examples
--------
>>> from churnwatch.warehouse import connect
>>> with connect("duckdb:///:memory:") as wh:
...     wh.ensure_schema()
...     describe(wh).tables["events"].rows
0
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlglot import exp

from churnwatch.schema import TABLES
from churnwatch.warehouse import LOADS_TABLE, QUARANTINE_TABLE, Warehouse

__all__ = ["TableStatus", "WarehouseStatus", "describe"]


@dataclass(frozen=True)
class TableStatus:
    """Rows of one canonical table and the span of its time column."""

    name: str
    rows: int
    time_column: str | None
    first: dt.datetime | dt.date | None
    last: dt.datetime | dt.date | None


@dataclass(frozen=True)
class WarehouseStatus:
    """A summary of the warehouse, as ``churnwatch status`` prints it."""

    url: str
    tables: dict[str, TableStatus]
    quarantine: dict[tuple[str, str], int] = field(default_factory=dict)
    loads: int = 0

    @property
    def quarantined(self) -> int:
        """Rejected rows in all."""
        return sum(self.quarantine.values())


def describe(warehouse: Warehouse) -> WarehouseStatus:
    """Count rows, time ranges and quarantine reasons.

    Parameters
    ----------
    warehouse : Warehouse
        An open warehouse; missing tables are created empty first.
    """
    warehouse.ensure_schema()
    tables: dict[str, TableStatus] = {}
    for name, table in TABLES.items():
        when = table.time_column
        columns: list[exp.Expr] = [exp.func("COUNT", exp.Star())]
        if when is not None:
            column = exp.column(when, quoted=True)
            columns += [exp.func("MIN", column), exp.func("MAX", column)]
        row = warehouse.query(exp.select(*columns).from_(name)).to_pylist()[0]
        values = list(row.values())
        tables[name] = TableStatus(
            name=name,
            rows=int(values[0]),
            time_column=when,
            first=values[1] if when else None,
            last=values[2] if when else None,
        )
    reasons = warehouse.query(
        exp.select(
            exp.column("target_table"),
            exp.column("reason"),
            exp.alias_(exp.func("COUNT", exp.Star()), "n"),
        )
        .from_(QUARANTINE_TABLE)
        .group_by(exp.column("target_table"), exp.column("reason"))
    ).to_pylist()
    return WarehouseStatus(
        url=warehouse.url,
        tables=tables,
        quarantine={(r["target_table"], r["reason"]): int(r["n"]) for r in reasons},
        loads=warehouse.count(LOADS_TABLE),
    )
