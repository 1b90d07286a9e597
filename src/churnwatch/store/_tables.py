"""The tables of the operational store, as SQLAlchemy Core objects.

Names and columns are the contract between the tracker (which writes the
ledgers and the outbox), the dispatcher (which delivers the outbox) and the
outcome and KPI code (which reads the history). Types are SQLAlchemy's
portable ones, so one declaration serves SQLite, Postgres and MySQL/MariaDB.

Every instant is stored as UTC without a zone (SQLite and MySQL have no
zone-aware type) and comes back as a timezone-aware UTC ``datetime``; an
aware value of any zone is converted to UTC on the way in, and a naive one is
refused, since its meaning would be a guess.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

__all__ = [
    "API_KEYS",
    "CHURN_LEDGER",
    "CRM_ACTIVITY",
    "INBOX_EVENTS",
    "OUTBOX",
    "OUTCOMES",
    "SCHEMA_MIGRATIONS",
    "TRACKER_ACCOUNTS",
    "TRACKER_RUNS",
    "TRANSITIONS",
    "WIN_LEDGER",
    "UtcDateTime",
    "define_api_tables",
    "define_tables",
    "metadata",
]


class UtcDateTime(sa.types.TypeDecorator[dt.datetime]):
    """A timezone-aware UTC instant, stored as a zone-less UTC ``DATETIME``.

    Examples
    --------
    >>> import datetime as dt
    >>> kind = UtcDateTime()
    >>> paris = dt.timezone(dt.timedelta(hours=1))
    >>> kind.process_bind_param(dt.datetime(2024, 1, 1, 9, tzinfo=paris), None)
    datetime.datetime(2024, 1, 1, 8, 0)
    >>> kind.process_result_value(dt.datetime(2024, 1, 1, 8, 0), None)
    datetime.datetime(2024, 1, 1, 8, 0, tzinfo=datetime.timezone.utc)
    """

    # Microseconds on MySQL, whose DATETIME otherwise drops them: the outbox
    # orders retries by next_attempt_at.
    impl = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        """Convert an aware instant to naive UTC; refuse a naive one."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"a naive datetime ({value}) cannot be stored: give it a time zone")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        """Read a stored naive UTC instant back as an aware one."""
        if value is None:
            return None
        if isinstance(value, str):  # a value written by hand on SQLite
            value = dt.datetime.fromisoformat(value)
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class _Key(sa.types.TypeDecorator[str]):
    """A short string compared byte for byte on every engine.

    MySQL compares strings case- and accent-insensitively by default, and its
    ``utf8mb4_bin`` still ignores trailing blanks, which would merge account
    ``"a1 "`` into ``"a1"``: MySQL columns take a binary collation without
    padding where the server has one (MariaDB's ``utf8mb4_nopad_bin``, MySQL
    8's ``utf8mb4_0900_bin``), as SQLite and Postgres compare.
    """

    impl = sa.String
    cache_ok = True

    def __init__(self, length: int) -> None:
        super().__init__(length)
        self.length = length

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        """The engine's own string type, with a byte-wise collation on MySQL."""
        length = self.length
        if dialect.name in ("mysql", "mariadb"):
            version = getattr(dialect, "server_version_info", None) or (0,)
            if getattr(dialect, "is_mariadb", False):
                collation = "utf8mb4_nopad_bin"
            elif version >= (8,):
                collation = "utf8mb4_0900_bin"
            else:
                collation = "utf8mb4_bin"
            return dialect.type_descriptor(
                mysql.VARCHAR(length, charset="utf8mb4", collation=collation)
            )
        return dialect.type_descriptor(sa.String(length))


def _text(length: int) -> _Key:
    return _Key(length)


_ID = 255
_PRODUCT = 128
_WORD = 32
_MYSQL: dict[str, Any] = {"mysql_charset": "utf8mb4", "mysql_engine": "InnoDB"}


def _attributes() -> list[sa.Column[Any]]:
    """The account attributes copied from the snapshot onto each row."""
    return [
        sa.Column("name", _text(_ID)),
        sa.Column("csm_id", _text(_ID)),
        sa.Column("region", _text(_ID)),
        sa.Column("revenue", sa.Double),
        sa.Column("gmv", sa.Double),
    ]


def define_tables(meta: sa.MetaData) -> dict[str, sa.Table]:
    """Declare the store's tables (schema version 1) on ``meta``.

    Migration 1 calls this with a private ``MetaData``, so the tables it
    creates stay those of version 1 when later migrations change the public
    declarations.

    Examples
    --------
    >>> import sqlalchemy as sa
    >>> sorted(define_tables(sa.MetaData()))[:3]
    ['churn_ledger', 'crm_activity', 'outbox']
    """
    tables = [
        sa.Table(
            "schema_migrations",
            meta,
            sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("applied_at", UtcDateTime, nullable=False),
            **_MYSQL,
        ),
        sa.Table(
            "tracker_accounts",
            meta,
            sa.Column("account_id", _text(_ID), primary_key=True),
            sa.Column("product", _text(_PRODUCT), primary_key=True),
            *_attributes(),
            sa.Column("is_enabled", sa.Boolean, nullable=False),
            sa.Column("state", _text(_WORD), nullable=False),
            sa.Column("first_seen", sa.Date, nullable=False),
            sa.Column("last_seen", sa.Date, nullable=False),
            sa.Column("missing_since", sa.Date),
            sa.Column("updated_date", sa.Date, nullable=False),
            **_MYSQL,
        ),
        sa.Table(
            "churn_ledger",
            meta,
            sa.Column("episode_id", _text(_ID), primary_key=True),
            sa.Column("account_id", _text(_ID), nullable=False),
            sa.Column("product", _text(_PRODUCT), nullable=False),
            sa.Column("source", _text(_WORD), nullable=False),
            sa.Column("churned_at", UtcDateTime, nullable=False),
            *_attributes(),
            sa.Column("revenue_at_risk", sa.Double),
            sa.Column("risk_score", sa.Double),
            sa.Column("reasons", sa.Text),
            sa.Column("holdout", sa.Boolean, nullable=False),
            sa.Column("steps_sent", sa.Text, nullable=False),
            sa.Column("closed_reason", _text(_ID)),
            sa.UniqueConstraint("account_id", "product", name="uq_churn_ledger_account"),
            **_MYSQL,
        ),
        sa.Table(
            "win_ledger",
            meta,
            sa.Column("episode_id", _text(_ID), primary_key=True),
            sa.Column("account_id", _text(_ID), nullable=False),
            sa.Column("product", _text(_PRODUCT), nullable=False),
            sa.Column("source", _text(_WORD), nullable=False),
            sa.Column("churned_at", UtcDateTime, nullable=False),
            sa.Column("recovered_at", UtcDateTime, nullable=False),
            sa.Column("days_to_recover", sa.Double, nullable=False),
            *_attributes(),
            sa.Column("holdout", sa.Boolean, nullable=False),
            sa.UniqueConstraint("account_id", "product", name="uq_win_ledger_account"),
            **_MYSQL,
        ),
        sa.Table(
            "transitions",
            meta,
            sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
            sa.Column("snapshot_date", sa.Date, nullable=False),
            sa.Column("account_id", _text(_ID), nullable=False),
            sa.Column("product", _text(_PRODUCT), nullable=False),
            sa.Column("kind", _text(_WORD), nullable=False),
            sa.Column("episode_id", _text(_ID)),
            sa.Column("revenue", sa.Double),
            sa.Column("gmv", sa.Double),
            sa.Column("region", _text(_ID)),
            sa.Column("csm_id", _text(_ID)),
            sa.Column("recorded_at", UtcDateTime, nullable=False),
            sa.UniqueConstraint(
                "snapshot_date", "account_id", "product", "kind", name="uq_transitions_day"
            ),
            **_MYSQL,
        ),
        sa.Table(
            "tracker_runs",
            meta,
            sa.Column("snapshot_date", sa.Date, primary_key=True),
            sa.Column("processed_at", UtcDateTime, nullable=False),
            sa.Column("rows", sa.BigInteger, nullable=False),
            sa.Column("counts", sa.Text, nullable=False),
            **_MYSQL,
        ),
        sa.Table(
            "outbox",
            meta,
            sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
            sa.Column("idempotency_key", _text(_ID), nullable=False, unique=True),
            sa.Column("created_at", UtcDateTime, nullable=False),
            sa.Column("channel", _text(_WORD), nullable=False),
            sa.Column("recipient_csm_id", _text(_ID)),
            sa.Column("kind", _text(_WORD), nullable=False),
            sa.Column("step", _text(_WORD), nullable=False),
            sa.Column("account_id", _text(_ID)),
            sa.Column("product", _text(_PRODUCT)),
            sa.Column("episode_id", _text(_ID)),
            sa.Column("payload", sa.Text, nullable=False),
            sa.Column("status", _text(_WORD), nullable=False),
            sa.Column("attempts", sa.Integer, nullable=False),
            sa.Column("next_attempt_at", UtcDateTime, nullable=False),
            sa.Column("last_error", sa.Text),
            sa.Column("sent_at", UtcDateTime),
            sa.Column("provider_ref", _text(_ID)),
            sa.Index("ix_outbox_due", "status", "next_attempt_at"),
            **_MYSQL,
        ),
        sa.Table(
            "outcomes",
            meta,
            sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
            sa.Column("episode_id", _text(_ID), nullable=False),
            sa.Column("account_id", _text(_ID), nullable=False),
            sa.Column("product", _text(_PRODUCT), nullable=False),
            sa.Column("csm_id", _text(_ID)),
            sa.Column("outcome", _text(_WORD), nullable=False),
            sa.Column("useful", sa.Boolean),
            sa.Column("notes", sa.Text),
            sa.Column("source", _text(_WORD), nullable=False),
            sa.Column("recorded_at", UtcDateTime, nullable=False),
            sa.UniqueConstraint("episode_id", "source", "recorded_at", name="uq_outcomes_answer"),
            sa.Index("ix_outcomes_episode", "episode_id"),
            **_MYSQL,
        ),
        sa.Table(
            "crm_activity",
            meta,
            sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
            sa.Column("account_id", _text(_ID), nullable=False),
            sa.Column("csm_id", _text(_ID)),
            sa.Column("activity_at", UtcDateTime, nullable=False),
            sa.Column("kind", _text(_WORD)),
            sa.Column("notes", sa.Text),
            sa.Index("ix_crm_activity_account", "account_id", "activity_at"),
            **_MYSQL,
        ),
    ]
    return {table.name: table for table in tables}


def define_api_tables(meta: sa.MetaData) -> dict[str, sa.Table]:
    """Declare the tables of schema version 2 on ``meta``: API keys and the event inbox.

    ``api_keys`` holds the SHA-256 of each key (never the key) with its scope;
    ``inbox_events`` holds events posted to the API until they are drained
    into the warehouse's ``events`` table. ``dedupe_key`` is the event's id
    (or, for an event without one, a digest of its canonical key), unique,
    so that posting the same event again stores nothing new.

    Examples
    --------
    >>> import sqlalchemy as sa
    >>> sorted(define_api_tables(sa.MetaData()))
    ['api_keys', 'inbox_events']
    """
    tables = [
        sa.Table(
            "api_keys",
            meta,
            sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
            sa.Column("name", _text(_ID), nullable=False),
            sa.Column("scope", _text(_WORD), nullable=False),
            sa.Column("key_hash", _text(64), nullable=False, unique=True),
            sa.Column("prefix", _text(_WORD), nullable=False),
            sa.Column("created_at", UtcDateTime, nullable=False),
            sa.Column("revoked_at", UtcDateTime),
            **_MYSQL,
        ),
        sa.Table(
            "inbox_events",
            meta,
            sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
            sa.Column("dedupe_key", _text(_ID), nullable=False, unique=True),
            sa.Column("event_id", _text(_ID)),
            sa.Column("account_id", _text(_ID), nullable=False),
            sa.Column("user_id", _text(_ID)),
            sa.Column("event_time", UtcDateTime, nullable=False),
            sa.Column("event_type", _text(_ID), nullable=False),
            sa.Column("duration_s", sa.Double),
            sa.Column("value", sa.Double),
            sa.Column("properties", sa.Text),
            sa.Column("received_at", UtcDateTime, nullable=False),
            sa.Column("drained_at", UtcDateTime),
            sa.Index("ix_inbox_events_pending", "drained_at", "id"),
            **_MYSQL,
        ),
    ]
    return {table.name: table for table in tables}


#: The current declarations of every table, in one ``MetaData``.
metadata = sa.MetaData()
_TABLES = {**define_tables(metadata), **define_api_tables(metadata)}
SCHEMA_MIGRATIONS = _TABLES["schema_migrations"]
TRACKER_ACCOUNTS = _TABLES["tracker_accounts"]
CHURN_LEDGER = _TABLES["churn_ledger"]
WIN_LEDGER = _TABLES["win_ledger"]
TRANSITIONS = _TABLES["transitions"]
TRACKER_RUNS = _TABLES["tracker_runs"]
OUTBOX = _TABLES["outbox"]
OUTCOMES = _TABLES["outcomes"]
CRM_ACTIVITY = _TABLES["crm_activity"]
API_KEYS = _TABLES["api_keys"]
INBOX_EVENTS = _TABLES["inbox_events"]
