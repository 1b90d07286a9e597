"""The design of a few rows, computed from fitted statistics, equals scikit-learn's transform."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnwatch.models import LogisticChurn, MLPChurn
from churnwatch.models._estimator_base import _design_of_few

from ._frames import churn_frame


@pytest.mark.parametrize(
    "make",
    [
        lambda: LogisticChurn(spline_knots=5),
        lambda: LogisticChurn(),
        lambda: MLPChurn(hidden_layer_sizes=(8,), max_iter=50),
    ],
)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_few_rows_design_equals_the_transform(make, seed: int) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    train = churn_frame(rng, 600)
    y = (rng.random(600) < 1 / (1 + np.exp(-(train["events"] - 3)))).astype(int)
    model = make().fit(train, y)
    rows = churn_frame(rng, 7)
    rows.loc[0, "plan"] = "never seen"  # an unseen level
    rows.loc[1, ["tenure", "events"]] = np.nan  # missing where training had none
    rows.loc[2, "tenure"] = 1e6  # far beyond the spline's knots
    frame = model._design_frame(model._columns(rows))
    expected = np.asarray(model.preprocessor_.transform(frame), dtype=float)
    np.testing.assert_allclose(_design_of_few(model.preprocessor_, frame), expected, atol=1e-12)
    # Through the estimator: a few rows and many rows give the same scores.
    many = pd.concat([rows] * 20, ignore_index=True)
    np.testing.assert_allclose(
        model.predict_proba(rows)[:, 1], model.predict_proba(many)[:7, 1], atol=1e-12
    )
