"""``churnwatch daily``, ``outcome record``, ``outcome import-crm``, ``kpis`` and ``serve``."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pyarrow as pa
import pytest
from sqlglot import exp
from typer.testing import CliRunner

from churnwatch.cli import app
from churnwatch.config import NotifySettings, Settings, save_settings
from churnwatch.daily import daily_lock
from churnwatch.outputs import write_table
from churnwatch.store import open_store
from churnwatch.warehouse import connect

runner = CliRunner()


def _project(tmp_path: Path) -> Path:
    folder = tmp_path / "proj"
    folder.mkdir()
    save_settings(
        Settings(notify=NotifySettings(channel="file", file_path="out/notes.jsonl")), folder
    )
    return folder


def _snapshot(folder: Path, name: str, enabled: tuple[bool, bool]) -> Path:
    path = folder / name
    path.write_text(
        "account_id,is_enabled,csm_id,region,revenue,gmv\n"
        f"a,{str(enabled[0]).lower()},c1,EU,100,1000\n"
        f"b,{str(enabled[1]).lower()},c2,NA,40,400\n"
    )
    return path


def _run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_daily_outcome_crm_and_kpis_from_the_command_line(tmp_path: Path) -> None:
    folder = _project(tmp_path)
    p = ["-p", str(folder)]
    day1 = _snapshot(tmp_path, "d1.csv", (True, True))
    day2 = _snapshot(tmp_path, "d2.csv", (False, False))
    day4 = _snapshot(tmp_path, "d4.csv", (True, False))
    _run("daily", "--date", "2024-03-01", "--snapshot", str(day1), "--no-score", *p)
    out = _run("daily", "--date", "2024-03-02", "--snapshot", str(day2), "--no-score", *p)
    assert "tracked 2024-03-02 (2 rows): churned 2, queued 2." in out
    assert "notifications: 2 sent" in out
    again = _run("daily", "--date", "2024-03-02", "--snapshot", str(day2), "--no-score", *p)
    assert "2024-03-02 was already tracked: nothing changed." in again
    assert "notifications: 0 sent" in again
    notes = (folder / "out" / "notes.jsonl").read_text().splitlines()
    assert sorted(json.loads(n)["payload"]["account_id"] for n in notes) == ["a", "b"]

    recorded = _run("outcome", "record", "won", "--account", "a", "--notes", "called", *p)
    assert "recorded won for episode a||2024-03-02|snapshot" in recorded
    crm = tmp_path / "crm.csv"
    crm.write_text("account,csm,time,kind,notes\na,c1,2024-03-02 15:00,call,\n")
    assert "1 CRM activity added" in _run("outcome", "import-crm", str(crm), *p)
    _run("daily", "--date", "2024-03-04", "--snapshot", str(day4), "--no-score", *p)

    kpis = json.loads(_run("kpis", "--json", *p))
    assert kpis["as_of"] == "2024-03-04"
    assert (kpis["csm_true_wins"], kpis["csm_revenue_recovered"]) == (1, 100.0)
    assert (kpis["accounts_at_risk"], kpis["revenue_at_risk"]) == (1, 40.0)
    assert kpis["median_hours_to_first_contact"] == 15.0
    table = _run("kpis", *p)
    assert "KPIs as of 2024-03-04" in table
    assert "csm true win" in table
    # Day 4: b's 'second' step; a re-adopted (and was answered): nothing for it.
    assert len((folder / "out" / "notes.jsonl").read_text().splitlines()) == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["outcome", "record", "maybe", "--account", "a"], "unknown outcome 'maybe'"),
        (["kpis", "--as-of", "soon"], "--as-of 'soon' is not a date"),
        (["kpis"], "nothing was tracked yet"),
        (["daily", "--date", "2024-03-01", "--snapshot", "nowhere.csv"], "no snapshot file"),
        (["outcome", "import-crm", "missing.csv"], "cannot read the CRM file"),
    ],
)
def test_mistakes_are_one_line_and_exit_code_2(
    tmp_path: Path, args: list[str], message: str
) -> None:
    folder = _project(tmp_path)
    result = runner.invoke(app, [*args, "-p", str(folder)])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_a_second_daily_run_is_refused_while_one_holds_the_lock(tmp_path: Path) -> None:
    folder = _project(tmp_path)
    day1 = _snapshot(tmp_path, "d1.csv", (True, True))
    args = ["daily", "--date", "2024-03-01", "--snapshot", str(day1), "--no-score"]
    with (
        open_store("sqlite:///churnwatch_ops.sqlite", base_dir=folder) as store,
        daily_lock(store),
    ):
        result = runner.invoke(app, [*args, "-p", str(folder)])
    assert result.exit_code == 2
    assert "another churnwatch daily run is in progress" in result.output


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_serve_answers_over_http(tmp_path: Path) -> None:
    folder = _project(tmp_path)
    port = _free_port()
    environment = {k: v for k, v in os.environ.items() if k != "SLACK_SIGNING_SECRET"}
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "churnwatch"),
            "serve",
            "--port",
            str(port),
            "-p",
            str(folder),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=environment,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                answered = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stderr.read() if server.stderr else ""
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        assert answered.status_code == 200
        assert answered.json()["store_reachable"]
        # Every other endpoint wants an API key.
        assert httpx.get(f"http://127.0.0.1:{port}/outcomes").status_code == 401
        slack = httpx.post(f"http://127.0.0.1:{port}/slack/interactions", content=b"x")
        assert slack.status_code == 503
        assert "SLACK_SIGNING_SECRET" in slack.json()["detail"]
    finally:
        server.terminate()
        server.wait(timeout=30)
        if server.stderr is not None:
            server.stderr.close()


def test_daily_reads_the_warehouse_snapshot_and_raises_risk_alerts(tmp_path: Path) -> None:
    folder = _project(tmp_path)
    day = dt.date(2024, 3, 2)
    with connect("duckdb:///churnwatch.duckdb", base_dir=folder) as warehouse:
        warehouse.ensure_schema()
        snapshot = {
            "snapshot_date": [day, day, day - dt.timedelta(days=1)],
            "account_id": ["a", "b", "a"],
            "is_enabled": [False, True, True],
            "revenue": [10.0, 20.0, 10.0],
        }
        schema = warehouse.query(exp.select("*").from_("adoption_snapshots").limit(0)).schema
        columns = {
            field.name: pa.array(snapshot.get(field.name, [None] * 3), field.type)
            for field in schema
        }
        warehouse.append("adoption_snapshots", pa.table(columns))
        scored = dt.datetime(2024, 3, 2, 6, tzinfo=dt.UTC)
        write_table(
            warehouse,
            "risk_scores",
            pa.table(
                {
                    "target": ["churn_30d", "churn_30d"],
                    "scored_at": [scored, scored],
                    "account_id": ["a", "b"],
                    "score": [0.2, 0.9],
                }
            ),
        )
    first = _run("daily", "--date", "2024-03-01", "--no-score", "-p", str(folder))
    assert "tracked 2024-03-01 (1 rows): new 1" in first
    assert "risk alerts" not in first  # the scoring is of the next day
    out = _run("daily", "--date", "2024-03-02", "--no-score", "-p", str(folder))
    assert "tracked 2024-03-02 (2 rows)" in out
    assert "risk alerts: 1 opened, 1 notification(s) queued." in out
    notes = (folder / "out" / "notes.jsonl").read_text().splitlines()
    kinds = sorted(json.loads(n)["kind"] for n in notes)
    assert kinds == ["churn", "risk_alert"]
