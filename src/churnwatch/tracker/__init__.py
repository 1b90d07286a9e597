"""The daily adoption tracker: snapshots in, ledgers, history and notifications out.

Each day's adoption snapshot is compared with the last state of every
account (:func:`track_snapshot`): accounts that switch the product off open
an episode in the churn ledger and get a first notification; those that
switch it back on move to the win ledger; accounts missing from a snapshot
are flagged, not churned. Risk alerts (:func:`track_risk`) open episodes
for accounts whose calibrated churn risk crosses a threshold or jumps. Open
episodes follow a configurable cadence of follow-ups, queued in the outbox
in the same transaction as the state change; everything that happens is
appended to ``transitions``, the history the KPIs are computed from.

Examples
--------
>>> import datetime as dt
>>> import pyarrow as pa
>>> from churnwatch.store import open_store
>>> from churnwatch.tracker import track_snapshot
>>> store = open_store("sqlite://")
>>> day = pa.table({"account_id": ["a"], "is_enabled": [True]})
>>> track_snapshot(store, day, date=dt.date(2024, 3, 1)).counts
{'new': 1, 'queued': 0}
"""

from __future__ import annotations

from churnwatch.tracker._cadence import CadenceStep, due_step, in_holdout
from churnwatch.tracker._diff import Changes, diff_snapshot, episode_id
from churnwatch.tracker._risk import latest_risk_scores, track_risk
from churnwatch.tracker._snapshot import prepare_snapshot, read_snapshot, snapshot_dates
from churnwatch.tracker._track import TrackResult, last_tracked_date, track_snapshot

__all__ = [
    "CadenceStep",
    "Changes",
    "TrackResult",
    "diff_snapshot",
    "due_step",
    "episode_id",
    "in_holdout",
    "last_tracked_date",
    "latest_risk_scores",
    "prepare_snapshot",
    "read_snapshot",
    "snapshot_dates",
    "track_risk",
    "track_snapshot",
]
