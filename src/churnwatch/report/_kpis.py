"""The business at a glance: accounts, subscribers, MRR, churn and revenue at risk.

Every figure is read as of one instant (the end of the data by default) and
uses the project's own definition of churn (``[churn]``), through the same
label query that trains the models: the churn rate a report shows is the
rate the models learn.

The churn rate of a period is known only once its window has settled: a
30-day subscription label at cutoff ``c`` needs the data to reach
``c + 30 days + grace``. The latest rate is therefore the one of the window
that ended ``horizon + grace`` days before the end of the data, never a
half-observed window that would understate churn.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import TypedDict

import pandas as pd
from sqlglot import exp

from churnwatch.config import Settings
from churnwatch.errors import ModelError
from churnwatch.features._portable import instant
from churnwatch.labels import CutoffSchedule, LabelSpec, make_labels
from churnwatch.labels._schedule import _add_months, to_utc
from churnwatch.models._workflow import data_time
from churnwatch.scoring import RISK_SCORES_TABLE, data_end
from churnwatch.warehouse import Warehouse

__all__ = ["BusinessKpis", "business_kpis", "churn_spike"]

#: Monthly churn periods shown in the trend.
TREND_PERIODS = 12
#: A period's churn rate is a spike when it exceeds the earlier periods' mean
#: by this many standard deviations (with at least MIN_HISTORY earlier periods).
SPIKE_SIGMAS = 2.0
MIN_HISTORY = 3


@dataclass(frozen=True)
class BusinessKpis:
    """Headline figures of a subscription business as of one instant.

    Attributes
    ----------
    as_of : datetime
        The instant the figures describe (UTC).
    accounts : int
        Accounts created before ``as_of``.
    subscribers : int
        Accounts with a subscription period running at ``as_of``.
    mrr : float
        Monthly recurring revenue of those periods.
    churn_label : str
        The churn definition in words (``[churn]``).
    churn_trend : pandas.DataFrame
        One row per settled monthly window, oldest first: ``cutoff``,
        ``at_risk`` (examples), ``churned``, ``churn_rate``.
    churn_rate : float or None
        The latest settled window's churn rate.
    churn_spike : bool
        Whether that rate is a spike against the earlier windows
        (:func:`churn_spike`).
    scored_at : datetime or None
        The latest scoring run read from ``risk_scores``, if any.
    risk_target : str or None
        The churn target whose scores are summed (``churn_30d``).
    high_risk_accounts : int or None
        Accounts in the ``high`` tier of that run.
    revenue_at_risk : float or None
        Sum of P(churn) × MRR over every scored account: the MRR expected to
        leave within the horizon, since scores are calibrated.
    """

    as_of: dt.datetime
    accounts: int
    subscribers: int
    mrr: float
    churn_label: str
    churn_trend: pd.DataFrame
    churn_rate: float | None
    churn_spike: bool
    scored_at: dt.datetime | None = None
    risk_target: str | None = None
    high_risk_accounts: int | None = None
    revenue_at_risk: float | None = None


def churn_spike(rates: list[float]) -> bool:
    """Whether the last rate stands out against the ones before it.

    A spike is a rate above the mean of the earlier rates by more than
    ``SPIKE_SIGMAS`` standard deviations, with at least ``MIN_HISTORY``
    earlier rates; a flat history (no spread) makes any rise a spike.

    Examples
    --------
    >>> churn_spike([0.05, 0.06, 0.05, 0.055, 0.12])
    True
    >>> churn_spike([0.05, 0.06, 0.05, 0.055, 0.058])
    False
    >>> churn_spike([0.05, 0.12])
    False
    """
    clean = [r for r in rates if not math.isnan(r)]
    if len(clean) < MIN_HISTORY + 1:
        return False
    *history, last = clean
    mean = sum(history) / len(history)
    sd = math.sqrt(sum((r - mean) ** 2 for r in history) / (len(history) - 1))
    return last > mean + SPIKE_SIGMAS * sd if sd > 0 else last > mean


def business_kpis(
    warehouse: Warehouse,
    settings: Settings,
    *,
    as_of: str | dt.date | dt.datetime | None = None,
) -> BusinessKpis:
    """Compute the headline figures of the business.

    Parameters
    ----------
    warehouse : Warehouse
        Holds the canonical tables (and ``risk_scores`` once scored).
    settings : Settings
        The project's settings: ``[churn]`` defines churn and
        ``[data] observation_end`` the end of the data.
    as_of : str, date or datetime, optional
        The instant described; default the observation end, else the day
        after the latest event.

    Returns
    -------
    BusinessKpis

    Examples
    --------
    >>> from churnwatch.config import Settings
    >>> from churnwatch.warehouse import connect
    >>> with connect("duckdb:///:memory:") as wh:
    ...     wh.ensure_schema()
    ...     kpis = business_kpis(wh, Settings(), as_of="2024-06-01")
    >>> kpis.accounts, kpis.mrr, kpis.churn_rate
    (0, 0.0, None)
    """
    warehouse.ensure_schema()
    moment = _as_of(warehouse, settings, as_of)
    spec = LabelSpec.from_settings(settings.churn)
    trend = _churn_trend(warehouse, spec, moment)
    rates = [float(r) for r in trend["churn_rate"]]
    subscribers, mrr = _subscribers(warehouse, moment)
    scored = _risk(warehouse, f"churn_{settings.churn.horizon_days}d")
    return BusinessKpis(
        as_of=moment,
        accounts=_accounts(warehouse, moment),
        subscribers=subscribers,
        mrr=mrr,
        churn_label=spec.describe(),
        churn_trend=trend,
        churn_rate=rates[-1] if rates else None,
        churn_spike=churn_spike(rates),
        **scored,
    )


def _as_of(
    warehouse: Warehouse, settings: Settings, as_of: str | dt.date | dt.datetime | None
) -> dt.datetime:
    if as_of is not None:
        return to_utc(as_of, "as_of")
    if settings.data.observation_end:
        return to_utc(settings.data.observation_end, "[data] observation_end")
    try:
        return data_end(warehouse)
    except ModelError:  # no events or subscriptions yet: describe today
        return dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _scalar(warehouse: Warehouse, query: exp.Select) -> object:
    return warehouse.query(query).column(0)[0].as_py()


def _accounts(warehouse: Warehouse, moment: dt.datetime) -> int:
    dialect = warehouse.dialect
    created = exp.column("created_at")
    query = (
        exp.select(exp.func("COUNT", exp.Star()))
        .from_("accounts")
        # An account without a creation time is counted: it exists, we just
        # do not know since when.
        .where(exp.or_(created.is_(exp.null()), created < instant(moment, dialect)))
    )
    count = _scalar(warehouse, query)
    return int(count) if isinstance(count, int) else 0


def _subscribers(warehouse: Warehouse, moment: dt.datetime) -> tuple[int, float]:
    dialect = warehouse.dialect
    at = instant(moment, dialect)
    ended = exp.column("ended_at")
    query = (
        exp.select(
            exp.func("COUNT", exp.Distinct(expressions=[exp.column("account_id")])),
            exp.func("SUM", exp.column("mrr")),
        )
        .from_("subscriptions")
        .where(
            exp.and_(
                exp.column("started_at") <= at,
                exp.or_(ended.is_(exp.null()), ended > at),
            )
        )
    )
    row = warehouse.query(query).to_pylist()[0]
    count, total = row.values()
    return int(count or 0), float(total or 0.0)


def _churn_trend(warehouse: Warehouse, spec: LabelSpec, moment: dt.datetime) -> pd.DataFrame:
    """Churn rate of the last settled monthly windows."""
    columns = ["cutoff", "at_risk", "churned", "churn_rate"]
    first = data_time(warehouse, "MIN")
    if first is None:
        return pd.DataFrame(columns=columns)
    horizon = spec.horizon_days[0]
    last_cutoff = moment - dt.timedelta(days=horizon + spec.settle_days + spec.lead_days)
    cutoffs = [_add_months(last_cutoff, -k) for k in range(TREND_PERIODS)]
    cutoffs = sorted(c for c in cutoffs if c > first)
    if not cutoffs:
        return pd.DataFrame(columns=columns)
    table = make_labels(
        warehouse, spec, CutoffSchedule.explicit(cutoffs), observation_end=moment
    ).frame.to_pandas()
    label = spec.columns[0]
    table = table.dropna(subset=[label])
    grouped = table.groupby("cutoff")[label].agg(["count", "sum"])
    trend = pd.DataFrame(
        {
            "cutoff": grouped.index,
            "at_risk": grouped["count"].astype("int64").to_numpy(),
            "churned": grouped["sum"].astype("int64").to_numpy(),
        }
    )
    trend["churn_rate"] = trend["churned"] / trend["at_risk"]
    return trend.sort_values("cutoff").reset_index(drop=True)


class _Risk(TypedDict, total=False):
    scored_at: dt.datetime
    risk_target: str
    high_risk_accounts: int
    revenue_at_risk: float


def _risk(warehouse: Warehouse, preferred: str) -> _Risk:
    """Revenue at risk and high-risk accounts of the latest scoring run."""
    if not warehouse.table_exists(RISK_SCORES_TABLE):
        return _Risk()
    targets = warehouse.query(
        exp.select(
            exp.column("target"), exp.alias_(exp.func("MAX", exp.column("scored_at")), "latest")
        )
        .from_(RISK_SCORES_TABLE)
        .where(exp.column("target").like(exp.Literal.string("churn%")))
        .group_by(exp.column("target"))
    ).to_pylist()
    if not targets:
        return _Risk()
    latest = {row["target"]: row["latest"] for row in targets}
    target = preferred if preferred in latest else sorted(latest)[-1]
    scored_at = latest[target]
    tier = exp.column("risk_tier")
    row = warehouse.query(
        exp.select(
            exp.func("SUM", exp.column("revenue_at_risk")),
            exp.func(
                "COUNT",
                exp.Case(
                    ifs=[
                        exp.If(this=tier.eq(exp.Literal.string("high")), true=exp.Literal.number(1))
                    ]
                ),
            ),
        )
        .from_(RISK_SCORES_TABLE)
        .where(
            exp.and_(
                exp.column("target").eq(exp.Literal.string(target)),
                exp.column("scored_at").eq(instant(_utc(scored_at), warehouse.dialect)),
            )
        )
    ).to_pylist()[0]
    revenue, high = row.values()
    return _Risk(
        scored_at=_utc(scored_at),
        risk_target=target,
        high_risk_accounts=int(high or 0),
        revenue_at_risk=float(revenue or 0.0),
    )


def _utc(value: object) -> dt.datetime:
    assert isinstance(value, dt.datetime)  # a timestamp column always reads as one
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
