"""Conditional time to churn: how long an account that has lasted ``t`` days has left.

For an account still active after ``t`` days, the median remaining lifetime
is the smallest ``u`` with ``S(t + u) / S(t) <= 0.5``, read off the
Kaplan-Meier curve of every period of the same basis (lifelines computes the
same at its own time points: ``KaplanMeierFitter.conditional_time_to_event_``).
When the curve never falls to half of ``S(t)`` within the data, the median is
not estimable: it is reported as null with ``median_reached = False`` and
``more_than_days``, the days the data can vouch for, never as a made-up number.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from lifelines import KaplanMeierFitter

from churnwatch.config import ChurnSettings, DataSettings, Settings
from churnwatch.errors import AnalysisError
from churnwatch.labels import LabelSpec
from churnwatch.survival._cox import CoxResult
from churnwatch.survival._durations import Basis, Durations, derive_durations
from churnwatch.survival._kaplan_meier import kaplan_meier
from churnwatch.warehouse import Warehouse

__all__ = [
    "TimeToChurn",
    "conditional_median_remaining",
    "cox_time_to_churn",
    "predicted_days_to_churn",
    "time_to_churn",
]


@dataclass(frozen=True)
class TimeToChurn:
    """Predicted days to churn of the accounts active at the end of the data.

    Attributes
    ----------
    frame : pandas.DataFrame
        ``account_id, tenure_days`` (how long the current period has lasted),
        ``predicted_days_to_churn`` (median remaining days; null when not
        estimable), ``median_reached`` and ``more_than_days`` (when not
        reached: the remaining lifetime is longer than this).
    basis : str
        The durations' basis.
    as_of : datetime
        The moment tenures are measured at (the observation end).
    """

    frame: pd.DataFrame
    basis: Basis
    as_of: dt.datetime


def conditional_median_remaining(
    fitter: KaplanMeierFitter, tenure_days: Sequence[float] | np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Median remaining days given survival to each tenure, from a fitted curve.

    Parameters
    ----------
    fitter : lifelines.KaplanMeierFitter
        A fitted Kaplan-Meier curve (days).
    tenure_days : array-like
        Days each account has lasted so far.

    Returns
    -------
    (remaining, reached, more_than) : tuple of numpy arrays
        The median remaining days (NaN when the curve never falls to half of
        ``S(t)``), whether it was reached, and, where not, the days left in
        the data after ``t`` (the remaining lifetime is longer).

    Examples
    --------
    >>> fitter = KaplanMeierFitter().fit([10, 20, 30, 40], [1, 1, 1, 0])
    >>> remaining, reached, _ = conditional_median_remaining(fitter, [0, 15, 35])
    >>> remaining.tolist(), reached.tolist()
    ([20.0, 15.0, nan], [True, True, False])
    """
    tenure = np.asarray(tenure_days, dtype=float)
    times = fitter.survival_function_.index.to_numpy(dtype=float)
    survival = fitter.survival_function_.iloc[:, 0].to_numpy(dtype=float)
    # S is a step function: S(t) is the value at the last time point <= t.
    at = np.searchsorted(times, tenure, side="right") - 1
    now = survival[np.clip(at, 0, None)]
    target = now * 0.5
    # The first time point where S <= S(t) / 2 (S never rises: search on -S).
    found = np.searchsorted(-survival, -target, side="left")
    reached = found < len(times)
    remaining = np.full(len(tenure), np.nan)
    remaining[reached] = times[found[reached]] - tenure[reached]
    more_than = np.where(reached, np.nan, np.maximum(times[-1] - tenure, 0.0))
    return remaining, reached, more_than


def cox_time_to_churn(
    result: CoxResult,
    frame: pd.DataFrame,
    *,
    conditional_after: Sequence[float] | np.ndarray | None = None,
) -> pd.DataFrame:
    """Median days to churn of each account from a Cox model and its covariates.

    Parameters
    ----------
    result : CoxResult
        A model from :func:`fit_cox` (or :func:`cox_on_features`).
    frame : pandas.DataFrame
        The accounts' covariates, as the columns the model was fitted on;
        they are prepared the same way (encoded, filled, scaled).
    conditional_after : array-like, optional
        Days each account has already lasted on the model's time scale
        (lifelines' ``conditional_after``): the median is then of the
        remaining time, given survival so far. For a model from
        :func:`cox_on_features`, time starts at the cutoff the features were
        measured at: leave it out for features measured now.

    Returns
    -------
    pandas.DataFrame
        ``predicted_days_to_churn`` (null where the model's curve never falls
        to one half) and ``median_reached``, on ``frame``'s index.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> usage = rng.normal(size=300)
    >>> days = rng.exponential(100 * np.exp(0.7 * usage))
    >>> from churnwatch.survival import fit_cox
    >>> result = fit_cox(pd.DataFrame({"duration_days": days, "event_observed": 1,
    ...                                "usage": usage}))
    >>> found = cox_time_to_churn(result, pd.DataFrame({"usage": [-1.0, 1.0]}))
    >>> bool(found["predicted_days_to_churn"].is_monotonic_increasing)  # more use, longer
    True
    """
    design = result.covariates_of(frame)
    after = None if conditional_after is None else np.asarray(conditional_after, dtype=float)
    if after is not None and len(after) != len(frame):
        raise AnalysisError(f"conditional_after has {len(after)} values for {len(frame)} accounts")
    medians = result.fitter.predict_median(design, conditional_after=after)
    values = np.asarray(medians, dtype=float).reshape(-1)
    reached = np.isfinite(values)
    return pd.DataFrame(
        {"predicted_days_to_churn": np.where(reached, values, np.nan), "median_reached": reached},
        index=frame.index,
    )


def time_to_churn(
    warehouse: Warehouse,
    settings: Settings,
    *,
    basis: Basis | None = None,
    accounts: Sequence[str] | None = None,
) -> TimeToChurn:
    """Median days to churn of every account active at the observation end.

    The curve is Kaplan-Meier over every active period (each one tells how
    long periods last); an account's tenure is the age of its latest,
    still-running period.

    Parameters
    ----------
    warehouse : Warehouse
        Holds the canonical tables.
    settings : Settings
        ``[churn]`` and ``[data] observation_end`` define the durations.
    basis : {"subscription", "activity"}, optional
        Default from ``[churn] definition``.
    accounts : sequence of str, optional
        Only these accounts.

    Returns
    -------
    TimeToChurn

    Raises
    ------
    AnalysisError
        On the snapshot basis (its accounts have no "now"), or with no churn.

    Examples
    --------
    >>> import datetime as dt
    >>> import pyarrow as pa
    >>> from churnwatch.warehouse import connect
    >>> day = lambda d: dt.datetime.fromisoformat(d).replace(tzinfo=dt.UTC)
    >>> with connect("duckdb:///:memory:") as wh:
    ...     wh.ensure_schema()
    ...     wh.append("subscriptions", pa.table({
    ...         "account_id": ["a", "b", "c"], "subscription_id": ["1", "2", "3"],
    ...         "started_at": pa.array([day("2024-01-01"), day("2024-01-01"),
    ...                                 day("2024-03-01")], pa.timestamp("us", tz="UTC")),
    ...         "ended_at": pa.array([day("2024-01-21"), day("2024-02-10"), None],
    ...                              pa.timestamp("us", tz="UTC"))}))
    ...     found = time_to_churn(wh, Settings(data={"observation_end": "2024-03-11"}))
    >>> found.frame[["account_id", "tenure_days", "median_reached"]].to_numpy().tolist()
    [['c', 10.0, True]]
    >>> float(found.frame["predicted_days_to_churn"].iloc[0])
    10.0
    """
    durations = derive_durations(warehouse, settings, basis=basis, periods="all")
    return _time_to_churn(durations, accounts)


def _time_to_churn(durations: Durations, accounts: Sequence[str] | None) -> TimeToChurn:
    if durations.observation_end is None:
        raise AnalysisError(
            "one-snapshot tables have no current accounts to predict for: use the "
            "subscription or activity basis"
        )
    curves = kaplan_meier(durations.durations, durations.event_observed)
    fitter = curves.fitters[curves.groups[0]]
    frame = durations.frame
    # A period that ended within the grace gap before the end is censored but
    # not running: its account is not "still active" to predict for.
    current = frame.loc[frame["active_at_end"], ["account_id", "duration_days"]]
    if accounts is not None:
        current = current.loc[current["account_id"].isin([str(a) for a in accounts])]
    tenure = current["duration_days"].to_numpy(dtype=float)
    remaining, reached, more_than = conditional_median_remaining(fitter, tenure)
    result = pd.DataFrame(
        {
            "account_id": current["account_id"].to_numpy(),
            "tenure_days": tenure,
            "predicted_days_to_churn": remaining,
            "median_reached": reached,
            "more_than_days": more_than,
        }
    )
    return TimeToChurn(result, durations.basis, durations.observation_end.at)


def predicted_days_to_churn(
    warehouse: Warehouse, spec: LabelSpec, as_of: dt.datetime
) -> pd.Series | None:
    """Median days to churn per account active at ``as_of``, for a churn label.

    The durations follow the label: subscription churn reads subscription
    periods (with its grace gap), inactivity churn reads activity (with its
    inactivity days). Other labels have no time to churn: ``None``.

    Returns
    -------
    pandas.Series or None
        Indexed by ``account_id``; null where the median is not estimable.
    """
    churn: ChurnSettings
    if spec.kind == "subscription":
        churn = ChurnSettings(definition="subscription", grace_days=spec.grace_days)
        basis: Basis = "subscription"
    elif spec.kind == "inactivity" and spec.event_types is None:
        churn = ChurnSettings(definition="inactivity", inactivity_days=spec.inactivity_days)
        basis = "activity"
    else:
        return None
    settings = Settings(churn=churn, data=DataSettings(observation_end=as_of.isoformat()))
    try:
        durations = derive_durations(warehouse, settings, basis=basis, periods="all")
        found = _time_to_churn(durations, None)
    except AnalysisError:
        # No churn seen yet, or nothing to derive from: no estimate, not a failure to score.
        return None
    series: pd.Series = found.frame.set_index("account_id")["predicted_days_to_churn"]
    return series
