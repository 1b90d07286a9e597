"""The REST API through a real server: answers, Slack buttons, KPIs, and 4xx for bad input."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from urllib.parse import urlencode

import pytest

from churnwatch.outcomes import list_outcomes

from .conftest import SIGNING_SECRET, Served

EPISODE_B = "b||2024-03-02|snapshot"


def test_post_an_outcome_then_list_it(served: Served) -> None:
    answer = {"outcome": "lost", "account_id": "b", "notes": "budget cut", "useful": True}
    posted = served.client.post("/outcomes", json=answer)
    assert posted.status_code == 201, posted.text
    body = posted.json()
    assert (body["episode_id"], body["outcome"], body["source"]) == (EPISODE_B, "lost", "api")
    assert body["csm_id"] == "c2"
    listed = served.client.get("/outcomes", params={"account_id": "b"})
    assert listed.status_code == 200
    assert [a["notes"] for a in listed.json()] == ["budget cut"]
    assert [a.outcome for a in list_outcomes(served.store)] == ["lost"]


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"outcome": "maybe", "account_id": "b"}, 422, "won"),
        ({"outcome": "won", "account_id": "nobody"}, 404, "no open at-risk episode"),
        ({"outcome": "won", "episode_id": "x|y|z|w"}, 404, "no episode"),
        ({"outcome": "won"}, 422, "say which episode"),
        ({"outcome": "won", "account_id": "b", "colour": "red"}, 422, "colour"),
    ],
)
def test_bad_answers_get_a_4xx_with_a_message(
    served: Served, body: dict[str, str], status: int, words: str
) -> None:
    answered = served.client.post("/outcomes", json=body)
    assert answered.status_code == status
    assert words in answered.text


def test_malformed_json_and_bad_queries_are_4xx(served: Served) -> None:
    broken = served.client.post(
        "/outcomes", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert broken.status_code == 422
    assert served.client.get("/outcomes", params={"limit": "0"}).status_code == 422
    assert served.client.get("/kpis", params={"as_of": "yesterday"}).status_code == 422


def _signed(body: bytes, timestamp: int, secret: str = SIGNING_SECRET) -> dict[str, str]:
    base = b"v0:" + str(timestamp).encode() + b":" + body
    signature = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": str(timestamp),
        "X-Slack-Signature": signature,
        "Content-Type": "application/x-www-form-urlencoded",
    }


def _button(action_id: str, episode: str) -> bytes:
    payload = {
        "type": "block_actions",
        "user": {"id": "U123", "username": "dana"},
        "actions": [{"action_id": action_id, "value": episode, "type": "button"}],
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


def test_a_correctly_signed_button_press_records_the_outcome(served: Served) -> None:
    body = _button("churnwatch_outcome_won", EPISODE_B)
    answered = served.client.post(
        "/slack/interactions", content=body, headers=_signed(body, int(time.time()))
    )
    assert answered.status_code == 200, answered.text
    assert "Recorded: Won for b" in answered.json()["text"]
    [stored] = list_outcomes(served.store)
    assert (stored.episode_id, stored.outcome, stored.source) == (EPISODE_B, "won", "slack")
    assert stored.notes == "answered in Slack by dana"


@pytest.mark.parametrize(
    "tamper",
    ["wrong secret", "changed body", "old timestamp", "no headers"],
)
def test_a_badly_signed_request_is_refused_and_records_nothing(served: Served, tamper: str) -> None:
    body = _button("churnwatch_outcome_lost", EPISODE_B)
    now = int(time.time())
    headers = _signed(body, now)
    sent = body
    if tamper == "wrong secret":
        headers = _signed(body, now, secret="another-secret")
    elif tamper == "changed body":
        sent = _button("churnwatch_outcome_won", EPISODE_B)
    elif tamper == "old timestamp":
        headers = _signed(body, now - 3600)
    else:
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
    answered = served.client.post("/slack/interactions", content=sent, headers=headers)
    assert answered.status_code == 401
    assert "signature" in answered.json()["detail"]
    assert list_outcomes(served.store) == []


def test_signed_but_malformed_slack_requests_are_4xx(served: Served) -> None:
    now = int(time.time())
    for body, status in [
        (b"payload=%7Bbroken", 400),
        (b"nothing=here", 400),
        (_button("some_other_button", EPISODE_B), 400),
        (_button("churnwatch_outcome_won", "no|such|episode|x"), 404),
    ]:
        answered = served.client.post(
            "/slack/interactions", content=body, headers=_signed(body, now)
        )
        assert answered.status_code == status, (body, answered.text)
    assert list_outcomes(served.store) == []


def test_kpis_of_the_tracked_days(served: Served) -> None:
    answered = served.client.get("/kpis")
    assert answered.status_code == 200, answered.text
    kpis = answered.json()
    assert kpis["as_of"] == "2024-03-04"
    assert (kpis["accounts_at_risk"], kpis["revenue_at_risk"], kpis["gmv_at_risk"]) == (
        1,
        40.0,
        400.0,
    )
    assert kpis["revenue_recovered"] == 100.0
    assert kpis["recovered_by_region"] == {"EU": 100.0}
    cells = {row["bucket"]: row for row in kpis["buckets"]}
    assert cells["L72H"]["at_risk_accounts"] == 1  # b churned 2 days before 2024-03-04
    assert cells["L24H"]["won_accounts"] == 1  # a came back on 2024-03-04
    earlier = served.client.get("/kpis", params={"as_of": "2024-03-02"}).json()
    assert (earlier["accounts_at_risk"], earlier["revenue_recovered"]) == (2, 0.0)


def test_kpis_before_anything_was_tracked_say_so(served: Served) -> None:
    answered = served.client.get("/kpis", params={"as_of": "2020-01-01"})
    assert answered.status_code == 200
    assert answered.json()["episodes"] == 0
