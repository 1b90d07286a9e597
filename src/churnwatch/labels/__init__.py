"""Point-in-time labels: what happens to each account after each cutoff.

A label answers one question about one account at one cutoff ``c``: did it
churn, convert, how active was it, how much did it pay, over the next
``horizon`` days. :class:`LabelSpec` says which question,
:class:`CutoffSchedule` says at which cutoffs, and :func:`make_labels` asks
the warehouse, in one query for every cutoff at once, and returns a
:class:`LabelTable`: the labels and a record of how they were made.

Time semantics
--------------
- Every time is a UTC instant; dates are their midnight UTC. Every interval
  is half-open, ``[start, end)``.
- The label at cutoff ``c`` looks at the **window** ``[c + lead, c + lead +
  horizon)`` and nothing later. Features at ``c`` see only rows before ``c``.
- **Examples** are the accounts at risk at ``c``: created before ``c``
  (``created_at < c``), and not already churned at ``c`` —

  - subscription churn: inside an active period at ``c`` (a period that
    started before ``c`` and ends after it; one ending exactly at ``c`` has
    churned already);
  - inactivity: a qualifying event in ``[c - inactivity_days, c)``;
  - adoption: enabled at the last snapshot before ``c``;
  - conversion: no paid subscription started before ``c``;
  - activity and revenue targets: every account created before ``c``.

- An account whose outcome happens during the lead time ``[c, c + lead)``
  (its period ends, it converts, its flag turns off) is gone before the
  window opens: it is counted and left out, neither positive nor negative.
- **Censoring.** Data past the *observation end* is incomplete. An example
  whose window runs past it (``c + lead + horizon > end``) is not a
  negative: its label is null, and when even the shortest horizon runs past
  it the example is left out and counted. Subscription churn needs
  ``grace_days`` more: a period ending just before the window closes may
  still be renewed within the grace gap.
- The observation end is given (``[data] observation_end``) or inferred,
  and the table says which (:func:`infer_observation_end`; for
  subscriptions the latest *start*, never the latest end).

Examples
--------
>>> from churnwatch.labels import CutoffSchedule, LabelSpec, make_labels
>>> from churnwatch.warehouse import connect
>>> with connect("duckdb:///:memory:") as wh:
...     wh.ensure_schema()
...     table = make_labels(
...         wh,
...         LabelSpec("subscription", horizon_days=(14, 30)),
...         CutoffSchedule.every("2024-01-01", "2024-04-01", months=1),
...         observation_end="2024-06-01",
...     )
>>> table.frame.column_names
['account_id', 'cutoff', 'churn_14d', 'churn_30d']
"""

from __future__ import annotations

from churnwatch.labels._make import (
    LabelCounts,
    LabelTable,
    ObservationEnd,
    accounts_at_risk,
    infer_observation_end,
    make_labels,
)
from churnwatch.labels._schedule import CutoffSchedule
from churnwatch.labels._spec import LabelKind, LabelSpec

__all__ = [
    "CutoffSchedule",
    "LabelCounts",
    "LabelKind",
    "LabelSpec",
    "LabelTable",
    "ObservationEnd",
    "accounts_at_risk",
    "infer_observation_end",
    "make_labels",
]
