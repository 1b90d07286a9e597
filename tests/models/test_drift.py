"""Population stability index: golden values by hand, bins, and invariants."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from churnwatch.errors import ConfigError, ModelError
from churnwatch.models._drift import (
    OTHER,
    PSI_EPSILON,
    DriftProfile,
    drift_status,
    psi,
    stability_index,
)


def _one(profile: DriftProfile, frame: pd.DataFrame) -> float:
    return float(psi(profile, frame)["psi"].iloc[0])


def test_two_bin_psi_matches_the_hand_computation() -> None:
    # Median 1.5 splits the training rows 50/50; the new rows are 75/25, no
    # row is missing in either (the missing bin adds (e - e) * ln 1 = 0):
    # PSI = 0.25 ln(0.75 / 0.5) + (-0.25) ln(0.25 / 0.5) = 0.25 ln 3.
    profile = DriftProfile.fit(pd.DataFrame({"logins": [1, 1, 2, 2]}), ["logins"], bins=2)
    assert profile.features[0].edges == (1.5,)
    table = psi(profile, pd.DataFrame({"logins": [1, 1, 1, 2]}))
    assert table.columns.tolist() == ["feature", "psi", "status"]
    assert table["psi"].iloc[0] == pytest.approx(0.25 * math.log(3), abs=1e-12)
    assert table["status"].iloc[0] == "drift"


def test_unseen_category_goes_to_other_and_empty_bins_use_epsilon() -> None:
    train = pd.DataFrame({"plan": ["basic"] * 5 + ["pro"] * 5})
    profile = DriftProfile.fit(train, ["plan"])
    assert profile.features[0].labels == ["basic", "pro", OTHER, "missing"]
    # "team" was never seen: it lands in "other". "pro" empties, "other" fills:
    # (eps - 0.5) ln(eps / 0.5) + (0.5 - eps) ln(0.5 / eps) = 2 (0.5 - eps) ln(0.5 / eps).
    new = pd.DataFrame({"plan": ["basic"] * 5 + ["team"] * 5})
    expected = 2 * (0.5 - PSI_EPSILON) * math.log(0.5 / PSI_EPSILON)
    assert _one(profile, new) == pytest.approx(expected, rel=1e-12)


def test_rare_training_categories_are_folded_into_other() -> None:
    train = pd.DataFrame({"region": ["eu"] * 60 + ["us"] * 38 + ["mars", "moon"]})
    profile = DriftProfile.fit(train, ["region"], min_share=0.05)
    feature = profile.features[0]
    assert feature.categories == ("eu", "us")
    assert feature.shares == pytest.approx((0.60, 0.38, 0.02, 0.0))
    # A new rare planet is no drift: it shares the "other" bin with the old ones.
    new = pd.DataFrame({"region": ["eu"] * 60 + ["us"] * 38 + ["venus", "mars"]})
    assert _one(profile, new) == 0.0


def test_missing_values_have_their_own_bin() -> None:
    train = pd.DataFrame({"mrr": np.arange(100, dtype=float)})
    profile = DriftProfile.fit(train, ["mrr"], bins=4)
    broken = train.assign(mrr=np.where(np.arange(100) < 30, np.nan, train["mrr"]))
    shares = profile.features[0].shares_of(broken["mrr"])
    assert shares[-1] == pytest.approx(0.3)
    assert psi(profile, broken)["status"].iloc[0] == "drift"


def test_tied_quantiles_give_unique_edges_and_closed_right_bins() -> None:
    # 70% zeros: five of the nine deciles are 0, which must become one edge.
    values = np.array([0] * 70 + list(range(1, 31)), dtype=float)
    profile = DriftProfile.fit(pd.DataFrame({"tickets": values}), ["tickets"])
    edges = profile.features[0].edges
    assert len(edges) == len(set(edges))
    assert edges[0] == 0.0
    # (-inf, 0] holds every zero.
    assert profile.features[0].shares[0] == pytest.approx(0.7)


def test_outer_bins_reach_infinity() -> None:
    profile = DriftProfile.fit(pd.DataFrame({"x": np.arange(100.0)}), ["x"], bins=4)
    shares = profile.features[0].shares_of(pd.Series([-1e9, -np.inf, 1e9, np.inf]))
    assert shares.tolist() == [0.5, 0.0, 0.0, 0.5, 0.0]
    assert profile.features[0].labels[0].startswith("(-inf, ")
    assert profile.features[0].labels[-2].endswith(", inf)")


def test_profile_survives_json() -> None:
    train = pd.DataFrame(
        {
            "logins": [0, 1, 2, 3, 4, np.nan],
            "plan": pd.Series(["a", "b", "a", None, "c", "a"], dtype="str"),
        }
    )
    profile = DriftProfile.fit(train, ["logins", "plan"], bins=3)
    again = DriftProfile.from_dict(json.loads(json.dumps(profile.to_dict())))
    assert again == profile
    new = train.iloc[:3]
    pd.testing.assert_frame_equal(psi(again, new), psi(profile, new))


def test_statuses_follow_the_convention() -> None:
    assert [drift_status(v) for v in (0.0, 0.0999, 0.1, 0.25, 0.2501)] == [
        "ok",
        "ok",
        "watch",
        "watch",
        "drift",
    ]


def test_errors_name_the_problem() -> None:
    train = pd.DataFrame({"logins": [1.0, 2.0, 3.0]})
    profile = DriftProfile.fit(train, ["logins"])
    with pytest.raises(ModelError, match=r"lacks feature.*logins"):
        psi(profile, pd.DataFrame({"other": [1]}))
    with pytest.raises(ModelError, match="no rows"):
        psi(profile, train.iloc[:0])
    with pytest.raises(ModelError, match="numeric in training but holds text"):
        psi(profile, pd.DataFrame({"logins": ["many", "few"]}))
    with pytest.raises(ConfigError, match="bins"):
        DriftProfile.fit(train, ["logins"], bins=1)
    with pytest.raises(ModelError, match="damaged"):
        DriftProfile.from_dict(
            {
                "bins": 2,
                "min_share": 0.01,
                "features": [{"feature": "x", "kind": "numeric", "shares": [1.0], "edges": [0.5]}],
            }
        )
    with pytest.raises(ModelError, match="same bins"):
        stability_index([0.5, 0.5], [1.0])


_numbers = st.lists(
    st.one_of(st.floats(-1e6, 1e6), st.just(math.nan), st.integers(-5, 5).map(float)),
    min_size=1,
    max_size=60,
)
_words = st.lists(st.one_of(st.sampled_from("abcde"), st.none()), min_size=1, max_size=60)


@settings(max_examples=60, deadline=None)
@given(numbers=_numbers, bins=st.integers(2, 12))
def test_psi_of_a_numeric_sample_against_itself_is_zero(numbers: list[float], bins: int) -> None:
    frame = pd.DataFrame({"x": numbers})
    assert _one(DriftProfile.fit(frame, ["x"], bins=bins), frame) == 0.0


@settings(max_examples=60, deadline=None)
@given(words=_words, min_share=st.floats(0, 0.5))
def test_psi_of_a_text_sample_against_itself_is_zero(
    words: list[str | None], min_share: float
) -> None:
    frame = pd.DataFrame({"plan": pd.Series(words, dtype="str")})
    assert _one(DriftProfile.fit(frame, ["plan"], min_share=min_share), frame) == 0.0


@settings(max_examples=60, deadline=None)
@given(train=_numbers, new=_numbers, words=_words, new_words=_words)
def test_psi_is_never_negative(
    train: list[float], new: list[float], words: list[str | None], new_words: list[str | None]
) -> None:
    profile = DriftProfile.fit(
        pd.DataFrame({"x": train, "plan": pd.Series((words * 60)[: len(train)], dtype="str")}),
        ["x", "plan"],
    )
    table = psi(
        profile,
        pd.DataFrame({"x": new, "plan": pd.Series((new_words * 60)[: len(new)], dtype="str")}),
    )
    assert (table["psi"] >= 0).all()
    assert np.isfinite(table["psi"]).all()


@settings(max_examples=30, deadline=None)
@given(numbers=_numbers, words=_words, seed=st.integers(0, 2**16))
def test_profile_does_not_depend_on_row_order(
    numbers: list[float], words: list[str | None], seed: int
) -> None:
    frame = pd.DataFrame(
        {"x": numbers, "plan": pd.Series((words * 60)[: len(numbers)], dtype="str")}
    )
    shuffled = frame.sample(frac=1.0, random_state=seed)
    assert DriftProfile.fit(shuffled, ["x", "plan"]) == DriftProfile.fit(frame, ["x", "plan"])
