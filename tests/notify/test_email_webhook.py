"""E-mail through a local SMTP server; webhooks to a local server that checks the signature."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import hashlib
import hmac
import json
import socket

import pytest
from tests.notify.conftest import (
    T0,
    WEBHOOK_SECRET,
    Failure,
    MailHandler,
    WebhookServer,
    outbox_rows,
    queue,
)

from churnwatch.errors import DeliveryError
from churnwatch.notify import (
    CsmContact,
    CsmDirectory,
    EmailChannel,
    RetryPolicy,
    WebhookChannel,
    dispatch,
    message_id_for,
    sign_webhook,
    verify_webhook_signature,
)
from churnwatch.store import Store

DIRECTORY = CsmDirectory(
    [
        CsmContact("c1", "Ana Silva", "ana@example.com"),
        CsmContact("c2", "Bo Chen", "bo@example.com"),
        CsmContact("c3", "Cy Noemail"),
    ]
)
POLICY = RetryPolicy(max_attempts=3, backoff_s=30, max_backoff_s=600, lease_s=60)


def mail_channel(port: int) -> EmailChannel:
    return EmailChannel(
        DIRECTORY, host="127.0.0.1", port=port, from_address="alerts@churn.example", timeout_s=5
    )


# -- e-mail -------------------------------------------------------------------------------------
def test_email_reaches_the_csm_with_a_message_id_from_the_key(
    store: Store, smtp: tuple[MailHandler, int]
) -> None:
    handler, port = smtp
    (key,) = queue(store, 1, channel="email", csm="Ana Silva")
    report = dispatch(store, {"email": mail_channel(port)}, now=T0, policy=POLICY)
    assert report.sent == 1
    ((sender, recipients, content),) = handler.messages
    assert (sender, recipients) == ("alerts@churn.example", ["ana@example.com"])
    message = email.message_from_bytes(content, policy=email.policy.default)
    assert message["Subject"] == "Account turned the product off — Merchant 0 (acct0)"
    expected_id = "<" + hashlib.sha256(key.encode()).hexdigest()[:40] + "@churn.example>"
    assert message["Message-ID"] == expected_id
    assert message["X-Churnwatch-Idempotency-Key"] == key
    body = message.get_content()
    assert body.startswith("Hello Ana Silva,")
    assert "Revenue at risk: 800.00" in body
    assert "  - failed payment" in body
    assert "plan downgrade" in body
    assert "support tickets" not in body  # the top three reasons only
    row = outbox_rows(store)[key]
    assert (row["status"], row["provider_ref"]) == ("sent", expected_id)


def test_the_same_key_gives_the_same_message_id() -> None:
    assert message_id_for("k|first|email") == message_id_for("k|first|email")
    assert message_id_for("k|first|email") != message_id_for("k|second|email")


def test_a_csm_without_email_is_dead_at_once(store: Store, smtp: tuple[MailHandler, int]) -> None:
    handler, port = smtp
    (key,) = queue(store, 1, channel="email", csm="c3")
    assert dispatch(store, {"email": mail_channel(port)}, now=T0, policy=POLICY).dead == 1
    row = outbox_rows(store)[key]
    assert row["status"] == "dead"
    assert "no e-mail in the csms table" in row["last_error"]
    assert handler.messages == []


@pytest.mark.parametrize(
    ("reply", "status"),
    [("550 5.1.1 mailbox unavailable", "dead"), ("451 4.3.0 try again later", "failed")],
)
def test_smtp_5xx_is_final_and_4xx_is_retried(
    store: Store, smtp: tuple[MailHandler, int], reply: str, status: str
) -> None:
    handler, port = smtp
    handler.refuse["bo@example.com"] = reply
    (key,) = queue(store, 1, channel="email", csm="c2")
    dispatch(store, {"email": mail_channel(port)}, now=T0, policy=POLICY)
    row = outbox_rows(store)[key]
    assert row["status"] == status
    assert reply.split()[0] in row["last_error"]
    if status == "failed":
        assert row["next_attempt_at"] == T0 + dt.timedelta(seconds=30)
        del handler.refuse["bo@example.com"]
        later = T0 + dt.timedelta(seconds=30)
        assert dispatch(store, {"email": mail_channel(port)}, now=later, policy=POLICY).sent == 1
        assert len(handler.messages) == 1


def test_a_server_that_does_not_answer_is_retried(store: Store) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (key,) = queue(store, 1, channel="email", csm="c1")
    dispatch(store, {"email": mail_channel(port)}, now=T0, policy=POLICY)
    row = outbox_rows(store)[key]
    assert row["status"] == "failed"
    assert f"127.0.0.1:{port}" in row["last_error"]


# -- webhook ------------------------------------------------------------------------------------
def hook(server: WebhookServer, secret: str = WEBHOOK_SECRET) -> WebhookChannel:
    return WebhookChannel(server.url + "hooks/churn", secret, timeout_s=5, clock=lambda: 1709283600)


def test_webhook_is_signed_and_carries_the_idempotency_key(
    store: Store, webhook: WebhookServer
) -> None:
    keys = queue(store, 2, channel="webhook", csm="c1")
    report = dispatch(store, {"webhook": hook(webhook)}, now=T0, policy=POLICY)
    assert report.sent == 2
    assert webhook.accepted == keys
    path, headers, body = webhook.requests[0]
    assert path == "/hooks/churn"
    assert headers["X-Churnwatch-Timestamp"] == "1709283600"
    sent = json.loads(body)
    assert (sent["kind"], sent["step"], sent["idempotency_key"]) == ("churn", "first", keys[0])
    assert sent["payload"]["revenue_at_risk"] == 800.0
    assert sent["payload"]["reasons"][0] == "fewer logins in the last 14 days"
    rows = outbox_rows(store)
    assert [rows[k]["provider_ref"] for k in keys] == ["req-1", "req-2"]


def test_webhook_429_honours_retry_after_and_5xx_backs_off(
    store: Store, webhook: WebhookServer
) -> None:
    (key,) = queue(store, 1, channel="webhook")
    webhook.fail_next("webhook", Failure(429, retry_after="300"), Failure(503))
    channel = {"webhook": hook(webhook)}
    dispatch(store, channel, now=T0, policy=POLICY)
    first_retry = outbox_rows(store)[key]["next_attempt_at"]
    assert first_retry == T0 + dt.timedelta(seconds=300)
    dispatch(store, channel, now=first_retry, policy=POLICY)
    second_retry = outbox_rows(store)[key]["next_attempt_at"]
    assert second_retry == first_retry + dt.timedelta(seconds=60)  # 30 s doubled
    dispatch(store, channel, now=second_retry, policy=POLICY)
    row = outbox_rows(store)[key]
    assert (row["status"], row["attempts"]) == ("sent", 3)
    assert webhook.accepted == [key]


def test_webhook_4xx_and_a_wrong_secret_are_final(store: Store, webhook: WebhookServer) -> None:
    first, second = queue(store, 2, channel="webhook")
    webhook.fail_next("webhook", Failure(422))
    dispatch(store, {"webhook": hook(webhook)}, now=T0, policy=POLICY, limit=1)
    dispatch(store, {"webhook": hook(webhook, "wrong-secret")}, now=T0, policy=POLICY)
    rows = outbox_rows(store)
    assert rows[first]["status"] == "dead"
    assert "422" in rows[first]["last_error"]
    assert rows[second]["status"] == "dead"
    assert "401" in rows[second]["last_error"]
    assert webhook.accepted == []


def test_a_webhook_without_secret_is_refused() -> None:
    with pytest.raises(DeliveryError, match="webhook_secret_env"):
        WebhookChannel("http://127.0.0.1:9/", "")


def test_webhook_signature_matches_an_independent_hmac() -> None:
    body = b'{"kind":"churn"}'
    expected = hmac.new(b"s3cret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign_webhook("s3cret", 1700000000, body) == "sha256=" + expected
    signature = "sha256=" + expected
    for now, secret, sent, valid in [
        (1700000300, "s3cret", body, True),
        (1700000301, "s3cret", body, False),  # past the five-minute window
        (1700000000, "other", body, False),
        (1700000000, "s3cret", body + b" ", False),
    ]:
        assert (
            verify_webhook_signature(
                secret, timestamp="1700000000", body=sent, signature=signature, now=now
            )
            is valid
        )
