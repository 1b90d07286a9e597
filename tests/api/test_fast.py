"""The one-row scoring path gives what the model's own frame path gives, for every account."""

from __future__ import annotations

import pytest

from churnwatch.api._fast import fast_model
from churnwatch.api._lookup import FeatureRows, RowIndex
from churnwatch.api._scorer import _scalar_frame
from churnwatch.features import FeatureSpec
from churnwatch.views import ReadModel

from ._business import TARGET, Business


def test_fast_path_matches_the_model_on_every_account(business: Business) -> None:
    found = business.registry.load(TARGET)
    fast = fast_model(found.model)
    assert fast is not None
    specs = [FeatureSpec.from_dict(spec) for spec in found.card.feature_specs or []]
    text = {spec.name for spec in specs if spec.dtype == "string"}
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
        frame = _scalar_frame(row, found.model.features, text)
        expected = float(found.model.predict(frame)[0])
        fast_row = matrix_rows.first(row["account_id"])
        assert fast_row is not None
        assert fast.predict(fast_row) == pytest.approx(expected, abs=1e-12)
        wanted = [reason.text for reason in found.model.reasons(frame, k=3)[0]]
        assert fast.reasons(fast_row, 3) == wanted
        assert fast.reasons(row, 3) == wanted
        checked += 1
    assert checked > 100
    # An unseen plan is "missing" on both paths, not an error.
    odd = {**next(r for r in rows if r is not None), "current_plan": "never-seen"}
    frame = _scalar_frame(odd, found.model.features, text)
    assert fast.predict(odd) == pytest.approx(float(found.model.predict(frame)[0]), abs=1e-12)
