"""The model commands: train, models list / show / promote, and score.

A small simulated project is ingested once and trained once (no search, one
backtest cutoff); tests that change it work on a copy of the project folder.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from sqlglot import exp
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]
from typer.testing import CliRunner, Result

from churnwatch.cli import app
from churnwatch.config import DataSettings, ProjectSettings, Settings, save_settings
from churnwatch.ingest.presets import preset_sources
from churnwatch.models import ModelRegistry
from churnwatch.scoring import RISK_SCORES_TABLE
from churnwatch.simulate import simulate
from churnwatch.warehouse import connect

runner = CliRunner()
FAST_TRAIN = ["--search", "0", "--test-cutoffs", "1", "--horizon", "30"]


@pytest.fixture(autouse=True, scope="module")
def one_openmp_thread() -> Iterator[None]:
    """LightGBM on one OpenMP thread: tiny frames fit faster and never stall on busy cores."""
    with threadpool_limits(1, user_api="openmp"):
        yield


def invoke(*arguments: str) -> Result:
    """Run the CLI; a crash (anything but a clean exit) fails the test with its output."""
    result = runner.invoke(app, list(arguments))
    assert "Traceback" not in result.output, result.output
    return result


def registry(project: Path) -> ModelRegistry:
    """The project's model registry, read directly."""
    return ModelRegistry(project / "models")


def risk_scores(project: Path) -> pd.DataFrame:
    """The project's risk_scores table."""
    with connect(f"duckdb:///{project / 'churnwatch.duckdb'}") as wh:
        found: pd.DataFrame = wh.query(exp.select("*").from_(RISK_SCORES_TABLE)).to_pandas()
    return found


def copy_of(project: Path, tmp_path: Path) -> Path:
    """A private copy of a project folder, data, warehouse and registry included."""
    return Path(shutil.copytree(project, tmp_path / "project"))


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project folder with a simulated business ingested into its DuckDB warehouse."""
    folder = tmp_path_factory.mktemp("cli_models")
    result = simulate(folder / "data", n_accounts=300, seed=3, events_per_account=20)
    settings = Settings(
        project=ProjectSettings(name="cli-test"),
        data=DataSettings(observation_end=str(result.observation_end)),
        sources=preset_sources("churnwatch_simulator", Path("data"), base_dir=folder),
    )
    save_settings(settings, folder)
    loaded = invoke("ingest", "-p", str(folder))
    assert loaded.exit_code == 0, loaded.output
    return folder


@pytest.fixture(scope="module")
def trained(ingested: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Result]:
    """A copy of the ingested project after `churnwatch train` (report included)."""
    project = Path(shutil.copytree(ingested, tmp_path_factory.mktemp("trained") / "p"))
    result = invoke("train", "-p", str(project), *FAST_TRAIN)
    assert result.exit_code == 0, result.output
    return project, result


# --- train ----------------------------------------------------------------------------


def test_train_registers_a_promoted_model_and_prints_its_backtest(
    trained: tuple[Path, Result],
) -> None:
    """train saves churn_30d v1 (promoted: the first version), prints held-out and backtest."""
    project, result = trained
    (card,) = registry(project).versions()
    assert (card.name, card.version, card.promoted) == ("churn_30d", "v1", True)
    assert f"churn_30d: saved v1 (promoted), {card.extra['rows']:,} training rows" in result.output
    assert f"held-out roc_auc {card.metrics['holdout']['roc_auc']:.3f}" in result.output
    backtest = card.metrics["backtest"]
    assert set(backtest) == {"lightgbm", "logistic", "recency"}
    for model, metrics in backtest.items():
        line = next(line for line in result.output.splitlines() if line.strip().startswith(model))
        assert f"{metrics['roc_auc']:.4f}".rstrip("0") in line
    assert card.extra["kind"] == "lightgbm"
    assert card.extra["params"] == {}
    report = project / "reports" / "model_churn_30d_v1" / "report.html"
    assert report.is_file()
    assert report.stat().st_size > 1000
    assert "churn_30d: report" in result.output


def test_models_list_marks_the_promoted_version(trained: tuple[Path, Result]) -> None:
    """models list shows each version with its kind, rows and held-out AUC, * on the promoted."""
    project, _ = trained
    result = invoke("models", "list", "-p", str(project))
    assert result.exit_code == 0, result.output
    (card,) = registry(project).versions()
    (row,) = [line for line in result.output.splitlines() if "churn_30d" in line]
    cells = [cell.strip() for cell in re.split(r"[│|]", row)[1:-1]]
    assert cells[0] == "*"
    assert cells[1:3] == ["churn_30d", "v1"]
    assert cells[4:] == [
        "lightgbm",
        f"{card.extra['rows']:,}",
        f"{card.metrics['holdout']['roc_auc']:.3f}",
    ]


def test_models_show_prints_the_card_as_json(trained: tuple[Path, Result]) -> None:
    """models show prints the card (drift bins left out); the promoted one without a version."""
    project, _ = trained
    card = registry(project).card("churn_30d", "v1").to_dict()
    card["extra"].pop("drift")
    expected = json.loads(json.dumps(card, default=str))
    for arguments in (["churn_30d"], ["churn_30d", "v1"]):
        result = invoke("models", "show", *arguments, "-p", str(project))
        assert result.exit_code == 0, result.output
        assert json.loads(result.output) == expected
    assert expected["label_spec"]["kind"] == "subscription"
    assert expected["training_window"]
    assert expected["feature_specs"]


def test_retrain_keeps_the_promoted_version_until_promote(
    trained: tuple[Path, Result], tmp_path: Path
) -> None:
    """A second train saves v2 unpromoted (new targets promoted); promote switches to v2."""
    project = copy_of(trained[0], tmp_path)
    again = invoke(
        "train", "-p", str(project), "--kind", "logistic", "--also", "activity",
        "--no-backtest", "--no-report", *FAST_TRAIN,
    )  # fmt: skip
    assert again.exit_code == 0, again.output
    assert "churn_30d: saved v2 (not promoted)" in again.output
    assert "sessions_30d: saved v1 (promoted)" in again.output
    assert "report" not in again.output
    assert not (project / "reports" / "model_churn_30d_v2").exists()
    promoted = registry(project).promoted()
    assert {name: card.version for name, card in promoted.items()} == {
        "churn_30d": "v1",
        "sessions_30d": "v1",
    }
    assert "mae" in promoted["sessions_30d"].metrics["holdout"]
    listed = invoke("models", "list", "-p", str(project))
    starred = [line for line in listed.output.splitlines() if "*" in line]
    assert len(starred) == 2
    assert not any(" v2 " in line for line in starred)

    result = invoke("models", "promote", "churn_30d", "v2", "-p", str(project))
    assert result.exit_code == 0, result.output
    assert "churn_30d v2 promoted" in result.output
    assert registry(project).promoted()["churn_30d"].version == "v2"
    shown = invoke("models", "show", "churn_30d", "-p", str(project))
    assert json.loads(shown.output)["version"] == "v2"
    assert json.loads(shown.output)["extra"]["kind"] == "logistic"


# --- score ----------------------------------------------------------------------------


def test_score_writes_risk_scores_and_prints_a_summary(
    trained: tuple[Path, Result], tmp_path: Path
) -> None:
    """score fills risk_scores, prints counts and money that add up, and writes --out."""
    project = copy_of(trained[0], tmp_path)
    out = tmp_path / "scores.csv"
    result = invoke("score", "-p", str(project), "--out", str(out), "--top", "3")
    assert result.exit_code == 0, result.output
    stored = risk_scores(project)
    assert len(stored) > 0
    assert not stored.duplicated(["account_id", "target"]).any()
    assert (
        f"scored {len(stored):,} accounts as of 2024-12-31 00:00 UTC with churn_30d v1"
        in result.output
    )
    tiers = stored["risk_tier"].value_counts()
    summary = ", ".join(f"{tier} {count:,}" for tier, count in sorted(tiers.items()))
    money = stored["revenue_at_risk"].sum()
    assert f"churn_30d: {summary}, revenue at risk {money:,.0f}/month" in result.output
    top = stored.nlargest(3, "score")
    for account_id, p in zip(top["account_id"], top["score"], strict=True):
        assert re.search(rf"{account_id}\s*│\s*{p:.3f}", result.output)
    written = pd.read_csv(out)
    assert sorted(written["account_id"]) == sorted(stored["account_id"])
    assert f"wrote {out}" in result.output.replace("\n", "")

    earlier = invoke("score", "-p", str(project), "--as-of", "2024-06-30")
    assert earlier.exit_code == 0, earlier.output
    assert "as of 2024-07-01 00:00 UTC" in earlier.output
    history = risk_scores(project)
    moments = history.groupby("scored_at").size()
    assert [str(t.date()) for t in moments.index] == ["2024-07-01", "2024-12-31"]
    assert moments.iloc[1] == len(stored)


# --- mistakes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["models", "show", "churn_30d", "v9"], "no version v9 of 'churn_30d'; saved versions: v1"),
        (["models", "promote", "churn_30d", "v9"], "no version v9 of 'churn_30d'"),
        (["models", "promote", "churn_90d", "v1"], "no saved model named 'churn_90d'"),
        (["models", "show", "nope"], "no promoted version of 'nope'"),
        (["train", "--kind", "forest"], "--kind 'forest': expected lightgbm, logistic or mlp"),
        (["train", "--also", "churn"], "--also 'churn': expected one of conversion"),
        (["score", "--as-of", "June"], "--as-of 'June': expected a date"),
    ],
)
def test_bad_input_exits_2_with_one_clear_line(
    trained: tuple[Path, Result], arguments: list[str], message: str
) -> None:
    """A user mistake exits 2 with a readable error and leaves the registry alone."""
    project, _ = trained
    before = [(c.name, c.version, c.promoted) for c in registry(project).versions()]
    result = invoke(*arguments, "-p", str(project))
    assert result.exit_code == 2, result.output
    assert message in result.output.replace("\n", "")
    assert result.output.lstrip().startswith("error:")
    assert [(c.name, c.version, c.promoted) for c in registry(project).versions()] == before


@pytest.mark.parametrize("command", ["train", "score"])
def test_a_missing_project_is_a_clear_error(command: str, tmp_path: Path) -> None:
    """train and score in a folder without churnwatch.toml say so and exit 2."""
    result = invoke(command, "-p", str(tmp_path / "nowhere"))
    assert result.exit_code == 2, result.output
    assert "no project file" in result.output


def test_score_before_any_training_says_what_to_do(ingested: Path) -> None:
    """score with an empty registry exits 2 and names the commands to run."""
    result = invoke("score", "-p", str(ingested))
    assert result.exit_code == 2, result.output
    assert "no model is promoted" in result.output
    assert "churnwatch train" in result.output.replace("\n", "")
    with connect(f"duckdb:///{ingested / 'churnwatch.duckdb'}") as wh:
        assert not wh.table_exists(RISK_SCORES_TABLE)
