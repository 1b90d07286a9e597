"""Slack: the message a CSM sees, how it reaches them, and how Slack's answers are checked.

A message goes to the CSM's direct messages — their Slack member id from the
directory, else found by e-mail with ``users.lookupByEmail``, the DM opened
with ``conversations.open``, then ``chat.postMessage`` — or, when a channel is
configured, to that shared channel with the CSM mentioned. Lookups and opened
DMs are cached for the channel object's life: a dispatch run sends many
messages to few CSMs.

The Block Kit layout shows the account, revenue at risk, days since churn
(or the churn risk, for a risk alert), revenue, region, the top reasons, and
three buttons — *Won*, *Lost*, *Not useful* — whose ``action_id`` names the
outcome and whose ``value`` is the episode id, which the interaction endpoint
reads back after :func:`verify_slack_signature` accepts the request.

Slack errors become :class:`~churnwatch.errors.DeliveryError`: HTTP 429 with
its ``Retry-After``, 5xx and network errors are retried by the outbox; errors
that name a bad recipient (``users_not_found``, ``channel_not_found``, ...)
are permanent. The provider reference (``<channel>:<ts>``) is recorded right
after Slack accepts a message; a dispatcher killed in the instant between the
two sends it again (Slack offers no idempotency key), a window of one
database write. The key travels as the message's metadata
(``churnwatch_notification``), so such a repeat can be recognised in the
conversation's history.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from churnwatch.errors import DeliveryError
from churnwatch.notify._directory import CsmDirectory
from churnwatch.notify._message import (
    Notification,
    format_amount,
    render_subject,
)

__all__ = [
    "OUTCOME_ACTIONS",
    "SlackChannel",
    "slack_blocks",
    "verify_slack_signature",
]

# action_id -> outcome recorded; the outcomes endpoint reads these back.
OUTCOME_ACTIONS: dict[str, str] = {
    "churnwatch_outcome_won": "won",
    "churnwatch_outcome_lost": "lost",
    "churnwatch_outcome_not_useful": "not_useful",
}
_BUTTONS = (
    ("churnwatch_outcome_won", "Won", "primary"),
    ("churnwatch_outcome_lost", "Lost", "danger"),
    ("churnwatch_outcome_not_useful", "Not useful", None),
)
# Errors that no retry can fix: the recipient or the message itself is wrong.
_PERMANENT_ERRORS = frozenset(
    {
        "users_not_found",
        "user_not_found",
        "user_disabled",
        "channel_not_found",
        "is_archived",
        "not_in_channel",
        "cannot_dm_bot",
        "invalid_blocks",
        "invalid_blocks_format",
        "msg_too_long",
        "too_many_attachments",
    }
)
# Slack's limits: 50 blocks a message, 10 fields a section, 3000 characters a text.
_MAX_BLOCKS = 50
_MAX_TEXT = 3000
_MAX_HEADER = 150


def _escape(text: str) -> str:
    # Slack's mrkdwn reads &, < and > as control characters.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def slack_blocks(note: Notification, *, mention: str | None = None) -> list[dict[str, Any]]:
    """The Block Kit blocks of a message.

    Parameters
    ----------
    note : Notification
        The message.
    mention : str, optional
        A Slack member id to mention (messages to a shared channel).

    Examples
    --------
    >>> note = Notification(1, "k", "slack", "churn", "first", "c1",
    ...                     {"name": "Acme", "revenue_at_risk": 50, "reasons": ["fewer logins"]},
    ...                     episode_id="a1||2024-01-02|snapshot")
    >>> blocks = slack_blocks(note)
    >>> [b["type"] for b in blocks]
    ['header', 'section', 'section', 'context', 'actions']
    >>> [e["text"]["text"] for e in blocks[-1]["elements"]]
    ['Won', 'Lost', 'Not useful']
    >>> {e["value"] for e in blocks[-1]["elements"]}
    {'a1||2024-01-02|snapshot'}
    """
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(note.title, _MAX_HEADER)}}
    ]
    if note.kind == "digest":
        return blocks + _digest_blocks(note, mention)
    fields = [
        {"type": "mrkdwn", "text": _clip(f"*{label}*\n{_escape(text)}", 2000)}
        for label, text in note.facts()
        if not (label == "CSM" and mention)
    ][:10]
    if mention:
        fields.insert(0, {"type": "mrkdwn", "text": f"*CSM*\n<@{mention}>"})
        fields = fields[:10]
    blocks.append({"type": "section", "fields": fields})
    reasons = note.reasons
    reason_text = "\n".join(f"• {_escape(r)}" for r in reasons) if reasons else "none recorded"
    blocks.append(
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": _clip(f"*Top reasons*\n{reason_text}", _MAX_TEXT)},
        }
    )
    episode = note.episode_id or note.payload.get("episode_id")
    context = f"step {note.step}" + (f" · episode {episode}" if episode else "")
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _escape(context)}]})
    if episode:
        buttons: list[dict[str, Any]] = []
        for action_id, label, style in _BUTTONS:
            button: dict[str, Any] = {
                "type": "button",
                "action_id": action_id,
                "text": {"type": "plain_text", "text": label},
                "value": str(episode),
            }
            if style:
                button["style"] = style
            buttons.append(button)
        blocks.append({"type": "actions", "block_id": "churnwatch_outcome", "elements": buttons})
    return blocks


def _digest_blocks(note: Notification, mention: str | None) -> list[dict[str, Any]]:
    accounts = list(note.payload.get("accounts") or [])
    intro = f"{len(accounts)} account{'s' if len(accounts) != 1 else ''} still at risk"
    if mention:
        intro = f"<@{mention}>: {intro}"
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": intro}}]
    room = _MAX_BLOCKS - 3
    for account in accounts[:room]:
        child = Notification(
            note.outbox_id, note.idempotency_key, note.channel, "churn", "", None, account
        )
        line = (
            f"*{_escape(child.account_label)}* — revenue at risk "
            f"{format_amount(account.get('revenue_at_risk'))}, "
            f"{account.get('days_since_churn', 'unknown')} days since churn"
        )
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _clip(line, 3000)}})
    if len(accounts) > room:
        more = f"and {len(accounts) - room} more"
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": more}]})
    return blocks


def _delivery_error(exc: SlackApiError, method: str) -> DeliveryError:
    response = exc.response
    status = response.status_code
    data = response.data if isinstance(response.data, dict) else {}
    error = str(data.get("error", "")) or f"HTTP {status}"
    headers = {str(k).lower(): v for k, v in (response.headers or {}).items()}
    retry_after: float | None = None
    raw = headers.get("retry-after")
    if isinstance(raw, list):
        raw = raw[0] if raw else None
    if raw is not None:
        try:
            retry_after = max(0.0, float(raw))
        except ValueError:
            retry_after = None
    permanent = status != 429 and status < 500 and error in _PERMANENT_ERRORS
    return DeliveryError(
        f"Slack {method} failed: {error} (HTTP {status})",
        permanent=permanent,
        retry_after_s=retry_after,
    )


class SlackChannel:
    """Deliver messages on Slack through the Web API.

    Parameters
    ----------
    client : slack_sdk.WebClient
        An authenticated client (its ``base_url`` may point elsewhere, as in tests).
    directory : CsmDirectory
        Finds the CSM's Slack id or e-mail.
    channel : str, optional
        Post every message to this channel (id or name), mentioning the CSM,
        instead of messaging each CSM directly.
    """

    def __init__(
        self, client: WebClient, directory: CsmDirectory, *, channel: str | None = None
    ) -> None:
        self.client = client
        self.directory = directory
        self.channel = channel
        self._user_by_email: dict[str, str] = {}
        self._dm_by_user: dict[str, str] = {}

    def _call(self, method: str, **arguments: Any) -> dict[str, Any]:
        try:
            response = self.client.api_call(method, json=arguments)
        except SlackApiError as exc:
            raise _delivery_error(exc, method) from exc
        except OSError as exc:
            # urllib's URLError, timeouts and refused connections: try again later.
            raise DeliveryError(f"Slack {method} failed: {exc!r}") from exc
        return dict(response.data) if isinstance(response.data, dict) else {}

    def user_id(self, csm_ref: str | None) -> str | None:
        """The CSM's Slack member id: from the directory, else looked up by e-mail.

        Raises
        ------
        DeliveryError
            When the lookup fails (permanent when Slack knows no such e-mail).
        """
        contact = self.directory.find(csm_ref)
        if contact is None:
            return None
        if contact.slack_user_id:
            return contact.slack_user_id
        if not contact.email:
            return None
        email = contact.email
        if email not in self._user_by_email:
            try:
                found = self.client.users_lookupByEmail(email=email)
            except SlackApiError as exc:
                raise _delivery_error(exc, "users.lookupByEmail") from exc
            except OSError as exc:
                raise DeliveryError(f"Slack users.lookupByEmail failed: {exc!r}") from exc
            user = found.get("user") or {}
            self._user_by_email[email] = str(user["id"])
        return self._user_by_email[email]

    def _destination(self, note: Notification) -> tuple[str, str | None]:
        if self.channel is not None:
            try:
                mention = self.user_id(note.recipient_csm_id)
            except DeliveryError as exc:
                if not exc.permanent:
                    raise
                mention = None  # post anyway: the channel reaches the team
            return self.channel, mention
        reason = self.directory.why_unreachable(note.recipient_csm_id, channel="slack")
        if reason is not None:
            raise DeliveryError(
                f"cannot message CSM {note.recipient_csm_id!r} on Slack: {reason}; add them to "
                "the csms table or set [notify] slack_channel (see 'churnwatch notify csms')",
                permanent=True,
            )
        user = self.user_id(note.recipient_csm_id)
        if user is None:  # pragma: no cover - why_unreachable vouched for an e-mail or an id
            raise DeliveryError(f"no Slack id for CSM {note.recipient_csm_id!r}", permanent=True)
        if user not in self._dm_by_user:
            opened = self._call("conversations.open", users=user)
            self._dm_by_user[user] = str(opened["channel"]["id"])
        return self._dm_by_user[user], None

    def deliver(self, note: Notification) -> str | None:
        channel, mention = self._destination(note)
        posted = self._call(
            "chat.postMessage",
            channel=channel,
            text=render_subject(note),
            blocks=slack_blocks(note, mention=mention),
            unfurl_links=False,
            # The key rides along as message metadata: a repeat after a crash can be
            # recognised in the conversation's history.
            metadata={
                "event_type": "churnwatch_notification",
                "event_payload": {
                    "idempotency_key": note.idempotency_key,
                    "episode_id": note.episode_id or "",
                },
            },
        )
        return f"{posted.get('channel', channel)}:{posted.get('ts', '')}"


def verify_slack_signature(
    signing_secret: str | bytes,
    *,
    timestamp: str,
    body: bytes,
    signature: str,
    now: float | None = None,
    tolerance_s: float = 300.0,
) -> bool:
    """Whether a request really comes from Slack (interactions, slash commands).

    Slack signs ``v0:<X-Slack-Request-Timestamp>:<raw body>`` with HMAC-SHA256
    keyed by the app's signing secret and sends ``v0=<hex>`` in
    ``X-Slack-Signature``. Requests older (or newer) than ``tolerance_s`` —
    five minutes, as Slack recommends — are refused, so a captured request
    cannot be replayed later.

    Parameters
    ----------
    signing_secret : str or bytes
        The Slack app's signing secret.
    timestamp, signature : str
        The ``X-Slack-Request-Timestamp`` and ``X-Slack-Signature`` headers.
    body : bytes
        The raw request body, exactly as received (before form decoding).
    now : float, optional
        The current Unix time (default: the clock).
    tolerance_s : float
        The replay window.

    Examples
    --------
    >>> import hashlib, hmac
    >>> body = b"payload=%7B%7D"
    >>> sig = "v0=" + hmac.new(b"secret", b"v0:1700000000:" + body, hashlib.sha256).hexdigest()
    >>> verify_slack_signature("secret", timestamp="1700000000", body=body, signature=sig,
    ...                        now=1700000060)
    True
    >>> verify_slack_signature("secret", timestamp="1700000000", body=body + b"x",
    ...                        signature=sig, now=1700000060)
    False
    """
    try:
        sent = int(timestamp)
    except (TypeError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - sent) > tolerance_s:
        return False
    key = signing_secret.encode("utf-8") if isinstance(signing_secret, str) else signing_secret
    base = b"v0:" + timestamp.encode("utf-8") + b":" + body
    expected = "v0=" + hmac.new(key, base, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)
