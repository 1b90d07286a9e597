"""``churnwatch notify dispatch`` and ``churnwatch notify csms``."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pytest
from tests.notify.conftest import WEBHOOK_SECRET, WebhookServer, outbox_rows, queue
from typer.testing import CliRunner

from churnwatch.cli import app
from churnwatch.config import NotifySettings, Settings, save_settings
from churnwatch.store import TRACKER_ACCOUNTS, open_store
from churnwatch.warehouse import connect

runner = CliRunner()
NOW = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)


def project(tmp_path: Path, **notify: object) -> Path:
    folder = tmp_path / "proj"
    folder.mkdir()
    save_settings(Settings(notify=NotifySettings.model_validate(notify)), folder)
    return folder


def test_dry_run_prints_and_changes_nothing_then_dispatch_delivers_once(tmp_path: Path) -> None:
    folder = project(tmp_path, channel="file", file_path="out/notes.jsonl")
    with open_store("sqlite:///churnwatch_ops.sqlite", base_dir=folder) as store:
        keys = queue(store, 2, channel="file", at=NOW)
    dry = runner.invoke(app, ["notify", "dispatch", "-p", str(folder), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "Account turned the product off — Merchant 1 (acct1)" in dry.output
    assert "2 notification(s) due; nothing was sent (dry run)." in dry.output
    assert not (folder / "out").exists()
    with open_store("sqlite:///churnwatch_ops.sqlite", base_dir=folder) as store:
        assert {row["status"] for row in outbox_rows(store).values()} == {"pending"}

    sent = runner.invoke(app, ["notify", "dispatch", "-p", str(folder)])
    assert sent.exit_code == 0, sent.output
    lines = (folder / "out" / "notes.jsonl").read_text().splitlines()
    assert [json.loads(line)["idempotency_key"] for line in lines] == keys
    again = runner.invoke(app, ["notify", "dispatch", "-p", str(folder)])
    assert again.exit_code == 0, again.output
    assert len((folder / "out" / "notes.jsonl").read_text().splitlines()) == 2


def test_a_channel_without_its_secret_waits_and_says_what_to_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    folder = project(tmp_path, channel="slack")
    with open_store("sqlite:///churnwatch_ops.sqlite", base_dir=folder) as store:
        queue(store, 3, channel="slack", at=NOW)
    result = runner.invoke(app, ["notify", "dispatch", "-p", str(folder)])
    assert result.exit_code == 1
    assert (
        "waiting: 3 notification(s) for channel 'slack': set the environment variable "
        "SLACK_BOT_TOKEN" in result.output
    )
    with open_store("sqlite:///churnwatch_ops.sqlite", base_dir=folder) as store:
        assert {row["status"] for row in outbox_rows(store).values()} == {"pending"}


def test_webhook_secret_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, webhook: WebhookServer
) -> None:
    monkeypatch.setenv("HOOK_SECRET", WEBHOOK_SECRET)
    folder = project(
        tmp_path, channel="webhook", webhook_url=webhook.url, webhook_secret_env="HOOK_SECRET"
    )
    assert WEBHOOK_SECRET not in (folder / "churnwatch.toml").read_text()
    with open_store("sqlite:///churnwatch_ops.sqlite", base_dir=folder) as store:
        keys = queue(store, 2, channel="webhook", at=NOW)
    result = runner.invoke(app, ["notify", "dispatch", "-p", str(folder)])
    assert result.exit_code == 0, result.output
    assert webhook.accepted == keys  # the receiver checked each signature with the secret


def test_csms_lists_who_cannot_be_reached(tmp_path: Path) -> None:
    folder = project(tmp_path, channel="email")
    with connect("duckdb:///churnwatch.duckdb", base_dir=folder) as warehouse:
        warehouse.ensure_schema()
        warehouse.append(
            "csms",
            pa.table(
                {
                    "csm_id": ["c1", "c2"],
                    "name": ["Ana Silva", "Bo Chen"],
                    "email": ["ana@example.com", None],
                    "slack_user_id": [None, "U0BO"],
                }
            ),
        )
    day = dt.date(2024, 3, 1)
    accounts = [
        {
            "account_id": f"a{i}",
            "product": "",
            "csm_id": csm,
            "is_enabled": True,
            "state": "active",
            "first_seen": day,
            "last_seen": day,
            "updated_date": day,
        }
        for i, csm in enumerate(["c1", "Ana Silva", "c2", "c2", "Zed"])
    ]
    with open_store("sqlite:///churnwatch_ops.sqlite", base_dir=folder) as store:
        with store.transaction() as connection:
            connection.execute(TRACKER_ACCOUNTS.insert(), accounts)
        queue(store, 1, channel="email", csm="Zed", at=NOW)
    result = runner.invoke(app, ["notify", "csms", "-p", str(folder)], terminal_width=200)
    assert result.exit_code == 1, result.output
    rows = [line for line in result.output.splitlines() if "│" in line]
    cells = [[cell.strip() for cell in row.split("│")[1:-1]] for row in rows]
    assert cells == [
        ["Zed", "1", "1", "not in the csms table"],
        ["c2", "2", "0", "no e-mail in the csms table"],
    ]
    assert "2 of 4 CSM(s) cannot be reached" in result.output
    slack = runner.invoke(app, ["notify", "csms", "-p", str(folder), "--channel", "slack"])
    assert slack.exit_code == 1
    assert "Zed" in slack.output
    assert "c2" not in slack.output.split("unreachable on slack")[1].split("cannot")[0]


def test_the_daily_digest_is_queued_once_a_day(tmp_path: Path) -> None:
    from churnwatch.store import CHURN_LEDGER

    folder = project(tmp_path, channel="file", digest=True)
    episode = {
        "episode_id": "a1||2024-03-01|snapshot",
        "account_id": "a1",
        "product": "",
        "source": "snapshot",
        "churned_at": NOW - dt.timedelta(days=2),
        "name": "Acme",
        "csm_id": "c1",
        "revenue_at_risk": 250.0,
        "holdout": False,
        "steps_sent": "[]",
    }
    store = open_store("sqlite:///churnwatch_ops.sqlite", base_dir=folder)
    with store, store.transaction() as connection:
        connection.execute(CHURN_LEDGER.insert(), [episode])
    first = runner.invoke(app, ["notify", "dispatch", "-p", str(folder)])
    # The digest counts days to the UTC date of the dispatch, which is not
    # NOW's date when the module was imported just before midnight.
    dispatched_on = dt.datetime.now(dt.UTC).date()
    assert first.exit_code == 0, first.output
    assert "1 daily digest(s) queued." in first.output
    again = runner.invoke(app, ["notify", "dispatch", "-p", str(folder)])
    assert "digest" not in again.output
    (line,) = (folder / "notifications.jsonl").read_text().splitlines()
    sent = json.loads(line)
    assert sent["kind"] == "digest"
    assert sent["csm_id"] == "c1"
    days = (dispatched_on - episode["churned_at"].date()).days
    assert days in (2, 3)
    assert sent["text"].splitlines()[1] == (
        f"  - Acme (a1): revenue at risk 250.00, {days} days since churn"
    )
