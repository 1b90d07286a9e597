"""Plain-word reasons, global importance and partial dependence."""

# ruff: noqa: N806 -- X is the feature matrix, as in scikit-learn

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import churnwatch.explain._reasons as reasons_module
from churnwatch.errors import ConfigError, ModelError
from churnwatch.explain import (
    PartialDependence,
    Reason,
    describe_reason,
    global_importance,
    partial_dependence,
    reference_values,
    top_reasons,
)
from churnwatch.features import FeatureSpec, default_features

F = FeatureSpec
NAN = math.nan

# --- golden phrases: every kind and function -------------------------------------------------

GOLDEN: list[tuple[FeatureSpec, Any, Any, str]] = [
    # aggregate
    (F("events_30d", "aggregate", "count", window_days=30), 2, 40.0,
     "2 events in the last 30 days (typical: 40)"),
    (F("events_30d", "aggregate", "count", window_days=30), 0, 40.0,
     "no activity in the last 30 days (typical: 40)"),
    (F("events_all", "aggregate", "count"), 1, 1234.0, "1 event so far (typical: 1,234)"),
    (F("sessions_7d", "aggregate", "count", window_days=7, event_type="session"), 0.0, 9.0,
     "no sessions in the last 7 days (typical: 9)"),
    (F("logins_30d", "aggregate", "count", window_days=30, event_type="login"), 1, 12.5,
     "1 login in the last 30 days (typical: 12.5)"),
    (F("report_viewed_30d", "aggregate", "count", window_days=30, event_type="report_viewed"),
     0, 6.0, "used 'report_viewed' 0 times in the last 30 days (typical: 6)"),
    (F("exports_30d", "aggregate", "count", window_days=30, event_type="feature_use",
       property_name="feature", property_value="export"),
     1, 4.0, "used 'feature_use' with feature 'export' 1 time in the last 30 days (typical: 4)"),
    (F("active_days_30d", "aggregate", "active_days", window_days=30), 2, 12.0,
     "active on 2 of the last 30 days (typical: 12)"),
    (F("active_weeks_90d", "aggregate", "active_weeks", window_days=90), 1, 11.0,
     "active in 1 different week in the last 90 days (typical: 11)"),
    (F("duration_s_sum_30d", "aggregate", "sum", "duration_s", window_days=30), 750.0, 9000.0,
     "total time in the last 30 days was 12.5 minutes (typical: 2.5 hours)"),
    (F("duration_s_mean_30d", "aggregate", "mean", "duration_s", window_days=30,
       event_type="session"), 45.0, 1800.0,
     "average time per session in the last 30 days was 45 seconds (typical: 30 minutes)"),
    (F("value_sum_30d", "aggregate", "sum", "value", window_days=30), NAN, 250.0,
     "no events with a recorded value in the last 30 days"),
    (F("value_max_30d", "aggregate", "max", "value", window_days=30), 3.25, 99.5,
     "highest value of a single event in the last 30 days was 3.25 (typical: 99.5)"),
    # users
    (F("active_users_30d", "users", "active_users", window_days=30), 1, 4.0,
     "1 active user in the last 30 days (typical: 4)"),
    (F("active_user_share_30d", "users", "active_share", window_days=30), 0.075, 0.6,
     "7.5% of users active in the last 30 days (typical: 60%)"),
    (F("active_user_share_30d", "users", "active_share", window_days=30), None, 0.6,
     "no known users yet"),
    # recency
    (F("days_since_last_event", "recency"), 45.2, 3.0, "no activity for 45 days (typical: 3)"),
    (F("days_since_last_event", "recency"), 1.0, 3.0, "no activity for 1 day (typical: 3)"),
    (F("days_since_last_event", "recency"), NAN, 3.0, "no activity yet"),
    (F("days_since_login", "recency", event_type="login"), 45.0, 3.0,
     "no login for 45 days (typical: 3)"),
    (F("days_since_login", "recency", event_type="login"), None, 3.0, "never logged in"),
    (F("days_since_report_viewed", "recency", event_type="report_viewed"), 12.0, 4.0,
     "has not used 'report_viewed' for 12 days (typical: 4)"),
    (F("days_since_report_viewed", "recency", event_type="report_viewed"), None, 4.0,
     "has never used 'report_viewed'"),
    # tenure and first week
    (F("tenure_days", "tenure"), 20.4, 410.0, "account is 20 days old (typical: 410)"),
    (F("tenure_days", "tenure"), 1500.0, 410.0, "account is 1,500 days old (typical: 410)"),
    (F("first_week_events", "first_week"), 0, 25.0,
     "no activity in its first week (typical: 25)"),
    (F("first_week_logins", "first_week", event_type="login"), 3, 25.0,
     "3 logins in its first week (typical: 25)"),
    (F("first_week_events", "first_week"), NAN, 25.0, "first week not over yet"),
    # consistency: a share of weeks, said as weeks
    (F("weekly_consistency_8w", "consistency", weeks=8), 0.25, 0.875,
     "active in 2 of the last 8 weeks (typical: 7)"),
    # trend
    (F("session_trend_ratio_30d", "trend", "ratio", window_days=30, event_type="session"),
     0.2, 1.0, "sessions in the last 30 days fell 80% against the 30 days before "
     "(typical: no change)"),
    (F("events_trend_ratio_7d", "trend", "ratio", window_days=7), 1.5, 0.95,
     "activity in the last 7 days rose 50% against the 7 days before (typical: down 5%)"),
    (F("events_trend_ratio_30d", "trend", "ratio", window_days=30), 0.0, 1.1,
     "activity stopped in the last 30 days, after some in the 30 days before (typical: up 10%)"),
    (F("events_trend_ratio_30d", "trend", "ratio", window_days=30), NAN, 1.1,
     "no activity in the 30 days before the last 30, so no trend"),
    (F("events_trend_diff_30d", "trend", "difference", window_days=30), -12, 2.0,
     "12 fewer events in the last 30 days than in the 30 days before (typical: 2 more)"),
    (F("logins_trend_diff_30d", "trend", "difference", window_days=30, event_type="login"),
     -1, 0.0,
     "1 fewer login in the last 30 days than in the 30 days before (typical: no change)"),
    # payments
    (F("payment_success_rate_90d", "payments", "success_rate", window_days=90), 0.5, 1.0,
     "50% of payments succeeded in the last 90 days (typical: 100%)"),
    (F("payment_success_rate_all", "payments", "success_rate"), None, 1.0, "no payments yet"),
    (F("failed_payments_90d", "payments", "failed_count", window_days=90), 2, 0.0,
     "2 failed payments in the last 90 days (typical: 0)"),
    (F("failed_payments_all", "payments", "failed_count"), 1, 0.0,
     "1 failed payment so far (typical: 0)"),
    (F("days_since_failed_payment", "payments", "days_since_failure"), 5.0, 120.0,
     "last failed payment 5 days ago (typical: 120)"),
    (F("days_since_failed_payment", "payments", "days_since_failure"), NAN, 120.0,
     "no failed payments yet"),
    # subscription
    (F("current_mrr", "subscription", "mrr"), 49.0, 1250.0, "MRR is 49 (typical: 1,250)"),
    (F("current_mrr", "subscription", "mrr"), None, 99.0, "no active subscription"),
    (F("current_plan", "subscription", "plan"), "basic", "pro",
     "on the 'basic' plan (most common: 'pro')"),
    (F("current_plan", "subscription", "plan"), "pro", "pro", "on the 'pro' plan"),
    (F("current_discount", "subscription", "discount"), 0.15, 0.0,
     "has a 15% discount (typical: 0%)"),
    (F("upgrades", "subscription", "upgrades"), 0, 1.0, "no upgrades so far (typical: 1)"),
    (F("downgrades", "subscription", "downgrades"), 2, 0.0, "2 downgrades so far (typical: 0)"),
    # support
    (F("support_contacts_90d", "support", "count", window_days=90), 4, 1.0,
     "4 support contacts in the last 90 days (typical: 1)"),
    (F("negative_support_90d", "support", "negative_count", window_days=90), 1, 0.0,
     "1 negative support contact in the last 90 days (typical: 0)"),
    # attribute
    (F("plan", "attribute", column="plan"), "basic", "pro",
     "on the 'basic' plan (most common: 'pro')"),
    (F("region", "attribute", column="region"), "emea", "na",
     "in the 'emea' region (most common: 'na')"),
    (F("platform", "attribute", column="platform"), None, "web",
     "no platform on record (most common: 'web')"),
    (F("referral_source", "attribute", column="referral_source"), "partner", "organic",
     "signed up through 'partner' (most common: 'organic')"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("spec", "value", "reference", "expected"),
    GOLDEN,
    ids=[f"{s.kind}-{s.function}-{i}" for i, (s, *_) in enumerate(GOLDEN)],
)
def test_golden_phrases(spec: FeatureSpec, value: Any, reference: Any, expected: str) -> None:
    assert describe_reason(spec.name, value, reference, 0.5, spec) == expected


def test_golden_phrases_cover_every_kind() -> None:
    covered = {(spec.kind, spec.function) for spec, *_ in GOLDEN}
    assert {kind for kind, _ in covered} == {
        "aggregate", "users", "recency", "tenure", "first_week", "consistency", "trend",
        "payments", "subscription", "support", "attribute",
    }  # fmt: skip
    assert {
        ("payments", "success_rate"), ("payments", "failed_count"),
        ("payments", "days_since_failure"), ("subscription", "mrr"), ("subscription", "plan"),
        ("subscription", "discount"), ("subscription", "upgrades"),
        ("subscription", "downgrades"), ("trend", "ratio"), ("trend", "difference"),
    } <= covered  # fmt: skip


@pytest.mark.parametrize(
    ("value", "reference", "expected"),
    [
        (2.3, 5.1, "tenure is 2.3 (typical: 5.1)"),
        (3.0, 4, "tenure is 3 (typical: 4)"),  # a whole float reads as an int
        (np.int64(1234567), 1000.0, "tenure is 1,234,567 (typical: 1,000)"),
        (1234.5, 70.35, "tenure is 1,235 (typical: 70.35)"),
        (0.0345, None, "tenure is 0.035"),
        (-0.0, NAN, "tenure is 0"),
        (None, 5.0, "tenure is missing (typical: 5)"),
        ("Month-to-month", "Two year", "tenure is 'Month-to-month' (most common: 'Two year')"),
        ("Two year", "Two year", "tenure is 'Two year'"),
        (pd.NA, "Two year", "tenure is missing (most common: 'Two year')"),
    ],
)
def test_features_without_a_spec_use_their_name(value: Any, reference: Any, expected: str) -> None:
    assert describe_reason("tenure", value, reference) == expected


def test_a_number_spec_given_text_does_not_guess() -> None:
    spec = F("failed_payments_90d", "payments", "failed_count", window_days=90)
    assert describe_reason(spec.name, "n/a", 0.0, 1.0, spec) == (
        "failed_payments_90d is 'n/a' (most common: '0.0')"
    )


class _StubWarehouse:
    """Answers default_features' probes as a warehouse full of every kind of data would."""

    TYPES = ("login", "session", "feature_use", "report_viewed", "support_call")

    def count(self, table: str) -> int:
        return 10

    def query(self, query: Any) -> pa.Table:
        names = query.named_selects
        if names == ["event_type", "n"]:
            return pa.table({"event_type": list(self.TYPES), "n": [50, 40, 30, 20, 10]})
        return pa.table({name: [10] for name in names})


def test_every_default_feature_reads_well_for_any_value() -> None:
    specs = default_features(_StubWarehouse())  # type: ignore[arg-type]
    assert {s.kind for s in specs} >= {"aggregate", "recency", "trend", "payments", "support"}
    samples: list[Any] = [0, 1, 2.0, 0.25, 45.7, 12_345.6, None, NAN]
    for spec in specs:
        values = ["basic", None] if spec.dtype == "string" else samples
        reference = "pro" if spec.dtype == "string" else 3.0
        for value in values:
            text = describe_reason(spec.name, value, reference, 1.0, spec)
            where = (spec.name, value, text)
            assert text, where
            assert text == text.strip(), where
            assert "None" not in text, where
            assert "nan" not in text.lower(), where
            if "_" in spec.name:  # plain words, not column names ("plan" is both)
                assert spec.name not in text, where
            assert "  " not in text, where
            assert ".0 " not in text, where


# --- top_reasons -----------------------------------------------------------------------------

SPECS = {
    "days_since_login": F("days_since_login", "recency", event_type="login"),
    "failed_payments_90d": F("failed_payments_90d", "payments", "failed_count", window_days=90),
    "plan": F("plan", "attribute", column="plan"),
}


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "days_since_login": [45.0, NAN, 2.0],
            "failed_payments_90d": [2, 0, 0],
            "plan": pd.Series(["basic", "pro", None], dtype="str"),
            "seats": [3, 10, 7],
        }
    )


def _references() -> dict[str, Any]:
    return {"days_since_login": 3.0, "failed_payments_90d": 0.0, "plan": "pro", "seats": 7.0}


def test_top_reasons_gives_only_features_that_raise_the_risk() -> None:
    X = _frame()
    contributions = np.array(
        [
            [0.9, 0.4, -0.3, 0.1],
            [0.5, -0.1, -0.2, 0.0],
            [-0.6, -0.1, 0.2, -0.5],
        ]
    )
    reasons = top_reasons(contributions, X, list(X.columns), _references(), SPECS, k=3)
    assert [[r.text for r in row] for row in reasons] == [
        [
            "no login for 45 days (typical: 3)",
            "2 failed payments in the last 90 days (typical: 0)",
            "seats is 3 (typical: 7)",
        ],
        ["never logged in"],
        ["no plan on record (most common: 'pro')"],
    ]
    assert all(r.contribution > 0 and r.direction == "raises" for row in reasons for r in row)
    first = reasons[0][0]
    assert (first.feature, first.value, first.contribution) == ("days_since_login", 45.0, 0.9)
    assert reasons[1][0].value is None
    assert reasons[2][0].value is None
    assert isinstance(reasons[0][1].value, int)


def test_k_limits_and_ties_go_to_the_first_name() -> None:
    X = pd.DataFrame({"zeta": [1.0], "alpha": [2.0], "mid": [3.0], "beta": [4.0]})
    contributions = np.array([[0.5, 0.5, 0.7, 0.5]])
    names = list(X.columns)
    assert [r.feature for r in top_reasons(contributions, X, names, {}, {}, k=2)[0]] == [
        "mid",
        "alpha",
    ]
    assert [r.feature for r in top_reasons(contributions, X, names, {}, {}, k=3)[0]] == [
        "mid",
        "alpha",
        "beta",
    ]
    assert len(top_reasons(contributions, X, names, {}, {}, k=10)[0]) == 4
    assert top_reasons(contributions, X, names, {}, {}, k=0) == [[]]


def _brute_force(contributions: np.ndarray, names: list[str], k: int) -> list[list[str]]:
    result = []
    for row in contributions:
        ranked = sorted((-value, name) for value, name in zip(row, names, strict=True))
        result.append([name for value, name in ranked[:k] if value < 0])
    return result


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 8),
    st.integers(1, 12),
    st.integers(0, 6),
    st.integers(0, 2**31),
)
def test_top_reasons_match_a_full_sort_even_with_many_ties(
    rows: int, columns: int, k: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    # Small integers: ties at every position, including the k-th.
    contributions = rng.integers(-2, 3, size=(rows, columns)).astype(float)
    names = [f"f{j}" for j in rng.permutation(columns)]
    X = pd.DataFrame({name: np.zeros(rows) for name in names})
    reasons = top_reasons(contributions, X, names, {}, {}, k=k)
    assert [[r.feature for r in row] for row in reasons] == _brute_force(contributions, names, k)


def test_column_order_does_not_change_the_reasons() -> None:
    rng = np.random.default_rng(3)
    X = pd.DataFrame({f"f{j}": rng.integers(0, 5, 200) for j in range(15)})
    contributions = rng.integers(-3, 4, size=(200, 15)).astype(float)
    names = list(X.columns)
    before = top_reasons(contributions, X, names, reference_values(X), {}, k=4)
    assert before == top_reasons(contributions, X, names, reference_values(X), {}, k=4)
    order = rng.permutation(15)
    shuffled = top_reasons(
        contributions[:, order], X, [names[j] for j in order], reference_values(X), {}, k=4
    )
    assert shuffled == before


def test_top_reasons_word_each_distinct_value_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = np.random.default_rng(0)
    rows, columns = 50_000, 60
    names = [f"feature_{j:02d}" for j in range(columns)]
    X = pd.DataFrame({name: rng.integers(0, 20, rows) for name in names})
    X["plan"] = pd.Series(rng.choice(["basic", "pro", "enterprise"], rows), dtype="str")
    names.append("plan")
    contributions = rng.normal(size=(rows, columns + 1))
    worded: list[object] = []
    real = reasons_module._phraser

    def counting(*args: Any) -> Any:
        phrase = real(*args)

        def wrapped(value: object) -> str:
            worded.append(value)
            return phrase(value)

        return wrapped

    monkeypatch.setattr(reasons_module, "_phraser", counting)
    reasons = top_reasons(contributions, X, names, reference_values(X), {}, k=3)
    assert len(reasons) == rows
    assert all(len(row) == 3 for row in reasons)
    # At most 20 values per integer feature and 3 plans: one text each.
    assert len(worded) <= 20 * columns + 3


def test_top_reasons_errors() -> None:
    X, refs = _frame(), _references()
    names = list(X.columns)
    with pytest.raises(ModelError, match="shape"):
        top_reasons(np.zeros((3, 3)), X, names, refs, SPECS)
    with pytest.raises(ModelError, match="2 row"):
        top_reasons(np.zeros((2, 4)), X, names, refs, SPECS)
    with pytest.raises(ModelError, match="lacks the feature column"):
        top_reasons(np.zeros((3, 1)), X, ["nope"], refs, SPECS)
    with pytest.raises(ModelError, match="NaN"):
        top_reasons(np.full((3, 4), NAN), X, names, refs, SPECS)
    with pytest.raises(ModelError, match="twice"):
        top_reasons(np.zeros((3, 2)), X, ["plan", "plan"], refs, SPECS)
    with pytest.raises(ConfigError, match="k must"):
        top_reasons(np.zeros((3, 4)), X, names, refs, SPECS, k=-1)


def test_reason_is_a_plain_value() -> None:
    reason = Reason("plan", "basic", 0.3, "raises", "on the 'basic' plan")
    assert str(reason) == "on the 'basic' plan"
    assert reason == Reason("plan", "basic", 0.3, "raises", "on the 'basic' plan")


# --- reference values and global importance --------------------------------------------------


def test_reference_values_are_medians_and_most_frequent_levels() -> None:
    X = pd.DataFrame(
        {
            "logins": [1, 4, 10, 7],
            "rate": [0.5, NAN, 1.0, NAN],
            "empty": [NAN, NAN, NAN, NAN],
            "plan": pd.Series(["pro", "basic", "basic", "pro"], dtype="str"),
            "region": pd.Categorical(["eu", None, "na", "na"]),
        }
    )
    references = reference_values(X)
    assert references["logins"] == 5.5
    assert references["rate"] == 0.75
    assert math.isnan(references["empty"])  # type: ignore[arg-type]
    assert references["plan"] == "basic"  # a tie: first in sort order, whatever the row order
    assert reference_values(X.iloc[::-1])["plan"] == "basic"
    assert references["region"] == "na"


def test_global_importance_ranks_by_mean_absolute_contribution() -> None:
    contributions = np.array([[1.0, -2.0, 0.5], [-1.0, 2.0, -0.5]])
    table = global_importance(contributions, ["b", "c", "a"], gain={"c": 10.0, "a": 3.0})
    assert list(table.columns) == ["feature", "mean_abs_contribution", "share", "gain"]
    assert table["feature"].tolist() == ["c", "b", "a"]
    assert table["mean_abs_contribution"].tolist() == [2.0, 1.0, 0.5]
    assert table["share"].sum() == pytest.approx(1.0)
    assert table["gain"].iloc[0] == 10.0
    assert math.isnan(table["gain"].iloc[1])
    tied = global_importance(np.ones((2, 2)), ["z", "y"])
    assert tied["feature"].tolist() == ["y", "z"]
    assert global_importance(np.zeros((2, 1)), ["z"])["share"].tolist() == [0.0]
    with pytest.raises(ModelError, match="shape"):
        global_importance(np.zeros((2, 2)), ["only"])


# --- partial dependence ----------------------------------------------------------------------


def _linear(frame: pd.DataFrame) -> np.ndarray:
    return 2.0 * frame["x"].to_numpy(float) - 3.0 * frame["z"].to_numpy(float) + 1.0


def test_partial_dependence_of_a_line_is_the_line() -> None:
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"x": rng.normal(size=500), "z": rng.normal(size=500)})
    result = partial_dependence(_linear, X, "x", grid_points=15, ice_rows=40)
    assert isinstance(result, PartialDependence)
    assert result.feature == "x"
    assert len(result.grid) == 15
    assert np.all(np.diff(result.grid) > 0)
    # Quantile grid between the 5th and 95th percentiles.
    assert result.grid[0] == pytest.approx(np.quantile(X["x"], 0.05))
    assert result.grid[-1] == pytest.approx(np.quantile(X["x"], 0.95))
    expected = 2.0 * result.grid - 3.0 * X["z"].mean() + 1.0
    np.testing.assert_allclose(result.average, expected)
    assert result.ice.shape == (40, 15)
    assert len(np.unique(result.rows)) == 40
    z = X["z"].to_numpy()[result.rows]
    np.testing.assert_allclose(result.ice, 2.0 * result.grid - 3.0 * z[:, None] + 1.0)
    # Deterministic, and the caller's frame is left alone.
    again = partial_dependence(_linear, X, "x", grid_points=15, ice_rows=40)
    np.testing.assert_array_equal(again.rows, result.rows)
    assert X.columns.tolist() == ["x", "z"]
    assert X["x"].std() > 0.5


def test_partial_dependence_on_integers_uses_their_values() -> None:
    X = pd.DataFrame({"x": np.arange(100) % 7, "z": np.zeros(100)})
    few = partial_dependence(_linear, X, "x", ice_rows=500)
    assert few.grid.tolist() == list(range(7))
    assert few.grid.dtype.kind == "i"
    assert few.ice.shape == (100, 7)
    np.testing.assert_allclose(few.average, 2.0 * np.arange(7) + 1.0)
    many = partial_dependence(_linear, pd.DataFrame({"x": np.arange(1000), "z": 0.0}), "x",
                              grid_points=5, ice_rows=0)  # fmt: skip
    assert many.grid.dtype.kind == "i"
    assert len(many.grid) == 5
    assert many.ice.shape == (0, 5)


@pytest.mark.parametrize("dtype", ["str", "category"])
def test_partial_dependence_on_a_text_column(dtype: str) -> None:
    plans = ["pro"] * 5 + ["basic"] * 3 + ["enterprise"] * 3 + ["trial"]
    X = pd.DataFrame({"plan": pd.Series(plans, dtype=dtype), "seats": np.arange(12.0)})
    uplift = {"pro": 0.1, "basic": 0.5, "enterprise": 0.0, "trial": 0.9}
    seen: list[str] = []

    def predict(frame: pd.DataFrame) -> np.ndarray:
        seen.append(str(frame["plan"].dtype))
        return frame["plan"].astype(str).map(uplift).to_numpy(float) + frame["seats"].to_numpy()

    result = partial_dependence(predict, X, "plan", grid_points=3, ice_rows=4)
    # The most frequent levels, ties by name.
    assert result.grid.tolist() == ["pro", "basic", "enterprise"]
    np.testing.assert_allclose(result.average, [0.1 + 5.5, 0.5 + 5.5, 0.0 + 5.5])
    assert result.ice.shape == (4, 3)
    assert set(seen) == {str(X["plan"].dtype)}  # the model sees the column's own dtype


def test_partial_dependence_errors() -> None:
    X = pd.DataFrame({"x": [1.0, 2.0], "z": [0.0, 0.0], "empty": [NAN, NAN]})
    with pytest.raises(ModelError, match="no column"):
        partial_dependence(_linear, X, "nope")
    with pytest.raises(ModelError, match="no value"):
        partial_dependence(_linear, X, "empty")
    with pytest.raises(ModelError, match="one score per row"):
        partial_dependence(lambda f: np.zeros((len(f), 2)), X, "x")
    with pytest.raises(ConfigError, match="grid_points"):
        partial_dependence(_linear, X, "x", grid_points=1)
    with pytest.raises(ModelError, match="at least one row"):
        partial_dependence(_linear, X.iloc[:0], "x")
