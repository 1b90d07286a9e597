"""Folded linear terms equal the design matrix's arithmetic, for any values.

The reference is scikit-learn's: the fitted ColumnTransformer's design,
``coef · (z - mean z)`` summed over each feature's columns, and the fitted
regression's own ``decision_function`` / ``predict`` for the margin.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from churnwatch.models import LinearTarget, LogisticChurn

from ._frames import churn_frame


def _training(n: int = 800) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(7)
    frame = churn_frame(rng, n)
    logit = (frame["events"] - 3) - frame["tenure"] / 200 + (frame["plan"] == "pro")
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame, y.to_numpy()


_FRAME, _Y = _training()
_MODELS = {
    "spline logistic": LogisticChurn(spline_knots=6, min_frequency=20).fit(_FRAME, _Y),
    "plain logistic": LogisticChurn().fit(_FRAME, _Y),
    "ridge": LinearTarget().fit(_FRAME, _FRAME["events"].to_numpy()),
}

_numbers = st.one_of(
    st.none(),
    st.just(math.nan),
    st.floats(-1e5, 1e5, allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, 1.0, 3.0, 250.0]),
)
_plans = st.one_of(st.none(), st.sampled_from(["basic", "pro", "enterprise", "rare", "unseen"]))


@pytest.mark.parametrize("kind", sorted(_MODELS))
@settings(max_examples=80, deadline=None)
@given(tenure=_numbers, events=_numbers, flag=_numbers, spend=_numbers, plan=_plans)
def test_one_row_contributions_equal_the_estimators(
    kind: str,
    tenure: Any,
    events: Any,
    flag: Any,
    spend: Any,
    plan: Any,
) -> None:
    model = _MODELS[kind]
    values = {"tenure": tenure, "events": events, "flag": flag, "plan": plan, "spend": spend}
    frame = pd.DataFrame([values]).astype({"plan": object})
    for name in ("tenure", "events", "flag", "spend"):
        frame[name] = pd.to_numeric(frame[name]).astype(float)
    expected, base, margin = _reference(model, frame)
    terms = model.folded_terms()
    scale = max(1.0, float(np.abs(expected).max()))
    # One row from plain values (the API's path) and from a frame (scoring's).
    np.testing.assert_allclose(terms.row(values), expected[0], rtol=0, atol=1e-9 * scale)
    found, found_base = model.contributions(frame)
    np.testing.assert_allclose(found, expected, rtol=0, atol=1e-9 * scale)
    assert terms.base == pytest.approx(base, abs=1e-12)
    assert found_base[0] == pytest.approx(base, abs=1e-12)
    assert terms.row_margin(values) == pytest.approx(float(margin[0]), abs=1e-8 * scale)


def _reference(model: Any, frame: pd.DataFrame) -> tuple[np.ndarray, float, np.ndarray]:
    """Contributions, base and margin from the design matrix and the fitted regression."""
    design = np.asarray(model.preprocessor_.transform(model._design_frame(frame)), dtype=float)
    coef, intercept = model._linear_terms()
    weighted = (design - model.design_mean_) * coef
    values = np.column_stack([weighted[:, block].sum(axis=1) for block in model._blocks()])
    base = intercept + float(model.design_mean_ @ coef)
    regression = model.model_
    margin = (
        regression.decision_function(design)
        if hasattr(regression, "decision_function")
        else regression.predict(design)
    )
    return values, base, np.asarray(margin, dtype=float)


@pytest.mark.parametrize("kind", sorted(_MODELS))
def test_many_rows_equal_the_design_matrix(kind: str) -> None:
    model = _MODELS[kind]
    rng = np.random.default_rng(3)
    rows, _ = _training(3000)
    # Beyond the training range, below it, and missing.
    rows["tenure"] *= rng.choice([1.0, 3.0, -1.0, 50.0], 3000)
    rows.loc[rng.random(3000) < 0.05, "events"] = np.nan
    expected, base, margin = _reference(model, rows)
    found, found_base = model.contributions(rows)
    np.testing.assert_allclose(found, expected, rtol=0, atol=1e-9)
    np.testing.assert_allclose(found_base, base, atol=1e-12)
    predicted = model.decision_function(rows) if kind != "ridge" else model.predict(rows)
    np.testing.assert_allclose(predicted, margin, rtol=0, atol=1e-8)


def test_the_spline_term_is_a_curve_not_a_line() -> None:
    # Guards the test above: with splines, a feature's contribution bends, so
    # an affine shortcut would be caught by the comparison.
    row = _MODELS["spline logistic"].folded_terms()
    points = [row.row({"tenure": t})[0] for t in (0.0, 100.0, 200.0, 400.0)]
    slopes = np.diff(points) / np.diff([0.0, 100.0, 200.0, 400.0])
    assert np.ptp(slopes) > 1e-6
