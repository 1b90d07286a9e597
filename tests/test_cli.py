"""The command line: thin, readable, and never a stack trace for a user mistake."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from churnwatch.cli import app
from churnwatch.config import load_settings, settings_reference

runner = CliRunner()

SOURCES = """
[[sources]]
name = "accounts"
table = "accounts"
path = "accounts.csv"
columns = { account_id = "id", created_at = "signup" }

[[sources]]
name = "events"
table = "events"
path = "events.csv"
columns = { account_id = "id", event_time = "at", event_type = "what" }
"""


def project(tmp_path: Path, events: str = "id,at,what\na,2024-01-02 10:00:00,login\n") -> Path:
    (tmp_path / "churnwatch.toml").write_text(SOURCES)
    (tmp_path / "accounts.csv").write_text("id,signup\na,2024-01-01\nb,2024-01-01\n")
    (tmp_path / "events.csv").write_text(events)
    return tmp_path


def test_init_writes_a_valid_project_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["init", str(tmp_path / "p")])
    assert result.exit_code == 0, result.output
    settings = load_settings(tmp_path / "p")
    assert settings.sources == []
    again = runner.invoke(app, ["init", str(tmp_path / "p")])
    assert again.exit_code == 2
    assert "exists; pass --force" in again.output


def test_init_reference_prints_every_setting() -> None:
    result = runner.invoke(app, ["init", "--reference"])
    assert result.exit_code == 0
    assert "horizon_days" in result.output
    assert result.output.strip() == settings_reference().strip()


def test_ingest_then_status(tmp_path: Path) -> None:
    folder = project(
        tmp_path,
        "id,at,what\na,2024-01-02 10:00:00,login\n"
        "zz,2024-01-02 10:00:00,login\nb,yesterday,login\n",
    )
    result = runner.invoke(app, ["ingest", "-p", str(folder)])
    assert result.exit_code == 0, result.output
    assert "2 row(s) quarantined" in result.output
    status = runner.invoke(app, ["status", "-p", str(folder)])
    assert status.exit_code == 0, status.output
    assert "unknown_account" in status.output
    assert "unparseable" in status.output


def test_strict_ingest_fails_readably(tmp_path: Path) -> None:
    folder = project(tmp_path, "id,at,what\na,not-a-time,login\n")
    result = runner.invoke(app, ["ingest", "-p", str(folder), "--strict"])
    assert result.exit_code == 2
    assert "strict load" in result.output
    assert "Traceback" not in result.output


def test_user_mistakes_exit_2_without_a_trace(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["status", "-p", str(tmp_path)])
    assert missing.exit_code == 2
    assert "no project file" in missing.output
    (tmp_path / "churnwatch.toml").write_text("[churn]\nhorizon_days = -1\n")
    invalid = runner.invoke(app, ["status", "-p", str(tmp_path)])
    assert invalid.exit_code == 2
    assert "churn.horizon_days" in invalid.output
    assert "Traceback" not in invalid.output + missing.output


def test_a_file_that_does_not_fit_is_reported_and_others_still_load(tmp_path: Path) -> None:
    folder = project(tmp_path, "wrong,columns\n1,2\n")
    result = runner.invoke(app, ["ingest", "-p", str(folder)])
    assert result.exit_code == 1
    assert "column 'id'" in result.output
    status = runner.invoke(app, ["status", "-p", str(folder)])
    assert "accounts" in status.output


def test_init_with_a_preset_then_ingest(tmp_path: Path) -> None:
    data = Path(__file__).resolve().parents[2] / "shared" / "data" / "telco"
    if not data.is_dir():
        import pytest

        pytest.skip(f"shared datasets not found at {data}")
    result = runner.invoke(
        app, ["init", str(tmp_path / "p"), "--preset", "telco", "--data", str(data)]
    )
    assert result.exit_code == 0, result.output
    loaded = runner.invoke(app, ["ingest", "-p", str(tmp_path / "p")])
    assert loaded.exit_code == 0, loaded.output
    assert "7,043" in loaded.output
    unknown = runner.invoke(
        app, ["init", str(tmp_path / "q"), "--preset", "nope", "--data", str(data)]
    )
    assert unknown.exit_code == 2
    assert "telco" in unknown.output


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", str(tmp_path / "demo"), "--accounts", "200"])
    assert result.exit_code == 0, result.output
    assert "quarantine: empty" in result.output
    settings = load_settings(tmp_path / "demo")
    assert {s.table for s in settings.sources} >= {"accounts", "events", "subscriptions"}
    assert settings.data.observation_end is not None
    project_dir = str(tmp_path / "demo")
    explained = runner.invoke(app, ["features", "-p", project_dir, "--explain"])
    assert explained.exit_code == 0, explained.output
    assert (
        "events_30d (int64): count of events in the 30 days before the cutoff" in explained.output
    )
    out = tmp_path / "features.parquet"
    computed = runner.invoke(
        app, ["features", "-p", project_dir, "--at", "2024-12-01", "--out", str(out)]
    )
    assert computed.exit_code == 0, computed.output
    import pyarrow.parquet as pq

    frame = pq.read_table(out)
    assert frame.num_rows > 0
    assert len(frame.column_names) == len(explained.output.strip().splitlines()) + 2
    bad = runner.invoke(app, ["features", "-p", project_dir, "--at", "December"])
    assert bad.exit_code == 2
    assert "expected a date" in bad.output


def test_labels_on_socialnet7(tmp_path: Path) -> None:
    data = Path(__file__).resolve().parents[2] / "shared" / "data" / "socialnet7"
    if not data.is_dir():
        import pytest

        pytest.skip(f"shared datasets not found at {data}")
    folder = tmp_path / "p"
    assert (
        runner.invoke(
            app, ["init", str(folder), "--preset", "fightchurn", "--data", str(data)]
        ).exit_code
        == 0
    )
    loaded = runner.invoke(
        app, ["ingest", "-p", str(folder), "--source", "account", "--source", "subscription"]
    )
    assert loaded.exit_code == 0, loaded.output
    out = tmp_path / "labels.parquet"
    result = runner.invoke(
        app, ["labels", "-p", str(folder), "--start", "2020-02-01", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "2020-06-01" in result.output  # the observation end it used, said
    import pyarrow.parquet as pq

    frame = pq.read_table(out)
    assert frame.column_names == ["account_id", "cutoff", "churn_30d"]
    # February's cutoff: 998 examples, 54 churners (see tests/labels/test_socialnet7.py).
    february = [r for r in frame.to_pylist() if r["cutoff"].month == 2]
    assert (len(february), sum(r["churn_30d"] for r in february)) == (998, 54)
    missing = runner.invoke(app, ["labels", "-p", str(folder)])
    assert missing.exit_code == 2
    assert "--start" in missing.output
