"""The ``churnwatch`` command: a thin layer over the library.

Each command reads the project file, calls one library function and prints
its result. User mistakes (a bad setting, a missing file, a strict load that
met a bad row) print one readable error and exit with code 2, never a stack
trace.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table as RichTable

from churnwatch.config import (
    PROJECT_FILE,
    DataSettings,
    ProjectSettings,
    Settings,
    load_settings,
    save_settings,
    settings_reference,
)
from churnwatch.errors import ChurnwatchError, StrictLoadError
from churnwatch.ingest import FileLoad, IngestReport, ingest
from churnwatch.outputs import check_table_name, write_table
from churnwatch.simulate import SimulationResult
from churnwatch.status import WarehouseStatus, describe
from churnwatch.warehouse import Warehouse, connect

__all__ = ["app"]

app = typer.Typer(
    name="churnwatch",
    help="Find the customers about to leave, say why, and make sure someone acts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
errors = Console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")

ProjectOption = Annotated[
    Path, typer.Option("--project", "-p", help="Project folder holding churnwatch.toml.")
]
WarehouseOption = Annotated[
    str | None,
    typer.Option(
        "--warehouse",
        envvar="CHURNWATCH_WAREHOUSE_URL",
        help="Warehouse URL, overriding the project file.",
    ),
]
TableOption = Annotated[
    str | None,
    typer.Option(
        "--table",
        help="Also write the result into the warehouse as this table, replacing one of that name.",
    ),
]


def _user_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn Churnwatch errors into one line on stderr and exit code 2."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except StrictLoadError as exc:
            _print_error(exc)
            _print_problems(exc.problems)
            raise typer.Exit(2) from None
        except (ChurnwatchError, OSError) as exc:
            _print_error(exc)
            raise typer.Exit(2) from None

    return run


def _print_error(exc: BaseException) -> None:
    # Escaped: messages quote the project file ("[data] observation_end"), which
    # rich would otherwise take for markup and silently drop. Not wrapped: a
    # one-line error stays one line, whatever the terminal's width.
    errors.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)


@contextlib.contextmanager
def _open(project: Path, warehouse_url: str | None) -> Iterator[tuple[Settings, Warehouse]]:
    settings = load_settings(project)
    url = warehouse_url or settings.warehouse.url
    with connect(
        url,
        base_dir=project,
        memory_limit_mb=settings.warehouse.memory_limit_mb,
        threads_count=settings.warehouse.threads_count,
    ) as warehouse:
        yield settings, warehouse


# -- init ------------------------------------------------------------------------
@app.command()
@_user_errors
def init(
    directory: Annotated[Path, typer.Argument(help="Project folder to create.")] = Path("."),
    preset: Annotated[
        str | None, typer.Option(help="Fill the sources from a preset (see --list-presets).")
    ] = None,
    data: Annotated[Path | None, typer.Option(help="Folder holding the preset's files.")] = None,
    warehouse: Annotated[str, typer.Option(help="Warehouse URL.")] = "duckdb:///churnwatch.duckdb",
    force: Annotated[bool, typer.Option(help="Overwrite an existing project file.")] = False,
    list_presets: Annotated[bool, typer.Option(help="List the presets and exit.")] = False,
    reference: Annotated[
        bool, typer.Option(help="Print every setting with its default and meaning, and exit.")
    ] = False,
) -> None:
    """Write a project file, churnwatch.toml, with its sources and settings."""
    from churnwatch.ingest.presets import PRESETS, get_preset, preset_data, preset_sources

    if reference:
        typer.echo(settings_reference())
        return
    if list_presets:
        table = RichTable("preset", "what it reads")
        for name, found in PRESETS.items():
            table.add_row(name, found.description)
        console.print(table)
        return
    target = directory / PROJECT_FILE
    if target.exists() and not force:
        raise ChurnwatchError(f"{target} exists; pass --force to overwrite it")
    directory.mkdir(parents=True, exist_ok=True)
    sources = []
    data_settings = DataSettings()
    if preset is not None:
        get_preset(preset)  # an unknown name fails before anything is written
        if data is None:
            raise ChurnwatchError(f"--preset {preset} needs --data, the folder holding its files")
        if not data.is_dir():
            raise ChurnwatchError(f"--data {data} is not a folder")
        # Paths in the project file are relative to the project folder.
        folder = Path(os.path.relpath(data.resolve(), directory.resolve()))
        sources = preset_sources(preset, folder, base_dir=directory)
        data_settings = DataSettings(**preset_data(preset, folder, base_dir=directory))
    settings = Settings(
        project=ProjectSettings(name=directory.resolve().name),
        warehouse={"url": warehouse},  # type: ignore[arg-type]
        data=data_settings,
        sources=sources,
    )
    path = save_settings(settings, directory)
    console.print(f"wrote {path} with {len(sources)} source(s)")
    if not sources:
        console.print("add [[sources]] to it, or re-run with --preset NAME --data DIR")


# -- simulate ----------------------------------------------------------------------
@app.command()
@_user_errors
def simulate(
    out: Annotated[Path, typer.Option(help="Folder the Parquet files are written to.")] = Path(
        "simulated"
    ),
    accounts: Annotated[int, typer.Option(help="Number of accounts.")] = 1000,
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same data.")] = 0,
    start: Annotated[str, typer.Option(help="First day (YYYY-MM-DD).")] = "2024-01-01",
    end: Annotated[str, typer.Option(help="Observation end (YYYY-MM-DD).")] = "2024-12-31",
    events_per_account: Annotated[float, typer.Option(help="Average events per account.")] = 50.0,
    snapshot_days: Annotated[int, typer.Option(help="Days of adoption snapshots.")] = 90,
) -> None:
    """Simulate a subscription business as canonical Parquet tables."""
    result = _simulate(out, accounts, seed, start, end, events_per_account, snapshot_days)
    table = RichTable("table", "rows", title=f"simulated into {result.out_dir}")
    for name, rows in result.counts.items():
        table.add_row(name, f"{rows:,}")
    console.print(table)
    console.print(f"observation end: {result.observation_end}")


def _simulate(
    out: Path,
    accounts: int,
    seed: int,
    start: str,
    end: str,
    events_per_account: float = 50.0,
    snapshot_days: int = 90,
) -> SimulationResult:
    from churnwatch.simulate import simulate as run_simulation

    with _progress() as progress:
        task = progress.add_task("simulating accounts", total=accounts)
        return run_simulation(
            out,
            n_accounts=accounts,
            seed=seed,
            start=start,
            end=end,
            events_per_account=events_per_account,
            snapshot_days=snapshot_days,
            on_progress=lambda done, total: progress.update(task, completed=done, total=total),
        )


# -- ingest ------------------------------------------------------------------------
@app.command(name="ingest")
@_user_errors
def ingest_command(
    project: ProjectOption = Path("."),
    source: Annotated[
        list[str] | None, typer.Option(help="Load only this source (repeatable).")
    ] = None,
    strict: Annotated[
        bool, typer.Option(help="Load nothing at all if any row would be quarantined.")
    ] = False,
    warehouse: WarehouseOption = None,
) -> None:
    """Load the project's sources into the warehouse; bad rows go to quarantine."""
    with _open(project, warehouse) as (settings, wh):
        report = _ingest(settings, wh, project, source, strict or None)
    _print_report(report)
    if report.errors:
        raise typer.Exit(1)


def _ingest(
    settings: Settings, wh: Warehouse, project: Path, sources: list[str] | None, strict: bool | None
) -> IngestReport:
    with _progress() as progress:
        tasks: dict[str, TaskID] = {}

        def on_batch(load: FileLoad) -> None:
            key = f"{load.source}:{load.file}"
            if key not in tasks:
                tasks[key] = progress.add_task(
                    f"{load.source} ← {Path(load.file).name}", total=None
                )
            progress.update(tasks[key], completed=load.rows_read)

        return ingest(
            settings, wh, base_dir=project, sources=sources, strict=strict, progress=on_batch
        )


# -- status ------------------------------------------------------------------------
@app.command()
@_user_errors
def status(
    project: ProjectOption = Path("."),
    warehouse: WarehouseOption = None,
) -> None:
    """Show row counts, date ranges and quarantined rows by reason."""
    with _open(project, warehouse) as (_, wh):
        _print_status(describe(wh))


# -- labels ------------------------------------------------------------------------
@app.command()
@_user_errors
def labels(
    project: ProjectOption = Path("."),
    kind: Annotated[
        str | None,
        typer.Option(
            help="inactivity, subscription, adoption, conversion, activity or revenue; "
            "default: [churn] definition."
        ),
    ] = None,
    horizon: Annotated[
        list[int] | None, typer.Option(help="Horizon in days (repeatable); default [churn].")
    ] = None,
    lead: Annotated[int, typer.Option(help="Days between the cutoff and the window.")] = 0,
    start: Annotated[str | None, typer.Option(help="First cutoff (YYYY-MM-DD).")] = None,
    end: Annotated[
        str | None, typer.Option(help="Cutoffs before this day; default: the observation end.")
    ] = None,
    every_days: Annotated[int | None, typer.Option(help="Days between cutoffs.")] = None,
    every_months: Annotated[
        int | None, typer.Option(help="Months between cutoffs (the default: 1).")
    ] = None,
    at: Annotated[list[str] | None, typer.Option(help="An explicit cutoff (repeatable).")] = None,
    after_signup: Annotated[
        int | None, typer.Option(help="One cutoff per account, this many days after signup.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Write the labels to this .parquet or .csv file.")
    ] = None,
    table_name: TableOption = None,
    warehouse: WarehouseOption = None,
) -> None:
    """Label accounts at cutoffs: who churned (or converted, or how active) afterwards."""
    from churnwatch.labels import CutoffSchedule, LabelSpec, infer_observation_end, make_labels

    _check_out(out)
    if table_name is not None:
        check_table_name(table_name)  # before the work, not after it
    with _open(project, warehouse) as (settings, wh):
        spec = LabelSpec.from_settings(settings.churn, lead_days=lead)
        changes: dict[str, object] = {}
        if kind is not None:
            changes["kind"] = kind
        if horizon:
            changes["horizon_days"] = tuple(horizon)
        if changes:
            spec = dataclasses.replace(spec, **changes)  # type: ignore[arg-type]
        observation_end = settings.data.observation_end
        if at:
            schedule = CutoffSchedule.explicit(at)
        elif after_signup is not None:
            schedule = CutoffSchedule.after_signup(after_signup)
        else:
            if start is None:
                raise ChurnwatchError(
                    "give --start (with --every-months/--every-days), --at or --after-signup"
                )
            until = end or (
                observation_end or infer_observation_end(wh, spec).at.date().isoformat()
            )
            if every_days is not None:
                schedule = CutoffSchedule.every(start, until, days=every_days)
            else:
                schedule = CutoffSchedule.every(start, until, months=every_months or 1)
        table = make_labels(wh, spec, schedule, observation_end=observation_end)
        if table_name is not None:
            write_table(wh, table_name, table.frame)
    console.print(table.describe(), markup=False, highlight=False)
    if out is not None:
        _write_frame(table.frame, out)
        console.print(f"wrote {table.frame.num_rows:,} rows to {out}")
    if table_name is not None:
        console.print(f"wrote {table.frame.num_rows:,} rows to table {table_name}")


def _check_out(out: Path | None) -> None:
    """Refuse an --out file of no known format before any work (or table write) is done."""
    if out is not None and out.suffix.lower() not in (".parquet", ".csv"):
        raise ChurnwatchError(f"--out {out}: write to a .parquet or .csv file")


def _write_frame(frame: pa.Table, out: Path) -> None:
    """Write a result table as Parquet or CSV, by the file's suffix."""
    _check_out(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".parquet":
        pq.write_table(frame, out)
    else:
        pacsv.write_csv(frame, out)


# -- features ----------------------------------------------------------------------
@app.command()
@_user_errors
def features(
    project: ProjectOption = Path("."),
    at: Annotated[
        list[str] | None,
        typer.Option(help="A cutoff (repeatable): features of every account then."),
    ] = None,
    labels_file: Annotated[
        Path | None,
        typer.Option("--labels", help="Compute at the (account, cutoff) rows of a labels file."),
    ] = None,
    drop: Annotated[
        list[str] | None,
        typer.Option(help="Leave out this feature (repeatable), besides the project file's drops."),
    ] = None,
    explain: Annotated[
        bool,
        typer.Option("--explain", help="List each feature with its window and source, and exit."),
    ] = False,
    out: Annotated[
        Path | None, typer.Option(help="Write the features to this .parquet or .csv file.")
    ] = None,
    table_name: TableOption = None,
    warehouse: WarehouseOption = None,
) -> None:
    """Compute point-in-time features: each account as it stood just before each cutoff.

    The features are those the project file's features section declares: the
    defaults generated from the data, with its additions and without its drops.
    """
    from churnwatch.features import compute_features, feature_set
    from churnwatch.features import explain as explain_features

    _check_out(out)
    if table_name is not None:
        check_table_name(table_name)  # before the work, not after it
    with _open(project, warehouse) as (settings, wh):
        specs = feature_set(settings, wh, drop=drop or ())
        if explain:
            for line in explain_features(specs):
                typer.echo(line)
            return
        cutoffs = _feature_cutoffs(wh, at, labels_file)
        with _progress() as progress:
            task = progress.add_task(
                f"{len(specs)} features at {cutoffs.num_rows:,} cutoffs", total=None
            )
            frame = compute_features(
                wh,
                cutoffs,
                specs,
                on_progress=lambda done, total: progress.update(task, completed=done, total=total),
            )
        if table_name is not None:
            write_table(wh, table_name, frame)
    console.print(f"{len(specs)} features for {frame.num_rows:,} (account, cutoff) rows")
    if out is not None:
        _write_frame(frame, out)
        console.print(f"wrote {out}")
    if table_name is not None:
        console.print(f"wrote {frame.num_rows:,} rows to table {table_name}")


def _feature_cutoffs(wh: Warehouse, at: list[str] | None, labels_file: Path | None) -> pa.Table:
    """The (account_id, cutoff) rows to compute: from a labels file, or every account at dates."""

    if labels_file is not None:
        if at:
            raise ChurnwatchError("give --labels or --at, not both")
        try:
            labelled = pq.read_table(labels_file, columns=["account_id", "cutoff"])
        except (OSError, KeyError, pa.ArrowException) as exc:
            raise ChurnwatchError(
                f"--labels {labels_file}: expected a Parquet file from 'churnwatch labels' ({exc})"
            ) from None
        return labelled.cast(
            pa.schema([("account_id", pa.string()), ("cutoff", pa.timestamp("us", tz="UTC"))])
        )
    if not at:
        raise ChurnwatchError("give --at DATE (repeatable) or --labels FILE")
    dates = []
    for text in at:
        try:
            dates.append(dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC))
        except ValueError:
            raise ChurnwatchError(f"--at {text!r}: expected a date such as 2024-06-01") from None
    from churnwatch.features._compute import accounts_at

    return accounts_at(wh, dates)


# -- printing ----------------------------------------------------------------------
@contextlib.contextmanager
def _progress() -> Iterator[Progress]:
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        yield progress


def _print_report(report: IngestReport) -> None:
    table = RichTable(
        "source", "file", "read", "inserted", "updated", "quarantined", "note", title="ingest"
    )
    for load in report.files:
        note = (
            "[red]not loaded (see below)[/]"
            if load.error
            else "already loaded"
            if load.skipped
            else ", ".join(f"{r}: {n}" for r, n in sorted(load.reasons.items()))
        )
        table.add_row(
            load.source,
            Path(load.file).name,
            f"{load.rows_read:,}",
            f"{load.inserted:,}",
            f"{load.updated:,}",
            f"{load.quarantined:,}",
            note,
        )
    console.print(table)
    for load in report.errors:
        errors.print(f"[red]error:[/] {load.error}", soft_wrap=True)
    if report.quarantined:
        console.print(
            f"{report.quarantined:,} row(s) quarantined; see the quarantine table "
            "or 'churnwatch status'"
        )


def _print_status(found: WarehouseStatus) -> None:
    table = RichTable("table", "rows", "first", "last", title=f"warehouse {found.url}")
    for item in found.tables.values():
        table.add_row(item.name, f"{item.rows:,}", _when(item.first), _when(item.last))
    console.print(table)
    if found.quarantine:
        rejected = RichTable("table", "reason", "rows", title="quarantine")
        for (name, reason), rows in sorted(found.quarantine.items()):
            rejected.add_row(name, reason, f"{rows:,}")
        console.print(rejected)
    else:
        console.print("quarantine: empty")


def _when(value: dt.datetime | dt.date | None) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M")
    return value.isoformat()


def _print_problems(problems: list[dict[str, object]]) -> None:
    if not problems:
        return
    table = RichTable("file", "row", "column", "value", "reason", title="first rejected rows")
    for problem in problems:
        table.add_row(
            Path(str(problem["file"])).name,
            str(problem["row_number"]),
            str(problem["column_name"] or ""),
            str(problem["value"] or ""),
            str(problem["message"]),
        )
    errors.print(table)


# The other commands live in modules of their own; importing them registers them.
from churnwatch import (  # noqa: E402
    _cli_api,  # noqa: F401
    _cli_cohorts,  # noqa: F401
    _cli_dashboard,  # noqa: F401
    _cli_demo,  # noqa: F401
    _cli_models,  # noqa: F401
    _cli_notify,  # noqa: F401
    _cli_outcomes,  # noqa: F401
    _cli_report,  # noqa: F401
    _cli_retention,  # noqa: F401
    _cli_segments,  # noqa: F401
    _cli_tracker,  # noqa: F401
    _cli_views,  # noqa: F401
)
