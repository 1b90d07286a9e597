"""A small, realistic project for the dashboard: a read model with every table, and a store.

:func:`build_sample_project` writes ``churnwatch.toml``, one generation of the
read model (``views/``) per the read-model contract — accounts with risk,
reasons, health and segments; risk history; weekly activity; features; churn
trend; cohorts; survival curves and log-rank tests; segment points and
profiles; model metrics, curves, importance, PDP and drift — and an
operational store whose tracker followed a share of the accounts for three
weeks (churns, re-adoptions, a holdout, CSM answers). The numbers are drawn
from one seeded generator and hang together (risk rises with inactivity, the
riskiest accounts churn more), so every chart has a shape worth looking at.

``scripts/dashboard_screenshots.py`` loads this file to build the same
project when no demo read model is at hand; it is vectorised, so
``n_accounts=1_000_000`` builds the scale test's read model.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from churnwatch._tracker_settings import TrackerSettings
from churnwatch.config import Settings
from churnwatch.dashboard._context import PROJECT_ENV
from churnwatch.outcomes import record_outcome
from churnwatch.store import open_store
from churnwatch.tracker import track_snapshot
from churnwatch.views import write_generation

PLANS = ("basic", "pro", "enterprise")
REGIONS = ("emea", "na", "apac", "latam")
PLATFORMS = ("web", "ios", "android")
SEGMENTS = ("power users", "steady teams", "fading casuals", "new explorers")
REASONS = (
    "no login for 3 weeks",
    "events down 60% vs previous month",
    "2 failed payments in 90 days",
    "3 support contacts in 90 days",
    "seats unused",
    "downgraded plan",
)
FEATURES = (
    "events_30d",
    "active_days_30d",
    "days_since_last_event",
    "events_trend_ratio_30d",
    "payment_success_rate_90d",
    "support_contacts_90d",
    "tenure_days",
    "seats",
)
FIRST = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Margaret", "Linus", "Radia", "Dennis")
LAST = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Thompson", "Hamilton", "Perlman")
WORDS = ("Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Hooli", "Vandelay", "Soylent")
TARGET = "churn_30d"
OBSERVATION_END = dt.date(2024, 12, 31)
TRACK_DAYS = 21


def _accounts(rng: np.random.Generator, n: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The accounts table and the features table they were scored from."""
    ids = np.char.add("acc-", np.char.zfill(np.arange(n).astype(str), 7))
    segment = rng.integers(0, len(SEGMENTS), n)
    # Each segment uses the product differently: that is what the PCA separates.
    base_events = np.array([220.0, 90.0, 12.0, 40.0])[segment]
    events = rng.poisson(base_events * rng.uniform(0.5, 1.5, n)).astype(float)
    recency = np.where(events > 0, rng.exponential(30.0 / (1.0 + events / 20.0)), 60.0).round()
    trend = np.clip(rng.normal(np.array([1.05, 1.0, 0.45, 1.2])[segment], 0.25), 0.0, 3.0)
    payments = np.clip(rng.beta(12, 1, n) - (segment == 2) * 0.15, 0, 1)
    support = rng.poisson(np.array([0.4, 0.6, 1.6, 0.9])[segment])
    tenure = rng.integers(20, 720, n).astype(float)
    seats = rng.integers(1, 60, n).astype(float)
    features = pd.DataFrame(
        {
            "account_id": ids,
            "events_30d": events,
            "active_days_30d": np.minimum(30, np.ceil(events / 6.0)),
            "days_since_last_event": recency,
            "events_trend_ratio_30d": trend,
            "payment_success_rate_90d": payments,
            "support_contacts_90d": support.astype(float),
            "tenure_days": tenure,
            "seats": seats,
        }
    )
    logit = -2.2 + 0.07 * recency - 1.4 * (trend - 1.0) + 0.45 * support - 3.0 * (payments - 0.9)
    risk = 1.0 / (1.0 + np.exp(-logit))
    plan = rng.choice(len(PLANS), n, p=[0.55, 0.35, 0.10])
    mrr = np.round(np.array([49.0, 199.0, 1200.0])[plan] * rng.lognormal(0.0, 0.35, n), 2)
    churned = rng.random(n) < risk * 0.5
    tier = np.where(risk >= 0.5, "high", np.where(risk >= 0.2, "medium", "low"))
    health = np.clip(100.0 * (1.0 - risk) + rng.normal(0, 6, n), 0, 100).round(1)
    reason_index = rng.integers(0, len(REASONS), (n, 3))
    first = rng.integers(0, len(FIRST), n)
    last = rng.integers(0, len(LAST), n)
    company = rng.integers(0, len(WORDS), n)
    names = [f"{WORDS[c]} {i[-4:]}" for c, i in zip(company, ids, strict=True)]
    emails = [
        f"{FIRST[f].lower()}.{LAST[g].lower()}@{WORDS[c].lower()}.com"
        for f, g, c in zip(first, last, company, strict=True)
    ]
    created = pd.Timestamp(OBSERVATION_END, tz="UTC") - pd.to_timedelta(tenure, unit="D")
    scored_at = pd.Timestamp(OBSERVATION_END, tz="UTC")
    accounts = pd.DataFrame(
        {
            "account_id": ids,
            "name": names,
            "email": emails,
            "plan": np.array(PLANS)[plan],
            "region": np.array(REGIONS)[rng.integers(0, len(REGIONS), n)],
            "platform": np.array(PLATFORMS)[rng.integers(0, len(PLATFORMS), n)],
            "csm_id": np.char.add("csm-", np.char.zfill(rng.integers(1, 13, n).astype(str), 2)),
            "created_at": created,
            "status": np.where(churned, "churned", "active"),
            "mrr": mrr,
            "churn_risk": risk,
            "risk_tier": tier,
            "revenue_at_risk": np.round(mrr * risk, 2),
            "reason_1": np.array(REASONS)[reason_index[:, 0]],
            "reason_2": np.array(REASONS)[reason_index[:, 1]],
            "reason_3": np.array(REASONS)[reason_index[:, 2]],
            "predicted_days_to_churn": np.round(30.0 / np.maximum(risk, 0.02)),
            "health_score": health,
            "health_band": np.where(
                health >= 70, "healthy", np.where(health >= 40, "watch", "poor")
            ),
            "segment": np.array(SEGMENTS)[segment],
            "tracker_state": np.where(risk >= 0.5, "at_risk", "ok"),
            "scored_at": scored_at,
        }
    )
    order = np.argsort(-risk, kind="stable")
    return accounts.iloc[order].reset_index(drop=True), features


def _risk_history(rng: np.random.Generator, accounts: pd.DataFrame) -> pa.Table:
    n = len(accounts)
    months = pd.date_range(end=pd.Timestamp(OBSERVATION_END), periods=6, freq="MS", tz="UTC")
    final = accounts["churn_risk"].to_numpy()
    # Risk drifts towards today's value over six monthly scorings.
    steps = np.linspace(0.4, 1.0, len(months))
    start = rng.uniform(0.02, 0.3, n)
    scores = np.clip(
        start[:, None] + (final - start)[:, None] * steps + rng.normal(0, 0.03, (n, 6)), 0, 1
    )
    order = np.argsort(accounts["account_id"].to_numpy())
    ids = accounts["account_id"].to_numpy()[order]
    return pa.table(
        {
            "account_id": np.repeat(ids, len(months)),
            "scored_at": pa.array(np.tile(months.to_numpy(), n)),
            "target": np.full(n * len(months), TARGET),
            "score": scores[order].ravel(),
        }
    )


def _activity(rng: np.random.Generator, accounts: pd.DataFrame, features: pd.DataFrame) -> pa.Table:
    weeks = pd.date_range(end=pd.Timestamp(OBSERVATION_END), periods=26, freq="W-MON")
    merged = features.set_index("account_id").loc[np.sort(accounts["account_id"].to_numpy())]
    level = merged["events_30d"].to_numpy() / 4.0
    trend = merged["events_trend_ratio_30d"].to_numpy()
    # Declining towards today when the trend ratio is below 1.
    shape = np.power(np.maximum(trend, 0.2)[:, None], np.linspace(-1.0, 0.0, 26))
    events = rng.poisson(np.maximum(level[:, None] * shape, 0.05)).astype(np.int64)
    n = len(merged)
    return pa.table(
        {
            "account_id": np.repeat(merged.index.to_numpy(), 26),
            "week": pa.array(np.tile(weeks.date, n), pa.date32()),
            "events": events.ravel(),
            "active_days": np.minimum(7, np.ceil(events / 3.0)).astype(np.int64).ravel(),
            "duration_s": (events * rng.uniform(30, 600, (n, 26))).ravel(),
        }
    )


def _retention_tables(rng: np.random.Generator) -> dict[str, pa.Table]:
    periods = pd.date_range(end=pd.Timestamp(OBSERVATION_END), periods=24, freq="MS")
    accounts = np.linspace(120, 260, 24).round().astype(int)
    rate = np.clip(0.05 + 0.015 * np.sin(np.arange(24) / 3.0) + rng.normal(0, 0.004, 24), 0, 1)
    rate[-1] = rate[:-1].mean() * 1.9  # the latest month spikes
    churned = (accounts * rate).round().astype(int)
    trend = pa.table(
        {
            "period": pa.array(periods.date, pa.date32()),
            "accounts": accounts,
            "churned": churned,
            "churn_rate": churned / accounts,
            "revenue_churned": churned * 180.0,
        }
    )
    cohorts, sizes, offsets, retention = [], [], [], []
    for index, start in enumerate(pd.date_range("2024-01-01", periods=12, freq="MS")):
        size = int(rng.integers(80, 160))
        decay = rng.uniform(0.05, 0.11)
        for period in range(12 - index):
            cohorts.append(start.strftime("%Y-%m"))
            sizes.append(size)
            offsets.append(period)
            retention.append(float(np.exp(-decay * period)))
    cohort = pa.table(
        {"cohort": cohorts, "cohort_size": sizes, "period": offsets, "retention": retention}
    )
    rows: dict[str, list[object]] = {
        k: [] for k in ("attribute", "group", "days", "survival", "lower", "upper")
    }
    tests: dict[str, list[object]] = {
        k: [] for k in ("attribute", "statistic", "p_value", "degrees_of_freedom", "groups")
    }
    days = np.arange(0, 721, 30, dtype=float)
    groups = {
        "all": {"all": 0.0010},
        "plan": dict(zip(PLANS, (0.0016, 0.0009, 0.0004), strict=True)),
        "region": dict(zip(REGIONS, (0.0010, 0.0011, 0.0009, 0.0012), strict=True)),
    }
    for attribute, hazards in groups.items():
        for group, hazard in hazards.items():
            survival = np.exp(-hazard * days)
            width = 0.02 + 0.00005 * days
            rows["attribute"] += [attribute] * len(days)
            rows["group"] += [group] * len(days)
            rows["days"] += list(days)
            rows["survival"] += list(survival)
            rows["lower"] += list(np.clip(survival - width, 0, 1))
            rows["upper"] += list(np.clip(survival + width, 0, 1))
        if attribute != "all":
            tests["attribute"].append(attribute)
            tests["statistic"].append(41.7 if attribute == "plan" else 2.1)
            tests["p_value"].append(8.8e-10 if attribute == "plan" else 0.55)
            tests["degrees_of_freedom"].append(len(hazards) - 1)
            tests["groups"].append(len(hazards))
    return {
        "churn_trend": trend,
        "cohort_retention": cohort,
        "survival_curves": pa.table(rows),
        "survival_tests": pa.table(tests),
    }


def _durations(rng: np.random.Generator, accounts: pd.DataFrame) -> pa.Table:
    """One or two followed periods per account; plans churn at different rates."""
    hazard = accounts["plan"].map(dict(zip(PLANS, (0.004, 0.002, 0.001), strict=True)))
    periods = rng.integers(1, 3, len(accounts))
    ids = np.repeat(accounts["account_id"].to_numpy(), periods)
    rate = np.repeat(hazard.to_numpy(dtype=float), periods)
    lifetime = rng.exponential(1.0 / rate)
    followed = rng.uniform(30, 720, len(ids))
    return pa.table(
        {
            "account_id": ids,
            "duration_days": np.minimum(lifetime, followed).round(),
            "event_observed": (lifetime <= followed).astype(np.int64),
        }
    )


def _segment_tables(
    rng: np.random.Generator, accounts: pd.DataFrame, features: pd.DataFrame
) -> dict[str, pa.Table]:
    sample = accounts.sample(n=min(len(accounts), 20_000), random_state=0)
    centres = np.array([[2.5, 0.5], [0.5, 1.8], [-2.2, -0.6], [0.2, -1.9]])
    index = pd.Series(range(len(SEGMENTS)), index=SEGMENTS).loc[sample["segment"]].to_numpy()
    points = centres[index] + rng.normal(0, 0.6, (len(sample), 2))
    profile = features.set_index("account_id").join(accounts.set_index("account_id")["segment"])
    means = profile.groupby("segment")[list(FEATURES)].mean()
    sizes = profile.groupby("segment").size()
    long = means.reset_index().melt("segment", var_name="feature", value_name="mean")
    long.insert(1, "accounts", sizes.loc[long["segment"]].to_numpy())
    return {
        "segment_points": pa.table(
            {
                "account_id": sample["account_id"].to_numpy(),
                "pc1": points[:, 0],
                "pc2": points[:, 1],
                "segment": sample["segment"].to_numpy(),
            }
        ),
        "segment_profiles": pa.Table.from_pandas(long, preserve_index=False),
    }


def _model_tables(rng: np.random.Generator) -> dict[str, pa.Table]:
    cutoffs = pd.date_range(end=pd.Timestamp(OBSERVATION_END), periods=6, freq="MS", tz="UTC")
    metric_rows = []
    for cutoff in cutoffs:
        auc = 0.84 + rng.normal(0, 0.01)
        for metric, value in (
            ("roc_auc", auc),
            ("pr_auc", auc - 0.38),
            ("brier", 0.11 + rng.normal(0, 0.004)),
            ("lift_top_decile", 3.4 + rng.normal(0, 0.1)),
        ):
            metric_rows.append((TARGET, cutoff, metric, float(value)))
    metrics = pd.DataFrame(metric_rows, columns=["target", "cutoff", "metric", "value"])
    grid = np.linspace(0, 1, 41)
    curves = pd.concat(
        [
            pd.DataFrame({"curve": "roc", "x": grid, "y": 1 - (1 - grid) ** 4.2}),
            pd.DataFrame({"curve": "pr", "x": grid, "y": 0.2 + 0.75 * (1 - grid) ** 1.6}),
            pd.DataFrame(
                {
                    "curve": "calibration",
                    "x": grid[::4],
                    "y": np.clip(grid[::4] + rng.normal(0, 0.03, 11), 0, 1),
                }
            ),
        ]
    )
    curves.insert(0, "target", TARGET)
    weights = np.array([0.31, 0.12, 0.22, 0.14, 0.09, 0.07, 0.03, 0.02])
    pdp_rows = []
    for feature in FEATURES[:5]:
        xs = np.linspace(0, {"events_30d": 300, "days_since_last_event": 60}.get(feature, 2), 15)
        slope = 0.008 if feature == "days_since_last_event" else -0.001
        pdp_rows += [
            (TARGET, feature, float(x), float(1 / (1 + np.exp(-(-1.5 + slope * x * 10)))))
            for x in xs
        ]
    psi = np.array([0.03, 0.05, 0.31, 0.12, 0.02, 0.08, 0.01, 0.04])
    return {
        "model_metrics": pa.Table.from_pandas(metrics, preserve_index=False),
        "model_curves": pa.Table.from_pandas(curves, preserve_index=False),
        "importance": pa.table(
            {"target": [TARGET] * 8, "feature": list(FEATURES), "importance": weights}
        ),
        "pdp": pa.table(pd.DataFrame(pdp_rows, columns=["target", "feature", "x", "y"])),
        "drift": pa.table(
            {
                "target": [TARGET] * 8,
                "feature": list(FEATURES),
                "psi": psi,
                "status": np.where(psi >= 0.25, "drift", np.where(psi >= 0.1, "watch", "ok")),
            }
        ),
    }


def _track(project: Path, accounts: pd.DataFrame, rng: np.random.Generator, tracked: int) -> str:
    """Three weeks of adoption snapshots of the riskiest ``tracked`` accounts, and answers."""
    url = "sqlite:///churnwatch_ops.sqlite"
    store = open_store(url, base_dir=project)
    settings = Settings(tracker=TrackerSettings(holdout_share=0.25, holdout_seed="sample"))
    chosen = accounts.head(tracked)
    risk = chosen["churn_risk"].to_numpy()
    on = np.ones(len(chosen), dtype=bool)
    start = OBSERVATION_END - dt.timedelta(days=TRACK_DAYS - 1)
    try:
        for day in range(TRACK_DAYS):
            # Risky accounts turn the product off; a third of those off turn it back on.
            off = rng.random(len(chosen)) < risk * 0.04
            back = rng.random(len(chosen)) < 0.06
            on = np.where(on, ~off, back)
            snapshot = pa.table(
                {
                    "account_id": chosen["account_id"].to_numpy(),
                    "is_enabled": on,
                    "name": chosen["name"].to_numpy(),
                    "csm_id": chosen["csm_id"].to_numpy(),
                    "region": chosen["region"].to_numpy(),
                    "revenue": chosen["mrr"].to_numpy(),
                }
            )
            when = start + dt.timedelta(days=day)
            track_snapshot(
                store,
                snapshot,
                date=when,
                settings=settings,
                now=dt.datetime.combine(when, dt.time(6), dt.UTC),
            )
            if day in (8, 15):
                for account_id in chosen.loc[~on, "account_id"].head(3):
                    record_outcome(
                        store,
                        "won" if day == 8 else "lost",
                        account_id=str(account_id),
                        notes="called the admin",
                        source="cli",
                        now=dt.datetime.combine(when, dt.time(12), dt.UTC),
                    )
    finally:
        store.close()
    return url


def build_sample_project(
    project: Path,
    *,
    n_accounts: int = 200,
    seed: int = 0,
    tracked_accounts: int = 120,
    dashboard: str = "",
) -> Path:
    """Write a project with a complete read model (and a tracked store) into ``project``.

    Parameters
    ----------
    project : Path
        The project folder (created).
    n_accounts : int
        Accounts in the read model.
    seed : int
        Seed of every random draw.
    tracked_accounts : int
        The riskiest accounts followed by the tracker (0: no store).
    dashboard : str
        TOML lines of the ``[dashboard]`` section.

    Returns
    -------
    Path
        ``project``.
    """
    rng = np.random.default_rng(seed)
    project.mkdir(parents=True, exist_ok=True)
    text = (
        '[project]\nname = "sample"\n\n[tracker]\nholdout_share = 0.25\nholdout_seed = "sample"\n'
    )
    if dashboard:
        text += f"\n[dashboard]\n{dashboard}\n"
    (project / "churnwatch.toml").write_text(text)
    accounts, features = _accounts(rng, n_accounts)
    tables: dict[str, pa.Table] = {
        "accounts": pa.Table.from_pandas(accounts, preserve_index=False),
        "risk_history": _risk_history(rng, accounts),
        "activity": _activity(rng, accounts, features),
        "features": pa.Table.from_pandas(features.sort_values("account_id"), preserve_index=False),
        **_retention_tables(rng),
        **_segment_tables(rng, accounts, features),
        **_model_tables(rng),
        # Its own generator: the other tables stay as they were drawn.
        "survival_durations": _durations(np.random.default_rng(seed + 1), accounts),
    }
    store_url = _track(project, accounts, rng, tracked_accounts) if tracked_accounts else None
    trend = tables["churn_trend"].to_pandas()
    latest, baseline = (
        float(trend["churn_rate"].iloc[-1]),
        float(trend["churn_rate"].iloc[-7:-1].mean()),
    )
    meta = {
        "project": "sample",
        "scored_at": f"{OBSERVATION_END.isoformat()}T00:00:00+00:00",
        "observation_end": OBSERVATION_END.isoformat(),
        "kpis": {
            "accounts": n_accounts,
            "active_accounts": int((accounts["status"] == "active").sum()),
            "churn_rate": latest,
            "revenue_at_risk": float(accounts["revenue_at_risk"].sum()),
            "revenue_recovered": 4310.0 if tracked_accounts else None,
            "churn_spike": {
                "spike": latest > 1.5 * baseline,
                "latest": latest,
                "baseline": baseline,
                "message": f"churn in the latest month is {latest:.1%}, against "
                f"{baseline:.1%} over the six months before",
            },
        },
        "models": {TARGET: {"version": "v3", "roc_auc": 0.84, "features": list(FEATURES)}},
        "filter_values": {
            "risk_tier": ["high", "medium", "low"],
            "csm_id": sorted(accounts["csm_id"].unique().tolist()),
            "region": list(REGIONS),
            "plan": list(PLANS),
            "platform": list(PLATFORMS),
            "segment": list(SEGMENTS),
        },
        "store_url": store_url,
    }
    write_generation(project / "views", tables, meta)
    return project


@pytest.fixture(scope="session")
def sample_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project of 200 accounts with every read-model table and a tracked store (read only)."""
    return build_sample_project(tmp_path_factory.mktemp("sample") / "project")


@pytest.fixture
def own_project(sample_project: Path, tmp_path: Path) -> Path:
    """A copy of the sample project a test may change (its store, its settings)."""
    copy = tmp_path / "project"
    shutil.copytree(sample_project, copy)
    return copy


@pytest.fixture
def use_project(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """Point the dashboard at a project folder: ``use_project(path)``."""

    def point(path: Path) -> None:
        monkeypatch.setenv(PROJECT_ENV, str(path))

    yield point
    os.environ.pop(PROJECT_ENV, None)
