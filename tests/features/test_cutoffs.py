"""Many cutoffs at once give what each cutoff gives alone, in one batch or several.

With several cutoffs per account, all-time features are summed over the
intervals between cutoffs: intervals of a shared schedule (a few instants),
or of each account's own cutoffs (running totals); with one cutoff per
account they need not be. Every path must agree, on any events and cutoffs.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any
from unittest import mock

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from churnwatch.errors import ConfigError
from churnwatch.features import _compute, compute_features
from churnwatch.warehouse import connect

ACCOUNT_IDS = ("a1", "a2", "a3")
START = dt.datetime(2023, 10, 1, tzinfo=dt.UTC)
SPAN_DAYS = 200

instant = st.integers(min_value=0, max_value=SPAN_DAYS * 86_400).map(
    lambda seconds: START + dt.timedelta(seconds=seconds)
)
event = st.fixed_dictionaries(
    {
        "account_id": st.sampled_from(ACCOUNT_IDS),
        "user_id": st.sampled_from(["u1", "u2", None]),
        "event_time": instant,
        "event_type": st.sampled_from(["login", "session", "feature_use", "support_call"]),
        "duration_s": st.one_of(st.none(), st.floats(0, 5000).map(lambda v: round(v, 1))),
        "value": st.one_of(st.none(), st.floats(-5, 5).map(lambda v: round(v, 2))),
        "properties": st.sampled_from([None, '{"sentiment": "negative"}', "{}"]),
    }
)
cutoff = st.tuples(st.sampled_from(ACCOUNT_IDS), instant)


def _frame(
    golden: Any, rows: dict[str, list[dict[str, Any]]], pairs: list[Any], batch_rows: int = 10**6
) -> list[Any]:
    with connect("duckdb:///:memory:") as warehouse:
        golden.load(warehouse, rows)
        cutoffs = golden.cutoffs(pairs)
        frame: pa.Table = compute_features(warehouse, cutoffs, golden.specs, batch_rows=batch_rows)
    return list(frame.to_pylist())


def _same(left: Any, right: Any) -> bool:
    if isinstance(left, float) and isinstance(right, float):
        return math.isclose(left, right, rel_tol=1e-9, abs_tol=1e-9)
    return bool(left == right)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(events=st.lists(event, max_size=12), pairs=st.lists(cutoff, min_size=2, max_size=7))
def test_cutoffs_together_equal_cutoffs_alone(
    golden: Any, events: list[dict[str, Any]], pairs: list[tuple[str, dt.datetime]]
) -> None:
    rows = {**golden.rows, "events": [*golden.rows["events"], *events]}
    together = _frame(golden, rows, pairs)
    assert [(r["account_id"], r["cutoff"]) for r in together] == pairs
    # In batches of whole accounts (here about two pairs each), nothing changes;
    # nor when the all-time query of a schedule runs in such batches too.
    for whole in (8, 1):
        with mock.patch.object(_compute, "_WHOLE_BATCH", whole):
            batched = _frame(golden, rows, pairs, batch_rows=2)
        for row, other in zip(together, batched, strict=True):
            assert all(_same(v, other[n]) for n, v in row.items())
    # Nor when the cutoffs are not taken for a shared schedule (intervals by time range).
    with mock.patch.object(_compute, "GRID_INSTANTS", 0):
        ranged = _frame(golden, rows, pairs)
    for row, other in zip(together, ranged, strict=True):
        assert all(_same(v, other[n]) for n, v in row.items())
    for pair, row in zip(pairs, together, strict=True):
        (alone,) = _frame(golden, rows, [pair])
        different = [n for n, v in row.items() if not _same(v, alone[n])]
        assert not different, f"{pair}: {different}"


def test_batch_rows_must_be_positive(golden: Any) -> None:
    with connect("duckdb:///:memory:") as warehouse:
        golden.load(warehouse)
        cutoffs = golden.cutoffs([("a1", START), ("a2", START)])
        with pytest.raises(ConfigError, match="batch_rows must be 1 or more"):
            compute_features(warehouse, cutoffs, golden.specs, batch_rows=0)
