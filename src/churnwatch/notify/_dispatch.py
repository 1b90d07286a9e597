"""The dispatcher: deliver the outbox, none lost, none sent twice.

The tracker writes notifications into the store's ``outbox`` table in the
same transaction as the state change that calls for them; the dispatcher
delivers them. Each row moves through::

    pending ──claim──▶ sending ──▶ sent
       ▲                  │
       └── failed ◀───────┤  (retry at next_attempt_at: backoff, Retry-After)
                          └──▶ dead  (permanent error, or max attempts)

**Claiming** is one short transaction: a due row (pending or failed with
``next_attempt_at`` passed) becomes ``sending`` with ``attempts + 1`` and
``next_attempt_at = now + lease``. The update is conditional on the status
and attempt count read, so two dispatchers never claim the same row: the
second's update matches nothing. Delivery happens outside any transaction.

**A crash** between claiming and recording leaves the row in ``sending``;
once its lease has passed it is due again and the next run claims it. The
attempt count doubles as a fencing token: a result is recorded only if the
row is still on the attempt that was delivered, so a slow dispatcher whose
lease expired cannot overwrite the newer attempt's result. Since attempts
are counted at the claim, a message that crashes the dispatcher every time
still ends ``dead`` after ``max_attempts``.

**Duplicates.** A crash after the provider accepted a message but before
``sent`` was recorded sends it again on the next claim — delivery is at
least once. The providers that can drop a repeat receive the idempotency
key (webhook ``Idempotency-Key``, e-mail ``Message-ID``); for Slack the
window is the single update after ``chat.postMessage`` returns.

**Backoff.** After failed attempt *n* the row waits
``min(backoff_s · 2^(n-1), max_backoff_s)``, or the provider's
``Retry-After`` if that is longer. A channel that answered ``Retry-After``
gets nothing more in the same run: the rest of its batch is put back
untried (:func:`release`, the claim not counted as an attempt), due when the
provider said.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable, Collection, Mapping
from typing import Any

import sqlalchemy as sa

from churnwatch.errors import DeliveryError
from churnwatch.notify._channels import Channel
from churnwatch.notify._message import Notification
from churnwatch.store import OUTBOX, OUTCOMES, Store

__all__ = [
    "DispatchReport",
    "RetryPolicy",
    "cancel_answered",
    "claim_due",
    "dispatch",
    "due_notifications",
    "record_failure",
    "record_sent",
    "release",
]

# Statuses a due row can have; 'sending' is due again only once its lease has passed.
_DUE = ("pending", "failed", "sending")
_ERROR_CHARS = 2000


# Built once: these run once per row, and building a SQLAlchemy statement costs
# more than executing it on SQLite. Each matches a row only in the state it was
# read in (id, status, attempts), which is what makes claims and results safe
# against a second dispatcher.
_AS_READ = sa.and_(
    OUTBOX.c.id == sa.bindparam("b_id"),
    OUTBOX.c.status == sa.bindparam("b_status"),
    OUTBOX.c.attempts == sa.bindparam("b_attempts"),
)
_WHEN = OUTBOX.c.next_attempt_at.type
_CLAIM = (
    OUTBOX.update()
    .where(_AS_READ)
    .values(
        status="sending",
        attempts=sa.bindparam("b_new_attempts"),
        next_attempt_at=sa.bindparam("b_when", type_=_WHEN),
    )
)
_SENT = (
    OUTBOX.update()
    .where(_AS_READ)
    .values(
        status="sent",
        sent_at=sa.bindparam("b_when", type_=_WHEN),
        provider_ref=sa.bindparam("b_ref"),
        last_error=None,
    )
)
_DEAD = OUTBOX.update().where(_AS_READ).values(status="dead", last_error=sa.bindparam("b_error"))
_RETRY = (
    OUTBOX.update()
    .where(_AS_READ)
    .values(
        status=sa.bindparam("b_new_status"),
        attempts=sa.bindparam("b_new_attempts"),
        last_error=sa.bindparam("b_error"),
        next_attempt_at=sa.bindparam("b_when", type_=_WHEN),
    )
)


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """How often, and how patiently, a notification is retried.

    Parameters
    ----------
    max_attempts : int
        Attempts before a row is marked dead (the claim that a crash
        interrupted counts as one).
    backoff_s : float
        Wait after the first failed attempt; doubles after each further one.
    max_backoff_s : float
        Longest wait between attempts.
    lease_s : float
        How long a claimed row is reserved for its dispatcher; a row still in
        'sending' after that is taken to be abandoned by a crash and retried.
        It must exceed the time a batch takes to deliver.
    batch_rows : int
        Rows claimed per transaction.

    Examples
    --------
    >>> policy = RetryPolicy(backoff_s=60, max_backoff_s=600)
    >>> [policy.delay_s(n) for n in (1, 2, 3, 4, 5)]
    [60.0, 120.0, 240.0, 480.0, 600.0]
    >>> policy.delay_s(1, retry_after_s=90)
    90.0
    """

    max_attempts: int = 8
    backoff_s: float = 60.0
    max_backoff_s: float = 6 * 3600.0
    lease_s: float = 300.0
    batch_rows: int = 10

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if min(self.backoff_s, self.max_backoff_s, self.lease_s) < 0:
            raise ValueError("backoff_s, max_backoff_s and lease_s cannot be negative")
        if self.batch_rows < 1:
            raise ValueError(f"batch_rows must be at least 1, got {self.batch_rows}")

    def delay_s(self, attempt: int, retry_after_s: float | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1 for the first)."""
        # The exponent is capped first: 2.0 ** 2000 would overflow.
        exponent = min(max(attempt - 1, 0), 60)
        delay = min(self.backoff_s * 2.0**exponent, self.max_backoff_s)
        return float(max(delay, retry_after_s or 0.0))


@dataclasses.dataclass
class DispatchReport:
    """What one dispatch run did.

    Attributes
    ----------
    claimed : int
        Rows claimed for delivery.
    sent : int
        Delivered and recorded as sent.
    retrying : int
        Failed and scheduled for a later attempt.
    dead : int
        Given up: a permanent error or the last attempt failed.
    lost_lease : int
        Delivered or failed after the row's lease had passed and another
        dispatcher had claimed it; this run's result was not recorded.
    deferred : int
        Put back untried because their channel asked to wait (Retry-After).
    cancelled : int
        Not sent because the CSM had answered for the episode since they
        were queued (see :func:`cancel_answered`).
    errors : list of str
        The first errors met, for the operator.
    """

    claimed: int = 0
    sent: int = 0
    retrying: int = 0
    dead: int = 0
    lost_lease: int = 0
    deferred: int = 0
    cancelled: int = 0
    errors: list[str] = dataclasses.field(default_factory=list)

    def note_error(self, note: Notification, message: str) -> None:
        """Keep the first few errors."""
        if len(self.errors) < 20:
            self.errors.append(f"{note.idempotency_key}: {message}")


def _notification(row: sa.RowMapping) -> Notification:
    try:
        payload = json.loads(row["payload"]) if row["payload"] else {}
    except ValueError:
        payload = {"unreadable_payload": str(row["payload"])[:200]}
    if not isinstance(payload, dict):
        payload = {"value": payload}
    return Notification(
        outbox_id=int(row["id"]),
        idempotency_key=str(row["idempotency_key"]),
        channel=str(row["channel"]),
        kind=str(row["kind"]),
        step=str(row["step"]),
        recipient_csm_id=row["recipient_csm_id"],
        payload=payload,
        account_id=row["account_id"],
        product=row["product"],
        episode_id=row["episode_id"],
        attempt=int(row["attempts"]),
    )


def _due(now: dt.datetime, channels: Collection[str] | None) -> sa.ColumnElement[bool]:
    condition = sa.and_(OUTBOX.c.status.in_(_DUE), OUTBOX.c.next_attempt_at <= now)
    if channels is not None:
        condition = sa.and_(condition, OUTBOX.c.channel.in_(sorted(channels)))
    return condition


def cancel_answered(store: Store) -> int:
    """Cancel the unsent messages of episodes a CSM has answered.

    An answer (won, lost, not useful) stops an episode's cadence; the
    tracker queues no further step, and this drops the steps already queued
    but not yet sent — say a follow-up queued this morning for an account the
    CSM marked won at noon. A row being sent (its lease running) is left to
    finish: it may already be with the provider.

    Returns
    -------
    int
        Messages cancelled.
    """
    answered = (
        sa.select(OUTCOMES.c.episode_id)
        .where(OUTCOMES.c.episode_id == OUTBOX.c.episode_id)
        .exists()
    )
    with store.transaction() as connection:
        done = connection.execute(
            OUTBOX.update()
            .where(
                OUTBOX.c.status.in_(("pending", "failed")),
                OUTBOX.c.episode_id.is_not(None),
                answered,
            )
            .values(status="cancelled", last_error="the CSM answered before it was sent")
        )
    return int(done.rowcount)


def due_notifications(
    store: Store,
    *,
    now: dt.datetime,
    channels: Collection[str] | None = None,
    limit: int | None = None,
) -> list[Notification]:
    """The notifications a dispatch at ``now`` would deliver, changing nothing (dry run).

    Examples
    --------
    >>> import datetime as dt
    >>> from churnwatch.store import open_store
    >>> due_notifications(open_store("sqlite://"), now=dt.datetime.now(dt.UTC))
    []
    """
    query = (
        sa.select(OUTBOX)
        .where(_due(now, channels))
        .order_by(OUTBOX.c.next_attempt_at, OUTBOX.c.id)
        .limit(limit)
    )
    with store.engine.connect() as connection:
        rows = connection.execute(query).mappings().all()
    return [_notification(row) for row in rows]


def claim_due(
    store: Store,
    *,
    now: dt.datetime,
    policy: RetryPolicy,
    channels: Collection[str] | None = None,
    limit: int | None = None,
) -> list[Notification]:
    """Claim up to ``policy.batch_rows`` due rows for delivery, in one short transaction.

    A row abandoned in 'sending' that has already used every attempt is marked
    dead instead of being claimed again.

    Returns
    -------
    list of Notification
        The claimed messages, each with its attempt number.
    """
    batch = policy.batch_rows if limit is None else min(limit, policy.batch_rows)
    lease_end = now + dt.timedelta(seconds=policy.lease_s)
    claimed: list[int] = []
    with store.transaction() as connection:
        candidates = connection.execute(
            sa.select(OUTBOX.c.id, OUTBOX.c.status, OUTBOX.c.attempts)
            .where(_due(now, channels))
            .order_by(OUTBOX.c.next_attempt_at, OUTBOX.c.id)
            .limit(batch)
        ).all()
        for row_id, status, attempts in candidates:
            as_read = {"b_id": row_id, "b_status": status, "b_attempts": attempts}
            if attempts >= policy.max_attempts:
                error = (
                    f"gave up after {attempts} attempts; the last one did not finish "
                    "(the dispatcher stopped before recording it)"
                )
                connection.execute(_DEAD, as_read | {"b_error": error})
                continue
            done = connection.execute(
                _CLAIM, as_read | {"b_new_attempts": attempts + 1, "b_when": lease_end}
            )
            if done.rowcount == 1:
                claimed.append(int(row_id))
        if not claimed:
            return []
        rows = (
            connection.execute(
                sa.select(OUTBOX).where(OUTBOX.c.id.in_(claimed)).order_by(OUTBOX.c.id)
            )
            .mappings()
            .all()
        )
    return [_notification(row) for row in rows]


def _ours(note: Notification) -> dict[str, Any]:
    # The row as this dispatcher left it when claiming: still 'sending', on this attempt.
    return {"b_id": note.outbox_id, "b_status": "sending", "b_attempts": note.attempt}


def record_sent(
    store: Store, note: Notification, *, now: dt.datetime, provider_ref: str | None
) -> bool:
    """Mark a claimed row sent; False when its lease was lost to another dispatcher."""
    ref = None if provider_ref is None else provider_ref[:255]
    with store.transaction() as connection:
        done = connection.execute(_SENT, _ours(note) | {"b_when": now, "b_ref": ref})
    return bool(done.rowcount == 1)


def record_failure(
    store: Store,
    note: Notification,
    *,
    now: dt.datetime,
    error: DeliveryError,
    policy: RetryPolicy,
) -> str | None:
    """Mark a claimed row failed (retried later) or dead.

    Returns
    -------
    str or None
        The new status, 'failed' or 'dead'; None when the lease was lost.
    """
    message = str(error)[:_ERROR_CHARS]
    if error.permanent or note.attempt >= policy.max_attempts:
        status, statement = "dead", _DEAD
        values: dict[str, Any] = {"b_error": message}
    else:
        delay = policy.delay_s(note.attempt, error.retry_after_s)
        status, statement = "failed", _RETRY
        values = {
            "b_new_status": status,
            "b_new_attempts": note.attempt,
            "b_error": message,
            "b_when": now + dt.timedelta(seconds=delay),
        }
    with store.transaction() as connection:
        done = connection.execute(statement, _ours(note) | values)
    return status if done.rowcount == 1 else None


def dispatch(
    store: Store,
    channels: Mapping[str, Channel],
    *,
    now: dt.datetime | None = None,
    policy: RetryPolicy | None = None,
    limit: int | None = None,
) -> DispatchReport:
    """Deliver every due notification of the outbox through its channel.

    Parameters
    ----------
    store : Store
        The operational store holding the outbox.
    channels : mapping of str to Channel
        The channel of each outbox ``channel`` name; rows of other channels
        are left waiting.
    now : datetime, optional
        The time of the run (timezone-aware); by default the clock, read
        afresh for each claim and record.
    policy : RetryPolicy, optional
        Attempts, backoff, lease and batch size.
    limit : int, optional
        Deliver at most this many rows.

    Returns
    -------
    DispatchReport
        Counts of what was sent, retried and given up.

    Examples
    --------
    >>> import datetime as dt, io
    >>> from churnwatch.store import open_store
    >>> from churnwatch.notify import ConsoleChannel
    >>> dispatch(open_store("sqlite://"), {"file": ConsoleChannel(io.StringIO())}).sent
    0
    """
    policy = policy or RetryPolicy()
    if now is not None and now.tzinfo is None:
        raise ValueError(f"now must carry a time zone, got {now}")
    fixed = now

    def clock() -> dt.datetime:
        return fixed if fixed is not None else dt.datetime.now(dt.UTC)

    report = DispatchReport(cancelled=cancel_answered(store))
    # A channel that answered Retry-After (Slack's rate limit is per workspace) is
    # left alone for the rest of the run: its later rows are put back untried.
    paused: dict[str, dt.datetime] = {}
    while limit is None or report.claimed < limit:
        remaining = None if limit is None else limit - report.claimed
        active = [name for name in channels if paused.get(name, clock()) <= clock()]
        if not active:
            break
        batch = claim_due(store, now=clock(), policy=policy, channels=active, limit=remaining)
        if not batch:
            break
        report.claimed += len(batch)
        for note in batch:
            until = paused.get(note.channel)
            if until is not None and until > clock():
                if release(store, note, until=until):
                    report.deferred += 1
                continue
            retry_at = _deliver_one(store, channels[note.channel], note, clock, policy, report)
            if retry_at is not None:
                paused[note.channel] = retry_at
    return report


def release(store: Store, note: Notification, *, until: dt.datetime) -> bool:
    """Put a claimed row back untried, due again at ``until`` (its claim is not counted).

    Returns
    -------
    bool
        False when the lease was lost meanwhile.
    """
    values = {
        "b_new_status": "failed" if note.attempt > 1 else "pending",
        "b_new_attempts": note.attempt - 1,
        "b_error": f"put back untried until {until.isoformat()}: the channel asked to wait",
        "b_when": until,
    }
    with store.transaction() as connection:
        done = connection.execute(_RETRY, _ours(note) | values)
    return bool(done.rowcount == 1)


def _deliver_one(
    store: Store,
    channel: Channel,
    note: Notification,
    clock: Callable[[], dt.datetime],
    policy: RetryPolicy,
    report: DispatchReport,
) -> dt.datetime | None:
    """Deliver and record one row; return when its channel asked to be left alone until."""
    try:
        provider_ref = channel.deliver(note)
    except DeliveryError as exc:
        error = exc
    except Exception as exc:
        # A fault in a template or a client library must not stop the batch; it
        # is retried like any failure and ends dead if it persists.
        error = DeliveryError(f"{type(exc).__name__}: {exc}")
    else:
        if record_sent(store, note, now=clock(), provider_ref=provider_ref):
            report.sent += 1
        else:
            report.lost_lease += 1
        return None
    now = clock()
    status = record_failure(store, note, now=now, error=error, policy=policy)
    report.note_error(note, str(error))
    if status == "dead":
        report.dead += 1
    elif status == "failed":
        report.retrying += 1
    else:
        report.lost_lease += 1
    if error.retry_after_s is None:
        return None
    return now + dt.timedelta(seconds=error.retry_after_s)
