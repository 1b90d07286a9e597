"""A blend of boosted trees and a logistic regression, in log-odds.

Boosted trees find thresholds and interactions; a logistic regression
extrapolates smooth trends the trees can only approximate with steps. On a
small table the two make different mistakes, and a weighted sum of their
log-odds ranks accounts better than either (on Telco, for instance).

The blend stays exactly explainable. Its margin is
``w * trees_margin + (1 - w) * linear_margin``, and SHAP values are linear in
the model: the contribution of a feature to the blend is ``w`` times its
TreeSHAP value plus ``1 - w`` times its (closed-form) linear SHAP value, and
the base values combine the same way, so contributions still add up to the
margin to floating-point precision.

The weight is not a per-dataset knob: :func:`choose_tree_weight` picks it on
out-of-fold scores of both models (the search's own validation folds), and
:func:`~churnwatch.models._train.train_model` keeps the trees alone unless
the blend ranks those folds better.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from churnwatch.errors import ModelError
from churnwatch.models._estimator_base import (
    Floats,
    _binary_target,
    _check_frame,
    _check_number,
    _ClassifierOutputs,
    _FrameEstimator,
)
from churnwatch.models._lightgbm import LightGBMChurn
from churnwatch.models._linear import LogisticChurn

__all__ = ["TREE_WEIGHTS", "BlendChurn", "choose_tree_weight"]

#: Weights of the trees that :func:`choose_tree_weight` tries, trees alone first.
#: Steps of 0.1: finer steps would fit the noise of a few thousand validation rows.
TREE_WEIGHTS: tuple[float, ...] = tuple(round(1.0 - 0.1 * i, 1) for i in range(11))

#: Rows per block when applying the parts: the regression's design matrix (a
#: spline basis per number) of a million accounts would take gigabytes at once.
_BLOCK_ROWS = 65_536


class BlendChurn(_ClassifierOutputs, _FrameEstimator):
    """Weighted sum of a LightGBM model's and a logistic regression's log-odds.

    Parameters
    ----------
    trees : LightGBMChurn, optional
        The boosted trees (unfitted; a clone is fitted). Default
        ``LightGBMChurn()``.
    linear : LogisticChurn, optional
        The logistic regression (unfitted; a clone is fitted). Default
        ``LogisticChurn()``.
    tree_weight : float, default=0.7
        Weight ``w`` of the trees' log-odds; the logistic regression gets
        ``1 - w``. At 1 (or 0) only the trees (or the regression) are fitted
        and applied.

    Attributes
    ----------
    trees_, linear_ : fitted estimators or None
        The fitted parts; ``None`` for a part whose weight is 0.
    classes_ : ndarray of shape (2,)
        The labels; ``classes_[1]`` is the positive (churn) class.
    feature_names_in_ : ndarray of str
        The feature columns, in order.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"logins": rng.poisson(5, 400).astype(float),
    ...                   "plan": rng.choice(["basic", "pro"], 400)})
    >>> y = (X["logins"] + rng.normal(0, 2, 400) < 4).astype(int)
    >>> model = BlendChurn(LightGBMChurn(n_estimators=50, n_jobs=1), tree_weight=0.6).fit(X, y)
    >>> model.predict_proba(X).shape
    (400, 2)
    >>> contrib, base = model.contributions(X.head(3))
    >>> bool(np.allclose(base + contrib.sum(axis=1), model.decision_function(X.head(3))))
    True
    """

    def __init__(
        self,
        trees: LightGBMChurn | None = None,
        linear: LogisticChurn | None = None,
        *,
        tree_weight: float = 0.7,
    ) -> None:
        self.trees = trees
        self.linear = linear
        self.tree_weight = tree_weight

    def fit(self, X: pd.DataFrame, y: Any) -> BlendChurn:
        """Fit both parts on the feature frame ``X`` and two-class labels ``y``; returns self."""
        _check_number("tree_weight", self.tree_weight, 0, 1)
        for name, part, kind in (
            ("trees", self.trees, LightGBMChurn),
            ("linear", self.linear, LogisticChurn),
        ):
            if part is not None and not isinstance(part, kind):
                raise ModelError(f"{name} must be a {kind.__name__}, got {type(part).__name__}")
        X = _check_frame(X, "X")
        weight = float(self.tree_weight)
        self.trees_: LightGBMChurn | None = None
        self.linear_: LogisticChurn | None = None
        # A part of weight 0 would cost a fit, and every later prediction, for nothing.
        if weight > 0:
            self.trees_ = clone(self.trees if self.trees is not None else LightGBMChurn()).fit(X, y)
        if weight < 1:
            self.linear_ = clone(self.linear if self.linear is not None else LogisticChurn()).fit(
                X, y
            )
        self.classes_, _ = _binary_target(y, len(X))
        self._remember_columns(X)
        return self

    def _parts(self) -> list[tuple[float, Any]]:
        weight = float(self.tree_weight)
        return [
            (share, part)
            for share, part in ((weight, self.trees_), (1.0 - weight, self.linear_))
            if part is not None
        ]

    def _margin(self, X: pd.DataFrame) -> Floats:
        columns = self._columns(X)  # checks fitted first
        margin = np.zeros(len(columns), dtype=np.float64)
        for start in range(0, len(columns), _BLOCK_ROWS):
            rows = slice(start, start + _BLOCK_ROWS)
            for share, part in self._parts():
                margin[rows] += share * part.decision_function(columns.iloc[rows])
        return margin

    def contributions(self, X: pd.DataFrame) -> tuple[Floats, Floats]:
        """Exact SHAP values of the blend per original feature, and the base value.

        Each part's exact SHAP values (TreeSHAP, linear SHAP) weighted by its
        share; ``base + contributions.sum(axis=1)`` equals the blend's
        log-odds.
        """
        columns = self._columns(X)
        values = np.zeros((len(columns), self.n_features_in_), dtype=np.float64)
        base = np.zeros(len(columns), dtype=np.float64)
        for start in range(0, len(columns), _BLOCK_ROWS):
            rows = slice(start, start + _BLOCK_ROWS)
            for share, part in self._parts():
                part_values, part_base = part.contributions(columns.iloc[rows])
                values[rows] += share * part_values
                base[rows] += share * part_base
        return values, base

    @property
    def feature_importances_(self) -> Floats:
        """Total gain of the trees' splits on each feature, or zeros without trees."""
        if self.trees_ is None:
            return np.zeros(self.n_features_in_, dtype=np.float64)
        return self.trees_.feature_importances_


_TIE = 1e-12


def choose_tree_weight(
    y: Any,
    trees: Floats,
    linear: Floats,
    folds: Sequence[npt.NDArray[np.intp]],
    *,
    weights: Sequence[float] = TREE_WEIGHTS,
) -> tuple[float, float]:
    """The tree weight whose blend ranks held-out rows best, and its score.

    Parameters
    ----------
    y : array-like of shape (n_rows,)
        0/1 outcomes.
    trees, linear : ndarray of shape (n_rows,)
        Out-of-fold log-odds of each model (NaN for rows no fold held out).
    folds : sequence of index arrays
        The held-out rows of each validation fold. The score of a weight is
        the mean ROC AUC over the folds, as in the hyperparameter search;
        folds holding one class are not scored.
    weights : sequence of float
        Candidate tree weights in [0, 1]; on a tie the earlier wins, so list
        the cheapest model (the trees alone) first.

    Returns
    -------
    (weight, score)
        The best weight and its mean validation ROC AUC.

    Raises
    ------
    ModelError
        If no fold holds both classes.

    Examples
    --------
    >>> y = np.array([0, 0, 1, 1, 0, 1])
    >>> trees = np.array([0.1, 0.9, 0.8, 0.7, 0.2, 0.95])
    >>> linear = np.array([0.1, 0.2, 0.8, 0.7, 0.3, 0.9])
    >>> choose_tree_weight(y, trees, linear, [np.arange(6)], weights=(1.0, 0.5, 0.0))
    (0.5, 1.0)
    """
    outcomes = np.asarray(y, dtype=np.float64)
    scored = [fold for fold in folds if np.unique(outcomes[fold]).size == 2]
    if not scored:
        raise ModelError("no validation fold holds both classes: a blend weight cannot be chosen")
    best_weight, best_score = math.nan, -math.inf
    for weight in weights:
        _check_number("tree weight", weight, 0, 1)
        margin = weight * trees + (1.0 - weight) * linear
        score = float(np.mean([roc_auc_score(outcomes[fold], margin[fold]) for fold in scored]))
        # Scores within rounding of each other are a tie (a mean of AUCs can
        # differ in its last bits for equal rankings): the earlier weight wins.
        if score > best_score + _TIE:
            best_weight, best_score = float(weight), score
    return best_weight, best_score
