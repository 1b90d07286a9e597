"""A small scored business with a tracked store, built once for the read-model tests.

300 simulated accounts are ingested into DuckDB, a churn model is trained
(LightGBM on its default parameters, no search) and promoted, every account is
scored at the end of the data, and the last two adoption snapshots are tracked
into a SQLite store. Tests that write get their own copies of the files.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from churnwatch.config import DataSettings, Settings, StoreSettings, save_settings
from churnwatch.ingest import ingest
from churnwatch.ingest.presets import preset_sources
from churnwatch.labels import LabelSpec
from churnwatch.models import ModelRegistry, register_model, training_frame, training_schedule
from churnwatch.scoring import score_accounts
from churnwatch.simulate import simulate
from churnwatch.store import open_store
from churnwatch.tracker import read_snapshot, snapshot_dates, track_snapshot
from churnwatch.views import RefreshResult, refresh_views
from churnwatch.warehouse import Warehouse, connect

CHURN = LabelSpec("subscription", horizon_days=(30,))


@dataclass(frozen=True)
class Business:
    """The project folder of a small scored and tracked business."""

    folder: Path
    settings: Settings

    @property
    def warehouse_file(self) -> Path:
        """The DuckDB file."""
        return self.folder / "churnwatch.duckdb"

    @property
    def registry(self) -> ModelRegistry:
        """The models."""
        return ModelRegistry(self.folder / "models")

    @property
    def store_url(self) -> str:
        """The SQLite store, by absolute path."""
        return f"sqlite:///{self.folder / 'ops.sqlite'}"


@pytest.fixture(scope="session")
def business(tmp_path_factory: pytest.TempPathFactory) -> Business:
    """Simulate, ingest, train, promote, score and track; every file is closed after."""
    folder = tmp_path_factory.mktemp("views")
    result = simulate(folder / "data", n_accounts=300, seed=4, events_per_account=20)
    settings = Settings(
        data=DataSettings(observation_end=str(result.observation_end)),
        sources=preset_sources("churnwatch_simulator", folder / "data"),
        store=StoreSettings(url="sqlite:///ops.sqlite"),
    )
    save_settings(settings, folder)
    end = str(result.observation_end)
    registry = ModelRegistry(folder / "models")
    with (
        threadpool_limits(1, user_api="openmp"),
        connect(f"duckdb:///{folder / 'churnwatch.duckdb'}") as wh,
    ):
        report = ingest(settings, wh, now=dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
        assert not report.errors
        schedule = training_schedule(wh, CHURN, every_days=30, observation_end=end)
        frame = training_frame(wh, [CHURN], schedule, observation_end=end)
        register_model(frame, "churn_30d", registry, search_iterations=0, promote=True)
        score_accounts(wh, registry)
        with open_store(f"sqlite:///{folder / 'ops.sqlite'}") as store:
            for day in snapshot_dates(wh, "adoption_snapshots")[-2:]:
                track_snapshot(store, read_snapshot(wh, "adoption_snapshots", day), date=day)
    return Business(folder, settings)


@pytest.fixture(scope="session")
def refreshed(business: Business) -> RefreshResult:
    """The read model of the business, refreshed once with every input."""
    with (
        threadpool_limits(1, user_api="openmp"),
        connect(f"duckdb:///{business.warehouse_file}") as wh,
        open_store(business.store_url) as store,
    ):
        return refresh_views(
            business.settings,
            wh,
            business.folder / "views",
            registry=business.registry,
            store=store,
            store_url=business.store_url,
        )


@pytest.fixture
def warehouse(business: Business) -> Iterator[Warehouse]:
    """The business's warehouse, open (read it only)."""
    with connect(f"duckdb:///{business.warehouse_file}") as opened:
        yield opened


@pytest.fixture
def copy_of(business: Business, tmp_path: Path) -> Path:
    """A private copy of the project folder (without its read model)."""
    target = tmp_path / "project"
    shutil.copytree(business.folder, target, ignore=shutil.ignore_patterns("views"))
    return target
