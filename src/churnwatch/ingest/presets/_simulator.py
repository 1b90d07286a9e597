"""Preset ``churnwatch_simulator``: the output folder of :mod:`churnwatch.simulate`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from churnwatch.config import SourceSpec
from churnwatch.ingest.presets._preset import file_path, make_source
from churnwatch.schema import LOAD_ORDER, TABLES

__all__ = ["SIMULATOR_FILES", "simulator_data", "simulator_sources"]

#: Where the simulator writes each canonical table, relative to its folder.
#: Large tables are written in parts.
SIMULATOR_FILES: dict[str, str] = {
    "csms": "csms.parquet",
    "accounts": "accounts.parquet",
    "users": "users.parquet",
    "subscriptions": "subscriptions.parquet",
    "payments": "payments.parquet",
    "events": "events/part-*.parquet",
    "adoption_snapshots": "adoption_snapshots/part-*.parquet",
}


def _columns_in(data_dir: Path, pattern: str) -> set[str] | None:
    """Column names of the first file matching ``pattern``; None if there is none."""
    for path in sorted(Path(data_dir).glob(pattern)):
        try:
            schema: pa.Schema = pq.read_schema(path)
        except (OSError, pa.ArrowException):
            continue
        return set(schema.names)
    return None


def simulator_sources(data_dir: Path) -> list[SourceSpec]:
    """Map the simulator's Parquet files, in canonical column names, one to one.

    Parameters
    ----------
    data_dir : Path
        The folder the simulator wrote.

    Returns
    -------
    list of SourceSpec
        One source per table, named after it, in load order.

    Notes
    -----
    Expected files: see :data:`SIMULATOR_FILES` (``accounts.parquet``,
    ``users.parquet``, ``csms.parquet``, ``subscriptions.parquet``,
    ``payments.parquet``, ``events/part-*.parquet``,
    ``adoption_snapshots/part-*.parquet``).

    Every canonical column maps to the column of the same name, written from
    :data:`churnwatch.schema.TABLES` so that a new canonical column is mapped
    without touching this preset. When the folder already holds the files,
    only the tables present are mapped, and of each only the columns its
    first file has (an optional column the simulator leaves out is not an
    error); an empty or missing folder gets every table and column.

    The observation end is the simulated period's end, which the simulator
    writes into ``manifest.json``; :func:`simulator_data` reads it from there.

    Examples
    --------
    >>> [s.table for s in simulator_sources(Path("no-such-folder"))][:3]
    ['csms', 'accounts', 'users']
    """
    present = {table: _columns_in(data_dir, SIMULATOR_FILES[table]) for table in LOAD_ORDER}
    any_present = any(columns is not None for columns in present.values())
    specs: list[SourceSpec] = []
    for name in LOAD_ORDER:
        found = present[name]
        if any_present and found is None:
            continue
        table = TABLES[name]
        # Required columns are always mapped: a file without one fails its
        # load with a message naming it, rather than the preset failing here.
        columns = [
            c for c in table.column_names if found is None or c in found or c in table.required
        ]
        specs.append(
            make_source(
                name,
                name,
                file_path(data_dir, SIMULATOR_FILES[name]),
                {c: c for c in columns},
                format="parquet",
            )
        )
    return specs


def simulator_data(data_dir: Path) -> dict[str, Any]:
    """The ``[data]`` settings the simulator states in its ``manifest.json``.

    Returns
    -------
    dict
        ``{"observation_end": "YYYY-MM-DD"}`` (the simulated period's end), or
        ``{}`` when there is no readable manifest.
    """
    try:
        manifest = json.loads(Path(data_dir, "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    end = manifest.get("observation_end") if isinstance(manifest, dict) else None
    return {"observation_end": end} if isinstance(end, str) else {}
