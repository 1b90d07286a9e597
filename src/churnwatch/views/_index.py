"""An index of a read-model table by account: a lookup is a dictionary access and a slice."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["RowIndex"]


class RowIndex:
    """The rows of one table by account id.

    Parameters
    ----------
    table : pyarrow.Table
        Has an ``account_id`` column; sorted by it (rows of one account together).
    """

    def __init__(self, table: pa.Table) -> None:
        ids = table.column("account_id").combine_chunks()
        if (
            len(ids) > 1
            and not pc.all(pc.greater_equal(ids.slice(1), ids.slice(0, len(ids) - 1))).as_py()
        ):
            order = pc.sort_indices(table, [("account_id", "ascending")])
            table = table.take(order)
            ids = table.column("account_id").combine_chunks()
        self.table = table.combine_chunks()
        if len(ids):
            changes = np.flatnonzero(
                pc.not_equal(ids.slice(1), ids.slice(0, len(ids) - 1)).to_numpy(
                    zero_copy_only=False
                )
            )
            starts = np.concatenate([[0], changes + 1])
        else:
            starts = np.array([], dtype=np.int64)
        stops = np.concatenate([starts[1:], [len(ids)]]) if len(starts) else starts
        keys = ids.take(pa.array(starts)).to_pylist()
        self._rows: dict[str, tuple[int, int]] = dict(
            zip(keys, zip(starts.tolist(), (stops - starts).tolist(), strict=True), strict=True)
        )
        self.columns: list[str] = self.table.column_names

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, account_id: object) -> bool:
        return account_id in self._rows

    def rows(self, account_id: str) -> list[dict[str, Any]]:
        """The account's rows, as dictionaries (empty when it has none)."""
        found = self._rows.get(account_id)
        if found is None:
            return []
        rows: list[dict[str, Any]] = self.table.slice(found[0], found[1]).to_pylist()
        return rows

    def first(self, account_id: str) -> dict[str, Any] | None:
        """The account's first row, or None."""
        found = self._rows.get(account_id)
        if found is None:
            return None
        row: dict[str, Any] = self.table.slice(found[0], 1).to_pylist()[0]
        return row
