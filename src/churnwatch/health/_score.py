"""The health score of a frame of accounts: components to points, points to a tier."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd

from churnwatch._health_settings import DEFAULT_COMPONENTS, HealthComponent
from churnwatch.errors import AnalysisError

__all__ = [
    "HEALTH_TIERS",
    "HealthScores",
    "component_points",
    "health_tier",
    "score_health",
]

#: Lower bounds of the tiers on the 0-100 score, healthiest first.
HEALTH_TIERS: tuple[tuple[str, float], ...] = (
    ("Thriving", 80.0),
    ("Healthy", 60.0),
    ("At-risk", 40.0),
    ("Critical", 0.0),
)

_FloatArray = npt.NDArray[np.float64]


@dataclass
class HealthScores:
    """Health scores of a frame of accounts.

    Attributes
    ----------
    scores : pandas.DataFrame
        ``account_id`` (and ``cutoff`` when the frame had one), ``health_score``
        (0-100, NaN when every component is missing), ``health_tier``, then
        one ``points_<metric>`` column per component (0-100 or NaN).
    components : tuple of HealthComponent
        The components used.
    notes : list of str
        What was left out and why (a default component whose table is absent).
    """

    scores: pd.DataFrame
    components: tuple[HealthComponent, ...]
    notes: list[str] = field(default_factory=list)

    def tier_counts(self) -> pd.DataFrame:
        """Accounts per tier, healthiest first: ``tier, accounts, share``.

        Examples
        --------
        >>> frame = pd.DataFrame({"account_id": ["a", "b"], "m": [0.9, 0.1]})
        >>> scored = score_health(frame, [HealthComponent("m", "higher_is_better", bad=0,
        ...                                               good=1)])
        >>> scored.tier_counts()["accounts"].tolist()
        [1, 0, 0, 1]
        """
        counts = self.scores["health_tier"].value_counts()
        tiers = [name for name, _ in HEALTH_TIERS]
        rows = [(t, int(counts.get(t, 0))) for t in tiers]
        total = max(1, sum(n for _, n in rows))
        return pd.DataFrame(
            {
                "tier": [t for t, _ in rows],
                "accounts": [n for _, n in rows],
                "share": [n / total for _, n in rows],
            }
        )


def health_tier(score: float) -> str | None:
    """The tier of a 0-100 score: Thriving 80-100, Healthy 60-79, At-risk 40-59, Critical.

    A score belongs to the first tier whose lower bound it reaches, so 80 is
    Thriving and 79.99 Healthy. NaN has no tier.

    Examples
    --------
    >>> health_tier(80), health_tier(79.99), health_tier(40), health_tier(0)
    ('Thriving', 'Healthy', 'At-risk', 'Critical')
    """
    if math.isnan(score):
        return None
    if not 0.0 <= score <= 100.0:
        raise AnalysisError(f"a health score lies in [0, 100]; got {score!r}")
    for name, bound in HEALTH_TIERS:
        if score >= bound:
            return name
    return HEALTH_TIERS[-1][0]


def _tiers(score: _FloatArray) -> npt.NDArray[np.object_]:
    bounds = np.array([b for _, b in HEALTH_TIERS])
    names = np.array([n for n, _ in HEALTH_TIERS] + [None], dtype=object)
    # The first tier whose lower bound the score reaches; NaN reaches none.
    reached = score[:, None] >= bounds[None, :]
    index = np.where(reached.any(axis=1), np.argmax(reached, axis=1), len(HEALTH_TIERS))
    found: npt.NDArray[np.object_] = names[index]
    return found


def _percentile_points(values: _FloatArray, higher_is_better: bool) -> _FloatArray:
    """Mid-rank percentile of each value among the finite values, 0-100.

    ``100 * (below + equal / 2) / n``: tied accounts share one value, the
    result does not depend on row order, and a lone account scores 50.
    """
    points = np.full(values.shape, np.nan)
    known = np.isfinite(values)
    seen = np.sort(values[known])
    if seen.size == 0:
        return points
    below = np.searchsorted(seen, values[known], side="left")
    upto = np.searchsorted(seen, values[known], side="right")
    rank = 100.0 * (below + (upto - below) / 2.0) / seen.size
    points[known] = rank if higher_is_better else 100.0 - rank
    return points


def component_points(
    component: HealthComponent,
    values: npt.ArrayLike,
    groups: npt.ArrayLike | None = None,
) -> _FloatArray:
    """Points (0-100) a component gives each value; NaN where it is missing and skipped.

    Parameters
    ----------
    component : HealthComponent
        How the metric maps to points.
    values : array-like of float
        The metric (NaN or None where missing).
    groups : array-like, optional
        Percentile components rank each value within its group (the cutoff),
        so that accounts are compared with their contemporaries.

    Examples
    --------
    >>> recency = HealthComponent("days_since_last_event", "lower_is_better", bad=30, good=3)
    >>> component_points(recency, [0, 3, 16.5, 30, 90, None]).tolist()
    [100.0, 100.0, 50.0, 0.0, 0.0, nan]
    >>> frequency = HealthComponent("events_30d", "higher_is_better")
    >>> component_points(frequency, [0, 5, 5, 10]).tolist()
    [12.5, 50.0, 50.0, 87.5]
    """
    metric = np.asarray(pd.to_numeric(pd.Series(values, dtype=object)), dtype=float)
    higher = component.direction == "higher_is_better"
    if component.bad is not None and component.good is not None:
        span = component.good - component.bad
        # + 0.0 turns the -0.0 of a value exactly at bad (lower is better) into 0.0.
        points = np.clip((metric - component.bad) / span, 0.0, 1.0) * 100.0 + 0.0
    elif groups is None:
        points = _percentile_points(metric, higher)
    else:
        points = np.full(metric.shape, np.nan)
        keys = pd.Series(groups).to_numpy()
        for key in pd.unique(keys):
            rows = keys == key
            points[rows] = _percentile_points(metric[rows], higher)
    missing = ~np.isfinite(metric)
    if component.missing == "worst":
        points[missing] = 0.0
    elif component.missing == "best":
        points[missing] = 100.0
    return points


def score_health(
    frame: pd.DataFrame,
    components: Sequence[HealthComponent] | None = None,
) -> HealthScores:
    """Score each row of a feature frame from 0 (critical) to 100 (thriving).

    Each component maps its metric to points (see :class:`HealthComponent`);
    the score is the weighted mean of the points, weights normalised to sum
    to 1. **Missing values**: a component whose value is missing and whose
    policy is ``skip`` is left out of that row, and the row's other weights
    are renormalised; a row with no component left has a NaN score and no
    tier. Scores are rounded to 6 decimals, so that a score meant to be 80
    is not 79.99999999 by floating point, and then tiered by
    :data:`HEALTH_TIERS`.

    Parameters
    ----------
    frame : pandas.DataFrame
        ``account_id``, optionally ``cutoff`` (percentiles are taken per
        cutoff), and the metric columns.
    components : sequence of HealthComponent, optional
        The signals. Default: :data:`DEFAULT_COMPONENTS`, of which those
        whose metric is not in the frame (no payments table, no support
        events) are left out with a note.

    Returns
    -------
    HealthScores

    Raises
    ------
    AnalysisError
        If a component given names a metric that is not in the frame, two
        components read the same metric, or no default metric is present.

    Examples
    --------
    >>> frame = pd.DataFrame({"account_id": ["a", "b"], "days_since_last_event": [3.0, 30.0],
    ...                       "support_contacts_90d": [0, 3]})
    >>> components = [
    ...     HealthComponent("days_since_last_event", "lower_is_better", 3, bad=30, good=3),
    ...     HealthComponent("support_contacts_90d", "lower_is_better", 1, bad=3, good=0),
    ... ]
    >>> result = score_health(frame, components)
    >>> result.scores[["account_id", "health_score", "health_tier"]]
      account_id  health_score health_tier
    0          a         100.0    Thriving
    1          b           0.0    Critical
    """
    notes: list[str] = []
    if "account_id" not in frame.columns:
        raise AnalysisError("the frame needs an account_id column to score health")
    if components is None:
        chosen = [c for c in DEFAULT_COMPONENTS if c.metric in frame.columns]
        for c in DEFAULT_COMPONENTS:
            if c.metric not in frame.columns:
                notes.append(
                    f"{c.label} ({c.metric}) left out: the data has no such feature "
                    "(its table is empty or absent); its weight goes to the others"
                )
        if not chosen:
            raise AnalysisError(
                "none of the default health metrics is in the frame "
                f"({', '.join(c.metric for c in DEFAULT_COMPONENTS)}); declare "
                "[[health.components]] over the features the data has"
            )
    else:
        chosen = list(components)
        if not chosen:
            raise AnalysisError("the health score needs at least one component")
        absent = [c.metric for c in chosen if c.metric not in frame.columns]
        if absent:
            raise AnalysisError(
                f"health component metric(s) {', '.join(absent)} not in the features; "
                f"known: {', '.join(sorted(str(c) for c in frame.columns))}"
            )
    metrics = [c.metric for c in chosen]
    doubles = sorted({m for m in metrics if metrics.count(m) > 1})
    if doubles:
        raise AnalysisError(f"two health components read the same metric: {', '.join(doubles)}")
    groups = frame["cutoff"].to_numpy() if "cutoff" in frame.columns else None
    points = np.column_stack(
        [component_points(c, frame[c.metric].to_numpy(), groups) for c in chosen]
    )
    weights = np.array([c.weight for c in chosen], dtype=float)
    present = np.isfinite(points)
    weight_present = present @ weights
    with np.errstate(invalid="ignore", divide="ignore"):
        score = np.where(present, points, 0.0) @ weights / weight_present
    score = np.round(np.where(weight_present > 0, score, np.nan), 6).astype(np.float64)
    keys = ["account_id", *(["cutoff"] if "cutoff" in frame.columns else [])]
    scores = frame.loc[:, keys].reset_index(drop=True)
    scores["health_score"] = score
    scores["health_tier"] = _tiers(score)
    for c, column in zip(chosen, points.T, strict=True):
        scores[f"points_{c.metric}"] = column
    return HealthScores(scores=scores, components=tuple(chosen), notes=notes)
