"""Generations of the read model: written whole, swapped in at once, read without locks.

The dashboard and the API read precomputed tables while the daily job
computes the next set. Each refresh writes a complete *generation* — Parquet
tables and a JSON ``meta`` document — into a folder of its own, then points
the ``CURRENT`` file at it with an atomic rename. A reader resolves
``CURRENT`` once and keeps reading that generation, so it never sees half a
refresh; the two previous generations are kept for readers still on them.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from churnwatch.errors import ChurnwatchError

__all__ = ["Generation", "ViewsNotFoundError", "current_generation", "write_generation"]

#: Generations kept besides the current one, for readers that resolved them earlier.
KEEP_PREVIOUS = 2
_POINTER = "CURRENT"
_META = "meta.json"


class ViewsNotFoundError(ChurnwatchError):
    """No generation of the read model has been written yet."""


class Generation:
    """One complete, immutable set of read-model tables.

    Parameters
    ----------
    path : Path
        The generation's folder.

    Attributes
    ----------
    path : Path
        The generation's folder.
    meta : dict
        The JSON document written with the tables (KPIs, model summary...).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.meta: dict[str, Any] = json.loads((path / _META).read_text())

    @property
    def name(self) -> str:
        """The generation's folder name (changes with every refresh)."""
        return self.path.name

    @property
    def tables(self) -> list[str]:
        """The names of the tables in this generation."""
        return sorted(p.stem for p in self.path.glob("*.parquet"))

    def table_path(self, name: str) -> Path:
        """The Parquet file of table ``name``.

        Raises
        ------
        ViewsNotFoundError
            When the generation has no such table.
        """
        path = self.path / f"{name}.parquet"
        if not path.exists():
            raise ViewsNotFoundError(
                f"the read model {self.path} has no table {name!r}; "
                "run 'churnwatch views refresh' to rebuild it"
            )
        return path

    def read(self, name: str, columns: list[str] | None = None) -> pa.Table:
        """Table ``name`` (optionally only ``columns``) as Arrow."""
        return pq.read_table(self.table_path(name), columns=columns)

    def __repr__(self) -> str:
        return f"Generation({str(self.path)!r})"


def write_generation(
    root: Path,
    tables: Mapping[str, pa.Table],
    meta: Mapping[str, Any],
    *,
    now: dt.datetime | None = None,
) -> Generation:
    """Write a complete generation under ``root`` and make it the current one.

    Parameters
    ----------
    root : Path
        The read model's folder (``<project>/views``); created when missing.
    tables : mapping of str to pyarrow.Table
        The tables, by name (a file name stem: lower case, digits, ``_``).
    meta : mapping
        A JSON-serialisable document stored with the tables.
    now : datetime, optional
        The refresh time recorded in ``meta["refreshed_at"]``.

    Returns
    -------
    Generation
        The generation just written, now current.

    Examples
    --------
    >>> import tempfile, pyarrow as pa
    >>> root = Path(tempfile.mkdtemp())
    >>> g = write_generation(root, {"accounts": pa.table({"account_id": ["a"]})}, {"n": 1})
    >>> current_generation(root).meta["n"], current_generation(root).tables
    (1, ['accounts'])
    """
    now = now or dt.datetime.now(dt.UTC)
    root.mkdir(parents=True, exist_ok=True)
    name = f"g-{now.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    staging = root / f".{name}.tmp"
    staging.mkdir()
    try:
        for table_name, table in tables.items():
            if not table_name.replace("_", "").isalnum() or table_name != table_name.lower():
                raise ChurnwatchError(f"read-model table name {table_name!r}: use a-z, 0-9, _")
            # Row groups of 64k rows: a lookup by account reads one group, not the file.
            pq.write_table(table, staging / f"{table_name}.parquet", row_group_size=65_536)
        document = {**meta, "refreshed_at": now.isoformat()}
        (staging / _META).write_text(json.dumps(document, indent=1, default=str))
        final = root / name
        staging.rename(final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    pointer = root / f".{_POINTER}.{uuid.uuid4().hex[:8]}"
    pointer.write_text(name)
    os.replace(pointer, root / _POINTER)
    _prune(root, name)
    return Generation(final)


def current_generation(root: Path) -> Generation:
    """The generation ``CURRENT`` points at.

    Raises
    ------
    ViewsNotFoundError
        When nothing was written under ``root`` yet.
    """
    try:
        name = (root / _POINTER).read_text().strip()
    except FileNotFoundError:
        raise ViewsNotFoundError(
            f"no read model in {root}: run 'churnwatch views refresh' "
            "(or 'churnwatch daily') to compute it"
        ) from None
    return Generation(root / name)


def _prune(root: Path, current: str) -> None:
    """Delete generations older than the current one and the ``KEEP_PREVIOUS`` before it."""
    others = sorted(
        (p for p in root.glob("g-*") if p.is_dir() and p.name != current),
        key=lambda p: p.stat().st_mtime,
    )
    for old in others[: max(0, len(others) - KEEP_PREVIOUS)]:
        shutil.rmtree(old, ignore_errors=True)
    for stale in root.glob(".g-*.tmp"):
        # Left by a refresh that was killed; a running one is younger than a minute.
        if stale.stat().st_mtime < dt.datetime.now().timestamp() - 3600:
            shutil.rmtree(stale, ignore_errors=True)
