"""The daily digest: one message per CSM listing their accounts still at risk.

Optional (``[notify] digest``): the cadence already messages a CSM at churn
and at each follow-up; the digest is the morning summary of every open
episode they own, largest revenue at risk first. It is queued in the outbox
like any notification, under the key ``digest|<csm_id>|<date>|<channel>``, so
queueing the same day twice queues nothing new, and the dispatcher delivers it
with the same retries. Episodes in the holdout are left out: a holdout
account must receive no outreach at all, or the impact measure is biased.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import sqlalchemy as sa

from churnwatch.store import CHURN_LEDGER, OUTBOX, Store

__all__ = ["digest_key", "queue_digests"]

_ACCOUNT_COLUMNS = (
    "episode_id",
    "account_id",
    "product",
    "name",
    "region",
    "revenue",
    "gmv",
    "revenue_at_risk",
    "risk_score",
)


def digest_key(csm_id: str, date: dt.date, channel: str) -> str:
    """The outbox idempotency key of a CSM's digest for a day.

    Examples
    --------
    >>> import datetime as dt
    >>> digest_key("c1", dt.date(2024, 3, 1), "slack")
    'digest|c1|2024-03-01|slack'
    """
    return f"digest|{csm_id}|{date.isoformat()}|{channel}"


def _account(row: sa.RowMapping, date: dt.date) -> dict[str, Any]:
    account = {column: row[column] for column in _ACCOUNT_COLUMNS}
    churned_at: dt.datetime = row["churned_at"]
    account["churned_at"] = churned_at.isoformat()
    account["days_since_churn"] = (date - churned_at.date()).days
    try:
        reasons = json.loads(row["reasons"]) if row["reasons"] else []
    except ValueError:
        reasons = [str(row["reasons"])]
    account["reasons"] = reasons if isinstance(reasons, list) else [str(reasons)]
    return account


def queue_digests(
    store: Store, *, date: dt.date, channel: str, now: dt.datetime | None = None
) -> int:
    """Queue today's digest for every CSM with open, notified episodes.

    Parameters
    ----------
    store : Store
        The operational store (reads ``churn_ledger``, writes ``outbox``).
    date : date
        The day of the digest (days since churn are counted to it).
    channel : str
        The outbox channel the digests go through.
    now : datetime, optional
        When they are queued (timezone-aware); by default the clock.

    Returns
    -------
    int
        Digests queued (0 when the day's were already queued).

    Examples
    --------
    >>> import datetime as dt
    >>> from churnwatch.store import open_store
    >>> queue_digests(open_store("sqlite://"), date=dt.date(2024, 3, 1), channel="file")
    0
    """
    created = now or dt.datetime.now(dt.UTC)
    with store.transaction() as connection:
        rows = (
            connection.execute(
                sa.select(CHURN_LEDGER)
                .where(
                    CHURN_LEDGER.c.closed_reason.is_(None),
                    CHURN_LEDGER.c.holdout == sa.false(),
                    CHURN_LEDGER.c.csm_id.is_not(None),
                )
                .order_by(CHURN_LEDGER.c.csm_id, CHURN_LEDGER.c.episode_id)
            )
            .mappings()
            .all()
        )
        by_csm: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            by_csm.setdefault(str(row["csm_id"]), []).append(_account(row, date))
        keys = {csm: digest_key(csm, date, channel) for csm in by_csm}
        existing = set(
            connection.execute(
                sa.select(OUTBOX.c.idempotency_key).where(
                    OUTBOX.c.idempotency_key.in_(sorted(keys.values()))
                )
            ).scalars()
        )
        new_rows = []
        for csm, accounts in by_csm.items():
            if keys[csm] in existing:
                continue
            accounts.sort(key=lambda a: (-(a["revenue_at_risk"] or 0.0), a["episode_id"]))
            payload = {"csm_id": csm, "date": date.isoformat(), "accounts": accounts}
            new_rows.append(
                {
                    "idempotency_key": keys[csm],
                    "created_at": created,
                    "channel": channel,
                    "recipient_csm_id": csm,
                    "kind": "digest",
                    "step": "digest",
                    "account_id": None,
                    "product": None,
                    "episode_id": None,
                    "payload": json.dumps(payload, default=str),
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": created,
                }
            )
        if new_rows:
            connection.execute(OUTBOX.insert(), new_rows)
    return len(new_rows)
