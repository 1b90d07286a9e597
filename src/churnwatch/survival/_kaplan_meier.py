"""Kaplan-Meier curves, medians, retention at given days and log-rank tests.

A thin layer over lifelines: :class:`lifelines.KaplanMeierFitter` per group,
:func:`lifelines.statistics.multivariate_logrank_test` across groups and
:func:`lifelines.statistics.logrank_test` for each pair. The estimates are
lifelines' own; this module adds tidy tables and honest edge cases (a median
the curve never reaches is "more than N days", never a number).

Speed: accounts sharing a (group, duration, event) are collapsed into one row
with a weight before lifelines sees them. Kaplan-Meier and the log-rank
statistics depend only on the counts at each duration, so the results are
lifelines' unweighted ones, and a million accounts cost as much as their few
thousand distinct durations.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from lifelines import KaplanMeierFitter
from lifelines.statistics import logrank_test, multivariate_logrank_test
from lifelines.utils import median_survival_times

from churnwatch.errors import AnalysisError

__all__ = ["LogRankResult", "SurvivalCurves", "kaplan_meier"]

#: The days retention is reported at unless asked otherwise.
RETENTION_DAYS: tuple[int, ...] = (7, 30, 90)
ALL = "all"


@dataclass(frozen=True)
class LogRankResult:
    """Whether the groups' survival curves differ.

    Attributes
    ----------
    statistic : float
        The log-rank chi-squared statistic across all groups.
    p_value : float
        Its p-value (lifelines' :func:`multivariate_logrank_test`).
    degrees_of_freedom : int
        Groups less one.
    pairwise : pandas.DataFrame
        ``group_a, group_b, statistic, p_value``: a two-sample log-rank test
        per pair (no correction for multiple comparisons).
    """

    statistic: float
    p_value: float
    degrees_of_freedom: int
    pairwise: pd.DataFrame

    def describe(self, alpha: float = 0.05) -> str:
        """The verdict in plain words.

        Examples
        --------
        >>> LogRankResult(4.2, 0.0404, 1, pd.DataFrame()).describe()
        'log-rank test: chi2 = 4.20 (1 df), p = 0.0404: the groups differ (p < 0.05)'
        """
        verdict = (
            f"the groups differ (p < {alpha:g})"
            if self.p_value < alpha
            else f"no evidence the groups differ (p >= {alpha:g})"
        )
        # A p-value below the smallest double is computed as 0: say so, not "p = 0".
        shown = f"p = {self.p_value:.3g}" if self.p_value > 0 else "p < 1e-300"
        return (
            f"log-rank test: chi2 = {self.statistic:.2f} ({self.degrees_of_freedom} df), "
            f"{shown}: {verdict}"
        )


@dataclass(frozen=True)
class SurvivalCurves:
    """Kaplan-Meier estimates, overall or per group, as tidy tables.

    Attributes
    ----------
    survival : pandas.DataFrame
        ``group, timeline, survival, ci_lower, ci_upper, at_risk, churned,
        censored``: the survival function and its confidence band at every
        duration (days), per group.
    medians : pandas.DataFrame
        ``group, accounts, churned, median_days, ci_lower, ci_upper,
        median_reached, followed_days``. When the curve never falls to 0.5,
        ``median_days`` is null and ``median_reached`` false: the median is
        more than ``followed_days``, the longest duration observed.
        An infinite ``ci_upper`` means the band never falls to 0.5.
    retention : pandas.DataFrame
        ``group, day, retention, ci_lower, ci_upper``: the share still there
        at each day; null after the group's longest duration.
    logrank : LogRankResult or None
        The test across groups; ``None`` for one group.
    by : str or None
        What the groups are (an attribute name).
    alpha : float
        The confidence bands are ``1 - alpha``.
    fitters : dict of str to KaplanMeierFitter
        lifelines' fitted estimators per group, for anything not tabled here.
    """

    survival: pd.DataFrame
    medians: pd.DataFrame
    retention: pd.DataFrame
    logrank: LogRankResult | None
    by: str | None
    alpha: float
    fitters: dict[str, KaplanMeierFitter] = field(repr=False)

    @property
    def groups(self) -> list[str]:
        """The groups, in the order of the tables."""
        return list(self.fitters)

    def median_text(self, group: str = ALL) -> str:
        """One group's median lifetime in words.

        Examples
        --------
        >>> curves = kaplan_meier([5, 10, 20], [1, 0, 0])
        >>> curves.median_text()
        'more than 20 days (the curve stays above 0.5)'
        """
        row = self.medians.loc[self.medians["group"] == group].iloc[0]
        if not row["median_reached"]:
            return f"more than {row['followed_days']:g} days (the curve stays above 0.5)"
        upper = "∞" if np.isinf(row["ci_upper"]) else f"{row['ci_upper']:g}"
        return f"{row['median_days']:g} days ({1 - self.alpha:.0%} CI {row['ci_lower']:g}–{upper})"


def _as_array(values: Sequence[float] | np.ndarray | pd.Series, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=float).reshape(-1)
    if np.isnan(array).any():
        raise AnalysisError(f"{name} holds missing values; drop or fill those rows first")
    return array


def kaplan_meier(
    durations: Sequence[float] | np.ndarray | pd.Series,
    event_observed: Sequence[float] | np.ndarray | pd.Series | None = None,
    *,
    groups: Sequence[object] | np.ndarray | pd.Series | None = None,
    weights: Sequence[float] | np.ndarray | pd.Series | None = None,
    alpha: float = 0.05,
    retention_days: Sequence[int] = RETENTION_DAYS,
    by: str | None = None,
) -> SurvivalCurves:
    """Fit Kaplan-Meier curves, overall or per group, and test the groups apart.

    Parameters
    ----------
    durations : array-like
        Time each account lasted, in days (>= 0).
    event_observed : array-like, optional
        1 where the churn was observed, 0 where censored (default: all 1).
    groups : array-like, optional
        A group per account (plan, region ...); one curve per group and a
        log-rank test across them. Default: one group, ``"all"``.
    weights : array-like, optional
        Accounts each row stands for (counts; default 1).
    alpha : float
        Confidence bands and median intervals are ``1 - alpha``.
    retention_days : sequence of int
        Days at which retention is reported.
    by : str, optional
        What the groups are, for titles.

    Returns
    -------
    SurvivalCurves

    Raises
    ------
    AnalysisError
        On negative or missing durations, inputs of different lengths, no
        rows, or no observed churn at all.

    Examples
    --------
    >>> curves = kaplan_meier([3, 5, 5, 8, 12], [1, 1, 0, 1, 0])
    >>> curves.medians[["group", "median_days", "median_reached"]].to_numpy().tolist()
    [['all', 8.0, True]]
    >>> round(float(curves.retention.query("day == 7")["retention"].iloc[0]), 4)
    0.6
    """
    durations_ = _as_array(durations, "durations")
    n = len(durations_)
    if n == 0:
        raise AnalysisError("no accounts to estimate survival from")
    if (durations_ < 0).any():
        raise AnalysisError(
            f"{int((durations_ < 0).sum())} durations are negative; a duration is the "
            "time from the start to the churn or to the end of observation"
        )
    events = np.ones(n) if event_observed is None else _as_array(event_observed, "event_observed")
    counts = np.ones(n) if weights is None else _as_array(weights, "weights")
    codes, names = _group_codes(groups, n)
    if not (len(events) == len(counts) == len(codes) == n):
        raise AnalysisError(
            f"durations ({n}), event_observed ({len(events)}), groups ({len(codes)}) and "
            f"weights ({len(counts)}) must have one value per account"
        )
    if not np.isin(events, (0, 1)).all():
        raise AnalysisError("event_observed must be 0 (censored) or 1 (churned)")
    if (counts <= 0).any():
        raise AnalysisError("weights must be positive counts of accounts")
    if not (counts * events).sum():
        raise AnalysisError(
            "no churn was observed: every duration is censored, so there is no curve to "
            "estimate; check the churn definition or the observation end"
        )
    if not 0 < alpha < 1:
        raise AnalysisError(f"alpha must be between 0 and 1, not {alpha}")
    # Grouping integer codes rather than labels: a million strings cost more
    # to hash than the whole fit.
    collapsed = (
        pd.DataFrame({"code": codes, "duration": durations_, "event": events, "n": counts})
        .groupby(["code", "duration", "event"], sort=True)["n"]
        .sum()
        .reset_index()
    )
    collapsed["group"] = np.asarray(names, dtype=object)[collapsed["code"].to_numpy()]
    fitters: dict[str, KaplanMeierFitter] = {}
    survival, medians, retention = [], [], []
    for _, part in collapsed.groupby("code", sort=True):
        label = str(part["group"].iloc[0])
        fitter = KaplanMeierFitter(alpha=alpha, label=label).fit(
            part["duration"], part["event"], weights=part["n"]
        )
        fitters[label] = fitter
        survival.append(_survival_table(label, fitter))
        medians.append(_median_row(label, fitter, part))
        retention += _retention_rows(label, fitter, retention_days, float(part["duration"].max()))
    test = _logrank(collapsed) if len(fitters) > 1 else None
    return SurvivalCurves(
        survival=pd.concat(survival, ignore_index=True),
        medians=pd.DataFrame(medians),
        retention=pd.DataFrame(
            retention, columns=["group", "day", "retention", "ci_lower", "ci_upper"]
        ),
        logrank=test,
        by=by,
        alpha=alpha,
        fitters=fitters,
    )


def _group_codes(
    groups: Sequence[object] | np.ndarray | pd.Series | None, n: int
) -> tuple[np.ndarray, list[str]]:
    """An integer code per row and the group names, sorted by name."""
    if groups is None:
        return np.zeros(n, np.int64), [ALL]
    series = pd.Series(groups)
    if not isinstance(series.dtype, pd.CategoricalDtype):
        series = series.astype("category")
    if series.isna().any():
        raise AnalysisError("groups hold missing values; label them (e.g. '(missing)') first")
    raw = series.cat.codes.to_numpy(dtype=np.int64)
    # Used categories by counting (cheaper than remove_unused_categories' unique).
    used = np.flatnonzero(np.bincount(raw, minlength=len(series.cat.categories)))
    names = [str(name) for name in series.cat.categories[used]]
    if len(set(names)) < len(names):
        raise AnalysisError("two groups have the same name once written as text")
    order = np.argsort(np.asarray(names, dtype=object), kind="stable")
    # Codes renumbered so that groups come in the order of their names.
    rank = np.full(len(series.cat.categories), -1, np.int64)
    rank[used[order]] = np.arange(len(used))
    return rank[raw], [names[i] for i in order]


def _survival_table(label: str, fitter: KaplanMeierFitter) -> pd.DataFrame:
    band = fitter.confidence_interval_survival_function_
    table = fitter.event_table
    return pd.DataFrame(
        {
            "group": label,
            "timeline": fitter.survival_function_.index.to_numpy(dtype=float),
            "survival": fitter.survival_function_.iloc[:, 0].to_numpy(dtype=float),
            "ci_lower": band.iloc[:, 0].to_numpy(dtype=float),
            "ci_upper": band.iloc[:, 1].to_numpy(dtype=float),
            "at_risk": table["at_risk"].reindex(fitter.survival_function_.index).to_numpy(),
            "churned": table["observed"].reindex(fitter.survival_function_.index).to_numpy(),
            "censored": table["censored"].reindex(fitter.survival_function_.index).to_numpy(),
        }
    )


def _median_row(label: str, fitter: KaplanMeierFitter, part: pd.DataFrame) -> dict[str, object]:
    median = float(fitter.median_survival_time_)
    bounds = median_survival_times(fitter.confidence_interval_survival_function_)
    reached = bool(np.isfinite(median))
    return {
        "group": label,
        "accounts": int(part["n"].sum()),
        "churned": int((part["n"] * part["event"]).sum()),
        "median_days": median if reached else np.nan,
        "ci_lower": float(bounds.iloc[0, 0]) if reached else np.nan,
        "ci_upper": float(bounds.iloc[0, 1]) if reached else np.nan,
        "median_reached": reached,
        "followed_days": float(part["duration"].max()),
    }


def _retention_rows(
    label: str, fitter: KaplanMeierFitter, days: Sequence[int], followed: float
) -> list[tuple[str, int, float, float, float]]:
    band = fitter.confidence_interval_survival_function_
    rows = []
    for day in days:
        if day > followed:
            # Past the longest duration the curve is not estimated, whatever
            # value lifelines would carry forward.
            rows.append((label, int(day), np.nan, np.nan, np.nan))
            continue
        value = float(fitter.survival_function_at_times(day).iloc[0])
        at = band.loc[band.index <= day].iloc[-1]
        rows.append((label, int(day), value, float(at.iloc[0]), float(at.iloc[1])))
    return rows


def _logrank(collapsed: pd.DataFrame) -> LogRankResult:
    overall = multivariate_logrank_test(
        collapsed["duration"], collapsed["group"], collapsed["event"], weights=collapsed["n"]
    )
    parts = {str(name): part for name, part in collapsed.groupby("group", sort=True)}
    pairs = []
    for first, second in itertools.combinations(parts, 2):
        a, b = parts[first], parts[second]
        found = logrank_test(
            a["duration"],
            b["duration"],
            a["event"],
            b["event"],
            weights_A=a["n"],
            weights_B=b["n"],
        )
        pairs.append((first, second, float(found.test_statistic), float(found.p_value)))
    return LogRankResult(
        statistic=float(overall.test_statistic),
        p_value=float(overall.p_value),
        degrees_of_freedom=int(overall.degrees_of_freedom),
        pairwise=pd.DataFrame(pairs, columns=["group_a", "group_b", "statistic", "p_value"]),
    )
