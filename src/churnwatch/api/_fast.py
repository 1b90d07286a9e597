"""One row through a LightGBM churn model without pandas: the API's scoring hot path.

:meth:`TrainedModel.predict` is built for frames of a million rows; for
one row, its pandas steps (column selection, the categorical frame
LightGBM's pandas path needs, sklearn's checks in the calibrator) cost
about twenty times the trees themselves. :class:`FastChurnModel` does the
same arithmetic on one NumPy row:

- numeric features as float64 (missing as NaN); a categorical feature as
  the index of its level among the levels fixed at fit (an unseen level is
  NaN, LightGBM's missing), which is what the pandas path hands LightGBM;
- the booster's raw margin at the best iteration on one thread, the
  logistic function, then the model's own calibrator;
- TreeSHAP contributions from the booster, the strongest positive ones
  chosen as :func:`churnwatch.explain.top_reasons` chooses them, and each
  worded by it once per (feature, value) and remembered.

A blend of the trees with a logistic regression (what the default
pipeline trains when it ranks better) adds the regression's part from
:class:`~churnwatch.models._linear_row.LinearTerms`: each feature's linear
SHAP value as a function of its value alone, folded from the fitted steps
when the model loads. The blend's margin and contributions are the two
parts' weighted sums, as in :class:`~churnwatch.models.BlendChurn`.

Only these binary models (LightGBM, and its blend) have this path; others
go through :meth:`TrainedModel.predict`. The API's tests check that both
paths give the same probability and reasons for every account.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit

from churnwatch.explain import top_reasons
from churnwatch.models import BlendChurn, LightGBMChurn, TrainedModel
from churnwatch.models._linear_row import LinearTerms

__all__ = ["FastChurnModel", "fast_model"]

#: Reason texts remembered per model (feature and value): a few MB at most.
_MAX_PHRASES = 100_000


class FastChurnModel:
    """A fitted LightGBM churn model, or its blend, applied to one row at a time.

    Parameters
    ----------
    model : TrainedModel
        Its estimator must be a fitted :class:`LightGBMChurn`, or a fitted
        :class:`BlendChurn`.
    """

    def __init__(self, model: TrainedModel) -> None:
        estimator = model.estimator
        self.model = model
        self.names: list[str] = [str(name) for name in estimator.feature_names_in_]
        trees: LightGBMChurn | None = estimator
        #: Weights of the trees and of the regression in the margin.
        self.tree_weight, self.linear_weight = 1.0, 0.0
        self.linear: LinearTerms | None = None
        if isinstance(estimator, BlendChurn):
            trees = estimator.trees_
            if estimator.linear_ is not None:
                self.linear = estimator.linear_.folded_terms()
                assert self.linear.names == self.names
            self.tree_weight = float(estimator.tree_weight) if trees is not None else 0.0
            self.linear_weight = 1.0 - self.tree_weight
        assert trees is None or isinstance(trees, LightGBMChurn)
        self.booster = None if trees is None else trees.booster_
        self.iteration = 0 if trees is None else int(trees.best_iteration_)
        self.levels: dict[str, dict[Any, int]] = {
            name: {level: code for code, level in enumerate(levels)}
            for name, levels in (trees.categories_.items() if trees is not None else ())
        }
        # Text features of the regression (the trees' are the keys of levels).
        self.text = set(self.levels)
        if self.linear is not None:
            self.text |= {
                name
                for name, categorical in zip(
                    self.names, estimator.linear_.categorical_, strict=True
                )
                if categorical
            }
        self.calibrator = model.calibrator
        self._phrases: dict[tuple[str, Any], str] = {}

    def row(self, values: Mapping[str, Any]) -> np.ndarray:
        """The model's input row (1 x features) for a mapping of feature values."""
        out = np.empty((1, len(self.names)), dtype=np.float64)
        for i, name in enumerate(self.names):
            value = values.get(name)
            levels = self.levels.get(name)
            if levels is not None:
                code = levels.get(value) if value is not None else None
                out[0, i] = np.nan if code is None else float(code)
            else:
                out[0, i] = np.nan if value is None else float(value)
        return out

    def _calibrate(self, p: float) -> float:
        if self.calibrator is None:
            return p
        return float(self.calibrator.transform(np.array([p]))[0])

    def predict(self, values: Mapping[str, Any]) -> float:
        """Calibrated P(churn) of one account."""
        margin = 0.0
        if self.booster is not None:
            trees = self.booster.predict(
                self.row(values), num_iteration=self.iteration, raw_score=True, num_threads=1
            )
            margin += self.tree_weight * float(trees[0])
        if self.linear is not None:
            margin += self.linear_weight * self.linear.row_margin(values)
        # expit, as the estimators' predict_proba: no overflow at extreme margins.
        return self._calibrate(float(expit(margin)))

    def contributions(self, values: Mapping[str, Any]) -> np.ndarray:
        """Each feature's contribution to the account's log-odds (exact SHAP values)."""
        contributions = np.zeros(len(self.names), dtype=np.float64)
        if self.booster is not None:
            trees = np.asarray(
                self.booster.predict(
                    self.row(values), num_iteration=self.iteration, pred_contrib=True, num_threads=1
                ),
                dtype=float,
            )[0, :-1]
            contributions += self.tree_weight * trees
        if self.linear is not None:
            contributions += self.linear_weight * self.linear.row(values)
        return contributions

    def reasons(self, values: Mapping[str, Any], k: int) -> list[str]:
        """The ``k`` features raising this account's risk most, in words."""
        contributions = self.contributions(values)
        # As top_reasons orders them: the largest positive contribution first,
        # equal ones by feature name.
        positive = np.flatnonzero(contributions > 0)
        chosen = sorted(positive.tolist(), key=lambda i: (-contributions[i], self.names[i]))
        return [self._phrase(self.names[i], values.get(self.names[i])) for i in chosen[:k]]

    def _phrase(self, name: str, value: Any) -> str:
        """A feature's value in words, worded by top_reasons once and remembered.

        The words depend on the feature and its value only (and the model's
        references and specs), so a value seen before costs a dictionary hit.
        """
        if isinstance(value, float) and math.isnan(value):
            value = None
        key = (name, value)
        text = self._phrases.get(key)
        if text is None:
            categorical = name in self.text
            column = np.array([value], dtype=object if categorical or value is None else np.float64)
            if value is None and not categorical:
                column = np.array([np.nan])
            found = top_reasons(
                np.ones((1, 1)),
                pd.DataFrame({name: column}),
                [name],
                self.model.references,
                self.model.specs,
                k=1,
            )
            text = found[0][0].text
            if len(self._phrases) >= _MAX_PHRASES:
                self._phrases.clear()
            self._phrases[key] = text
        return text


def fast_model(model: TrainedModel) -> FastChurnModel | None:
    """The one-row path of ``model``, or None when its kind has none."""
    if not isinstance(model.estimator, LightGBMChurn | BlendChurn) or model.task != "binary":
        return None
    return FastChurnModel(model)
