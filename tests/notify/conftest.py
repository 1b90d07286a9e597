"""Local servers the notification tests deliver to, and a store to deliver from.

Nothing is mocked: the real ``slack_sdk.WebClient`` talks HTTP to a small
server speaking Slack's Web API (``users.lookupByEmail``,
``conversations.open``, ``chat.postMessage``); e-mail goes through a real
SMTP server (aiosmtpd); webhooks reach an HTTP server that checks the
HMAC signature itself, with its own code. Each server can be told to fail
the next requests (429 with Retry-After, 5xx, Slack errors) and records
every request it answered.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from churnwatch.store import OUTBOX, Store, open_store

T0 = dt.datetime(2024, 3, 1, 9, 0, tzinfo=dt.UTC)


# -- the store ----------------------------------------------------------------------------------
def queue(
    store: Store,
    count: int,
    *,
    channel: str = "file",
    csm: str | None = "c1",
    at: dt.datetime = T0,
    kind: str = "churn",
    step: str = "first",
) -> list[str]:
    """Insert ``count`` pending outbox rows as the tracker would; return their keys."""
    rows = []
    for i in range(count):
        episode = f"acct{i}||2024-03-01|snapshot"
        payload = {
            "account_id": f"acct{i}",
            "name": f"Merchant {i}",
            "csm_id": csm,
            "region": "EU",
            "revenue": 1000.0 + i,
            "gmv": 50000.0,
            "revenue_at_risk": 800.0 + i,
            "days_since_churn": 0,
            "reasons": [
                "fewer logins in the last 14 days",
                "failed payment",
                "plan downgrade",
                "support tickets",
            ],
            "episode_id": episode,
            "step": step,
            "snapshot_date": "2024-03-01",
        }
        rows.append(
            {
                "idempotency_key": f"{episode}|{step}|{channel}",
                "created_at": at,
                "channel": channel,
                "recipient_csm_id": csm,
                "kind": kind,
                "step": step,
                "account_id": f"acct{i}",
                "product": "",
                "episode_id": episode,
                "payload": json.dumps(payload),
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": at,
            }
        )
    with store.transaction() as connection:
        connection.execute(OUTBOX.insert(), rows)
    return [r["idempotency_key"] for r in rows]


def outbox_rows(store: Store) -> dict[str, dict[str, Any]]:
    """Every outbox row by idempotency key."""
    with store.engine.connect() as connection:
        rows = connection.execute(sa.select(OUTBOX).order_by(OUTBOX.c.id)).mappings().all()
    return {row["idempotency_key"]: dict(row) for row in rows}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A fresh SQLite store (a file, WAL mode, as in production)."""
    opened = open_store(f"sqlite:///{tmp_path / 'ops.sqlite'}")
    yield opened
    opened.close()


# -- HTTP servers --------------------------------------------------------------------------------
@dataclasses.dataclass
class Failure:
    """One scripted answer that is not a success."""

    status: int
    retry_after: str | None = None
    slack_error: str | None = None
    # Processed (recorded) before the failure is answered: the response was lost.
    accepted: bool = False


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client killed mid-request (the crash tests do it) is expected here.
        pass


class _Server:
    """A threading HTTP server on 127.0.0.1 with scripted failures and a request log."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.failures: dict[str, list[Failure]] = {}
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                status, headers, answer = outer.handle(self.path, dict(self.headers), body)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}/"

    def fail_next(self, route: str, *failures: Failure) -> None:
        with self.lock:
            self.failures.setdefault(route, []).extend(failures)

    def reset(self) -> None:
        with self.lock:
            self.failures.clear()
            self.requests.clear()
            self.on_reset()

    def on_reset(self) -> None:
        pass

    def next_failure(self, route: str) -> Failure | None:
        with self.lock:
            pending = self.failures.get(route)
            return pending.pop(0) if pending else None

    def handle(
        self, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        raise NotImplementedError

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _failure_answer(failure: Failure) -> tuple[int, dict[str, str], bytes]:
    headers = {"Content-Type": "application/json"}
    if failure.retry_after is not None:
        headers["Retry-After"] = failure.retry_after
    if failure.status >= 500:
        return failure.status, {"Content-Type": "text/plain"}, b"upstream unavailable"
    error = failure.slack_error or ("ratelimited" if failure.status == 429 else "bad_request")
    return failure.status, headers, json.dumps({"ok": False, "error": error}).encode()


class SlackServer(_Server):
    """Slack's Web API, as much of it as the channel uses.

    ``users`` maps e-mails to member ids; posted messages are kept in ``posted``.
    """

    def __init__(self) -> None:
        self.users = {"ana@example.com": "U0ANA", "bo@example.com": "U0BO"}
        self.posted: list[dict[str, Any]] = []
        self.calls: list[str] = []
        super().__init__()

    def on_reset(self) -> None:
        self.posted.clear()
        self.calls.clear()

    def handle(
        self, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        method = path.rsplit("/", 1)[-1]
        with self.lock:
            self.calls.append(method)
            self.requests.append((method, headers, body))
        if headers.get("Authorization") != "Bearer xoxb-test":
            return 200, {}, json.dumps({"ok": False, "error": "invalid_auth"}).encode()
        failure = self.next_failure(method)
        if failure is not None and failure.slack_error and failure.status == 200:
            return 200, {}, json.dumps({"ok": False, "error": failure.slack_error}).encode()
        if failure is not None:
            return _failure_answer(failure)
        arguments = self._arguments(headers, body)
        if method == "users.lookupByEmail":
            user = self.users.get(str(arguments.get("email")))
            if user is None:
                return 200, {}, json.dumps({"ok": False, "error": "users_not_found"}).encode()
            answer: dict[str, Any] = {"ok": True, "user": {"id": user}}
        elif method == "conversations.open":
            answer = {"ok": True, "channel": {"id": "D" + str(arguments["users"])}}
        elif method == "chat.postMessage":
            with self.lock:
                self.posted.append(arguments)
                ts = f"1709283600.{len(self.posted):06d}"
            answer = {"ok": True, "channel": arguments["channel"], "ts": ts}
        else:
            answer = {"ok": False, "error": "unknown_method"}
        return 200, {"Content-Type": "application/json"}, json.dumps(answer).encode()

    @staticmethod
    def _arguments(headers: dict[str, str], body: bytes) -> dict[str, Any]:
        if headers.get("Content-Type", "").startswith("application/json"):
            return dict(json.loads(body or b"{}"))
        from urllib.parse import parse_qsl

        return dict(parse_qsl(body.decode()))


WEBHOOK_SECRET = "whsec-test-0123456789"


class WebhookServer(_Server):
    """A webhook receiver that checks the signature and keeps one message per key."""

    def __init__(self) -> None:
        self.accepted: list[str] = []  # every accepted request's key, repeats included
        self.messages: dict[str, dict[str, Any]] = {}  # de-duplicated by Idempotency-Key
        self.lost_answers: Counter[str] = Counter()  # accepted, then answered with an error
        self.delay_s = 0.0  # time taken by each request
        super().__init__()

    def on_reset(self) -> None:
        self.accepted.clear()
        self.messages.clear()
        self.lost_answers.clear()
        self.delay_s = 0.0

    def handle(
        self, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        with self.lock:
            self.requests.append((path, headers, body))
        if self.delay_s:
            time.sleep(self.delay_s)
        timestamp = headers.get("X-Churnwatch-Timestamp", "")
        expected = (
            "sha256="
            + hmac.new(
                WEBHOOK_SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256
            ).hexdigest()
        )
        if not hmac.compare_digest(expected, headers.get("X-Churnwatch-Signature", "")):
            return 401, {}, b"bad signature"
        failure = self.next_failure("webhook")
        if failure is not None and failure.status < 300:
            failure = None  # a scripted success
        key = headers["Idempotency-Key"]
        if failure is None or failure.accepted:
            with self.lock:
                self.accepted.append(key)
                self.messages.setdefault(key, json.loads(body))
                if failure is not None:
                    self.lost_answers[key] += 1
        if failure is not None:
            return _failure_answer(failure)
        return 200, {"X-Request-Id": f"req-{len(self.accepted)}"}, b"{}"


@pytest.fixture(scope="module")
def slack_server() -> Iterator[SlackServer]:
    server = SlackServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def webhook_server() -> Iterator[WebhookServer]:
    server = WebhookServer()
    yield server
    server.close()


@pytest.fixture
def slack(slack_server: SlackServer) -> SlackServer:
    slack_server.reset()
    return slack_server


@pytest.fixture
def webhook(webhook_server: WebhookServer) -> WebhookServer:
    webhook_server.reset()
    return webhook_server


# -- SMTP ---------------------------------------------------------------------------------------
class MailHandler:
    """Keeps each received message; refuses recipients listed in ``refuse``."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.refuse: dict[str, str] = {}

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any
    ) -> str:
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"


class _AnyPortController(Controller):  # type: ignore[misc]
    """aiosmtpd's controller on a port the system picks (port 0), read back once bound."""

    def _trigger_server(self) -> None:
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


@pytest.fixture
def smtp() -> Iterator[tuple[MailHandler, int]]:
    handler = MailHandler()
    controller = _AnyPortController(handler, hostname="127.0.0.1", port=0)
    controller.start()
    try:
        yield handler, int(controller.port)
    finally:
        controller.stop()
