"""Drained API events leave the inbox after ``keep_days``; pending ones never do."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from churnwatch.inbox import check_events, pending_events, prune_inbox, store_events
from churnwatch.store import INBOX_EVENTS, Store

NOW = dt.datetime(2025, 3, 1, 12, tzinfo=dt.UTC)


def _posted(number: int) -> dict[str, object]:
    return {
        "event_id": f"evt-{number}",
        "account_id": "acc-1",
        "event_time": (NOW - dt.timedelta(days=60, minutes=number)).isoformat(),
        "event_type": "login",
    }


def _post(store: Store, numbers: list[int]) -> tuple[int, int]:
    checked = check_events([_posted(n) for n in numbers], now=NOW)
    assert not checked.rejections
    stored = store_events(store, checked.valid, now=NOW - dt.timedelta(days=60))
    return stored.accepted, stored.duplicates


def _drained_at(store: Store, event_id: str, when: dt.datetime) -> None:
    # What drain_inbox records once the event is in the warehouse.
    with store.transaction() as connection:
        connection.execute(
            INBOX_EVENTS.update().where(INBOX_EVENTS.c.event_id == event_id).values(drained_at=when)
        )


def _left(store: Store) -> list[str]:
    with store.engine.connect() as connection:
        rows = connection.execute(
            sa.select(INBOX_EVENTS.c.event_id).order_by(INBOX_EVENTS.c.event_id)
        )
        return [row.event_id for row in rows]


def test_prune_deletes_only_events_drained_before_the_window(store: Store) -> None:
    assert _post(store, [1, 2, 3, 4]) == (4, 0)
    _drained_at(store, "evt-1", NOW - dt.timedelta(days=40))  # long ago: goes
    _drained_at(store, "evt-2", NOW - dt.timedelta(days=30, seconds=1))  # just past: goes
    _drained_at(store, "evt-3", NOW - dt.timedelta(days=10))  # recent: stays
    # evt-4 was never drained: it stays, however old.
    assert prune_inbox(store, keep_days=30, now=NOW) == 2
    assert _left(store) == ["evt-3", "evt-4"]
    assert pending_events(store) == 1
    assert prune_inbox(store, keep_days=30, now=NOW) == 0
    # The window is the dedupe window: a retry of a kept event is still a
    # duplicate, one of a deleted event is accepted anew.
    assert _post(store, [3]) == (0, 1)
    assert _post(store, [1]) == (1, 0)


def test_keep_days_must_be_positive(store: Store) -> None:
    with pytest.raises(ValueError, match="keep_days must be 1 or more"):
        prune_inbox(store, keep_days=0, now=NOW)
