"""KPIs of a 90-day simulated snapshot sequence against an independent recomputation.

The simulator's adoption snapshots are replayed through the tracker; CSM
answers and CRM contacts are added for a deterministic selection of
episodes; a holdout is drawn. The KPIs the library computes from the store
must equal those recomputed here from the raw snapshots with pandas — the
episodes found from the on/off sequence of each account, revenue carried
by its own rule, the holdout drawn by hashing, buckets by integer days —
sharing no code with the tracker or the KPI modules.
"""

from __future__ import annotations

import datetime as dt
import glob
import hashlib
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from churnwatch.config import Settings
from churnwatch.outcomes import compute_kpis, record_outcome
from churnwatch.simulate import simulate
from churnwatch.store import CRM_ACTIVITY, open_store
from churnwatch.tracker import track_snapshot

NOW = dt.datetime(2024, 7, 1, 12, tzinfo=dt.UTC)
SHARE, SEED = 0.2, "replay-salt"


def _snapshots(folder: Path) -> pd.DataFrame:
    simulate(folder, n_accounts=4000, end="2024-06-30", events_per_account=2, seed=11)
    files = sorted(glob.glob(str(folder / "adoption_snapshots" / "*.parquet")))
    frame = ds.dataset(files).to_table().to_pandas()
    frame["snapshot_date"] = pd.to_datetime(frame["snapshot_date"]).dt.date
    frame["product"] = frame["product"].fillna("")
    return frame


# -- the independent model ------------------------------------------------------------------
def _episodes(raw: pd.DataFrame) -> pd.DataFrame:
    """Churn episodes and re-adoptions from the raw on/off sequence of each account."""
    rows = raw.sort_values(["account_id", "product", "snapshot_date"], ignore_index=True)
    key = [rows["account_id"], rows["product"]]
    first = ~rows.duplicated(["account_id", "product"])
    # Revenue and GMV: taken on the first row and on days the product is on
    # (when known); otherwise the last value carries.
    for name in ("revenue", "gmv"):
        taken = rows[name].where(first | (rows["is_enabled"] & rows[name].notna()))
        taken = taken.where(~first | taken.notna(), -1.0)  # a null first value: a marker
        rows[f"{name}_kept"] = taken.groupby(key).ffill().replace(-1.0, math.nan)
    for name in ("region", "csm_id"):
        rows[f"{name}_kept"] = rows[name].groupby(key).ffill()
    previous = rows["is_enabled"].groupby(key).shift(1)
    was_on_before = (
        rows["is_enabled"].astype(int).groupby(key).cummax().groupby(key).shift(1).fillna(0)
    )
    churned = (~rows["is_enabled"]) & (previous == True)  # noqa: E712
    back = rows["is_enabled"] & (previous == False) & (was_on_before == 1)  # noqa: E712
    churns = rows.loc[churned].copy()
    churns["episode_id"] = [
        f"{a}|{p}|{d.isoformat()}|snapshot"
        for a, p, d in zip(
            churns["account_id"], churns["product"], churns["snapshot_date"], strict=True
        )
    ]
    recoveries = rows.loc[back, ["account_id", "product", "snapshot_date"]]
    recoveries = recoveries.rename(columns={"snapshot_date": "recovered_date"})
    # Each re-adoption closes the latest churn of its account and product before it.
    pairs = churns.loc[:, ["account_id", "product", "snapshot_date", "episode_id"]].merge(
        recoveries, on=["account_id", "product"]
    )
    pairs = pairs.loc[pairs["recovered_date"] > pairs["snapshot_date"]]
    pairs = pairs.sort_values("snapshot_date").drop_duplicates(
        ["account_id", "product", "recovered_date"], keep="last"
    )
    pairs = pairs.sort_values("recovered_date").drop_duplicates("episode_id", keep="first")
    out = churns.loc[
        :,
        ["episode_id", "account_id", "snapshot_date", "revenue_kept", "gmv_kept", "region_kept"],
    ]
    out = out.rename(
        columns={
            "snapshot_date": "churn_date",
            "revenue_kept": "revenue",
            "gmv_kept": "gmv",
            "region_kept": "region",
        }
    )
    out = out.merge(pairs.loc[:, ["episode_id", "recovered_date"]], on="episode_id", how="left")
    out["holdout"] = [
        int.from_bytes(hashlib.sha256(f"{SEED}|{e}".encode()).digest()[:8], "big") / 2**64 < SHARE
        for e in out["episode_id"]
    ]
    return out.sort_values("episode_id", ignore_index=True)


def _bucket(days: int) -> str:
    if days == 0:
        return "L24H"
    if days == 1:
        return "L48H"
    if days == 2:
        return "L72H"
    if days < 30:
        return "L30"
    if days < 60:
        return "L60"
    if days < 90:
        return "L90"
    return ">90"


def _expected(
    episodes: pd.DataFrame,
    as_of: dt.date,
    answers: dict[str, str],
    contacts: list[tuple[str, dt.datetime]],
) -> dict[str, Any]:
    mine = episodes.loc[episodes["churn_date"] <= as_of].copy()
    mine["recovered_date"] = mine["recovered_date"].where(mine["recovered_date"] <= as_of, None)
    end = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), dt.UTC)
    cells: dict[str, dict[str, float]] = {}
    classes: dict[str, int] = {}
    revenue_by_class: dict[str, float] = {}
    by_region: dict[str, float] = {}
    hours: list[float] = []
    for row in mine.itertuples():
        revenue = 0.0 if pd.isna(row.revenue) else float(row.revenue)
        gmv = 0.0 if pd.isna(row.gmv) else float(row.gmv)
        recovered = row.recovered_date is not None and not pd.isna(row.recovered_date)
        churn_at = dt.datetime.combine(row.churn_date, dt.time(), dt.UTC)
        until = dt.datetime.combine(row.recovered_date, dt.time(), dt.UTC) if recovered else end
        touched = sorted(
            t for a, t in contacts if a == row.account_id and churn_at <= t <= until and t <= end
        )
        if touched:
            hours.append((touched[0] - churn_at).total_seconds() / 3600)
        answer = answers.get(row.episode_id)
        engaged = not row.holdout and (answer in ("won", "lost") or bool(touched))
        if recovered and answer == "won" and not row.holdout:
            klass = "csm_true_win"
        elif recovered and engaged:
            klass = "engaged_win"
        elif recovered:
            klass = "self_service_win"
        elif answer == "lost" and not row.holdout:
            klass = "csm_loss"
        elif engaged:
            klass = "engaged_open"
        else:
            klass = "self_service_loss"
        classes[klass] = classes.get(klass, 0) + 1
        revenue_by_class[klass] = revenue_by_class.get(klass, 0.0) + revenue
        churn_cell = cells.setdefault(_bucket((as_of - row.churn_date).days), {})
        churn_cell.setdefault("churned", set()).add(row.account_id)  # type: ignore[attr-defined]
        churn_cell["lost"] = churn_cell.get("lost", 0.0) + revenue
        if recovered:
            region = "unknown" if pd.isna(row.region) else str(row.region)
            by_region[region] = by_region.get(region, 0.0) + revenue
            won_cell = cells.setdefault(_bucket((as_of - row.recovered_date).days), {})
            won_cell.setdefault("won", set()).add(row.account_id)  # type: ignore[attr-defined]
            won_cell["won_revenue"] = won_cell.get("won_revenue", 0.0) + revenue
        else:
            churn_cell.setdefault("risk", set()).add(row.account_id)  # type: ignore[attr-defined]
            churn_cell["risk_revenue"] = churn_cell.get("risk_revenue", 0.0) + revenue
            churn_cell["risk_gmv"] = churn_cell.get("risk_gmv", 0.0) + gmv
    open_rows = mine.loc[mine["recovered_date"].isna()]
    won_rows = mine.loc[mine["recovered_date"].notna()]
    return {
        "episodes": len(mine),
        "accounts_at_risk": open_rows["account_id"].nunique(),
        "revenue_at_risk": float(open_rows["revenue"].fillna(0).sum()),
        "gmv_at_risk": float(open_rows["gmv"].fillna(0).sum()),
        "revenue_recovered": float(won_rows["revenue"].fillna(0).sum()),
        "accounts_recovered": won_rows["account_id"].nunique(),
        "cells": cells,
        "classes": classes,
        "revenue_by_class": revenue_by_class,
        "by_region": by_region,
        "median_hours": float(pd.Series(hours).median()) if hours else None,
        "contacted": len(hours),
    }


# -- the test ----------------------------------------------------------------------------------
@pytest.mark.slow
def test_kpis_of_a_simulated_replay_equal_an_independent_recomputation(tmp_path: Path) -> None:
    raw = _snapshots(tmp_path / "data")
    dates = sorted(raw["snapshot_date"].unique())
    assert len(dates) == 90
    settings = Settings.model_validate({"tracker": {"holdout_share": SHARE, "holdout_seed": SEED}})
    expected_episodes = _episodes(raw)
    with open_store(f"sqlite:///{tmp_path / 'ops.sqlite'}") as store:
        for day in dates:
            rows = raw.loc[raw["snapshot_date"] == day]
            track_snapshot(
                store, pa.Table.from_pandas(rows, preserve_index=False), settings=settings, now=NOW
            )
        # Answers and contacts for a deterministic selection of episodes.
        answers: dict[str, str] = {}
        contacts: list[tuple[str, dt.datetime]] = []
        for i, row in enumerate(expected_episodes.itertuples()):
            if i % 5 == 0:
                answers[row.episode_id] = "won"
            elif i % 5 == 1:
                answers[row.episode_id] = "lost"
            elif i % 11 == 2:
                answers[row.episode_id] = "not_useful"
            if i % 7 == 3:
                at = dt.datetime.combine(row.churn_date, dt.time(), dt.UTC)
                contacts.append((row.account_id, at + dt.timedelta(hours=30 + i % 13)))
        for episode, outcome in answers.items():
            # A first, different answer that the later one overrides.
            record_outcome(store, "not_useful", episode_id=episode, source="api", now=NOW)
            record_outcome(store, outcome, episode_id=episode, now=NOW + dt.timedelta(minutes=1))
        with store.transaction() as connection:
            connection.execute(
                CRM_ACTIVITY.insert(),
                [
                    {"account_id": a, "csm_id": "c", "activity_at": t, "kind": "call"}
                    for a, t in contacts
                ],
            )
        for as_of in (dates[44], dates[-1]):
            kpis = compute_kpis(store, as_of=as_of, tracker=settings.tracker)
            want = _expected(expected_episodes, as_of, answers, contacts)
            assert kpis.episodes == want["episodes"]
            assert kpis.accounts_at_risk == want["accounts_at_risk"]
            assert kpis.revenue_at_risk == pytest.approx(want["revenue_at_risk"])
            assert kpis.gmv_at_risk == pytest.approx(want["gmv_at_risk"])
            assert kpis.revenue_recovered == pytest.approx(want["revenue_recovered"])
            assert kpis.accounts_recovered == want["accounts_recovered"]
            for row in kpis.buckets:
                cell = want["cells"].get(row.bucket, {})
                assert row.at_risk_accounts == len(cell.get("risk", ())), row
                assert row.at_risk_revenue == pytest.approx(cell.get("risk_revenue", 0.0)), row
                assert row.at_risk_gmv == pytest.approx(cell.get("risk_gmv", 0.0)), row
                assert row.churned_accounts == len(cell.get("churned", ())), row
                assert row.revenue_lost == pytest.approx(cell.get("lost", 0.0)), row
                assert row.won_accounts == len(cell.get("won", ())), row
                assert row.revenue_won == pytest.approx(cell.get("won_revenue", 0.0)), row
            assert kpis.recovered_by_region == pytest.approx(want["by_region"])
            for name, counted in kpis.classes.items():
                assert counted["episodes"] == want["classes"].get(name, 0), name
                assert counted["revenue"] == pytest.approx(want["revenue_by_class"].get(name, 0.0))
            assert kpis.csm_true_wins == want["classes"].get("csm_true_win", 0)
            assert kpis.self_service_wins == want["classes"].get("self_service_win", 0)
            assert kpis.contacted_episodes == want["contacted"]
            assert kpis.median_hours_to_first_contact == pytest.approx(want["median_hours"])
        # The replay is rich enough for the comparison to mean something.
        assert kpis.csm_true_wins > 0
        assert kpis.csm_losses > 0
        assert kpis.self_service_wins > 0
        assert kpis.self_service_losses > 0
        assert kpis.impact.episodes_holdout > 0
        assert sum(1 for row in kpis.buckets if row.at_risk_accounts) >= 4
