"""A tiny business whose cohorts, MRR and movements are worked out by hand.

Observation end ``END`` = 2024-05-01: January to April are known, May is not.

Accounts (signup): ``a`` 01-03, ``b`` 01-20, ``c`` 02-20, ``d`` 04-15, ``e``
without a signup time, ``f`` 05-03 (after the end).

Events: ``a`` 01-03, 01-15, 02-07, 04-30 23:59; ``b`` 01-20, 03-01 00:00;
``c`` 01-25 (before its signup month: not counted), 03-20; ``d`` 04-15;
``e`` 02-01; ``f`` 05-03 (after the end).

Subscriptions and each account's MRR at the end of each month:

====  ====================================  =====  =====  =====  =====
acct  subscriptions                          Jan    Feb    Mar    Apr
====  ====================================  =====  =====  =====  =====
a     100 01-10→02-10, 150 02-10→,          100    150    170    150
      add-on 20 03-01→04-10
b     50 01-20→02-20, 10 04-01→             50     0      0      10
c     80 02-20→03-31, 999 03-05→03-20       0      80     0      0
      (a trial inside a month: no MRR)
d     30.50 04-15→05-15                      0      0      0      30.5
e     0 04-20→ (free)                        0      0      0      0
====  ====================================  =====  =====  =====  =====
total                                        150    230    170    190.5
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import pytest

from churnwatch.warehouse import Warehouse, arrow_schema

UTC = dt.UTC
END = "2024-05-01"


def at(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


ACCOUNTS = [
    {"account_id": "a", "created_at": at(2024, 1, 3)},
    {"account_id": "b", "created_at": at(2024, 1, 20)},
    {"account_id": "c", "created_at": at(2024, 2, 20)},
    {"account_id": "d", "created_at": at(2024, 4, 15)},
    {"account_id": "e", "created_at": None},
    {"account_id": "f", "created_at": at(2024, 5, 3)},
]
EVENTS = [
    {"account_id": "a", "event_time": at(2024, 1, 3), "event_type": "login"},
    {"account_id": "a", "event_time": at(2024, 1, 15), "event_type": "login"},
    {"account_id": "a", "event_time": at(2024, 2, 7), "event_type": "login"},
    {"account_id": "a", "event_time": at(2024, 4, 30, 23, 59), "event_type": "login"},
    {"account_id": "b", "event_time": at(2024, 1, 20), "event_type": "login"},
    {"account_id": "b", "event_time": at(2024, 3, 1), "event_type": "login"},
    {"account_id": "c", "event_time": at(2024, 1, 25), "event_type": "login"},
    {"account_id": "c", "event_time": at(2024, 3, 20), "event_type": "login"},
    {"account_id": "d", "event_time": at(2024, 4, 15), "event_type": "login"},
    {"account_id": "e", "event_time": at(2024, 2, 1), "event_type": "login"},
    {"account_id": "f", "event_time": at(2024, 5, 3), "event_type": "login"},
]
SUBSCRIPTIONS = [
    {"account_id": "a", "started_at": at(2024, 1, 10), "ended_at": at(2024, 2, 10), "mrr": 100.0},
    {"account_id": "a", "started_at": at(2024, 2, 10), "ended_at": None, "mrr": 150.0},
    {"account_id": "a", "started_at": at(2024, 3, 1), "ended_at": at(2024, 4, 10), "mrr": 20.0},
    {"account_id": "b", "started_at": at(2024, 1, 20), "ended_at": at(2024, 2, 20), "mrr": 50.0},
    {"account_id": "b", "started_at": at(2024, 4, 1), "ended_at": None, "mrr": 10.0},
    {"account_id": "c", "started_at": at(2024, 2, 20), "ended_at": at(2024, 3, 31), "mrr": 80.0},
    {"account_id": "c", "started_at": at(2024, 3, 5), "ended_at": at(2024, 3, 20), "mrr": 999.0},
    {"account_id": "d", "started_at": at(2024, 4, 15), "ended_at": at(2024, 5, 15), "mrr": 30.5},
    {"account_id": "e", "started_at": at(2024, 4, 20), "ended_at": None, "mrr": 0.0},
]
ROWS: dict[str, list[dict[str, Any]]] = {
    "accounts": ACCOUNTS,
    "events": EVENTS,
    "subscriptions": SUBSCRIPTIONS,
}


def arrow_rows(table: str, rows: list[dict[str, Any]]) -> pa.Table:
    """Rows as Arrow in the canonical schema of ``table`` (absent keys are null)."""
    schema = arrow_schema(table)
    return pa.Table.from_pylist([{n: r.get(n) for n in schema.names} for r in rows], schema=schema)


def load(warehouse: Warehouse, rows: dict[str, list[dict[str, Any]]] = ROWS) -> None:
    warehouse.ensure_schema()
    for table, table_rows in rows.items():
        warehouse.append(table, arrow_rows(table, table_rows))


@pytest.fixture
def tiny(warehouse: Warehouse) -> Warehouse:
    """The tiny business in an empty warehouse, once per engine."""
    load(warehouse)
    return warehouse
