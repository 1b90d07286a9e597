"""Preset ``ravenstack``: the RavenStack multi-table SaaS export (Rivalytics)."""

from __future__ import annotations

from pathlib import Path

from churnwatch.config import SourceSpec
from churnwatch.ingest.presets._preset import file_path, make_source

__all__ = ["ravenstack_sources"]


def ravenstack_sources(data_dir: Path, *, prefix: str = "ravenstack_") -> list[SourceSpec]:
    """Map the five RavenStack tables onto accounts, subscriptions and events.

    Parameters
    ----------
    data_dir : Path
        Folder holding the files.
    prefix : str
        Common start of the file names.

    Returns
    -------
    list of SourceSpec
        ``ravenstack_accounts``, ``ravenstack_subscriptions``,
        ``ravenstack_feature_usage``, ``ravenstack_support_tickets`` and
        ``ravenstack_churn_events``.

    Notes
    -----
    Expected files (``ravenstack_`` + name):

    - ``accounts.csv``: ``account_id, account_name, industry, country,
      signup_date, referral_source, plan_tier, seats, is_trial, churn_flag``
    - ``subscriptions.csv``: ``subscription_id, account_id, start_date,
      end_date, plan_tier, seats, mrr_amount, arr_amount, is_trial,
      upgrade_flag, downgrade_flag, churn_flag, billing_frequency,
      auto_renew_flag``
    - ``feature_usage.csv``: ``usage_id, subscription_id, usage_date,
      feature_name, usage_count, usage_duration_secs, error_count,
      is_beta_feature``
    - ``support_tickets.csv``: ``ticket_id, account_id, submitted_at,
      closed_at, resolution_time_hours, priority, first_response_time_minutes,
      satisfaction_score, escalation_flag``
    - ``churn_events.csv``: ``churn_event_id, account_id, churn_date,
      reason_code, refund_amount_usd, preceding_upgrade_flag,
      preceding_downgrade_flag, is_reactivation, feedback_text``

    Mapping:

    ====================================  ==========================================
    ``accounts``                          ``account_id``; ``account_name`` → ``name``;
                                          ``country`` → ``region``; ``signup_date``
                                          → ``created_at``; ``referral_source``;
                                          ``plan_tier`` → ``plan``; ``churn_flag``
                                          → ``churned``; ``{industry, seats,
                                          is_trial}`` → ``attributes``
    ``subscriptions``                     ``subscription_id``, ``account_id``,
                                          ``start_date`` / ``end_date``,
                                          ``plan_tier`` → ``plan``, ``seats`` →
                                          ``quantity``, ``mrr_amount`` → ``mrr``,
                                          ``churn_flag`` → ``status`` (canceled /
                                          active), ``billing_frequency`` →
                                          ``billing_period_months`` (1 / 12), the
                                          rest → ``attributes``
    ``events`` ``"feature_use"``          ``usage_id``; the account looked up by
                                          ``subscription_id`` in the loaded
                                          subscriptions; ``usage_date``;
                                          ``usage_count`` → ``value``;
                                          ``usage_duration_secs`` →
                                          ``duration_s``; ``{feature_name,
                                          error_count, is_beta_feature,
                                          subscription_id}`` → ``properties``
    ``events`` ``"support_ticket"``       ``ticket_id``, ``account_id``,
                                          ``submitted_at``, ``satisfaction_score``
                                          → ``value`` (empty for 825 tickets), the
                                          rest (priority, times, escalation) →
                                          ``properties``
    ``events`` ``"churn"``                ``churn_event_id``, ``account_id``,
                                          ``churn_date``, ``{reason_code,
                                          refund_amount_usd, feedback_text,
                                          is_reactivation, preceding_*}`` →
                                          ``properties``
    ====================================  ==========================================

    The tables disagree with each other; row checks quarantine what does not
    fit one row (an unknown account or subscription, a bad value, a
    duplicate), the rest loads as stated and is for analysis to weigh. In the
    published files every row passes its checks, while: 277 of the 390
    accounts flagged not churned have churn events (465 events); 1,077 of
    2,000 tickets predate their account's signup; 19,142 of 25,000 usage rows
    predate their subscription's start; and 21 usage ids name two different
    usage rows each (both load: they differ in account, date or counts).

    Examples
    --------
    >>> len(ravenstack_sources(Path("ravenstack")))
    5
    """

    def path(name: str) -> str:
        return file_path(data_dir, f"{prefix}{name}.csv")

    accounts = make_source(
        "ravenstack_accounts",
        "accounts",
        path("accounts"),
        {
            "account_id": "account_id",
            "name": "account_name",
            "region": "country",
            "created_at": "signup_date",
            "referral_source": "referral_source",
            "plan": "plan_tier",
            "churned": "churn_flag",
            "attributes": {"json_columns": ["industry", "seats", "is_trial"]},
        },
    )
    subscriptions = make_source(
        "ravenstack_subscriptions",
        "subscriptions",
        path("subscriptions"),
        {
            "subscription_id": "subscription_id",
            "account_id": "account_id",
            "started_at": "start_date",
            "ended_at": "end_date",
            "plan": "plan_tier",
            "quantity": "seats",
            "mrr": "mrr_amount",
            "status": {
                "source": "churn_flag",
                "values": {"True": "canceled", "False": "active"},
            },
            "billing_period_months": {
                "source": "billing_frequency",
                "values": {"monthly": 1, "quarterly": 3, "annual": 12, "yearly": 12},
            },
            "attributes": {"json_columns": "*"},
        },
    )
    usage = make_source(
        "ravenstack_feature_usage",
        "events",
        path("feature_usage"),
        {
            "event_id": "usage_id",
            "account_id": {
                "source": "subscription_id",
                "lookup": {"table": "subscriptions", "on": "subscription_id"},
            },
            "event_time": "usage_date",
            "event_type": {"value": "feature_use"},
            "value": "usage_count",
            "duration_s": "usage_duration_secs",
            "properties": {
                "json_columns": [
                    "feature_name",
                    "error_count",
                    "is_beta_feature",
                    "subscription_id",
                ]
            },
        },
    )
    tickets = make_source(
        "ravenstack_support_tickets",
        "events",
        path("support_tickets"),
        {
            "event_id": "ticket_id",
            "account_id": "account_id",
            "event_time": "submitted_at",
            "event_type": {"value": "support_ticket"},
            "value": "satisfaction_score",
            "properties": {"json_columns": "*"},
        },
    )
    churn = make_source(
        "ravenstack_churn_events",
        "events",
        path("churn_events"),
        {
            "event_id": "churn_event_id",
            "account_id": "account_id",
            "event_time": "churn_date",
            "event_type": {"value": "churn"},
            "properties": {"json_columns": "*"},
        },
    )
    return [accounts, subscriptions, usage, tickets, churn]
