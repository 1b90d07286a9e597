"""Steps 2 and 3 of a load: check staged rows against the warehouse, then publish."""

from __future__ import annotations

from sqlglot import exp

from churnwatch.config import SourceSpec
from churnwatch.ingest.mapping import (
    BAD_REASON,
)
from churnwatch.ingest.quarantine import (
    _KEY_HASH,
    _MARKS,
    _VALUE_MARK,
    Rejections,
    _col,
    _key_columns,
    _null_safe_match,
)
from churnwatch.ingest.report import FileLoad
from churnwatch.ingest.sources import SourceFile
from churnwatch.schema import Table
from churnwatch.warehouse import (
    Warehouse,
)

__all__ = ["Checks"]


class Checks(Rejections):
    """Look-ups, duplicate keys, unknown accounts; then the insert."""

    def _mark(self, query: exp.Select) -> None:
        """Insert (_row, reason, detail) rows into the marks table."""
        changed = self.wh.execute(exp.insert(query, _MARKS, columns=["_row", "reason", "detail"]))
        # A driver that cannot count is taken to have marked something.
        self._marked += changed if changed >= 0 else 1

    def _unmarked(self, alias: str) -> exp.Expr:
        """Rows of ``alias`` not yet marked; no test at all while nothing is."""
        if not self._marked:
            return exp.true()
        marked = (
            exp.select(exp.Literal.number(1))
            .from_(exp.to_table(_MARKS).as_("m"))
            .where(_col("_row", "m").eq(_col("_row", alias)))
        )
        return exp.Not(this=exp.Exists(this=marked))

    def _check_and_publish(
        self, spec: SourceSpec, source: SourceFile, table: Table, stage: str, result: FileLoad
    ) -> None:
        mapped = [c for c in table.column_names if c in spec.columns]
        # Rows that failed a value check are already quarantined: keep them out.
        self._mark(
            exp.select(_col("_row"), exp.Literal.string(_VALUE_MARK), exp.null())
            .from_(stage)
            .where(_col(BAD_REASON).is_(exp.null()).not_())
        )
        for name, (other, on, column) in self._lookups(spec).items():
            found = (
                exp.select(exp.func("MIN", _col(column, "t")))
                .from_(exp.to_table(other).as_("t"))
                .where(exp.column(on, "t", quoted=True).eq(_col(f"_lookup_{name}", stage)))
            )
            self.wh.execute(exp.update(stage, {name: found.subquery()}))
            self._mark(
                exp.select(
                    _col("_row"), exp.Literal.string("lookup_failed"), _col(f"_lookup_{name}")
                )
                .from_(stage)
                .where(_col(name).is_(exp.null()))
            )
        if table.references_accounts:
            self._check_accounts(spec, table, stage, result)
        # Duplicate keys inside this load: the first occurrence stays.
        key = _key_columns(table, spec)
        candidates = exp.select("*").from_(exp.to_table(stage).as_("s")).where(self._unmarked("s"))
        if self._native:
            # Only rows whose key hash repeats can be duplicates: a cheap
            # aggregate on one integer spares the window over every row.
            repeated = (
                exp.select(_col(_KEY_HASH))
                .from_(stage)
                .group_by(_col(_KEY_HASH))
                .having(exp.func("COUNT", exp.Star()) > 1)
            )
            candidates = candidates.where(
                exp.In(this=_col(_KEY_HASH, "s"), query=repeated.subquery())
            )
        window = exp.select(
            _col("_row"),
            exp.alias_(
                exp.Window(
                    this=exp.func("ROW_NUMBER"),
                    partition_by=[_col(c) for c in key],
                    order=exp.Order(expressions=[exp.Ordered(this=_col("_row"))]),
                ),
                "rn",
            ),
            exp.alias_(
                exp.Window(this=exp.func("MIN", _col("_row")), partition_by=[_col(c) for c in key]),
                "first_row",
            ),
        ).from_(candidates.subquery("c"))
        self._mark(
            exp.select(
                _col("_row"),
                exp.Literal.string("duplicate_in_load"),
                exp.cast(_col("first_row"), "VARCHAR"),
            )
            .from_(window.subquery("d"))
            .where(exp.column("rn").neq(1))
        )
        if not table.mutable:
            present = (
                exp.select(exp.Literal.number(1))
                .from_(exp.to_table(table.name).as_("t"))
                .where(_null_safe_match(key, "t", "s", table.required))
            )
            self._mark(
                exp.select(_col("_row", "s"), exp.Literal.string("duplicate_loaded"), exp.null())
                .from_(exp.to_table(stage).as_("s"))
                .where(exp.and_(exp.Exists(this=present), self._unmarked("s")))
            )
        self._collect_marks(spec, source, table, stage, mapped, key)
        if table.mutable:
            replaced = (
                exp.select(exp.Literal.number(1))
                .from_(exp.to_table(stage).as_("s"))
                .where(
                    exp.and_(
                        _null_safe_match(key, "s", table.name, table.required),
                        self._unmarked("s"),
                    )
                )
            )
            result.updated = max(
                self.wh.execute(exp.delete(table.name, where=exp.Exists(this=replaced))), 0
            )
        insert = exp.insert(
            exp.select(*[_col(c, "s") for c in mapped])
            .from_(exp.to_table(stage).as_("s"))
            .where(self._unmarked("s")),
            table.name,
            columns=[exp.to_identifier(c, quoted=True) for c in mapped],
        )
        inserted = self.wh.execute(insert)
        result.inserted = max(inserted - result.updated, 0)

    def _lookups(self, spec: SourceSpec) -> dict[str, tuple[str, str, str]]:
        return {
            name: (m.lookup.table, m.lookup.on, m.lookup.column)
            for name, m in spec.columns.items()
            if m.lookup is not None
        }

    def _check_accounts(self, spec: SourceSpec, table: Table, stage: str, result: FileLoad) -> None:
        policy = spec.unknown_account or table.unknown_account
        # A left join rather than NOT EXISTS: one hash join over the stage.
        missing = _col("account_id", "a").is_(exp.null())
        on = _col("account_id", "a").eq(_col("account_id", "s"))
        if policy == "create":
            when = table.time_column
            first_seen: exp.Expr = exp.null()
            if when is not None and when in spec.columns:
                first_seen = exp.func("MIN", _col(when, "s"))
                if table.column(when).type == "date":
                    first_seen = exp.cast(first_seen, "TIMESTAMP")
            new_accounts = (
                exp.select(_col("account_id", "s"), exp.alias_(first_seen, "created_at"))
                .from_(exp.to_table(stage).as_("s"))
                .join(exp.to_table("accounts").as_("a"), on=on, join_type="LEFT")
                .where(
                    exp.and_(
                        missing, self._unmarked("s"), _col("account_id", "s").is_(exp.null()).not_()
                    )
                )
                .group_by(_col("account_id", "s"))
            )
            result.accounts_created = max(
                self.wh.execute(
                    exp.insert(new_accounts, "accounts", columns=["account_id", "created_at"])
                ),
                0,
            )
        else:
            self._mark(
                exp.select(
                    _col("_row", "s"),
                    exp.Literal.string("unknown_account"),
                    _col("account_id", "s"),
                )
                .from_(exp.to_table(stage).as_("s"))
                .join(exp.to_table("accounts").as_("a"), on=on, join_type="LEFT")
                .where(exp.and_(missing, self._unmarked("s")))
            )

    def _collect_marks(
        self,
        spec: SourceSpec,
        source: SourceFile,
        table: Table,
        stage: str,
        mapped: list[str],
        key: list[str],
    ) -> None:
        rows = self.wh.query(
            exp.select(
                *[_col(c, "s") for c in mapped],
                _col("_row", "s"),
                _col("reason", "m"),
                _col("detail", "m"),
            )
            .from_(exp.to_table(stage).as_("s"))
            .join(exp.to_table(_MARKS).as_("m"), on=_col("_row", "s").eq(_col("_row", "m")))
            .where(_col("reason", "m").neq(exp.Literal.string(_VALUE_MARK)))
            .order_by(_col("_row", "s"))
        )
        for row in rows.to_pylist():
            reason, detail, number = row.pop("reason"), row.pop("detail"), int(row.pop("_row"))
            record = {k: v for k, v in row.items() if not k.startswith("_lookup_")}
            if reason == "duplicate_in_load":
                column, value = ",".join(key), None
                message = f"same key ({', '.join(key)}) as row {detail} of this file"
            elif reason == "duplicate_loaded":
                column, value = ",".join(key), None
                message = f"already loaded: {table.name} has a row with the same {', '.join(key)}"
            elif reason == "unknown_account":
                column, value = "account_id", detail
                message = (
                    f"account {detail!r} is not in accounts; load accounts first, or set "
                    "unknown_account = 'create' on the source"
                )
            else:  # lookup_failed
                column = next(
                    n
                    for n, m in spec.columns.items()
                    if m.lookup is not None and row.get(n) is None
                )
                lookup = spec.columns[column].lookup
                assert lookup is not None
                value = detail
                message = f"{column}: no {lookup.table} row has {lookup.on} = {detail!r}"
            self._reject(spec, source, number, column, value, reason, message, record)


def _fill_account_dates(wh: Warehouse) -> None:
    """Accounts loaded without a signup time take their first subscription or event."""
    for other, when in (("subscriptions", "started_at"), ("events", "event_time")):
        first = (
            exp.select(exp.func("MIN", _col(when, "o")))
            .from_(exp.to_table(other).as_("o"))
            .where(_col("account_id", "o").eq(_col("account_id", "accounts")))
        )
        wh.execute(
            exp.update(
                "accounts",
                {"created_at": first.subquery()},
                where=_col("created_at").is_(exp.null()),
            )
        )
