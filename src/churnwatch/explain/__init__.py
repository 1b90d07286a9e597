"""Why a model scores an account as it does, in words a customer-success manager would use.

A churn model hands back one number per account. To act on it, someone needs
the *why*: "no activity for 45 days (typical: 3)" tells a customer-success
manager what to ask about, a SHAP value does not. This module turns a model's
per-feature contributions into such reasons, and offers the two global views
that go with them:

- :func:`top_reasons` picks, for every row, the ``k`` features whose
  contribution pushes the score *up* most and words each one with
  :func:`describe_reason`. A feature that lowers the risk is never given as a
  reason for it.
- :func:`describe_reason` states the account's value against the *typical*
  value -- the training median of a number, the most frequent level of a
  category (:func:`reference_values`) -- using the feature's
  :class:`~churnwatch.features.FeatureSpec` (kind, function, window, event
  type) to say it in plain words: "sessions in the last 30 days fell 80%
  against the 30 days before", "2 failed payments in the last 90 days
  (typical: 0)", "on the 'basic' plan (most common: 'pro')". Features without
  a spec (a Telco or bank column) read "<name> is 2.3 (typical: 5.1)".
- :func:`global_importance` ranks features by their mean absolute
  contribution; :func:`partial_dependence` shows how the prediction moves
  when one feature is set to each value of a grid, on average and per row
  (ICE), for numeric and text columns alike.

Contributions come in as a plain ``(rows, features)`` array (TreeSHAP values,
exact linear contributions, occlusion differences...), so nothing here
depends on a particular estimator.

Examples
--------
>>> import numpy as np
>>> import pandas as pd
>>> from churnwatch.features import FeatureSpec
>>> X = pd.DataFrame({"days_since_last_event": [45.0, 2.0], "plan": ["basic", "pro"]})
>>> specs = {"days_since_last_event": FeatureSpec("days_since_last_event", "recency"),
...          "plan": FeatureSpec("plan", "attribute", column="plan")}
>>> references = {"days_since_last_event": 3.0, "plan": "pro"}
>>> contributions = np.array([[1.2, 0.3], [-0.4, -0.1]])
>>> reasons = top_reasons(contributions, X, list(X.columns), references, specs, k=3)
>>> [r.text for r in reasons[0]]
['no activity for 45 days (typical: 3)', "on the 'basic' plan (most common: 'pro')"]
>>> reasons[1]
[]
"""

from __future__ import annotations

from churnwatch.explain._global import (
    PartialDependence,
    global_importance,
    partial_dependence,
    reference_values,
)
from churnwatch.explain._reasons import Reason, top_reasons
from churnwatch.explain._wording import describe_reason

__all__ = [
    "PartialDependence",
    "Reason",
    "describe_reason",
    "global_importance",
    "partial_dependence",
    "reference_values",
    "top_reasons",
]
