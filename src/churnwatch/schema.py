"""The canonical tables: one vocabulary for every source, engine and feature.

Every source Churnwatch reads is mapped onto these tables at ingest. Identity,
types and time zones are settled there, never later: account ids are strings
(``"00001"`` stays ``"00001"``), every instant is a timezone-aware UTC timestamp,
and every table declares the key that makes a row unique, so that loading the
same data twice changes nothing.

Column types are named abstractly (``string``, ``timestamp``, ...) and rendered
for each engine by :func:`sql_type`, so one declaration serves DuckDB, Postgres
and MySQL/MariaDB alike.

Examples
--------
>>> from churnwatch.schema import TABLES
>>> TABLES["events"].required
('account_id', 'event_time', 'event_type')
>>> TABLES["events"].key
('account_id', 'event_time', 'event_type', 'user_id', 'value', 'duration_s', 'event_id')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pyarrow as pa

__all__ = [
    "LOAD_ORDER",
    "TABLES",
    "Column",
    "ColumnType",
    "Table",
    "arrow_type",
    "sql_type",
]

ColumnType = Literal["string", "timestamp", "date", "double", "bigint", "boolean", "json"]

#: How each abstract type is spelled, per dialect (sqlglot dialect names).
_TYPES: dict[str, dict[ColumnType, str]] = {
    "duckdb": {
        "string": "VARCHAR",
        "timestamp": "TIMESTAMPTZ",
        "date": "DATE",
        "double": "DOUBLE",
        "bigint": "BIGINT",
        "boolean": "BOOLEAN",
        "json": "JSON",
    },
    "postgres": {
        "string": "TEXT",
        "timestamp": "TIMESTAMPTZ",
        "date": "DATE",
        "double": "DOUBLE PRECISION",
        "bigint": "BIGINT",
        "boolean": "BOOLEAN",
        "json": "JSONB",
    },
    # MySQL has no zone-aware timestamp type: instants are stored as UTC in
    # DATETIME(6), and every connection is set to UTC so nothing shifts them.
    "mysql": {
        "string": "VARCHAR(255)",
        "timestamp": "DATETIME(6)",
        "date": "DATE",
        "double": "DOUBLE",
        "bigint": "BIGINT",
        "boolean": "BOOLEAN",
        "json": "JSON",
    },
    # Spark's TIMESTAMP is an instant (TIMESTAMP_LTZ, sessions set to UTC);
    # Spark has no JSON type: JSON is kept as its text.
    "spark": {
        "string": "STRING",
        "timestamp": "TIMESTAMP",
        "date": "DATE",
        "double": "DOUBLE",
        "bigint": "BIGINT",
        "boolean": "BOOLEAN",
        "json": "STRING",
    },
}


#: How each abstract type is held in Arrow (JSON as its text).
_ARROW_TYPES: dict[ColumnType, pa.DataType] = {
    "string": pa.string(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "date": pa.date32(),
    "double": pa.float64(),
    "bigint": pa.int64(),
    "boolean": pa.bool_(),
    "json": pa.string(),
}


def arrow_type(column_type: ColumnType) -> pa.DataType:
    """The Arrow type that holds an abstract column type.

    Examples
    --------
    >>> arrow_type("timestamp")
    TimestampType(timestamp[us, tz=UTC])
    """
    return _ARROW_TYPES[column_type]


def sql_type(column_type: ColumnType, dialect: str) -> str:
    """Spell an abstract column type in an engine's SQL.

    Parameters
    ----------
    column_type : ColumnType
        The abstract type, such as ``"timestamp"``.
    dialect : str
        A sqlglot dialect name: ``"duckdb"``, ``"postgres"`` or ``"mysql"``.

    Examples
    --------
    >>> sql_type("timestamp", "postgres")
    'TIMESTAMPTZ'
    """
    return _TYPES[dialect][column_type]


@dataclass(frozen=True)
class Column:
    """One column of a canonical table.

    Parameters
    ----------
    name : str
        Canonical column name.
    type : ColumnType
        Abstract type; see :func:`sql_type`.
    description : str
        What the column means, shown by ``churnwatch status --schema``.
    required : bool
        A row without a value here is rejected to quarantine.
    minimum : float, optional
        Smallest accepted value (durations and amounts cannot be negative).
    choices : tuple of str, optional
        The accepted values, compared after lower-casing.
    """

    name: str
    type: ColumnType
    description: str
    required: bool = False
    minimum: float | None = None
    choices: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Table:
    """A canonical table: its columns, key, and how rows of it relate to accounts.

    Parameters
    ----------
    name : str
        Table name in the warehouse.
    columns : tuple of Column
        The columns, in storage order.
    key : tuple of str
        Columns that identify a row. Matching is null-safe, so a key may hold
        optional columns (an event without ``event_id`` is identified by its
        account, time, type and measures).
    mutable : bool
        ``True`` for records that a later export may revise (an account's plan,
        a subscription's end): a row whose key is already loaded replaces it.
        ``False`` for immutable facts (events): such a row is a duplicate and
        goes to quarantine.
    time_column : str, optional
        The column that places a row in time (checked against the future).
    unknown_account : {"quarantine", "create"}
        What a row whose ``account_id`` is not in ``accounts`` does by default.
    ordered_pairs : tuple of (str, str)
        ``(start, end)`` column pairs where ``end`` may not precede ``start``.
    """

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    mutable: bool
    description: str
    time_column: str | None = None
    unknown_account: Literal["quarantine", "create"] = "quarantine"
    ordered_pairs: tuple[tuple[str, str], ...] = field(default=())

    @property
    def column_names(self) -> tuple[str, ...]:
        """The column names in storage order."""
        return tuple(c.name for c in self.columns)

    @property
    def required(self) -> tuple[str, ...]:
        """Columns that every row must fill."""
        return tuple(c.name for c in self.columns if c.required)

    def column(self, name: str) -> Column:
        """Return the column called ``name``.

        Raises
        ------
        KeyError
            If the table has no such column.
        """
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"table {self.name!r} has no column {name!r}")

    @property
    def references_accounts(self) -> bool:
        """Whether rows point at ``accounts`` through ``account_id``."""
        return self.name != "accounts" and "account_id" in self.column_names


_ATTRIBUTES = Column("attributes", "json", "Other source columns kept as a JSON object.")

TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table(
            "csms",
            (
                Column("csm_id", "string", "Customer-success manager id.", required=True),
                Column("name", "string", "Display name."),
                Column("email", "string", "E-mail address, used to find them on Slack."),
                Column("slack_user_id", "string", "Slack member id, when known."),
                Column("region", "string", "Region they cover."),
                _ATTRIBUTES,
            ),
            key=("csm_id",),
            mutable=True,
            description="The customer-success managers who own accounts.",
        ),
        Table(
            "accounts",
            (
                Column("account_id", "string", "The customer entity predicted on.", required=True),
                Column("created_at", "timestamp", "When the account signed up."),
                Column("name", "string", "Account or merchant name."),
                Column("plan", "string", "Current plan or tier."),
                Column("region", "string", "Region or country."),
                Column("platform", "string", "Signup platform or device family."),
                Column("referral_source", "string", "Acquisition channel."),
                Column("csm_id", "string", "Owning customer-success manager."),
                Column("mrr", "double", "Monthly recurring revenue.", minimum=0),
                Column("gmv", "double", "Gross merchandise value per month.", minimum=0),
                Column("churned", "boolean", "Churn label of one-snapshot datasets."),
                Column("churned_at", "timestamp", "When the account churned, if known."),
                Column(
                    "tenure_days", "double", "Tenure in days of one-snapshot datasets.", minimum=0
                ),
                _ATTRIBUTES,
            ),
            key=("account_id",),
            mutable=True,
            description="One row per customer entity being predicted.",
            time_column="created_at",
        ),
        Table(
            "users",
            (
                Column("user_id", "string", "A person inside an account.", required=True),
                Column("account_id", "string", "The account the user belongs to.", required=True),
                Column("created_at", "timestamp", "When the user signed up."),
                Column("email", "string", "E-mail address."),
                Column("name", "string", "Display name."),
                _ATTRIBUTES,
            ),
            key=("user_id",),
            mutable=True,
            description="People inside accounts.",
            time_column="created_at",
        ),
        Table(
            "subscriptions",
            (
                Column("subscription_id", "string", "Source id of the subscription, if any."),
                Column("account_id", "string", "The subscribing account.", required=True),
                Column("started_at", "timestamp", "Start of the period.", required=True),
                Column("ended_at", "timestamp", "End of the period; null while active."),
                Column("status", "string", "Status in the source (active, canceled, ...)."),
                Column("plan", "string", "Plan or product."),
                Column("mrr", "double", "Monthly recurring revenue of the period.", minimum=0),
                Column("quantity", "double", "Seats or units.", minimum=0),
                Column("billing_period_months", "double", "Months per bill.", minimum=0),
                Column("discount", "double", "Discount fraction or amount.", minimum=0),
                _ATTRIBUTES,
            ),
            key=("account_id", "subscription_id", "started_at", "plan"),
            mutable=True,
            description="One row per subscription period.",
            time_column="started_at",
            ordered_pairs=(("started_at", "ended_at"),),
        ),
        Table(
            "payments",
            (
                Column("payment_id", "string", "Source id of the charge or invoice, if any."),
                Column("account_id", "string", "The paying account.", required=True),
                Column("paid_at", "timestamp", "When the charge was attempted.", required=True),
                Column("amount", "double", "Charged amount in currency units.", required=True),
                Column("currency", "string", "ISO currency code."),
                Column(
                    "status",
                    "string",
                    "Outcome of the attempt.",
                    required=True,
                    choices=("succeeded", "failed", "refunded", "pending"),
                ),
                Column("failure_reason", "string", "Why a failed charge failed."),
                Column("subscription_id", "string", "Subscription billed, if known."),
                _ATTRIBUTES,
            ),
            key=("account_id", "payment_id", "paid_at"),
            mutable=True,
            description="One row per charge attempt.",
            time_column="paid_at",
        ),
        Table(
            "events",
            (
                Column("event_id", "string", "Source id of the event, if any."),
                Column("account_id", "string", "The acting account.", required=True),
                Column("user_id", "string", "The acting user, if known."),
                Column("event_time", "timestamp", "When it happened.", required=True),
                Column(
                    "event_type",
                    "string",
                    "What happened (login, post, session, ...).",
                    required=True,
                ),
                Column("duration_s", "double", "Duration of sessions, in seconds.", minimum=0),
                Column("value", "double", "A measure carried by the event."),
                Column("properties", "json", "Other event properties as a JSON object."),
            ),
            key=(
                "account_id",
                "event_time",
                "event_type",
                "user_id",
                "value",
                "duration_s",
                "event_id",
            ),
            mutable=False,
            description="One row per action or session.",
            time_column="event_time",
        ),
        Table(
            "adoption_snapshots",
            (
                Column("snapshot_date", "date", "Day of the snapshot.", required=True),
                Column("account_id", "string", "The account.", required=True),
                Column("product", "string", "Product the flag is about, if several."),
                Column("is_enabled", "boolean", "Whether the product is on.", required=True),
                Column("name", "string", "Account or merchant name on that day."),
                Column("csm_id", "string", "Owning customer-success manager on that day."),
                Column("region", "string", "Region on that day."),
                Column("revenue", "double", "Revenue on that day's report.", minimum=0),
                Column("gmv", "double", "Gross merchandise value on that day's report.", minimum=0),
                _ATTRIBUTES,
            ),
            key=("snapshot_date", "account_id", "product"),
            mutable=True,
            description="One row per account per snapshot day.",
            time_column="snapshot_date",
            # A daily adoption report is how new accounts first appear.
            unknown_account="create",
        ),
    )
}

#: Tables in the order loads must run so that references resolve.
LOAD_ORDER: tuple[str, ...] = (
    "csms",
    "accounts",
    "users",
    "subscriptions",
    "payments",
    "events",
    "adoption_snapshots",
)
