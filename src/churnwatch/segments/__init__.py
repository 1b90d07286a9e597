"""Segments: accounts grouped by how they behave, named from their profiles.

A Gaussian mixture is fitted on scaled behaviour features (counts and
durations through ``log1p``, then scaled robustly between the 10th and
90th percentiles); the number of segments is the one with the lowest BIC
over a range (2 to 8 by default), each fitted from several seeded
k-means starts. A PCA of the same matrix gives the 2-D map.

Each segment is then compared with the population on interpretable axes
(activity, recency, trend, tenure, lifetime, breadth of use, payments) and
named by a rule table (:data:`NAMING_RULES`): "Power users", "Steady",
"Casual", "Fading", "One-and-done", "New and exploring", "Dormant",
"Payment trouble". Per segment: size, share, churn rate, revenue and the
median of every feature.

Labels are stable: the same data, in any row order, gives the same
assignments, ids and names (rows are sorted by account before fitting;
segments are numbered from the most active); and a run given the previous
run's profiles keeps the ids and names of the segments it matches
(Hungarian matching on the profiles).

Entry points
------------
- :func:`segment_accounts` (warehouse + settings, as of a day) and
  :func:`segment_frame` (a feature frame): a :class:`Segmentation`.
- :class:`SegmentModel`: the fitted model, to assign other frames.
- Figures (plotly) for reports: :func:`segment_scatter` (PCA map colored by
  segment), :func:`segment_profile_table` and :func:`segment_profile_bars`.

Examples
--------
>>> import numpy as np, pandas as pd
>>> from churnwatch.segments import segment_frame
>>> rng = np.random.default_rng(0)
>>> frame = pd.DataFrame({
...     "account_id": [f"a{i:03}" for i in range(300)],
...     "events_30d": np.r_[rng.poisson(40, 150), rng.poisson(2, 150)],
...     "tenure_days": np.r_[rng.uniform(300, 600, 150), rng.uniform(3, 20, 150)]})
>>> result = segment_frame(frame, k_range=(1, 4))
>>> result.profiles[["segment_id", "segment", "accounts"]]
   segment_id            segment  accounts
0           0        Power users       150
1           1  New and exploring       150
"""

from __future__ import annotations

from churnwatch.segments._charts import (
    segment_profile_bars,
    segment_profile_table,
    segment_scatter,
)
from churnwatch.segments._model import DEFAULT_BEHAVIOUR, BehaviourFeature, SegmentModel
from churnwatch.segments._naming import AXES, NAMING_RULES, NamingRule, name_segments
from churnwatch.segments._run import (
    BREADTH_FEATURE,
    Segmentation,
    segment_accounts,
    segment_frame,
)

__all__ = [
    "AXES",
    "BREADTH_FEATURE",
    "DEFAULT_BEHAVIOUR",
    "NAMING_RULES",
    "BehaviourFeature",
    "NamingRule",
    "SegmentModel",
    "Segmentation",
    "name_segments",
    "segment_accounts",
    "segment_frame",
    "segment_profile_bars",
    "segment_profile_table",
    "segment_scatter",
]
