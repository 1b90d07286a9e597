"""Does outreach work? Recovery of notified episodes against the random holdout.

The tracker keeps a random share of new at-risk episodes out of every
notification (``[tracker] holdout_share``). Since membership is random, the
difference between the recovery rate of notified episodes and that of the
holdout estimates the effect of notifying — the incremental recovery rate.

**Recovery** is re-adoption by the as-of date, or within ``window_days`` of
the churn when a window is given (then only episodes churned at least
``window_days`` before the as-of date count, so each had the same time to
recover).

**Intervals.** The rate difference gets Newcombe's hybrid score interval
(Newcombe 1998, method 10): Wilson score intervals of each rate, combined
— well behaved for small groups and rates near 0 or 1, where the Wald
interval is not. Incremental revenue is ``(r_n - r_h) × revenue at risk of
the notified``, where ``r`` is the share of revenue at risk recovered in each
group; its interval is a percentile bootstrap, resampling episodes within
each group (a fixed seed, so a report is reproducible).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["ImpactReport", "measure_impact", "newcombe_interval", "wilson_interval"]


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (no continuity correction).

    Examples
    --------
    >>> [round(v, 4) for v in wilson_interval(56, 70)]
    [0.6918, 0.877]
    """
    if trials <= 0:
        raise ValueError("a proportion needs at least one trial")
    if not 0 <= successes <= trials:
        raise ValueError(f"successes ({successes}) must be between 0 and trials ({trials})")
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_interval(
    successes_1: int, trials_1: int, successes_2: int, trials_2: int, confidence: float = 0.95
) -> tuple[float, float, float]:
    """Difference of two proportions ``p1 - p2`` with Newcombe's hybrid score interval.

    Returns
    -------
    (difference, lower, upper)

    Examples
    --------
    Newcombe (1998), Table II, example (a): 56/70 against 48/80.

    >>> [round(v, 4) for v in newcombe_interval(56, 70, 48, 80)]
    [0.2, 0.0524, 0.3339]
    """
    p1 = successes_1 / trials_1
    p2 = successes_2 / trials_2
    low_1, high_1 = wilson_interval(successes_1, trials_1, confidence)
    low_2, high_2 = wilson_interval(successes_2, trials_2, confidence)
    difference = p1 - p2
    lower = difference - math.sqrt((p1 - low_1) ** 2 + (high_2 - p2) ** 2)
    upper = difference + math.sqrt((high_1 - p1) ** 2 + (p2 - low_2) ** 2)
    return difference, lower, upper


@dataclass(frozen=True)
class ImpactReport:
    """Recovery of notified episodes against the holdout.

    Attributes
    ----------
    episodes_notified, episodes_holdout : int
        Episodes in each group.
    recovered_notified, recovered_holdout : int
        Of which re-adopted (in the window).
    rate_notified, rate_holdout : float or None
        Recovery rates (None for an empty group).
    incremental_rate, incremental_rate_low, incremental_rate_high : float or None
        ``rate_notified - rate_holdout`` and its Newcombe interval.
    revenue_at_risk_notified, revenue_recovered_notified : float
        Revenue at churn of the notified episodes, and of those recovered.
    revenue_at_risk_holdout, revenue_recovered_holdout : float
        The same for the holdout.
    incremental_revenue, incremental_revenue_low, incremental_revenue_high : float or None
        Revenue recovered because of the notifications, with a bootstrap interval.
    confidence : float
        Level of both intervals.
    window_days : int or None
        Recovery window; None: by the as-of date.
    note : str
        Why figures are missing, if they are.
    """

    episodes_notified: int
    episodes_holdout: int
    recovered_notified: int
    recovered_holdout: int
    rate_notified: float | None
    rate_holdout: float | None
    incremental_rate: float | None
    incremental_rate_low: float | None
    incremental_rate_high: float | None
    revenue_at_risk_notified: float
    revenue_recovered_notified: float
    revenue_at_risk_holdout: float
    revenue_recovered_holdout: float
    incremental_revenue: float | None
    incremental_revenue_low: float | None
    incremental_revenue_high: float | None
    confidence: float
    window_days: int | None
    note: str

    def as_json(self) -> dict[str, Any]:
        """The report as JSON-ready values."""
        return asdict(self)


def _revenue_gain(
    revenue_n: np.ndarray, won_n: np.ndarray, revenue_h: np.ndarray, won_h: np.ndarray
) -> float:
    at_risk_n = revenue_n.sum()
    at_risk_h = revenue_h.sum()
    if at_risk_n <= 0 or at_risk_h <= 0:
        return float("nan")
    rate_n = (revenue_n * won_n).sum() / at_risk_n
    rate_h = (revenue_h * won_h).sum() / at_risk_h
    return float((rate_n - rate_h) * at_risk_n)


def _bootstrap(
    revenue_n: np.ndarray,
    won_n: np.ndarray,
    revenue_h: np.ndarray,
    won_h: np.ndarray,
    *,
    confidence: float,
    resamples: int,
    seed: int,
) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    gains = np.empty(resamples)
    # In chunks: resamples × episodes indices at once would not fit for large groups.
    chunk = max(1, 4_000_000 // max(len(revenue_n) + len(revenue_h), 1))
    for start in range(0, resamples, chunk):
        count = min(chunk, resamples - start)
        pick_n = rng.integers(0, len(revenue_n), size=(count, len(revenue_n)))
        pick_h = rng.integers(0, len(revenue_h), size=(count, len(revenue_h)))
        r_n, w_n = revenue_n[pick_n], won_n[pick_n]
        r_h, w_h = revenue_h[pick_h], won_h[pick_h]
        at_risk_n = r_n.sum(axis=1)
        at_risk_h = r_h.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            rate_n = (r_n * w_n).sum(axis=1) / at_risk_n
            rate_h = (r_h * w_h).sum(axis=1) / at_risk_h
        gains[start : start + count] = (rate_n - rate_h) * at_risk_n
    gains = gains[np.isfinite(gains)]
    if gains.size == 0:
        return float("nan"), float("nan")
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(gains, [tail, 100 - tail])
    return float(low), float(high)


def _none(value: float) -> float | None:
    return None if math.isnan(value) else value


def measure_impact(
    episodes: pd.DataFrame,
    *,
    as_of: dt.date | None = None,
    window_days: int | None = None,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> ImpactReport:
    """Incremental recovery rate and revenue of notified episodes over the holdout.

    Parameters
    ----------
    episodes : DataFrame
        From :func:`episode_frame`: ``churned_at, recovered_at, revenue, holdout``.
    as_of : date, optional
        The as-of date; with ``window_days``, only episodes churned at least
        ``window_days`` before it count (each had the whole window).
    window_days : int, optional
        Count a recovery only within this many days of the churn; None:
        recovered by the as-of date.
    confidence : float
        Level of the intervals.
    resamples : int
        Bootstrap resamples for the revenue interval.
    seed : int
        Seed of the bootstrap.

    Examples
    --------
    >>> import pandas as pd
    >>> rows = pd.DataFrame({
    ...     "churned_at": pd.to_datetime(["2024-03-01"] * 4, utc=True),
    ...     "recovered_at": pd.to_datetime(["2024-03-03", None, "2024-03-05", None], utc=True),
    ...     "revenue": [100.0, 100.0, 100.0, 100.0],
    ...     "holdout": [False, False, True, True]})
    >>> report = measure_impact(rows)
    >>> report.rate_notified, report.rate_holdout, report.incremental_rate
    (0.5, 0.5, 0.0)
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    chosen = episodes
    if window_days is not None and as_of is not None:
        latest = pd.Timestamp(as_of.isoformat(), tz="UTC") - pd.Timedelta(days=window_days)
        chosen = chosen.loc[chosen["churned_at"] <= latest]
    recovered = chosen["recovered_at"].notna()
    if window_days is not None:
        ages = chosen["recovered_at"] - chosen["churned_at"]
        recovered = recovered & (ages <= pd.Timedelta(days=window_days))
    held = chosen["holdout"].astype(bool).to_numpy()
    won = recovered.to_numpy()
    revenue = chosen["revenue"].fillna(0.0).to_numpy(dtype=float)
    n_n, n_h = int((~held).sum()), int(held.sum())
    x_n, x_h = int(won[~held].sum()), int(won[held].sum())
    revenue_n, revenue_h = revenue[~held], revenue[held]
    won_n, won_h = won[~held].astype(float), won[held].astype(float)
    note = ""
    rate_n = x_n / n_n if n_n else None
    rate_h = x_h / n_h if n_h else None
    difference = low = high = None
    gain = gain_low = gain_high = None
    if n_n and n_h:
        difference, low, high = newcombe_interval(x_n, n_n, x_h, n_h, confidence)
        gain = _none(_revenue_gain(revenue_n, won_n, revenue_h, won_h))
        if gain is not None:
            lo, hi = _bootstrap(
                revenue_n,
                won_n,
                revenue_h,
                won_h,
                confidence=confidence,
                resamples=resamples,
                seed=seed,
            )
            gain_low, gain_high = _none(lo), _none(hi)
        else:
            note = "a group has no revenue at risk: no incremental revenue"
    elif not n_h:
        note = "no episode in the holdout: set [tracker] holdout_share (such as 0.1) to measure"
    else:
        note = "no notified episode yet"
    return ImpactReport(
        episodes_notified=n_n,
        episodes_holdout=n_h,
        recovered_notified=x_n,
        recovered_holdout=x_h,
        rate_notified=rate_n,
        rate_holdout=rate_h,
        incremental_rate=difference,
        incremental_rate_low=low,
        incremental_rate_high=high,
        revenue_at_risk_notified=float(revenue_n.sum()),
        revenue_recovered_notified=float((revenue_n * won_n).sum()),
        revenue_at_risk_holdout=float(revenue_h.sum()),
        revenue_recovered_holdout=float((revenue_h * won_h).sum()),
        incremental_revenue=gain,
        incremental_revenue_low=gain_low,
        incremental_revenue_high=gain_high,
        confidence=confidence,
        window_days=window_days,
        note=note,
    )
