"""Templates, the CSM directory, the file and console channels, and the daily digest."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.notify.conftest import T0, outbox_rows

from churnwatch.notify import (
    ConsoleChannel,
    CsmContact,
    CsmDirectory,
    FileChannel,
    Notification,
    dispatch,
    queue_digests,
    render_subject,
    render_text,
)
from churnwatch.store import CHURN_LEDGER, OUTBOX, Store
from churnwatch.warehouse import connect


def note(kind: str = "churn", **payload: object) -> Notification:
    return Notification(
        7, f"ep|{kind}|file", "file", kind, "second", "c1", payload, episode_id="ep1"
    )


# -- templates ----------------------------------------------------------------------------------
def test_the_text_of_a_follow_up_written_out_by_hand() -> None:
    message = note(
        "followup",
        name="Café <Lyon> & Co",
        account_id="m-42",
        product="payments",
        revenue=12000,
        gmv=None,
        region="FR",
        revenue_at_risk=3456.789,
        days_since_churn=2,
        reasons=["fewer orders", "price increase"],
    )
    assert render_text(message) == (
        "Follow-up: account still off — Café <Lyon> & Co (m-42) — payments\n"
        "Account: Café <Lyon> & Co (m-42) — payments\n"
        "Revenue at risk: 3,456.79\n"
        "Days since churn: 2\n"
        "Revenue: 12,000.00\n"
        "Region: FR\n"
        "CSM: c1\n"
        "Top reasons:\n"
        "  - fewer orders\n"
        "  - price increase\n"
        "Record the outcome: won, lost or not useful (episode ep1)."
    )


def test_a_risk_alert_shows_the_risk_instead_of_days() -> None:
    text = render_text(note("risk_alert", name="Acme", risk_score=0.734, reasons='["a", "b"]'))
    assert "Churn risk: 73%" in text
    assert "Days since churn" not in text
    assert "  - a\n  - b" in text  # reasons stored as JSON text are read as a list


def test_missing_facts_read_unknown() -> None:
    message = Notification(1, "k", "file", "final", "final", None, {})
    assert render_subject(message) == "Final reminder: account still off — unknown account"
    assert "Revenue at risk: unknown" in render_text(message)


def test_slack_text_is_escaped() -> None:
    from churnwatch.notify import slack_blocks

    blocks = slack_blocks(note(name="A<b>&c", reasons=["<@U123> said *no*"]))
    assert "*Account*\nA&lt;b&gt;&amp;c" in [f["text"] for f in blocks[1]["fields"]]
    assert "&lt;@U123&gt;" in blocks[2]["text"]["text"]  # no injected mention


# -- the directory ------------------------------------------------------------------------------
def test_the_directory_finds_by_id_then_name_and_says_who_is_unreachable() -> None:
    directory = CsmDirectory(
        [
            CsmContact("c1", "Ana Silva", "ana@example.com"),
            CsmContact("c2", "Bo Chen", None, "U0BO"),
            CsmContact("c3", "Same Name", "x@example.com"),
            CsmContact("c4", "same  name", "y@example.com"),
            CsmContact("c5", None),
        ]
    )
    assert directory.find("c2") == CsmContact("c2", "Bo Chen", None, "U0BO")
    assert directory.find("ANA  silva") == directory.find("c1")
    assert directory.find("Same Name") is None
    refs = ["c1", "Bo Chen", "Same Name", "c5", "ghost", None, "c1"]
    assert [(u.csm_ref, u.reason) for u in directory.unmapped(refs, channel="email")] == [
        ("Bo Chen", "no e-mail in the csms table"),
        ("Same Name", "the name is shared by several CSMs; use the csm_id"),
        ("c5", "no e-mail in the csms table"),
        ("ghost", "not in the csms table"),
        ("", "the account has no CSM"),
    ]
    slack = [u.csm_ref for u in directory.unmapped(refs, channel="slack")]
    assert slack == ["Same Name", "c5", "ghost", ""]
    assert directory.unmapped(refs, channel="webhook") == []


def test_the_directory_reads_the_warehouse_csms_table(tmp_path: Path) -> None:
    import pyarrow as pa

    with connect(f"duckdb:///{tmp_path / 'wh.duckdb'}") as warehouse:
        warehouse.ensure_schema()
        rows = pa.table(
            {
                "csm_id": ["c2", "c1"],
                "name": ["Bo", "Ana"],
                "email": ["", "ana@example.com"],
                "slack_user_id": [None, "U1"],
            }
        )
        warehouse.append("csms", rows)
        directory = CsmDirectory.from_warehouse(warehouse)
    assert directory.contacts() == [
        CsmContact("c1", "Ana", "ana@example.com", "U1"),
        CsmContact("c2", "Bo", None, None),
    ]


def test_a_repeated_csm_id_is_refused() -> None:
    with pytest.raises(ValueError, match="'c1' appears twice"):
        CsmDirectory([CsmContact("c1"), CsmContact("c1")])


# -- file and console ---------------------------------------------------------------------------
def test_file_and_console_channels(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "out.jsonl"
    channel = FileChannel(path)
    assert channel.deliver(note(name="Acme")) == "out.jsonl@0"
    first_length = path.stat().st_size
    assert channel.deliver(note("final", name="Beta")) == f"out.jsonl@{first_length}"
    first, second = (json.loads(line) for line in path.read_text().splitlines())
    assert (first["kind"], first["payload"]["name"], first["episode_id"]) == (
        "churn",
        "Acme",
        "ep1",
    )
    assert second["subject"] == "Final reminder: account still off — Beta"
    out = io.StringIO()
    ConsoleChannel(out).deliver(note(name="Acme"))
    assert out.getvalue() == render_text(note(name="Acme")) + "\n\n"


# -- the digest ---------------------------------------------------------------------------------
def ledger_row(episode: str, csm: str | None, **changes: object) -> dict[str, object]:
    row: dict[str, object] = {
        "episode_id": episode,
        "account_id": episode,
        "product": "",
        "source": "snapshot",
        "churned_at": T0 - dt.timedelta(days=3),
        "name": f"Name {episode}",
        "csm_id": csm,
        "region": "EU",
        "revenue": 100.0,
        "gmv": 1000.0,
        "revenue_at_risk": 100.0,
        "risk_score": None,
        "reasons": json.dumps(["fewer logins"]),
        "holdout": False,
        "steps_sent": "[]",
        "closed_reason": None,
    }
    row.update(changes)
    return row


def test_one_digest_per_csm_once_a_day_without_holdout(store: Store, tmp_path: Path) -> None:
    rows = [
        ledger_row("a", "c1", revenue_at_risk=50.0),
        ledger_row("b", "c1", revenue_at_risk=500.0, churned_at=T0 - dt.timedelta(days=10)),
        ledger_row("c", "c2"),
        ledger_row("d", "c2", holdout=True),  # never contacted: the impact measure needs it
        ledger_row("e", "c3", closed_reason="outcome"),
        ledger_row("f", None),
    ]
    with store.transaction() as connection:
        connection.execute(CHURN_LEDGER.insert(), rows)
    day = dt.date(2024, 3, 1)
    assert queue_digests(store, date=day, channel="file", now=T0) == 2
    assert queue_digests(store, date=day, channel="file", now=T0) == 0  # already queued
    queued = outbox_rows(store)
    assert sorted(queued) == ["digest|c1|2024-03-01|file", "digest|c2|2024-03-01|file"]
    payload = json.loads(queued["digest|c1|2024-03-01|file"]["payload"])
    assert [(a["episode_id"], a["days_since_churn"]) for a in payload["accounts"]] == [
        ("b", 10),  # largest revenue at risk first
        ("a", 3),
    ]
    assert [
        a["episode_id"]
        for a in json.loads(queued["digest|c2|2024-03-01|file"]["payload"])["accounts"]
    ] == ["c"]
    out = tmp_path / "digest.jsonl"
    assert dispatch(store, {"file": FileChannel(out)}, now=T0).sent == 2
    text = json.loads(out.read_text().splitlines()[0])["text"]
    assert text.splitlines() == [
        "Your accounts at risk today — 2 accounts",
        "  - Name b (b): revenue at risk 500.00, 10 days since churn",
        "  - Name a (a): revenue at risk 50.00, 3 days since churn",
    ]
    with store.engine.connect() as connection:
        kinds = connection.execute(sa.select(OUTBOX.c.kind, OUTBOX.c.status)).all()
    assert sorted(kinds) == [("digest", "sent"), ("digest", "sent")]


def test_a_follow_up_of_a_risk_alert_speaks_of_risk() -> None:
    message = Notification(
        1,
        "k",
        "file",
        "followup",
        "second",
        "c1",
        {"name": "Acme", "source": "risk", "risk_score": 0.41, "days_since_churn": 2},
    )
    assert render_subject(message) == "Follow-up: churn risk still high — Acme"
    facts = dict(message.facts())
    assert (facts["Churn risk"], facts["Days since alert"]) == ("41%", "2")
    assert "Days since churn" not in facts
