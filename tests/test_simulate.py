"""Tests of the subscription-business simulator.

One shared simulation of a few thousand accounts backs the statistical
tests; its seed is fixed, so they are deterministic, and their thresholds
leave a wide margin around what the generative process implies.
"""

from __future__ import annotations

import hashlib
import tempfile
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from churnwatch.errors import SimulationError
from churnwatch.schema import TABLES
from churnwatch.simulate import DRIVERS, NEUTRAL_SIGNALS, ChurnDriver, SimulationResult, simulate

END = date(2024, 12, 31)
END_TS = pd.Timestamp(END, tz="UTC")
ARROW_TYPES = {
    "string": pa.string(),
    "json": pa.string(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "date": pa.date32(),
    "double": pa.float64(),
    "bigint": pa.int64(),
    "boolean": pa.bool_(),
}


def _files(result: SimulationResult, table: str) -> list[Path]:
    path = result.paths[table]
    return sorted(path.glob("part-*.parquet")) if path.is_dir() else [path]


def _arrow(result: SimulationResult, table: str) -> pa.Table:
    return pa.concat_tables(pq.read_table(f) for f in _files(result, table))


def _load(result: SimulationResult) -> dict[str, pd.DataFrame]:
    return {name: _arrow(result, name).to_pandas() for name in TABLES}


def _digest(result: SimulationResult) -> dict[str, str]:
    """A hash of each table's contents, independent of how it is split into files."""
    digests = {}
    for name in TABLES:
        frame = _arrow(result, name).to_pandas()
        rows = pd.util.hash_pandas_object(frame, index=False).to_numpy()
        digests[name] = hashlib.sha256(
            rows.tobytes() + str(list(frame.columns)).encode()
        ).hexdigest()
    return digests


def _check_relationships(tables: dict[str, pd.DataFrame], end: date) -> None:
    """The invariants every simulated dataset must satisfy, whatever its size."""
    end_ts = pd.Timestamp(end, tz="UTC")
    accounts = tables["accounts"].set_index("account_id")
    assert accounts.index.is_unique
    assert set(tables["csms"].csm_id).issuperset(accounts.csm_id.dropna())
    for name in ("users", "subscriptions", "payments", "events", "adoption_snapshots"):
        assert tables[name].account_id.isin(accounts.index).all(), name

    users = tables["users"].set_index("user_id")
    assert users.index.is_unique
    assert (users.created_at >= accounts.created_at.loc[users.account_id].to_numpy()).all()

    events = tables["events"]
    assert events.event_id.is_unique
    assert (users.account_id.loc[events.user_id].to_numpy() == events.account_id.to_numpy()).all()
    assert (events.event_time >= users.created_at.loc[events.user_id].to_numpy()).all()
    assert (events.event_time >= accounts.created_at.loc[events.account_id].to_numpy()).all()

    subs = tables["subscriptions"].sort_values(["account_id", "started_at"])
    assert subs.subscription_id.is_unique
    assert (subs.started_at >= accounts.created_at.loc[subs.account_id].to_numpy()).all()
    assert ((subs.status == "active") == subs.ended_at.isna()).all()
    closed = subs.dropna(subset=["ended_at"])
    assert (closed.ended_at >= closed.started_at).all()
    previous_end = subs.groupby("account_id").ended_at.shift()
    follows = previous_end.notna()
    assert (subs.started_at[follows] >= previous_end[follows]).all(), "periods overlap"
    # At most one open period per account, and it is the last.
    assert not (subs.groupby("account_id").ended_at.shift(-1).notna() & subs.ended_at.isna()).any()

    payments = tables["payments"].merge(
        subs[["subscription_id", "account_id", "started_at", "ended_at"]],
        on="subscription_id",
        suffixes=("", "_sub"),
    )
    assert len(payments) == len(tables["payments"])
    assert (payments.account_id == payments.account_id_sub).all()
    assert (payments.paid_at >= payments.started_at).all()
    assert (payments.ended_at.isna() | (payments.paid_at < payments.ended_at)).all()

    # No activity while an account is churned: every event lies in a period.
    if len(events):
        spans = subs[["account_id", "started_at", "ended_at"]].rename(
            columns={"started_at": "event_time"}
        )
        located = pd.merge_asof(
            events[["account_id", "event_time"]].sort_values("event_time"),
            spans.sort_values("event_time").rename(columns={"event_time": "period_start"}),
            left_on="event_time",
            right_on="period_start",
            by="account_id",
        )
        assert located.period_start.notna().all()
        assert (located.ended_at.isna() | (located.event_time < located.ended_at)).all()

    for name, column in (
        ("accounts", "created_at"),
        ("users", "created_at"),
        ("subscriptions", "started_at"),
        ("subscriptions", "ended_at"),
        ("payments", "paid_at"),
        ("events", "event_time"),
    ):
        assert (tables[name][column].dropna() < end_ts).all(), (name, column)
    snapshots = tables["adoption_snapshots"]
    assert (snapshots.snapshot_date <= end).all()
    assert snapshots.csm_id.notna().all()
    assert not snapshots.duplicated(["snapshot_date", "account_id", "product"]).any()
    created = accounts.created_at.loc[snapshots.account_id].dt.date.to_numpy()
    assert (snapshots.snapshot_date.to_numpy() >= created).all()


@pytest.fixture(scope="module")
def business(tmp_path_factory: pytest.TempPathFactory) -> SimulationResult:
    return simulate(tmp_path_factory.mktemp("business"), n_accounts=4000, seed=7)


@pytest.fixture(scope="module")
def tables(business: SimulationResult) -> dict[str, pd.DataFrame]:
    return _load(business)


def test_tables_have_the_canonical_schema(business: SimulationResult) -> None:
    for name, table in TABLES.items():
        schema = pq.read_schema(_files(business, name)[0])
        assert schema.names == list(table.column_names), name
        for column in table.columns:
            assert schema.field(column.name).type == ARROW_TYPES[column.type], column.name


def test_counts_and_manifest_match_the_files(business: SimulationResult) -> None:
    for name in TABLES:
        assert business.counts[name] == _arrow(business, name).num_rows
    manifest = pd.read_json(business.manifest_path, typ="series")
    assert manifest["seed"] == 7
    assert manifest["observation_end"] == "2024-12-31"
    assert manifest["counts"] == business.counts
    assert [d["name"] for d in manifest["drivers"]] == [d.name for d in DRIVERS]
    assert business.observation_end == END


def test_relationships_and_time_bounds_hold(tables: dict[str, pd.DataFrame]) -> None:
    _check_relationships(tables, END)


def test_same_parameters_give_identical_bytes(tmp_path: Path) -> None:
    first = simulate(tmp_path / "a", n_accounts=1500, seed=3, events_per_account=10)
    second = simulate(tmp_path / "b", n_accounts=1500, seed=3, events_per_account=10)
    assert _digest(first) == _digest(second)
    for name in TABLES:
        for one, two in zip(_files(first, name), _files(second, name), strict=True):
            assert one.read_bytes() == two.read_bytes()
    assert first.manifest_path.read_bytes() == second.manifest_path.read_bytes()


def test_another_seed_gives_other_data(tmp_path: Path) -> None:
    first = simulate(tmp_path / "a", n_accounts=200, seed=1, events_per_account=5)
    second = simulate(tmp_path / "b", n_accounts=200, seed=2, events_per_account=5)
    assert _digest(first)["events"] != _digest(second)["events"]


def test_chunk_size_changes_files_not_data(tmp_path: Path) -> None:
    progress: list[tuple[int, int]] = []
    small = simulate(
        tmp_path / "small",
        n_accounts=2500,
        events_per_account=5,
        chunk_accounts=1000,
        on_progress=lambda done, total: progress.append((done, total)),
    )
    large = simulate(tmp_path / "large", n_accounts=2500, events_per_account=5)
    assert len(_files(small, "events")) == 3
    assert len(_files(large, "events")) == 1
    assert progress == [(1000, 2500), (2000, 2500), (2500, 2500)]
    assert _digest(small) == _digest(large)


def test_rerun_replaces_the_previous_output(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("keep me")
    simulate(tmp_path, n_accounts=2500, events_per_account=2, chunk_accounts=1000)
    result = simulate(tmp_path, n_accounts=300, events_per_account=2)
    assert len(_files(result, "events")) == 1
    assert _arrow(result, "accounts").num_rows == 300
    assert (tmp_path / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_rates_are_plausible(tables: dict[str, pd.DataFrame]) -> None:
    accounts, subs, payments = tables["accounts"], tables["subscriptions"], tables["payments"]
    events = tables["events"]
    assert 35 < len(events) / len(accounts) < 65
    assert 0.03 < (payments.status == "failed").mean() < 0.20
    assert 0.002 < (payments.status == "refunded").mean() < 0.05
    assert payments.failure_reason.notna().eq(payments.status == "failed").all()
    churned = subs.loc[subs.status != "active", "account_id"].unique()
    assert 0.15 < len(churned) / len(accounts) < 0.50
    assert (subs.status == "ended").sum() > 0.02 * len(churned)
    comebacks = subs.groupby("account_id").size()
    assert (comebacks > 1).sum() > 0.03 * len(churned)
    assert set(accounts.plan) == {"basic", "pro", "enterprise"}
    assert accounts.loc[accounts.plan == "basic", "csm_id"].isna().all()
    assert (accounts.created_at < pd.Timestamp("2024-01-01", tz="UTC")).mean() > 0.2
    assert tables["csms"].slack_user_id.isna().any()
    assert tables["csms"].slack_user_id.dropna().str.match(r"^U0[A-Z0-9]{9}$").all()
    assert accounts[["churned", "churned_at", "tenure_days"]].isna().all().all()
    calls = events[events.event_type == "support_call"]
    assert calls.value.between(-1, 1).all()
    assert set(calls.properties.str.extract(r'"sentiment": "(\w+)"')[0]) == {
        "negative",
        "neutral",
        "positive",
    }
    assert (events.loc[events.event_type == "session", "duration_s"] > 0).all()


def test_engagement_fades_before_a_cancellation(tables: dict[str, pd.DataFrame]) -> None:
    subs, events = tables["subscriptions"], tables["events"]
    cancels = subs[
        (subs.status == "canceled")
        & (subs.started_at <= subs.ended_at - pd.Timedelta(days=60))
        & (subs.ended_at >= pd.Timestamp("2024-03-01", tz="UTC"))
    ]
    usage = events[events.event_type != "support_call"].merge(
        cancels[["account_id", "ended_at"]], on="account_id"
    )
    before = (usage.ended_at - usage.event_time).dt.days
    last_30 = ((before >= 0) & (before < 30)).sum() / len(cancels)
    previous_30 = ((before >= 30) & (before < 60)).sum() / len(cancels)
    assert len(cancels) > 200
    assert last_30 < 0.75 * previous_30


def _point_in_time(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Accounts live at a few cutoffs, their recent history, and whether they cancel soon."""
    accounts, subs = tables["accounts"], tables["subscriptions"]
    payments, events = tables["payments"], tables["events"]
    frames = []
    for cutoff in pd.to_datetime(["2024-05-01", "2024-07-01", "2024-09-01"], utc=True):
        live = subs[(subs.started_at < cutoff) & (subs.ended_at.isna() | (subs.ended_at >= cutoff))]
        frame = live.assign(
            cancels=(live.ended_at < cutoff + pd.Timedelta(days=60)) & (live.status == "canceled")
        )[["account_id", "cancels"]].merge(accounts, on="account_id")

        def recent(
            rows: pd.DataFrame, time: str, days: int, *, cut: pd.Timestamp = cutoff
        ) -> pd.Series:
            window = rows[(rows[time] < cut) & (rows[time] >= cut - pd.Timedelta(days=days))]
            return window.groupby("account_id").size()

        frame["failed_90d"] = frame.account_id.map(
            recent(payments[payments.status == "failed"], "paid_at", 90)
        ).fillna(0)
        negative = events[events.properties.str.contains('"negative"', regex=False)]
        frame["negative_90d"] = frame.account_id.map(recent(negative, "event_time", 90)).fillna(0)
        sessions = events[events.event_type == "session"]
        frame["sessions_30d"] = frame.account_id.map(recent(sessions, "event_time", 30)).fillna(0)
        frame["tenure_days"] = (cutoff - frame.created_at).dt.days
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def test_drivers_move_churn(tables: dict[str, pd.DataFrame]) -> None:
    frame = _point_in_time(tables)
    rate = frame.groupby(frame.plan).cancels.mean()
    assert rate["basic"] > 1.3 * rate["pro"]
    assert rate["pro"] > 1.5 * rate["enterprise"]
    paid = frame.referral_source == "paid_ads"
    assert frame[paid].cancels.mean() > 1.2 * frame[~paid].cancels.mean()
    managed = frame.csm_id.notna()
    assert frame[~managed].cancels.mean() > 1.5 * frame[managed].cancels.mean()
    failed = frame.failed_90d > 0
    assert frame[failed].cancels.mean() > 1.3 * frame[~failed].cancels.mean()
    negative = frame.negative_90d > 0
    assert frame[negative].cancels.mean() > 1.3 * frame[~negative].cancels.mean()
    quiet = frame.sessions_30d <= frame.sessions_30d.quantile(0.25)
    busy = frame.sessions_30d >= frame.sessions_30d.quantile(0.75)
    assert frame[quiet].cancels.mean() > 2 * frame[busy].cancels.mean()
    new = frame.tenure_days < 60
    assert frame[new].cancels.mean() > 1.3 * frame[frame.tenure_days > 365].cancels.mean()
    # Negative controls: region and platform do not move churn.
    for signal in NEUTRAL_SIGNALS:
        by = frame.groupby(signal).cancels.mean()
        assert by.max() < 1.5 * by.min(), signal


def test_adoption_flags_follow_the_lifecycle(tables: dict[str, pd.DataFrame]) -> None:
    snapshots, subs = tables["adoption_snapshots"], tables["subscriptions"]
    core = snapshots[snapshots["product"] == "payments"].sort_values(
        ["account_id", "snapshot_date"]
    )
    latest = subs.sort_values("started_at").groupby("account_id").tail(1).set_index("account_id")
    last_day = core[core.snapshot_date == END]
    status = latest.status.loc[last_day.account_id]
    assert not last_day.is_enabled[status.ne("active").to_numpy()].any()
    assert last_day.is_enabled[status.eq("active").to_numpy()].mean() > 0.9
    # Flags go off and some come back on (wins and flickers).
    flips = core.groupby("account_id").is_enabled.apply(lambda s: s.astype(int).diff().abs().sum())
    assert (flips >= 2).sum() > 0
    # Some account-days are missing from the report: the tracker must cope with gaps.
    span = core.groupby("account_id").snapshot_date.agg(["min", "max", "size"])
    expected = (pd.to_datetime(span["max"]) - pd.to_datetime(span["min"])).dt.days + 1
    assert (span["size"] < expected).any()
    assert {"payments", "invoicing"} <= set(snapshots["product"])


def test_drivers_are_described() -> None:
    assert len({d.name for d in DRIVERS}) == len(DRIVERS) >= 7
    for driver in DRIVERS:
        assert isinstance(driver, ChurnDriver)
        assert driver.direction in {"higher", "lower"}
        assert driver.description
        assert driver.signal
    signals = " ".join(d.signal for d in DRIVERS)
    for phrase in ("sessions", "failed payments", "negative support calls", "paid_ads", "csm"):
        assert phrase in signals


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"n_accounts": 0}, "n_accounts"),
        ({"n_accounts": 2.5}, "n_accounts"),
        ({"end": "2024-01-01"}, "end"),
        ({"start": "2024-06-01", "end": "2024-05-01"}, "after start"),
        ({"start": "yesterday"}, "ISO date"),
        ({"seed": -1}, "seed"),
        ({"events_per_account": -1.0}, "events_per_account"),
        ({"events_per_account": float("nan")}, "events_per_account"),
        ({"snapshot_days": -5}, "snapshot_days"),
        ({"chunk_accounts": 0}, "chunk_accounts"),
    ],
)
def test_bad_parameters_are_refused(
    tmp_path: Path, parameters: dict[str, object], message: str
) -> None:
    with pytest.raises(SimulationError, match=message):
        simulate(tmp_path, **parameters)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n_accounts=st.integers(1, 80),
    seed=st.integers(0, 2**32),
    days=st.integers(1, 150),
    events_per_account=st.floats(0, 40),
    snapshot_days=st.integers(0, 200),
)
def test_any_small_business_is_consistent(
    n_accounts: int, seed: int, days: int, events_per_account: float, snapshot_days: int
) -> None:
    start = date(2023, 11, 20)
    end = start + pd.Timedelta(days=days).to_pytimedelta()
    with tempfile.TemporaryDirectory() as tmp:
        result = simulate(
            tmp,
            n_accounts=n_accounts,
            start=start,
            end=end,
            seed=seed,
            events_per_account=events_per_account,
            snapshot_days=snapshot_days,
        )
        tables = _load(result)
    assert len(tables["accounts"]) == n_accounts
    _check_relationships(tables, end)
    if len(tables["adoption_snapshots"]):
        first = max(start, end - pd.Timedelta(days=snapshot_days - 1).to_pytimedelta())
        assert tables["adoption_snapshots"].snapshot_date.min() >= first
