"""The API's commands: ``apikey create|list|revoke``, ``events drain|prune``, on a project."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from typer.testing import CliRunner

from churnwatch.api import authenticate
from churnwatch.cli import app
from churnwatch.inbox import check_events, pending_events, store_events
from churnwatch.store import INBOX_EVENTS, open_store
from churnwatch.warehouse import connect

runner = CliRunner()


def _project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "churnwatch.toml").write_text('[project]\nname = "cli-api"\n')
    return folder


def test_a_key_is_shown_once_stored_hashed_listed_and_revoked(tmp_path: Path) -> None:
    folder = _project(tmp_path)
    made = runner.invoke(
        app, ["apikey", "create", "--name", "crm sync", "--scope", "write", "-p", str(folder)]
    )
    assert made.exit_code == 0, made.output
    key = made.stdout.strip().splitlines()[-1]
    assert key.startswith("cw_")
    with open_store("sqlite:///churnwatch_ops.sqlite", base_dir=folder) as store:
        found = authenticate(store, key)
        assert found is not None
        assert (found.name, found.scope) == ("crm sync", "write")
    stored = (folder / "churnwatch_ops.sqlite").read_bytes()
    assert key.encode() not in stored
    listed = runner.invoke(app, ["apikey", "list", "-p", str(folder)])
    assert "crm sync" in listed.output
    assert key not in listed.output
    revoked = runner.invoke(app, ["apikey", "revoke", str(found.id), "-p", str(folder)])
    assert revoked.exit_code == 0, revoked.output
    with open_store("sqlite:///churnwatch_ops.sqlite", base_dir=folder) as store:
        assert authenticate(store, key) is None


def test_bad_scopes_and_ids_are_one_line_errors(tmp_path: Path) -> None:
    folder = _project(tmp_path)
    bad = runner.invoke(
        app, ["apikey", "create", "--name", "x", "--scope", "admin", "-p", str(folder)]
    )
    assert bad.exit_code == 2
    assert "expected one of read, write" in bad.output
    missing = runner.invoke(app, ["apikey", "revoke", "42", "-p", str(folder)])
    assert missing.exit_code == 2
    assert "no API key with id 42" in missing.output


def test_events_drain_moves_the_inbox_into_the_warehouse(tmp_path: Path) -> None:
    folder = _project(tmp_path)
    with connect("duckdb:///churnwatch.duckdb", base_dir=folder) as warehouse:
        warehouse.ensure_schema()
        import pyarrow as pa

        warehouse.append("accounts", pa.table({"account_id": ["a1"]}))
    when = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    events = [
        {
            "event_id": f"e{i}",
            "account_id": "a1",
            "event_type": "login",
            "event_time": (when + dt.timedelta(hours=i)).isoformat(),
        }
        for i in range(4)
    ]
    with open_store("sqlite:///churnwatch_ops.sqlite", base_dir=folder) as store:
        store_events(store, check_events(events).valid)
    drained = runner.invoke(app, ["events", "drain", "-p", str(folder)])
    assert drained.exit_code == 0, drained.output
    assert "4 posted event(s) drained: 4 loaded" in drained.output
    with open_store("sqlite:///churnwatch_ops.sqlite", base_dir=folder) as store:
        assert pending_events(store) == 0
    again = runner.invoke(app, ["events", "drain", "-p", str(folder)])
    assert "0 posted event(s) drained" in again.output
    # Just drained: kept (the default window is [store] inbox_keep_days, 30).
    kept = runner.invoke(app, ["events", "prune", "-p", str(folder)])
    assert kept.exit_code == 0, kept.output
    assert "0 drained event(s) older than 30 day(s) deleted" in kept.output
    with (
        open_store("sqlite:///churnwatch_ops.sqlite", base_dir=folder) as store,
        store.transaction() as connection,
    ):
        three_days_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=3)
        connection.execute(INBOX_EVENTS.update().values(drained_at=three_days_ago))
    pruned = runner.invoke(app, ["events", "prune", "--keep-days", "2", "-p", str(folder)])
    assert pruned.exit_code == 0, pruned.output
    assert "4 drained event(s) older than 2 day(s) deleted" in pruned.output
    refused = runner.invoke(app, ["events", "prune", "--keep-days", "0", "-p", str(folder)])
    assert refused.exit_code != 0
