"""Survival on a whole project: a small simulated business, and the Telco table, via the CLI.

The simulated business is ingested once; checks compare the survival
module's populations with the labels' (the same accounts at risk), and the
CLI's output and files with the library's results.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lifelines import KaplanMeierFitter
from typer.testing import CliRunner, Result

from churnwatch.cli import app
from churnwatch.config import ChurnSettings, Settings, save_settings
from churnwatch.errors import AnalysisError
from churnwatch.ingest import ingest
from churnwatch.labels import LabelSpec, accounts_at_risk
from churnwatch.simulate import simulate
from churnwatch.survival import (
    BEHAVIOUR_COVARIATES,
    analyze_survival,
    cox_on_features,
    derive_durations,
    landmark_frame,
    time_to_churn,
)
from churnwatch.warehouse import connect

runner = CliRunner()
TELCO = Path(__file__).parents[2].parent / "shared" / "data" / "telco"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project folder with a simulated business ingested into DuckDB."""
    folder = tmp_path_factory.mktemp("survival")
    result = simulate(folder / "sim", n_accounts=400, seed=3, events_per_account=20)
    settings = result.settings()
    save_settings(settings, folder)
    with connect(f"duckdb:///{folder / 'churnwatch.duckdb'}") as wh:
        report = ingest(settings, wh, now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
        assert not report.errors
    return folder


def open_project(project: Path) -> tuple[Settings, str]:
    from churnwatch.config import load_settings

    return load_settings(project), f"duckdb:///{project / 'churnwatch.duckdb'}"


def invoke(*arguments: str) -> Result:
    result = runner.invoke(app, list(arguments))
    assert "Traceback" not in result.output, result.output
    return result


def test_grouped_curves_split_the_overall_one(project: Path) -> None:
    settings, url = open_project(project)
    with connect(url) as wh:
        analysis = analyze_survival(wh, settings, by="platform", basis="subscription")
    curves = analysis.by_group
    assert curves is not None
    assert curves.logrank is not None
    medians = analysis.medians.set_index("group")
    assert medians.loc["all", "accounts"] == medians.drop(index="all")["accounts"].sum()
    assert medians.loc["all", "churned"] == medians.drop(index="all")["churned"].sum()
    frame = analysis.durations.frame
    for group in curves.groups:
        part = frame.loc[frame["platform"] == group]
        reference = KaplanMeierFitter().fit(part["duration_days"], part["event_observed"])
        ours = curves.survival.loc[curves.survival["group"] == group, "survival"]
        np.testing.assert_allclose(ours, reference.survival_function_.iloc[:, 0], atol=1e-12)
    text = analysis.describe()
    assert "Observation end: " in text
    assert "(given: stated by the user)" in text
    assert "log-rank test" in text
    assert f"{curves.logrank.p_value:.3g}" in analysis.figure().layout.title.text


def test_landmark_population_is_the_labels_population(project: Path) -> None:
    """The accounts a Cox model follows from a cutoff are those the churn label counts at
    risk there; each is followed to its churn or to the observation end."""
    settings, url = open_project(project)
    with connect(url) as wh:
        frame, cutoff = landmark_frame(wh, settings, basis="subscription")
        spec = LabelSpec("subscription", grace_days=settings.churn.grace_days)
        at_risk = accounts_at_risk(wh, spec, cutoff)
        durations = derive_durations(wh, settings, basis="subscription", periods="all")
    assert settings.data.observation_end is not None
    end = dt.datetime.fromisoformat(settings.data.observation_end).replace(tzinfo=dt.UTC)
    assert cutoff == end - dt.timedelta(days=90)
    assert sorted(frame["account_id"]) == at_risk.column("account_id").to_pylist()
    assert (frame["duration_days"] > 0).all()
    follow_days = (end - cutoff) / dt.timedelta(days=1)
    censored = frame.loc[frame["event_observed"] == 0, "duration_days"]
    assert (censored <= follow_days + 1e-9).all()  # days are floats of microseconds
    # An account's event is its running period's event.
    running = durations.frame.loc[
        (durations.frame["started_at"] < cutoff)
        & (
            durations.frame["started_at"] + pd.to_timedelta(durations.frame["duration_days"], "D")
            > cutoff
        )
    ].set_index("account_id")
    events = frame.set_index("account_id")["event_observed"]
    assert (events == running.loc[events.index, "event_observed"]).all()
    assert [c for c in frame.columns if c in BEHAVIOUR_COVARIATES]


def test_cox_on_features_and_its_errors(project: Path) -> None:
    settings, url = open_project(project)
    with connect(url) as wh:
        result = cox_on_features(wh, settings, basis="subscription")
        assert set(result.summary["covariate"]) <= set(BEHAVIOUR_COVARIATES)
        assert len(result.ph_test) == len(result.summary)
        assert result.ph_test["verdict"].str.match("^(holds|violated)").all()
        named = cox_on_features(
            wh, settings, basis="subscription", covariates=["days_since_last_event"]
        )
        assert named.summary["covariate"].tolist() == ["days_since_last_event"]
        with pytest.raises(AnalysisError, match="unknown feature\\(s\\) colour"):
            cox_on_features(wh, settings, covariates=["colour"])
        with pytest.raises(AnalysisError, match="is not before the observation end"):
            cox_on_features(wh, settings, cutoff="2100-01-01")


def test_time_to_churn_covers_the_running_accounts(project: Path) -> None:
    settings, url = open_project(project)
    with connect(url) as wh:
        found = time_to_churn(wh, settings, basis="subscription")
        end = found.as_of
        running = accounts_at_risk(wh, LabelSpec("subscription"), end)
    assert sorted(found.frame["account_id"]) == running.column("account_id").to_pylist()
    frame = found.frame
    reached = frame["median_reached"]
    assert (frame.loc[reached, "predicted_days_to_churn"] >= 0).all()
    assert frame.loc[~reached, "predicted_days_to_churn"].isna().all()
    assert (frame.loc[~reached, "more_than_days"] >= 0).all()


def test_cli_survival_on_a_simulated_project(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "curves.csv"
    result = invoke(
        "survival", "-p", str(project), "--by", "plan", "--basis", "activity", "--out", str(out)
    )
    assert result.exit_code == 0, result.output
    assert "median lifetime" in result.output
    assert "day 90" in result.output
    assert "log-rank" in result.output
    written = pd.read_csv(out)
    settings, url = open_project(project)
    with connect(url) as wh:
        analysis = analyze_survival(wh, settings, by="plan", basis="activity")
    assert analysis.by_group is not None
    np.testing.assert_allclose(written["survival"], analysis.by_group.survival["survival"])


def test_cli_survival_on_telco_and_its_errors(tmp_path: Path) -> None:
    if not TELCO.is_dir():
        pytest.skip(f"{TELCO} is absent (CI keeps ../shared/data beside the repository)")
    folder = tmp_path / "telco"
    assert invoke("init", str(folder), "--preset", "telco", "--data", str(TELCO)).exit_code == 0
    assert invoke("ingest", "-p", str(folder)).exit_code == 0
    figure = tmp_path / "km.html"
    result = invoke("survival", "-p", str(folder), "--by", "plan", "--out", str(figure))
    assert result.exit_code == 0, result.output
    assert "snapshot basis" in result.output
    assert "7,043 accounts, 1,869 churned" in result.output
    assert "Month-to-month" in result.output
    assert "> 2192" in result.output  # no median overall: "more than", not a number
    assert "plotly" in figure.read_text(encoding="utf-8").lower()
    for arguments, message in (
        (["--by", "nope"], "no account has attribute 'nope'"),
        (["--basis", "activity"], "no events to derive durations from"),
        (["--basis", "tenure"], "--basis 'tenure': expected subscription"),
        (["--out", str(tmp_path / "x.txt")], "write to a .html, .csv or .parquet file"),
    ):
        failed = invoke("survival", "-p", str(folder), *arguments)
        assert failed.exit_code == 2, failed.output
        assert message in " ".join(failed.output.split()), failed.output


def test_churn_settings_reach_the_durations(project: Path) -> None:
    settings, url = open_project(project)
    strict = settings.model_copy(update={"churn": ChurnSettings(grace_days=0)})
    with connect(url) as wh:
        loose = derive_durations(wh, settings, basis="subscription")
        tight = derive_durations(wh, strict, basis="subscription")
    # Without a grace gap every late renewal starts a new period: first periods are shorter.
    assert tight.frame["duration_days"].sum() <= loose.frame["duration_days"].sum()
    assert "within 0 days" in tight.definition


def test_groups_computed_elsewhere_split_the_curves(project: Path) -> None:
    """Segments (or any grouping by account) are passed in; accounts without one are
    '(missing)'."""
    settings, url = open_project(project)
    with connect(url) as wh:
        durations = derive_durations(wh, settings, basis="subscription")
        ids = durations.frame["account_id"].tolist()
        segments = {
            account: ("Power users" if i % 3 else "Fading") for i, account in enumerate(ids)
        }
        del segments[ids[0]]
        analysis = analyze_survival(
            wh, settings, by="segment", groups=segments, basis="subscription"
        )
        with pytest.raises(AnalysisError, match="no account has a value of 'segment'"):
            analyze_survival(wh, settings, by="segment", groups={}, basis="subscription")
    assert analysis.by_group is not None
    assert analysis.by_group.groups == ["(missing)", "Fading", "Power users"]
    counts = analysis.by_group.medians.set_index("group")["accounts"]
    assert counts["(missing)"] == 1
    assert counts.sum() == len(ids)
