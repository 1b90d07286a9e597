"""The report command of the CLI: one self-contained HTML file of the business.

A thin layer over :func:`churnwatch.report.write_report`; registered on the
application by :mod:`churnwatch.cli`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from churnwatch.cli import ProjectOption, WarehouseOption, _open, _user_errors, app, console
from churnwatch.config import Settings
from churnwatch.warehouse import Warehouse

__all__ = ["report", "report_and_print"]


@app.command()
@_user_errors
def report(
    project: ProjectOption = Path("."),
    out: Annotated[
        Path | None,
        typer.Option(help="The HTML file; default reports/report.html in the project."),
    ] = None,
    as_of: Annotated[
        str | None, typer.Option(help="Describe the business as of this date; default the end.")
    ] = None,
    by: Annotated[
        str, typer.Option(help="Split the survival curves by this account attribute.")
    ] = "plan",
    warehouse: WarehouseOption = None,
) -> None:
    """Write the retention report: KPIs, cohorts, survival, segments, health, model quality."""
    with _open(project, warehouse) as (settings, wh):
        report_and_print(settings, wh, project, out, as_of=as_of, by=by)


def report_and_print(
    settings: Settings,
    wh: Warehouse,
    project: Path,
    out: Path | None,
    *,
    as_of: str | None = None,
    by: str = "plan",
) -> Path:
    """Write the report, print what each section holds, return the file."""
    from churnwatch._cli_models import registry_root
    from churnwatch.models import ModelRegistry
    from churnwatch.report import write_report

    target = out if out is not None else project / "reports" / "report.html"
    root = registry_root(project)
    written = write_report(
        wh,
        settings,
        target,
        registry=ModelRegistry(root) if root.exists() else None,
        as_of=as_of,
        by=by,
    )
    for key, status in written.sections.items():
        shown = "[green]ok[/]" if status == "ok" else f"[yellow]{escape(status)}[/]"
        console.print(f"{key}: {shown}")
    console.print(f"wrote {target} (as of {written.as_of.date().isoformat()})")
    return target
