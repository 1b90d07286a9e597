"""Churn estimators behind one contract: LightGBM, linear models and a small MLP.

Every estimator here takes a :class:`pandas.DataFrame` of feature columns (a
column is *categorical* when it is not numeric) and follows the scikit-learn
contract: ``__init__`` only stores parameters, ``fit`` validates them and
returns ``self``, learned state ends in ``_``. Classifiers give
``predict_proba`` with two columns and ``classes_``; every estimator records
``feature_names_in_`` (the frame's columns, in order) and explains a score
with :meth:`contributions`: one additive term per *original* feature plus a
base value, in log-odds for classifiers and in target units for regressors.

- LightGBM (:class:`LightGBMChurn`, :class:`LightGBMTarget`): text columns
  become native categoricals with the levels seen in ``fit``; contributions
  are TreeSHAP values, exact.
- Linear (:class:`LogisticChurn`, :class:`LinearTarget`): one-hot text,
  median-imputed and standardised numbers; contributions are exact linear
  SHAP values.
- MLP (:class:`MLPChurn`, :class:`MLPTarget`): the same preprocessing;
  contributions come from occlusion and are *not* SHAP values.

:func:`make_estimator` builds any of them by name.
"""

from __future__ import annotations

import math
import os
import warnings
from typing import Any, Literal, get_args

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    RegressorMixin,
)
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils.validation import check_is_fitted

from churnwatch.errors import ConfigError, ModelError

__all__ = [
    "EstimatorKind",
    "Imbalance",
    "LightGBMChurn",
    "LightGBMTarget",
    "LinearTarget",
    "LogisticChurn",
    "MLPChurn",
    "MLPTarget",
    "TaskKind",
    "make_estimator",
]

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


def _balancing_weight(y01: Floats) -> float:
    """Weight of one positive so that both classes weigh the same in total."""
    return float((y01 == 0).sum() / (y01 == 1).sum())


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
        p = 1.0 / (1.0 + np.exp(-self._margin(X)))
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


class _LightGBMBase(_FrameEstimator):
    """Fitting and explaining shared by the LightGBM classifier and regressor."""

    n_estimators: int
    learning_rate: float
    num_leaves: int
    max_depth: int
    min_child_samples: int
    subsample: float
    subsample_freq: int
    colsample_bytree: float
    reg_alpha: float
    reg_lambda: float
    early_stopping_rounds: int | None
    validation_fraction: float
    n_jobs: int | None
    random_state: int

    booster_: lgb.Booster
    best_iteration_: int
    categories_: dict[str, list[Any]]

    def _check_params(self) -> None:
        _check_number("n_estimators", self.n_estimators, 1, integer=True)
        _check_number("learning_rate", self.learning_rate, 0, low_open=True)
        _check_number("num_leaves", self.num_leaves, 2, integer=True)
        _check_number("min_child_samples", self.min_child_samples, 1, integer=True)
        _check_number("max_depth", self.max_depth, -math.inf, integer=True)
        _check_number("subsample", self.subsample, 0, 1, low_open=True)
        _check_number("subsample_freq", self.subsample_freq, 0, integer=True)
        _check_number("colsample_bytree", self.colsample_bytree, 0, 1, low_open=True)
        _check_number("reg_alpha", self.reg_alpha, 0)
        _check_number("reg_lambda", self.reg_lambda, 0)
        _check_number("validation_fraction", self.validation_fraction, 0, 1, low_open=True)
        if self.early_stopping_rounds is not None:
            _check_number("early_stopping_rounds", self.early_stopping_rounds, 1, integer=True)

    def _lightgbm_params(self) -> dict[str, Any]:
        return {
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "max_depth": self.max_depth,
            "min_child_samples": self.min_child_samples,
            "subsample": self.subsample,
            "subsample_freq": self.subsample_freq,
            "colsample_bytree": self.colsample_bytree,
            "reg_alpha": self.reg_alpha,
            "reg_lambda": self.reg_lambda,
            "random_state": self.random_state,
            "n_jobs": _threads(self.n_jobs),
            "verbose": -1,
            # Same data and parameters give the same trees, run after run.
            "deterministic": True,
            "force_col_wise": True,
        }

    def _learn_categories(self, X: pd.DataFrame) -> None:
        self.categories_ = {
            str(name): sorted(X[name].dropna().unique().tolist(), key=str)
            for name in X.columns
            if _is_categorical(X[name])
        }

    def _lightgbm_frame(self, X: pd.DataFrame) -> pd.DataFrame:
        # Positional names: LightGBM rejects JSON characters and rewrites spaces in
        # feature names (with a warning); the real names live in feature_names_in_.
        columns: dict[str, Any] = {}
        for i, name in enumerate(self.feature_names_in_):
            column = X[name]
            if name in self.categories_:
                # Levels fixed at fit: an unseen level becomes NaN, LightGBM's "missing".
                levels = pd.Index(self.categories_[name])
                codes = levels.get_indexer(column.to_numpy(dtype=object))
                columns[f"f{i}"] = pd.Categorical.from_codes(codes, categories=levels)
            else:
                try:
                    columns[f"f{i}"] = column.to_numpy(dtype=np.float64, na_value=np.nan)
                except (TypeError, ValueError) as exc:
                    raise ModelError(
                        f"column {name!r} was numeric when the model was trained but holds "
                        f"non-numbers now: {exc}"
                    ) from exc
        return pd.DataFrame(columns, index=X.index)

    def _fit_booster(
        self,
        X: pd.DataFrame,
        target: Floats,
        eval_set: tuple[pd.DataFrame, Floats] | None,
        objective: str,
        *,
        balance: bool = False,
    ) -> None:
        """Train ``booster_``; ``target`` is already numeric (0/1 for a binary objective)."""
        frame = self._lightgbm_frame(X)
        valid: tuple[pd.DataFrame, Floats] | None = None
        if eval_set is not None:
            valid = (self._lightgbm_frame(self._columns(eval_set[0])), eval_set[1])
        elif self.early_stopping_rounds is not None:
            # Hold out the LAST rows: the caller sorts by cutoff, so they are the
            # latest data, the closest to what the model will score.
            n_train = len(frame) - math.ceil(len(frame) * self.validation_fraction)
            if n_train < 2:
                raise ModelError(
                    f"{len(frame)} rows are too few to hold out {self.validation_fraction:.0%} "
                    "for early stopping: set early_stopping_rounds=None or give more rows"
                )
            valid = (frame.iloc[n_train:], target[n_train:])
            frame, target = frame.iloc[:n_train], target[:n_train]
        if objective == "binary" and len(np.unique(target)) < 2:
            raise ModelError(
                "the training rows left after holding out the last "
                f"{self.validation_fraction:.0%} for early stopping hold one class only: "
                "give more rows, or set early_stopping_rounds=None"
            )
        # Weights, not scale_pos_weight, so the validation loss can be weighted the same
        # way: early stopping then judges the objective actually being optimised.
        positive_weight = _balancing_weight(target) if balance else 1.0

        def weights(y01: Floats) -> Floats | None:
            return np.where(y01 == 1, positive_weight, 1.0) if balance else None

        train_set = lgb.Dataset(frame, label=target, weight=weights(target))
        valid_sets: list[lgb.Dataset] = []
        callbacks: list[Any] = []
        if valid is not None and self.early_stopping_rounds is not None:
            valid_sets.append(
                lgb.Dataset(valid[0], label=valid[1], weight=weights(valid[1]), reference=train_set)
            )
            callbacks.append(lgb.early_stopping(int(self.early_stopping_rounds), verbose=False))
        self.booster_ = lgb.train(
            {**self._lightgbm_params(), "objective": objective},
            train_set,
            num_boost_round=int(self.n_estimators),
            valid_sets=valid_sets or None,
            callbacks=callbacks or None,
        )
        best = self.booster_.best_iteration if valid_sets else 0
        self.best_iteration_ = int(best) if best > 0 else self.booster_.current_iteration()

    def _raw(self, X: pd.DataFrame, **kwargs: Any) -> Floats:
        frame = self._lightgbm_frame(self._columns(X))
        return np.asarray(
            self.booster_.predict(frame, num_iteration=self.best_iteration_, **kwargs),
            dtype=np.float64,
        )

    @property
    def feature_importances_(self) -> Floats:
        """Total gain of the splits on each feature (``feature_names_in_`` order)."""
        check_is_fitted(self)
        return np.asarray(
            self.booster_.feature_importance("gain", iteration=self.best_iteration_),
            dtype=np.float64,
        )

    def contributions(self, X: pd.DataFrame) -> tuple[Floats, Floats]:
        """Exact TreeSHAP contributions (LightGBM's ``pred_contrib``) and base value.

        ``base + contributions.sum(axis=1)`` equals the booster's raw score:
        log-odds for :class:`LightGBMChurn`, the prediction for
        :class:`LightGBMTarget`.
        """
        values = self._raw(X, pred_contrib=True)
        return values[:, :-1], values[:, -1]


def _eval_target_binary(
    eval_set: tuple[pd.DataFrame, Any] | None, classes: npt.NDArray[Any]
) -> tuple[pd.DataFrame, Floats] | None:
    if eval_set is None:
        return None
    X_val, y_val = eval_set
    values = np.asarray(y_val)
    unknown = set(np.unique(values).tolist()) - set(classes.tolist())
    if unknown:
        raise ModelError(f"eval_set target has values not seen in y: {sorted(unknown, key=str)}")
    return _check_frame(X_val, "eval_set X"), (values == classes[1]).astype(np.float64)


class LightGBMChurn(_ClassifierOutputs, _LightGBMBase):
    """Gradient-boosted trees for a 0/1 churn label, with native categoricals.

    Parameters
    ----------
    n_estimators : int, default=500
        Most boosting rounds; early stopping usually ends sooner.
    learning_rate, num_leaves, max_depth, min_child_samples, subsample, subsample_freq, \
colsample_bytree, reg_alpha, reg_lambda
        LightGBM's parameters of the same names (``subsample`` is row bagging,
        redrawn every ``subsample_freq`` rounds).
    imbalance : {"balanced", "none"}, default="balanced"
        ``"balanced"`` weighs each positive by ``negatives / positives`` so
        both classes weigh the same. Probabilities are then too high for the
        true base rate; :func:`~churnwatch.models._calibration.calibrate`
        corrects them on later data.
    early_stopping_rounds : int or None, default=50
        Stop when the log loss on validation rows has not improved for this
        many rounds. Without ``eval_set``, the LAST ``validation_fraction`` of
        the rows, in the order given, are held out (sort by cutoff first, so
        they are the latest). ``None`` trains all ``n_estimators`` on every row.
    validation_fraction : float, default=0.1
        Share of rows held out for early stopping when no ``eval_set`` is given.
    n_jobs : int or None, default=-1
        LightGBM threads; -1 or None let LightGBM decide.
    random_state : int, default=0
        Seed of bagging and column sampling; the fit is deterministic.

    Attributes
    ----------
    booster_ : lightgbm.Booster
        The trained model (features named ``f0``, ``f1``, ... by position).
    best_iteration_ : int
        Rounds used to predict (the best round when early stopping ran).
    categories_ : dict of str to list
        Levels of each text column seen in ``fit``; other levels become missing.
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
    >>> model = LightGBMChurn(n_estimators=50, n_jobs=1).fit(X, y)
    >>> model.predict_proba(X).shape
    (400, 2)
    >>> contrib, base = model.contributions(X.head(3))
    >>> bool(np.allclose(base + contrib.sum(axis=1), model.decision_function(X.head(3))))
    True
    """

    def __init__(
        self,
        *,
        n_estimators: int = 500,
        learning_rate: float = 0.05,
        num_leaves: int = 15,
        max_depth: int = -1,
        min_child_samples: int = 20,
        subsample: float = 0.8,
        subsample_freq: int = 1,
        colsample_bytree: float = 0.8,
        reg_alpha: float = 0.0,
        reg_lambda: float = 1.0,
        imbalance: Imbalance = "balanced",
        early_stopping_rounds: int | None = 50,
        validation_fraction: float = 0.1,
        n_jobs: int | None = -1,
        random_state: int = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.max_depth = max_depth
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.subsample_freq = subsample_freq
        self.colsample_bytree = colsample_bytree
        self.reg_alpha = reg_alpha
        self.reg_lambda = reg_lambda
        self.imbalance = imbalance
        self.early_stopping_rounds = early_stopping_rounds
        self.validation_fraction = validation_fraction
        self.n_jobs = n_jobs
        self.random_state = random_state

    def fit(
        self,
        X: pd.DataFrame,
        y: Any,
        *,
        eval_set: tuple[pd.DataFrame, Any] | None = None,
    ) -> LightGBMChurn:
        """Train on the feature frame ``X`` and labels ``y``.

        Parameters
        ----------
        X : DataFrame
            Feature columns; text columns are categorical.
        y : array-like of shape (n_rows,)
            Two distinct labels, no missing value.
        eval_set : (DataFrame, array-like), optional
            Validation rows for early stopping (needs ``early_stopping_rounds``).

        Returns
        -------
        LightGBMChurn
            This estimator, fitted.
        """
        self._check_params()
        _check_choice("imbalance", self.imbalance, get_args(Imbalance))
        if eval_set is not None and self.early_stopping_rounds is None:
            raise ConfigError("eval_set is only used for early stopping: set early_stopping_rounds")
        X = _check_frame(X, "X")
        classes, y01 = _binary_target(y, len(X))
        valid = _eval_target_binary(eval_set, classes)
        self._remember_columns(X)
        self._learn_categories(X)
        self.classes_ = classes
        self._fit_booster(X, y01, valid, "binary", balance=self.imbalance == "balanced")
        return self

    def _margin(self, X: pd.DataFrame) -> Floats:
        return self._raw(X, raw_score=True)


class LightGBMTarget(RegressorMixin, _LightGBMBase):  # type: ignore[misc]
    """Gradient-boosted trees for a numeric target (activity, revenue).

    Parameters are those of :class:`LightGBMChurn` without ``imbalance``, plus:

    Parameters
    ----------
    objective : {"regression", "regression_l1", "huber"}, default="regression"
        Squared, absolute or Huber loss. All three predict in target units,
        so contributions add up to the prediction.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"seats": rng.integers(1, 20, 300).astype(float)})
    >>> y = 10.0 * X["seats"] + rng.normal(0, 1, 300)
    >>> model = LightGBMTarget(n_estimators=100, n_jobs=1).fit(X, y)
    >>> bool(abs(model.predict(pd.DataFrame({"seats": [10.0]}))[0] - 100) < 10)
    True
    """

    def __init__(
        self,
        *,
        n_estimators: int = 500,
        learning_rate: float = 0.05,
        num_leaves: int = 15,
        max_depth: int = -1,
        min_child_samples: int = 20,
        subsample: float = 0.8,
        subsample_freq: int = 1,
        colsample_bytree: float = 0.8,
        reg_alpha: float = 0.0,
        reg_lambda: float = 1.0,
        objective: Literal["regression", "regression_l1", "huber"] = "regression",
        early_stopping_rounds: int | None = 50,
        validation_fraction: float = 0.1,
        n_jobs: int | None = -1,
        random_state: int = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.max_depth = max_depth
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.subsample_freq = subsample_freq
        self.colsample_bytree = colsample_bytree
        self.reg_alpha = reg_alpha
        self.reg_lambda = reg_lambda
        self.objective = objective
        self.early_stopping_rounds = early_stopping_rounds
        self.validation_fraction = validation_fraction
        self.n_jobs = n_jobs
        self.random_state = random_state

    def fit(
        self,
        X: pd.DataFrame,
        y: Any,
        *,
        eval_set: tuple[pd.DataFrame, Any] | None = None,
    ) -> LightGBMTarget:
        """Train on ``X`` and the numeric target ``y``; see :meth:`LightGBMChurn.fit`."""
        self._check_params()
        _check_choice("objective", self.objective, ("regression", "regression_l1", "huber"))
        if eval_set is not None and self.early_stopping_rounds is None:
            raise ConfigError("eval_set is only used for early stopping: set early_stopping_rounds")
        X = _check_frame(X, "X")
        target = _regression_target(y, len(X))
        valid = None
        if eval_set is not None:
            X_val = _check_frame(eval_set[0], "eval_set X")
            valid = (X_val, _regression_target(eval_set[1], len(X_val)))
        self._remember_columns(X)
        self._learn_categories(X)
        self._fit_booster(X, target, valid, self.objective)
        return self

    def predict(self, X: pd.DataFrame) -> Floats:
        """Predicted target of each row, shape (n_rows,)."""
        return self._raw(X)


# -- linear models and MLP: one-hot / standardised design matrix --------------------------


class _DesignEstimator(_FrameEstimator):
    """Encodes each original feature into its own block of design columns.

    One transformer per feature keeps an exact map from design columns back
    to the feature (``preprocessor_.output_indices_``), which is what turns
    coefficients into per-feature contributions.
    """

    min_frequency: int | float

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
                try:
                    columns[f"f{i}"] = column.to_numpy(dtype=np.float64, na_value=np.nan)
                except (TypeError, ValueError) as exc:
                    raise ModelError(
                        f"column {name!r} was numeric when the model was trained but holds "
                        f"non-numbers now: {exc}"
                    ) from exc
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
        self.preprocessor_ = ColumnTransformer(transformers, sparse_threshold=0.0)
        frame = self._design_frame(X)
        design = np.asarray(self.preprocessor_.fit_transform(frame), dtype=np.float64)
        self.references_ = {
            str(name): (
                frame[f"f{i}"].mode().iloc[0] if self.categorical_[i] else frame[f"f{i}"].median()
            )
            for i, name in enumerate(self.feature_names_in_)
        }
        return design

    def _design(self, X: pd.DataFrame) -> Floats:
        frame = self._design_frame(self._columns(X))
        return np.asarray(self.preprocessor_.transform(frame), dtype=np.float64)

    def _blocks(self) -> list[slice]:
        return [self.preprocessor_.output_indices_[f"f{i}"] for i in range(self.n_features_in_)]


class _LinearExplained(_DesignEstimator):
    """Exact linear SHAP: ``coef * (z - mean z)``, summed per original feature."""

    design_mean_: Floats

    def _linear_terms(self) -> tuple[Floats, float]:
        raise NotImplementedError  # pragma: no cover

    def contributions(self, X: pd.DataFrame) -> tuple[Floats, Floats]:
        """Exact linear SHAP values per original feature, and the base value.

        A feature's contribution is ``coef · (z - mean z)`` over its design
        columns (one-hot columns of a text feature add up), with the mean
        taken over the training rows. ``base + contributions.sum(axis=1)``
        equals the model's margin exactly (log-odds or prediction).
        """
        design = self._design(X)
        coef, intercept = self._linear_terms()
        weighted = (design - self.design_mean_) * coef
        values = np.column_stack([weighted[:, block].sum(axis=1) for block in self._blocks()])
        base = np.full(len(design), intercept + float(self.design_mean_ @ coef))
        return values, base


class LogisticChurn(_ClassifierOutputs, _LinearExplained):
    """Logistic regression on one-hot text and standardised numbers.

    Numbers are median-imputed, get a missing-value indicator and are
    standardised; text is one-hot encoded, missing text being a level of its
    own and unseen levels encoding as zeros.

    Parameters
    ----------
    C : float, default=1.0
        Inverse strength of the L2 penalty.
    imbalance : {"balanced", "none"}, default="balanced"
        ``"balanced"`` uses ``class_weight="balanced"`` (probabilities then
        run high; calibrate on later data).
    min_frequency : int or float, default=10
        Levels rarer than this (count, or share when below 1) pool together.
    max_iter : int, default=1000
        Most solver iterations.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"logins": rng.poisson(5, 300).astype(float),
    ...                   "plan": rng.choice(["basic", "pro"], 300)})
    >>> y = (X["logins"] < 4).astype(int)
    >>> model = LogisticChurn().fit(X, y)
    >>> contrib, base = model.contributions(X.head(2))
    >>> contrib.shape
    (2, 2)
    >>> bool(np.allclose(base + contrib.sum(axis=1), model.decision_function(X.head(2))))
    True
    """

    def __init__(
        self,
        *,
        C: float = 1.0,
        imbalance: Imbalance = "balanced",
        min_frequency: int | float = 10,
        max_iter: int = 1000,
    ) -> None:
        self.C = C
        self.imbalance = imbalance
        self.min_frequency = min_frequency
        self.max_iter = max_iter

    def fit(self, X: pd.DataFrame, y: Any) -> LogisticChurn:
        """Train on the feature frame ``X`` and two-class labels ``y``; returns self."""
        _check_number("C", self.C, 0, low_open=True)
        _check_number("max_iter", self.max_iter, 1, integer=True)
        _check_choice("imbalance", self.imbalance, get_args(Imbalance))
        X = _check_frame(X, "X")
        self.classes_, y01 = _binary_target(y, len(X))
        design = self._fit_design(X)
        self.design_mean_ = design.mean(axis=0)
        self.model_ = LogisticRegression(
            C=self.C,
            class_weight="balanced" if self.imbalance == "balanced" else None,
            max_iter=self.max_iter,
        ).fit(design, y01)
        return self

    def _linear_terms(self) -> tuple[Floats, float]:
        return np.asarray(self.model_.coef_[0], dtype=np.float64), float(self.model_.intercept_[0])

    def _margin(self, X: pd.DataFrame) -> Floats:
        design = self._design(X)  # checks fitted first
        return np.asarray(self.model_.decision_function(design), dtype=np.float64)


class LinearTarget(RegressorMixin, _LinearExplained):  # type: ignore[misc]
    """Ridge regression on the same encoding as :class:`LogisticChurn`.

    Parameters
    ----------
    alpha : float, default=1.0
        Strength of the L2 penalty.
    min_frequency : int or float, default=10
        Levels rarer than this pool together.

    Examples
    --------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"seats": [1.0, 2.0, 3.0, 4.0]})
    >>> model = LinearTarget(alpha=1e-9).fit(X, [10.0, 20.0, 30.0, 40.0])
    >>> round(float(model.predict(pd.DataFrame({"seats": [5.0]}))[0]), 6)
    50.0
    """

    def __init__(self, *, alpha: float = 1.0, min_frequency: int | float = 10) -> None:
        self.alpha = alpha
        self.min_frequency = min_frequency

    def fit(self, X: pd.DataFrame, y: Any) -> LinearTarget:
        """Train on the feature frame ``X`` and the numeric target ``y``; returns self."""
        _check_number("alpha", self.alpha, 0)
        X = _check_frame(X, "X")
        target = _regression_target(y, len(X))
        design = self._fit_design(X)
        self.design_mean_ = design.mean(axis=0)
        self.model_ = Ridge(alpha=self.alpha).fit(design, target)
        return self

    def _linear_terms(self) -> tuple[Floats, float]:
        return np.asarray(self.model_.coef_, dtype=np.float64), float(self.model_.intercept_)

    def predict(self, X: pd.DataFrame) -> Floats:
        """Predicted target of each row, shape (n_rows,)."""
        design = self._design(X)  # checks fitted first
        return np.asarray(self.model_.predict(design), dtype=np.float64)


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


# -- factory --------------------------------------------------------------------------------

_ESTIMATORS: dict[tuple[str, str], type[_FrameEstimator]] = {
    ("lightgbm", "binary"): LightGBMChurn,
    ("lightgbm", "regression"): LightGBMTarget,
    ("logistic", "binary"): LogisticChurn,
    ("logistic", "regression"): LinearTarget,
    ("mlp", "binary"): MLPChurn,
    ("mlp", "regression"): MLPTarget,
}

#: Settings every caller may pass; dropped for estimators that have no use for them.
_COMMON_PARAMS = frozenset({"random_state", "n_jobs"})


def make_estimator(kind: EstimatorKind, task: TaskKind, **params: Any) -> Any:
    """Build the estimator for a model kind and a target kind.

    Parameters
    ----------
    kind : {"lightgbm", "logistic", "mlp"}
        The model family. ``"logistic"`` with ``task="regression"`` is a
        ridge regression (:class:`LinearTarget`).
    task : {"binary", "regression"}
        The target kind.
    **params
        Parameters of the estimator. ``random_state`` and ``n_jobs`` are
        accepted for every kind and dropped where they do not apply.

    Returns
    -------
    estimator
        An unfitted estimator.

    Raises
    ------
    ConfigError
        If the kind, the task or a parameter name is not known.

    Examples
    --------
    >>> make_estimator("lightgbm", "binary", num_leaves=7, random_state=1)
    LightGBMChurn(num_leaves=7, random_state=1)
    >>> make_estimator("logistic", "regression", random_state=1)
    LinearTarget()
    """
    _check_choice("kind", kind, get_args(EstimatorKind))
    _check_choice("task", task, get_args(TaskKind))
    cls = _ESTIMATORS[(kind, task)]
    accepted = set(cls().get_params())
    unknown = sorted(set(params) - accepted - _COMMON_PARAMS)
    if unknown:
        raise ConfigError(
            f"{cls.__name__} has no parameter {', '.join(unknown)}; "
            f"it takes {', '.join(sorted(accepted))}"
        )
    return cls(**{name: value for name, value in params.items() if name in accepted})
