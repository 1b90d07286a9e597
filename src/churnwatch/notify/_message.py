"""One notification and how it reads: the texts every channel renders.

A :class:`Notification` is an outbox row as a channel sees it: who it is for,
what happened (its kind and cadence step) and the payload the tracker wrote
in the same transaction as the state change. The templates here turn it into
a subject line and a plain-text body; Slack's Block Kit layout, built from the
same facts, lives in :mod:`churnwatch.notify._slack`.

Payload keys are all optional (the outbox contract lists them): a missing
fact is shown as ``unknown`` rather than failing a delivery, since a message
with one blank field is worth more to a CSM than no message.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from typing import Any

__all__ = [
    "KIND_TITLES",
    "Notification",
    "format_amount",
    "render_subject",
    "render_text",
]

# The headline of each kind of message, as a CSM reads it.
KIND_TITLES: dict[str, str] = {
    "churn": "Account turned the product off",
    "followup": "Follow-up: account still off",
    "final": "Final reminder: account still off",
    "risk_alert": "Churn risk alert",
    "digest": "Your accounts at risk today",
}

# Follow-ups of an episode a risk alert opened: the account has not turned anything off.
_RISK_TITLES: dict[str, str] = {
    "followup": "Follow-up: churn risk still high",
    "final": "Final reminder: churn risk still high",
}
_TOP_REASONS = 3


@dataclasses.dataclass(frozen=True)
class Notification:
    """One message to deliver: an outbox row with its payload decoded.

    Parameters
    ----------
    outbox_id : int
        The outbox row's id.
    idempotency_key : str
        Unique per message; providers that can de-duplicate receive it.
    channel : str
        'slack', 'email', 'webhook' or 'file'.
    kind : str
        'churn', 'followup', 'final', 'risk_alert' or 'digest'.
    step : str
        The cadence step ('first', 'second', 'final', ...) or 'digest'.
    recipient_csm_id : str or None
        The CSM the message is for, as the snapshot names them.
    payload : mapping
        The facts the templates show (see the module docstring).
    account_id, product, episode_id : str or None
        What the message is about.
    attempt : int
        Which delivery attempt this is (1 for the first); the dispatcher
        records the result only if the row is still on this attempt.

    Examples
    --------
    >>> note = Notification(1, "e1|first|file", "file", "churn", "first", "csm-1",
    ...                     {"name": "Acme", "revenue_at_risk": 1200.0})
    >>> note.title
    'Account turned the product off'
    """

    outbox_id: int
    idempotency_key: str
    channel: str
    kind: str
    step: str
    recipient_csm_id: str | None
    payload: Mapping[str, Any]
    account_id: str | None = None
    product: str | None = None
    episode_id: str | None = None
    attempt: int = 0

    @property
    def from_risk(self) -> bool:
        """Whether the episode was opened by a risk alert rather than a churn."""
        return self.kind == "risk_alert" or self.payload.get("source") == "risk"

    @property
    def title(self) -> str:
        """The headline of the message's kind.

        Examples
        --------
        >>> Notification(1, "k", "file", "final", "final", None, {"source": "risk"}).title
        'Final reminder: churn risk still high'
        """
        if self.from_risk and self.kind in _RISK_TITLES:
            return _RISK_TITLES[self.kind]
        return KIND_TITLES.get(self.kind, "Churnwatch notification")

    @property
    def account_label(self) -> str:
        """The account's name with its id, or whichever of them is known."""
        name = self.payload.get("name")
        account = self.payload.get("account_id", self.account_id)
        product = self.payload.get("product", self.product)
        label = str(name) if name else str(account or "unknown account")
        if name and account and str(account) != str(name):
            label += f" ({account})"
        if product:
            label += f" — {product}"
        return label

    @property
    def reasons(self) -> list[str]:
        """The top reasons, most important first (at most three)."""
        reasons = self.payload.get("reasons") or []
        if isinstance(reasons, str):
            # Tolerate a JSON text where a list was meant: the ledger stores them so.
            try:
                reasons = json.loads(reasons)
            except ValueError:
                reasons = [reasons]
        return [str(r) for r in list(reasons)[:_TOP_REASONS]]

    def facts(self) -> list[tuple[str, str]]:
        """The message's facts as (label, text) pairs, in reading order.

        Examples
        --------
        >>> note = Notification(1, "k", "file", "churn", "first", "c1",
        ...                     {"name": "Acme", "revenue_at_risk": 1234.5,
        ...                      "days_since_churn": 2})
        >>> note.facts()[:3]
        [('Account', 'Acme'), ('Revenue at risk', '1,234.50'), ('Days since churn', '2')]
        """
        payload = self.payload
        facts = [
            ("Account", self.account_label),
            ("Revenue at risk", format_amount(payload.get("revenue_at_risk"))),
        ]
        if self.from_risk:
            facts.append(("Churn risk", _percent(payload.get("risk_score"))))
            if self.kind != "risk_alert":
                facts.append(("Days since alert", _days(payload.get("days_since_churn"))))
        else:
            facts.append(("Days since churn", _days(payload.get("days_since_churn"))))
        for label, key in (("Revenue", "revenue"), ("GMV", "gmv")):
            if payload.get(key) is not None:
                facts.append((label, format_amount(payload.get(key))))
        if payload.get("region"):
            facts.append(("Region", str(payload["region"])))
        if self.recipient_csm_id:
            facts.append(("CSM", self.recipient_csm_id))
        return facts

    def as_json(self) -> dict[str, Any]:
        """The notification as a JSON-ready object (the webhook and file body)."""
        return {
            "idempotency_key": self.idempotency_key,
            "kind": self.kind,
            "step": self.step,
            "channel": self.channel,
            "csm_id": self.recipient_csm_id,
            "account_id": self.account_id,
            "product": self.product,
            "episode_id": self.episode_id,
            "title": self.title,
            "payload": dict(self.payload),
        }


def format_amount(value: object) -> str:
    """Money as a CSM reads it: thousands separated, two decimals; 'unknown' when absent.

    Examples
    --------
    >>> format_amount(1234567.891)
    '1,234,567.89'
    >>> format_amount(None)
    'unknown'
    """
    if value is None or isinstance(value, bool):
        return "unknown"
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(number):
        return "unknown"
    return f"{number:,.2f}"


def _days(value: object) -> str:
    if value is None or isinstance(value, bool):
        return "unknown"
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(value)
    return f"{number:g}"


def _percent(value: object) -> str:
    if value is None or isinstance(value, bool):
        return "unknown"
    try:
        return f"{100 * float(value):.0f}%"  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(value)


def render_subject(note: Notification) -> str:
    """The one-line subject of a message (e-mail subject, Slack fallback text).

    Examples
    --------
    >>> render_subject(Notification(1, "k", "email", "final", "final", "c1", {"name": "Acme"}))
    'Final reminder: account still off — Acme'
    """
    if note.kind == "digest":
        count = len(note.payload.get("accounts") or [])
        return f"{note.title} — {count} account{'s' if count != 1 else ''}"
    return f"{note.title} — {note.account_label}"


def render_text(note: Notification) -> str:
    """The plain-text body of a message (e-mail, console, file).

    Examples
    --------
    >>> note = Notification(1, "k", "email", "churn", "first", "c1",
    ...                     {"name": "Acme", "revenue_at_risk": 90, "reasons": ["fewer logins"]})
    >>> print(render_text(note))
    Account turned the product off — Acme
    Account: Acme
    Revenue at risk: 90.00
    Days since churn: unknown
    CSM: c1
    Top reasons:
      - fewer logins
    Record the outcome: won, lost or not useful.
    """
    lines = [render_subject(note)]
    if note.kind == "digest":
        for account in note.payload.get("accounts") or []:
            child = Notification(
                note.outbox_id, note.idempotency_key, note.channel, "churn", "", None, account
            )
            lines.append(
                f"  - {child.account_label}: revenue at risk "
                f"{format_amount(account.get('revenue_at_risk'))}, "
                f"{_days(account.get('days_since_churn'))} days since churn"
            )
        return "\n".join(lines)
    lines += [f"{label}: {text}" for label, text in note.facts()]
    if note.reasons:
        lines.append("Top reasons:")
        lines += [f"  - {reason}" for reason in note.reasons]
    episode = note.episode_id or note.payload.get("episode_id")
    lines.append(
        "Record the outcome: won, lost or not useful"
        + (f" (episode {episode})." if episode else ".")
    )
    return "\n".join(lines)
