"""Notifications: the outbox dispatcher, its channels, the CSM directory and the digest.

The tracker queues notifications in the store's ``outbox`` table in the same
transaction as the state change that calls for them; :func:`dispatch`
delivers them through a :class:`Channel` per outbox channel name — Slack
(:class:`SlackChannel`), e-mail (:class:`EmailChannel`), a signed webhook
(:class:`WebhookChannel`), a JSON-lines file or the console for dry runs —
with retries, exponential backoff honouring ``Retry-After``, leases that
recover rows a crash left half-sent, and idempotency keys passed to the
providers that can drop a repeat. :class:`CsmDirectory` finds each CSM's
e-mail and Slack id, and lists those no channel can reach.

Examples
--------
>>> import datetime as dt, io, json
>>> from churnwatch.store import OUTBOX, open_store
>>> store = open_store("sqlite://")
>>> now = dt.datetime(2024, 3, 1, 9, tzinfo=dt.UTC)
>>> with store.transaction() as connection:
...     _ = connection.execute(OUTBOX.insert().values(
...         idempotency_key="a1||2024-03-01|snapshot|first|file", created_at=now,
...         channel="file", recipient_csm_id="c1", kind="churn", step="first",
...         payload=json.dumps({"name": "Acme", "revenue_at_risk": 1200}),
...         status="pending", attempts=0, next_attempt_at=now))
>>> out = io.StringIO()
>>> report = dispatch(store, {"file": ConsoleChannel(out)}, now=now)
>>> report.sent, out.getvalue().splitlines()[0]
(1, 'Account turned the product off — Acme')
>>> dispatch(store, {"file": ConsoleChannel(out)}, now=now).sent  # nothing twice
0
"""

from __future__ import annotations

from churnwatch.notify._channels import (
    Channel,
    ConsoleChannel,
    EmailChannel,
    FileChannel,
    WebhookChannel,
    message_id_for,
    sign_webhook,
    verify_webhook_signature,
)
from churnwatch.notify._digest import digest_key, queue_digests
from churnwatch.notify._directory import CsmContact, CsmDirectory, UnmappedCsm
from churnwatch.notify._dispatch import (
    DispatchReport,
    RetryPolicy,
    cancel_answered,
    claim_due,
    dispatch,
    due_notifications,
    record_failure,
    record_sent,
    release,
)
from churnwatch.notify._message import (
    KIND_TITLES,
    Notification,
    format_amount,
    render_subject,
    render_text,
)
from churnwatch.notify._slack import (
    OUTCOME_ACTIONS,
    SlackChannel,
    slack_blocks,
    verify_slack_signature,
)

__all__ = [
    "KIND_TITLES",
    "OUTCOME_ACTIONS",
    "Channel",
    "ConsoleChannel",
    "CsmContact",
    "CsmDirectory",
    "DispatchReport",
    "EmailChannel",
    "FileChannel",
    "Notification",
    "RetryPolicy",
    "SlackChannel",
    "UnmappedCsm",
    "WebhookChannel",
    "cancel_answered",
    "claim_due",
    "digest_key",
    "dispatch",
    "due_notifications",
    "format_amount",
    "message_id_for",
    "queue_digests",
    "record_failure",
    "record_sent",
    "release",
    "render_subject",
    "render_text",
    "sign_webhook",
    "slack_blocks",
    "verify_slack_signature",
    "verify_webhook_signature",
]
