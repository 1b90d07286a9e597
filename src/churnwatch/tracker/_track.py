"""Track one snapshot day: the diff, the ledgers, the cadence and the outbox, in one transaction.

Everything a day changes — parent rows, ledger rows, transitions, outbox rows
and the ``tracker_runs`` record — is written in a single transaction, so a
run killed halfway leaves the store as it was before, and the next run does
the day again. A date already in ``tracker_runs`` is a no-op: re-running a
day changes nothing and queues nothing twice.

Dates move forward only. Skipped days are fine (days since churn come from
dates, not from the number of runs). A snapshot dated before the last one
tracked is refused: its news is older than the state, which later snapshots
already moved past, and applying it would roll accounts back in time.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import sqlalchemy as sa

from churnwatch._tracker_settings import TrackerSettings
from churnwatch.config import Settings
from churnwatch.errors import TrackerError
from churnwatch.store import (
    CHURN_LEDGER,
    OUTBOX,
    OUTCOMES,
    TRACKER_ACCOUNTS,
    TRACKER_RUNS,
    TRANSITIONS,
    WIN_LEDGER,
    Constant,
    Store,
    bulk_write,
    read_columns,
)
from churnwatch.tracker._cadence import cadence_from_settings, due_step, in_holdout, outbox_rows
from churnwatch.tracker._diff import PARENT_COLUMNS, diff_snapshot, midnight, stack
from churnwatch.tracker._snapshot import KEY, prepare_snapshot

__all__ = [
    "LEDGER_COLUMNS",
    "TrackResult",
    "close_answered",
    "last_tracked_date",
    "queue_cadence",
    "track_snapshot",
]

#: Rows per executemany batch: large enough to amortise round trips, small
#: enough to keep the parameter lists of a million-row first day in memory once.
_BATCH_ROWS = 50_000

LEDGER_COLUMNS = tuple(c.name for c in CHURN_LEDGER.columns)
_TRANSITION_COLUMNS = (
    "account_id",
    "product",
    "kind",
    "episode_id",
    "revenue",
    "gmv",
    "region",
    "csm_id",
)


@dataclass(frozen=True)
class TrackResult:
    """What tracking one snapshot date did.

    Attributes
    ----------
    snapshot_date : date
        The date tracked.
    rows : int
        Rows in the snapshot.
    counts : dict of str to int
        Transitions by kind (``new``, ``churned``, ``re_adopted``, ``missing``,
        ``returned``, ``closed_by_outcome``) and ``queued`` outbox rows.
    already_tracked : bool
        True when the date had been tracked before: nothing was changed.
    """

    snapshot_date: dt.date
    rows: int
    counts: dict[str, int] = field(default_factory=dict)
    already_tracked: bool = False


def _values(column: pd.Series) -> list[Any]:
    """A column's values as Python objects, NaN and NA as None (vectorised)."""
    if column.dtype.kind == "f":
        numbers = column.to_numpy()
        out = numbers.astype(object)
        out[np.isnan(numbers)] = None
        return list(out.tolist())
    if column.dtype.kind in "biu":
        return list(column.tolist())
    objects = column.to_numpy(dtype=object)
    nulls = pd.isna(objects)
    if nulls.any():
        objects = objects.copy()
        objects[nulls] = None
    return list(objects.tolist())


def _columns(frame: pd.DataFrame, columns: Sequence[str], prefix: str = "") -> dict[str, Any]:
    """Columns as ``bulk_write`` takes them: name -> list of values."""
    return {prefix + c: _values(frame[c]) for c in columns}


def _records(frame: pd.DataFrame, columns: Sequence[str], prefix: str = "") -> list[dict[str, Any]]:
    """Rows as parameter dicts, NaN and NA as None (for the few-row writes)."""
    values = _columns(frame, columns, prefix)
    names = list(values)
    return [dict(zip(names, row, strict=True)) for row in zip(*values.values(), strict=True)]


def _frame(result: sa.CursorResult[Any], columns: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame.from_records(list(result), columns=list(columns))


def _read_parent(connection: sa.Connection) -> pd.DataFrame:
    # Read raw (a million rows through SQLAlchemy's per-value conversion take
    # seconds): the diff needs only whether missing_since is set, and
    # booleans, which SQLite and MySQL return as 0/1.
    chosen = [TRACKER_ACCOUNTS.c[c] for c in PARENT_COLUMNS]
    # The driver returns a new string object per row; the repeated values (a
    # few hundred CSMs, a handful of regions, products and states) share one
    # object each: ~55 MB less per column at a million rows.
    raw = read_columns(
        connection, sa.select(*chosen), shared=("product", "csm_id", "region", "state")
    )
    frame = pd.DataFrame(raw, columns=list(PARENT_COLUMNS))
    frame["is_enabled"] = frame["is_enabled"].astype(bool)
    missing = frame["missing_since"].notna().to_numpy()
    frame["missing_since"] = np.array([None, True], dtype=object)[missing.astype(np.intp)]
    for name in ("revenue", "gmv"):
        frame[name] = frame[name].astype(float)
    return frame


def _read_ledger(connection: sa.Connection) -> pd.DataFrame:
    return _frame(connection.execute(sa.select(CHURN_LEDGER)), LEDGER_COLUMNS)


def _last_tracked(connection: sa.Connection) -> dt.date | None:
    found = connection.execute(sa.select(sa.func.max(TRACKER_RUNS.c.snapshot_date))).scalar()
    return found if isinstance(found, dt.date) or found is None else dt.date.fromisoformat(found)


def last_tracked_date(store: Store) -> dt.date | None:
    """The latest snapshot date tracked, or None before the first.

    Examples
    --------
    >>> from churnwatch.store import open_store
    >>> last_tracked_date(open_store("sqlite://")) is None
    True
    """
    with store.engine.connect() as connection:
        return _last_tracked(connection)


def close_answered(connection: sa.Connection, day: dt.date, now: dt.datetime) -> int:
    """Close the open episodes a CSM has answered: their cadence stops.

    The latest answer names the reason (``outcome:won``...). The episode
    stays in the churn ledger (an account that is still off is still at
    risk); a ``closed_by_outcome`` transition records the day.
    """
    found = connection.execute(
        sa.select(
            CHURN_LEDGER.c.episode_id,
            CHURN_LEDGER.c.account_id,
            CHURN_LEDGER.c.product,
            CHURN_LEDGER.c.revenue,
            CHURN_LEDGER.c.gmv,
            CHURN_LEDGER.c.region,
            CHURN_LEDGER.c.csm_id,
            OUTCOMES.c.outcome,
            OUTCOMES.c.recorded_at,
            OUTCOMES.c.id,
        )
        .join(OUTCOMES, OUTCOMES.c.episode_id == CHURN_LEDGER.c.episode_id)
        .where(CHURN_LEDGER.c.closed_reason.is_(None))
    ).all()
    latest: dict[str, Any] = {}
    for row in sorted(found, key=lambda r: (r.recorded_at, r.id)):
        latest[row.episode_id] = row
    if not latest:
        return 0
    closing = sa.update(CHURN_LEDGER).where(CHURN_LEDGER.c.episode_id == sa.bindparam("e_id"))
    connection.execute(
        closing.values(closed_reason=sa.bindparam("e_reason")),
        [{"e_id": e, "e_reason": f"outcome:{r.outcome}"} for e, r in sorted(latest.items())],
    )
    transitions = [
        {
            "snapshot_date": day,
            "account_id": r.account_id,
            "product": r.product,
            "kind": "closed_by_outcome",
            "episode_id": e,
            "revenue": r.revenue,
            "gmv": r.gmv,
            "region": r.region,
            "csm_id": r.csm_id,
            "recorded_at": now,
        }
        for e, r in sorted(latest.items())
    ]
    connection.execute(TRANSITIONS.insert(), transitions)
    return len(latest)


def queue_cadence(
    connection: sa.Connection,
    episodes: Iterable[dict[str, Any]],
    *,
    day: dt.date,
    tracker: TrackerSettings,
    channels: Sequence[str],
    now: dt.datetime,
) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """The outbox rows due today for ``episodes``, and each one's new ``steps_sent``.

    Closed and holdout episodes get nothing. Nothing is written here: the
    caller writes both in its transaction.
    """
    del connection  # the caller's transaction writes; kept for a uniform signature
    cadence = cadence_from_settings(tracker.cadence)
    queued: list[dict[str, Any]] = []
    sent: dict[str, list[str]] = {}
    for episode in sorted(episodes, key=lambda e: str(e["episode_id"])):
        if episode.get("closed_reason") or episode["holdout"]:
            continue
        already = json.loads(episode["steps_sent"] or "[]")
        days = (day - episode["churned_at"].date()).days
        step = due_step(cadence, days, already)
        if step is None:
            continue
        queued.extend(outbox_rows(episode, step, day=day, channels=channels, now=now))
        sent[str(episode["episode_id"])] = [*already, step.name]
    return queued, sent


def _channels(settings: Settings) -> list[str]:
    return list(settings.tracker.channels) or [settings.notify.channel]


def track_snapshot(
    store: Store,
    snapshot: pa.Table,
    *,
    date: dt.date | None = None,
    settings: Settings | None = None,
    now: dt.datetime | None = None,
) -> TrackResult:
    """Compare a day's snapshot with the tracked state and record what changed.

    In one transaction: new accounts join the parent table; accounts that
    turned the product off open an episode in the churn ledger; those that
    turned it back on move to the win ledger; accounts absent from the
    snapshot are flagged missing (never churned); CSM answers close their
    episodes; the follow-up cadence queues the steps due today in the outbox
    (except for episodes in the holdout); a ``tracker_runs`` row records the
    date.

    Parameters
    ----------
    store : Store
        The operational store.
    snapshot : pyarrow.Table
        The day's rows (see :func:`prepare_snapshot`).
    date : date, optional
        The snapshot date; read from its ``snapshot_date`` column if omitted.
    settings : Settings, optional
        ``[tracker]`` (cadence, holdout, channels) and ``[notify] channel``;
        the defaults if omitted.
    now : datetime, optional
        When the run happens (outbox and transition times); the clock's if omitted.

    Returns
    -------
    TrackResult
        The date, the rows and the counts; ``already_tracked`` when the date
        had been tracked (and nothing changed).

    Raises
    ------
    TrackerError
        If the snapshot is malformed, or dated before the last date tracked.

    Examples
    --------
    >>> import datetime as dt
    >>> import pyarrow as pa
    >>> from churnwatch.store import open_store
    >>> store = open_store("sqlite://")
    >>> day1 = pa.table({"account_id": ["a", "b"], "is_enabled": [True, True]})
    >>> track_snapshot(store, day1, date=dt.date(2024, 3, 1)).counts
    {'new': 2, 'queued': 0}
    >>> day2 = pa.table({"account_id": ["a", "b"], "is_enabled": [True, False]})
    >>> track_snapshot(store, day2, date=dt.date(2024, 3, 2)).counts
    {'churned': 1, 'queued': 1}
    >>> track_snapshot(store, day2, date=dt.date(2024, 3, 2)).already_tracked
    True
    """
    settings = settings or Settings()
    now = now or dt.datetime.now(dt.UTC)
    if date is not None:
        # A re-run is answered before the snapshot is even read.
        with store.engine.connect() as connection:
            done = connection.execute(
                sa.select(TRACKER_RUNS.c.rows, TRACKER_RUNS.c.counts).where(
                    TRACKER_RUNS.c.snapshot_date == date
                )
            ).first()
        if done is not None:
            return TrackResult(date, int(done.rows), json.loads(done.counts), already_tracked=True)
    day, rows = prepare_snapshot(snapshot, date)
    with store.transaction() as connection:
        done = connection.execute(
            sa.select(TRACKER_RUNS.c.rows, TRACKER_RUNS.c.counts).where(
                TRACKER_RUNS.c.snapshot_date == day
            )
        ).first()
        if done is not None:
            return TrackResult(day, int(done.rows), json.loads(done.counts), already_tracked=True)
        last = _last_tracked(connection)
        if last is not None and day < last:
            raise TrackerError(
                f"the snapshot of {day.isoformat()} is older than the last one tracked "
                f"({last.isoformat()}); the tracker moves forward only, and later snapshots "
                "already describe these accounts: nothing was changed"
            )
        counts = _apply(connection, rows, day, settings, now)
        connection.execute(
            TRACKER_RUNS.insert().values(
                snapshot_date=day,
                processed_at=now,
                rows=len(rows),
                counts=json.dumps(counts, sort_keys=True),
            )
        )
    return TrackResult(day, len(rows), counts)


def _apply(
    connection: sa.Connection,
    snapshot: pd.DataFrame,
    day: dt.date,
    settings: Settings,
    now: dt.datetime,
) -> dict[str, int]:
    tracker = settings.tracker
    closed = close_answered(connection, day, now)
    parent = _read_parent(connection)
    ledger = _read_ledger(connection)
    wins = _frame(connection.execute(sa.select(WIN_LEDGER.c.account_id, WIN_LEDGER.c.product)), KEY)
    changes = diff_snapshot(parent, ledger, wins, snapshot, day)
    del parent  # a million rows: not kept through the writes

    # The parent table.
    bulk_write(
        connection,
        TRACKER_ACCOUNTS.insert(),
        _columns(changes.new_accounts, PARENT_COLUMNS)
        | {c: Constant(day) for c in ("first_seen", "last_seen", "updated_date")},
        batch_rows=_BATCH_ROWS,
    )
    updating = [c for c in PARENT_COLUMNS if c not in KEY]
    statement = (
        sa.update(TRACKER_ACCOUNTS)
        .where(
            TRACKER_ACCOUNTS.c.account_id == sa.bindparam("k_account_id"),
            TRACKER_ACCOUNTS.c.product == sa.bindparam("k_product"),
        )
        .values(
            {c: sa.bindparam(f"v_{c}") for c in updating}
            | {"updated_date": sa.bindparam("v_updated_date")}
        )
    )
    bulk_write(
        connection,
        statement,
        _columns(changes.updates, KEY, prefix="k_")
        | _columns(changes.updates, updating, prefix="v_")
        | {"v_updated_date": Constant(day)},
        batch_rows=_BATCH_ROWS,
    )
    # Every account in today's snapshot was seen today: one statement, not a row each.
    connection.execute(
        sa.update(TRACKER_ACCOUNTS)
        .where(TRACKER_ACCOUNTS.c.missing_since.is_(None), TRACKER_ACCOUNTS.c.last_seen < day)
        .values(last_seen=day)
    )

    # The ledgers.
    by_key = sa.and_(
        WIN_LEDGER.c.account_id == sa.bindparam("k_account_id"),
        WIN_LEDGER.c.product == sa.bindparam("k_product"),
    )
    gone_wins = stack([changes.reopened_wins, changes.recovered.loc[:, list(KEY)]])
    if len(gone_wins):
        connection.execute(
            sa.delete(WIN_LEDGER).where(by_key), _records(gone_wins, list(KEY), prefix="k_")
        )
    removed = [*changes.superseded, *changes.recovered["episode_id"].tolist()]
    if removed:
        connection.execute(
            sa.delete(CHURN_LEDGER).where(CHURN_LEDGER.c.episode_id == sa.bindparam("e_id")),
            [{"e_id": e} for e in removed],
        )
    if len(changes.recovered):
        episodes = ledger.set_index("episode_id")
        won = changes.recovered.copy()
        won["source"] = "snapshot"
        won["churned_at"] = episodes.loc[won["episode_id"], "churned_at"].to_numpy()
        won["holdout"] = episodes.loc[won["episode_id"], "holdout"].astype(bool).to_numpy()
        won["recovered_at"] = midnight(day)
        won["days_to_recover"] = [
            (midnight(day) - churned).total_seconds() / 86400.0 for churned in won["churned_at"]
        ]
        connection.execute(WIN_LEDGER.insert(), _records(won, [c.name for c in WIN_LEDGER.columns]))

    opened = changes.opened.copy()
    opened["source"] = "snapshot"
    opened["churned_at"] = midnight(day)
    opened["revenue_at_risk"] = opened["revenue"]
    opened["risk_score"] = None
    opened["reasons"] = None
    opened["holdout"] = [
        in_holdout(e, tracker.holdout_share, tracker.holdout_seed) for e in opened["episode_id"]
    ]
    opened["steps_sent"] = "[]"
    opened["closed_reason"] = None
    opened_rows = _records(opened, LEDGER_COLUMNS)

    # The cadence over every episode still open after today's changes.
    gone = set(removed)
    still_open = [row for row in _records(ledger, LEDGER_COLUMNS) if row["episode_id"] not in gone]
    queued, sent = queue_cadence(
        connection,
        [*still_open, *opened_rows],
        day=day,
        tracker=tracker,
        channels=_channels(settings),
        now=now,
    )
    for row in opened_rows:
        if row["episode_id"] in sent:
            row["steps_sent"] = json.dumps(sent.pop(row["episode_id"]))
    if opened_rows:
        connection.execute(CHURN_LEDGER.insert(), opened_rows)
    if sent:
        connection.execute(
            sa.update(CHURN_LEDGER)
            .where(CHURN_LEDGER.c.episode_id == sa.bindparam("e_id"))
            .values(steps_sent=sa.bindparam("e_steps")),
            [{"e_id": e, "e_steps": json.dumps(s)} for e, s in sorted(sent.items())],
        )
    if queued:
        connection.execute(OUTBOX.insert(), queued)

    bulk_write(
        connection,
        TRANSITIONS.insert(),
        _columns(changes.transitions, _TRANSITION_COLUMNS)
        | {"snapshot_date": Constant(day), "recorded_at": Constant(now)},
        batch_rows=_BATCH_ROWS,
    )
    counts = changes.counts()
    if closed:
        counts["closed_by_outcome"] = closed
    counts["queued"] = len(queued)
    return dict(sorted(counts.items()))
