"""The project file's ``[store]`` and ``[tracker]`` sections.

Kept apart from :mod:`churnwatch.tracker` because :mod:`churnwatch.config`
validates these sections, and the tracker reads the config: importing the
tracker from the config would be circular. This module needs only pydantic.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from churnwatch._settings_base import _Model, repeated

__all__ = ["DEFAULT_CADENCE", "CadenceStepEntry", "Channel", "StoreSettings", "TrackerSettings"]

Channel = Literal["slack", "email", "webhook", "file"]


class StoreSettings(_Model):
    """[store] — where the operational store (tracker state, outbox, outcomes) lives."""

    url: str = Field(
        default="sqlite:///churnwatch_ops.sqlite",
        description="sqlite:///FILE (relative to the project folder; WAL mode), "
        "postgresql://... or mysql://... (SQLAlchemy URLs).",
    )
    inbox_keep_days: int = Field(
        default=30,
        ge=1,
        description="Days an event posted to the API is kept in the inbox after it is "
        "drained into the warehouse; a retry of it within that time is still known as a "
        "duplicate. The daily run deletes older drained events.",
    )


class CadenceStepEntry(_Model):
    """[[tracker.cadence]] — one notification of the follow-up sequence of an at-risk episode.

    A step is queued on the first tracked day whose days since churn fall in
    ``[min_days, max_days]``; a step whose whole window passed between two
    tracked days is not sent late.
    """

    name: str = Field(
        pattern=r"^[a-z][a-z0-9_]*$", description="Step name, part of the idempotency key."
    )
    min_days: int = Field(ge=0, description="First day since churn on which the step is due.")
    max_days: int | None = Field(
        default=None,
        ge=0,
        description="Last day since churn on which it is still due; unset: no end.",
    )

    @model_validator(mode="after")
    def _ordered(self) -> CadenceStepEntry:
        if self.max_days is not None and self.max_days < self.min_days:
            raise ValueError(f"max_days ({self.max_days}) is before min_days ({self.min_days})")
        return self


DEFAULT_CADENCE = (
    CadenceStepEntry(name="first", min_days=0, max_days=1),
    CadenceStepEntry(name="second", min_days=2, max_days=3),
    CadenceStepEntry(name="final", min_days=4),
)


class TrackerSettings(_Model):
    """[tracker] — the daily adoption tracker, its follow-up cadence and risk alerts."""

    channels: list[Channel] = Field(
        default_factory=list,
        description="Channels every notification is queued for; empty: the [notify] channel.",
    )
    cadence: list[CadenceStepEntry] = Field(
        default_factory=lambda: list(DEFAULT_CADENCE),
        description="The follow-up steps of an episode, in order (see [tracker.cadence]): "
        "by default 'first' at churn, 'second' 2-3 days after, 'final' after more than 3.",
    )
    holdout_share: float = Field(
        default=0.0,
        ge=0.0,
        lt=1.0,
        description="Share of new at-risk episodes kept out of every notification (a random "
        "holdout that measures whether outreach works); 0 turns it off.",
    )
    holdout_seed: str = Field(
        default="churnwatch",
        description="Salt of the holdout draw; the same salt puts the same episodes in it.",
    )
    risk_target: str | None = Field(
        default=None,
        description="The risk_scores target alerted on (such as churn_30d); unset: "
        "churn_<[churn] horizon_days>d.",
    )
    risk_threshold_probability: float = Field(
        default=0.5,
        gt=0.0,
        le=1.0,
        description="A churn probability crossing up to this value opens a risk episode.",
    )
    risk_jump_probability: float = Field(
        default=0.2,
        ge=0.0,
        le=1.0,
        description="A rise of the churn probability by at least this much since the "
        "previous scoring opens a risk episode; 0 turns jumps off.",
    )

    @model_validator(mode="after")
    def _cadence_in_order(self) -> TrackerSettings:
        names = [step.name for step in self.cadence]
        doubles = repeated(names)
        if doubles:
            raise ValueError(f"cadence step names must be unique; repeated: {', '.join(doubles)}")
        for before, after in zip(self.cadence, self.cadence[1:], strict=False):
            if before.max_days is None or after.min_days <= before.max_days:
                raise ValueError(
                    f"cadence step {after.name!r} must start after {before.name!r} ends "
                    "(windows in order, without overlap)"
                )
        return self
