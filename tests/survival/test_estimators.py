"""Kaplan-Meier, Cox and time to churn: contracts, edge cases and clear errors.

References are lifelines run in the test on the same numbers (unweighted, raw
rows) or hand-computed values.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lifelines import KaplanMeierFitter
from lifelines.statistics import multivariate_logrank_test

import churnwatch.survival as survival
from churnwatch.errors import AnalysisError
from churnwatch.survival import (
    conditional_median_remaining,
    fit_cox,
    hazard_ratio_figure,
    kaplan_meier,
    survival_figure,
)

RNG_SEED = 7


def test_public_names_are_pinned() -> None:
    assert set(survival.__all__) == {
        "BEHAVIOUR_COVARIATES",
        "Basis",
        "CoxResult",
        "Durations",
        "LogRankResult",
        "SurvivalAnalysis",
        "SurvivalCurves",
        "TimeToChurn",
        "activity_durations",
        "analyze_survival",
        "conditional_median_remaining",
        "cox_on_features",
        "cox_time_to_churn",
        "derive_durations",
        "fit_cox",
        "hazard_ratio_figure",
        "kaplan_meier",
        "landmark_frame",
        "predicted_days_to_churn",
        "snapshot_durations",
        "subscription_durations",
        "survival_figure",
        "time_to_churn",
        "with_attribute",
    }
    for name in survival.__all__:
        assert getattr(survival, name) is not None


durations_lists = st.lists(
    st.tuples(st.integers(0, 30), st.booleans(), st.sampled_from("xyz")), min_size=2, max_size=40
).filter(lambda rows: any(event for _, event, _ in rows))


@settings(max_examples=40, deadline=None, derandomize=True)
@given(rows=durations_lists, data=st.data())
def test_collapsing_rows_changes_nothing_and_row_order_changes_nothing(
    rows: list[tuple[int, bool, str]], data: st.DataObject
) -> None:
    """Counting tied rows into weights gives lifelines' unweighted curve, in any order."""
    frame = pd.DataFrame(rows, columns=["d", "e", "g"])
    curves = kaplan_meier(frame["d"], frame["e"])
    reference = KaplanMeierFitter().fit(frame["d"], frame["e"])
    np.testing.assert_allclose(
        curves.survival["survival"], reference.survival_function_.iloc[:, 0], rtol=0, atol=1e-12
    )
    shuffled = frame.sample(frac=1.0, random_state=data.draw(st.integers(0, 1000)))
    again = kaplan_meier(shuffled["d"], shuffled["e"], groups=shuffled["g"])
    first = kaplan_meier(frame["d"], frame["e"], groups=frame["g"])
    pd.testing.assert_frame_equal(first.survival, again.survival)
    pd.testing.assert_frame_equal(first.medians, again.medians)
    if frame["g"].nunique() > 1:
        assert first.logrank is not None
        assert again.logrank is not None
        reference_test = multivariate_logrank_test(frame["d"], frame["g"], frame["e"])
        np.testing.assert_allclose(first.logrank.p_value, reference_test.p_value, atol=1e-12)
        np.testing.assert_allclose(again.logrank.p_value, first.logrank.p_value, atol=1e-12)


def test_median_never_reached_is_more_than_n_days_not_a_number() -> None:
    curves = kaplan_meier([10, 20, 30, 40], [1, 0, 0, 0], retention_days=(7, 30, 90))
    row = curves.medians.iloc[0]
    assert not row["median_reached"]
    assert np.isnan(row["median_days"])
    assert row["followed_days"] == 40
    assert curves.median_text() == "more than 40 days (the curve stays above 0.5)"
    retention = curves.retention.set_index("day")["retention"]
    assert retention[7] == 1.0
    assert retention[30] == pytest.approx(0.75)
    assert np.isnan(retention[90])  # past the longest duration: not estimated


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"durations": [1, -2], "event_observed": [1, 1]}, "1 durations are negative"),
        ({"durations": [1, 2], "event_observed": [0, 0]}, "no churn was observed"),
        ({"durations": [], "event_observed": []}, "no accounts"),
        ({"durations": [1, 2], "event_observed": [1]}, "must have one value per account"),
        ({"durations": [1, np.nan], "event_observed": [1, 1]}, "durations holds missing"),
        ({"durations": [1, 2], "event_observed": [1, 2]}, "0 \\(censored\\) or 1"),
        ({"durations": [1, 2], "event_observed": [1, 1], "weights": [1, 0]}, "positive"),
        ({"durations": [1, 2], "event_observed": [1, 1], "alpha": 1.5}, "alpha"),
    ],
)
def test_bad_input_is_a_clear_error(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(AnalysisError, match=message):
        kaplan_meier(**kwargs)  # type: ignore[arg-type]


def test_conditional_median_equals_lifelines_at_every_time() -> None:
    rng = np.random.default_rng(RNG_SEED)
    days = np.floor(rng.exponential(60, 500))
    events = rng.random(500) < 0.6
    fitter = KaplanMeierFitter().fit(days, events)
    reference = fitter.conditional_time_to_event_.iloc[:, 0]
    remaining, reached, more_than = conditional_median_remaining(fitter, reference.index)
    expected = reference.to_numpy()
    assert (reached == np.isfinite(expected)).all()
    np.testing.assert_allclose(remaining[reached], expected[reached], rtol=0, atol=1e-9)
    # Where lifelines says inf, the remaining life is longer than what the data covers.
    assert np.isnan(remaining[~reached]).all()
    np.testing.assert_allclose(more_than[~reached], days.max() - reference.index[~reached])
    # Between time points the curve is flat: the same S(t), so t + remaining is the same.
    mid = reference.index[:-1] + 0.5
    remaining_mid, reached_mid, _ = conditional_median_remaining(fitter, mid)
    ok = reached_mid & reached[:-1]
    np.testing.assert_allclose(
        (mid + remaining_mid)[ok], (reference.index[:-1] + expected[:-1])[ok], atol=1e-9
    )


def test_figures_carry_bands_and_the_log_rank_p_value() -> None:
    curves = kaplan_meier(
        [3, 5, 8, 9, 4, 9, 12, 15], [1, 1, 0, 1, 1, 0, 1, 0], groups=list("aaaabbbb"), by="plan"
    )
    assert curves.logrank is not None
    figure = survival_figure(curves)
    assert f"{curves.logrank.p_value:.3g}" in figure.layout.title.text
    bands = [trace for trace in figure.data if trace.fill == "toself"]
    assert len(bands) == 2
    lines = [trace for trace in figure.data if trace.fill != "toself"]
    assert [trace.name for trace in lines] == ["a", "b"]
    group_a = curves.survival.loc[curves.survival["group"] == "a"]
    assert list(lines[0].y) == group_a["survival"].tolist()


def cox_frame(n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(RNG_SEED)
    usage = rng.normal(size=n)
    days = rng.exponential(100 * np.exp(0.8 * usage))
    return pd.DataFrame(
        {
            "account_id": [f"a{i}" for i in range(n)],
            "duration_days": np.minimum(days, 200),
            "event_observed": (days < 200).astype(int),
            "usage": usage,
            "usage_twice": usage * 2 + 1e-12 * rng.normal(size=n),
            "constant": 1.0,
            "mostly_missing": np.where(rng.random(n) < 0.8, np.nan, 1.0),
            "some_missing": np.where(rng.random(n) < 0.1, np.nan, rng.normal(size=n)),
        }
    )


def test_cox_prepares_covariates_and_says_what_it_did() -> None:
    frame = cox_frame()
    result = fit_cox(frame)
    assert result.summary["covariate"].tolist() == ["usage", "some_missing"]
    notes = "\n".join(result.notes)
    share = frame["some_missing"].isna().mean()
    median = frame["some_missing"].median()
    assert (
        f"mostly_missing: dropped, missing for {frame['mostly_missing'].isna().mean():.0%}" in notes
    )
    assert f"some_missing: {share:.1%} missing, filled with the median {median:g}" in notes
    assert "constant: dropped, the same value for every account" in notes
    assert "usage_twice: dropped, |correlation| 1.000 with usage" in notes
    hazard = result.summary.set_index("covariate").loc["usage", "hazard_ratio"]
    assert hazard < 0.6  # one SD more usage: a much lower hazard, as simulated
    assert set(result.ph_test["covariate"]) == {"usage", "some_missing"}
    figure = hazard_ratio_figure(result)
    assert (
        list(figure.data[0].y) == result.summary.sort_values("hazard_ratio")["covariate"].tolist()
    )


def test_cox_errors_name_the_problem() -> None:
    frame = cox_frame()
    with pytest.raises(AnalysisError, match="unknown covariate\\(s\\) colour"):
        fit_cox(frame, covariates=["usage", "colour"])
    with pytest.raises(AnalysisError, match="no usable covariate"):
        fit_cox(frame, covariates=["constant"])
    with pytest.raises(AnalysisError, match="no churn was observed"):
        fit_cox(frame.assign(event_observed=0), covariates=["usage"])
    with pytest.raises(AnalysisError, match="no column 'tenure'"):
        fit_cox(frame, duration_col="tenure")
