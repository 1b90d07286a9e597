"""Business KPIs: hand-computed on a tiny business, on every engine; the spike rule.

Four accounts exist before the report's instant (2024-06-01), a fifth after:

=====  ==========================  ======================================
a1     2024-01-01 → open, MRR 100  a subscriber, never churns
a2     2024-01-01 → 03-10, MRR 50  churns on 03-10 (no renewal)
a3     2024-01-01 → 06-15, MRR 30  still running on 06-01
a4     02-01 → 05-01, 05-03 → open  renewed within the 7-day grace: one
       MRR 20                      period, a subscriber on 06-01
a5     created 2024-07-01          does not exist yet
=====  ==========================  ======================================

So on 06-01: 4 accounts, 3 subscribers, MRR 100 + 30 + 20 = 150. A 30-day
churn window needs 30 + 7 days to settle, so the last cutoff is 04-25 and
the monthly cutoffs after the data's start are 01-25, 02-25, 03-25, 04-25:

- 01-25: a1, a2, a3 at risk; nobody ends before 02-24 → 0 of 3;
- 02-25: a1–a4 at risk; a2 ends on 03-10, inside [02-25, 03-26) → 1 of 4;
- 03-25 and 04-25: a1, a3, a4 (a2 is gone) → 0 of 3.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from churnwatch.config import Settings
from churnwatch.report import business_kpis, churn_spike
from churnwatch.scoring import RISK_SCORES_TABLE
from churnwatch.warehouse import Warehouse, arrow_schema

UTC = dt.UTC
AS_OF = "2024-06-01"


def day(month: int, day_of_month: int) -> dt.datetime:
    return dt.datetime(2024, month, day_of_month, tzinfo=UTC)


def load(wh: Warehouse, table: str, rows: list[dict[str, Any]]) -> None:
    full = arrow_schema(table)
    schema = pa.schema([full.field(name) for name in rows[0]])
    wh.append(table, pa.Table.from_pylist(rows, schema=schema))


@pytest.fixture
def business(warehouse: Warehouse) -> Warehouse:
    warehouse.ensure_schema()
    created = {"a1": day(1, 1), "a2": day(1, 1), "a3": day(1, 1), "a4": day(2, 1), "a5": day(7, 1)}
    load(warehouse, "accounts", [{"account_id": a, "created_at": t} for a, t in created.items()])
    periods = [
        ("a1", "s1", day(1, 1), None, 100.0),
        ("a2", "s2", day(1, 1), day(3, 10), 50.0),
        ("a3", "s3", day(1, 1), day(6, 15), 30.0),
        ("a4", "s4", day(2, 1), day(5, 1), 20.0),
        ("a4", "s5", day(5, 3), None, 20.0),
    ]
    load(
        warehouse,
        "subscriptions",
        [
            {
                "account_id": a,
                "subscription_id": s,
                "started_at": start,
                "ended_at": end,
                "mrr": mrr,
                "status": "active" if end is None else "canceled",
            }
            for a, s, start, end, mrr in periods
        ],
    )
    return warehouse


def test_headline_figures_by_hand(business: Warehouse) -> None:
    kpis = business_kpis(business, Settings(), as_of=AS_OF)
    assert kpis.as_of == day(6, 1)
    assert (kpis.accounts, kpis.subscribers) == (4, 3)
    assert kpis.mrr == pytest.approx(150.0)
    trend = kpis.churn_trend
    assert [c.date() for c in trend["cutoff"]] == [
        dt.date(2024, 1, 25),
        dt.date(2024, 2, 25),
        dt.date(2024, 3, 25),
        dt.date(2024, 4, 25),
    ]
    assert trend["at_risk"].tolist() == [3, 4, 3, 3]
    assert trend["churned"].tolist() == [0, 1, 0, 0]
    assert kpis.churn_rate == 0.0
    assert not kpis.churn_spike
    assert kpis.revenue_at_risk is None  # never scored


def test_revenue_at_risk_reads_the_latest_run_of_the_horizon(business: Warehouse) -> None:
    from churnwatch.scoring import _COLUMNS
    from churnwatch.warehouse._base import _arrow_for

    business.create_table(RISK_SCORES_TABLE, list(_COLUMNS))
    rows = [
        # an older run of the same target: ignored
        ("a1", day(5, 1), "churn_30d", 0.9, "high", 100.0),
        ("a1", day(6, 1), "churn_30d", 0.5, "high", 100.0),
        ("a3", day(6, 1), "churn_30d", 0.2, "medium", 30.0),
        ("a4", day(6, 1), "churn_30d", 0.05, "low", 20.0),
        # a later run of another horizon: not the project's horizon (30 days)
        ("a1", day(6, 2), "churn_14d", 0.99, "high", 100.0),
    ]
    schema = _arrow_for(_COLUMNS)
    business.append(
        RISK_SCORES_TABLE,
        pa.Table.from_pylist(
            [
                {
                    "account_id": a,
                    "scored_at": at,
                    "target": target,
                    "model_version": "v1",
                    "score": p,
                    "risk_tier": tier,
                    "mrr": mrr,
                    "revenue_at_risk": p * mrr,
                }
                for a, at, target, p, tier, mrr in rows
            ],
            schema=schema,
        ),
    )
    kpis = business_kpis(business, Settings(), as_of=AS_OF)
    assert kpis.risk_target == "churn_30d"
    assert kpis.scored_at == day(6, 1)
    assert kpis.high_risk_accounts == 1
    assert kpis.revenue_at_risk == pytest.approx(0.5 * 100 + 0.2 * 30 + 0.05 * 20)


def test_an_empty_warehouse_has_no_churn_rate(warehouse: Warehouse) -> None:
    warehouse.ensure_schema()
    kpis = business_kpis(warehouse, Settings(), as_of=AS_OF)
    assert (kpis.accounts, kpis.subscribers, kpis.mrr) == (0, 0, 0.0)
    assert kpis.churn_rate is None
    assert kpis.churn_trend.empty


rates = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@given(st.lists(rates, min_size=3, max_size=12), rates)
def test_a_spike_ignores_the_order_of_the_history(history: list[float], last: float) -> None:
    assert churn_spike([*history, last]) == churn_spike([*reversed(history), last])


@given(st.lists(rates, min_size=3, max_size=12))
def test_no_rate_at_or_below_the_mean_is_a_spike(history: list[float]) -> None:
    mean = math.fsum(history) / len(history)
    assert not churn_spike([*history, mean * (1 - 1e-9)])


@given(st.lists(rates, min_size=3, max_size=12))
def test_a_rate_far_above_every_earlier_one_is_a_spike(history: list[float]) -> None:
    spread = max(history) - min(history)
    assert churn_spike([*history, max(history) + 3 * spread + 0.01])


def test_too_short_a_history_is_never_a_spike() -> None:
    assert not churn_spike([0.01, 0.02, 0.9])
