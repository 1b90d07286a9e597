"""The command line: thin, readable, and never a stack trace for a user mistake."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from sqlglot import exp
from typer.testing import CliRunner

from churnwatch.cli import app
from churnwatch.config import load_settings, settings_reference
from churnwatch.features import FeatureSpec
from churnwatch.warehouse import Warehouse, connect

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


# The whole demo (simulate, ingest, backtest and train two models with their search, score,
# report) is the suite's longest test; it gets more than the default time limit.
@pytest.mark.timeout(1800)
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


# -- --table, [features] and progress ------------------------------------------------
def active_project(tmp_path: Path, extra: str = "") -> Path:
    """Account a is active all January; b only in its first week."""
    days = [f"a,2024-01-{d:02d} 10:00:00,login" for d in range(1, 32)]
    days += [f"b,2024-01-{d:02d} 09:00:00,view" for d in range(2, 9)]
    folder = project(tmp_path, "id,at,what\n" + "\n".join(days) + "\n")
    (folder / "churnwatch.toml").write_text(SOURCES + extra)
    return folder


def sorted_rows(frame: pa.Table) -> list[dict[str, object]]:
    return frame.sort_by([("account_id", "ascending"), ("cutoff", "ascending")]).to_pylist()


def test_labels_go_to_a_file_and_a_table_on_every_engine(
    tmp_path: Path, warehouse_url: str
) -> None:
    folder = active_project(tmp_path)
    url = ["--warehouse", warehouse_url]
    assert runner.invoke(app, ["ingest", "-p", str(folder), *url]).exit_code == 0
    out = tmp_path / "labels.parquet"
    arguments = ["labels", "-p", str(folder), "--kind", "inactivity", "--horizon", "7"]
    arguments += ["--at", "2024-01-10", "--out", str(out), "--table", "churn_labels", *url]
    result = runner.invoke(app, arguments)
    assert result.exit_code == 0, result.output
    assert "wrote 2 rows to table churn_labels" in result.output
    written = pq.read_table(out)
    assert written.column("churn_7d").to_pylist() == [0, 1]  # a stays, b went quiet
    with connect(warehouse_url) as wh:
        stored = wh.query(exp.select("*").from_("churn_labels"))
    assert stored.schema == written.schema
    assert sorted_rows(stored) == sorted_rows(written)
    # Run again: the table is replaced, not appended to.
    assert runner.invoke(app, arguments).exit_code == 0
    with connect(warehouse_url) as wh:
        assert wh.count("churn_labels") == 2


def test_features_go_to_a_file_and_a_table_on_every_engine(
    tmp_path: Path, warehouse_url: str
) -> None:
    folder = active_project(tmp_path)
    url = ["--warehouse", warehouse_url]
    assert runner.invoke(app, ["ingest", "-p", str(folder), *url]).exit_code == 0
    out = tmp_path / "features.csv"
    result = runner.invoke(
        app,
        [
            *("features", "-p", str(folder), "--at", "2024-01-10", "--at", "2024-01-20"),
            *("--out", str(out), "--table", "features_jan", *url),
        ],
    )
    assert result.exit_code == 0, result.output
    with connect(warehouse_url) as wh:
        stored = wh.query(exp.select("*").from_("features_jan"))
    assert stored.num_rows == 4
    assert stored.column("events_7d").type == pa.int64()
    written = pacsv.read_csv(out, convert_options=pacsv.ConvertOptions(column_types=stored.schema))
    assert sorted_rows(stored) == sorted_rows(written)
    by_key = {(r["account_id"], r["cutoff"].day): r for r in stored.to_pylist()}
    assert (by_key["a", 10]["events_7d"], by_key["b", 20]["events_7d"]) == (7, 0)


FEATURES_SECTION = """
[features]
top_event_types_count = 1
drop = ["events_all"]

[[features.add]]
name = "views_14d"
kind = "aggregate"
function = "count"
event_type = "view"
window_days = 14
"""


def test_features_follow_the_features_section(tmp_path: Path) -> None:
    folder = active_project(tmp_path, FEATURES_SECTION)
    assert runner.invoke(app, ["ingest", "-p", str(folder)]).exit_code == 0
    result = runner.invoke(app, ["features", "-p", str(folder), "--explain", "--drop", "events_7d"])
    assert result.exit_code == 0, result.output
    names = [line.split(" ", 1)[0] for line in result.output.strip().splitlines()]
    assert "views_14d" in names
    assert "login_30d" in names  # the one most frequent type gets features of its own
    assert "view_30d" not in names
    assert not {"events_all", "events_7d"} & set(names)  # the file's drop and --drop's
    # Dropping what the file drops already is no error.
    again = runner.invoke(app, ["features", "-p", str(folder), "--explain", "--drop", "events_all"])
    assert again.exit_code == 0, again.output
    unknown = runner.invoke(app, ["features", "-p", str(folder), "--explain", "--drop", "nope"])
    assert unknown.exit_code == 2
    assert "cannot drop feature 'nope'" in unknown.output


def test_a_bad_feature_table_names_its_key(tmp_path: Path) -> None:
    folder = active_project(tmp_path, FEATURES_SECTION.replace("window_days = 14", "weeks = 2"))
    result = runner.invoke(app, ["features", "-p", str(folder), "--explain"])
    assert result.exit_code == 2
    assert "features.add[0] (views_14d): only consistency features take weeks" in result.output
    assert "Traceback" not in result.output


def test_canonical_tables_cannot_be_overwritten(tmp_path: Path) -> None:
    folder = active_project(tmp_path)
    assert runner.invoke(app, ["ingest", "-p", str(folder)]).exit_code == 0
    for command in (
        ["labels", "-p", str(folder), "--at", "2024-01-10", "--table", "events"],
        ["features", "-p", str(folder), "--at", "2024-01-10", "--table", "quarantine"],
    ):
        result = runner.invoke(app, command)
        assert result.exit_code == 2, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1, result.output
        assert lines[0].startswith(f"error: cannot write to table '{command[-1]}'")
    with connect(f"duckdb:///{folder / 'churnwatch.duckdb'}") as wh:
        assert wh.count("events") == 38


def test_error_messages_keep_their_brackets(tmp_path: Path) -> None:
    # No subscriptions: the observation end cannot be inferred, and the message
    # quotes the project file's [data] section, which rich must not eat as markup.
    folder = active_project(tmp_path)
    assert runner.invoke(app, ["ingest", "-p", str(folder)]).exit_code == 0
    result = runner.invoke(app, ["labels", "-p", str(folder), "--start", "2024-01-01"])
    assert result.exit_code == 2, result.output
    assert "([data] observation_end = 'YYYY-MM-DD')" in result.output


def test_features_report_progress_per_query(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import churnwatch.features

    folder = active_project(tmp_path)
    assert runner.invoke(app, ["ingest", "-p", str(folder)]).exit_code == 0
    reported: list[tuple[int, int]] = []
    real = churnwatch.features.compute_features

    def compute(
        wh: Warehouse,
        cutoffs: pa.Table,
        specs: list[FeatureSpec],
        on_progress: Callable[[int, int], None] | None = None,
    ) -> pa.Table:
        assert on_progress is not None
        for done in range(3):
            on_progress(done + 1, 3)
            reported.append((done + 1, 3))
        return real(wh, cutoffs, specs)

    monkeypatch.setattr(churnwatch.features, "compute_features", compute)
    result = runner.invoke(app, ["features", "-p", str(folder), "--at", "2024-01-10"])
    assert result.exit_code == 0, result.output
    assert reported == [(1, 3), (2, 3), (3, 3)]
