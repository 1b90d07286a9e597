"""Durations and events from the canonical tables: how long accounts last.

Three bases, each one row per account (or per active period):

- ``subscription``: an account's subscriptions chained into active periods
  exactly as the subscription churn label chains them (a subscription
  starting within ``grace_days`` of the previous end continues the period;
  the SQL is the label's own, :func:`churnwatch.labels._queries.subscription_periods`).
  A period is *churned* when it ended and no renewal could still come within
  the grace gap before the observation end (``period_end + grace_days <=
  end``); otherwise it is *censored*, at its end or at the observation end,
  whichever comes first: the account is known to be subscribed until then.
- ``activity``: from the first event, an account churns the moment it has been
  inactive ``inactivity_days`` (its last event before the first silence of
  that length, plus ``inactivity_days``); an account with no such silence
  before the observation end is censored there. By construction no churn
  happens before ``inactivity_days``: retention before that day is 1.
- ``snapshot``: one-snapshot tables (Telco, bank churn) carry a tenure and a
  label on ``accounts`` (``tenure_days``, ``churned``): used as they are.

Nothing after the observation end is read: subscriptions starting and events
happening after it change no duration.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal, get_args

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from churnwatch.config import Settings
from churnwatch.errors import AnalysisError
from churnwatch.features._portable import days_after, instant, json_text
from churnwatch.labels import LabelSpec, ObservationEnd, infer_observation_end
from churnwatch.labels._queries import subscription_periods
from churnwatch.labels._schedule import to_utc
from churnwatch.schema import TABLES
from churnwatch.warehouse import Warehouse

__all__ = [
    "Basis",
    "Durations",
    "Periods",
    "activity_durations",
    "derive_durations",
    "snapshot_durations",
    "subscription_durations",
    "with_attribute",
]

Basis = Literal["subscription", "activity", "snapshot"]
Periods = Literal["first", "last", "all"]

_TIME = pa.timestamp("us", tz="UTC")
_DAY_US = 86_400_000_000
_MISSING = "(missing)"
#: Columns of accounts that name a group, rather than measure something.
_ACCOUNT_ATTRIBUTES = tuple(
    c.name
    for c in TABLES["accounts"].columns
    if c.type == "string" and c.name not in ("account_id", "name")
)


@dataclass(frozen=True)
class Durations:
    """How long each account lasted, and whether its churn was observed.

    Attributes
    ----------
    frame : pandas.DataFrame
        ``account_id``, ``period`` (1 for an account's first active period),
        ``started_at`` (UTC; null on the snapshot basis), ``duration_days``
        (>= 0), ``event_observed`` (1 churned, 0 censored), ``active_at_end``
        (still running at the observation end: the accounts there is a time
        to churn to predict for), and one column per attribute attached with
        :func:`with_attribute`; sorted by account and period.
    basis : {"subscription", "activity", "snapshot"}
        How durations were derived.
    observation_end : ObservationEnd or None
        The end of the data, and how it was chosen (``None`` for snapshots).
    definition : str
        The churn event in plain words.
    """

    frame: pd.DataFrame
    basis: Basis
    observation_end: ObservationEnd | None
    definition: str

    @property
    def durations(self) -> np.ndarray:
        """Durations in days, as lifelines takes them."""
        return self.frame["duration_days"].to_numpy(dtype=float)

    @property
    def event_observed(self) -> np.ndarray:
        """1 where the churn was observed, 0 where censored."""
        return self.frame["event_observed"].to_numpy(dtype=np.int64)


def _end(
    warehouse: Warehouse, spec: LabelSpec, observation_end: str | dt.date | dt.datetime | None
) -> ObservationEnd:
    if observation_end is None:
        return infer_observation_end(warehouse, spec)
    return ObservationEnd(to_utc(observation_end, "observation_end"), "given", "stated by the user")


def _micros(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    values = column.cast(_TIME).cast(pa.int64())
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.int64)


def _end_us(end: dt.datetime) -> int:
    return (end - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)


def _frame(
    account_id: pa.ChunkedArray | pa.Array,
    started_us: np.ndarray,
    duration_days: np.ndarray,
    event: np.ndarray,
    periods: Periods,
    active: np.ndarray,
) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "account_id": np.asarray(account_id.cast(pa.string()).to_pylist(), dtype=object),
            "started_us": started_us,
            "duration_days": duration_days,
            "event_observed": event.astype(np.int64),
            "active_at_end": active.astype(bool),
        }
    )
    # Row order of the warehouse's answer is arbitrary: sort so that the
    # result (and anything fitted on it) is the same on every engine.
    frame = frame.sort_values(["account_id", "started_us"], kind="stable", ignore_index=True)
    frame.insert(1, "period", frame.groupby("account_id").cumcount().astype(np.int64) + 1)
    if periods == "first":
        frame = frame.loc[frame["period"] == 1]
    elif periods == "last":
        last = frame.groupby("account_id")["period"].transform("max")
        frame = frame.loc[frame["period"] == last]
    started = pd.to_datetime(frame.pop("started_us"), unit="us", utc=True)
    frame.insert(2, "started_at", started)
    return frame.reset_index(drop=True)


def _check_periods(periods: str) -> None:
    if periods not in get_args(Periods):
        raise AnalysisError(f"periods must be first, last or all, not {periods!r}")


def subscription_durations(
    warehouse: Warehouse,
    *,
    grace_days: int = 7,
    observation_end: str | dt.date | dt.datetime | None = None,
    periods: Periods = "first",
) -> Durations:
    """Subscription tenure: active periods chained as the churn label chains them.

    Parameters
    ----------
    warehouse : Warehouse
        Holds ``subscriptions``.
    grace_days : int
        A subscription starting within this many days of the previous end
        continues the period (``[churn] grace_days``).
    observation_end : str, date or datetime, optional
        The end of the data; inferred as the labels infer it (the latest
        subscription start) when omitted.
    periods : {"first", "last", "all"}
        Which active periods of each account: its first (its lifetime as a
        customer until it first churned), its latest (the one running now,
        for accounts still subscribed), or every one.

    Returns
    -------
    Durations

    Examples
    --------
    >>> import datetime as dt
    >>> import pyarrow as pa
    >>> from churnwatch.warehouse import connect
    >>> day = lambda d: dt.datetime.fromisoformat(d).replace(tzinfo=dt.UTC)
    >>> with connect("duckdb:///:memory:") as wh:
    ...     wh.ensure_schema()
    ...     wh.append("subscriptions", pa.table({
    ...         "account_id": ["a", "a", "b"], "subscription_id": ["1", "2", "3"],
    ...         "started_at": pa.array([day("2024-01-01"), day("2024-02-03"),
    ...                                 day("2024-03-01")], pa.timestamp("us", tz="UTC")),
    ...         "ended_at": pa.array([day("2024-02-01"), day("2024-03-01"), None],
    ...                              pa.timestamp("us", tz="UTC"))}))
    ...     found = subscription_durations(wh, observation_end="2024-04-01")
    >>> found.frame[["account_id", "duration_days", "event_observed"]].to_numpy().tolist()
    [['a', 60.0, 1], ['b', 31.0, 0]]
    """
    _check_periods(periods)
    spec = LabelSpec("subscription", grace_days=grace_days)
    end = _end(warehouse, spec, observation_end)
    ctes = subscription_periods(grace_days, started_by=instant(end.at, warehouse.dialect))
    query = exp.select("account_id", "period_start", "period_end").from_("cw_periods")
    for name, cte in ctes:
        query = query.with_(name, as_=cte)
    raw = warehouse.query(query)
    started = _micros(raw.column("period_start"))
    ended = _micros(raw.column("period_end"))
    end_us = _end_us(end.at)
    # Churned only once the grace gap has passed inside the data: a renewal
    # could still continue a period that ended less than grace_days before the end.
    event = ended + grace_days * _DAY_US <= end_us
    stopped = np.minimum(ended, end_us)
    days = (stopped - started) / _DAY_US
    frame = _frame(raw.column("account_id"), started, days, event, periods, ended > end_us)
    definition = (
        f"the end of an active subscription period (renewals within {grace_days} days "
        f"continue it), observed until {end.at:%Y-%m-%d}"
    )
    return Durations(frame, "subscription", end, definition)


def activity_durations(
    warehouse: Warehouse,
    *,
    inactivity_days: int = 30,
    event_types: tuple[str, ...] | None = None,
    observation_end: str | dt.date | dt.datetime | None = None,
) -> Durations:
    """Activity lifetime: from the first event to ``inactivity_days`` of silence.

    Parameters
    ----------
    warehouse : Warehouse
        Holds ``events``.
    inactivity_days : int
        Days without an event that make an account churned
        (``[churn] inactivity_days``); the churn happens at the last event
        plus this many days.
    event_types : tuple of str, optional
        Only these event types count as activity.
    observation_end : str, date or datetime, optional
        The end of the data; inferred as the inactivity label infers it when
        omitted (the latest event, or the latest subscription start if earlier).

    Returns
    -------
    Durations
        One row per account with an event (``period`` is always 1).

    Examples
    --------
    >>> import datetime as dt
    >>> import pyarrow as pa
    >>> from churnwatch.warehouse import connect
    >>> day = lambda d: dt.datetime.fromisoformat(d).replace(tzinfo=dt.UTC)
    >>> with connect("duckdb:///:memory:") as wh:
    ...     wh.ensure_schema()
    ...     wh.append("events", pa.table({
    ...         "account_id": ["a", "a", "b"], "event_type": ["x", "x", "x"],
    ...         "event_time": pa.array([day("2024-01-01"), day("2024-01-11"),
    ...                                 day("2024-03-01")], pa.timestamp("us", tz="UTC"))}))
    ...     found = activity_durations(wh, inactivity_days=30, observation_end="2024-03-20")
    >>> found.frame[["account_id", "duration_days", "event_observed"]].to_numpy().tolist()
    [['a', 40.0, 1], ['b', 19.0, 0]]
    """
    spec = LabelSpec("inactivity", inactivity_days=inactivity_days, event_types=event_types)
    end = _end(warehouse, spec, observation_end)
    at_end = instant(end.at, warehouse.dialect)
    when = exp.column("event_time", quoted=True)
    following = exp.Window(
        this=exp.func("LEAD", when.copy()),
        partition_by=[exp.column("account_id", quoted=True)],
        order=exp.Order(expressions=[exp.Ordered(this=when.copy())]),
    )
    where: exp.Expr = when <= at_end
    if spec.event_types is not None:
        kinds = [exp.Literal.string(t) for t in spec.event_types]
        where = exp.and_(where, exp.column("event_type", quoted=True).isin(*kinds))
    events = (
        exp.select("account_id", "event_time", exp.alias_(following, "next_time"))
        .from_("events")
        .where(where)
    )
    silence_after = exp.or_(
        exp.and_(
            exp.column("next_time").is_(exp.null()),
            days_after(when.copy(), inactivity_days) <= at_end.copy(),
        ),
        exp.column("next_time") >= days_after(when.copy(), inactivity_days),
    )
    lapse = exp.Case(ifs=[exp.If(this=silence_after, true=when.copy())])
    query = (
        exp.select(
            "account_id",
            exp.alias_(exp.func("MIN", when.copy()), "first_at"),
            exp.alias_(exp.func("MIN", lapse), "lapsed_at"),
        )
        .from_("cw_activity")
        .group_by("account_id")
        .with_("cw_activity", as_=events)
    )
    raw = warehouse.query(query)
    started = _micros(raw.column("first_at"))
    lapsed = raw.column("lapsed_at")
    event = np.asarray(pc.is_valid(lapsed).to_numpy(zero_copy_only=False), dtype=bool)
    end_us = _end_us(end.at)
    lapsed_us = _micros(lapsed.fill_null(pa.scalar(end.at, _TIME)))
    stopped = np.where(event, lapsed_us + inactivity_days * _DAY_US, end_us)
    days = (stopped - started) / _DAY_US
    frame = _frame(raw.column("account_id"), started, days, event, "all", ~event)
    definition = (
        f"{inactivity_days} days without an event"
        + (f" of type {', '.join(spec.event_types)}" if spec.event_types else "")
        + f", counted from the first event, observed until {end.at:%Y-%m-%d}"
    )
    return Durations(frame, "activity", end, definition)


def snapshot_durations(warehouse: Warehouse) -> Durations:
    """Tenure and churn of one-snapshot tables (``accounts.tenure_days``, ``churned``).

    Accounts with no tenure or no label are left out.

    Examples
    --------
    >>> from churnwatch.warehouse import connect
    >>> with connect("duckdb:///:memory:") as wh:
    ...     wh.ensure_schema()
    ...     wh.append("accounts", pa.table({"account_id": ["a", "b"],
    ...         "tenure_days": [30.0, 60.0], "churned": [True, False]}))
    ...     snapshot_durations(wh).frame["event_observed"].tolist()
    [1, 0]
    """
    query = (
        exp.select("account_id", "tenure_days", "churned")
        .from_("accounts")
        .where(
            exp.and_(
                exp.column("tenure_days").is_(exp.null()).not_(),
                exp.column("churned").is_(exp.null()).not_(),
            )
        )
    )
    raw = warehouse.query(query)
    tenure = np.asarray(raw.column("tenure_days").to_numpy(zero_copy_only=False), dtype=float)
    # Booleans come back as 0/1 integers from MySQL.
    churned = raw.column("churned").cast(pa.int64())
    event = np.asarray(churned.to_numpy(zero_copy_only=False), dtype=np.int64) != 0
    zeros = np.zeros(len(tenure), np.int64)
    frame = _frame(raw.column("account_id"), zeros, tenure, event, "all", ~event)
    frame["started_at"] = pd.NaT
    return Durations(frame, "snapshot", None, "churned (accounts.churned) after tenure_days")


def derive_durations(
    warehouse: Warehouse,
    settings: Settings,
    *,
    basis: Basis | None = None,
    periods: Periods = "first",
) -> Durations:
    """Durations on a basis, with the project's churn settings.

    Parameters
    ----------
    warehouse : Warehouse
        Holds the canonical tables.
    settings : Settings
        ``[churn] grace_days`` / ``inactivity_days`` and
        ``[data] observation_end`` are read.
    basis : {"subscription", "activity", "snapshot"}, optional
        Default: the ``[churn] definition`` (subscription or inactivity ->
        activity); ``snapshot`` when accounts carry ``tenure_days`` and there
        are neither subscriptions nor events.
    periods : {"first", "last", "all"}
        Subscription basis only: which active periods.

    Raises
    ------
    AnalysisError
        If the basis is unknown or its table is empty.

    Examples
    --------
    >>> from churnwatch.warehouse import connect
    >>> with connect("duckdb:///:memory:") as wh:
    ...     wh.ensure_schema()
    ...     derive_durations(wh, Settings())  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    churnwatch.errors.AnalysisError: no subscriptions to derive durations from ...
    """
    if basis is None:
        basis = _default_basis(warehouse, settings)
    if basis not in get_args(Basis):
        raise AnalysisError(f"unknown basis {basis!r}; expected subscription, activity or snapshot")
    churn = settings.churn
    end = settings.data.observation_end
    table = {"subscription": "subscriptions", "activity": "events", "snapshot": "accounts"}[basis]
    if not warehouse.count(table):
        others = [b for b in get_args(Basis) if b != basis]
        raise AnalysisError(
            f"no {table} to derive durations from on the {basis} basis; load them, or "
            f"choose another basis ({' or '.join(others)})"
        )
    if basis == "subscription":
        return subscription_durations(
            warehouse, grace_days=churn.grace_days, observation_end=end, periods=periods
        )
    if basis == "activity":
        return activity_durations(
            warehouse, inactivity_days=churn.inactivity_days, observation_end=end
        )
    found = snapshot_durations(warehouse)
    if found.frame.empty:
        raise AnalysisError(
            "no account has both tenure_days and churned: the snapshot basis reads "
            "one-snapshot tables (presets telco, bank_churn)"
        )
    return found


def _default_basis(warehouse: Warehouse, settings: Settings) -> Basis:
    if settings.churn.definition == "subscription" and warehouse.count("subscriptions"):
        return "subscription"
    if warehouse.count("events"):
        return "activity"
    if warehouse.count("subscriptions"):
        return "subscription"
    if warehouse.count("accounts", exp.column("tenure_days").is_(exp.null()).not_()):
        return "snapshot"
    return "subscription" if settings.churn.definition == "subscription" else "activity"


def with_attribute(
    warehouse: Warehouse,
    durations: Durations,
    name: str,
    values: Mapping[str, object] | pd.Series | None = None,
) -> Durations:
    """Attach an account attribute (a column of ``accounts`` or a key of its attributes).

    Parameters
    ----------
    warehouse : Warehouse
        Holds ``accounts``.
    durations : Durations
        Rows to attach the attribute to.
    name : str
        ``plan``, ``region``, ``platform``, ``referral_source`` ... or a key of
        ``accounts.attributes`` (e.g. ``InternetService`` of the Telco table).
        Accounts without a value get ``"(missing)"``.
    values : mapping or pandas.Series, optional
        Groups computed elsewhere, by account id (such as segment names from
        :mod:`churnwatch.segments`): attached under ``name`` instead of
        reading ``accounts``.

    Raises
    ------
    AnalysisError
        If no account has this attribute.

    Examples
    --------
    >>> from churnwatch.warehouse import connect
    >>> with connect("duckdb:///:memory:") as wh:
    ...     wh.ensure_schema()
    ...     wh.append("accounts", pa.table({"account_id": ["a", "b"], "plan": ["pro", None],
    ...         "tenure_days": [30.0, 60.0], "churned": [True, False]}))
    ...     with_attribute(wh, snapshot_durations(wh), "plan").frame["plan"].tolist()
    ['pro', '(missing)']
    """
    if not name.isidentifier():
        raise AnalysisError(f"attribute {name!r}: expected a column or attribute name")
    if values is not None:
        given = pd.Series(values, dtype=object).dropna()
        if given.empty:
            raise AnalysisError(f"no account has a value of {name!r}")
        lookup = dict(zip(given.index.astype(str), given.astype(str), strict=True))
        return _attach(durations, name, lookup)
    if name in _ACCOUNT_ATTRIBUTES:
        value: exp.Expr = exp.cast(exp.column(name, quoted=True), exp.DataType.Type.TEXT)
    elif name in TABLES["accounts"].column_names:
        raise AnalysisError(
            f"{name!r} is a measure of accounts, not a group; group by one of "
            f"{', '.join(_ACCOUNT_ATTRIBUTES)} or a key of accounts.attributes"
        )
    else:
        value = json_text(exp.column("attributes", quoted=True), name, warehouse.dialect)
    raw = warehouse.query(
        exp.select("account_id", exp.alias_(value, "value")).from_("accounts")
    ).to_pandas()
    raw = raw.loc[raw["value"].notna() & (raw["value"].astype(str).str.strip() != "")]
    if raw.empty:
        raise AnalysisError(
            f"no account has attribute {name!r}: group by one of "
            f"{', '.join(_ACCOUNT_ATTRIBUTES)} or a key of accounts.attributes that is filled"
        )
    lookup = dict(zip(raw["account_id"].astype(str), raw["value"].astype(str), strict=True))
    return _attach(durations, name, lookup)


def _attach(durations: Durations, name: str, lookup: dict[str, str]) -> Durations:
    frame = durations.frame.copy()
    # Categorical: a million accounts group by their codes, not by hashing text.
    frame[name] = frame["account_id"].map(lookup).fillna(_MISSING).astype("category")
    return replace(durations, frame=frame)
