"""Customer health: a configurable 0-100 score, its tiers, and how good it is.

The **health score** is what customer-success suites show beside each
account: a weighted mean of a few signals, each mapped to 0-100 points
(see :class:`HealthComponent`), then a tier:

=========  =========
Thriving   80 - 100
Healthy    60 - 79
At-risk    40 - 59
Critical   0 - 39
=========  =========

The default reads five signals of the default feature set: recency
(``days_since_last_event``), frequency (``events_30d``), velocity change
(``events_trend_ratio_30d``), payment success (``payment_success_rate_90d``)
and support calls (``support_contacts_90d``); a signal whose table the data
lacks drops out with a note and its weight goes to the others. A project
declares its own in ``[[health.components]]`` tables.

Beside it, the **model-based score** ``100 * (1 - P(churn))`` reads the
latest calibrated probabilities in ``risk_scores``. And since a score is
only as good as its rules, :func:`backtest_health` computes it at past
cutoffs and sets it against the churn that followed: ROC AUC, lift and
recall of the lowest-scored 10%, churn per tier.

Entry points
------------
- :func:`account_health` (warehouse + settings, as of a day) and
  :func:`score_health` (a feature frame): the scores and tiers.
- :func:`model_health`: the model-based score of the latest scoring run.
- :func:`backtest_health` (warehouse + settings) and :func:`health_backtest`
  (a frame with labels): the score against later churn.
- Figures (plotly) for reports: :func:`health_histogram` (scores stacked by
  tier), :func:`tier_churn_bars` (backtest churn per tier).

Examples
--------
>>> import pandas as pd
>>> from churnwatch.health import HealthComponent, score_health
>>> frame = pd.DataFrame({"account_id": ["a", "b", "c"],
...                       "days_since_last_event": [2.0, 20.0, None]})
>>> recency = HealthComponent("days_since_last_event", "lower_is_better",
...                           bad=30, good=3, missing="worst")
>>> score_health(frame, [recency]).scores["health_tier"].tolist()
['Thriving', 'Critical', 'Critical']
"""

from __future__ import annotations

from churnwatch._health_settings import DEFAULT_COMPONENTS, HealthComponent, HealthSettings
from churnwatch.health._backtest import HealthBacktest, backtest_health, health_backtest
from churnwatch.health._charts import TIER_COLORS, health_histogram, tier_churn_bars
from churnwatch.health._run import account_health, health_components, model_health, model_target
from churnwatch.health._score import (
    HEALTH_TIERS,
    HealthScores,
    component_points,
    health_tier,
    score_health,
)

__all__ = [
    "DEFAULT_COMPONENTS",
    "HEALTH_TIERS",
    "TIER_COLORS",
    "HealthBacktest",
    "HealthComponent",
    "HealthScores",
    "HealthSettings",
    "account_health",
    "backtest_health",
    "component_points",
    "health_backtest",
    "health_components",
    "health_histogram",
    "health_tier",
    "model_health",
    "model_target",
    "score_health",
    "tier_churn_bars",
]
