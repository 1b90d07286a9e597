"""socialnet7: MRR movements add up to the change in MRR, and match pandas.

The data set (``../shared/data/socialnet7``) is loaded with the ``fightchurn``
preset; its simulation ends on 2020-06-01 (``SOCIALNET7_OBSERVATION_END``),
so January to May 2020 are known. The reference reads ``subscription.csv``
itself: an account's MRR at a month's end is the MRR of its subscriptions
started before the first day of the next month and not ended before it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churnwatch.cohorts import logo_retention, mrr_movements, revenue_retention
from churnwatch.config import DataSettings, Settings
from churnwatch.ingest import ingest
from churnwatch.ingest.presets import SOCIALNET7_OBSERVATION_END, preset_sources
from churnwatch.warehouse import Warehouse, connect

SOCIALNET7 = Path(__file__).parents[2].parent / "shared" / "data" / "socialnet7"
MONTHS = pd.period_range("2020-01", "2020-05", freq="M")


@pytest.fixture(scope="module")
def project() -> Settings:
    if not SOCIALNET7.is_dir():
        pytest.skip(
            f"shared data set {SOCIALNET7} is absent "
            "(CI keeps ../shared/data beside the repository)"
        )
    return Settings(
        data=DataSettings(observation_end=SOCIALNET7_OBSERVATION_END),
        # Its events are not needed here.
        sources=[s for s in preset_sources("fightchurn", SOCIALNET7) if s.table != "events"],
    )


@pytest.fixture(scope="module")
def wh(project: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    path = tmp_path_factory.mktemp("socialnet7") / "w.duckdb"
    with connect(f"duckdb:///{path}") as opened:
        report = ingest(project, opened, now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
        assert not report.errors
        yield opened


def reference_mrr() -> pd.DataFrame:
    """MRR in cents per account (rows) and month (columns), with pandas alone."""
    subs = pd.read_csv(SOCIALNET7 / "subscription.csv", dtype={"account_id": str})
    start = pd.to_datetime(subs["start_date"])
    end = pd.to_datetime(subs["end_date"])
    columns = {}
    for month in MONTHS:
        month_end = (month + 1).to_timestamp()
        running = (start < month_end) & (end.isna() | (end >= month_end))
        cents = (subs["mrr"] * 100).round().astype("int64").where(running, 0)
        columns[month] = cents.groupby(subs["account_id"]).sum()
    return pd.DataFrame(columns).fillna(0).astype("int64")


def reference_movements(mrr: pd.DataFrame) -> pd.DataFrame:
    previous = mrr.shift(1, axis=1, fill_value=0)
    paid_before = (previous.cumsum(axis=1) > 0) & (previous == 0)
    rises = (previous == 0) & (mrr > 0)
    return pd.DataFrame(
        {
            "mrr": mrr.sum(),
            "new": mrr.where(rises & ~paid_before, 0).sum(),
            "reactivation": mrr.where(rises & paid_before, 0).sum(),
            "expansion": (mrr - previous).where((previous > 0) & (mrr > previous), 0).sum(),
            "contraction": (previous - mrr).where((mrr > 0) & (mrr < previous), 0).sum(),
            "churned": previous.where((previous > 0) & (mrr == 0), 0).sum(),
        }
    )


def test_movements_add_up_every_month(wh: Warehouse, project: Settings) -> None:
    cents = mrr_movements(wh, project).cents
    assert [m.strftime("%Y-%m") for m in cents.index] == [str(m) for m in MONTHS]
    change = cents["mrr"] - cents["previous_mrr"]
    moved = (
        cents["new"]
        + cents["expansion"]
        + cents["reactivation"]
        - cents["contraction"]
        - cents["churned"]
    )
    assert (change == moved).all(), pd.DataFrame({"change": change, "moved": moved})
    # Each month's previous MRR is the month before's MRR; the first starts from 0.
    assert cents["previous_mrr"].tolist() == [0, *cents["mrr"].tolist()[:-1]]
    # The simulation has new and churned revenue (and no account that comes back).
    assert (cents[["new", "churned"]].to_numpy()[1:] > 0).all()


def test_movements_equal_pandas(wh: Warehouse, project: Settings) -> None:
    cents = mrr_movements(wh, project).cents
    expected = reference_movements(reference_mrr())
    for column in expected.columns:
        assert cents[column].tolist() == expected[column].tolist(), column
    # Every subscription is worth 10 a month: no expansion or contraction.
    assert cents[["expansion", "contraction"]].to_numpy().sum() == 0


def test_revenue_retention_equals_pandas(wh: Warehouse, project: Settings) -> None:
    mrr = reference_mrr()
    revenue = revenue_retention(wh, project, periods_count=5)
    first = mrr.gt(0).idxmax(axis=1)[mrr.gt(0).any(axis=1)]
    for row, cohort in enumerate(MONTHS):
        members = first.index[first == cohort]
        expected = mrr.loc[members, MONTHS[row:]].sum().to_numpy() / 100.0
        got = revenue.mrr.to_numpy()[row]
        np.testing.assert_array_equal(got[: len(expected)], expected)
        assert np.isnan(got[len(expected) :]).all()
    start, now = mrr[MONTHS[:-1]].to_numpy(), mrr[MONTHS[1:]].to_numpy()
    kept = np.where(start > 0, np.minimum(start, now), 0).sum(axis=0)
    net = np.where(start > 0, now, 0).sum(axis=0)
    np.testing.assert_allclose(revenue.by_month["grr"], kept / start.sum(axis=0))
    np.testing.assert_allclose(revenue.by_month["nrr"], net / start.sum(axis=0))
    assert (revenue.by_month["grr"] <= 1.0).all()


def test_subscription_basis_period_zero(wh: Warehouse, project: Settings) -> None:
    # Accounts are created at their first subscription: all subscribe in month 0.
    table = logo_retention(wh, project, basis="subscription", periods_count=5)
    assert (table.rates[0] == 1.0).all()
    assert int(table.sizes.sum()) == 1_470
