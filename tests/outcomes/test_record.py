"""CSM answers and CRM activity, on every store engine."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pytest
import sqlalchemy as sa

from churnwatch.errors import OutcomeError
from churnwatch.outcomes import (
    episode_frame,
    import_crm_activity,
    list_outcomes,
    read_crm_csv,
    record_outcome,
)
from churnwatch.store import CHURN_LEDGER, OUTBOX, OUTCOMES, Store
from churnwatch.tracker import track_snapshot

NOW = dt.datetime(2024, 3, 10, 12, tzinfo=dt.UTC)


def _day(store: Store, day: int, enabled: dict[str, bool]) -> None:
    snapshot = pa.table(
        {
            "account_id": list(enabled),
            "is_enabled": list(enabled.values()),
            "csm_id": ["c1"] * len(enabled),
            "revenue": [100.0] * len(enabled),
        }
    )
    track_snapshot(store, snapshot, date=dt.date(2024, 3, day), now=NOW)


def _steps(store: Store) -> list[str]:
    with store.engine.connect() as connection:
        return sorted(connection.execute(sa.select(OUTBOX.c.step)).scalars())


def test_an_answer_is_stored_and_stops_the_cadence(store: Store) -> None:
    _day(store, 1, {"a": True, "b": True})
    _day(store, 2, {"a": False, "b": False})
    answer = record_outcome(store, "lost", account_id="a", notes="moved to a rival", now=NOW)
    assert answer.episode_id == "a||2024-03-02|snapshot"
    assert answer.csm_id == "c1"
    assert answer.notes == "moved to a rival"
    assert answer.recorded_at == NOW
    # Day 4: 'second' is due for both, but only the unanswered episode gets it.
    _day(store, 4, {"a": False, "b": False})
    with store.engine.connect() as connection:
        keys = sorted(connection.execute(sa.select(OUTBOX.c.idempotency_key)).scalars())
        found = connection.execute(
            sa.select(CHURN_LEDGER.c.account_id, CHURN_LEDGER.c.closed_reason)
        )
        closed = {row.account_id: row.closed_reason for row in found}
    assert keys == [
        "a||2024-03-02|snapshot|first|file",
        "b||2024-03-02|snapshot|first|file",
        "b||2024-03-02|snapshot|second|file",
    ]
    assert closed == {"a": "outcome:lost", "b": None}


def test_not_useful_implies_useful_false_and_answers_list_newest_first(store: Store) -> None:
    _day(store, 1, {"a": True})
    _day(store, 2, {"a": False})
    episode = "a||2024-03-02|snapshot"
    record_outcome(store, "not_useful", episode_id=episode, source="slack", now=NOW)
    later = NOW + dt.timedelta(minutes=5)
    record_outcome(store, "won", episode_id=episode, useful=True, source="api", now=later)
    answers = list_outcomes(store, episode_id=episode)
    assert [(a.outcome, a.useful, a.source) for a in answers] == [
        ("won", True, "api"),
        ("not_useful", False, "slack"),
    ]
    assert episode_frame(store)["outcome"].tolist() == ["won"]


def test_the_same_answer_twice_at_the_same_instant_is_stored_once(store: Store) -> None:
    _day(store, 1, {"a": True})
    _day(store, 2, {"a": False})
    first = record_outcome(store, "won", account_id="a", source="slack", now=NOW)
    second = record_outcome(store, "won", account_id="a", source="slack", now=NOW)
    assert first == second
    with store.engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(OUTCOMES)).scalar() == 1


def test_an_episode_gone_to_history_can_still_be_answered(store: Store) -> None:
    _day(store, 1, {"a": True})
    _day(store, 2, {"a": False})
    _day(store, 3, {"a": True})  # a win row
    _day(store, 4, {"a": False})  # churns again: the win row goes to history
    answer = record_outcome(store, "won", episode_id="a||2024-03-02|snapshot", now=NOW)
    assert answer.account_id == "a"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"outcome": "maybe", "account_id": "a"}, "unknown outcome 'maybe'"),
        ({"outcome": "won", "account_id": "a", "source": "fax"}, "unknown answer source"),
        ({"outcome": "won", "account_id": "zz"}, "account 'zz' has no open at-risk episode"),
        ({"outcome": "won", "episode_id": "nope"}, "no episode 'nope'"),
        ({"outcome": "won"}, "say which episode"),
        ({"outcome": "won", "account_id": "a", "notes": "x" * 10_001}, "keep them under"),
    ],
)
def test_bad_answers_get_clear_errors(
    store: Store, arguments: dict[str, str], message: str
) -> None:
    _day(store, 1, {"a": True})
    _day(store, 2, {"a": False})
    with pytest.raises(OutcomeError, match=message):
        record_outcome(store, **arguments)  # type: ignore[arg-type]


def test_an_account_with_two_open_products_needs_the_product(store: Store) -> None:
    def day(n: int, on: bool) -> None:
        snapshot = pa.table(
            {"account_id": ["a", "a"], "product": ["x", "y"], "is_enabled": [on, on]}
        )
        track_snapshot(store, snapshot, date=dt.date(2024, 3, n), now=NOW)

    day(1, True)
    day(2, False)
    with pytest.raises(OutcomeError, match="say which product"):
        record_outcome(store, "won", account_id="a")
    assert record_outcome(store, "won", account_id="a", product="y").product == "y"


def test_crm_import_skips_rows_already_stored_and_times_first_contact(
    store: Store, tmp_path: Path
) -> None:
    _day(store, 1, {"a": True, "b": True})
    _day(store, 2, {"a": False, "b": False})
    _day(store, 5, {"a": True, "b": False})
    crm = tmp_path / "crm.csv"
    crm.write_text(
        "Account,CSM,Time,Kind,Notes\n"
        "a,c1,2024-03-01 10:00,call,before the churn\n"
        "a,c1,2024-03-03 06:00,call,after\n"
        "a,c1,2024-03-09 06:00,email,after re-adoption\n"
        "b,c1,2024-03-04T12:00:00+02:00,meeting,\n"
    )
    assert import_crm_activity(store, crm) == 4
    assert import_crm_activity(store, crm) == 0
    frame = episode_frame(store).set_index("account_id")
    # a: first contact after its churn (2024-03-02 00:00) and before its re-adoption.
    assert frame.loc["a", "first_contact_at"] == pd_ts("2024-03-03 06:00")
    assert frame.loc["b", "first_contact_at"] == pd_ts("2024-03-04 10:00")
    assert frame.loc["a", "klass"] == "engaged_win"
    assert frame.loc["b", "klass"] == "engaged_open"


def pd_ts(text: str) -> object:
    import pandas as pd

    return pd.Timestamp(text, tz="UTC")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("csm,time\nc1,2024-03-01\n", "has no 'account' column"),
        ("account,time\n,2024-03-01\n", "line 2 of the CRM file .* has no account"),
        ("account,time\na,yesterday\n", "line 2 .* has time 'yesterday'"),
        ("", "is empty"),
    ],
)
def test_bad_crm_files_get_clear_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "crm.csv"
    path.write_text(content)
    with pytest.raises(OutcomeError, match=message):
        read_crm_csv(path)


def test_outcome_json_is_plain(store: Store) -> None:
    _day(store, 1, {"a": True})
    _day(store, 2, {"a": False})
    answer = record_outcome(store, "won", account_id="a", now=NOW)
    assert json.loads(json.dumps(answer.as_json()))["recorded_at"] == NOW.isoformat()


def test_kpis_read_the_same_on_every_engine(store: Store, tmp_path: Path) -> None:
    from churnwatch.outcomes import compute_kpis

    _day(store, 1, {"a": True, "b": True, "c": True})
    _day(store, 2, {"a": False, "b": False, "c": True})
    record_outcome(store, "won", account_id="a", now=NOW)
    record_outcome(store, "lost", account_id="b", now=NOW)
    crm = tmp_path / "crm.csv"
    crm.write_text("account,csm,time,kind,notes\nb,c1,2024-03-02 12:00,call,\n")
    import_crm_activity(store, crm)
    _day(store, 5, {"a": True, "b": False, "c": False})
    kpis = compute_kpis(store)
    assert kpis.as_of == dt.date(2024, 3, 5)
    assert (kpis.csm_true_wins, kpis.csm_revenue_recovered) == (1, 100.0)
    assert (kpis.csm_losses, kpis.self_service_losses) == (1, 1)
    assert (kpis.accounts_at_risk, kpis.revenue_at_risk) == (2, 200.0)
    assert kpis.median_hours_to_first_contact == 12.0
    cells = {row.bucket: row for row in kpis.buckets}
    assert cells["L24H"].at_risk_accounts == 1  # c, churned on the 5th
    assert cells["L30"].at_risk_accounts == 1  # b, churned 3 days before
    assert cells["L30"].churned_accounts == 2  # a and b
    assert cells["L24H"].won_accounts == 1  # a, back on the 5th


def test_an_answer_cancels_the_messages_still_waiting(store: Store) -> None:
    import io

    from churnwatch.notify import ConsoleChannel, dispatch

    _day(store, 1, {"a": True, "b": True})
    _day(store, 2, {"a": False, "b": False})
    # Both first messages are queued; the CSM answers for 'a' before the dispatcher runs.
    record_outcome(store, "won", account_id="a", now=NOW)
    out = io.StringIO()
    report = dispatch(store, {"file": ConsoleChannel(out)}, now=NOW)
    assert (report.sent, report.cancelled) == (1, 1)
    with store.engine.connect() as connection:
        status = dict(connection.execute(sa.select(OUTBOX.c.account_id, OUTBOX.c.status)).all())
    assert status == {"a": "cancelled", "b": "sent"}
    again = dispatch(store, {"file": ConsoleChannel(io.StringIO())}, now=NOW)
    assert (again.sent, again.cancelled) == (0, 0)
