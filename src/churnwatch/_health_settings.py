"""Health score components as data, and the project file's ``[health]`` section.

Kept apart from :mod:`churnwatch.health` because :mod:`churnwatch.config`
validates ``[[health.components]]`` with them, and the health package reads
labels and features, which read the config: importing it from the config
would be circular. This module needs nothing but pydantic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from pydantic import Field, model_validator

from churnwatch._settings_base import _Model
from churnwatch.errors import AnalysisError

__all__ = [
    "DEFAULT_COMPONENTS",
    "Direction",
    "HealthComponent",
    "HealthComponentEntry",
    "HealthSettings",
    "MissingPolicy",
]

Direction = Literal["higher_is_better", "lower_is_better"]
MissingPolicy = Literal["skip", "worst", "best"]


@dataclass(frozen=True)
class HealthComponent:
    """One signal of the health score: a metric, its direction, weight and scale.

    Parameters
    ----------
    metric : str
        The feature column read (such as ``days_since_last_event``).
    direction : {"higher_is_better", "lower_is_better"}
        Which way is healthy.
    weight : float
        Relative weight, > 0; weights are normalised to sum to 1.
    bad, good : float, optional
        Piecewise-linear scale: a value at or past ``bad`` earns 0 points, at
        or past ``good`` 100, linearly in between. Give both or neither; with
        neither, points are the account's percentile among the accounts
        scored at the same cutoff (in the healthy direction).
    missing : {"skip", "worst", "best"}
        A missing value: ``skip`` leaves the component out of that account's
        score and shares its weight among the others; ``worst`` gives 0
        points, ``best`` 100.
    name : str, optional
        Shown in tables; the metric by default.

    Raises
    ------
    AnalysisError
        If the weight is not positive, only one of ``bad``/``good`` is given,
        or they are equal or point the wrong way for the direction.

    Examples
    --------
    >>> recency = HealthComponent("days_since_last_event", "lower_is_better", 0.25,
    ...                           bad=30, good=3)
    >>> recency.label, recency.scaled
    ('days_since_last_event', True)
    """

    metric: str
    direction: Direction
    weight: float = 1.0
    bad: float | None = None
    good: float | None = None
    missing: MissingPolicy = "skip"
    name: str | None = None

    def __post_init__(self) -> None:
        where = f"health component {self.label!r}"
        if not self.metric:
            raise AnalysisError("a health component needs a metric (a feature column name)")
        if self.direction not in ("higher_is_better", "lower_is_better"):
            raise AnalysisError(
                f"{where}: direction must be 'higher_is_better' or 'lower_is_better', "
                f"not {self.direction!r}"
            )
        if self.missing not in ("skip", "worst", "best"):
            raise AnalysisError(
                f"{where}: missing must be 'skip', 'worst' or 'best', not {self.missing!r}"
            )
        if not (isinstance(self.weight, int | float) and math.isfinite(self.weight)) or (
            self.weight <= 0
        ):
            raise AnalysisError(f"{where}: weight must be a number > 0, not {self.weight!r}")
        if (self.bad is None) != (self.good is None):
            raise AnalysisError(
                f"{where}: give both bad and good (a linear scale) or neither (percentiles)"
            )
        if self.bad is not None and self.good is not None:
            higher = self.direction == "higher_is_better"
            if self.good == self.bad or (self.good > self.bad) != higher:
                want = "above" if higher else "below"
                raise AnalysisError(
                    f"{where}: with {self.direction}, good ({self.good:g}) must lie {want} "
                    f"bad ({self.bad:g})"
                )

    @property
    def label(self) -> str:
        """The component's display name."""
        return self.name or self.metric

    @property
    def scaled(self) -> bool:
        """Whether points come from the ``bad``/``good`` scale (else percentiles)."""
        return self.bad is not None


#: The default health score: five signals a customer-success team reads.
#: Recency and support calls are scaled on fixed points (a month without use is
#: bad whatever the business); frequency by percentile, since what counts as
#: "often" depends on the product; the trend ratio (last 30 days against the
#: 30 before) is bad at a quarter of the earlier use and good at no decline.
DEFAULT_COMPONENTS: tuple[HealthComponent, ...] = (
    HealthComponent(
        "days_since_last_event", "lower_is_better", 0.25, bad=30, good=3, missing="worst",
        name="recency",
    ),
    HealthComponent("events_30d", "higher_is_better", 0.25, name="frequency"),
    HealthComponent(
        "events_trend_ratio_30d", "higher_is_better", 0.2, bad=0.25, good=1.0,
        name="velocity change",
    ),
    HealthComponent(
        "payment_success_rate_90d", "higher_is_better", 0.15, bad=0.5, good=1.0,
        name="payment success",
    ),
    HealthComponent(
        "support_contacts_90d", "lower_is_better", 0.15, bad=3, good=0, name="support calls"
    ),
)  # fmt: skip


class HealthComponentEntry(_Model):
    """One ``[[health.components]]`` table: a signal of the health score."""

    metric: str = Field(description="Feature column read, such as days_since_last_event.")
    direction: Direction = Field(description="higher_is_better or lower_is_better.")
    weight: float = Field(
        default=1.0, gt=0, description="Relative weight; weights are normalised to sum to 1."
    )
    bad: float | None = Field(
        default=None,
        description="Value earning 0 points (with good: linear in between); unset with good: "
        "points are the account's percentile at its cutoff.",
    )
    good: float | None = Field(default=None, description="Value earning 100 points.")
    missing: MissingPolicy = Field(
        default="skip",
        description="A missing value: skip (its weight goes to the other components), "
        "worst (0 points) or best (100).",
    )
    name: str | None = Field(default=None, description="Shown in tables; the metric if unset.")

    @model_validator(mode="after")
    def _valid(self) -> HealthComponentEntry:
        try:
            self.to_component()
        except AnalysisError as exc:
            raise ValueError(str(exc).split(": ", 1)[-1]) from None
        return self

    def to_component(self) -> HealthComponent:
        """The component this table declares.

        Examples
        --------
        >>> HealthComponentEntry(metric="events_30d", direction="higher_is_better").to_component()
        ... # doctest: +ELLIPSIS
        HealthComponent(metric='events_30d', direction='higher_is_better', weight=1.0, ...)
        """
        return HealthComponent(**self.model_dump())


class HealthSettings(_Model):
    """[health] — the customer-health score and its backtest."""

    components: list[HealthComponentEntry] = Field(
        default_factory=list,
        description="The score's signals ([[health.components]] tables); empty: the five "
        "defaults (recency, frequency, velocity change, payment success, support calls).",
    )
    model_target: str | None = Field(
        default=None,
        description="Target whose risk_scores give the model-based score 100 x (1 - P); "
        "unset: churn at [churn] horizon_days.",
    )
    backtest_cutoffs_count: int = Field(
        default=6, ge=1, description="Past cutoffs the health score is backtested at."
    )

    def resolved(self) -> tuple[HealthComponent, ...] | None:
        """The declared components, or ``None`` for the defaults."""
        return tuple(c.to_component() for c in self.components) or None
