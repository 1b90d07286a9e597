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

from typing import Any, get_args

from churnwatch.errors import ConfigError
from churnwatch.models._estimator_base import (
    EstimatorKind,
    Imbalance,
    TaskKind,
    _check_choice,
    _FrameEstimator,
)
from churnwatch.models._lightgbm import LightGBMChurn, LightGBMTarget
from churnwatch.models._linear import LinearTarget, LogisticChurn
from churnwatch.models._mlp import MLPChurn, MLPTarget

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
