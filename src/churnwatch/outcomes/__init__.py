"""Outcomes and impact: what CSMs say, what the snapshots confirm, and whether outreach works.

CSM answers (won / lost / not useful, notes, "was this useful?") arrive from
Slack buttons, the REST API or the CLI (:func:`record_outcome`) and stop the
episode's follow-up cadence. CRM activity is imported from CSV
(:func:`import_crm_activity`) to time the first contact after a churn.
Episodes are rebuilt from the tracker's history and classified
(:func:`episode_frame`): a *true win* is a CSM-reported win confirmed by
re-adoption in the snapshots; a *self-service win* a re-adoption without CSM
engagement. :func:`compute_kpis` gives the customer-success KPIs, including
the impact of notifications measured against the random holdout
(:func:`measure_impact`).

Examples
--------
>>> import datetime as dt
>>> import pyarrow as pa
>>> from churnwatch.store import open_store
>>> from churnwatch.tracker import track_snapshot
>>> store = open_store("sqlite://")
>>> for day, on in [(1, True), (2, False)]:
...     _ = track_snapshot(store, pa.table({"account_id": ["a"], "is_enabled": [on],
...                                         "revenue": [120.0]}), date=dt.date(2024, 3, day))
>>> _ = record_outcome(store, "won", account_id="a", source="api")
>>> _ = track_snapshot(store, pa.table({"account_id": ["a"], "is_enabled": [True]}),
...                    date=dt.date(2024, 3, 4))
>>> kpis = compute_kpis(store)
>>> kpis.csm_true_wins, kpis.csm_revenue_recovered
(1, 120.0)
"""

from __future__ import annotations

from churnwatch.outcomes._crm import (
    CRM_COLUMNS,
    first_contacts,
    import_crm_activity,
    read_crm_csv,
)
from churnwatch.outcomes._episodes import (
    EPISODE_CLASSES,
    episode_frame,
    last_tracked_date,
    midnight_utc,
)
from churnwatch.outcomes._impact import (
    ImpactReport,
    measure_impact,
    newcombe_interval,
    wilson_interval,
)
from churnwatch.outcomes._kpis import (
    BUCKETS,
    BucketRow,
    Kpis,
    bucket_of,
    compute_kpis,
    kpis_from_episodes,
)
from churnwatch.outcomes._record import (
    OUTCOME_KINDS,
    OUTCOME_SOURCES,
    Outcome,
    list_outcomes,
    record_outcome,
)

__all__ = [
    "BUCKETS",
    "CRM_COLUMNS",
    "EPISODE_CLASSES",
    "OUTCOME_KINDS",
    "OUTCOME_SOURCES",
    "BucketRow",
    "ImpactReport",
    "Kpis",
    "Outcome",
    "bucket_of",
    "compute_kpis",
    "episode_frame",
    "first_contacts",
    "import_crm_activity",
    "kpis_from_episodes",
    "last_tracked_date",
    "list_outcomes",
    "measure_impact",
    "midnight_utc",
    "newcombe_interval",
    "read_crm_csv",
    "record_outcome",
    "wilson_interval",
]
