"""The daily run: ingest, API inbox, score, track, dispatch, read model — for one date.

Suitable for cron: each step is idempotent on its own — ingestion skips
files already loaded, scoring replaces the rows of its cutoff, the tracker
does nothing for a date already tracked, the dispatcher sends only what is
still due — so a run killed anywhere is finished by running it again, and a
run repeated changes nothing.

**One at a time.** Two runs never overlap: a run holds the *daily lock* for
its whole duration, and a second run finds it taken and stops with a clear
error. The lock is one the operating system or the database releases when
its holder dies, so a killed run never leaves it stuck:

- SQLite store (one machine): an exclusive ``flock`` on a file beside the
  store, ``<store file>.daily.lock`` (the kernel drops it with the process;
  the file itself stays and is harmless);
- Postgres: a session advisory lock (``pg_try_advisory_lock``), released
  when the session ends — also when a killed client's connection drops;
- MySQL/MariaDB: a named lock (``GET_LOCK``), released with its session.

An in-memory SQLite store (tests) is locked within the process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fcntl
import hashlib
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import pyarrow as pa
import sqlalchemy as sa

from churnwatch.config import Settings
from churnwatch.errors import OutcomeError
from churnwatch.notify import Channel, DispatchReport, RetryPolicy, dispatch, queue_digests
from churnwatch.store import Store
from churnwatch.tracker import (
    TrackResult,
    latest_risk_scores,
    read_snapshot,
    track_risk,
    track_snapshot,
)

if TYPE_CHECKING:
    # Ingestion and scoring pull in scikit-learn and LightGBM: seconds of
    # imports a run that only tracks and dispatches (most cron runs) never pays.
    from churnwatch.inbox import DrainReport
    from churnwatch.ingest import IngestReport
    from churnwatch.models import ModelRegistry
    from churnwatch.scoring import ScoringRun
    from churnwatch.warehouse import Warehouse

__all__ = ["LOCK_NAME", "DailyReport", "daily_lock", "retry_policy", "run_daily"]

#: Name of the daily lock (the advisory lock's key is derived from it).
LOCK_NAME = "churnwatch_daily"
_MEMORY_LOCKS: dict[str, threading.Lock] = {}


@dataclasses.dataclass(frozen=True)
class DailyReport:
    """What one daily run did.

    Attributes
    ----------
    date : date
        The snapshot date processed.
    ingested : IngestReport or None
        The ingestion, if the run ingested.
    scored : ScoringRun or None
        The scoring, if the run scored.
    tracked : TrackResult or None
        The tracking of the date (``already_tracked`` on a repeat), or None
        when there was no snapshot rows for the date (an empty day is not
        tracked: it would flag every account missing).
    risk : TrackResult or None
        The risk alerts from the latest ``risk_scores`` of the tracked target
        up to the date, or None when the warehouse has none.
    digests : int
        Daily digests queued.
    dispatched : DispatchReport
        What the dispatcher delivered.
    drained : DrainReport or None
        The events posted to the API since the last run, moved into the
        warehouse before scoring (None without a warehouse).
    """

    date: dt.date
    ingested: IngestReport | None
    scored: ScoringRun | None
    tracked: TrackResult | None
    risk: TrackResult | None
    digests: int
    dispatched: DispatchReport
    drained: DrainReport | None = None


def retry_policy(settings: Settings) -> RetryPolicy:
    """The dispatcher's retry policy from ``[notify]``.

    Examples
    --------
    >>> retry_policy(Settings()).max_attempts
    8
    """
    notify = settings.notify
    return RetryPolicy(
        max_attempts=notify.max_attempts_count,
        backoff_s=notify.backoff_s,
        max_backoff_s=notify.max_backoff_s,
        lease_s=notify.lease_s,
        batch_rows=notify.batch_rows,
    )


def _lock_key() -> int:
    # A stable signed 64-bit key for Postgres advisory locks.
    return int.from_bytes(hashlib.sha256(LOCK_NAME.encode()).digest()[:8], "big", signed=True)


def _busy(detail: str) -> OutcomeError:
    return OutcomeError(
        f"another churnwatch daily run is in progress ({detail}); it holds the daily lock "
        "until it ends. Wait for it, or run again later — a killed run releases the lock"
    )


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle: IO[str] = path.open("a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise _busy(f"lock file {path}, held by process {holder}") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        handle.close()


@contextlib.contextmanager
def _server_lock(store: Store) -> Iterator[None]:
    with store.engine.connect() as connection:
        if store.dialect == "postgresql":
            got = connection.execute(sa.select(sa.func.pg_try_advisory_lock(_lock_key()))).scalar()
            release: Callable[[], object] = lambda: connection.execute(  # noqa: E731
                sa.select(sa.func.pg_advisory_unlock(_lock_key()))
            )
        else:
            got = connection.execute(sa.select(sa.func.get_lock(LOCK_NAME, 0))).scalar()
            release = lambda: connection.execute(  # noqa: E731
                sa.select(sa.func.release_lock(LOCK_NAME))
            )
        connection.commit()
        if not got:
            raise _busy(f"{store.dialect} advisory lock {LOCK_NAME!r}")
        try:
            yield
        finally:
            release()
            connection.commit()


@contextlib.contextmanager
def daily_lock(store: Store, *, path: str | Path | None = None) -> Iterator[None]:
    """Hold the daily lock of ``store`` for the duration of the block.

    Parameters
    ----------
    store : Store
        The operational store the run works on.
    path : str or Path, optional
        The lock file of a SQLite store (default: beside the database file).

    Raises
    ------
    OutcomeError
        If another run holds it.

    Examples
    --------
    >>> from churnwatch.store import open_store
    >>> store = open_store("sqlite://")
    >>> with daily_lock(store):
    ...     try:
    ...         with daily_lock(store):
    ...             pass
    ...     except OutcomeError as exc:
    ...         print(str(exc).split(" (")[0])
    another churnwatch daily run is in progress
    """
    if store.dialect in ("postgresql", "mysql", "mariadb"):
        with _server_lock(store):
            yield
        return
    database = store.engine.url.database
    if path is None and database not in (None, "", ":memory:"):
        path = Path(f"{database}.daily.lock")
    if path is not None:
        with _file_lock(Path(path)):
            yield
        return
    lock = _MEMORY_LOCKS.setdefault(str(id(store.engine)), threading.Lock())
    if not lock.acquire(blocking=False):
        raise _busy("in this process")
    try:
        yield
    finally:
        lock.release()


def run_daily(
    store: Store,
    *,
    date: dt.date,
    settings: Settings,
    channels: Mapping[str, Channel],
    snapshot: pa.Table | None = None,
    warehouse: Warehouse | None = None,
    snapshot_table: str = "adoption_snapshots",
    ingest_sources: bool = False,
    base_dir: str | Path = ".",
    registry: ModelRegistry | None = None,
    policy: RetryPolicy | None = None,
    now: dt.datetime | None = None,
    lock_path: str | Path | None = None,
    on_step: Callable[[str], Any] | None = None,
    views_root: str | Path | None = None,
) -> DailyReport:
    """Ingest, score, track and dispatch for one date, under the daily lock.

    Parameters
    ----------
    store : Store
        The operational store.
    date : date
        The snapshot date to process.
    settings : Settings
        The project settings.
    channels : mapping of str to Channel
        The delivery channel of each outbox channel name (built at the edge,
        where secrets are read).
    snapshot : pyarrow.Table, optional
        The day's snapshot rows; read from ``snapshot_table`` of the
        warehouse for ``date`` if omitted.
    warehouse : Warehouse, optional
        Needed to ingest, score, or read the snapshot.
    snapshot_table : str
        The warehouse table of adoption snapshots.
    ingest_sources : bool
        Load the project's sources first.
    base_dir : str or Path
        The project folder (relative source paths).
    registry : ModelRegistry, optional
        Score every account with its promoted models (skipped when it has none).
    policy : RetryPolicy, optional
        Dispatch retries; from ``[notify]`` if omitted.
    now : datetime, optional
        The time recorded by the tracker (default: the clock). Dispatch
        always reads the clock, since retries and leases are real waits.
    lock_path : str or Path, optional
        Lock file of a SQLite store.
    on_step : callable, optional
        Called with the name of each step as it starts.
    views_root : str or Path, optional
        Refresh the read model there as the last step (needs the warehouse),
        so the dashboard and the API show this run's results.

    Returns
    -------
    DailyReport

    Raises
    ------
    OutcomeError
        If another daily run holds the lock, or a needed warehouse is missing.

    Examples
    --------
    >>> import io
    >>> import pyarrow as pa
    >>> from churnwatch.notify import ConsoleChannel
    >>> from churnwatch.store import open_store
    >>> store = open_store("sqlite://")
    >>> out = io.StringIO()
    >>> for day, on in [(1, True), (2, False)]:
    ...     report = run_daily(store, date=dt.date(2024, 3, day), settings=Settings(),
    ...                        channels={"file": ConsoleChannel(out)},
    ...                        snapshot=pa.table({"account_id": ["a"], "is_enabled": [on]}))
    >>> report.tracked.counts, report.dispatched.sent
    ({'churned': 1, 'queued': 1}, 1)
    """
    step = on_step or (lambda _name: None)
    with daily_lock(store, path=lock_path):
        ingested = scored = None
        if ingest_sources:
            if warehouse is None:
                raise OutcomeError("ingesting needs the warehouse: give one to the daily run")
            step("ingest")
            from churnwatch.ingest import ingest

            ingested = ingest(settings, warehouse, base_dir=base_dir)
        drained = None
        if warehouse is not None:
            # Events posted to the API wait in the store's inbox: into the
            # warehouse before scoring, so today's scores see them.
            step("inbox")
            from churnwatch.inbox import drain_inbox, prune_inbox

            drained = drain_inbox(store, warehouse, now=now)
            # Drained events stay a while, their keys recognising retried posts.
            prune_inbox(store, keep_days=settings.store.inbox_keep_days, now=now)
        if registry is not None and registry.promoted():
            if warehouse is None:
                raise OutcomeError("scoring needs the warehouse: give one to the daily run")
            step("score")
            cutoff = dt.datetime.combine(date + dt.timedelta(days=1), dt.time(), dt.UTC)
            from churnwatch.scoring import score_accounts

            scored = score_accounts(warehouse, registry, as_of=cutoff)
        step("track")
        tracked: TrackResult | None = None
        if snapshot is None and warehouse is not None:
            snapshot = read_snapshot(warehouse, snapshot_table, date)
        if snapshot is not None and snapshot.num_rows:
            tracked = track_snapshot(store, snapshot, date=date, settings=settings, now=now)
        risk: TrackResult | None = None
        if warehouse is not None:
            tracker = settings.tracker
            target = tracker.risk_target or f"churn_{settings.churn.horizon_days}d"
            current, previous = latest_risk_scores(warehouse, target, as_of=date)
            if current is not None:
                step("risk")
                risk = track_risk(
                    store, current, previous=previous, date=date, settings=settings, now=now
                )
        digests = 0
        if settings.notify.digest:
            at = now or dt.datetime.now(dt.UTC)
            digests = queue_digests(store, date=date, channel=settings.notify.channel, now=at)
        step("dispatch")
        dispatched = dispatch(store, channels, policy=policy or retry_policy(settings))
        if views_root is not None and warehouse is not None:
            step("views")
            from churnwatch.views import refresh_views
            from churnwatch.views._inputs import public_store_url

            refresh_views(
                settings,
                warehouse,
                Path(views_root),
                registry=registry,
                store=store,
                store_url=public_store_url(
                    store.engine.url.render_as_string(hide_password=False), Path(base_dir)
                ),
                now=now,
            )
    return DailyReport(date, ingested, scored, tracked, risk, digests, dispatched, drained)
