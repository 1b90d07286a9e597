"""A fitted linear model's per-feature contributions, folded from its encoding steps.

The design of a linear model is one small scikit-learn pipeline per feature
and per spline: encoding a million rows builds a matrix of hundreds of
columns and multiplies it by the coefficients, and encoding one row costs
milliseconds of input checks around microseconds of arithmetic. But a
feature's linear SHAP value, ``coef · (z - mean z)`` over its design
columns, depends on that feature's value alone, so :class:`LinearTerms`
folds each feature's steps into a function of one value when first needed:

- a number: a constant when missing; otherwise ``a * x + b`` (the
  standardised column, and its missing-value indicator at 0) plus the
  weighted spline basis, which is itself one piecewise cubic, continued
  linearly beyond the outer knots as the basis is;
- text: a table from each level to its contribution, and one value for
  levels the model never saw (which encode as zeros).

Each is evaluated on one value (pure Python, for the API's one-account
path) or on a column (NumPy, for scoring a million accounts). The constants
are read off the estimator's own transform of a few probe values, so they
cannot drift from it; tests check both paths against the design matrix on
random values, missing and out-of-range ones too.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy.interpolate import BSpline, PPoly
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import SplineTransformer

from churnwatch.models._estimator_base import _MISSING_LEVEL, Floats

if TYPE_CHECKING:
    from churnwatch.models._linear import _LinearExplained

__all__ = ["LinearTerms"]


class LinearTerms:
    """Each feature's contribution to a fitted linear estimator's margin.

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
        self._terms: list[_TextTerm | _NumberTerm] = []
        for i, categorical in enumerate(estimator.categorical_):
            linear = (coef[found[f"f{i}"]], mean[found[f"f{i}"]])
            if categorical:
                self._terms.append(_TextTerm(estimator, i, linear))
                continue
            spline = found.get(f"s{i}")
            curve = None
            if spline is not None:
                curve = _Curve(estimator, i, (coef[spline], mean[spline]))
            self._terms.append(_NumberTerm(estimator, i, linear, curve))

    def row(self, values: Mapping[str, Any]) -> Floats:
        """Each feature's contribution for one row, from a mapping of its values.

        A number may be NaN or None when missing; ``base + row(values).sum()``
        is the model's margin (log-odds or prediction).
        """
        return np.array(
            [
                term.one(values.get(name))
                for name, term in zip(self.names, self._terms, strict=True)
            ],
            dtype=np.float64,
        )

    def row_margin(self, values: Mapping[str, Any]) -> float:
        """The model's margin (log-odds or prediction) for one row."""
        return self.base + math.fsum(
            term.one(values.get(name)) for name, term in zip(self.names, self._terms, strict=True)
        )

    def frame(self, design_frame: pd.DataFrame) -> Floats:
        """Contributions of every row of an encoded frame, shape (n_rows, n_features).

        ``design_frame`` is the estimator's ``_design_frame`` of the rows:
        column ``f{i}`` holds feature ``i`` as floats (NaN when missing) or as
        text (missing as its own level).
        """
        out = np.empty((len(design_frame), len(self._terms)), dtype=np.float64, order="F")
        for i, term in enumerate(self._terms):
            out[:, i] = term.many(design_frame[f"f{i}"].to_numpy())
        return out


def _probe(estimator: _LinearExplained, i: int, values: list[Any], block: str) -> Floats:
    """Design columns of transformer ``block`` (of feature ``i``) at each of ``values``."""
    name = estimator.feature_names_in_[i]
    raw = pd.DataFrame(
        {
            column: pd.Series(
                values if column == name else [None] * len(values),
                dtype=object if categorical else np.float64,
            )
            for column, categorical in zip(
                estimator.feature_names_in_, estimator.categorical_, strict=True
            )
        }
    )
    frame = estimator._design_frame(raw)
    transformer = estimator.preprocessor_.named_transformers_[block]
    return np.asarray(transformer.transform(frame[[f"f{i}"]]), dtype=np.float64)


def _contribution(design: Floats, weights: tuple[Floats, Floats]) -> Floats:
    coef, mean = weights
    return np.asarray((design - mean) @ coef, dtype=np.float64)


class _TextTerm:
    """A text feature: a contribution per level; unseen levels share one."""

    def __init__(self, estimator: _LinearExplained, i: int, weights: tuple[Floats, Floats]) -> None:
        encoder = estimator.preprocessor_.named_transformers_[f"f{i}"]
        levels = [str(level) for level in encoder.categories_[0]]
        unseen = "\x00unseen"  # a level no one could have written
        probed = _contribution(_probe(estimator, i, [*levels, unseen], f"f{i}"), weights)
        self.table: dict[str, float] = dict(zip(levels, probed[:-1].tolist(), strict=True))
        self.other = float(probed[-1])

    def one(self, value: Any) -> float:
        missing = value is None or (isinstance(value, float) and math.isnan(value))
        return self.table.get(_MISSING_LEVEL if missing else str(value), self.other)

    def many(self, levels: np.ndarray) -> Floats:
        # The design frame already wrote missing text as its level.
        found = pd.Series(levels, dtype=object).map(self.table)
        values: Floats = np.asarray(found.fillna(self.other), dtype=np.float64)
        return values


class _NumberTerm:
    """A number: affine when present (plus its spline curve), a constant when missing."""

    def __init__(
        self,
        estimator: _LinearExplained,
        i: int,
        weights: tuple[Floats, Floats],
        curve: _Curve | None,
    ) -> None:
        # The standardised column is affine in x when x is present: two probes fix it.
        probed = _contribution(_probe(estimator, i, [0.0, 1.0, math.nan], f"f{i}"), weights)
        at_zero, at_one, at_missing = (float(v) for v in probed)
        self.slope, self.intercept = at_one - at_zero, at_zero
        self.curve = curve
        self.missing = at_missing if curve is None else at_missing + curve.missing

    def one(self, value: Any) -> float:
        x = math.nan if value is None else float(value)
        if math.isnan(x):
            return self.missing
        found = self.slope * x + self.intercept
        return found if self.curve is None else found + self.curve.one(x)

    def many(self, x: np.ndarray) -> Floats:
        x = np.asarray(x, dtype=np.float64)
        found = self.slope * x + self.intercept
        if self.curve is not None:
            found += self.curve.many(x)
        return np.where(np.isnan(x), self.missing, found)


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
        starts, ends = pieces.x[:-1], pieces.x[1:]
        keep = (starts >= self.low) & (ends <= self.high) & (ends > starts)
        self.starts = np.ascontiguousarray(starts[keep])
        #: Cubic coefficients of each piece, highest power first, shape (pieces, 4).
        self.cubics = np.ascontiguousarray(pieces.c[:, keep].T)
        self._starts = self.starts.tolist()
        self._cubics = self.cubics.tolist()
        # Missing values are imputed (with the median) before the spline.
        self.missing = float(_contribution(_probe(estimator, i, [math.nan], f"s{i}"), weights)[0])

    def one(self, x: float) -> float:
        if x < self.low:
            return self.low_value + (x - self.low) * self.low_slope
        if x > self.high:
            return self.high_value + (x - self.high) * self.high_slope
        piece = max(0, min(bisect_right(self._starts, x) - 1, len(self._starts) - 1))
        dx = x - self._starts[piece]
        value = 0.0
        for c in self._cubics[piece]:  # Horner
            value = value * dx + c
        return value + self.shift

    def many(self, x: Floats) -> Floats:
        piece = np.clip(np.searchsorted(self.starts, x, side="right") - 1, 0, len(self.starts) - 1)
        dx = x - self.starts[piece]
        value = np.zeros(len(x), dtype=np.float64)
        for power in range(self.cubics.shape[1]):  # Horner
            value = value * dx + self.cubics[piece, power]
        value += self.shift
        value = np.where(x < self.low, self.low_value + (x - self.low) * self.low_slope, value)
        return np.where(x > self.high, self.high_value + (x - self.high) * self.high_slope, value)
