"""The event inbox: events posted to the REST API, kept until they reach the warehouse.

Events arrive one batch at a time over HTTP, far more often than the daily
job runs. Each is checked against the canonical ``events`` table of
:mod:`churnwatch.schema` (:func:`check_events`: a rejected row names its
index, field and what was expected; the good rows of a batch are kept) and
stored in the operational store's ``inbox_events`` table
(:func:`store_events`), which takes many small transactions well.

An event is identified by its ``event_id``; one posted without an id is
identified by a digest of its canonical key (account, time, type, user,
value, duration), the key the warehouse deduplicates events by. Posting
an event again is acknowledged as a duplicate and stores nothing.

:func:`drain_inbox` moves the stored events into the warehouse through the
ordinary ingest path (the same checks, quarantine and deduplication as a
file source) and marks them drained. A drain killed after the warehouse
load but before the marking loads the same events again next time; the
warehouse recognises them as duplicates of immutable facts, so nothing is
counted twice.

Examples
--------
>>> import datetime as dt
>>> now = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
>>> checked = check_events(
...     [{"event_id": "e1", "account_id": "a1", "event_time": "2024-02-29T10:00:00Z",
...       "event_type": "login"},
...      {"account_id": "a1", "event_type": "login"}], now=now)
>>> len(checked.valid), [(r.index, r.field) for r in checked.rejections]
(1, [(1, 'event_time')])
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import math
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa
from sqlalchemy.dialects import mysql as mysql_dialect
from sqlalchemy.dialects import postgresql, sqlite

from churnwatch.config import Settings, SourceSpec
from churnwatch.ingest import IngestReport, ingest
from churnwatch.schema import TABLES, arrow_type
from churnwatch.store import INBOX_EVENTS, Constant, Store, UtcDateTime, bulk_write
from churnwatch.warehouse import Warehouse

__all__ = [
    "EVENT_FIELDS",
    "MAX_FUTURE_SKEW",
    "CheckedEvents",
    "DrainReport",
    "Rejection",
    "StoredEvents",
    "check_events",
    "drain_inbox",
    "events_table",
    "pending_events",
    "prune_inbox",
    "store_events",
]

_EVENTS = TABLES["events"]
#: The fields an event may carry: the columns of the canonical ``events`` table.
EVENT_FIELDS: tuple[str, ...] = _EVENTS.column_names
#: How far ahead of the server's clock an event time may be (clocks drift).
MAX_FUTURE_SKEW = dt.timedelta(minutes=5)
_MAX_TEXT = 255
_SOURCE_NAME = "api_inbox"


@dataclasses.dataclass(frozen=True)
class Rejection:
    """Why one posted event was refused.

    Attributes
    ----------
    index : int
        Position of the event in the posted batch (from 0).
    field : str or None
        The field at fault (None when the event as a whole is wrong).
    message : str
        What was expected.
    """

    index: int
    field: str | None
    message: str


@dataclasses.dataclass(frozen=True)
class CheckedEvents:
    """A batch after checking: the good events (typed) and the refusals.

    Attributes
    ----------
    valid : list of dict
        Events with typed values (aware UTC ``datetime``, ``float``, JSON
        text for ``properties``) and their ``dedupe_key``.
    rejections : list of Rejection
        One or more per refused event.
    """

    valid: list[dict[str, Any]]
    rejections: list[Rejection]

    @property
    def rejected_rows(self) -> int:
        """Events refused (an event with several faults counts once)."""
        return len({r.index for r in self.rejections})


def _text(value: Any, name: str, required: bool) -> tuple[str | None, str | None]:
    if value is None:
        return None, (f"{name} is required: a non-empty string" if required else None)
    if not isinstance(value, str):
        return None, f"expected a string, got {type(value).__name__}"
    if required and not value.strip():
        return None, "expected a non-empty string"
    if len(value) > _MAX_TEXT:
        return None, f"expected at most {_MAX_TEXT} characters, got {len(value)}"
    return value, None


def _instant(value: Any, name: str, now: dt.datetime) -> tuple[dt.datetime | None, str | None]:
    expected = "an ISO 8601 timestamp with a time zone, such as 2024-03-01T09:30:00Z"
    if value is None:
        return None, f"{name} is required: {expected}"
    if not isinstance(value, str):
        return None, f"expected {expected}, got {type(value).__name__}"
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None, f"expected {expected}, got {value[:60]!r}"
    if parsed.tzinfo is None:
        # Which zone a naive time is in would be a guess; the warehouse keeps UTC.
        return None, f"expected {expected}: {value[:60]!r} has no time zone"
    parsed = parsed.astimezone(dt.UTC)
    if parsed > now + MAX_FUTURE_SKEW:
        return None, f"{value[:60]!r} is in the future (the server's time is {now.isoformat()})"
    return parsed, None


def _number(value: Any, minimum: float | None) -> tuple[float | None, str | None]:
    if value is None:
        return None, None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None, f"expected a number, got {type(value).__name__}"
    number = float(value)
    if not math.isfinite(number):
        return None, "expected a finite number"
    if minimum is not None and number < minimum:
        return None, f"expected a number of at least {minimum:g}, got {number:g}"
    return number, None


def dedupe_key(event: Mapping[str, Any]) -> str:
    """The identity of a checked event: its ``event_id``, else a digest of its canonical key.

    Examples
    --------
    >>> dedupe_key({"event_id": "e-17"})
    'id:e-17'
    >>> dedupe_key({"account_id": "a", "event_time": None, "event_type": "x"})[:7]
    'digest:'
    """
    if event.get("event_id"):
        return f"id:{event['event_id']}"
    parts = [
        "" if event.get(name) is None else str(event[name])
        for name in _EVENTS.key
        if name != "event_id"
    ]
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
    return f"digest:{digest}"


def check_events(events: Sequence[Any], *, now: dt.datetime | None = None) -> CheckedEvents:
    """Check posted events against the canonical ``events`` table.

    Parameters
    ----------
    events : sequence
        Decoded JSON values, each expected to be an object with the fields
        of :data:`EVENT_FIELDS` (``account_id``, ``event_time`` and
        ``event_type`` required).
    now : datetime, optional
        The server's time (event times more than :data:`MAX_FUTURE_SKEW`
        after it are refused).

    Returns
    -------
    CheckedEvents
    """
    now = now or dt.datetime.now(dt.UTC)
    valid: list[dict[str, Any]] = []
    rejections: list[Rejection] = []
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            rejections.append(
                Rejection(index, None, f"expected a JSON object, got {type(event).__name__}")
            )
            continue
        faults: list[Rejection] = []
        for name in sorted(set(event) - set(EVENT_FIELDS)):
            faults.append(
                Rejection(index, str(name), f"unknown field; expected {', '.join(EVENT_FIELDS)}")
            )
        typed: dict[str, Any] = {}
        for column in _EVENTS.columns:
            value = event.get(column.name)
            problem: str | None
            if column.type == "string":
                typed[column.name], problem = _text(value, column.name, column.required)
            elif column.type == "timestamp":
                typed[column.name], problem = _instant(value, column.name, now)
            elif column.type == "double":
                typed[column.name], problem = _number(value, column.minimum)
            else:  # json: the properties object, kept as JSON text
                if value is None:
                    typed[column.name], problem = None, None
                elif isinstance(value, dict):
                    typed[column.name], problem = json.dumps(value, sort_keys=True), None
                else:
                    typed[column.name], problem = None, "expected a JSON object"
            if problem is not None:
                faults.append(Rejection(index, column.name, problem))
        if faults:
            rejections.extend(faults)
            continue
        typed["dedupe_key"] = dedupe_key(typed)
        valid.append(typed)
    return CheckedEvents(valid, rejections)


@dataclasses.dataclass(frozen=True)
class StoredEvents:
    """What :func:`store_events` did.

    Attributes
    ----------
    accepted : int
        Events stored now.
    duplicates : int
        Events already stored (or repeated within the batch): acknowledged, not stored.
    """

    accepted: int
    duplicates: int


def _insert_ignoring_duplicates(store: Store) -> sa.Insert:
    """An insert that skips a row whose ``dedupe_key`` another writer stored meanwhile."""
    if store.dialect == "sqlite":
        return sqlite.insert(INBOX_EVENTS).on_conflict_do_nothing(index_elements=["dedupe_key"])
    if store.dialect == "postgresql":
        return postgresql.insert(INBOX_EVENTS).on_conflict_do_nothing(index_elements=["dedupe_key"])
    return mysql_dialect.insert(INBOX_EVENTS).prefix_with("IGNORE")


def store_events(
    store: Store, events: Sequence[Mapping[str, Any]], *, now: dt.datetime | None = None
) -> StoredEvents:
    """Store checked events in the inbox, once each.

    Parameters
    ----------
    store : Store
        The operational store.
    events : sequence of mapping
        :attr:`CheckedEvents.valid`.
    now : datetime, optional
        The receipt time recorded.

    Returns
    -------
    StoredEvents
    """
    now = now or dt.datetime.now(dt.UTC)
    fresh: dict[str, Mapping[str, Any]] = {}
    for event in events:
        fresh.setdefault(str(event["dedupe_key"]), event)
    repeated = len(events) - len(fresh)
    if not fresh:
        return StoredEvents(0, repeated)
    with store.transaction() as connection:
        known: set[str] = set()
        keys = list(fresh)
        # In slices: a statement's bound parameters are limited on some engines.
        for start in range(0, len(keys), 500):
            found = connection.execute(
                sa.select(INBOX_EVENTS.c.dedupe_key).where(
                    INBOX_EVENTS.c.dedupe_key.in_(keys[start : start + 500])
                )
            )
            known.update(found.scalars())
        new = [event for key, event in fresh.items() if key not in known]
        if new:
            columns: dict[str, Any] = {
                name: [event.get(name) for event in new] for name in (*EVENT_FIELDS, "dedupe_key")
            }
            columns["received_at"] = Constant(now)
            # The select above runs inside the write transaction (BEGIN IMMEDIATE
            # on SQLite), so no other writer slips in between; the conflict clause
            # covers the engines where it could.
            bulk_write(connection, _insert_ignoring_duplicates(store), columns)
    return StoredEvents(len(new), repeated + len(known))


def pending_events(store: Store) -> int:
    """Events stored in the inbox and not drained yet."""
    with store.engine.connect() as connection:
        query = sa.select(sa.func.count()).where(INBOX_EVENTS.c.drained_at.is_(None))
        return int(connection.execute(query).scalar() or 0)


@dataclasses.dataclass(frozen=True)
class DrainReport:
    """What one :func:`drain_inbox` run did.

    Attributes
    ----------
    drained : int
        Inbox events handed to the warehouse and marked drained.
    ingest : IngestReport
        The warehouse load: inserted, quarantined (with reasons).
    """

    drained: int
    ingest: IngestReport

    @property
    def loaded(self) -> int:
        """Events now in the warehouse's ``events`` table."""
        return sum(f.loaded for f in self.ingest.files)

    @property
    def quarantined(self) -> int:
        """Events the warehouse refused (unknown account, a duplicate...), kept in quarantine."""
        return self.ingest.quarantined


def events_table(rows: Mapping[str, Sequence[Any]]) -> pa.Table:
    """Checked events, given column by column, as an Arrow table of the ``events`` schema.

    Examples
    --------
    >>> when = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
    >>> events_table({"account_id": ["a"], "event_time": [when], "event_type": ["login"]}).num_rows
    1
    """
    columns = {}
    count = max((len(v) for v in rows.values()), default=0)
    for column in _EVENTS.columns:
        values = list(rows.get(column.name) or [None] * count)
        if column.type == "timestamp":
            values = [
                None if v is None else v.replace(tzinfo=dt.UTC) if v.tzinfo is None else v
                for v in values
            ]
            kind: pa.DataType = pa.timestamp("us", tz="UTC")
        elif column.type == "json":
            kind = pa.string()
        else:
            kind = arrow_type(column.type)
        columns[column.name] = pa.array(values, kind)
    return pa.table(columns)


def drain_inbox(
    store: Store,
    warehouse: Warehouse,
    *,
    batch_rows: int = 200_000,
    now: dt.datetime | None = None,
) -> DrainReport:
    """Move the inbox's pending events into the warehouse's ``events`` table.

    Parameters
    ----------
    store : Store
        The operational store holding ``inbox_events``.
    warehouse : Warehouse
        Receives the events through :func:`churnwatch.ingest.ingest`.
    batch_rows : int
        Events per load; the drain loops until nothing is pending.
    now : datetime, optional
        The drain time (the ingest's "now" and the ``drained_at`` recorded).

    Returns
    -------
    DrainReport
    """
    now = now or dt.datetime.now(dt.UTC)
    report = IngestReport()
    drained = 0
    wanted = [INBOX_EVENTS.c.id, *(INBOX_EVENTS.c[name] for name in EVENT_FIELDS)]
    while True:
        with store.engine.connect() as connection:
            found = connection.execute(
                sa.select(*wanted)
                .where(INBOX_EVENTS.c.drained_at.is_(None))
                .order_by(INBOX_EVENTS.c.id)
                .limit(batch_rows)
            ).all()
        if not found:
            break
        rows = {name: [row._mapping[name] for row in found] for name in EVENT_FIELDS}
        with tempfile.TemporaryDirectory(prefix="churnwatch-inbox-") as folder:
            path = Path(folder) / "events.parquet"
            pq.write_table(events_table(rows), path)
            source = SourceSpec.model_validate(
                {
                    "name": _SOURCE_NAME,
                    "table": "events",
                    "path": str(path),
                    "format": "parquet",
                    "columns": {name: name for name in EVENT_FIELDS},
                }
            )
            loaded = ingest(Settings(sources=[source]), warehouse, base_dir=folder, now=now)
        report.files.extend(loaded.files)
        ids = [row.id for row in found]
        with store.transaction() as connection:
            bulk_write(
                connection,
                INBOX_EVENTS.update()
                .where(INBOX_EVENTS.c.id == sa.bindparam("row_id", type_=sa.BigInteger()))
                .values(drained_at=sa.bindparam("drained_now", type_=UtcDateTime())),
                {"row_id": ids, "drained_now": Constant(now)},
            )
        drained += len(ids)
        if len(found) < batch_rows:
            break
    return DrainReport(drained, report)


def prune_inbox(store: Store, *, keep_days: int = 30, now: dt.datetime | None = None) -> int:
    """Delete the inbox's events drained more than ``keep_days`` ago; return how many.

    Pending events are never deleted. A drained event is kept for a while
    because its dedupe key is what makes a retried ``POST /events``
    idempotent: a client retrying an event after it was deleted would post
    it anew, so ``keep_days`` should exceed any client's retry horizon.

    Parameters
    ----------
    store : Store
        The operational store holding ``inbox_events``.
    keep_days : int
        Days a drained event is kept (``[store] inbox_keep_days``).
    now : datetime, optional
        The current time (default: now, UTC).

    Raises
    ------
    ValueError
        If ``keep_days`` is below 1.
    """
    if keep_days < 1:
        raise ValueError(f"keep_days must be 1 or more, got {keep_days}")
    now = now or dt.datetime.now(dt.UTC)
    before = now - dt.timedelta(days=keep_days)
    with store.transaction() as connection:
        deleted = connection.execute(
            INBOX_EVENTS.delete().where(
                INBOX_EVENTS.c.drained_at.is_not(None), INBOX_EVENTS.c.drained_at < before
            )
        )
    return int(deleted.rowcount or 0)
