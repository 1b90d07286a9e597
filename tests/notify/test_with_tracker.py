"""The tracker's outbox rows, delivered: the contract between the two sides holds end to end."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
from slack_sdk import WebClient
from tests.notify.conftest import SlackServer, outbox_rows

from churnwatch.config import NotifySettings, Settings
from churnwatch.notify import (
    CsmContact,
    CsmDirectory,
    FileChannel,
    SlackChannel,
    dispatch,
    queue_digests,
)
from churnwatch.store import Store
from churnwatch.tracker import track_snapshot


def snapshot(enabled: dict[str, bool]) -> pa.Table:
    accounts = sorted(enabled)
    return pa.table(
        {
            "account_id": accounts,
            "is_enabled": [enabled[a] for a in accounts],
            "name": [f"Shop {a}" for a in accounts],
            "csm_id": ["c1" if a < "m" else "c2" for a in accounts],
            "region": ["EU"] * len(accounts),
            "revenue": [100.0 * (i + 1) for i in range(len(accounts))],
            "gmv": [1000.0] * len(accounts),
        }
    )


def test_churns_and_follow_ups_reach_the_csm_once(store: Store, tmp_path: Path) -> None:
    days = [dt.date(2024, 3, d) for d in (1, 2, 4, 5, 9)]
    states = [
        {"alpha": True, "beta": True, "zulu": True},
        {"alpha": False, "beta": True, "zulu": False},  # two churns
        {"alpha": False, "beta": True, "zulu": True},  # zulu re-adopts
        {"alpha": False, "beta": True, "zulu": True},
        {"alpha": False, "beta": True, "zulu": True},
    ]
    out = tmp_path / "sent.jsonl"
    channels = {"file": FileChannel(out)}
    for day, state in zip(days, states, strict=True):
        now = dt.datetime.combine(day, dt.time(6), tzinfo=dt.UTC)
        track_snapshot(store, snapshot(state), date=day, now=now)
        track_snapshot(store, snapshot(state), date=day, now=now)  # a re-run queues nothing
        dispatch(store, channels, now=now)
    sent = [json.loads(line) for line in out.read_text().splitlines()]
    steps = [(m["account_id"], m["step"], m["payload"]["days_since_churn"]) for m in sent]
    # alpha: first at churn, second on day 2 after it, final after more than 3 days;
    # zulu re-adopted before its second step was due.
    assert steps == [
        ("alpha", "first", 0),
        ("zulu", "first", 0),
        ("alpha", "second", 2),
        ("alpha", "final", 7),  # day 5 fell in the second step's window: nothing new
    ]
    first = sent[0]
    assert first["subject"] == "Account turned the product off — Shop alpha (alpha)"
    assert first["csm_id"] == "c1"
    assert "Revenue: 100.00" in first["text"]
    assert {row["status"] for row in outbox_rows(store).values()} == {"sent"}
    assert len(outbox_rows(store)) == len(sent)


def test_the_tracker_rows_render_as_slack_blocks(store: Store, slack: SlackServer) -> None:
    settings = Settings(notify=NotifySettings(channel="slack"))
    now = dt.datetime(2024, 3, 2, 6, tzinfo=dt.UTC)
    for day, enabled in ((dt.date(2024, 3, 1), True), (dt.date(2024, 3, 2), False)):
        track_snapshot(store, snapshot({"alpha": enabled}), date=day, settings=settings, now=now)
    directory = CsmDirectory([CsmContact("c1", "Ana", "ana@example.com")])
    client = WebClient(token="xoxb-test", base_url=slack.url + "api/")
    report = dispatch(store, {"slack": SlackChannel(client, directory)}, now=now)
    assert report.sent == 1
    posted = slack.posted[0]
    assert posted["channel"] == "DU0ANA"
    fields = [f["text"] for f in posted["blocks"][1]["fields"]]
    assert fields[:3] == [
        "*Account*\nShop alpha (alpha)",
        "*Revenue at risk*\n100.00",
        "*Days since churn*\n0",
    ]
    buttons = posted["blocks"][-1]["elements"]
    (episode,) = {b["value"] for b in buttons}
    assert episode == "alpha||2024-03-02|snapshot"
    # The digest of the next morning lists the open episode for its CSM.
    assert queue_digests(store, date=dt.date(2024, 3, 3), channel="slack", now=now) == 1
    assert dispatch(store, {"slack": SlackChannel(client, directory)}, now=now).sent == 1
    assert slack.posted[1]["blocks"][2]["text"]["text"].startswith("*Shop alpha (alpha)*")
