"""Declarative point-in-time features, compiled once for every engine.

A :class:`FeatureSpec` declares one feature of an account at a cutoff (an
aggregation of events over a window, a recency, a payment failure rate, the
plan at the cutoff, ...). :func:`compute_features` compiles a list of specs
into one query per source table -- events, users, payments, subscriptions,
accounts -- each computing all of its features for all cutoffs in a single
scan, runs them on the warehouse's engine (DuckDB, Postgres, MySQL/MariaDB;
the same expressions render for Spark) and returns one Arrow frame.

A feature at cutoff ``c`` reads only rows dated before ``c``.

Examples
--------
>>> import datetime as dt
>>> import pyarrow as pa
>>> from churnwatch.warehouse import connect
>>> from churnwatch.features import FeatureSpec, compute_features, explain
>>> specs = [FeatureSpec("logins_7d", "aggregate", "count", window_days=7,
...                      event_type="login")]
>>> print(explain(specs)[0])
logins_7d (int64): count of events of type 'login' in the 7 days before the cutoff [source: events]
>>> with connect("duckdb:///:memory:") as wh:
...     wh.ensure_schema()
...     wh.append("events", pa.table({
...         "account_id": ["a1", "a1"], "event_type": ["login", "login"],
...         "event_time": pa.array([dt.datetime(2024, 1, 28, tzinfo=dt.UTC),
...                                 dt.datetime(2024, 2, 5, tzinfo=dt.UTC)],
...                                pa.timestamp("us", tz="UTC"))}))
...     cutoffs = pa.table({"account_id": ["a1"], "cutoff": pa.array(
...         [dt.datetime(2024, 2, 1, tzinfo=dt.UTC)], pa.timestamp("us", tz="UTC"))})
...     compute_features(wh, cutoffs, specs).column("logins_7d").to_pylist()
[1]
"""

from __future__ import annotations

from churnwatch.features._compile import compile_features
from churnwatch.features._compute import compute_features
from churnwatch.features._defaults import default_features, merge_features
from churnwatch.features._settings import feature_set
from churnwatch.features._spec import FeatureKind, FeatureSpec, explain

__all__ = [
    "FeatureKind",
    "FeatureSpec",
    "compile_features",
    "compute_features",
    "default_features",
    "explain",
    "feature_set",
    "merge_features",
]
