"""CDNOW's monthly-cohort retention matrix equals an independent pandas computation.

The data set (``../shared/data/cdnow``: 23,570 customers who first bought from
January to March 1997, and every purchase they made to June 1998) is loaded
with the ``transactions`` preset, which creates each customer's account at its
first purchase. The reference reads ``CDNOW_master.txt`` itself: a customer's
cohort is the month of its first purchase, and it is active in month k when
it bought something in the k-th month after that one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churnwatch.cohorts import logo_retention
from churnwatch.config import Settings
from churnwatch.ingest import ingest
from churnwatch.ingest.presets import preset_sources
from churnwatch.warehouse import Warehouse, connect

CDNOW = Path(__file__).parents[2].parent / "shared" / "data" / "cdnow"
PERIODS = 18  # January 1997 to June 1998


@pytest.fixture(scope="module")
def wh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    if not CDNOW.is_dir():
        pytest.skip(
            f"shared data set {CDNOW} is absent (CI keeps ../shared/data beside the repository)"
        )
    path = tmp_path_factory.mktemp("cdnow") / "w.duckdb"
    with connect(f"duckdb:///{path}") as opened:
        settings = Settings(sources=preset_sources("transactions", CDNOW))
        report = ingest(settings, opened, now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
        assert not report.errors
        yield opened


def reference_matrix() -> tuple[pd.DataFrame, pd.Series]:
    """Active customers per first-purchase month and month since, with pandas alone."""
    raw = pd.read_csv(CDNOW / "CDNOW_master.txt", sep=r"\s+", dtype={"customer_id": str})
    raw["month"] = pd.to_datetime(raw["date"].astype(str), format="%Y%m%d").dt.to_period("M")
    raw["cohort"] = raw.groupby("customer_id")["month"].transform("min")
    raw["k"] = (raw["month"] - raw["cohort"]).apply(lambda offset: offset.n)
    active = raw.drop_duplicates(["customer_id", "k"]).pivot_table(
        index="cohort", columns="k", values="customer_id", aggfunc="count", fill_value=0
    )
    active = active.reindex(columns=range(PERIODS), fill_value=0).astype(float)
    last = pd.Period("1998-06", "M")
    for cohort in active.index:
        for k in active.columns:
            if cohort + k > last:
                active.at[cohort, k] = np.nan
    sizes = raw.groupby("cohort")["customer_id"].nunique()
    return active, sizes


def test_monthly_matrix_equals_pandas(wh: Warehouse) -> None:
    table = logo_retention(wh, periods_count=PERIODS)
    expected, sizes = reference_matrix()
    assert len(expected) == 3
    assert int(sizes.sum()) == 23_570
    # The data ends with June 1998: midnight after the last purchase day.
    assert table.observation_end.at == dt.datetime(1998, 7, 1, tzinfo=dt.UTC)
    assert [c.strftime("%Y-%m") for c in table.counts.index] == [str(p) for p in expected.index]
    assert table.sizes.tolist() == sizes.tolist()
    np.testing.assert_array_equal(table.counts.to_numpy(), expected.to_numpy())
    # Signup is the first purchase: everyone is active in month 0.
    assert (table.rates[0] == 1.0).all()


def test_first_event_cohorts_agree_with_signup(wh: Warehouse) -> None:
    by_signup = logo_retention(wh, periods_count=PERIODS)
    by_first = logo_retention(wh, periods_count=PERIODS, cohort_by="first_event")
    pd.testing.assert_frame_equal(by_signup.counts, by_first.counts)
