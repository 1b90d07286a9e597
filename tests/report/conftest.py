"""A small simulated business for the report tests, ingested once per session."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from churnwatch.config import DataSettings, Settings, save_settings
from churnwatch.ingest import ingest
from churnwatch.ingest.presets import preset_sources
from churnwatch.simulate import simulate
from churnwatch.warehouse import connect


@pytest.fixture(scope="session")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small simulated business, ingested, with no model trained."""
    folder = tmp_path_factory.mktemp("report")
    result = simulate(folder / "data", n_accounts=300, seed=5, events_per_account=20)
    settings = Settings(
        data=DataSettings(observation_end=str(result.observation_end)),
        sources=preset_sources("churnwatch_simulator", folder / "data"),
    )
    save_settings(settings, folder)
    with connect(f"duckdb:///{folder / 'churnwatch.duckdb'}") as wh:
        report = ingest(settings, wh, now=dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
        assert not report.errors
    return folder
