"""Golden label tests: tiny hand-computed cases for every label kind, on every engine.

Each test appends a few rows to the canonical tables and checks every label
(and every count) against values worked out by hand in the comments. The
``warehouse`` fixture runs each test on DuckDB, Postgres and MariaDB: the same
expected values on all three prove the engines agree.

Day ``d`` below is ``2024-01-01 + d days``, midnight UTC; the cutoff is
``2024-03-01`` (day 60) unless said otherwise.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from churnwatch.errors import ConfigError
from churnwatch.labels import CutoffSchedule, LabelSpec, LabelTable, make_labels
from churnwatch.warehouse import Warehouse, arrow_schema, connect

UTC = dt.UTC
CUTOFF = dt.datetime(2024, 3, 1, tzinfo=UTC)
FAR_END = "2024-12-31"


def day(month: int, day_of_month: int, hour: int = 0) -> dt.datetime:
    return dt.datetime(2024, month, day_of_month, hour, tzinfo=UTC)


def load(wh: Warehouse, table: str, rows: list[dict[str, Any]]) -> None:
    """Append rows to a canonical table (columns as in the first row)."""
    full = arrow_schema(table)
    schema = pa.schema([full.field(name) for name in rows[0]])
    wh.append(table, pa.Table.from_pylist(rows, schema=schema))


def accounts(wh: Warehouse, created: dict[str, dt.datetime | None]) -> None:
    load(wh, "accounts", [{"account_id": a, "created_at": t} for a, t in created.items()])


def labels(table: LabelTable) -> dict[str, tuple[Any, ...]]:
    """Account -> its labels, for a table with one cutoff."""
    rows = table.frame.to_pylist()
    assert len({r["cutoff"] for r in rows}) <= 1
    return {r["account_id"]: tuple(r[c] for c in table.spec.columns) for r in rows}


@pytest.fixture
def wh(warehouse: Warehouse) -> Warehouse:
    warehouse.ensure_schema()
    return warehouse


# -- subscription churn ----------------------------------------------------------------


def subscriptions(wh: Warehouse) -> None:
    """Accounts created 2024-01-01 (``late``: 03-05), each with its subscriptions."""
    names = [
        "grace_in",
        "grace_edge",
        "grace_out",
        "ends_day20",
        "open",
        "gone",
        "at_cutoff",
        "in_lead",
        "late",
    ]
    accounts(wh, {a: day(3, 5) if a == "late" else day(1, 1) for a in names})
    rows = [
        # renewed 5 days after the end: one period, running to 05-15
        ("grace_in", day(1, 1), day(3, 10)),
        ("grace_in", day(3, 15), day(5, 15)),
        # renewed exactly 7 days after: still one period
        ("grace_edge", day(1, 1), day(3, 10)),
        ("grace_edge", day(3, 17), day(5, 17)),
        # renewed 8 days after: the period ended 03-10, churn
        ("grace_out", day(1, 1), day(3, 10)),
        ("grace_out", day(3, 18), day(5, 18)),
        ("ends_day20", day(1, 1), day(3, 21)),
        ("open", day(1, 1), None),
        ("gone", day(1, 1), day(2, 15)),  # churned before the cutoff
        ("at_cutoff", day(1, 1), day(3, 1)),  # ends at the cutoff: churned already
        ("in_lead", day(1, 1), day(3, 5)),
        ("late", day(3, 5), day(3, 20)),  # created after the cutoff
    ]
    load(
        wh,
        "subscriptions",
        [
            {"account_id": a, "started_at": s, "ended_at": e, "mrr": 10.0, "plan": "basic"}
            for a, s, e in rows
        ],
    )


def test_subscription_churn_grace_gap_and_horizons(wh: Warehouse) -> None:
    subscriptions(wh)
    spec = LabelSpec("subscription", horizon_days=(14, 30), grace_days=7)
    table = make_labels(wh, spec, CutoffSchedule.explicit([CUTOFF]), observation_end=FAR_END)
    assert table.frame.column_names == ["account_id", "cutoff", "churn_14d", "churn_30d"]
    assert table.frame.schema.field("cutoff").type == pa.timestamp("us", tz="UTC")
    assert table.frame.schema.field("churn_14d").type == pa.int64()
    # window 14d: [03-01, 03-15); 30d: [03-01, 03-31)
    assert labels(table) == {
        "grace_in": (0, 0),
        "grace_edge": (0, 0),
        "grace_out": (1, 1),
        "ends_day20": (0, 1),
        "open": (0, 0),
        "in_lead": (1, 1),
    }
    c = table.counts
    assert (c.candidates, c.not_yet_existing, c.already_churned, c.censored) == (9, 1, 2, 0)
    assert (c.churned_in_lead, c.examples) == (0, 6)
    assert c.positives == {"churn_14d": 2, "churn_30d": 3}
    assert c.labelled == {"churn_14d": 6, "churn_30d": 6}
    assert table.observation_end.source == "given"
    assert "9 account-cutoff pairs" in table.describe()


def test_subscription_lead_time(wh: Warehouse) -> None:
    subscriptions(wh)
    spec = LabelSpec("subscription", horizon_days=(14,), lead_days=7, grace_days=7)
    table = make_labels(wh, spec, CutoffSchedule.explicit([CUTOFF]), observation_end=FAR_END)
    # window [03-08, 03-22): in_lead ended 03-05, inside the lead time: left out
    assert labels(table) == {
        "grace_in": (0,),
        "grace_edge": (0,),
        "grace_out": (1,),
        "ends_day20": (1,),
        "open": (0,),
    }
    assert table.counts.churned_in_lead == 1


def test_subscription_censoring_at_the_observation_end(wh: Warehouse) -> None:
    subscriptions(wh)
    spec = LabelSpec("subscription", horizon_days=(14, 30), grace_days=7)
    schedule = CutoffSchedule.explicit([CUTOFF, day(3, 20)])
    # 03-01: 14d needs data to 03-15 + 7 days grace = 03-22 <= 04-01, known;
    #        30d needs 03-31 + 7 = 04-07 > 04-01: censored (null, never 0).
    # 03-20: even 14d needs 04-03 + 7 > 04-01: the example is left out.
    table = make_labels(wh, spec, schedule, observation_end=dt.date(2024, 4, 1))
    rows = table.frame.to_pylist()
    assert {r["cutoff"] for r in rows} == {CUTOFF}
    assert {r["account_id"]: (r["churn_14d"], r["churn_30d"]) for r in rows} == {
        "grace_in": (0, None),
        "grace_edge": (0, None),
        "grace_out": (1, None),
        "ends_day20": (0, None),
        "open": (0, None),
        "in_lead": (1, None),
    }
    c = table.counts
    # at 03-20 active: grace_in, grace_edge, grace_out (since 03-18), ends_day20, open
    assert (c.candidates, c.examples, c.censored) == (18, 6, 5)
    assert c.censored_by_horizon == {"churn_14d": 0, "churn_30d": 6}
    assert c.labelled == {"churn_14d": 6, "churn_30d": 0}
    assert c.positives == {"churn_14d": 2, "churn_30d": 0}
    assert "5 were censored" in table.describe()


def test_subscription_cutoffs_after_signup(wh: Warehouse) -> None:
    subscriptions(wh)
    spec = LabelSpec("subscription", horizon_days=(60,), grace_days=7)
    table = make_labels(wh, spec, CutoffSchedule.after_signup(days=7), observation_end=FAR_END)
    rows = {r["account_id"]: (r["cutoff"], r["churn_60d"]) for r in table.frame.to_pylist()}
    # day 7 after 01-01 is 01-08; window [01-08, 03-08): gone (02-15), at_cutoff (03-01)
    # and in_lead (03-05) churn. late: cutoff 03-12, window [03-12, 05-11): ends 03-20.
    assert rows == {
        "grace_in": (day(1, 8), 0),
        "grace_edge": (day(1, 8), 0),
        "grace_out": (day(1, 8), 0),
        "ends_day20": (day(1, 8), 0),
        "open": (day(1, 8), 0),
        "gone": (day(1, 8), 1),
        "at_cutoff": (day(1, 8), 1),
        "in_lead": (day(1, 8), 1),
        "late": (day(3, 12), 1),
    }


def test_observation_end_inferred_from_the_latest_start(wh: Warehouse) -> None:
    subscriptions(wh)
    table = make_labels(
        wh, LabelSpec("subscription"), CutoffSchedule.explicit([day(2, 1)]), observation_end=None
    )
    # latest start 03-18, though ends run to 05-18
    assert table.observation_end.at == day(3, 18)
    assert table.observation_end.source == "inferred"
    assert "latest subscription start" in table.observation_end.reason
    assert (table.data_start, table.data_end) == (day(1, 1), day(3, 18))


def test_observation_end_cannot_be_inferred_from_nothing(wh: Warehouse) -> None:
    with pytest.raises(ConfigError, match="observation_end"):
        make_labels(wh, LabelSpec("subscription"), CutoffSchedule.explicit([CUTOFF]))


# -- inactivity churn and activity -------------------------------------------------------


def events(wh: Warehouse) -> None:
    accounts(
        wh,
        {
            "quiet": day(1, 1),
            "busy": day(1, 1),
            "returns": day(1, 1),
            "dormant": day(1, 1),
            "edge": day(1, 1),
            "viewer": day(1, 1),
            "new": day(3, 2),
            "undated": None,
        },
    )
    rows = [
        ("quiet", day(2, 20), "login"),
        ("busy", day(2, 20), "login"),
        ("busy", day(3, 3), "login"),
        ("busy", day(3, 5), "view"),
        ("returns", day(2, 20), "login"),
        ("returns", day(3, 10), "login"),  # after the 7-day window, inside the 14-day one
        ("dormant", day(2, 1), "login"),  # before the 14-day lookback: already churned
        ("dormant", day(3, 2), "login"),
        ("edge", day(2, 16), "login"),  # exactly 14 days before: inside the lookback
        ("edge", day(3, 8), "login"),  # exactly 7 days after: outside the 7-day window
        ("viewer", day(2, 20), "login"),
        ("viewer", day(3, 2), "view"),
        ("new", day(3, 3), "login"),
        ("undated", day(2, 20), "login"),
    ]
    load(
        wh,
        "events",
        [{"account_id": a, "event_time": t, "event_type": k} for a, t, k in rows],
    )


def test_inactivity_churn(wh: Warehouse) -> None:
    events(wh)
    spec = LabelSpec("inactivity", horizon_days=(7, 14), inactivity_days=14)
    table = make_labels(wh, spec, CutoffSchedule.explicit([CUTOFF]), observation_end=FAR_END)
    assert labels(table) == {
        "quiet": (1, 1),
        "busy": (0, 0),
        "returns": (1, 0),
        "edge": (1, 0),
        "viewer": (0, 0),
    }
    c = table.counts
    assert (c.candidates, c.not_yet_existing, c.already_churned, c.examples) == (8, 2, 1, 5)
    # only logins qualify: viewer's view does not count
    login = LabelSpec("inactivity", horizon_days=(7,), inactivity_days=14, event_types=("login",))
    table = make_labels(wh, login, CutoffSchedule.explicit([CUTOFF]), observation_end=FAR_END)
    assert labels(table)["viewer"] == (1,)
    assert labels(table)["busy"] == (0,)


def test_inactivity_lead_and_censoring(wh: Warehouse) -> None:
    events(wh)
    spec = LabelSpec("inactivity", horizon_days=(7,), lead_days=7, inactivity_days=14)
    # window [03-08, 03-15); data to 03-15 is just enough
    table = make_labels(wh, spec, CutoffSchedule.explicit([CUTOFF]), observation_end=day(3, 15))
    assert labels(table) == {
        "quiet": (1,),
        "busy": (1,),
        "returns": (0,),
        "edge": (0,),
        "viewer": (1,),
    }
    censored = make_labels(
        wh, spec, CutoffSchedule.explicit([CUTOFF]), observation_end=day(3, 14, hour=23)
    )
    assert censored.frame.num_rows == 0
    assert censored.counts.censored == 5


def test_activity_counts(wh: Warehouse) -> None:
    events(wh)
    spec = LabelSpec("activity", horizon_days=(7, 14))
    table = make_labels(wh, spec, CutoffSchedule.explicit([CUTOFF]), observation_end=FAR_END)
    assert table.frame.schema.field("activity_7d").type == pa.int64()
    # every account created before the cutoff is an example, active or not
    assert labels(table) == {
        "quiet": (0, 0),
        "busy": (2, 2),
        "returns": (0, 1),
        "dormant": (1, 1),
        "edge": (0, 1),
        "viewer": (1, 1),
    }
    views = LabelSpec("activity", horizon_days=(14,), event_types=("view",), name="views")
    table = make_labels(wh, views, CutoffSchedule.explicit([CUTOFF]), observation_end=FAR_END)
    assert {a: v for a, v in labels(table).items() if v != (0,)} == {"busy": (1,), "viewer": (1,)}
    assert table.counts.positives == {"views_14d": 2}


# -- revenue ------------------------------------------------------------------------------


def test_revenue(wh: Warehouse) -> None:
    accounts(wh, {"payer": day(1, 1), "nothing": day(1, 1)})
    rows = [
        (day(2, 27), 100.0, "succeeded"),  # before the cutoff
        (day(3, 1), 10.5, "succeeded"),  # at the cutoff: inside
        (day(3, 3), 99.0, "failed"),
        (day(3, 4), 7.0, "refunded"),
        (day(3, 12), 4.5, "succeeded"),
        (day(3, 15), 1.0, "succeeded"),  # at the 14-day end: outside
    ]
    load(
        wh,
        "payments",
        [{"account_id": "payer", "paid_at": t, "amount": a, "status": s} for t, a, s in rows],
    )
    spec = LabelSpec("revenue", horizon_days=(7, 14))
    table = make_labels(wh, spec, CutoffSchedule.explicit([CUTOFF]), observation_end=FAR_END)
    assert table.frame.schema.field("revenue_7d").type == pa.float64()
    assert labels(table) == {"payer": (10.5, 15.0), "nothing": (0.0, 0.0)}


# -- adoption ------------------------------------------------------------------------------


def test_adoption_flag_turned_off(wh: Warehouse) -> None:
    accounts(wh, {a: day(1, 1) for a in ("off", "off_late", "on", "was_off", "at_cutoff")})
    snaps = [
        ("off", day(2, 28), True),
        ("off", day(3, 5), True),
        ("off", day(3, 10), False),
        ("off_late", day(2, 28), True),
        ("off_late", day(3, 20), False),
        ("on", day(2, 28), True),
        ("on", day(3, 10), True),
        ("was_off", day(2, 20), True),
        ("was_off", day(2, 28), False),
        ("was_off", day(3, 10), False),
        ("at_cutoff", day(2, 28), True),
        ("at_cutoff", day(3, 1), False),  # the snapshot of the cutoff's day: in the window
    ]
    load(
        wh,
        "adoption_snapshots",
        [
            {"snapshot_date": t.date(), "account_id": a, "product": "pay", "is_enabled": on}
            for a, t, on in snaps
        ],
    )
    spec = LabelSpec("adoption", horizon_days=(14, 30))
    table = make_labels(wh, spec, CutoffSchedule.explicit([CUTOFF]), observation_end=FAR_END)
    assert labels(table) == {
        "off": (1, 1),
        "off_late": (0, 1),
        "on": (0, 0),
        "at_cutoff": (1, 1),
    }
    assert table.counts.already_churned == 1
    # lead 7: at_cutoff turned off during the lead time; window [03-08, 03-21)
    lead = LabelSpec("adoption", horizon_days=(13,), lead_days=7, product="pay")
    table = make_labels(wh, lead, CutoffSchedule.explicit([CUTOFF]), observation_end=None)
    assert labels(table) == {"off": (1,), "off_late": (1,), "on": (0,)}
    assert table.counts.churned_in_lead == 1
    # inferred: the day after the latest snapshot (03-20)
    assert table.observation_end.at == day(3, 21)


# -- conversion ------------------------------------------------------------------------------


def test_conversion(wh: Warehouse) -> None:
    accounts(wh, {a: day(1, 1) for a in ("trial", "never", "paying", "later", "at_cutoff")})
    rows = [
        ("trial", day(1, 1), day(2, 15), 0.0),
        ("trial", day(3, 10), None, 10.0),
        ("never", day(1, 1), None, 0.0),
        ("paying", day(2, 1), None, 10.0),  # already paying: not an example
        ("later", day(1, 1), day(4, 15), 0.0),
        ("later", day(4, 15), None, 10.0),
        ("at_cutoff", day(3, 1), None, 10.0),
    ]
    load(
        wh,
        "subscriptions",
        [{"account_id": a, "started_at": s, "ended_at": e, "mrr": m} for a, s, e, m in rows],
    )
    spec = LabelSpec("conversion", horizon_days=(30,))
    table = make_labels(wh, spec, CutoffSchedule.explicit([CUTOFF]), observation_end=FAR_END)
    assert labels(table) == {"trial": (1,), "never": (0,), "later": (0,), "at_cutoff": (1,)}
    assert table.counts.already_churned == 1
    assert "already paying" in table.describe()
    lead = LabelSpec("conversion", horizon_days=(30,), lead_days=7)
    table = make_labels(wh, lead, CutoffSchedule.explicit([CUTOFF]), observation_end=FAR_END)
    assert labels(table) == {"trial": (1,), "never": (0,), "later": (0,)}
    assert table.counts.churned_in_lead == 1


def test_labels_inside_a_transaction(wh: Warehouse) -> None:
    """The cutoffs table is temporary and dropped as such: no engine commits halfway."""
    subscriptions(wh)
    spec = LabelSpec("subscription", horizon_days=(14,))
    with wh.transaction():
        table = make_labels(wh, spec, CutoffSchedule.explicit([CUTOFF]), observation_end=FAR_END)
    assert table.counts.examples == 6


def test_every_kind_answers_exactly_as_on_duckdb(wh: Warehouse, tmp_path: Path) -> None:
    """Differential: the whole label table (values, types, order, counts) per engine."""
    specs = [
        LabelSpec("subscription", horizon_days=(14, 30), lead_days=3),
        LabelSpec("conversion", horizon_days=(30,)),
        LabelSpec("inactivity", horizon_days=(7, 14), inactivity_days=14),
        LabelSpec("activity", horizon_days=(7,), event_types=("login",)),
    ]
    schedule = CutoffSchedule.every("2024-02-01", "2024-04-01", weeks=2)
    with connect(f"duckdb:///{tmp_path / 'reference.duckdb'}") as reference:
        reference.ensure_schema()
        for target in (wh, reference):
            subscriptions(target)
            events(target)
        for spec in specs:
            ours = make_labels(wh, spec, schedule, observation_end=dt.date(2024, 4, 20))
            expected = make_labels(reference, spec, schedule, observation_end="2024-04-20")
            assert ours.frame.equals(expected.frame), spec.kind
            assert ours.counts == expected.counts, spec.kind
            assert ours.frame.num_rows > 0
