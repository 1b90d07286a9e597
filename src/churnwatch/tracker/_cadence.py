"""The follow-up cadence of an at-risk episode, the holdout draw and outbox rows.

An episode is notified in steps (by default ``first`` on the day it opens,
``second`` 2 to 3 days after, ``final`` after more than 3). On each tracked
day the step whose window holds the episode's days since churn is queued,
once: the step's name goes into the episode's ``steps_sent`` and its outbox
row carries the idempotency key ``episode|step|channel``, unique in the
table. A step whose whole window fell between two tracked days (a gap in the
snapshots) is *not* sent late: a "day 2" reminder on day 6 would say the
wrong thing, and the next step covers it. The sequence stops when the
episode closes (re-adoption, or a CSM's answer).

Episodes in the random holdout are never notified. Membership is a hash of
the episode id (and a salt), not a random draw, so a re-run puts the same
episodes in it and no state is needed to remember it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from churnwatch._tracker_settings import CadenceStepEntry

__all__ = ["CadenceStep", "cadence_from_settings", "due_step", "in_holdout", "outbox_rows"]


@dataclass(frozen=True)
class CadenceStep:
    """One step of the follow-up sequence.

    Parameters
    ----------
    name : str
        The step's name (``first``, ``second``, ``final``).
    min_days, max_days : int
        Window of days since churn in which the step is due; ``max_days`` None
        means no end.
    kind : str
        The outbox kind: ``churn`` or ``risk_alert`` for the opening step (by
        the episode's source), ``followup`` in between, ``final`` for the last.
    """

    name: str
    min_days: int
    max_days: int | None
    kind: str

    def holds(self, days: int) -> bool:
        """Whether ``days`` since churn fall in this step's window."""
        return days >= self.min_days and (self.max_days is None or days <= self.max_days)


def cadence_from_settings(entries: Sequence[CadenceStepEntry]) -> tuple[CadenceStep, ...]:
    """Name each configured step's outbox kind by its place in the sequence.

    Examples
    --------
    >>> from churnwatch._tracker_settings import DEFAULT_CADENCE
    >>> [(s.name, s.kind) for s in cadence_from_settings(DEFAULT_CADENCE)]
    [('first', 'opening'), ('second', 'followup'), ('final', 'final')]
    """
    steps = []
    for index, entry in enumerate(entries):
        if index == 0:
            kind = "opening"  # 'churn' or 'risk_alert', by the episode's source
        elif index == len(entries) - 1:
            kind = "final"
        else:
            kind = "followup"
        steps.append(CadenceStep(entry.name, entry.min_days, entry.max_days, kind))
    return tuple(steps)


def due_step(cadence: Sequence[CadenceStep], days: int, sent: Sequence[str]) -> CadenceStep | None:
    """The step due ``days`` after churn, unless already sent.

    Examples
    --------
    >>> from churnwatch._tracker_settings import DEFAULT_CADENCE
    >>> steps = cadence_from_settings(DEFAULT_CADENCE)
    >>> due_step(steps, 2, ["first"]).name
    'second'
    >>> due_step(steps, 2, ["first", "second"]) is None
    True
    >>> due_step(steps, 9, ["first"]).name  # 'second' was skipped: not sent late
    'final'
    """
    for step in cadence:
        if step.holds(days):
            return None if step.name in sent else step
    return None


def in_holdout(episode_id: str, share: float, seed: str) -> bool:
    """Whether an episode is in the random holdout (never notified).

    A hash of the salt and the episode id, read as a number in [0, 1), is
    compared with ``share``: the same episode always gets the same answer.

    Examples
    --------
    >>> in_holdout("a1||2024-03-01|snapshot", 0.0, "churnwatch")
    False
    >>> ids = [f"a{i}||2024-03-01|snapshot" for i in range(10_000)]
    >>> round(sum(in_holdout(e, 0.1, "churnwatch") for e in ids) / len(ids), 2)
    0.1
    """
    if share <= 0.0:
        return False
    digest = hashlib.sha256(f"{seed}|{episode_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64 < share


def _clean(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def outbox_rows(
    episode: dict[str, Any],
    step: CadenceStep,
    *,
    day: dt.date,
    channels: Sequence[str],
    now: dt.datetime,
) -> list[dict[str, Any]]:
    """The outbox rows of one step of one episode: one per channel.

    ``episode`` is a ``churn_ledger`` row (as a mapping). The payload holds
    everything a message template needs.
    """
    churned_at: dt.datetime = episode["churned_at"]
    kind = step.kind
    if kind == "opening":
        kind = "risk_alert" if episode["source"] == "risk" else "churn"
    reasons = json.loads(episode["reasons"]) if episode.get("reasons") else []
    payload = {
        "episode_id": episode["episode_id"],
        "account_id": episode["account_id"],
        "product": episode["product"],
        "source": episode["source"],
        "step": step.name,
        "kind": kind,
        "snapshot_date": day.isoformat(),
        "churned_at": churned_at.isoformat(),
        "days_since_churn": (day - churned_at.date()).days,
        "name": _clean(episode.get("name")),
        "csm_id": _clean(episode.get("csm_id")),
        "region": _clean(episode.get("region")),
        "revenue": _clean(episode.get("revenue")),
        "gmv": _clean(episode.get("gmv")),
        "revenue_at_risk": _clean(episode.get("revenue_at_risk")),
        "risk_score": _clean(episode.get("risk_score")),
        "reasons": reasons,
    }
    text = json.dumps(payload, sort_keys=True)
    return [
        {
            "idempotency_key": f"{episode['episode_id']}|{step.name}|{channel}",
            "created_at": now,
            "channel": channel,
            "recipient_csm_id": payload["csm_id"],
            "kind": kind,
            "step": step.name,
            "account_id": episode["account_id"],
            "product": episode["product"],
            "episode_id": episode["episode_id"],
            "payload": text,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "last_error": None,
            "sent_at": None,
            "provider_ref": None,
        }
        for channel in channels
    ]
