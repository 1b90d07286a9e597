"""What every estimator shares: parameter checks, frame handling, the design matrix."""

from __future__ import annotations

import math
import os
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.special import expit
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
)
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, SplineTransformer, StandardScaler
from sklearn.utils.validation import check_is_fitted

from churnwatch.errors import ConfigError, ModelError

EstimatorKind = Literal["lightgbm", "logistic", "mlp"]
TaskKind = Literal["binary", "regression"]
Imbalance = Literal["balanced", "none"]

Floats = npt.NDArray[np.float64]

#: Stands for a missing text value in the linear and MLP encodings, so that
#: "unknown plan" gets a coefficient of its own instead of being dropped.
_MISSING_LEVEL = "(missing)"


# -- shared helpers -------------------------------------------------------------------------


def _is_categorical(column: pd.Series) -> bool:
    # pandas 3 text columns have dtype "str", not object: test "not numeric".
    return not pd.api.types.is_numeric_dtype(column)


def _check_choice(name: str, value: object, allowed: tuple[object, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {list(allowed)}, got {value!r}")


def _check_number(
    name: str,
    value: object,
    low: float,
    high: float = math.inf,
    *,
    low_open: bool = False,
    integer: bool = False,
) -> None:
    kinds = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    ok = isinstance(value, kinds) and not isinstance(value, bool)
    if ok:
        number = float(value)  # type: ignore[arg-type]
        ok = (number > low if low_open else number >= low) and number <= high
    if not ok:
        bracket = "(" if low_open else "["
        what = "an integer" if integer else "a number"
        raise ConfigError(f"{name} must be {what} in {bracket}{low}, {high}], got {value!r}")


def _check_frame(X: object, what: str) -> pd.DataFrame:
    if not isinstance(X, pd.DataFrame):
        raise ModelError(
            f"{what} must be a pandas DataFrame of feature columns, got {type(X).__name__}"
        )
    if X.shape[1] == 0:
        raise ModelError(f"{what} has no feature column")
    if X.columns.has_duplicates:
        raise ModelError(f"{what} has duplicated column names: pass each feature once")
    return X


def _binary_target(y: object, n_rows: int) -> tuple[npt.NDArray[Any], Floats]:
    """Return ``(classes, y01)``; the positive class is ``classes[1]``."""
    values = pd.Series(np.asarray(y)).reset_index(drop=True)
    if len(values) != n_rows:
        raise ModelError(f"target has {len(values)} values for {n_rows} rows")
    if values.isna().any():
        raise ModelError(
            f"target has {int(values.isna().sum())} unknown values: drop the rows whose "
            "label is not known yet before fitting"
        )
    classes = np.unique(values.to_numpy())
    if len(classes) != 2:
        raise ModelError(
            f"a churn classifier needs both classes in the target, found {list(classes)}"
        )
    return classes, (values.to_numpy() == classes[1]).astype(np.float64)


def _regression_target(y: object, n_rows: int) -> Floats:
    try:
        values = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"a regression target must be numeric: {exc}") from exc
    if values.shape != (n_rows,):
        raise ModelError(f"target has shape {values.shape} for {n_rows} rows")
    if not np.isfinite(values).all():
        raise ModelError(
            f"target has {int((~np.isfinite(values)).sum())} unknown or infinite values: "
            "drop those rows before fitting"
        )
    return values


def _numeric_column(column: pd.Series, name: str) -> Floats:
    """A column that was numeric in ``fit`` as floats (NaN for missing), or a clear error."""
    try:
        values: Floats = column.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise ModelError(
            f"column {name!r} was numeric when the model was trained but holds "
            f"non-numbers now: {exc}"
        ) from exc
    return values


def _balancing_weight(y01: Floats) -> float:
    """Weight of one positive so that both classes weigh the same in total."""
    return float((y01 == 0).sum() / (y01 == 1).sum())


def _typical(column: pd.Series, categorical: bool) -> Any:
    """Most frequent level, or median; NaN for a number never seen (numpy would warn)."""
    if categorical:
        return column.mode().iloc[0]
    return column.median() if column.notna().any() else math.nan


class _FrameEstimator(BaseEstimator):  # type: ignore[misc]
    """Remembers the feature columns in ``fit`` and finds them again later."""

    feature_names_in_: npt.NDArray[np.object_]
    n_features_in_: int

    def _remember_columns(self, X: pd.DataFrame) -> None:
        self.feature_names_in_ = np.asarray([str(name) for name in X.columns], dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)

    def _columns(self, X: object) -> pd.DataFrame:
        check_is_fitted(self)
        frame = _check_frame(X, "X")
        names = list(self.feature_names_in_)
        missing = [name for name in names if name not in frame.columns]
        if missing:
            raise ModelError(
                f"X lacks {len(missing)} feature column(s) the model was trained on: {missing}"
            )
        return frame.loc[:, names]

    def contributions(self, X: pd.DataFrame) -> tuple[Floats, Floats]:
        """Additive contribution of each original feature, and the base value.

        Parameters
        ----------
        X : DataFrame
            Rows to explain, with the columns of ``feature_names_in_``.

        Returns
        -------
        contributions : ndarray of shape (n_rows, n_features)
            One column per entry of ``feature_names_in_``. Log-odds of the
            positive class for classifiers, target units for regressors.
        base : ndarray of shape (n_rows,)
            The base value; ``base + contributions.sum(axis=1)`` is the raw
            margin of the model (see each estimator for how exact that is).
        """
        raise NotImplementedError  # pragma: no cover - every estimator overrides it


class _ClassifierOutputs(ClassifierMixin):  # type: ignore[misc]
    """``predict_proba`` and ``predict`` from a log-odds margin."""

    classes_: npt.NDArray[Any]

    def _margin(self, X: pd.DataFrame) -> Floats:
        raise NotImplementedError  # pragma: no cover

    def decision_function(self, X: pd.DataFrame) -> Floats:
        """Log-odds of the positive class ``classes_[1]``, shape (n_rows,)."""
        return self._margin(X)

    def predict_proba(self, X: pd.DataFrame) -> Floats:
        """Probability of each class, shape (n_rows, 2), columns in ``classes_`` order."""
        # expit: an extreme margin (a value far outside the training range
        # through a linear term) gives 0 or 1, not an overflow.
        p = expit(self._margin(X))
        return np.column_stack([1.0 - p, p])

    def predict(self, X: pd.DataFrame) -> npt.NDArray[Any]:
        """The more probable class of each row (ties go to the positive class)."""
        p = self.predict_proba(X)[:, 1]
        return self.classes_[(p >= 0.5).astype(np.intp)]


# -- LightGBM -------------------------------------------------------------------------------


def _threads(n_jobs: int | None) -> int:
    # LightGBM reads num_threads <= 0 as "OpenMP's default": that is what -1/None mean.
    if n_jobs is None or n_jobs == -1:
        return 0
    if n_jobs < -1:
        return max(1, (os.cpu_count() or 1) + 1 + n_jobs)
    return int(n_jobs)


# -- linear models and MLP: one-hot / standardised design matrix --------------------------

#: Up to this many rows the design is computed by :func:`_design_of_few`.
_FEW_ROWS = 64


def _design_of_few(preprocessor: ColumnTransformer, frame: pd.DataFrame) -> Floats:
    """The fitted ``preprocessor``'s transform of a few rows, without its per-call checks.

    The design is one small pipeline per feature (and one per spline): for a
    single account, scikit-learn's input validation in each of a hundred
    steps costs ~0.2 s, far more than the arithmetic. The imputers and
    scalers are applied here from their fitted statistics; other steps
    (one-hot encoders, spline bases) are called directly. The
    result equals ``preprocessor.transform(frame)`` (a test checks it).
    """
    parts: list[Floats] = []
    # Each column once as an array: a frame slice per step would cost more
    # than the step itself.
    raw = dict(zip(frame.columns, frame.to_numpy(dtype=object).T, strict=True))
    for name, transformer, columns in preprocessor.transformers_:
        if name == "remainder" or isinstance(transformer, str):
            continue  # 'drop' (nothing is passed through)
        steps = transformer.steps if isinstance(transformer, Pipeline) else [(None, transformer)]
        values: Any
        if isinstance(steps[0][1], SimpleImputer | StandardScaler | SplineTransformer):
            values = np.column_stack([raw[c].astype(np.float64) for c in columns])
        else:
            values = frame[columns]  # an encoder knows its columns by name
        for _, step in steps:
            values = _apply_step(step, values)
        parts.append(np.asarray(values, dtype=np.float64))
    return np.hstack(parts) if parts else np.empty((len(frame), 0))


def _apply_step(step: Any, values: Any) -> Any:
    if isinstance(step, SimpleImputer) and step.strategy in ("median", "mean"):
        x = np.asarray(values, dtype=np.float64)
        missing = np.isnan(x)
        # An all-missing column at fit time has no statistic: it is imputed with 0.
        fill = np.where(np.isnan(step.statistics_), 0.0, step.statistics_)
        out = np.where(missing, fill, x)
        if step.indicator_ is not None and len(step.indicator_.features_):
            out = np.hstack([out, missing[:, step.indicator_.features_].astype(np.float64)])
        return out
    if isinstance(step, StandardScaler):
        x = np.asarray(values, dtype=np.float64)
        if step.with_mean:
            x = x - step.mean_
        if step.with_std:
            x = x / step.scale_
        return x
    return step.transform(values)


class _DesignEstimator(_FrameEstimator):
    """Encodes each original feature into its own block of design columns.

    One transformer per feature keeps an exact map from design columns back
    to the feature (``preprocessor_.output_indices_``), which is what turns
    coefficients into per-feature contributions.
    """

    min_frequency: int | float
    #: Knots of the cubic spline added to each numeric feature (0: none). Only
    #: the linear models have the parameter; the MLP learns curves on its own.
    spline_knots: int = 0

    preprocessor_: ColumnTransformer
    categorical_: list[bool]
    references_: dict[str, Any]

    def _design_frame(self, X: pd.DataFrame) -> pd.DataFrame:
        columns: dict[str, Any] = {}
        for i, name in enumerate(self.feature_names_in_):
            column = X[name]
            if self.categorical_[i]:
                values = column.astype(object)
                columns[f"f{i}"] = values.where(values.notna(), _MISSING_LEVEL).astype(str)
            else:
                columns[f"f{i}"] = _numeric_column(column, name)
        return pd.DataFrame(columns, index=X.index)

    def _fit_design(self, X: pd.DataFrame) -> Floats:
        if isinstance(self.min_frequency, bool):
            raise ConfigError(f"min_frequency must be a count or a share, got {self.min_frequency}")
        _check_number("min_frequency", self.min_frequency, 0)
        self._remember_columns(X)
        self.categorical_ = [_is_categorical(X[name]) for name in X.columns]
        transformers = []
        for i, categorical in enumerate(self.categorical_):
            if categorical:
                # Rare levels pool into one "infrequent" column; unseen levels encode as
                # all zeros, i.e. the contribution of an average row's level mix.
                step = OneHotEncoder(
                    handle_unknown="ignore",
                    min_frequency=self.min_frequency or None,
                    sparse_output=False,
                )
            else:
                step = make_pipeline(
                    SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
                    StandardScaler(),
                )
            transformers.append((f"f{i}", step, [f"f{i}"]))
        frame = self._design_frame(X)
        transformers.extend(self._spline_steps(frame))
        self.preprocessor_ = ColumnTransformer(transformers, sparse_threshold=0.0)
        design = np.asarray(self.preprocessor_.fit_transform(frame), dtype=np.float64)
        self.references_ = {
            str(name): _typical(frame[f"f{i}"], self.categorical_[i])
            for i, name in enumerate(self.feature_names_in_)
        }
        return design

    def _design(self, X: pd.DataFrame) -> Floats:
        frame = self._design_frame(self._columns(X))
        if len(frame) <= _FEW_ROWS:
            return _design_of_few(self.preprocessor_, frame)
        return np.asarray(self.preprocessor_.transform(frame), dtype=np.float64)

    def _spline_steps(self, frame: pd.DataFrame) -> list[tuple[str, Any, list[str]]]:
        """A cubic spline basis for each numeric feature with enough distinct values.

        The basis rides beside the feature's linear column, in the feature's
        own block of design columns, so a curve (churn falling fast over the
        first months of tenure, then flat) stays one additive term whose
        linear SHAP value is exact. Knots sit at distinct quantiles: a
        column that is mostly zeros gets fewer, never two at one place.
        """
        knots = getattr(self, "spline_knots", 0)
        _check_number("spline_knots", knots, 0, integer=True)
        if knots == 0:
            return []
        if knots < 3:
            raise ConfigError(f"spline_knots must be 0 (no spline) or at least 3, got {knots}")
        steps: list[tuple[str, Any, list[str]]] = []
        for i, categorical in enumerate(self.categorical_):
            if categorical:
                continue
            values = frame[f"f{i}"].to_numpy(dtype=np.float64)
            values = values[np.isfinite(values)]
            if len(values) == 0:
                continue
            at = np.unique(np.quantile(values, np.linspace(0.0, 1.0, knots)))
            if len(at) < 3:
                continue  # a flag or a near-constant column: its linear term says it all
            spline = SplineTransformer(
                knots=at[:, None], degree=3, extrapolation="linear", include_bias=False
            )
            steps.append(
                (f"s{i}", make_pipeline(SimpleImputer(strategy="median"), spline), [f"f{i}"])
            )
        return steps

    def _blocks(self) -> list[npt.NDArray[np.intp]]:
        """The design columns of each original feature (its linear and spline columns)."""
        found = self.preprocessor_.output_indices_
        blocks = []
        for i in range(self.n_features_in_):
            parts = [found[f"f{i}"], found.get(f"s{i}", slice(0, 0))]
            blocks.append(np.concatenate([np.arange(p.start, p.stop) for p in parts]))
        return blocks
