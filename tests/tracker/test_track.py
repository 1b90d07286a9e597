"""The tracker's rules on small hand-made days, on SQLite, Postgres and MariaDB.

Each case is worked out by hand: which ledger an account is in, which
transitions a day appends, which notifications are queued and when.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa

from churnwatch.config import Settings, parse_settings
from churnwatch.errors import TrackerError
from churnwatch.store import (
    CHURN_LEDGER,
    OUTBOX,
    OUTCOMES,
    TRACKER_ACCOUNTS,
    TRACKER_RUNS,
    TRANSITIONS,
    WIN_LEDGER,
    Store,
)
from churnwatch.tracker import in_holdout, track_snapshot

D1 = dt.date(2024, 3, 1)
NOW = dt.datetime(2024, 3, 20, 9, tzinfo=dt.UTC)


def day(n: int) -> dt.date:
    return D1 + dt.timedelta(days=n - 1)


def snap(*rows: tuple[str, bool | None], gmv: float = 50.0) -> pa.Table:
    """Rows (account, enabled); gmv is 0 on a disabled row, as a real report shows."""
    return pa.table(
        {
            "account_id": [a for a, _ in rows],
            "is_enabled": [e for _, e in rows],
            "name": [f"Shop {a}" for a, _ in rows],
            "csm_id": ["csm1" for _ in rows],
            "region": ["EU" for _ in rows],
            "revenue": [100.0 for _ in rows],
            "gmv": [gmv if e else 0.0 for _, e in rows],
        }
    )


def rows(store: Store, table: sa.Table, *columns: str) -> list[tuple[Any, ...]]:
    with store.engine.connect() as connection:
        chosen = [table.c[c] for c in columns]
        return sorted(tuple(r) for r in connection.execute(sa.select(*chosen)))


def outbox(store: Store) -> list[str]:
    return [key for (key,) in rows(store, OUTBOX, "idempotency_key")]


def test_a_churn_ages_through_the_default_cadence(store: Store) -> None:
    track_snapshot(store, snap(("a", True), ("b", True), gmv=80.0), date=day(1), now=NOW)
    result = track_snapshot(store, snap(("a", False), ("b", True)), date=day(2), now=NOW)
    assert result.counts == {"churned": 1, "queued": 1}
    episode = "a||2024-03-02|snapshot"
    assert rows(
        store, CHURN_LEDGER, "episode_id", "source", "revenue", "gmv", "revenue_at_risk"
    ) == [
        # GMV at risk is the last one reported while enabled (80), not the 0 of the off day.
        (episode, "snapshot", 100.0, 80.0, 100.0)
    ]
    assert rows(store, TRACKER_ACCOUNTS, "account_id", "state", "is_enabled") == [
        ("a", "churned", False),
        ("b", "active", True),
    ]
    expected = {2: ["first"], 3: ["first"], 4: ["first", "second"], 5: ["first", "second"]}
    expected |= {6: ["final", "first", "second"], 7: ["final", "first", "second"]}
    for n in range(3, 8):
        track_snapshot(store, snap(("a", False), ("b", True)), date=day(n), now=NOW)
        assert outbox(store) == [f"{episode}|{step}|file" for step in expected[n]], n
    with store.engine.connect() as connection:
        payloads = {
            r.step: (r.kind, r.recipient_csm_id, json.loads(r.payload))
            for r in connection.execute(sa.select(OUTBOX))
        }
    assert {step: kind for step, (kind, _, _) in payloads.items()} == {
        "first": "churn",
        "second": "followup",
        "final": "final",
    }
    _, csm, final = payloads["final"]
    assert csm == "csm1"
    assert final["days_since_churn"] == 4
    assert final["snapshot_date"] == "2024-03-06"
    assert final["name"] == "Shop a"
    assert final["gmv"] == 80.0
    assert final["episode_id"] == episode
    assert rows(store, CHURN_LEDGER, "steps_sent") == [('["first", "second", "final"]',)]


def test_a_window_skipped_by_a_gap_is_not_sent_late(store: Store) -> None:
    track_snapshot(store, snap(("a", True)), date=day(1), now=NOW)
    track_snapshot(store, snap(("a", False)), date=day(2), now=NOW)
    # Nothing tracked on days 3 to 6: 'second' (days 2-3) was never due on a tracked day.
    track_snapshot(store, snap(("a", False)), date=day(7), now=NOW)
    episode = "a||2024-03-02|snapshot"
    assert outbox(store) == [f"{episode}|final|file", f"{episode}|first|file"]


def test_re_adoption_moves_the_episode_to_the_wins_and_a_new_churn_moves_it_back(
    store: Store,
) -> None:
    track_snapshot(store, snap(("a", True)), date=day(1), now=NOW)
    track_snapshot(store, snap(("a", False)), date=day(2), now=NOW)
    result = track_snapshot(store, snap(("a", True), gmv=60.0), date=day(5), now=NOW)
    assert result.counts == {"queued": 0, "re_adopted": 1}
    assert rows(store, CHURN_LEDGER, "episode_id") == []
    assert rows(store, WIN_LEDGER, "episode_id", "days_to_recover", "gmv") == [
        ("a||2024-03-02|snapshot", 3.0, 60.0)
    ]
    # The cadence stopped: days 6 and later queue nothing more.
    track_snapshot(store, snap(("a", True)), date=day(8), now=NOW)
    assert outbox(store) == ["a||2024-03-02|snapshot|first|file"]
    track_snapshot(store, snap(("a", False)), date=day(9), now=NOW)
    assert rows(store, WIN_LEDGER, "episode_id") == []
    assert rows(store, CHURN_LEDGER, "episode_id") == [("a||2024-03-09|snapshot",)]
    kinds = rows(store, TRANSITIONS, "snapshot_date", "kind", "episode_id")
    assert kinds == [
        (day(1), "new", None),
        (day(2), "churned", "a||2024-03-02|snapshot"),
        (day(5), "re_adopted", "a||2024-03-02|snapshot"),
        (day(9), "churned", "a||2024-03-09|snapshot"),
    ]


def test_missing_accounts_are_flagged_not_churned(store: Store) -> None:
    track_snapshot(store, snap(("a", True), ("b", True)), date=day(1), now=NOW)
    track_snapshot(store, snap(("b", True)), date=day(2), now=NOW)
    track_snapshot(store, snap(("b", True)), date=day(3), now=NOW)
    columns = ("account_id", "state", "missing_since", "last_seen")
    assert rows(store, TRACKER_ACCOUNTS, *columns) == [
        ("a", "active", day(2), day(1)),
        ("b", "active", None, day(3)),
    ]
    assert rows(store, CHURN_LEDGER, "episode_id") == []
    result = track_snapshot(store, snap(("a", True), ("b", True)), date=day(4), now=NOW)
    assert result.counts == {"queued": 0, "returned": 1}
    assert rows(store, TRACKER_ACCOUNTS, *columns)[0] == ("a", "active", None, day(4))
    assert [k for _, k in rows(store, TRANSITIONS, "snapshot_date", "kind")] == [
        "new",
        "new",
        "missing",
        "returned",
    ]


def test_an_account_never_enabled_is_not_a_churn(store: Store) -> None:
    track_snapshot(store, snap(("a", False)), date=day(1), now=NOW)
    track_snapshot(store, snap(("a", False)), date=day(2), now=NOW)
    assert rows(store, TRACKER_ACCOUNTS, "state") == [("never_enabled",)]
    track_snapshot(store, snap(("a", True)), date=day(3), now=NOW)
    assert rows(store, TRACKER_ACCOUNTS, "state") == [("active",)]
    assert rows(store, CHURN_LEDGER, "episode_id") == []
    track_snapshot(store, snap(("a", False)), date=day(4), now=NOW)
    assert rows(store, CHURN_LEDGER, "episode_id") == [("a||2024-03-04|snapshot",)]


def test_an_answer_from_the_csm_stops_the_cadence(store: Store) -> None:
    track_snapshot(store, snap(("a", True)), date=day(1), now=NOW)
    track_snapshot(store, snap(("a", False)), date=day(2), now=NOW)
    with store.transaction() as connection:
        connection.execute(
            OUTCOMES.insert().values(
                episode_id="a||2024-03-02|snapshot",
                account_id="a",
                product="",
                csm_id="csm1",
                outcome="lost",
                notes="moved to a competitor",
                source="cli",
                recorded_at=NOW,
            )
        )
    result = track_snapshot(store, snap(("a", False)), date=day(4), now=NOW)
    assert result.counts == {"closed_by_outcome": 1, "queued": 0}
    assert rows(store, CHURN_LEDGER, "closed_reason") == [("outcome:lost",)]
    track_snapshot(store, snap(("a", False)), date=day(8), now=NOW)
    assert outbox(store) == ["a||2024-03-02|snapshot|first|file"]
    # Still off: still in the churn ledger; coming back is still a win.
    track_snapshot(store, snap(("a", True)), date=day(9), now=NOW)
    assert rows(store, WIN_LEDGER, "episode_id") == [("a||2024-03-02|snapshot",)]


def test_each_step_is_queued_once_per_channel(store: Store) -> None:
    settings = parse_settings({"tracker": {"channels": ["slack", "email"]}})
    track_snapshot(store, snap(("a", True)), date=day(1), settings=settings, now=NOW)
    track_snapshot(store, snap(("a", False)), date=day(2), settings=settings, now=NOW)
    track_snapshot(store, snap(("a", False)), date=day(2), settings=settings, now=NOW)
    assert outbox(store) == [
        "a||2024-03-02|snapshot|first|email",
        "a||2024-03-02|snapshot|first|slack",
    ]
    assert rows(store, OUTBOX, "status", "attempts") == [("pending", 0), ("pending", 0)]


def test_holdout_episodes_are_never_notified(store: Store) -> None:
    settings = parse_settings({"tracker": {"holdout_share": 0.5, "holdout_seed": "s1"}})
    accounts = [f"a{i:02d}" for i in range(40)]
    track_snapshot(store, snap(*[(a, True) for a in accounts]), date=day(1), settings=settings)
    track_snapshot(store, snap(*[(a, False) for a in accounts]), date=day(2), settings=settings)
    held = {e for e, h in rows(store, CHURN_LEDGER, "episode_id", "holdout") if h}
    assert held == {
        f"{a}||2024-03-02|snapshot"
        for a in accounts
        if in_holdout(f"{a}||2024-03-02|snapshot", 0.5, "s1")
    }
    assert 0 < len(held) < 40
    notified = {e for (e,) in rows(store, OUTBOX, "episode_id")}
    assert notified == {f"{a}||2024-03-02|snapshot" for a in accounts} - held


def test_products_are_tracked_apart(store: Store) -> None:
    two = pa.table(
        {
            "account_id": ["a", "a"],
            "product": ["payments", "capital"],
            "is_enabled": [True, True],
        }
    )
    track_snapshot(store, two, date=day(1), now=NOW)
    off = two.set_column(2, "is_enabled", pa.array([True, False]))
    track_snapshot(store, off, date=day(2), now=NOW)
    assert rows(store, CHURN_LEDGER, "account_id", "product") == [("a", "capital")]
    assert rows(store, TRACKER_ACCOUNTS, "product", "state") == [
        ("capital", "churned"),
        ("payments", "active"),
    ]


def test_a_failing_run_leaves_the_store_as_it_was(store: Store) -> None:
    track_snapshot(store, snap(("a", True), ("b", True)), date=day(1), now=NOW)
    # A notification already queued under the key the run will use makes the
    # run's last writes fail: nothing of the day may remain.
    with store.transaction() as connection:
        connection.execute(
            OUTBOX.insert().values(
                idempotency_key="a||2024-03-02|snapshot|first|file",
                created_at=NOW,
                channel="file",
                kind="churn",
                step="first",
                payload="{}",
                status="sent",
                attempts=1,
                next_attempt_at=NOW,
            )
        )
    tables = (TRACKER_ACCOUNTS, CHURN_LEDGER, TRANSITIONS, TRACKER_RUNS)
    before = {t.name: rows(store, t, *[c.name for c in t.columns]) for t in tables}
    with pytest.raises(sa.exc.IntegrityError):
        track_snapshot(store, snap(("a", False), ("b", True)), date=day(2), now=NOW)
    after = {t.name: rows(store, t, *[c.name for c in t.columns]) for t in tables}
    assert after == before


@pytest.mark.parametrize(
    ("table", "date", "message"),
    [
        (pa.table({"account_id": ["a", "a"], "is_enabled": [True, False]}), D1, "sharing an"),
        (pa.table({"account_id": ["a", None], "is_enabled": [True, False]}), D1, "row 2"),
        (
            pa.table(
                {"account_id": ["a"], "is_enabled": [None]},
                pa.schema([("account_id", pa.string()), ("is_enabled", pa.bool_())]),
            ),
            D1,
            "no is_enabled",
        ),
        (pa.table({"account_id": ["a"]}), D1, "no is_enabled column"),
        (pa.table({"account_id": ["a"], "is_enabled": [True]}), None, "give its date"),
        (
            pa.table(
                {
                    "snapshot_date": [day(1), day(2)],
                    "account_id": ["a", "a"],
                    "is_enabled": [True, True],
                }
            ),
            None,
            "holds 2 dates",
        ),
    ],
)
def test_malformed_snapshots_get_a_clear_error(
    table: pa.Table, date: dt.date | None, message: str
) -> None:
    from churnwatch.store import open_store

    with open_store("sqlite://") as store, pytest.raises(TrackerError, match=message):
        track_snapshot(store, table, date=date, settings=Settings())


def test_a_table_of_several_days_is_tracked_one_date_at_a_time(store: Store) -> None:
    table = pa.table(
        {
            "snapshot_date": [day(1), day(2), day(1)],
            "account_id": ["a", "a", "b"],
            "is_enabled": [True, False, True],
        }
    )
    assert track_snapshot(store, table, date=day(1), now=NOW).counts == {"new": 2, "queued": 0}
    second = track_snapshot(store, table, date=day(2), now=NOW)
    assert second.counts == {"churned": 1, "missing": 1, "queued": 1}
