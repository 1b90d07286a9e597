"""Why simulated accounts churn: the drivers, their effect sizes, and the hazard.

Each live account has a daily churn hazard (the probability per day of
cancelling, given it has not yet). It is a product of multiplicative effects,
so every driver has a hazard ratio:

``hazard = base * exp(static) * (1 + early_tenure) * (1 + a * failed_90d) * (1 + b * negative_90d)``

where ``static`` adds the log-effects of plan, referral channel, CSM, billing
period, the account's activity level and its (unobserved) satisfaction. The
effects are real causes in the generative process, so a churn model trained
on the output should rank them among its top reasons; region and platform
have no effect at all and serve as negative controls.

On top of the hazard, two mechanisms leave the traces analysts look for:
usage fades over the 30-45 days before a voluntary cancellation, and a
charge whose three retries all fail ends the subscription (involuntary
churn).

:data:`HAZARD` holds the numbers; :data:`DRIVERS` describes them in words, for
people and for tests of the churn model.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from math import exp
from typing import Literal

__all__ = ["DRIVERS", "HAZARD", "NEUTRAL_SIGNALS", "ChurnDriver", "HazardModel"]


@dataclass(frozen=True)
class ChurnDriver:
    """One cause of churn built into the simulator.

    Parameters
    ----------
    name : str
        Short identifier, such as ``"failed_payments_90d"``.
    description : str
        What the simulator does, with the size of the effect.
    signal : str
        The observable quantity a model can learn the driver from.
    direction : {"higher", "lower"}
        Whether higher or lower values of ``signal`` go with more churn. For a
        yes/no signal, ``"higher"`` means that "yes" churns more.
    features : tuple of str
        Glob patterns of the default features (see
        :func:`churnwatch.features.default_features`) that observe the
        driver: what a model's reasons should name when it learned it.

    Examples
    --------
    >>> from churnwatch.simulate import DRIVERS
    >>> {d.name: d.direction for d in DRIVERS}["failed_payments_90d"]
    'higher'
    """

    name: str
    description: str
    signal: str
    direction: Literal["higher", "lower"]
    features: tuple[str, ...] = ()

    def observed_by(self, feature: str) -> bool:
        """Whether ``feature`` (a default feature name) observes this driver.

        Examples
        --------
        >>> from churnwatch.simulate import DRIVERS
        >>> [d.name for d in DRIVERS if d.observed_by("days_since_failed_payment")]
        ['failed_payments_90d']
        """
        return any(fnmatchcase(feature, pattern) for pattern in self.features)


@dataclass(frozen=True)
class HazardModel:
    """The numbers of the generative churn process (see the module docstring).

    Log-effects are added to the log of the daily hazard; ``*_boost`` values
    multiply it by ``1 + boost * count``.
    """

    base_per_day: float = 0.0006
    #: Log-effect by plan code (basic, pro, enterprise).
    plan_log: tuple[float, float, float] = (0.5, 0.0, -0.7)
    #: Log-effect by referral code (organic, paid_ads, partner, referral, outbound_sales).
    referral_log: tuple[float, float, float, float, float] = (0.0, 0.6, 0.0, 0.0, 0.0)
    csm_log: float = -0.6
    annual_log: float = -0.5
    #: Log-effect per standard deviation of the account's log activity level.
    activity_log_per_sd: float = -0.6
    #: Log-effect per standard deviation of latent satisfaction (never observed directly).
    satisfaction_log_per_sd: float = -0.3
    #: New accounts: hazard times ``1 + boost * exp(-tenure_days / early_tenure_days)``.
    early_tenure_boost: float = 2.5
    early_tenure_days: float = 60.0
    failed_payment_boost: float = 0.8
    failed_payment_window_days: float = 90.0
    negative_call_boost: float = 1.0
    negative_call_window_days: float = 90.0
    #: Usage over the last ``fade_days`` before a cancellation falls linearly to this share.
    fade_floor: float = 0.1
    fade_days: tuple[float, float] = (30.0, 45.0)
    #: Logit of a support call being negative: intercept, per SD of satisfaction, recent failure.
    negative_call_logit: tuple[float, float, float] = (-1.4, -1.2, 1.0)
    #: Chance of coming back after a cancellation / after a lapse, and the gap in days.
    return_after_cancel: float = 0.12
    return_after_lapse: float = 0.35
    cancel_return_gap_days: tuple[float, float] = (30.0, 180.0)
    lapse_return_gap_days: tuple[float, float] = (7.0, 60.0)
    winback_discount: float = 0.2


HAZARD = HazardModel()


def _ratio(log_effect: float) -> str:
    return f"x{exp(log_effect):.2f}"


DRIVERS: tuple[ChurnDriver, ...] = (
    ChurnDriver(
        "sessions_30d",
        "Each account has a lognormal activity level; every standard deviation less activity "
        f"multiplies the churn hazard by {_ratio(-HAZARD.activity_log_per_sd)}. Usage also fades "
        f"linearly to {HAZARD.fade_floor:.0%} over the {HAZARD.fade_days[0]:.0f}-"
        f"{HAZARD.fade_days[1]:.0f} days before a voluntary cancellation.",
        "sessions in the last 30 days",
        "lower",
        # Activity level and the fade before cancelling show in every usage feature.
        (
            "events_*",
            "login_*",
            "session_*",
            "feature_use_*",
            "report_viewed_*",
            "message_sent_*",
            "days_since_last_event",
            "days_since_login",
            "days_since_session",
            "days_since_feature_use",
            "days_since_report_viewed",
            "days_since_message_sent",
            "active_*",
            "weekly_consistency_*",
            "first_week_events",
            "duration_s_*",
            "value_*",
        ),
    ),
    ChurnDriver(
        "failed_payments_90d",
        f"With n failed charge attempts in the previous {HAZARD.failed_payment_window_days:.0f} "
        f"days the hazard is multiplied by 1 + {HAZARD.failed_payment_boost} x n; when all three "
        "retries of a charge fail the subscription ends (involuntary churn).",
        "failed payments in the last 90 days",
        "higher",
        ("failed_payments_*", "payment_success_rate_*", "days_since_failed_payment"),
    ),
    ChurnDriver(
        "negative_support_calls_90d",
        f"With n negative support calls in the previous {HAZARD.negative_call_window_days:.0f} "
        f"days the hazard is multiplied by 1 + {HAZARD.negative_call_boost} x n. Calls are "
        "negative more often for dissatisfied accounts and after a failed payment.",
        "negative support calls in the last 90 days",
        "higher",
        ("negative_support_*", "support_contacts_*"),
    ),
    ChurnDriver(
        "plan_basic",
        f"Basic accounts churn at {_ratio(HAZARD.plan_log[0])} the hazard of pro accounts.",
        "plan = basic",
        "higher",
        ("plan", "current_plan", "current_mrr"),
    ),
    ChurnDriver(
        "plan_enterprise",
        f"Enterprise accounts churn at {_ratio(HAZARD.plan_log[2])} the hazard of pro accounts.",
        "plan = enterprise",
        "lower",
        ("plan", "current_plan", "current_mrr"),
    ),
    ChurnDriver(
        "referral_paid_ads",
        f"Accounts acquired through paid ads churn at {_ratio(HAZARD.referral_log[1])} the hazard "
        "of the other channels.",
        "referral_source = paid_ads",
        "higher",
        ("referral_source",),
    ),
    ChurnDriver(
        "early_tenure",
        f"New accounts churn at up to {1 + HAZARD.early_tenure_boost:.1f}x the hazard; the excess "
        f"decays with a time constant of {HAZARD.early_tenure_days:.0f} days of tenure.",
        "tenure in days",
        "lower",
        ("tenure_days", "first_week_events"),
    ),
    ChurnDriver(
        "has_csm",
        f"Accounts with a customer-success manager churn at {_ratio(HAZARD.csm_log)} the hazard.",
        "csm_id is set",
        "lower",
        ("has_csm",),
    ),
    ChurnDriver(
        "annual_billing",
        f"Yearly-billed subscriptions churn at {_ratio(HAZARD.annual_log)} the hazard of "
        "monthly ones.",
        "billing_period_months = 12",
        "lower",
        ("billing_period_months",),
    ),
)
"""The causes of churn built into the simulator (see :class:`ChurnDriver`)."""

#: Attributes that have no effect on churn: a model that ranks them high has overfitted.
NEUTRAL_SIGNALS: tuple[str, ...] = ("region", "platform")
