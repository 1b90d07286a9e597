"""Run a simulation: validate parameters, stream blocks to Parquet, write the manifest.

Accounts are simulated in fixed blocks of :data:`BLOCK_ACCOUNTS`, each with
its own random streams derived from ``(seed, block number)``. So the output
depends only on the parameters that describe the business, never on
``chunk_accounts``, which only sets how many accounts go into each events
file and how often progress is reported (and is rounded up to whole blocks).
Memory is bounded by one block plus one buffered row group per table.

Files are written into a hidden staging directory inside ``out_dir`` and
moved into place at the end, so a run that is interrupted leaves the previous
output as it was.
"""

from __future__ import annotations

import json
import math
import numbers
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from churnwatch.errors import SimulationError
from churnwatch.simulate._accounts import CsmDirectory, draw_accounts, draw_csms, draw_users
from churnwatch.simulate._activity import draw_events
from churnwatch.simulate._drivers import DRIVERS, NEUTRAL_SIGNALS
from churnwatch.simulate._lifecycle import simulate_lifecycle
from churnwatch.simulate._sampling import Floats
from churnwatch.simulate._snapshots import draw_snapshots
from churnwatch.simulate._tables import (
    BlockOutput,
    IdBases,
    IdWidths,
    RowGroupSink,
    block_tables,
    csms_table,
)
from churnwatch.simulate._time import epoch_day

if TYPE_CHECKING:
    from churnwatch.config import Settings

__all__ = ["BLOCK_ACCOUNTS", "SimulationResult", "simulate"]

#: Accounts per random-stream block: the unit of vectorised work and of reproducibility.
BLOCK_ACCOUNTS = 1000
#: Tables written as one file each; events and snapshots are directories of parts.
_SINGLE_FILES = ("csms", "accounts", "users", "subscriptions", "payments")
_PARTITIONED = ("events", "adoption_snapshots")
_MANIFEST = "manifest.json"
# Independent seed-sequence branches, so that adding a stage shifts no other stream.
_CSM_STREAM, _BLOCK_STREAM = 0, 1
_STAGES = 5


@dataclass(frozen=True)
class SimulationResult:
    """What :func:`simulate` wrote.

    Parameters
    ----------
    out_dir : Path
        The directory holding the tables and the manifest.
    counts : dict of str to int
        Rows written per canonical table.
    observation_end : datetime.date
        The data's end: every instant is before this day's 00:00 UTC, and the
        last adoption snapshot is dated on it.
    seed : int
        The seed the data was drawn with.
    manifest_path : Path
        The JSON manifest: parameters, counts and churn drivers.
    """

    out_dir: Path
    counts: dict[str, int] = field(hash=False)
    observation_end: date
    seed: int
    manifest_path: Path

    def settings(self) -> Settings:
        """Project settings that ingest these tables (the simulator preset).

        Returns
        -------
        Settings
            Its sources read :attr:`out_dir`; the observation end is set.
        """
        # Imported here: the simulator itself needs nothing of the ingest layer.
        from churnwatch.config import DataSettings, Settings
        from churnwatch.ingest.presets import preset_sources

        return Settings(
            data=DataSettings(observation_end=str(self.observation_end)),
            sources=preset_sources("churnwatch_simulator", self.out_dir),
        )

    @property
    def paths(self) -> dict[str, Path]:
        """Where each table is: a Parquet file, or a directory of ``part-*.parquet`` files."""
        files = {name: self.out_dir / f"{name}.parquet" for name in _SINGLE_FILES}
        return files | {name: self.out_dir / name for name in _PARTITIONED}


@dataclass(frozen=True)
class _Plan:
    n_accounts: int
    start: date
    end: date
    seed: int
    events_per_account: float
    snapshot_days: int
    chunk_accounts: int

    @property
    def start_day(self) -> int:
        return epoch_day(self.start)

    @property
    def horizon_days(self) -> float:
        return float((self.end - self.start).days)

    @property
    def snapshot_offsets(self) -> Floats:
        """Snapshot dates as days since the start: the last ``snapshot_days`` up to the end."""
        last = (self.end - self.start).days
        first = max(0, last - self.snapshot_days + 1)
        return np.arange(first, last + 1, dtype=np.float64) if self.snapshot_days else np.zeros(0)


def _as_date(value: object, name: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise SimulationError(
        f"{name} must be a date or an ISO date string like '2024-01-31', got {value!r}"
    )


def _as_int(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < minimum:
        raise SimulationError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _validate(
    n_accounts: object,
    start: object,
    end: object,
    seed: object,
    events_per_account: object,
    snapshot_days: object,
    chunk_accounts: object,
) -> _Plan:
    first, last = _as_date(start, "start"), _as_date(end, "end")
    if last <= first:
        raise SimulationError(f"end ({last}) must be after start ({first})")
    if (
        isinstance(events_per_account, bool)
        or not isinstance(events_per_account, numbers.Real)
        or not math.isfinite(float(events_per_account))
        or float(events_per_account) < 0
    ):
        raise SimulationError(
            f"events_per_account must be a finite number >= 0, got {events_per_account!r}"
        )
    chunk = _as_int(chunk_accounts, "chunk_accounts", 1)
    return _Plan(
        n_accounts=_as_int(n_accounts, "n_accounts", 1),
        start=first,
        end=last,
        seed=_as_int(seed, "seed", 0),
        events_per_account=float(events_per_account),
        snapshot_days=_as_int(snapshot_days, "snapshot_days", 0),
        chunk_accounts=math.ceil(chunk / BLOCK_ACCOUNTS) * BLOCK_ACCOUNTS,
    )


def simulate(
    out_dir: str | Path,
    *,
    n_accounts: int = 1000,
    start: str | date = "2024-01-01",
    end: str | date = "2024-12-31",
    seed: int = 0,
    events_per_account: float = 50.0,
    snapshot_days: int = 90,
    chunk_accounts: int = 20_000,
    on_progress: Callable[[int, int], None] | None = None,
) -> SimulationResult:
    """Simulate a subscription business and write its canonical tables as Parquet.

    Parameters
    ----------
    out_dir : str or Path
        Directory to write into (created if needed). Tables of an earlier run
        there are replaced; other files are left alone.
    n_accounts : int
        Number of accounts, at least 1. About a third signed up before ``start``.
    start, end : str or datetime.date
        The observed period. Every instant lies in ``[start, end)``; signups
        before ``start`` and their first subscription periods are the only
        rows dated earlier.
    seed : int
        Seed of every random draw: the same parameters and seed give
        byte-identical tables.
    events_per_account : float
        Average number of events per account over the period.
    snapshot_days : int
        Daily adoption snapshots of managed accounts for this many days,
        ending on ``end`` (0 for none).
    chunk_accounts : int
        Accounts per events file and per progress report, rounded up to a
        multiple of 1,000. Does not change the data.
    on_progress : callable, optional
        Called as ``on_progress(done_accounts, total_accounts)`` after each chunk.

    Returns
    -------
    SimulationResult

    Raises
    ------
    SimulationError
        If a parameter is out of range.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     result = simulate(tmp, n_accounts=50, end="2024-03-31", events_per_account=10)
    ...     result.counts["accounts"]
    50
    """
    plan = _validate(
        n_accounts, start, end, seed, events_per_account, snapshot_days, chunk_accounts
    )
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SimulationError(f"cannot create the output directory {out}: {error}") from error
    staging = Path(tempfile.mkdtemp(prefix=".simulate-", dir=out))
    try:
        counts = _write_tables(staging, plan, on_progress)
        manifest = _manifest(plan, counts)
        (staging / _MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        _publish(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return SimulationResult(
        out_dir=out,
        counts=counts,
        observation_end=plan.end,
        seed=plan.seed,
        manifest_path=out / _MANIFEST,
    )


def _write_tables(
    root: Path, plan: _Plan, on_progress: Callable[[int, int], None] | None
) -> dict[str, int]:
    """Simulate block after block, streaming each table to its Parquet sink."""
    for name in _PARTITIONED:
        (root / name).mkdir()
    csm_rng = np.random.default_rng(np.random.SeedSequence(plan.seed, spawn_key=(_CSM_STREAM,)))
    csms = draw_csms(csm_rng, plan.n_accounts)
    csm_table = csms_table(csms)
    csm_ids = csm_table["csm_id"].combine_chunks()
    widths = IdWidths(account=max(6, len(str(plan.n_accounts))))
    bases = IdBases(user=0, subscription=0, payment=0, event=0)
    n_blocks = math.ceil(plan.n_accounts / BLOCK_ACCOUNTS)
    per_chunk = plan.chunk_accounts // BLOCK_ACCOUNTS
    counts = dict.fromkeys((*_SINGLE_FILES, *_PARTITIONED), 0)
    files = {name: RowGroupSink(root / f"{name}.parquet", name) for name in _SINGLE_FILES}
    try:
        files["csms"].write(csm_table)
        for part, first_block in enumerate(range(0, n_blocks, per_chunk)):
            parts = {
                name: RowGroupSink(root / name / f"part-{part:05d}.parquet", name)
                for name in _PARTITIONED
            }
            try:
                for block_no in range(first_block, min(first_block + per_chunk, n_blocks)):
                    block = _simulate_block(plan, block_no, csms)
                    tables = block_tables(block, bases, widths, csm_ids, plan.start_day)
                    bases = bases.after(block)
                    for name, table in tables.items():
                        (parts[name] if name in parts else files[name]).write(table)
            finally:
                for name, sink in parts.items():
                    sink.close()
                    counts[name] += sink.rows
            if on_progress is not None:
                done = min(plan.n_accounts, (first_block + per_chunk) * BLOCK_ACCOUNTS)
                on_progress(done, plan.n_accounts)
    finally:
        for name, sink in files.items():
            sink.close()
            counts[name] = sink.rows
    return counts


def _simulate_block(plan: _Plan, block_no: int, csms: CsmDirectory) -> BlockOutput:
    streams = np.random.SeedSequence(plan.seed, spawn_key=(_BLOCK_STREAM, block_no)).spawn(_STAGES)
    rng = [np.random.default_rng(s) for s in streams]
    first = block_no * BLOCK_ACCOUNTS
    size = min(BLOCK_ACCOUNTS, plan.n_accounts - first)
    accounts = draw_accounts(rng[0], first, size, plan.horizon_days, csms)
    users = draw_users(rng[1], accounts, plan.horizon_days)
    life = simulate_lifecycle(accounts, rng[2], plan.horizon_days, plan.start_day)
    events = draw_events(
        accounts, users, life, rng[3], plan.horizon_days, plan.start_day, plan.events_per_account
    )
    days = plan.snapshot_offsets
    snapshots = draw_snapshots(accounts, life.periods, rng[4], days) if days.size else None
    return BlockOutput(
        accounts=accounts, users=users, life=life, events=events, snapshots=snapshots
    )


def _manifest(plan: _Plan, counts: dict[str, int]) -> dict[str, Any]:
    from churnwatch import __version__

    days = plan.snapshot_offsets
    return {
        "generator": "churnwatch.simulate",
        "churnwatch_version": __version__,
        "seed": plan.seed,
        "parameters": {
            "n_accounts": plan.n_accounts,
            "start": plan.start.isoformat(),
            "end": plan.end.isoformat(),
            "events_per_account": plan.events_per_account,
            "snapshot_days": plan.snapshot_days,
        },
        "observation_end": plan.end.isoformat(),
        "observed_until": f"{plan.end.isoformat()}T00:00:00+00:00",
        "snapshot_dates": (
            [(plan.start + timedelta(days=int(days[0]))).isoformat(), plan.end.isoformat()]
            if days.size
            else None
        ),
        "counts": counts,
        "files": {
            **{name: f"{name}.parquet" for name in _SINGLE_FILES},
            **{name: f"{name}/part-*.parquet" for name in _PARTITIONED},
        },
        "drivers": [asdict(driver) for driver in DRIVERS],
        "neutral_signals": list(NEUTRAL_SIGNALS),
    }


def _publish(staging: Path, out: Path) -> None:
    """Move the staged outputs over the previous ones, touching nothing else in ``out``."""
    for name in (*(f"{n}.parquet" for n in _SINGLE_FILES), *_PARTITIONED, _MANIFEST):
        target = out / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
        (staging / name).rename(target)
