"""Ledger invariants, every day, against an independent model of the rules.

A 90-day snapshot sequence from the simulator is replayed day by day; random
small sequences add missing and returning accounts, repeated, skipped and
out-of-order dates. After every day the store must equal the plain-Python
model of ``reference.py``; re-running a day and shuffling rows change nothing.
"""

from __future__ import annotations

import datetime as dt
import glob
import random
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from churnwatch.errors import TrackerError
from churnwatch.simulate import simulate
from churnwatch.store import (
    CHURN_LEDGER,
    OUTBOX,
    TRACKER_ACCOUNTS,
    TRACKER_RUNS,
    TRANSITIONS,
    WIN_LEDGER,
    Store,
    open_store,
)
from churnwatch.tracker import track_snapshot

from .reference import Reference, assert_matches

START = dt.date(2024, 3, 1)
NOW = dt.datetime(2024, 6, 1, 12, tzinfo=dt.UTC)


def _dump(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows, without ids and clock times, sorted."""
    skip = {"id", "recorded_at", "created_at", "next_attempt_at", "processed_at"}
    out = {}
    with store.engine.connect() as connection:
        for table in (
            TRACKER_ACCOUNTS,
            CHURN_LEDGER,
            WIN_LEDGER,
            TRANSITIONS,
            OUTBOX,
            TRACKER_RUNS,
        ):
            columns = [c for c in table.columns if c.name not in skip]
            rows = connection.execute(sa.select(*columns)).all()
            out[table.name] = sorted(tuple(map(repr, row)) for row in rows)
    return out


def _simulated_days(tmp_path: Path, seed: int) -> list[tuple[dt.date, pa.Table]]:
    simulate(tmp_path, n_accounts=1500, end="2024-06-30", events_per_account=5, seed=seed)
    table = ds.dataset(sorted(glob.glob(str(tmp_path / "adoption_snapshots" / "*.parquet"))))
    frame = table.to_table().to_pandas()
    days = []
    for day, rows in frame.groupby("snapshot_date", sort=True):
        days.append((day, pa.Table.from_pandas(rows, preserve_index=False)))
    return days


@pytest.mark.slow
# Each example simulates a business and replays 90 days: a few are enough, and
# shrinking a seed would teach nothing (a failure is reproduced by its seed).
@settings(
    max_examples=3,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(seed=st.integers(0, 10_000))
def test_simulator_replay_keeps_the_ledger_invariants_every_day(
    tmp_path_factory: pytest.TempPathFactory, seed: int
) -> None:
    folder = tmp_path_factory.mktemp("sim")
    days = _simulated_days(folder / "data", seed)
    assert len(days) == 90
    reference = Reference()
    kinds: set[str] = set()
    with open_store(f"sqlite:///{folder / 'ops.sqlite'}") as store:
        for day, rows in days:
            result = track_snapshot(store, rows, now=NOW)
            assert result.snapshot_date == day
            kinds |= set(result.counts)
            snapshot = {
                (a, p or ""): bool(e)
                for a, p, e in zip(
                    rows.column("account_id").to_pylist(),
                    rows.column("product").to_pylist(),
                    rows.column("is_enabled").to_pylist(),
                    strict=True,
                )
            }
            assert reference.track(day, snapshot) == "applied"
            assert_matches(store, reference)
        # The replay met every kind of change the invariants are about.
        assert {"new", "churned", "re_adopted", "missing", "returned"} <= kinds
        before = _dump(store)
        again = track_snapshot(store, days[-1][1], now=NOW)
        assert again.already_tracked
        assert _dump(store) == before


ACCOUNTS = [f"a{i}" for i in range(6)]
# None: the account is absent from that day's snapshot.
day_rows = st.fixed_dictionaries({a: st.sampled_from([True, False, None]) for a in ACCOUNTS})
sequences = st.lists(st.tuples(st.integers(0, 12), day_rows), min_size=1, max_size=12)


def _snapshot(rows: dict[str, bool | None], order: random.Random) -> pa.Table:
    present = [(a, e) for a, e in rows.items() if e is not None]
    order.shuffle(present)
    return pa.table(
        {
            "account_id": pa.array([a for a, _ in present], pa.string()),
            "product": pa.array(["p" if a == "a5" else None for a, _ in present], pa.string()),
            "is_enabled": pa.array([e for _, e in present], pa.bool_()),
            "revenue": pa.array([10.0 * int(a[1:]) for a, _ in present], pa.float64()),
        }
    )


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sequence=sequences, shuffle_seed=st.integers(0, 2**16))
# An empty first snapshot: the keys of both empty sides must still merge.
@example(sequence=[(0, dict.fromkeys(ACCOUNTS))], shuffle_seed=0)
def test_random_sequences_with_gaps_repeats_and_late_dates(
    sequence: list[tuple[int, dict[str, bool | None]]],
    shuffle_seed: int,
) -> None:
    order = random.Random(shuffle_seed)
    reference = Reference()
    with open_store("sqlite://") as store:
        for offset, rows in sequence:
            day = START + dt.timedelta(days=offset)
            snapshot = {(a, "p" if a == "a5" else ""): e for a, e in rows.items() if e is not None}
            expected = reference.track(day, snapshot)
            before = _dump(store)
            if expected == "refused":
                with pytest.raises(TrackerError, match="older than the last one tracked"):
                    track_snapshot(store, _snapshot(rows, order), date=day, now=NOW)
                assert _dump(store) == before
                continue
            result = track_snapshot(store, _snapshot(rows, order), date=day, now=NOW)
            assert result.already_tracked == (expected == "repeated")
            if expected == "repeated":
                assert _dump(store) == before
            assert_matches(store, reference)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sequence=sequences, seeds=st.tuples(st.integers(0, 2**16), st.integers(0, 2**16)))
def test_row_order_changes_nothing(
    sequence: list[tuple[int, dict[str, bool | None]]],
    seeds: tuple[int, int],
) -> None:
    dumps = []
    for seed in seeds:
        order = random.Random(seed)
        with open_store("sqlite://") as store:
            for offset, rows in sorted(dict(sequence).items()):
                day = START + dt.timedelta(days=offset)
                track_snapshot(store, _snapshot(rows, order), date=day, now=NOW)
            dumps.append(_dump(store))
    assert dumps[0] == dumps[1]
