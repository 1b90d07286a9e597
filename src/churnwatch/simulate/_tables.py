"""From a simulated block to Arrow tables in the canonical schema, and onto Parquet.

The stages produce numpy arrays of codes, floats and day counts; here they
become the canonical columns of :data:`churnwatch.schema.TABLES`, in their
order and with their types: timestamps as ``timestamp[us, tz=UTC]``, dates as
``date32``, JSON as strings. Strings are never formatted one row at a time:
ids are written digit by digit into one byte buffer, and every other string
column is a ``take`` from a small dictionary or an element-wise join of such
columns, which keeps 50 million events within seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from churnwatch.schema import TABLES, arrow_type
from churnwatch.simulate import _catalog as cat
from churnwatch.simulate._accounts import AccountBlock, CsmDirectory, UserBlock
from churnwatch.simulate._activity import EventBlock
from churnwatch.simulate._lifecycle import ACTIVE, CANCELED, Lifecycle
from churnwatch.simulate._sampling import Floats, Ints, group_offsets
from churnwatch.simulate._snapshots import SnapshotBlock
from churnwatch.simulate._time import to_micros

__all__ = ["IdWidths", "RowGroupSink", "arrow_schema", "block_tables", "csms_table", "format_ids"]

#: Columns worth dictionary-encoding in Parquet; unique ids and times are not.
_LOW_CARDINALITY = {
    "account_id", "user_id", "csm_id", "name", "plan", "region", "platform", "referral_source",
    "status", "currency", "failure_reason", "subscription_id", "event_type", "properties",
    "product", "attributes", "billing_period_months", "discount", "quantity", "snapshot_date",
}  # fmt: skip


def arrow_schema(table: str) -> pa.Schema:
    """The Arrow schema of a canonical table, columns in canonical order.

    Examples
    --------
    >>> arrow_schema("events").field("event_time").type
    TimestampType(timestamp[us, tz=UTC])
    """
    return pa.schema([pa.field(c.name, arrow_type(c.type)) for c in TABLES[table].columns])


def format_ids(prefix: str, numbers: Ints, width: int) -> pa.Array:
    """Format ``prefix`` + zero-padded ``numbers`` as a string array, without Python loops.

    Examples
    --------
    >>> format_ids("acc_", np.array([1, 42]), 6).to_pylist()
    ['acc_000001', 'acc_000042']
    """
    head = np.frombuffer(prefix.encode("ascii"), dtype=np.uint8)
    length = head.size + width
    buffer = np.empty((numbers.size, length), dtype=np.uint8)
    buffer[:, : head.size] = head
    rest = numbers.astype(np.int64)
    for position in range(length - 1, head.size - 1, -1):
        buffer[:, position] = 48 + rest % 10
        rest = rest // 10
    offsets = np.arange(numbers.size + 1, dtype=np.int32) * length
    return pa.StringArray.from_buffers(
        numbers.size, pa.py_buffer(offsets), pa.py_buffer(buffer.tobytes())
    )


def _strings(values: tuple[str, ...]) -> pa.Array:
    return pa.array(values, type=pa.string())


def _take(values: tuple[str, ...] | pa.Array, codes: Ints) -> pa.Array:
    dictionary = values if isinstance(values, pa.Array) else _strings(values)
    return dictionary.take(pa.array(codes, type=pa.int64()))


def _timestamps(t: Floats, start_day: int) -> pa.Array:
    """Instants in days as UTC timestamps; infinite instants (open ends) become null."""
    missing = ~np.isfinite(t)
    if missing.any():
        micros = to_micros(np.where(missing, 0.0, t), start_day)
        return pa.array(micros, type=pa.timestamp("us", tz="UTC"), mask=missing)
    return pa.array(to_micros(t, start_day), type=pa.timestamp("us", tz="UTC"))


def _doubles(values: Floats) -> pa.Array:
    missing = np.isnan(values)
    return pa.array(values, type=pa.float64(), mask=missing if missing.any() else None)


def _table(name: str, columns: dict[str, pa.Array]) -> pa.Table:
    schema = arrow_schema(name)
    return pa.Table.from_arrays([columns[f.name] for f in schema], schema=schema)


_LOWER = {
    "adjective": _strings(tuple(w.lower() for w in cat.ADJECTIVES)),
    "noun": _strings(tuple(w.lower() for w in cat.NOUNS)),
    "first": _strings(tuple(w.lower() for w in cat.FIRST_NAMES)),
    "last": _strings(tuple(w.lower() for w in cat.LAST_NAMES)),
}
_PROPERTY_DICTIONARY = _strings(tuple(p for variants in cat.EVENT_PROPERTIES for p in variants))
_PROPERTY_OFFSET = np.concatenate(
    ([0], np.cumsum([len(v) for v in cat.EVENT_PROPERTIES])[:-1])
).astype(np.int64)
_SUBSCRIPTION_ATTRIBUTES = _strings(
    (
        '{"collection_method": "charge_automatically"}',
        *(f'{{"cancel_reason": "{r}"}}' for r in cat.CANCEL_REASONS),
        '{"end_reason": "payment_failed", "dunning_attempts": 4}',
    )
)
_PAYMENT_ATTRIBUTES = _strings(tuple(f'{{"attempt": {k}}}' for k in range(len(cat.RETRY_DAYS) + 1)))
_USER_ATTRIBUTES = _strings(tuple(f'{{"role": "{r}"}}' for r in cat.USER_ROLES))
_SNAPSHOT_ATTRIBUTES = _strings(tuple(f'{{"plan": "{p}"}}' for p in cat.PLANS))


@dataclass(frozen=True)
class IdWidths:
    """Digits of each generated id (fixed per run, so ids sort as numbers)."""

    account: int
    user: int = 10
    subscription: int = 10
    payment: int = 12
    event: int = 13


def csms_table(csms: CsmDirectory) -> pa.Table:
    """The ``csms`` table of a CSM directory."""
    timezone = np.asarray(cat.REGION_TIMEZONE)[csms.region]
    team = np.asarray(cat.CSM_TEAMS)[csms.team]
    return _table(
        "csms",
        {
            "csm_id": _strings(csms.csm_id),
            "name": _strings(csms.name),
            "email": _strings(csms.email),
            "slack_user_id": pa.array(csms.slack_user_id, type=pa.string()),
            "region": _take(cat.REGIONS, csms.region),
            "attributes": _strings(
                tuple(
                    f'{{"team": "{t}", "timezone": "{z}"}}'
                    for t, z in zip(team, timezone, strict=True)
                )
            ),
        },
    )


@dataclass(frozen=True)
class BlockOutput:
    """Everything simulated for one block, before conversion."""

    accounts: AccountBlock
    users: UserBlock
    life: Lifecycle
    events: EventBlock
    snapshots: SnapshotBlock | None


@dataclass(frozen=True)
class IdBases:
    """Global numbers (0-based) of a block's first user, subscription, payment and event."""

    user: int
    subscription: int
    payment: int
    event: int

    def after(self, block: BlockOutput) -> IdBases:
        """The bases of the next block."""
        return IdBases(
            user=self.user + block.users.size,
            subscription=self.subscription + block.life.periods.account.size,
            payment=self.payment + block.life.charges.account.size,
            event=self.event + block.events.size,
        )


def _sequence(prefix: str, base: int, count: int, width: int) -> pa.Array:
    return format_ids(prefix, np.arange(base + 1, base + count + 1, dtype=np.int64), width)


@dataclass(frozen=True)
class _Context:
    block: BlockOutput
    bases: IdBases
    widths: IdWidths
    start_day: int
    account_ids: pa.Array
    names: pa.Array
    account_csm: pa.Array


def block_tables(
    block: BlockOutput,
    bases: IdBases,
    widths: IdWidths,
    csm_ids: pa.Array,
    start_day: int,
) -> dict[str, pa.Table]:
    """Convert one simulated block into canonical Arrow tables (all but ``csms``)."""
    acc = block.accounts
    words = acc.name_words
    ctx = _Context(
        block=block,
        bases=bases,
        widths=widths,
        start_day=start_day,
        account_ids=format_ids("acc_", acc.index + 1, widths.account),
        names=pc.binary_join_element_wise(
            _take(cat.ADJECTIVES, words[:, 0]),
            _take(cat.NOUNS, words[:, 1]),
            _take(cat.COMPANY_SUFFIXES, words[:, 2]),
            " ",
        ),
        account_csm=csm_ids.take(pa.array(acc.csm, type=pa.int64(), mask=acc.csm < 0)),
    )
    tables = {
        "accounts": _accounts_table(ctx),
        "users": _users_table(ctx),
        "subscriptions": _subscriptions_table(ctx),
        "payments": _payments_table(ctx),
        "events": _events_table(ctx),
    }
    if block.snapshots is not None:
        tables["adoption_snapshots"] = _snapshots_table(ctx, block.snapshots)
    return tables


def _accounts_table(ctx: _Context) -> pa.Table:
    acc, periods = ctx.block.accounts, ctx.block.life.periods
    n = acc.size
    # The contracted price of the latest period, churned or not: a price of 0 for
    # churned accounts would leak the label into a static attribute.
    latest = group_offsets(periods.account, n)[1:] - 1
    mrr = np.round(acc.list_mrr * (1.0 - periods.discount[latest]), 2)
    return _table(
        "accounts",
        {
            "account_id": ctx.account_ids,
            "created_at": _timestamps(acc.created, ctx.start_day),
            "name": ctx.names,
            "plan": _take(cat.PLANS, acc.plan),
            "region": _take(cat.REGIONS, acc.region),
            "platform": _take(cat.PLATFORMS, acc.platform),
            "referral_source": _take(cat.REFERRALS, acc.referral),
            "csm_id": ctx.account_csm,
            "mrr": pa.array(mrr, type=pa.float64()),
            "gmv": pa.array(acc.gmv, type=pa.float64()),
            # One-snapshot label columns; this simulator's churn lives in subscriptions.
            "churned": pa.nulls(n, pa.bool_()),
            "churned_at": pa.nulls(n, pa.timestamp("us", tz="UTC")),
            "tenure_days": pa.nulls(n, pa.float64()),
            "attributes": pc.binary_join_element_wise(
                '{"industry": "',
                _take(cat.INDUSTRIES, acc.industry),
                '", "seats": ',
                pc.cast(pa.array(acc.seats, type=pa.int64()), pa.string()),
                ', "billing": "',
                _take(("monthly", "annual"), acc.annual.astype(np.int64)),
                '"}',
                "",
            ),
        },
    )


def _users_table(ctx: _Context) -> pa.Table:
    users, acc = ctx.block.users, ctx.block.accounts
    domain = pc.binary_join_element_wise(
        _take(_LOWER["adjective"], acc.name_words[:, 0]),
        _take(_LOWER["noun"], acc.name_words[:, 1]),
        ".example",
        "",
    )
    # Colleagues with the same name get a number, as mail servers insist.
    suffix = pc.if_else(
        pa.array(users.ordinal == 0),
        pa.scalar("", pa.string()),
        pc.cast(pa.array(users.ordinal + 1, type=pa.int64()), pa.string()),
    )
    email = pc.binary_join_element_wise(
        _take(_LOWER["first"], users.first_name),
        ".",
        _take(_LOWER["last"], users.last_name),
        suffix,
        "@",
        _take(domain, users.account),
        "",
    )
    return _table(
        "users",
        {
            "user_id": _sequence("usr_", ctx.bases.user, users.size, ctx.widths.user),
            "account_id": _take(ctx.account_ids, users.account),
            "created_at": _timestamps(users.created, ctx.start_day),
            "email": email,
            "name": pc.binary_join_element_wise(
                _take(cat.FIRST_NAMES, users.first_name),
                _take(cat.LAST_NAMES, users.last_name),
                " ",
            ),
            "attributes": _take(_USER_ATTRIBUTES, users.role),
        },
    )


def _subscription_ids(ctx: _Context, periods: Ints) -> pa.Array:
    return format_ids("sub_", ctx.bases.subscription + periods + 1, ctx.widths.subscription)


def _subscriptions_table(ctx: _Context) -> pa.Table:
    acc, periods = ctx.block.accounts, ctx.block.life.periods
    owner = periods.account
    months = np.where(acc.annual[owner], 12.0, 1.0)
    attributes = np.where(
        periods.kind == ACTIVE,
        0,
        np.where(periods.kind == CANCELED, 1 + periods.cancel_reason, len(cat.CANCEL_REASONS) + 1),
    )
    return _table(
        "subscriptions",
        {
            "subscription_id": _subscription_ids(ctx, np.arange(owner.size, dtype=np.int64)),
            "account_id": _take(ctx.account_ids, owner),
            "started_at": _timestamps(periods.start, ctx.start_day),
            "ended_at": _timestamps(periods.end, ctx.start_day),
            "status": _take(("active", "canceled", "ended"), periods.kind),
            "plan": _take(cat.PLANS, acc.plan[owner]),
            "mrr": pa.array(
                np.round(acc.list_mrr[owner] * (1.0 - periods.discount), 2), type=pa.float64()
            ),
            "quantity": pa.array(acc.seats[owner].astype(np.float64), type=pa.float64()),
            "billing_period_months": pa.array(months, type=pa.float64()),
            "discount": pa.array(periods.discount, type=pa.float64()),
            "attributes": _take(_SUBSCRIPTION_ATTRIBUTES, attributes.astype(np.int64)),
        },
    )


def _payments_table(ctx: _Context) -> pa.Table:
    acc, charges = ctx.block.accounts, ctx.block.life.charges
    failed = charges.reason >= 0
    return _table(
        "payments",
        {
            "payment_id": _sequence(
                "pay_", ctx.bases.payment, charges.account.size, ctx.widths.payment
            ),
            "account_id": _take(ctx.account_ids, charges.account),
            "paid_at": _timestamps(charges.time, ctx.start_day),
            "amount": pa.array(charges.amount, type=pa.float64()),
            "currency": _take(cat.REGION_CURRENCY, acc.region[charges.account]),
            "status": _take(("succeeded", "failed", "refunded"), charges.status),
            "failure_reason": _strings(cat.FAILURE_REASONS).take(
                pa.array(np.maximum(charges.reason, 0), type=pa.int64(), mask=~failed)
            ),
            "subscription_id": _subscription_ids(ctx, charges.period),
            "attributes": _take(_PAYMENT_ATTRIBUTES, charges.attempt),
        },
    )


def _events_table(ctx: _Context) -> pa.Table:
    events = ctx.block.events
    user_ids = _sequence("usr_", ctx.bases.user, ctx.block.users.size, ctx.widths.user)
    return _table(
        "events",
        {
            "event_id": _sequence("evt_", ctx.bases.event, events.size, ctx.widths.event),
            "account_id": _take(ctx.account_ids, events.account),
            "user_id": _take(user_ids, events.user),
            "event_time": _timestamps(events.time, ctx.start_day),
            "event_type": _take(cat.EVENT_TYPES, events.event_type),
            "duration_s": _doubles(events.duration_s),
            "value": _doubles(events.value),
            "properties": _take(
                _PROPERTY_DICTIONARY, _PROPERTY_OFFSET[events.event_type] + events.variant
            ),
        },
    )


def _snapshots_table(ctx: _Context, snapshots: SnapshotBlock) -> pa.Table:
    acc = ctx.block.accounts
    owner = snapshots.account
    dates = (ctx.start_day + snapshots.day).astype(np.int32)
    return _table(
        "adoption_snapshots",
        {
            "snapshot_date": pa.array(dates, type=pa.date32()),
            "account_id": _take(ctx.account_ids, owner),
            "product": _take(cat.PRODUCTS, snapshots.product),
            "is_enabled": pa.array(snapshots.is_enabled, type=pa.bool_()),
            "name": _take(ctx.names, owner),
            "csm_id": _take(ctx.account_csm, owner),
            "region": _take(cat.REGIONS, acc.region[owner]),
            "revenue": _doubles(snapshots.revenue),
            "gmv": _doubles(snapshots.gmv),
            "attributes": _take(_SNAPSHOT_ATTRIBUTES, acc.plan[owner]),
        },
    )


class RowGroupSink:
    """A Parquet file written in row groups of about ``row_group_rows`` rows.

    Blocks are small (a thousand accounts); buffering them into large row
    groups keeps the files compact and fast to scan while memory stays bounded
    by one row group.

    Parameters
    ----------
    path : Path
        The file to write; it exists, with the schema, even if no rows come.
    table : str
        The canonical table written.
    row_group_rows : int
        Rows buffered before a row group is written.
    """

    def __init__(self, path: Path, table: str, row_group_rows: int = 1 << 20) -> None:
        self.path = path
        self.rows = 0
        self._schema = arrow_schema(table)
        self._limit = row_group_rows
        self._buffer: list[pa.Table] = []
        self._buffered = 0
        self._writer = pq.ParquetWriter(
            path,
            self._schema,
            compression="zstd",
            compression_level=1,
            use_dictionary=[f.name for f in self._schema if f.name in _LOW_CARDINALITY],
        )

    def write(self, table: pa.Table) -> None:
        """Add rows; a row group is written once enough are buffered."""
        self._buffer.append(table)
        self._buffered += table.num_rows
        self.rows += table.num_rows
        if self._buffered >= self._limit:
            self._flush()

    def _flush(self) -> None:
        if self._buffered:
            self._writer.write_table(pa.concat_tables(self._buffer), row_group_size=self._buffered)
        self._buffer, self._buffered = [], 0

    def close(self) -> None:
        """Write what is buffered and finish the file."""
        self._flush()
        self._writer.close()
