"""The health score: hand-computed cases, weights, missing values, tiers, invariants."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from churnwatch.errors import AnalysisError
from churnwatch.health import (
    DEFAULT_COMPONENTS,
    HealthComponent,
    component_points,
    health_tier,
    score_health,
)

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

RECENCY = HealthComponent("days_since_last_event", "lower_is_better", 2.0, bad=30, good=0)
SUPPORT = HealthComponent("support_contacts_90d", "lower_is_better", 1.0, bad=4, good=0)
PAYMENT = HealthComponent("payment_success_rate_90d", "higher_is_better", 1.0, bad=0.5, good=1)


def test_hand_computed_weighted_mean() -> None:
    frame = pd.DataFrame(
        {
            "account_id": ["a", "b"],
            "days_since_last_event": [6.0, 45.0],  # 80 points; 0 points
            "support_contacts_90d": [1, 2],  # 75; 50
            "payment_success_rate_90d": [0.9, 0.75],  # 80; 50
        }
    )
    scores = score_health(frame, [RECENCY, SUPPORT, PAYMENT]).scores
    # (2 * 80 + 75 + 80) / 4 and (2 * 0 + 50 + 50) / 4
    assert scores["health_score"].tolist() == pytest.approx([78.75, 25.0])
    assert scores["health_tier"].tolist() == ["Healthy", "Critical"]
    assert scores["points_support_contacts_90d"].tolist() == pytest.approx([75.0, 50.0])


def test_missing_value_gives_its_weight_to_the_others() -> None:
    frame = pd.DataFrame(
        {
            "account_id": ["a"],
            "days_since_last_event": [6.0],
            "support_contacts_90d": [1],
            "payment_success_rate_90d": [np.nan],
        }
    )
    score = score_health(frame, [RECENCY, SUPPORT, PAYMENT]).scores["health_score"].iloc[0]
    assert score == pytest.approx((2 * 80 + 75) / 3)


def test_missing_policies_worst_and_best() -> None:
    values = [np.nan, 15.0]
    worst = HealthComponent("m", "lower_is_better", bad=30, good=0, missing="worst")
    best = HealthComponent("m", "lower_is_better", bad=30, good=0, missing="best")
    assert component_points(worst, values).tolist() == [0.0, 50.0]
    assert component_points(best, values).tolist() == [100.0, 50.0]


def test_a_row_with_no_signal_has_no_score_and_no_tier() -> None:
    frame = pd.DataFrame({"account_id": ["a", "b"], "support_contacts_90d": [np.nan, 0.0]})
    scores = score_health(frame, [SUPPORT]).scores
    assert np.isnan(scores["health_score"].iloc[0])
    assert scores["health_tier"].iloc[0] is None
    assert scores["health_tier"].iloc[1] == "Thriving"


@pytest.mark.parametrize(
    ("value", "tier"),
    [
        (100.0, "Thriving"),
        (80.0, "Thriving"),
        (79.99, "Healthy"),
        (60.0, "Healthy"),
        (59.99, "At-risk"),
        (40.0, "At-risk"),
        (39.99, "Critical"),
        (0.0, "Critical"),
    ],
)
def test_tier_boundaries(value: float, tier: str) -> None:
    # A linear component from 0 to 100 makes the score the metric itself.
    identity = HealthComponent("m", "higher_is_better", bad=0, good=100)
    scores = score_health(pd.DataFrame({"account_id": ["a"], "m": [value]}), [identity]).scores
    assert scores["health_score"].iloc[0] == pytest.approx(value)
    assert scores["health_tier"].iloc[0] == tier
    assert health_tier(value) == tier


def test_a_score_meant_to_be_80_is_thriving_despite_floating_point() -> None:
    # (100 * 0.2 + 100 * 0.4) / 0.75 is 79.99999999999999 in floating point.
    weights = np.array([0.2, 0.4, 0.15])
    assert (np.array([100.0, 100.0, 0.0]) @ weights) / weights.sum() < 80
    components = [
        HealthComponent("x", "higher_is_better", 0.2, bad=0, good=1),
        HealthComponent("y", "higher_is_better", 0.4, bad=0, good=1),
        HealthComponent("z", "higher_is_better", 0.15, bad=0, good=1),
    ]
    frame = pd.DataFrame({"account_id": ["a"], "x": [1.0], "y": [1.0], "z": [0.0]})
    assert score_health(frame, components).scores["health_tier"].iloc[0] == "Thriving"


def test_percentiles_are_taken_within_each_cutoff() -> None:
    frequency = HealthComponent("events_30d", "higher_is_better")
    frame = pd.DataFrame(
        {
            "account_id": ["a", "b", "a", "b"],
            "cutoff": ["2024-01-01", "2024-01-01", "2024-02-01", "2024-02-01"],
            "events_30d": [1, 2, 100, 200],
        }
    )
    points = score_health(frame, [frequency]).scores["points_events_30d"]
    assert points.tolist() == [25.0, 75.0, 25.0, 75.0]


def test_default_components_drop_out_with_a_note_when_their_feature_is_absent() -> None:
    frame = pd.DataFrame(
        {"account_id": ["a", "b"], "days_since_last_event": [1.0, 40.0], "events_30d": [9, 1]}
    )
    result = score_health(frame)
    assert [c.metric for c in result.components] == ["days_since_last_event", "events_30d"]
    assert len(result.notes) == 3
    assert any("payment success" in note for note in result.notes)


def test_a_declared_component_must_name_a_column() -> None:
    frame = pd.DataFrame({"account_id": ["a"], "events_30d": [1]})
    with pytest.raises(AnalysisError, match="logins_30d not in the features"):
        score_health(frame, [HealthComponent("logins_30d", "higher_is_better")])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"weight": 0.0}, "weight must be a number > 0"),
        ({"bad": 1.0}, "give both bad and good"),
        ({"bad": 10.0, "good": 1.0}, "good \\(1\\) must lie above bad \\(10\\)"),
        ({"direction": "up"}, "direction must be"),
        ({"missing": "zero"}, "missing must be"),
    ],
)
def test_invalid_components_are_refused(kwargs: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {"metric": "events_30d", "direction": "higher_is_better"}
    with pytest.raises(AnalysisError, match=message):
        HealthComponent(**{**fields, **kwargs})  # type: ignore[arg-type]


def test_default_weights_sum_to_one() -> None:
    assert sum(c.weight for c in DEFAULT_COMPONENTS) == pytest.approx(1.0)


# -- invariants ------------------------------------------------------------------
values = st.floats(min_value=0, max_value=200, allow_nan=False)
maybe = st.one_of(values, st.just(float("nan")))


@st.composite
def frames(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(min_value=1, max_value=12))
    return pd.DataFrame(
        {
            "account_id": [f"a{i:02}" for i in range(n)],
            "m1": draw(st.lists(maybe, min_size=n, max_size=n)),
            "m2": draw(st.lists(values, min_size=n, max_size=n)),
            "m3": draw(st.lists(maybe, min_size=n, max_size=n)),
        }
    )


@st.composite
def component_sets(draw: st.DrawFn) -> list[HealthComponent]:
    chosen = []
    for metric in ("m1", "m2", "m3"):
        direction = draw(st.sampled_from(["higher_is_better", "lower_is_better"]))
        weight = draw(st.floats(min_value=0.05, max_value=5))
        if draw(st.booleans()):
            low, high = sorted(draw(st.lists(values, min_size=2, max_size=2, unique=True)))
            bad, good = (low, high) if direction == "higher_is_better" else (high, low)
            chosen.append(HealthComponent(metric, direction, weight, bad=bad, good=good))
        else:
            missing = draw(st.sampled_from(["skip", "worst", "best"]))
            chosen.append(HealthComponent(metric, direction, weight, missing=missing))
    return chosen


@SETTINGS
@given(frames(), component_sets(), st.floats(min_value=0.01, max_value=100))
def test_weights_are_normalised(
    frame: pd.DataFrame, components: list[HealthComponent], factor: float
) -> None:
    scaled = [
        HealthComponent(c.metric, c.direction, c.weight * factor, c.bad, c.good, c.missing)
        for c in components
    ]
    first = score_health(frame, components).scores["health_score"]
    second = score_health(frame, scaled).scores["health_score"]
    np.testing.assert_allclose(first, second, atol=1e-5)


@SETTINGS
@given(frames(), component_sets(), st.data())
def test_score_moves_with_each_component_direction(
    frame: pd.DataFrame, components: list[HealthComponent], data: st.DataObject
) -> None:
    row = data.draw(st.integers(min_value=0, max_value=len(frame) - 1))
    component = data.draw(st.sampled_from(components))
    if np.isnan(frame.loc[row, component.metric]):
        frame.loc[row, component.metric] = 50.0
    before = score_health(frame, components).scores["health_score"].iloc[row]
    raised = frame.copy()
    raised.loc[row, component.metric] += data.draw(st.floats(min_value=0.5, max_value=100))
    after = score_health(raised, components).scores["health_score"].iloc[row]
    if component.direction == "higher_is_better":
        assert after >= before - 1e-6
    else:
        assert after <= before + 1e-6
    assert 0.0 <= after <= 100.0


@SETTINGS
@given(frames(), component_sets(), st.randoms(use_true_random=False))
def test_row_order_changes_no_score(
    frame: pd.DataFrame, components: list[HealthComponent], rng: object
) -> None:
    order = list(range(len(frame)))
    rng.shuffle(order)  # type: ignore[attr-defined]
    shuffled = frame.iloc[order].reset_index(drop=True)
    first = score_health(frame, components).scores.set_index("account_id")["health_score"]
    second = score_health(shuffled, components).scores.set_index("account_id")["health_score"]
    pd.testing.assert_series_equal(first.sort_index(), second.sort_index())
