"""Survival analysis: how long accounts last, and what shortens it.

The one call for a report or a dashboard is :func:`analyze_survival`::

    from churnwatch.survival import analyze_survival, cox_on_features

    analysis = analyze_survival(warehouse, settings, by="plan")
    analysis.medians            # median lifetime (with CI) overall and per plan
    analysis.retention          # retention at days 7 / 30 / 90 (with CI)
    analysis.by_group.logrank   # log-rank test across plans, and per pair
    analysis.figure()           # Plotly: curves with bands, log-rank p in the title
    cox = cox_on_features(warehouse, settings)   # hazard ratios on behaviour features
    hazard_ratio_figure(cox)    # Plotly: hazard ratios, assumption violations marked

The pieces:

- **Durations** (:func:`derive_durations`): subscription tenure (periods
  chained as the subscription churn label chains them, with its grace gap),
  activity (first event until ``inactivity_days`` of silence), or the tenure
  and label of a one-snapshot table; censored at the observation end; nothing
  after it is read.
- **Kaplan-Meier** (:func:`kaplan_meier`): lifelines' estimates per group as
  tidy tables; medians the curve never reaches are "more than N days", not a
  number; log-rank across groups and per pair.
- **Cox** (:func:`fit_cox`, :func:`cox_on_features`): hazard ratios per
  standard deviation of behaviour features measured at a cutoff, with the
  proportional-hazards test per covariate and a verdict in words.
- **Time to churn** (:func:`time_to_churn`): for each account still active,
  the median remaining days given how long it has lasted,
  ``S(t + u) / S(t) = 0.5`` on the Kaplan-Meier curve; scoring writes it to
  ``risk_scores`` as ``predicted_days_to_churn``. From a Cox model instead:
  :func:`cox_time_to_churn` (lifelines' ``predict_median`` with
  ``conditional_after``).

Everything wraps lifelines (``KaplanMeierFitter``, ``logrank_test``,
``multivariate_logrank_test``, ``CoxPHFitter``, ``proportional_hazard_test``)
and uses its argument names (``durations``, ``event_observed``); durations are
in days.

Examples
--------
>>> from churnwatch.survival import kaplan_meier
>>> curves = kaplan_meier([2, 4, 4, 7, 9], event_observed=[1, 1, 0, 1, 0])
>>> curves.median_text()
'7 days (95% CI 2–∞)'
"""

from __future__ import annotations

from churnwatch.survival._analysis import SurvivalAnalysis, analyze_survival
from churnwatch.survival._cox import (
    BEHAVIOUR_COVARIATES,
    CoxResult,
    cox_on_features,
    fit_cox,
    landmark_frame,
)
from churnwatch.survival._durations import (
    Basis,
    Durations,
    activity_durations,
    derive_durations,
    snapshot_durations,
    subscription_durations,
    with_attribute,
)
from churnwatch.survival._figures import hazard_ratio_figure, survival_figure
from churnwatch.survival._kaplan_meier import LogRankResult, SurvivalCurves, kaplan_meier
from churnwatch.survival._time_to_churn import (
    TimeToChurn,
    conditional_median_remaining,
    cox_time_to_churn,
    predicted_days_to_churn,
    time_to_churn,
)

__all__ = [
    "BEHAVIOUR_COVARIATES",
    "Basis",
    "CoxResult",
    "Durations",
    "LogRankResult",
    "SurvivalAnalysis",
    "SurvivalCurves",
    "TimeToChurn",
    "activity_durations",
    "analyze_survival",
    "conditional_median_remaining",
    "cox_on_features",
    "cox_time_to_churn",
    "derive_durations",
    "fit_cox",
    "hazard_ratio_figure",
    "kaplan_meier",
    "landmark_frame",
    "predicted_days_to_churn",
    "snapshot_durations",
    "subscription_durations",
    "survival_figure",
    "time_to_churn",
    "with_attribute",
]
