"""Churn models that can be trusted: backtested, calibrated, explained, registered.

The path from a warehouse to a promoted model:

1. :func:`training_frame` labels the accounts at a schedule of cutoffs
   (one or several label specs) and computes their features there.
2. :func:`backtest_frame` replays the pipeline by rolling origin: at each
   test cutoff it trains on what had settled by then, beside two baselines
   (days since the last event; logistic regression), and reports ROC AUC,
   PR AUC, log loss, Brier, lift and recall in the top 10% and calibration.
3. :func:`train_model` searches hyperparameters with time-aware folds, fits
   LightGBM (blended with a logistic regression when that ranks the search's
   held-out rows better; or a logistic regression, or an MLP) and calibrates
   its scores on later held-out cutoffs, so that a score of 0.3 means 30% churn.
4. :func:`register_model` saves it in a :class:`ModelRegistry` with its
   feature and label specs, training window, metrics, library versions, a
   fingerprint of the data and a drift profile; versions are listed, shown
   and promoted, and :func:`churnwatch.scoring.score_accounts` applies the
   promoted ones.

Every estimator follows the scikit-learn contract and explains its scores
(:meth:`TrainedModel.reasons`); :func:`model_report` writes the charts.
"""

from __future__ import annotations

from churnwatch.models._backtest import BacktestResult, Fold, backtest, rolling_origin_folds
from churnwatch.models._blend import BlendChurn
from churnwatch.models._calibration import ScoreCalibrator
from churnwatch.models._drift import DriftProfile, psi
from churnwatch.models._estimators import (
    LightGBMChurn,
    LightGBMTarget,
    LinearTarget,
    LogisticChurn,
    MLPChurn,
    MLPTarget,
    make_estimator,
)
from churnwatch.models._frame import TrainingFrame, training_frame
from churnwatch.models._metrics import binary_metrics, regression_metrics, reliability_table
from churnwatch.models._registry import LoadedModel, ModelCard, ModelRegistry, fingerprint
from churnwatch.models._report import importance_table, model_report
from churnwatch.models._search import search_params
from churnwatch.models._train import ChurnPipeline, TrainedModel, train_model
from churnwatch.models._workflow import (
    RegisteredModel,
    backtest_frame,
    recency_feature,
    register_model,
    training_schedule,
)

__all__ = [
    "BacktestResult",
    "BlendChurn",
    "ChurnPipeline",
    "DriftProfile",
    "Fold",
    "LightGBMChurn",
    "LightGBMTarget",
    "LinearTarget",
    "LoadedModel",
    "LogisticChurn",
    "MLPChurn",
    "MLPTarget",
    "ModelCard",
    "ModelRegistry",
    "RegisteredModel",
    "ScoreCalibrator",
    "TrainedModel",
    "TrainingFrame",
    "backtest",
    "backtest_frame",
    "binary_metrics",
    "fingerprint",
    "importance_table",
    "make_estimator",
    "model_report",
    "psi",
    "recency_feature",
    "register_model",
    "regression_metrics",
    "reliability_table",
    "rolling_origin_folds",
    "search_params",
    "train_model",
    "training_frame",
    "training_schedule",
]
