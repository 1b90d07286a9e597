"""Calibration: a map from a model's raw scores to probabilities that keeps their order."""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

__all__ = ["Calibration", "ScoreCalibrator"]

Calibration = Literal["auto", "isotonic", "sigmoid", "none"]

#: Isotonic regression needs many examples to be stable; below this many
#: held-out rows (or positives / 10) Platt's sigmoid is used instead.
_ISOTONIC_MIN_ROWS = 1000
_ISOTONIC_MIN_POSITIVES = 50

#: Weight of the raw score in an isotonic calibration: keeps distinct scores distinct.
_TIE_BREAK = 1e-6


class ScoreCalibrator:
    """Maps raw scores to probabilities, keeping their order.

    Isotonic regression is a step function: it maps whole ranges of scores
    to one probability, and those ties would lower the ROC AUC of the model
    it calibrates. A tiny multiple of the raw score's own rank is added to
    the step, below the resolution of any reported probability, so the
    calibrated scores rank accounts exactly as the model does. The sigmoid
    (Platt) map is monotone already.

    Parameters
    ----------
    method : {"isotonic", "sigmoid"}
        The map from score to probability.

    Examples
    --------
    >>> scores = np.array([0.1, 0.2, 0.3, 0.8, 0.9])
    >>> cal = ScoreCalibrator("isotonic").fit(scores, np.array([0, 0, 1, 1, 1]))
    >>> np.round(cal.transform(np.array([0.15, 0.85])), 3)
    array([0., 1.])
    >>> bool(cal.transform(np.array([0.12]))[0] < cal.transform(np.array([0.18]))[0])
    True
    """

    def __init__(self, method: Literal["isotonic", "sigmoid"]) -> None:
        self.method = method

    def fit(self, scores: np.ndarray, outcomes: np.ndarray) -> ScoreCalibrator:
        """Learn the map from held-out ``scores`` and their 0/1 ``outcomes``."""
        scores = np.asarray(scores, dtype=float)
        outcomes = np.asarray(outcomes, dtype=float)
        if self.method == "isotonic":
            self.map_: Any = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
            self.map_.fit(scores, outcomes)
        else:
            self.map_ = LogisticRegression(C=1e6).fit(_logit(scores)[:, None], outcomes)
            if self.map_.coef_[0, 0] < 0:
                # Scores that rank worse than chance on the held-out rows: a
                # negative slope would reverse the model's order, so keep the
                # order and say only the base rate.
                rate = float(np.clip(outcomes.mean(), 1e-6, 1 - 1e-6))
                self.map_.coef_[0, 0] = 1e-6
                self.map_.intercept_[0] = math.log(rate / (1 - rate))
        return self

    def transform(self, scores: np.ndarray) -> np.ndarray:
        """Probabilities for raw ``scores``."""
        scores = np.asarray(scores, dtype=float)
        if self.method == "sigmoid":
            probability: np.ndarray = self.map_.predict_proba(_logit(scores)[:, None])[:, 1]
            return probability
        step = _isotonic_step(self.map_, scores)
        # The raw score itself, weighted by 1e-6, breaks the step's ties
        # (flat ranges and scores beyond the fitted range included): no
        # rounding of a probability shows it, and it stays inside (0, 1).
        calibrated: np.ndarray = (1 - 2 * _TIE_BREAK) * step + _TIE_BREAK * (
            0.5 + np.clip(scores, 0.0, 1.0)
        )
        return calibrated


def _isotonic_step(fitted: IsotonicRegression, scores: np.ndarray) -> np.ndarray:
    """``fitted.predict(scores)``: interpolation between its thresholds, clipped to its range.

    The same arithmetic without scikit-learn's input checks, which cost ten
    times the interpolation when the API scores one account.
    """
    x, y = fitted.X_thresholds_, fitted.y_thresholds_
    if len(y) == 1:
        return np.full(scores.shape, float(y[0]))
    step: np.ndarray = np.interp(np.clip(scores, fitted.X_min_, fitted.X_max_), x, y)
    return step


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-9, 1 - 1e-9)
    logit: np.ndarray = np.log(p / (1 - p))
    return logit


def _method(calibration: Calibration, outcomes: np.ndarray) -> Literal["isotonic", "sigmoid"]:
    if calibration in ("isotonic", "sigmoid"):
        return calibration
    enough = (
        len(outcomes) >= _ISOTONIC_MIN_ROWS
        and min(outcomes.sum(), len(outcomes) - outcomes.sum()) >= _ISOTONIC_MIN_POSITIVES
    )
    return "isotonic" if enough else "sigmoid"
