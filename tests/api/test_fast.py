"""The one-row scoring path gives what the model's own frame path gives, for every account."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from churnwatch.api._fast import fast_model
from churnwatch.api._lookup import FeatureRows, RowIndex
from churnwatch.api._scorer import _scalar_frame
from churnwatch.models import BlendChurn, LightGBMChurn, LogisticChurn, TrainedModel
from churnwatch.views import ReadModel

from ._business import TARGET, Business


def _check_every_account(model: TrainedModel, business: Business, tolerance: float) -> None:
    """Both paths give the same probability and reasons for every account."""
    fast = fast_model(model)
    assert fast is not None
    text = {name for name, spec in model.specs.items() if spec.dtype == "string"}
    assert text, "the model should read a text feature (the plan), to test categories"
    table = ReadModel(business.views_root).table("features")
    # The reference path reads Arrow rows (None for missing); the fast one the
    # API's float matrix (NaN for missing).
    arrow_rows, matrix_rows = RowIndex(table), FeatureRows(table)
    rows = [arrow_rows.first(account) for account in business.account_ids]
    checked = 0
    for row in rows:
        if row is None:
            continue
        frame = _scalar_frame(row, model.features, text)
        expected = float(model.predict(frame)[0])
        fast_row = matrix_rows.first(row["account_id"])
        assert fast_row is not None
        assert fast.predict(fast_row) == pytest.approx(expected, abs=tolerance)
        wanted = [reason.text for reason in model.reasons(frame, k=3)[0]]
        assert fast.reasons(fast_row, 3) == wanted
        assert fast.reasons(row, 3) == wanted
        checked += 1
    assert checked > 100
    # An unseen plan is "missing" on both paths, not an error.
    odd = {**next(r for r in rows if r is not None), "current_plan": "never-seen"}
    frame = _scalar_frame(odd, model.features, text)
    assert fast.predict(odd) == pytest.approx(float(model.predict(frame)[0]), abs=tolerance)


def test_fast_path_matches_the_model_on_every_account(business: Business) -> None:
    _check_every_account(business.registry.load(TARGET).model, business, 1e-12)


def test_fast_path_of_a_blend_matches_the_model_on_every_account(business: Business) -> None:
    # The promoted model is trees alone; the same features through a blend of
    # trees and a spline logistic regression (what the default pipeline
    # trains when the blend ranks better), fitted here on the model's own
    # high-risk flag: the paths must agree whatever the labels.
    found = business.registry.load(TARGET).model
    table = ReadModel(business.views_root).table("features").to_pandas()
    frame = table.loc[:, list(found.features)]
    risky = found.predict(frame) > np.median(found.predict(frame))
    blend = BlendChurn(
        LightGBMChurn(n_estimators=40, n_jobs=1),
        LogisticChurn(spline_knots=5),
        tree_weight=0.6,
    ).fit(frame, risky.astype(int))
    assert blend.linear_ is not None
    assert any(name.startswith("s") for name, _, _ in blend.linear_.preprocessor_.transformers_)
    model = dataclasses.replace(found, estimator=blend)
    # The regression's part is folded into per-feature curves: equal to the
    # library's to rounding, not to the last bit.
    _check_every_account(model, business, 1e-9)
