"""The ``churnwatch demo`` command: the whole product on a simulated business, from nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from churnwatch.cli import (
    _ingest,
    _open,
    _print_report,
    _print_status,
    _simulate,
    _user_errors,
    app,
    console,
)
from churnwatch.config import DataSettings, ProjectSettings, Settings, save_settings
from churnwatch.status import describe


@app.command()
@_user_errors
def demo(
    directory: Annotated[Path, typer.Argument(help="Folder for the demo project.")] = Path("demo"),
    accounts: Annotated[int, typer.Option(help="Number of simulated accounts.")] = 2000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Simulate a business, ingest, train and backtest, score, report, refresh the read model."""
    from churnwatch.ingest.presets import preset_sources

    directory.mkdir(parents=True, exist_ok=True)
    console.rule("[bold]1. simulate")
    result = _simulate(directory / "data", accounts, seed, "2024-01-01", "2024-12-31")
    console.print(f"{sum(result.counts.values()):,} rows; observation end {result.observation_end}")
    console.rule("[bold]2. ingest")
    settings = Settings(
        project=ProjectSettings(name="demo"),
        data=DataSettings(observation_end=str(result.observation_end)),
        sources=preset_sources("churnwatch_simulator", Path("data"), base_dir=directory),
    )
    save_settings(settings, directory)
    with _open(directory, None) as (settings, wh):
        report = _ingest(settings, wh, directory, None, None)
        _print_report(report)
        console.rule("[bold]3. status")
        _print_status(describe(wh))
        console.rule("[bold]4. train and backtest")
        from churnwatch._cli_models import _train, score_and_print

        for line in _train(
            settings, wh, directory, [14, 30], [], None, None, 4, True, True, True, 2
        ):
            console.print(line, markup=False, highlight=False)
        console.rule("[bold]5. score")
        score_and_print(wh, directory, None, None, 5)
        console.rule("[bold]6. report")
        from churnwatch._cli_report import report_and_print

        report_and_print(settings, wh, directory, None)
        console.rule("[bold]7. read model")
        from churnwatch._cli_views import refresh_and_print

        refresh_and_print(settings, wh, directory)
    console.print(f"\nproject written to {directory.resolve()}")
