"""Subscription churn on socialnet7 equals an independent pandas computation.

The data set (``../shared/data/socialnet7``, see its README) is loaded with the
``fightchurn`` preset. The reference below reads ``subscription.csv`` itself
and applies the definition directly: an account's subscriptions form periods
(a start within 7 days of the latest end so far continues the period), an
account churns at the end of its period, the observation ends 2020-06-01, and
an example whose window (plus the 7-day grace) runs past it is censored.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from churnwatch.config import Settings
from churnwatch.ingest import ingest
from churnwatch.ingest.presets import preset_sources
from churnwatch.labels import CutoffSchedule, LabelSpec, make_labels
from churnwatch.warehouse import Warehouse, connect

SOCIALNET7 = Path(__file__).parents[2].parent / "shared" / "data" / "socialnet7"
OBSERVATION_END = pd.Timestamp("2020-06-01", tz="UTC")
GRACE = pd.Timedelta(days=7)
HORIZON_DAYS = 30
CUTOFFS = [pd.Timestamp(f"2020-{m:02d}-01", tz="UTC") for m in range(1, 7)]


@pytest.fixture(scope="module")
def wh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    """socialnet7's accounts and subscriptions (its events are not needed here)."""
    if not SOCIALNET7.is_dir():
        pytest.skip(
            f"shared data set {SOCIALNET7} is absent "
            "(CI keeps ../shared/data beside the repository)"
        )
    specs = [s for s in preset_sources("fightchurn", SOCIALNET7) if s.table != "events"]
    path = tmp_path_factory.mktemp("socialnet7") / "w.duckdb"
    with connect(f"duckdb:///{path}") as opened:
        report = ingest(Settings(sources=specs), opened, now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
        assert not report.errors
        assert (opened.count("accounts"), opened.count("subscriptions")) == (1_470, 5_769)
        yield opened


def reference_labels() -> pd.DataFrame:
    """One row per example: account_id, cutoff, churn (1/0), computed with pandas."""
    subs = pd.read_csv(SOCIALNET7 / "subscription.csv", dtype={"account_id": str})
    assert len(subs) == 5_769
    subs["start"] = pd.to_datetime(subs["start_date"], utc=True)
    subs["end"] = pd.to_datetime(subs["end_date"], utc=True)
    subs = subs.sort_values(["account_id", "start", "end"]).reset_index(drop=True)
    periods = []
    for account, rows in subs.groupby("account_id", sort=False):
        start, end = None, None
        for row in rows.itertuples():
            if start is not None and row.start <= end + GRACE:
                end = max(end, row.end)
                continue
            if start is not None:
                periods.append((account, start, end))
            start, end = row.start, row.end
        periods.append((account, start, end))
    frame = pd.DataFrame(periods, columns=["account_id", "period_start", "period_end"])
    examples = []
    horizon = pd.Timedelta(days=HORIZON_DAYS)
    for cutoff in CUTOFFS:
        if cutoff + horizon + GRACE > OBSERVATION_END:
            continue  # censored: renewals after 2020-06-01 were never simulated
        active = frame[(frame["period_start"] < cutoff) & (frame["period_end"] > cutoff)]
        churn = (active["period_end"] < cutoff + horizon).astype(int)
        examples.append(
            pd.DataFrame({"account_id": active["account_id"], "cutoff": cutoff, "churn": churn})
        )
    return pd.concat(examples, ignore_index=True)


@pytest.mark.slow
def test_monthly_churn_counts_equal_an_independent_computation(wh: Warehouse) -> None:
    spec = LabelSpec("subscription", horizon_days=(HORIZON_DAYS,), grace_days=7)
    schedule = CutoffSchedule.every("2020-01-01", "2020-07-01", months=1)
    table = make_labels(wh, spec, schedule, observation_end="2020-06-01")
    ours = table.frame.to_pandas().rename(columns={"churn_30d": "churn"})
    expected = reference_labels()

    monthly = ours.groupby("cutoff")["churn"].agg(["size", "sum"])
    reference = expected.groupby("cutoff")["churn"].agg(["size", "sum"])
    pd.testing.assert_frame_equal(monthly, reference, check_index_type=False)
    # the counts on record (no account exists before its first subscription on 2020-01-01)
    assert monthly["sum"].tolist() == [54, 27, 27]
    assert monthly["size"].tolist() == [998, 1044, 1128]
    # and row for row
    key = ["cutoff", "account_id"]
    merged = ours.merge(expected, on=key, how="outer", suffixes=("", "_ref"), indicator=True)
    assert (merged["_merge"] == "both").all()
    assert (merged["churn"] == merged["churn_ref"]).all()

    counts = table.counts
    assert counts.examples == len(expected)
    assert counts.positives == {"churn_30d": int(expected["churn"].sum())}
    # May and June cutoffs: the window and its grace run past 2020-06-01
    assert counts.censored > 0
    assert table.observation_end.source == "given"


@pytest.mark.slow
def test_observation_end_is_inferred_as_the_latest_start(wh: Warehouse) -> None:
    spec = LabelSpec("subscription", horizon_days=(HORIZON_DAYS,), grace_days=7)
    schedule = CutoffSchedule.every("2020-01-01", "2020-07-01", months=1)
    inferred = make_labels(wh, spec, schedule)
    # not 2020-07-01, the latest end date: that would turn June's subscribers into churners
    assert inferred.observation_end.at == dt.datetime(2020, 6, 1, tzinfo=dt.UTC)
    assert inferred.observation_end.source == "inferred"
    given = make_labels(wh, spec, schedule, observation_end="2020-06-01")
    assert inferred.frame.equals(given.frame)
    assert "inferred: the latest subscription start" in inferred.describe()
