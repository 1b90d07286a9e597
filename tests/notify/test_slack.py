"""Slack delivery through the real slack_sdk client, against a local Web API server."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from slack_sdk import WebClient
from tests.notify.conftest import T0, Failure, SlackServer, outbox_rows, queue

from churnwatch.notify import (
    CsmContact,
    CsmDirectory,
    RetryPolicy,
    SlackChannel,
    dispatch,
    verify_slack_signature,
)
from churnwatch.store import Store

DIRECTORY = CsmDirectory(
    [
        CsmContact("c1", "Ana Silva", "ana@example.com"),
        CsmContact("c2", "Bo Chen", None, "U0BOID"),
        CsmContact("c3", "Cy Noemail"),
        CsmContact("c4", "Di Unknown", "di@example.com"),
    ]
)
POLICY = RetryPolicy(max_attempts=4, backoff_s=10, max_backoff_s=1000, lease_s=60)


def channel(server: SlackServer, **options: str) -> SlackChannel:
    client = WebClient(token="xoxb-test", base_url=server.url + "api/", timeout=5)
    return SlackChannel(client, DIRECTORY, **options)


def test_a_csm_found_by_email_gets_a_direct_message_with_blocks_and_buttons(
    store: Store, slack: SlackServer
) -> None:
    keys = queue(store, 2, channel="slack", csm="c1")
    report = dispatch(store, {"slack": channel(slack)}, now=T0, policy=POLICY)
    assert (report.sent, report.retrying, report.dead) == (2, 0, 0)
    # One lookup and one DM opened for the CSM, then one post per message.
    assert slack.calls == [
        "users.lookupByEmail",
        "conversations.open",
        "chat.postMessage",
        "chat.postMessage",
    ]
    first = slack.posted[0]
    assert first["channel"] == "DU0ANA"
    assert first["text"] == "Account turned the product off — Merchant 0 (acct0)"
    blocks = first["blocks"]
    assert [b["type"] for b in blocks] == ["header", "section", "section", "context", "actions"]
    fields = {f["text"].split("\n")[0]: f["text"].split("\n")[1] for f in blocks[1]["fields"]}
    assert fields["*Account*"] == "Merchant 0 (acct0)"
    assert fields["*Revenue at risk*"] == "800.00"
    assert fields["*Days since churn*"] == "0"
    assert fields["*Region*"] == "EU"
    # The top three reasons, in order; the fourth is left out.
    assert blocks[2]["text"]["text"] == (
        "*Top reasons*\n• fewer logins in the last 14 days\n• failed payment\n• plan downgrade"
    )
    buttons = blocks[4]["elements"]
    assert [(b["text"]["text"], b["action_id"]) for b in buttons] == [
        ("Won", "churnwatch_outcome_won"),
        ("Lost", "churnwatch_outcome_lost"),
        ("Not useful", "churnwatch_outcome_not_useful"),
    ]
    assert {b["value"] for b in buttons} == {"acct0||2024-03-01|snapshot"}
    assert first["metadata"] == {
        "event_type": "churnwatch_notification",
        "event_payload": {"idempotency_key": keys[0], "episode_id": "acct0||2024-03-01|snapshot"},
    }
    rows = outbox_rows(store)
    assert [rows[k]["status"] for k in keys] == ["sent", "sent"]
    assert rows[keys[0]]["provider_ref"] == "DU0ANA:1709283600.000001"
    assert rows[keys[1]]["provider_ref"] == "DU0ANA:1709283600.000002"
    assert all(rows[k]["sent_at"] == T0 and rows[k]["attempts"] == 1 for k in keys)


def test_a_known_slack_id_needs_no_lookup(store: Store, slack: SlackServer) -> None:
    queue(store, 1, channel="slack", csm="Bo Chen")  # the snapshot names the CSM
    dispatch(store, {"slack": channel(slack)}, now=T0, policy=POLICY)
    assert slack.calls == ["conversations.open", "chat.postMessage"]
    assert slack.posted[0]["channel"] == "DU0BOID"


def test_a_shared_channel_gets_the_message_with_the_csm_mentioned(
    store: Store, slack: SlackServer
) -> None:
    queue(store, 1, channel="slack", csm="c1")
    dispatch(store, {"slack": channel(slack, channel="#cs-alerts")}, now=T0, policy=POLICY)
    assert slack.calls == ["users.lookupByEmail", "chat.postMessage"]
    posted = slack.posted[0]
    assert posted["channel"] == "#cs-alerts"
    assert posted["blocks"][1]["fields"][0]["text"] == "*CSM*\n<@U0ANA>"


def test_429_waits_for_retry_after_then_delivers(store: Store, slack: SlackServer) -> None:
    (key,) = queue(store, 1, channel="slack", csm="c2")
    slack.fail_next("chat.postMessage", Failure(429, retry_after="120"))
    slack_channel = channel(slack)
    report = dispatch(store, {"slack": slack_channel}, now=T0, policy=POLICY)
    assert (report.sent, report.retrying) == (0, 1)
    row = outbox_rows(store)[key]
    # Retry-After (120 s) is longer than the first backoff (10 s): it wins.
    assert row["status"] == "failed"
    assert row["next_attempt_at"] == T0 + dt.timedelta(seconds=120)
    assert "ratelimited" in row["last_error"]
    assert "429" in row["last_error"]
    # Not due before Retry-After has passed.
    early = dispatch(store, {"slack": slack_channel}, now=T0 + dt.timedelta(seconds=119))
    assert early.claimed == 0
    later = T0 + dt.timedelta(seconds=120)
    assert dispatch(store, {"slack": slack_channel}, now=later, policy=POLICY).sent == 1
    row = outbox_rows(store)[key]
    assert (row["status"], row["attempts"], row["sent_at"]) == ("sent", 2, later)
    assert slack.calls.count("chat.postMessage") == 2
    assert len(slack.posted) == 1


def test_5xx_is_retried_with_exponential_backoff_then_dead(
    store: Store, slack: SlackServer
) -> None:
    (key,) = queue(store, 1, channel="slack", csm="c2")
    slack.fail_next("conversations.open", *[Failure(503)] * 4)
    slack_channel = channel(slack)
    now = T0
    waits = []
    for _ in range(4):
        report = dispatch(store, {"slack": slack_channel}, now=now, policy=POLICY)
        assert report.claimed == 1
        row = outbox_rows(store)[key]
        if row["status"] == "dead":
            break
        waits.append((row["next_attempt_at"] - now).total_seconds())
        now = row["next_attempt_at"]
    assert waits == [10.0, 20.0, 40.0]
    row = outbox_rows(store)[key]
    assert (row["status"], row["attempts"]) == ("dead", 4)
    assert "HTTP 503" in row["last_error"]
    assert slack.posted == []


def test_5xx_then_success_delivers_once(store: Store, slack: SlackServer) -> None:
    (key,) = queue(store, 1, channel="slack", csm="c1")
    slack.fail_next("chat.postMessage", Failure(500), Failure(502))
    slack_channel = channel(slack)
    now = T0
    for _ in range(3):
        dispatch(store, {"slack": slack_channel}, now=now, policy=POLICY)
        now = outbox_rows(store)[key]["next_attempt_at"]
    row = outbox_rows(store)[key]
    assert (row["status"], row["attempts"]) == ("sent", 3)
    assert len(slack.posted) == 1
    # The lookup and the DM were cached across the retries.
    assert slack.calls.count("users.lookupByEmail") == 1


@pytest.mark.parametrize(
    ("csm", "expected"),
    [
        ("c3", "neither an e-mail nor a Slack id"),
        ("nobody", "not in the csms table"),
        ("c4", "users_not_found"),
    ],
)
def test_an_unreachable_csm_is_dead_at_once(
    store: Store, slack: SlackServer, csm: str, expected: str
) -> None:
    (key,) = queue(store, 1, channel="slack", csm=csm)
    report = dispatch(store, {"slack": channel(slack)}, now=T0, policy=POLICY)
    assert report.dead == 1
    row = outbox_rows(store)[key]
    assert (row["status"], row["attempts"]) == ("dead", 1)
    assert expected in row["last_error"]
    assert slack.posted == []


def test_a_bad_token_is_retried_not_dropped(store: Store, slack: SlackServer) -> None:
    (key,) = queue(store, 1, channel="slack", csm="c2")
    client = WebClient(token="xoxb-wrong", base_url=slack.url + "api/")
    dispatch(store, {"slack": SlackChannel(client, DIRECTORY)}, now=T0, policy=POLICY)
    row = outbox_rows(store)[key]
    # A token can be fixed; the message should wait for it rather than die.
    assert row["status"] == "failed"
    assert "invalid_auth" in row["last_error"]


def test_the_digest_lists_accounts_without_buttons(slack: SlackServer) -> None:
    from churnwatch.notify import Notification

    payload = {
        "csm_id": "c1",
        "date": "2024-03-05",
        "accounts": [
            {"name": "Acme", "account_id": "a1", "revenue_at_risk": 900.0, "days_since_churn": 4},
            {"name": "Beta", "account_id": "b2", "revenue_at_risk": 100.0, "days_since_churn": 1},
        ],
    }
    note = Notification(1, "digest|c1|2024-03-05|slack", "slack", "digest", "digest", "c1", payload)
    ref = channel(slack).deliver(note)
    assert ref == "DU0ANA:1709283600.000001"
    blocks = slack.posted[0]["blocks"]
    assert [b["type"] for b in blocks] == ["header", "section", "section", "section"]
    assert blocks[2]["text"]["text"] == ("*Acme (a1)* — revenue at risk 900.00, 4 days since churn")
    assert json.dumps(blocks).count("button") == 0


# -- request signatures -------------------------------------------------------------------------
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


def slack_signature(secret: str, timestamp: str, body: bytes) -> str:
    # Slack's documented recipe, written here independently of the code under test.
    base = f"v0:{timestamp}:".encode() + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def test_slack_documented_example_verifies() -> None:
    # The worked example of Slack's "Verifying requests from Slack" page.
    body = (
        b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&"
        b"channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&"
        b"command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2F"
        b"commands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&"
        b"trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    )
    signature = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    assert verify_slack_signature(
        SECRET, timestamp="1531420618", body=body, signature=signature, now=1531420618
    )


@given(
    body=st.binary(max_size=300),
    timestamp=st.integers(min_value=1_500_000_000, max_value=2_000_000_000),
    age=st.integers(min_value=-300, max_value=300),
)
def test_a_signed_request_within_five_minutes_verifies(
    body: bytes, timestamp: int, age: int
) -> None:
    signature = slack_signature(SECRET, str(timestamp), body)
    assert verify_slack_signature(
        SECRET, timestamp=str(timestamp), body=body, signature=signature, now=timestamp + age
    )


@given(
    body=st.binary(min_size=1, max_size=300),
    position=st.integers(min_value=0),
    flip=st.integers(min_value=1, max_value=255),
)
def test_a_changed_body_fails(body: bytes, position: int, flip: int) -> None:
    timestamp = "1700000000"
    signature = slack_signature(SECRET, timestamp, body)
    index = position % len(body)
    changed = body[:index] + bytes([body[index] ^ flip]) + body[index + 1 :]
    assert not verify_slack_signature(
        SECRET, timestamp=timestamp, body=changed, signature=signature, now=1700000000
    )


@pytest.mark.parametrize("age", [301, -301, 3600])
def test_a_replayed_request_fails(age: int) -> None:
    body = b"payload=%7B%22type%22%3A%22block_actions%22%7D"
    signature = slack_signature(SECRET, "1700000000", body)
    assert not verify_slack_signature(
        SECRET, timestamp="1700000000", body=body, signature=signature, now=1700000000 + age
    )


@pytest.mark.parametrize(
    ("secret", "timestamp", "signature_timestamp"),
    [
        ("another-secret", "1700000000", "1700000000"),
        (SECRET, "1700000001", "1700000000"),  # the timestamp is part of what is signed
        (SECRET, "not-a-time", "not-a-time"),
    ],
)
def test_wrong_secret_timestamp_or_garbage_fails(
    secret: str, timestamp: str, signature_timestamp: str
) -> None:
    body = b"payload=%7B%7D"
    signature = slack_signature(SECRET, signature_timestamp, body)
    assert not verify_slack_signature(
        secret, timestamp=timestamp, body=body, signature=signature, now=1700000000
    )


def test_after_a_429_the_rest_of_the_batch_waits_untried(store: Store, slack: SlackServer) -> None:
    keys = queue(store, 3, channel="slack", csm="c2")
    slack.fail_next("conversations.open", Failure(429, retry_after="120"))
    slack_channel = channel(slack)
    report = dispatch(store, {"slack": slack_channel}, now=T0, policy=POLICY)
    assert (report.claimed, report.retrying, report.deferred, report.sent) == (3, 1, 2, 0)
    assert slack.calls == ["conversations.open"]  # Slack was not called again
    rows = outbox_rows(store)
    retry_at = T0 + dt.timedelta(seconds=120)
    assert [(rows[k]["status"], rows[k]["attempts"]) for k in keys] == [
        ("failed", 1),
        ("pending", 0),  # put back: the claim does not count as an attempt
        ("pending", 0),
    ]
    assert {rows[k]["next_attempt_at"] for k in keys} == {retry_at}
    assert dispatch(store, {"slack": slack_channel}, now=retry_at, policy=POLICY).sent == 3
    rows = outbox_rows(store)
    assert [rows[k]["attempts"] for k in keys] == [2, 1, 1]
    assert len(slack.posted) == 3
