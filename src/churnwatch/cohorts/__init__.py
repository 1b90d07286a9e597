"""Cohorts and revenue retention, computed in the warehouse.

Three results, each one call from an open warehouse (and, optionally, the
project's settings, for ``[data] observation_end``); only the small matrix or
monthly table comes back to Python:

===============================================  =====================================
``logo_retention(warehouse, settings)``          :class:`CohortTable`: accounts of each
                                                 signup cohort active k periods later
                                                 (month or week; activity or
                                                 subscription basis)
``revenue_retention(warehouse, settings)``       :class:`RevenueRetention`: each revenue
                                                 cohort's MRR k months later, GRR and
                                                 NRR per month
``mrr_movements(warehouse, settings)``           :class:`MRRMovements`: new, expansion,
                                                 reactivation, contraction and churned
                                                 MRR per month
===============================================  =====================================

and a Plotly figure of each: :func:`retention_heatmap`, :func:`revenue_heatmap`,
:func:`movements_chart`. A report builds them like this::

    from churnwatch.cohorts import (
        logo_retention, mrr_movements, movements_chart, retention_heatmap,
        revenue_heatmap, revenue_retention,
    )
    html = [
        retention_heatmap(logo_retention(wh, settings)).to_html(full_html=False),
        revenue_heatmap(revenue_retention(wh, settings)).to_html(full_html=False),
        movements_chart(mrr_movements(wh, settings)).to_html(full_html=False),
    ]

The definitions, in short (each module says more):

- **Cohort**: the period (UTC calendar month, or week from Monday) of the
  account's signup (``accounts.created_at``), first event or first
  subscription start: ``cohort_by`` says which.
- **Active in period k**: an event in the k-th period after the cohort's
  (``basis="activity"``), or a subscription running during it
  (``basis="subscription"``).
- **Unknown, not 0**: a period that had not ended by the observation end
  (``observation_end=``, else ``[data] observation_end``, else midnight after
  the day of the latest event or subscription start) is NaN; on the activity
  basis, so is a period that ended before the event log began.
- **MRR of a month**: the MRR of the subscriptions running at the month's
  end, summed per account in cents, so movements add up to the change in MRR
  exactly: ``MRR(m) - MRR(m-1) = new + expansion + reactivation -
  contraction - churned``.
- **NRR / GRR** of month m: of the accounts with MRR in month m - L
  (``lookback_months``, 1 by default), (start + expansion - contraction -
  churned) / start, and the same without expansion (at most 100%).

Examples
--------
>>> from sqlglot import exp
>>> from churnwatch.warehouse import connect
>>> with connect("duckdb:///:memory:") as wh:
...     wh.ensure_schema()
...     _ = wh.execute(exp.insert("VALUES ('a', '2024-01-03'), ('b', '2024-01-20')",
...                               "accounts", columns=["account_id", "created_at"]))
...     _ = wh.execute(exp.insert(
...         "VALUES ('a', '2024-01-03', 'login'), ('a', '2024-02-07', 'login'),"
...         " ('b', '2024-01-20', 'login')", "events",
...         columns=["account_id", "event_time", "event_type"]))
...     table = logo_retention(wh, periods_count=2, observation_end="2024-03-01")
>>> table.rates.to_numpy().tolist()
[[1.0, 0.5]]
"""

from __future__ import annotations

from churnwatch.cohorts._figures import movements_chart, retention_heatmap, revenue_heatmap
from churnwatch.cohorts._movements import MOVEMENTS, MRRMovements, mrr_movements
from churnwatch.cohorts._periods import ObservationEnd
from churnwatch.cohorts._retention import Basis, CohortBy, CohortTable, logo_retention
from churnwatch.cohorts._revenue import RevenueRetention, revenue_retention

__all__ = [
    "MOVEMENTS",
    "Basis",
    "CohortBy",
    "CohortTable",
    "MRRMovements",
    "ObservationEnd",
    "RevenueRetention",
    "logo_retention",
    "movements_chart",
    "mrr_movements",
    "retention_heatmap",
    "revenue_heatmap",
    "revenue_retention",
]
