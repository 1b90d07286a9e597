"""The customer-success KPIs: what is at risk, what came back, and who brought it back.

Computed from the episodes of :func:`episode_frame` (themselves rebuilt
from the ``transitions`` history) as of a snapshot date D, whose instant is
D 00:00 UTC, the moment the snapshot describes.

**Money.** An episode's revenue and GMV are the account's at churn — the
values of its last day with the product on, which the tracker keeps while
the product is off. *Revenue recovered* is that revenue for episodes that
re-adopted: the revenue that was at risk and came back.

**Accounts** are distinct account ids (an account churning two products
counts once in a cell; revenue adds both).

**Buckets by time since churn.** The age of an instant t is ``D - t``.
Buckets are half-open intervals of age, disjoint and covering every age
≥ 0:

=========  ======================
``L24H``   0 ≤ age < 24 hours
``L48H``   24 h ≤ age < 48 h
``L72H``   48 h ≤ age < 72 h
``L30``    72 h ≤ age < 30 days
``L60``    30 d ≤ age < 60 d
``L90``    60 d ≤ age < 90 d
``>90``    age ≥ 90 d
=========  ======================

With daily snapshots an episode churned on D is in ``L24H``, on D-1 in
``L48H``, on D-2 in ``L72H``. *At risk* cells bucket the open episodes by
the age of their churn; *churned* cells every episode by the age of its
churn (revenue lost: revenue at churn); *won* cells the re-adoptions by the
age of the re-adoption (revenue won: revenue at churn of those).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from churnwatch._tracker_settings import TrackerSettings
from churnwatch.errors import OutcomeError
from churnwatch.outcomes._episodes import episode_frame, last_tracked_date, midnight_utc
from churnwatch.outcomes._impact import ImpactReport, measure_impact
from churnwatch.store import Store

__all__ = ["BUCKETS", "BucketRow", "Kpis", "bucket_of", "compute_kpis", "kpis_from_episodes"]

#: Buckets of age since churn: (name, lower bound in days inclusive, upper bound exclusive).
BUCKETS: tuple[tuple[str, float, float], ...] = (
    ("L24H", 0.0, 1.0),
    ("L48H", 1.0, 2.0),
    ("L72H", 2.0, 3.0),
    ("L30", 3.0, 30.0),
    ("L60", 30.0, 60.0),
    ("L90", 60.0, 90.0),
    (">90", 90.0, math.inf),
)


def bucket_of(age_days: float) -> str:
    """The bucket of an age since churn, in days.

    Examples
    --------
    >>> [bucket_of(d) for d in (0, 0.99, 1, 2.5, 3, 29.9, 30, 89, 90, 400)]
    ['L24H', 'L24H', 'L48H', 'L72H', 'L30', 'L30', 'L60', 'L90', '>90', '>90']
    """
    if age_days < 0:
        raise ValueError(f"an age since churn cannot be negative: {age_days}")
    for name, low, high in BUCKETS:
        if low <= age_days < high:
            return name
    raise ValueError(f"not an age: {age_days}")  # NaN


def _buckets(ages: pd.Series) -> pd.Series:
    edges = [b[1] for b in BUCKETS] + [math.inf]
    labels = [b[0] for b in BUCKETS]
    return pd.cut(ages, bins=edges, right=False, labels=labels).astype(object)


@dataclass(frozen=True)
class BucketRow:
    """The KPIs of one bucket of time since churn."""

    bucket: str
    at_risk_accounts: int
    at_risk_revenue: float
    at_risk_gmv: float
    churned_accounts: int
    revenue_lost: float
    won_accounts: int
    revenue_won: float


@dataclass(frozen=True)
class Kpis:
    """The customer-success KPIs as of a snapshot date.

    Attributes
    ----------
    as_of : date
        The snapshot date looked from.
    episodes : int
        Churn episodes opened up to ``as_of``.
    revenue_recovered, accounts_recovered
        Revenue at churn of the episodes re-adopted, and their accounts.
    accounts_at_risk, revenue_at_risk, gmv_at_risk
        Episodes still open.
    buckets : list of BucketRow
        At risk, churned and won by time since churn.
    recovered_by_region : dict
        Revenue recovered per region (``unknown`` when not known).
    classes : dict
        Per episode class (see :mod:`churnwatch.outcomes._episodes`): episodes and revenue.
    csm_true_wins, csm_losses, csm_revenue_recovered
        CSM-reported wins confirmed by re-adoption, CSM-reported losses, and
        the revenue of the true wins.
    self_service_wins, self_service_losses, self_service_revenue_recovered
        Re-adoptions, and open episodes, without CSM engagement (or in the holdout).
    answers : dict
        CSM answers by outcome, and ``useful`` / ``not_useful`` feedback counts.
    contacted_episodes : int
        Episodes with a CRM contact after churn.
    median_hours_to_first_contact : float or None
        Median time from churn to first CRM contact.
    impact : ImpactReport
        Notified against holdout.
    """

    as_of: dt.date
    episodes: int
    revenue_recovered: float
    accounts_recovered: int
    accounts_at_risk: int
    revenue_at_risk: float
    gmv_at_risk: float
    buckets: list[BucketRow]
    recovered_by_region: dict[str, float]
    classes: dict[str, dict[str, float]]
    csm_true_wins: int
    csm_losses: int
    csm_revenue_recovered: float
    self_service_wins: int
    self_service_losses: int
    self_service_revenue_recovered: float
    answers: dict[str, int]
    contacted_episodes: int
    median_hours_to_first_contact: float | None
    impact: ImpactReport = field(repr=False)

    def as_json(self) -> dict[str, Any]:
        """The KPIs as JSON-ready values."""
        out = asdict(self)
        out["as_of"] = self.as_of.isoformat()
        return out


def _accounts(frame: pd.DataFrame) -> int:
    return int(frame["account_id"].nunique())


def _money(values: pd.Series) -> float:
    return float(values.fillna(0.0).sum())


def kpis_from_episodes(
    episodes: pd.DataFrame, as_of: dt.date, *, window_days: int | None = None
) -> Kpis:
    """The KPIs of an episode frame (from :func:`episode_frame`) as of ``as_of``."""
    now = midnight_utc(as_of)
    at_risk = episodes.loc[~episodes["recovered"]]
    won = episodes.loc[episodes["recovered"]]
    churn_bucket = _buckets((now - episodes["churned_at"]).dt.total_seconds() / 86400.0)
    won_bucket = _buckets((now - won["recovered_at"]).dt.total_seconds() / 86400.0)
    rows = []
    for name, _, _ in BUCKETS:
        open_here = at_risk.loc[churn_bucket.loc[at_risk.index] == name]
        churned_here = episodes.loc[churn_bucket == name]
        won_here = won.loc[won_bucket == name]
        rows.append(
            BucketRow(
                bucket=name,
                at_risk_accounts=_accounts(open_here),
                at_risk_revenue=_money(open_here["revenue"]),
                at_risk_gmv=_money(open_here["gmv"]),
                churned_accounts=_accounts(churned_here),
                revenue_lost=_money(churned_here["revenue"]),
                won_accounts=_accounts(won_here),
                revenue_won=_money(won_here["revenue"]),
            )
        )
    regions = won["region"].astype(object).where(won["region"].notna(), "unknown")
    by_region = won["revenue"].fillna(0.0).groupby(regions).sum()
    classes = {
        name: {
            "episodes": int((episodes["klass"] == name).sum()),
            "revenue": _money(episodes.loc[episodes["klass"] == name, "revenue"]),
        }
        for name in (
            "csm_true_win",
            "engaged_win",
            "self_service_win",
            "csm_loss",
            "engaged_open",
            "self_service_loss",
        )
    }
    outcome = episodes["outcome"]
    answers = {name: int((outcome == name).sum()) for name in ("won", "lost", "not_useful")}
    answers["useful"] = int((episodes["useful"] == True).sum())  # noqa: E712 (nullable column)
    answers["not_useful_feedback"] = int((episodes["useful"] == False).sum())  # noqa: E712
    contacted = episodes.loc[episodes["first_contact_at"].notna()]
    hours = (contacted["first_contact_at"] - contacted["churned_at"]).dt.total_seconds() / 3600.0
    return Kpis(
        as_of=as_of,
        episodes=len(episodes),
        revenue_recovered=_money(won["revenue"]),
        accounts_recovered=_accounts(won),
        accounts_at_risk=_accounts(at_risk),
        revenue_at_risk=_money(at_risk["revenue"]),
        gmv_at_risk=_money(at_risk["gmv"]),
        buckets=rows,
        recovered_by_region={str(k): float(v) for k, v in sorted(by_region.items())},
        classes=classes,
        csm_true_wins=int(classes["csm_true_win"]["episodes"]),
        csm_losses=int(classes["csm_loss"]["episodes"]),
        csm_revenue_recovered=classes["csm_true_win"]["revenue"],
        self_service_wins=int(classes["self_service_win"]["episodes"]),
        self_service_losses=int(classes["self_service_loss"]["episodes"]),
        self_service_revenue_recovered=classes["self_service_win"]["revenue"],
        answers=answers,
        contacted_episodes=len(contacted),
        median_hours_to_first_contact=float(np.median(hours)) if len(hours) else None,
        impact=measure_impact(episodes, as_of=as_of, window_days=window_days),
    )


def compute_kpis(
    store: Store,
    *,
    as_of: dt.date | None = None,
    tracker: TrackerSettings | None = None,
    window_days: int | None = None,
) -> Kpis:
    """The customer-success KPIs of the store as of a snapshot date.

    Parameters
    ----------
    store : Store
        The operational store.
    as_of : date, optional
        The snapshot date; the last one tracked if omitted.
    tracker : TrackerSettings, optional
        The holdout settings (for episodes no longer in a ledger).
    window_days : int, optional
        Recovery window of the impact report.

    Raises
    ------
    OutcomeError
        If nothing was tracked yet.

    Examples
    --------
    >>> import pyarrow as pa
    >>> from churnwatch.store import open_store
    >>> from churnwatch.tracker import track_snapshot
    >>> store = open_store("sqlite://")
    >>> days = [(1, [True, True]), (2, [False, False]), (4, [True, False])]
    >>> for day, on in days:
    ...     snapshot = pa.table({"account_id": ["a", "b"], "is_enabled": on,
    ...                          "revenue": [100.0, 50.0]})
    ...     _ = track_snapshot(store, snapshot, date=dt.date(2024, 3, day))
    >>> kpis = compute_kpis(store)
    >>> kpis.revenue_recovered, kpis.accounts_at_risk, kpis.revenue_at_risk
    (100.0, 1, 50.0)
    >>> [(b.bucket, b.at_risk_accounts) for b in kpis.buckets if b.at_risk_accounts]
    [('L72H', 1)]
    """
    chosen = as_of or last_tracked_date(store)
    if chosen is None:
        raise OutcomeError(
            "nothing was tracked yet: run churnwatch track (or churnwatch daily) on a "
            "snapshot first"
        )
    episodes = episode_frame(store, as_of=chosen, tracker=tracker)
    return kpis_from_episodes(episodes, chosen, window_days=window_days)
