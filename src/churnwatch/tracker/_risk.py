"""Risk alerts: accounts whose calibrated churn risk crosses a threshold, or jumps.

An account still enabled can be about to leave: when its churn probability
(from ``risk_scores``, calibrated, so 0.6 means 60%) crosses the threshold
upwards since the previous scoring — or is above it at its first scoring —
or rises by at least the jump, a *risk episode* opens in the churn ledger
(source ``risk``, product ``''``, dated at the scoring time) and follows the
same cadence as a churn: a ``risk_alert`` first, then the follow-ups, each
once, unless the episode is in the holdout or answered.

An account that already has an open episode (or a churn of its own) gets no
second one; a risk episode a CSM has answered may be replaced by a new
crossing. A real churn of the account later supersedes its risk episode.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlglot import exp

from churnwatch.config import Settings
from churnwatch.errors import TrackerError
from churnwatch.store import CHURN_LEDGER, OUTBOX, TRACKER_ACCOUNTS, TRANSITIONS, Store
from churnwatch.tracker._cadence import in_holdout
from churnwatch.tracker._diff import episode_id, midnight
from churnwatch.tracker._track import TrackResult, _channels, close_answered, queue_cadence
from churnwatch.warehouse import Warehouse

__all__ = ["latest_risk_scores", "track_risk"]

_REASONS = ("reason_1", "reason_2", "reason_3")


def _by_account(table: pa.Table | None, what: str) -> dict[str, dict[str, Any]]:
    if table is None:
        return {}
    for column in ("account_id", "score"):
        if column not in table.column_names:
            raise TrackerError(
                f"the {what} risk scores have no {column} column; expected rows of risk_scores "
                "(account_id, score, optional scored_at, mrr, revenue_at_risk, reason_1..3)"
            )
    rows = table.to_pylist()
    accounts = [r["account_id"] for r in rows]
    if len(set(accounts)) != len(accounts):
        raise TrackerError(
            f"the {what} risk scores hold an account twice; give one scoring of one target"
        )
    return {str(r["account_id"]): r for r in rows if r["score"] is not None}


def track_risk(
    store: Store,
    scores: pa.Table,
    *,
    date: dt.date,
    settings: Settings | None = None,
    previous: pa.Table | None = None,
    threshold: float | None = None,
    jump: float | None = None,
    now: dt.datetime | None = None,
) -> TrackResult:
    """Open risk episodes for accounts whose churn risk crossed the threshold or jumped.

    Parameters
    ----------
    store : Store
        The operational store.
    scores : pyarrow.Table
        One scoring of one churn target: ``account_id``, ``score`` (the
        calibrated probability); optional ``scored_at``, ``mrr``,
        ``revenue_at_risk`` and ``reason_1..3``.
    date : date
        The day the alerts belong to (their transitions' date).
    settings : Settings, optional
        ``[tracker]`` thresholds, cadence, holdout and channels.
    previous : pyarrow.Table, optional
        The scoring before, to tell a crossing or a jump; without it every
        account at or above the threshold has crossed.
    threshold, jump : float, optional
        Override ``[tracker] risk_threshold_probability`` and
        ``risk_jump_probability``.
    now : datetime, optional
        The run's time; the clock's if omitted.

    Returns
    -------
    TrackResult
        ``counts`` holds ``risk_alert`` (episodes opened) and ``queued``.

    Examples
    --------
    >>> import pyarrow as pa
    >>> from churnwatch.store import open_store
    >>> store = open_store("sqlite://")
    >>> before = pa.table({"account_id": ["a", "b", "c"], "score": [0.2, 0.6, 0.1]})
    >>> today = pa.table({"account_id": ["a", "b", "c"], "score": [0.7, 0.7, 0.35]})
    >>> track_risk(store, today, previous=before, date=dt.date(2024, 3, 1)).counts
    {'queued': 2, 'risk_alert': 2}
    """
    settings = settings or Settings()
    tracker = settings.tracker
    threshold = tracker.risk_threshold_probability if threshold is None else threshold
    jump = tracker.risk_jump_probability if jump is None else jump
    now = now or dt.datetime.now(dt.UTC)
    current = _by_account(scores, "current")
    before = _by_account(previous, "previous")
    crossed = []
    for account, row in sorted(current.items()):
        score = float(row["score"])
        prior = before.get(account)
        old = None if prior is None else float(prior["score"])
        crossing = score >= threshold and (old is None or old < threshold)
        jumped = jump > 0 and old is not None and score - old >= jump
        if crossing or jumped:
            crossed.append(row)
    with store.transaction() as connection:
        close_answered(connection, date, now)
        opened = _open_episodes(connection, crossed, date, settings, now)
        queued, sent = queue_cadence(
            connection,
            opened,
            day=date,
            tracker=tracker,
            channels=_channels(settings),
            now=now,
        )
        for row in opened:
            row["steps_sent"] = json.dumps(sent.get(row["episode_id"], []))
        if opened:
            connection.execute(CHURN_LEDGER.insert(), opened)
            connection.execute(
                TRANSITIONS.insert(),
                [
                    {
                        "snapshot_date": date,
                        "account_id": r["account_id"],
                        "product": r["product"],
                        "kind": "risk_alert",
                        "episode_id": r["episode_id"],
                        "revenue": r["revenue"],
                        "gmv": r["gmv"],
                        "region": r["region"],
                        "csm_id": r["csm_id"],
                        "recorded_at": now,
                    }
                    for r in opened
                ],
            )
        if queued:
            connection.execute(OUTBOX.insert(), queued)
    counts = {"queued": len(queued), "risk_alert": len(opened)}
    return TrackResult(date, len(current), counts)


def _open_episodes(
    connection: sa.Connection,
    crossed: list[dict[str, Any]],
    day: dt.date,
    settings: Settings,
    now: dt.datetime,
) -> list[dict[str, Any]]:
    """Ledger rows of the new risk episodes; closed risk episodes they replace are removed."""
    if not crossed:
        return []
    accounts = [str(r["account_id"]) for r in crossed]
    ledger = connection.execute(
        sa.select(
            CHURN_LEDGER.c.episode_id,
            CHURN_LEDGER.c.account_id,
            CHURN_LEDGER.c.source,
            CHURN_LEDGER.c.closed_reason,
        ).where(CHURN_LEDGER.c.account_id.in_(accounts))
    ).all()
    blocked = {r.account_id for r in ledger if r.closed_reason is None or r.source != "risk"}
    replaced = [r.episode_id for r in ledger if r.account_id not in blocked]
    if replaced:
        connection.execute(sa.delete(CHURN_LEDGER).where(CHURN_LEDGER.c.episode_id.in_(replaced)))
    known: dict[str, Any] = {}
    for found in connection.execute(
        sa.select(TRACKER_ACCOUNTS)
        .where(TRACKER_ACCOUNTS.c.account_id.in_(accounts))
        .order_by(TRACKER_ACCOUNTS.c.account_id, TRACKER_ACCOUNTS.c.product)
    ):
        known.setdefault(found.account_id, found)
    tracker = settings.tracker
    opened = []
    for row in crossed:
        account = str(row["account_id"])
        if account in blocked:
            continue
        parent = known.get(account)
        score = float(row["score"])
        mrr = row.get("mrr")
        revenue = mrr if mrr is not None else (parent.revenue if parent is not None else None)
        at_risk = row.get("revenue_at_risk")
        if at_risk is None and revenue is not None:
            at_risk = score * revenue
        scored_at = row.get("scored_at")
        if isinstance(scored_at, dt.datetime):
            churned_at = scored_at if scored_at.tzinfo else scored_at.replace(tzinfo=dt.UTC)
        else:
            churned_at = midnight(day)
        episode = episode_id(account, "", day, "risk")
        reasons = [row[r] for r in _REASONS if row.get(r)]
        opened.append(
            {
                "episode_id": episode,
                "account_id": account,
                "product": "",
                "source": "risk",
                "churned_at": churned_at,
                "name": parent.name if parent is not None else None,
                "csm_id": parent.csm_id if parent is not None else None,
                "region": parent.region if parent is not None else None,
                "revenue": revenue,
                "gmv": parent.gmv if parent is not None else None,
                "revenue_at_risk": at_risk,
                "risk_score": score,
                "reasons": json.dumps(reasons),
                "holdout": in_holdout(episode, tracker.holdout_share, tracker.holdout_seed),
                "steps_sent": "[]",
                "closed_reason": None,
            }
        )
    del now
    return opened


def latest_risk_scores(
    warehouse: Warehouse, target: str, *, as_of: dt.date | None = None
) -> tuple[pa.Table | None, pa.Table | None]:
    """The last scoring of ``target`` in ``risk_scores`` (up to ``as_of``) and the one before.

    Returns ``(None, None)`` when the warehouse has no such scores.
    """
    if not warehouse.table_exists("risk_scores"):
        return None, None
    rows = warehouse.query(
        exp.select("*")
        .from_("risk_scores")
        .where(exp.column("target", quoted=True).eq(exp.Literal.string(target)))
    )
    moments: list[dt.datetime] = sorted(
        {t for t in rows.column("scored_at").to_pylist() if t is not None}
    )
    if as_of is not None:
        end = midnight(as_of) + dt.timedelta(days=1)
        moments = [t for t in moments if (t if t.tzinfo else t.replace(tzinfo=dt.UTC)) < end]
    if not moments:
        return None, None
    kind = rows.schema.field("scored_at").type
    tables = [
        rows.filter(pc.equal(rows.column("scored_at"), pa.scalar(moment, kind)))
        for moment in moments[-2:]
    ]
    if len(tables) == 1:
        return tables[0], None
    return tables[1], tables[0]
