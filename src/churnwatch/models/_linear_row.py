"""A fitted linear model's per-feature contributions for one account, from plain values.

:meth:`LogisticChurn.contributions` encodes a frame through a hundred small
scikit-learn steps (one pipeline per feature and per spline), which for one
row costs milliseconds of input checks around microseconds of arithmetic.
A feature's linear SHAP value depends on that feature's value alone, so
:class:`LinearRow` folds each feature's steps into a function of one scalar
when the model is loaded:

- a number: a constant when missing; otherwise ``a * x + b`` (the
  standardised column, and its missing-value indicator at 0) plus the
  weighted spline basis, which is itself one cubic spline, continued
  linearly beyond the outer knots as the basis is;
- text: a table from each level to its contribution, and one value for
  levels the model never saw (which encode as zeros).

The constants are read off the estimator's own transform of a few probe
rows, so they cannot drift from it; a test checks the contributions against
:meth:`contributions` on random values, missing and out-of-range ones too.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy.interpolate import BSpline, PPoly
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import SplineTransformer

from churnwatch.models._estimator_base import _MISSING_LEVEL, Floats
from churnwatch.models._linear import _LinearExplained

__all__ = ["LinearRow"]


class LinearRow:
    """Contributions and margin of a fitted linear estimator for one row of values.

    Parameters
    ----------
    estimator : LogisticChurn or LinearTarget
        Fitted.

    Attributes
    ----------
    names : list of str
        The features, in the estimator's order.
    base : float
        The base value: the margin of the average training row.
    """

    def __init__(self, estimator: _LinearExplained) -> None:
        coef, intercept = estimator._linear_terms()
        mean = estimator.design_mean_
        self.names: list[str] = [str(name) for name in estimator.feature_names_in_]
        self.base = float(intercept + mean @ coef)
        found = estimator.preprocessor_.output_indices_
        weighted = _Weights(coef, mean)
        self._terms: list[Callable[[Any], float]] = []
        for i, categorical in enumerate(estimator.categorical_):
            linear = found[f"f{i}"]
            if categorical:
                self._terms.append(_text_term(estimator, i, weighted.on(linear)))
                continue
            spline = found.get(f"s{i}")
            self._terms.append(
                _number_term(
                    estimator,
                    i,
                    weighted.on(linear),
                    None if spline is None else weighted.on(spline),
                )
            )

    def contributions(self, values: Mapping[str, Any]) -> Floats:
        """Each feature's contribution (log-odds or target units) for one row.

        ``values`` maps feature names to a number (NaN or None for missing)
        or text; ``base + contributions.sum()`` is the model's margin.
        """
        return np.array(
            [term(values.get(name)) for name, term in zip(self.names, self._terms, strict=True)],
            dtype=np.float64,
        )

    def margin(self, values: Mapping[str, Any]) -> float:
        """The model's margin (log-odds or prediction) for one row."""
        return self.base + float(self.contributions(values).sum())


class _Weights:
    """Coefficients and training means of the design, sliced by a block's columns."""

    def __init__(self, coef: Floats, mean: Floats) -> None:
        self.coef = coef
        self.mean = mean

    def on(self, columns: slice) -> tuple[Floats, Floats]:
        return self.coef[columns], self.mean[columns]


def _probe(estimator: _LinearExplained, i: int, values: list[Any], block: str) -> Floats:
    """The design columns of transformer ``block`` for feature ``i`` at each of ``values``."""
    name = estimator.feature_names_in_[i]
    frame = estimator._design_frame(
        pd.DataFrame({name: values})
        .reindex(columns=estimator.feature_names_in_)
        .astype({name: object if estimator.categorical_[i] else np.float64})
    )
    transformer = estimator.preprocessor_.named_transformers_[block]
    return np.asarray(transformer.transform(frame[[f"f{i}"]]), dtype=np.float64)


def _contribution(design: Floats, weights: tuple[Floats, Floats]) -> Floats:
    coef, mean = weights
    return np.asarray((design - mean) @ coef, dtype=np.float64)


def _text_term(
    estimator: _LinearExplained, i: int, weights: tuple[Floats, Floats]
) -> Callable[[Any], float]:
    encoder = estimator.preprocessor_.named_transformers_[f"f{i}"]
    levels = [str(level) for level in encoder.categories_[0]]
    # A level no one could have written: it encodes as an unseen one.
    unseen = "\x00unseen"
    table: dict[str, float] = dict(
        zip(
            [*levels, unseen],
            _contribution(_probe(estimator, i, [*levels, unseen], f"f{i}"), weights).tolist(),
            strict=True,
        )
    )
    other = table.pop(unseen)

    def term(value: Any) -> float:
        missing = value is None or (isinstance(value, float) and math.isnan(value))
        return table.get(_MISSING_LEVEL if missing else str(value), other)

    return term


def _number_term(
    estimator: _LinearExplained,
    i: int,
    linear: tuple[Floats, Floats],
    spline: tuple[Floats, Floats] | None,
) -> Callable[[Any], float]:
    # The standardised column is affine in x when x is present: two probes fix it.
    probed = _contribution(_probe(estimator, i, [0.0, 1.0, math.nan], f"f{i}"), linear)
    at_zero, at_one, at_missing = (float(v) for v in probed)
    slope, intercept = at_one - at_zero, at_zero
    curve: _Curve | None = None
    if spline is not None:
        curve = _Curve(estimator, i, spline)
        at_missing += curve.missing

    def term(value: Any) -> float:
        x = math.nan if value is None else float(value)
        if math.isnan(x):
            return at_missing
        found = slope * x + intercept
        return found if curve is None else found + curve(x)

    return term


class _Curve:
    """A feature's weighted spline basis as one piecewise cubic, with its linear tails."""

    def __init__(self, estimator: _LinearExplained, i: int, weights: tuple[Floats, Floats]) -> None:
        pipeline = estimator.preprocessor_.named_transformers_[f"s{i}"]
        assert isinstance(pipeline, Pipeline)
        step = pipeline.steps[-1][1]
        assert isinstance(step, SplineTransformer)
        assert step.extrapolation == "linear"
        coef, mean = weights
        basis = step.bsplines_[0]
        # The design drops the last basis function (no bias column): weight 0.
        weight = np.zeros(basis.c.shape[1], dtype=np.float64)
        weight[: len(coef)] = coef
        combined = BSpline(basis.t, weight, basis.k, extrapolate=False)
        degree = int(step.degree)
        self.low, self.high = float(basis.t[degree]), float(basis.t[-degree - 1])
        self.shift = -float(mean @ coef)
        self.low_value = float(combined(self.low)) + self.shift
        self.high_value = float(combined(self.high)) + self.shift
        self.low_slope = float(combined(self.low, nu=1))
        self.high_slope = float(combined(self.high, nu=1))
        pieces = PPoly.from_spline(combined)
        keep = (
            (pieces.x[:-1] >= self.low)
            & (pieces.x[1:] <= self.high)
            & (pieces.x[1:] > pieces.x[:-1])
        )
        self.starts = pieces.x[:-1][keep].tolist()
        self.cubics = [list(c) for c in pieces.c[:, keep].T.tolist()]
        # Missing values are imputed (with the median) before the spline.
        self.missing = float(_contribution(_probe(estimator, i, [math.nan], f"s{i}"), weights)[0])

    def __call__(self, x: float) -> float:
        if x < self.low:
            return self.low_value + (x - self.low) * self.low_slope
        if x > self.high:
            return self.high_value + (x - self.high) * self.high_slope
        piece = max(0, min(bisect_right(self.starts, x) - 1, len(self.starts) - 1))
        dx = x - self.starts[piece]
        value = 0.0
        for c in self.cubics[piece]:  # Horner, highest power first
            value = value * dx + c
        return value + self.shift
