"""The operational store: tracker state, ledgers, outbox and outcomes.

SQLite in WAL mode by default (a file in the project folder), Postgres or
MySQL/MariaDB in production, through SQLAlchemy Core. Schema versions are
applied by :meth:`Store.migrate` (which :func:`open_store` calls); writers
work in short transactions from :meth:`Store.transaction`.

=====================  ===================================================================
``tracker_accounts``   every account (and product) ever seen in a snapshot: the parent table
``churn_ledger``       open at-risk episodes: at most one per account and product
``win_ledger``         re-adopted accounts; never at the same time as a churn_ledger row
``transitions``        append-only history of what happened each day (the KPIs' source)
``tracker_runs``       one row per snapshot date processed (re-runs are no-ops)
``outbox``             notifications to deliver, written with the state change
``outcomes``           CSM answers (won / lost / not useful)
``crm_activity``       imported CRM contacts
``api_keys``           API keys of the REST API: SHA-256 digests and scopes, never the keys
``inbox_events``       events posted to the REST API, waiting to be drained into the warehouse
=====================  ===================================================================

Examples
--------
>>> import sqlalchemy as sa
>>> from churnwatch.store import TRACKER_ACCOUNTS, open_store
>>> with open_store("sqlite://") as store:
...     with store.engine.connect() as connection:
...         connection.execute(sa.select(sa.func.count()).select_from(TRACKER_ACCOUNTS)).scalar()
0
"""

from __future__ import annotations

from churnwatch.store._bulk import Constant, bulk_write, read_columns
from churnwatch.store._store import DEFAULT_STORE_URL, MIGRATIONS, Migration, Store, open_store
from churnwatch.store._tables import (
    API_KEYS,
    CHURN_LEDGER,
    CRM_ACTIVITY,
    INBOX_EVENTS,
    OUTBOX,
    OUTCOMES,
    SCHEMA_MIGRATIONS,
    TRACKER_ACCOUNTS,
    TRACKER_RUNS,
    TRANSITIONS,
    WIN_LEDGER,
    UtcDateTime,
    metadata,
)

__all__ = [
    "API_KEYS",
    "CHURN_LEDGER",
    "CRM_ACTIVITY",
    "DEFAULT_STORE_URL",
    "INBOX_EVENTS",
    "MIGRATIONS",
    "OUTBOX",
    "OUTCOMES",
    "SCHEMA_MIGRATIONS",
    "TRACKER_ACCOUNTS",
    "TRACKER_RUNS",
    "TRANSITIONS",
    "WIN_LEDGER",
    "Constant",
    "Migration",
    "Store",
    "UtcDateTime",
    "bulk_write",
    "metadata",
    "open_store",
    "read_columns",
]
