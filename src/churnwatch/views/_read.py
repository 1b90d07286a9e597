"""Reading the read model: pages of accounts, one account, whole tables.

:class:`ReadModel` follows the ``CURRENT`` generation (checked at most once a
second) and answers the dashboard's and the API's questions. The account list
is filtered, sorted and paged by DuckDB over the Parquet file; one account is
found through an in-memory index built once per generation, so a lookup costs
a dictionary access and a row slice whatever the number of accounts.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from churnwatch.errors import ChurnwatchError
from churnwatch.views._generation import Generation, current_generation
from churnwatch.views._index import RowIndex

__all__ = ["ACCOUNT_FILTERS", "SORTABLE", "AccountFilter", "AccountPage", "ReadModel"]

#: The account attributes a list can be filtered by (column names of ``accounts``).
ACCOUNT_FILTERS = ("risk_tier", "csm_id", "region", "plan", "platform", "segment")
#: The columns a list can be sorted by.
SORTABLE = (
    "churn_risk",
    "revenue_at_risk",
    "mrr",
    "health_score",
    "predicted_days_to_churn",
    "created_at",
    "account_id",
)


@dataclasses.dataclass(frozen=True)
class AccountFilter:
    """Which accounts a list shows; an empty tuple means no restriction.

    Attributes
    ----------
    risk_tier, csm_id, region, plan, platform, segment : tuple of str
        Keep accounts whose attribute is one of these values.
    min_risk : float, optional
        Keep accounts whose churn risk is at least this.
    search : str, optional
        Keep accounts whose id or name contains this text (any case).
    """

    risk_tier: tuple[str, ...] = ()
    csm_id: tuple[str, ...] = ()
    region: tuple[str, ...] = ()
    plan: tuple[str, ...] = ()
    platform: tuple[str, ...] = ()
    segment: tuple[str, ...] = ()
    min_risk: float | None = None
    search: str | None = None

    def where(self, columns: Sequence[str]) -> tuple[str, list[Any]]:
        """A SQL condition and its parameters (filters on absent columns match nothing)."""
        clauses: list[str] = []
        params: list[Any] = []
        for name in ACCOUNT_FILTERS:
            values = getattr(self, name)
            if not values:
                continue
            if name not in columns:
                clauses.append("false")
                continue
            clauses.append(f'"{name}" IN ({", ".join("?" for _ in values)})')
            params.extend(values)
        if self.min_risk is not None:
            clauses.append("churn_risk >= ?")
            params.append(self.min_risk)
        if self.search:
            text = f"%{self.search.lower()}%"
            if "name" in columns:
                clauses.append("(lower(account_id) LIKE ? OR lower(coalesce(name, '')) LIKE ?)")
                params.extend([text, text])
            else:
                clauses.append("lower(account_id) LIKE ?")
                params.append(text)
        return (" AND ".join(clauses) or "true"), params


@dataclasses.dataclass(frozen=True)
class AccountPage:
    """One page of the account list.

    Attributes
    ----------
    rows : pyarrow.Table
        The page's accounts.
    total : int
        Accounts matching the filter, on every page.
    offset, limit : int
        Where the page starts and its size.
    """

    rows: pa.Table
    total: int
    offset: int
    limit: int


class ReadModel:
    """The current generation of the read model under ``root``, kept up to date.

    Parameters
    ----------
    root : Path
        The read model's folder (``<project>/views``).
    recheck_seconds : float
        How often, at most, ``CURRENT`` is looked at for a newer generation.

    Examples
    --------
    >>> import tempfile, pyarrow as pa
    >>> from churnwatch.views import write_generation
    >>> root = Path(tempfile.mkdtemp())
    >>> _ = write_generation(root, {"accounts": pa.table(
    ...     {"account_id": ["a", "b"], "churn_risk": [0.1, 0.7], "region": ["eu", "us"]})}, {})
    >>> model = ReadModel(root)
    >>> page = model.accounts_page(AccountFilter(region=("us",)))
    >>> page.total, page.rows.column("account_id").to_pylist()
    (1, ['b'])
    >>> model.account("a")["churn_risk"]
    0.1
    """

    def __init__(self, root: Path, *, recheck_seconds: float = 1.0) -> None:
        self.root = Path(root)
        self.recheck_seconds = recheck_seconds
        self._lock = threading.Lock()
        self._checked = 0.0
        self._generation: Generation | None = None
        self._index: RowIndex | None = None
        self._indexing = False
        self._connection = duckdb.connect()

    @property
    def generation(self) -> Generation:
        """The current generation (re-resolved at most every ``recheck_seconds``)."""
        now = time.monotonic()
        with self._lock:
            if self._generation is None or now - self._checked >= self.recheck_seconds:
                found = current_generation(self.root)
                if self._generation is None or found.path != self._generation.path:
                    self._generation = found
                    self._index = None
                self._checked = now
            return self._generation

    @property
    def meta(self) -> dict[str, Any]:
        """The current generation's JSON document."""
        return self.generation.meta

    def table(self, name: str, columns: list[str] | None = None) -> pa.Table:
        """A whole table of the current generation."""
        return self.generation.read(name, columns)

    def query(self, sql: str, params: Sequence[Any] = (), **tables: str) -> pa.Table:
        """Run DuckDB ``sql`` in which ``{name}`` stands for a table of the generation.

        Table names come from the code, never from a user: each ``{name}`` in
        ``sql`` is replaced by the path of the Parquet file ``tables[name]``.
        """
        generation = self.generation
        paths = {
            key: f"read_parquet('{generation.table_path(value)}')" for key, value in tables.items()
        }
        cursor = self._connection.cursor()
        try:
            return cursor.execute(sql.format(**paths), list(params)).to_arrow_table()
        finally:
            cursor.close()

    def accounts_page(
        self,
        filters: AccountFilter | None = None,
        *,
        sort_by: str = "churn_risk",
        descending: bool = True,
        offset: int = 0,
        limit: int = 50,
        columns: Sequence[str] | None = None,
    ) -> AccountPage:
        """A page of accounts matching ``filters``, sorted by ``sort_by``.

        Raises
        ------
        ChurnwatchError
            For an unknown sort column, a negative offset or a limit outside 1..10000.
        """
        if sort_by not in SORTABLE:
            raise ChurnwatchError(f"sort by {sort_by!r}: expected one of {', '.join(SORTABLE)}")
        if offset < 0 or not 1 <= limit <= 10_000:
            raise ChurnwatchError("offset must be 0 or more and limit between 1 and 10000")
        present = self.columns("accounts")
        where, params = (filters or AccountFilter()).where(present)
        chosen = [c for c in (columns or present) if c in present]
        select = ", ".join(f'"{c}"' for c in chosen) or "*"
        order = f'"{sort_by}" {"DESC" if descending else "ASC"} NULLS LAST, account_id'
        if sort_by not in present:
            order = "account_id"
        rows = self.query(
            f"SELECT {select} FROM {{a}} WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?",
            [*params, limit, offset],
            a="accounts",
        )
        total = self.query(
            f"SELECT count(*) AS n FROM {{a}} WHERE {where}", params, a="accounts"
        ).column("n")[0]
        return AccountPage(rows, int(total.as_py()), offset, limit)

    def columns(self, name: str) -> list[str]:
        """The column names of table ``name``."""
        import pyarrow.parquet as pq

        return list(pq.read_schema(self.generation.table_path(name)).names)

    def account(self, account_id: str) -> dict[str, Any] | None:
        """One account's row of ``accounts`` as a dict, or None when unknown.

        The first lookups in a generation are answered by a DuckDB query
        while an index of the whole table is built in the background (a
        second or two at a million accounts); once it is ready a lookup is a
        dictionary access and a row slice.
        """
        generation = self.generation
        with self._lock:
            index = self._index
            start = index is None and not self._indexing
            if start:
                self._indexing = True
        if index is not None:
            return index.first(account_id)
        if start:
            threading.Thread(target=self._build_index, args=(generation,), daemon=True).start()
        found = self.query(
            "SELECT * FROM {a} WHERE account_id = ? LIMIT 1", [account_id], a="accounts"
        )
        return found.to_pylist()[0] if found.num_rows else None

    def _build_index(self, generation: Generation) -> None:
        try:
            try:
                accounts = generation.read("accounts")
            except (OSError, ChurnwatchError):
                # The generation was pruned under us (two refreshes since it
                # was resolved): lookups go on through DuckDB until the next.
                return
            index = RowIndex(accounts)
            with self._lock:
                # A newer generation may have come meanwhile: its index is its own.
                if self._generation is not None and self._generation.path == generation.path:
                    self._index = index
        finally:
            with self._lock:
                self._indexing = False

    def rows_of(self, name: str, account_id: str) -> pa.Table:
        """The rows of table ``name`` (sorted by account) that belong to one account."""
        return self.query("SELECT * FROM {t} WHERE account_id = ?", [account_id], t=name)
