"""Preset ``fightchurn``: the tables of the *Fighting Churn with Data* simulator."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
from pathlib import Path
from typing import Any

from churnwatch.config import SourceSpec
from churnwatch.ingest.presets._preset import file_path, make_source

__all__ = ["SOCIALNET7_OBSERVATION_END", "detect_observation_end", "fightchurn_sources"]

#: The simulator's end date of the ``socialnet7`` data set: renewals after it
#: were never simulated, so later subscription ends are censoring, not churn.
SOCIALNET7_OBSERVATION_END = "2020-06-01"


def _event_file(data_dir: Path) -> str:
    for name in ("event.csv", "event.csv.gz"):
        if Path(data_dir, name).is_file():
            return name
    return "event.csv"


def fightchurn_sources(data_dir: Path) -> list[SourceSpec]:
    """Map fightchurn-style ``account``, ``subscription`` and ``event`` tables.

    These are the tables of the ``fightchurn`` package's ChurnSim simulator
    and of the book's schema (the ``socialnet7`` data set is one).

    Parameters
    ----------
    data_dir : Path
        Folder holding the three files.

    Returns
    -------
    list of SourceSpec
        ``account``, ``subscription`` and ``event``.

    Notes
    -----
    Expected files:

    - ``account.csv``: ``id, channel, date_of_birth, country``
    - ``subscription.csv``: ``account_id, product, start_date, end_date, mrr,
      quantity, units, bill_period_months, discount``
    - ``event.csv`` or ``event.csv.gz``: ``account_id, event_time, event_type,
      user_id, event_value``

    Mapping:

    =======================================  ===============================
    ``accounts.account_id``                  ``id``
    ``accounts.referral_source``             ``channel``
    ``accounts.region``                      ``country``
    ``accounts.attributes``                  ``{date_of_birth}``
    ``accounts.created_at``                  (none: filled with the first
                                             subscription start at load)
    ``subscriptions.account_id``             ``account_id``
    ``subscriptions.plan``                   ``product``
    ``subscriptions.started_at / ended_at``  ``start_date`` / ``end_date``
    ``subscriptions.mrr``                    ``mrr``
    ``subscriptions.quantity``               ``quantity``
    ``subscriptions.billing_period_months``  ``bill_period_months``
    ``subscriptions.discount``               ``discount``
    ``subscriptions.attributes``             ``{units}``
    ``events.*``                             ``account_id``, ``event_time``,
                                             ``event_type``, ``user_id``,
                                             ``event_value`` as ``value``
    =======================================  ===============================

    The simulator writes an exact duplicate event now and then; those are
    quarantined as ``duplicate_in_load``.

    **Observation end.** The simulation stops on a date the files do not
    state: subscriptions and events run on past it (to 2020-07-01 in
    socialnet7, whose simulation ends 2020-06-01), and taking the last date
    in the files as the end would mark most accounts as churning in the final
    month. The preset's ``data`` holds socialnet7's end, and
    :func:`detect_observation_end` reads it off other simulations as the
    latest subscription ``start_date`` (the last renewal the simulator
    wrote), which is what :func:`churnwatch.ingest.presets.preset_data` uses
    when the folder holds ``subscription.csv``.

    Examples
    --------
    >>> [s.table for s in fightchurn_sources(Path("socialnet7"))]
    ['accounts', 'subscriptions', 'events']
    """
    accounts = make_source(
        "account",
        "accounts",
        file_path(data_dir, "account.csv"),
        {
            "account_id": "id",
            "referral_source": "channel",
            "region": "country",
            "attributes": {"json_columns": ["date_of_birth"]},
        },
    )
    subscriptions = make_source(
        "subscription",
        "subscriptions",
        file_path(data_dir, "subscription.csv"),
        {
            "account_id": "account_id",
            "plan": "product",
            "started_at": "start_date",
            "ended_at": "end_date",
            "mrr": "mrr",
            "quantity": "quantity",
            "billing_period_months": "bill_period_months",
            "discount": "discount",
            "attributes": {"json_columns": ["units"]},
        },
    )
    events = make_source(
        "event",
        "events",
        file_path(data_dir, _event_file(data_dir)),
        {
            "account_id": "account_id",
            "event_time": "event_time",
            "event_type": "event_type",
            "user_id": "user_id",
            "value": "event_value",
        },
    )
    return [accounts, subscriptions, events]


def detect_observation_end(data_dir: Path) -> dict[str, Any]:
    """Read the simulation's end off ``subscription.csv``: its latest ``start_date``.

    Returns
    -------
    dict
        ``{"observation_end": "YYYY-MM-DD"}``, or ``{}`` when the folder has no
        readable ``subscription.csv`` (or ``.csv.gz``) with dates.
    """
    for name in ("subscription.csv", "subscription.csv.gz"):
        path = Path(data_dir, name)
        if path.is_file():
            break
    else:
        return {}
    latest: dt.date | None = None
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                try:
                    start = dt.date.fromisoformat((row.get("start_date") or "")[:10])
                except ValueError:
                    continue
                latest = start if latest is None or start > latest else latest
    except (OSError, csv.Error, UnicodeDecodeError):
        return {}
    return {} if latest is None else {"observation_end": latest.isoformat()}
