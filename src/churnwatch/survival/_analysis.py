"""One call from a warehouse to survival curves: :func:`analyze_survival`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from churnwatch.config import Settings
from churnwatch.survival._durations import (
    Basis,
    Durations,
    Periods,
    derive_durations,
    with_attribute,
)
from churnwatch.survival._figures import survival_figure
from churnwatch.survival._kaplan_meier import RETENTION_DAYS, SurvivalCurves, kaplan_meier
from churnwatch.warehouse import Warehouse

__all__ = ["SurvivalAnalysis", "analyze_survival"]


@dataclass(frozen=True)
class SurvivalAnalysis:
    """Survival of a project's accounts, overall and by an attribute.

    Attributes
    ----------
    durations : Durations
        The durations and events, with the grouping attribute when asked.
    overall : SurvivalCurves
        One curve for every account.
    by_group : SurvivalCurves or None
        One curve per value of the attribute, with the log-rank test.
    """

    durations: Durations
    overall: SurvivalCurves
    by_group: SurvivalCurves | None

    @property
    def curves(self) -> SurvivalCurves:
        """The grouped curves when there are groups, else the overall one."""
        return self.by_group if self.by_group is not None else self.overall

    @property
    def medians(self) -> pd.DataFrame:
        """Median lifetime overall (group ``all``) then per group."""
        parts = [self.overall.medians]
        if self.by_group is not None:
            parts.append(self.by_group.medians)
        return pd.concat(parts, ignore_index=True)

    @property
    def retention(self) -> pd.DataFrame:
        """Retention at each day overall (group ``all``) then per group."""
        parts = [self.overall.retention]
        if self.by_group is not None:
            parts.append(self.by_group.retention)
        return pd.concat(parts, ignore_index=True)

    def figure(self, *, title: str | None = None) -> go.Figure:
        """The Kaplan-Meier figure (per group, with the log-rank p-value in the title)."""
        return survival_figure(self.curves, title=title)

    def describe(self) -> str:
        """The analysis in plain words: what churn is, medians, retention, the test."""
        found = self.durations
        frame = found.frame
        lines = [f"Churn: {found.definition} ({found.basis} basis)."]
        if found.observation_end is not None:
            end = found.observation_end
            lines.append(f"Observation end: {end.at:%Y-%m-%d} ({end.source}: {end.reason}).")
        lines.append(
            f"{len(frame):,} accounts, {int(frame['event_observed'].sum()):,} churned, "
            f"{int((frame['event_observed'] == 0).sum()):,} censored."
        )
        for curves in (self.overall, self.by_group):
            if curves is None:
                continue
            for group in curves.groups:
                label = "all accounts" if curves is self.overall else f"{curves.by} = {group}"
                rows = curves.retention.loc[curves.retention["group"] == group]
                kept = ", ".join(
                    f"day {day}: " + ("n/a" if np.isnan(value) else f"{value:.1%}")
                    for day, value in zip(
                        rows["day"].tolist(), rows["retention"].to_numpy(float), strict=True
                    )
                )
                lines.append(
                    f"{label}: median lifetime {curves.median_text(group)}; retention {kept}."
                )
        if self.by_group is not None and self.by_group.logrank is not None:
            lines.append(self.by_group.logrank.describe() + ".")
        return "\n".join(lines)


def analyze_survival(
    warehouse: Warehouse,
    settings: Settings,
    *,
    by: str | None = None,
    groups: Mapping[str, object] | pd.Series | None = None,
    basis: Basis | None = None,
    periods: Periods = "first",
    alpha: float = 0.05,
    retention_days: Sequence[int] = RETENTION_DAYS,
) -> SurvivalAnalysis:
    """Kaplan-Meier survival of a project's accounts, overall and by an attribute.

    Parameters
    ----------
    warehouse : Warehouse
        Holds the canonical tables.
    settings : Settings
        ``[churn]`` (definition, grace and inactivity days) and
        ``[data] observation_end`` define durations and events.
    by : str, optional
        An account attribute: ``plan``, ``region``, ``platform``,
        ``referral_source`` ... or a key of ``accounts.attributes``; or the
        name of ``groups``.
    groups : mapping or pandas.Series, optional
        A group per account id computed elsewhere (segments, health tiers),
        shown under the name ``by`` (default ``"group"``).
    basis : {"subscription", "activity", "snapshot"}, optional
        How durations are derived (see :func:`derive_durations`).
    periods : {"first", "last", "all"}
        Subscription basis: which active periods of each account.
    alpha : float
        Bands and intervals are ``1 - alpha``.
    retention_days : sequence of int
        Days at which retention is reported.

    Returns
    -------
    SurvivalAnalysis

    Raises
    ------
    AnalysisError
        If the attribute is unknown, the basis has no data, or no churn was observed.

    Examples
    --------
    >>> import pyarrow as pa
    >>> from churnwatch.warehouse import connect
    >>> with connect("duckdb:///:memory:") as wh:
    ...     wh.ensure_schema()
    ...     wh.append("accounts", pa.table({"account_id": ["a", "b", "c", "d"],
    ...         "plan": ["pro", "pro", "free", "free"], "tenure_days": [30.0, 90.0, 10.0, 20.0],
    ...         "churned": [False, False, True, True]}))
    ...     found = analyze_survival(wh, Settings(), by="plan")
    >>> found.medians[["group", "median_days"]].to_numpy().tolist()
    [['all', 20.0], ['free', 10.0], ['pro', nan]]
    """
    durations = derive_durations(warehouse, settings, basis=basis, periods=periods)
    if groups is not None:
        by = by or "group"
    if by is not None:
        durations = with_attribute(warehouse, durations, by, groups)
    overall = kaplan_meier(
        durations.durations,
        durations.event_observed,
        alpha=alpha,
        retention_days=retention_days,
    )
    by_group = None
    if by is not None:
        by_group = kaplan_meier(
            durations.durations,
            durations.event_observed,
            groups=durations.frame[by],
            alpha=alpha,
            retention_days=retention_days,
            by=by,
        )
    return SurvivalAnalysis(durations, overall, by_group)
