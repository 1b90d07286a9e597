"""Small neural networks (scikit-learn MLP) explained by occlusion."""

from __future__ import annotations

import warnings
from typing import Any, get_args

import numpy as np
import pandas as pd
from sklearn.base import RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier, MLPRegressor

from churnwatch.models._estimator_base import (
    Floats,
    Imbalance,
    _binary_target,
    _check_choice,
    _check_frame,
    _check_number,
    _ClassifierOutputs,
    _DesignEstimator,
    _regression_target,
)


class _OcclusionExplained(_DesignEstimator):
    """Contributions by occlusion: margin minus margin with the feature at its reference."""

    def _design_margin(self, design: Floats) -> Floats:
        raise NotImplementedError  # pragma: no cover

    def _fit_network(self, network: Any, design: Floats, target: Floats) -> Any:
        # Early stopping ends most fits; when max_iter comes first scikit-learn warns.
        # Record it in converged_ rather than let a warning escape every fit.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            network.fit(design, target)
        self.converged_ = not any(issubclass(item.category, ConvergenceWarning) for item in caught)
        for item in caught:
            if not issubclass(item.category, ConvergenceWarning):
                warnings.warn_explicit(item.message, item.category, item.filename, item.lineno)
        return network

    def contributions(self, X: pd.DataFrame) -> tuple[Floats, Floats]:
        """Occlusion contributions per original feature, and the base value.

        A feature's contribution is the margin of the row minus the margin of
        the same row with that feature set to its training reference
        (``references_``: median, or most frequent level). These are NOT SHAP
        values: interactions are counted once per feature involved, so the
        row sums differ from the margin; ``base`` is defined as
        ``margin - contributions.sum(axis=1)`` so that the sum still holds.
        """
        design = self._design(X)
        reference_row = pd.DataFrame({name: [value] for name, value in self.references_.items()})
        reference = self._design(reference_row)[0]
        margin = self._design_margin(design)
        values = np.empty((len(design), self.n_features_in_), dtype=np.float64)
        for j, block in enumerate(self._blocks()):
            occluded = design.copy()
            occluded[:, block] = reference[block]
            values[:, j] = margin - self._design_margin(occluded)
        return values, margin - values.sum(axis=1)


class MLPChurn(_ClassifierOutputs, _OcclusionExplained):
    """A small neural network classifier (scikit-learn MLP) with early stopping.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(32, 16)
        Units of each hidden layer.
    alpha : float, default=1e-4
        L2 penalty.
    learning_rate_init : float, default=1e-3
        Adam's step size.
    max_iter : int, default=200
        Most epochs; ``converged_`` says whether early stopping ended sooner.
    imbalance : {"balanced", "none"}, default="balanced"
        ``"balanced"`` repeats randomly drawn positives (seeded) until both
        classes have as many rows.
    min_frequency : int or float, default=10
        Levels rarer than this pool together.
    random_state : int, default=0
        Seed of the oversampling, the initial weights and the batches.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"logins": rng.poisson(5, 300).astype(float)})
    >>> y = (X["logins"] < 4).astype(int)
    >>> model = MLPChurn(hidden_layer_sizes=(8,), max_iter=300).fit(X, y)
    >>> model.predict_proba(X).shape
    (300, 2)
    """

    def __init__(
        self,
        *,
        hidden_layer_sizes: tuple[int, ...] = (32, 16),
        alpha: float = 1e-4,
        learning_rate_init: float = 1e-3,
        max_iter: int = 200,
        imbalance: Imbalance = "balanced",
        min_frequency: int | float = 10,
        random_state: int = 0,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.alpha = alpha
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.imbalance = imbalance
        self.min_frequency = min_frequency
        self.random_state = random_state

    def fit(self, X: pd.DataFrame, y: Any) -> MLPChurn:
        """Train on the feature frame ``X`` and two-class labels ``y``; returns self."""
        _check_number("alpha", self.alpha, 0)
        _check_number("learning_rate_init", self.learning_rate_init, 0, low_open=True)
        _check_number("max_iter", self.max_iter, 1, integer=True)
        _check_choice("imbalance", self.imbalance, get_args(Imbalance))
        X = _check_frame(X, "X")
        self.classes_, y01 = _binary_target(y, len(X))
        design = self._fit_design(X)
        if self.imbalance == "balanced":
            rng = np.random.default_rng(self.random_state)
            positives, negatives = np.flatnonzero(y01 == 1), np.flatnonzero(y01 == 0)
            minority, majority = sorted([positives, negatives], key=len)
            extra = rng.choice(minority, size=len(majority) - len(minority), replace=True)
            rows = np.concatenate([np.arange(len(y01)), extra])
            design, y01 = design[rows], y01[rows]
        network = MLPClassifier(
            hidden_layer_sizes=self.hidden_layer_sizes,
            alpha=self.alpha,
            learning_rate_init=self.learning_rate_init,
            max_iter=self.max_iter,
            early_stopping=True,
            random_state=self.random_state,
        )
        self.model_ = self._fit_network(network, design, y01)
        return self

    def _design_margin(self, design: Floats) -> Floats:
        p = np.clip(self.model_.predict_proba(design)[:, 1], 1e-12, 1 - 1e-12)
        return np.asarray(np.log(p / (1 - p)), dtype=np.float64)

    def _margin(self, X: pd.DataFrame) -> Floats:
        return self._design_margin(self._design(X))


class MLPTarget(RegressorMixin, _OcclusionExplained):  # type: ignore[misc]
    """A small neural network regressor; the target is standardised inside ``fit``.

    Parameters are those of :class:`MLPChurn` without ``imbalance``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"seats": rng.uniform(0, 10, 300)})
    >>> model = MLPTarget(hidden_layer_sizes=(8,), max_iter=500).fit(X, 3 * X["seats"])
    >>> model.predict(X.head(2)).shape
    (2,)
    """

    def __init__(
        self,
        *,
        hidden_layer_sizes: tuple[int, ...] = (32, 16),
        alpha: float = 1e-4,
        learning_rate_init: float = 1e-3,
        max_iter: int = 200,
        min_frequency: int | float = 10,
        random_state: int = 0,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.alpha = alpha
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.min_frequency = min_frequency
        self.random_state = random_state

    def fit(self, X: pd.DataFrame, y: Any) -> MLPTarget:
        """Train on the feature frame ``X`` and the numeric target ``y``; returns self."""
        _check_number("alpha", self.alpha, 0)
        _check_number("learning_rate_init", self.learning_rate_init, 0, low_open=True)
        _check_number("max_iter", self.max_iter, 1, integer=True)
        X = _check_frame(X, "X")
        target = _regression_target(y, len(X))
        design = self._fit_design(X)
        # Revenue-scale targets would swamp Adam's step size: learn the z-score.
        self.target_mean_ = float(target.mean())
        self.target_scale_ = float(target.std()) or 1.0
        network = MLPRegressor(
            hidden_layer_sizes=self.hidden_layer_sizes,
            alpha=self.alpha,
            learning_rate_init=self.learning_rate_init,
            max_iter=self.max_iter,
            early_stopping=True,
            random_state=self.random_state,
        )
        scaled = (target - self.target_mean_) / self.target_scale_
        self.model_ = self._fit_network(network, design, scaled)
        return self

    def _design_margin(self, design: Floats) -> Floats:
        scaled = np.asarray(self.model_.predict(design), dtype=np.float64)
        return scaled * self.target_scale_ + self.target_mean_

    def predict(self, X: pd.DataFrame) -> Floats:
        """Predicted target of each row, shape (n_rows,)."""
        return self._design_margin(self._design(X))
