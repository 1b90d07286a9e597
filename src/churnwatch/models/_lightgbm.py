"""LightGBM estimators: native categoricals, class weights, early stopping, TreeSHAP."""

from __future__ import annotations

import math
from typing import Any, Literal, get_args

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.base import RegressorMixin
from sklearn.utils.validation import check_is_fitted

from churnwatch.errors import ConfigError, ModelError
from churnwatch.models._estimator_base import (
    Floats,
    Imbalance,
    _balancing_weight,
    _binary_target,
    _check_choice,
    _check_frame,
    _check_number,
    _ClassifierOutputs,
    _FrameEstimator,
    _is_categorical,
    _numeric_column,
    _regression_target,
    _threads,
)


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
                columns[f"f{i}"] = _numeric_column(column, name)
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
