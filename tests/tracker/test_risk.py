"""Risk alerts: crossings and jumps open episodes that follow the cadence, once."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa

from churnwatch.config import parse_settings
from churnwatch.errors import TrackerError
from churnwatch.store import CHURN_LEDGER, OUTBOX, TRANSITIONS, Store
from churnwatch.tracker import track_risk, track_snapshot

D1 = dt.date(2024, 3, 1)
NOW = dt.datetime(2024, 3, 20, 9, tzinfo=dt.UTC)
SCORED = dt.datetime(2024, 3, 1, 6, tzinfo=dt.UTC)


def scores(**by_account: float) -> pa.Table:
    accounts = sorted(by_account)
    return pa.table(
        {
            "account_id": accounts,
            "score": [by_account[a] for a in accounts],
            "scored_at": [SCORED for _ in accounts],
            "mrr": [200.0 for _ in accounts],
            "reason_1": ["fewer logins" for _ in accounts],
            "reason_2": [None for _ in accounts],
        }
    )


def ledger(store: Store) -> list[tuple[Any, ...]]:
    with store.engine.connect() as connection:
        chosen = sa.select(
            CHURN_LEDGER.c.episode_id, CHURN_LEDGER.c.source, CHURN_LEDGER.c.revenue_at_risk
        )
        return sorted(tuple(r) for r in connection.execute(chosen))


def outbox(store: Store) -> list[tuple[str, str]]:
    with store.engine.connect() as connection:
        rows = connection.execute(sa.select(OUTBOX.c.idempotency_key, OUTBOX.c.kind))
        return sorted((r.idempotency_key, r.kind) for r in rows)


def test_crossings_and_jumps_open_episodes_once(store: Store) -> None:
    before = scores(up=0.3, high=0.8, small=0.1, jump=0.1)
    today = scores(up=0.55, high=0.9, small=0.2, jump=0.35, first=0.6, new=0.3)
    result = track_risk(store, today, previous=before, date=D1, now=NOW)
    # up: crossed 0.5; jump: +0.25 >= 0.2; first: no previous score, above;
    # high: was already above; small: +0.1; new: no previous score, below.
    assert result.counts == {"queued": 3, "risk_alert": 3}
    assert ledger(store) == [
        ("first||2024-03-01|risk", "risk", pytest.approx(120.0)),
        ("jump||2024-03-01|risk", "risk", pytest.approx(70.0)),
        ("up||2024-03-01|risk", "risk", pytest.approx(110.0)),
    ]
    assert outbox(store)[0] == ("first||2024-03-01|risk|first|file", "risk_alert")
    with store.engine.connect() as connection:
        payload = json.loads(
            connection.execute(
                sa.select(OUTBOX.c.payload).where(OUTBOX.c.account_id == "up")
            ).scalar_one()
        )
    assert payload["reasons"] == ["fewer logins"]
    assert payload["risk_score"] == pytest.approx(0.55)
    assert payload["churned_at"] == SCORED.isoformat()
    # The same scores again: every account already has its episode.
    again = track_risk(store, today, previous=before, date=D1, now=NOW)
    assert again.counts == {"queued": 0, "risk_alert": 0}
    assert len(outbox(store)) == 3


def test_a_risk_episode_follows_the_cadence_and_a_real_churn_supersedes_it(store: Store) -> None:
    day1 = pa.table({"account_id": ["a", "b"], "is_enabled": [True, True]})
    track_snapshot(store, day1, date=D1, now=NOW)
    track_risk(store, scores(a=0.8, b=0.9), date=D1, now=NOW)
    # Three days after the scoring, the daily run queues the risk episodes' 'second'.
    track_snapshot(store, day1, date=D1 + dt.timedelta(days=3), now=NOW)
    keys = [k for k, _ in outbox(store)]
    assert "a||2024-03-01|risk|second|file" in keys
    off = pa.table({"account_id": ["a", "b"], "is_enabled": [False, True]})
    track_snapshot(store, off, date=D1 + dt.timedelta(days=4), now=NOW)
    assert [e for e, _, _ in ledger(store)] == ["a||2024-03-05|snapshot", "b||2024-03-01|risk"]
    with store.engine.connect() as connection:
        kinds = connection.execute(
            sa.select(TRANSITIONS.c.kind).where(TRANSITIONS.c.account_id == "a")
        ).scalars()
        assert sorted(kinds) == ["churned", "new", "risk_alert"]


def test_thresholds_come_from_the_settings(store: Store) -> None:
    settings = parse_settings(
        {"tracker": {"risk_threshold_probability": 0.9, "risk_jump_probability": 0.0}}
    )
    result = track_risk(
        store,
        scores(a=0.85, b=0.95),
        previous=scores(a=0.1, b=0.5),
        date=D1,
        settings=settings,
        now=NOW,
    )
    assert result.counts == {"queued": 1, "risk_alert": 1}


def test_malformed_scores_get_a_clear_error(store: Store) -> None:
    with pytest.raises(TrackerError, match="no score column"):
        track_risk(store, pa.table({"account_id": ["a"]}), date=D1)
    twice = pa.table({"account_id": ["a", "a"], "score": [0.1, 0.9]})
    with pytest.raises(TrackerError, match="account twice"):
        track_risk(store, twice, date=D1)
