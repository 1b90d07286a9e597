"""Delivery channels: e-mail, a signed webhook, a file and the console.

A channel delivers one :class:`~churnwatch.notify.Notification` and returns
the provider's reference for it (an SMTP Message-ID, the webhook's request id,
a file position), or raises :class:`~churnwatch.errors.DeliveryError` saying
whether a retry can help and how long the provider asked to wait. Retrying,
backoff and bookkeeping are the dispatcher's: a channel makes one attempt.

Each message carries its outbox idempotency key where the provider can use
it to drop a repeat (delivery is at least once: a dispatcher that dies after
the provider accepted a message but before recording it sends it again):
the e-mail's ``Message-ID`` is derived from the key, and the webhook sends it
as the ``Idempotency-Key`` header.

Webhook bodies are signed: ``X-Churnwatch-Signature: sha256=<hex>`` is the
HMAC-SHA256, keyed by the shared secret, of ``"<timestamp>." + body``, with
the Unix timestamp in ``X-Churnwatch-Timestamp``; a receiver checks both with
:func:`verify_webhook_signature` (the timestamp bounds replays).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import sys
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import IO, Protocol

import httpx

from churnwatch.errors import DeliveryError
from churnwatch.notify._directory import CsmDirectory
from churnwatch.notify._message import Notification, render_subject, render_text

__all__ = [
    "Channel",
    "ConsoleChannel",
    "EmailChannel",
    "FileChannel",
    "WebhookChannel",
    "message_id_for",
    "sign_webhook",
    "verify_webhook_signature",
]


class Channel(Protocol):
    """What the dispatcher needs of a channel: one delivery attempt."""

    def deliver(self, note: Notification) -> str | None:
        """Deliver ``note``; return the provider's reference, or raise DeliveryError."""
        ...


def _parse_retry_after(value: str | None) -> float | None:
    # Providers send seconds; an HTTP date (also allowed) is rare enough to ignore.
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


# -- file and console --------------------------------------------------------------------------
class FileChannel:
    """Append each message as one JSON line to a file (dry runs, audits, other tools).

    Examples
    --------
    >>> import tempfile, json, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "out.jsonl"
    >>> note = Notification(1, "e1|first|file", "file", "churn", "first", "c1", {"name": "Acme"})
    >>> FileChannel(path).deliver(note)  # the file and the line's byte offset
    'out.jsonl@0'
    >>> json.loads(path.read_text())["payload"]["name"]
    'Acme'
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def deliver(self, note: Notification) -> str | None:
        record = note.as_json() | {"subject": render_subject(note), "text": render_text(note)}
        line = json.dumps(record, ensure_ascii=False, default=str) + "\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("ab") as out:
                # The reference is the line's byte offset: found in O(1), unlike a line count.
                offset = out.tell()
                out.write(line.encode("utf-8"))
        except OSError as exc:
            raise DeliveryError(f"cannot write notifications to {self.path}: {exc}") from exc
        return f"{self.path.name}@{offset}"


class ConsoleChannel:
    """Print each message as text (what ``notify dispatch --dry-run`` shows).

    Parameters
    ----------
    stream : text stream, optional
        Where to print; standard output by default.

    Examples
    --------
    >>> import io
    >>> out = io.StringIO()
    >>> ConsoleChannel(out).deliver(
    ...     Notification(1, "k", "file", "churn", "first", None, {"name": "Acme"}))
    >>> out.getvalue().splitlines()[0]
    'Account turned the product off — Acme'
    """

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream

    def deliver(self, note: Notification) -> str | None:
        stream = self.stream if self.stream is not None else sys.stdout
        stream.write(render_text(note) + "\n\n")
        return None


# -- e-mail ------------------------------------------------------------------------------------
def message_id_for(idempotency_key: str, domain: str = "churnwatch") -> str:
    """The e-mail Message-ID of a message: the same key always gives the same id.

    Mail systems and clients drop a second message with an id they have seen,
    which makes a resend after a crash harmless.

    Examples
    --------
    >>> message_id_for("e1|first|email") == message_id_for("e1|first|email")
    True
    >>> message_id_for("e1|first|email", "example.com").endswith("@example.com>")
    True
    """
    digest = hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:40]
    return f"<{digest}@{domain}>"


class EmailChannel:
    """Send each message by SMTP to the CSM's e-mail address from the directory.

    Parameters
    ----------
    directory : CsmDirectory
        Finds the recipient's address.
    host, port : str, int
        The SMTP server.
    from_address : str
        The sender.
    timeout_s : float
        Time limit of the connection and of each SMTP command.
    starttls : bool
        Upgrade the connection with STARTTLS before sending.
    username, password : str, optional
        Log in before sending (the password comes from the environment, read by
        the CLI, never from the project file).
    """

    def __init__(
        self,
        directory: CsmDirectory,
        *,
        host: str,
        port: int,
        from_address: str,
        timeout_s: float = 10.0,
        starttls: bool = False,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.directory = directory
        self.host = host
        self.port = port
        self.from_address = from_address
        self.timeout_s = timeout_s
        self.starttls = starttls
        self.username = username
        self.password = password

    def compose(self, note: Notification) -> EmailMessage:
        """The e-mail for ``note``.

        Raises
        ------
        DeliveryError
            (permanent) when the CSM has no e-mail address in the directory.
        """
        reason = self.directory.why_unreachable(note.recipient_csm_id, channel="email")
        contact = self.directory.find(note.recipient_csm_id)
        if reason is not None or contact is None or contact.email is None:
            raise DeliveryError(
                f"cannot e-mail CSM {note.recipient_csm_id!r}: {reason}; add their e-mail to "
                "the csms table (see 'churnwatch notify csms')",
                permanent=True,
            )
        message = EmailMessage()
        message["From"] = self.from_address
        message["To"] = contact.email
        message["Subject"] = render_subject(note)
        domain = self.from_address.rpartition("@")[2] or "churnwatch"
        message["Message-ID"] = message_id_for(note.idempotency_key, domain)
        message["X-Churnwatch-Idempotency-Key"] = note.idempotency_key
        message.set_content(f"Hello {contact.label},\n\n{render_text(note)}\n")
        return message

    def deliver(self, note: Notification) -> str | None:
        message = self.compose(note)
        where = f"SMTP server {self.host}:{self.port}"
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
                if self.starttls:
                    smtp.starttls()
                if self.username is not None:
                    smtp.login(self.username, self.password or "")
                smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            # A 4xx refusal (greylisting, a full mailbox) is temporary; 5xx is final.
            codes = [code for code, _ in exc.recipients.values()]
            raise DeliveryError(
                f"{where} refused the recipient {message['To']}: {exc.recipients}",
                permanent=all(code >= 500 for code in codes),
            ) from exc
        except smtplib.SMTPResponseException as exc:
            # 4xx replies are temporary by the SMTP standard; 5xx are final.
            text = (
                exc.smtp_error.decode("utf-8", "replace")
                if isinstance(exc.smtp_error, bytes)
                else str(exc.smtp_error)
            )
            raise DeliveryError(
                f"{where} answered {exc.smtp_code} {text}", permanent=exc.smtp_code >= 500
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"{where} failed: {exc!r}") from exc
        return str(message["Message-ID"])


# -- webhook -----------------------------------------------------------------------------------
def _secret_bytes(secret: str | bytes) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else secret


def sign_webhook(secret: str | bytes, timestamp: int, body: bytes) -> str:
    """The ``X-Churnwatch-Signature`` of a webhook body sent at ``timestamp``.

    Examples
    --------
    >>> sign_webhook("s3cret", 1700000000, b'{"a":1}')[:7]
    'sha256='
    """
    mac = hmac.new(_secret_bytes(secret), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_webhook_signature(
    secret: str | bytes,
    *,
    timestamp: str,
    body: bytes,
    signature: str,
    now: float | None = None,
    tolerance_s: float = 300.0,
) -> bool:
    """Whether a received webhook is authentic and recent (for receivers).

    Parameters
    ----------
    secret : str or bytes
        The shared secret.
    timestamp, signature : str
        The ``X-Churnwatch-Timestamp`` and ``X-Churnwatch-Signature`` headers.
    body : bytes
        The raw request body, exactly as received.
    now : float, optional
        The current Unix time (default: the clock).
    tolerance_s : float
        Oldest (or most future) timestamp accepted, against replays.

    Examples
    --------
    >>> sig = sign_webhook("k", 1700000000, b"{}")
    >>> verify_webhook_signature("k", timestamp="1700000000", body=b"{}", signature=sig,
    ...                          now=1700000010)
    True
    >>> verify_webhook_signature("k", timestamp="1700000000", body=b"{}", signature=sig,
    ...                          now=1700009999)
    False
    """
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - sent) > tolerance_s:
        return False
    return hmac.compare_digest(sign_webhook(secret, sent, body), signature)


class WebhookChannel:
    """POST each message as signed JSON to a URL.

    Answers 2xx are deliveries; 408, 429 and 5xx (and a connection that fails)
    are retried later, honouring ``Retry-After``; other 4xx are permanent.

    Parameters
    ----------
    url : str
        The receiving endpoint.
    secret : str or bytes
        The HMAC key shared with the receiver.
    timeout_s : float
        Time limit of one request.
    clock : callable, optional
        Unix time for the signature's timestamp (default: the real clock).
    transport : httpx.BaseTransport, optional
        A custom transport (proxies, certificates).
    """

    def __init__(
        self,
        url: str,
        secret: str | bytes,
        *,
        timeout_s: float = 10.0,
        clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not secret:
            raise DeliveryError(
                "the webhook channel needs a secret to sign its messages; set the "
                "environment variable named by [notify] webhook_secret_env",
                permanent=True,
            )
        self.url = url
        self.secret = secret
        self.clock = clock
        self.client = httpx.Client(timeout=timeout_s, transport=transport)

    def close(self) -> None:
        """Close the HTTP connections."""
        self.client.close()

    def deliver(self, note: Notification) -> str | None:
        body = json.dumps(note.as_json(), ensure_ascii=False, default=str).encode("utf-8")
        timestamp = int(self.clock())
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": note.idempotency_key,
            "X-Churnwatch-Timestamp": str(timestamp),
            "X-Churnwatch-Signature": sign_webhook(self.secret, timestamp, body),
        }
        try:
            response = self.client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"webhook {self.url} failed: {exc!r}") from exc
        if response.is_success:
            return response.headers.get("X-Request-Id") or f"http {response.status_code}"
        retryable = response.status_code in {408, 429} or response.status_code >= 500
        raise DeliveryError(
            f"webhook {self.url} answered {response.status_code}: {response.text[:200]}",
            permanent=not retryable,
            retry_after_s=_parse_retry_after(response.headers.get("Retry-After")),
        )
