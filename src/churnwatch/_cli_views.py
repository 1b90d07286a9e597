"""The read-model commands of the CLI: ``churnwatch views refresh``.

A thin layer over :func:`churnwatch.views.refresh_views`; registered on the
application by :mod:`churnwatch.cli`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table as RichTable

from churnwatch.cli import WarehouseOption, _open, _user_errors, app, console
from churnwatch.config import Settings
from churnwatch.store import Store, open_store
from churnwatch.warehouse import Warehouse

__all__ = ["refresh", "refresh_and_print", "views_app", "views_root"]

views_app = typer.Typer(
    help="The read model the dashboard and the API serve from.", no_args_is_help=True
)
app.add_typer(views_app, name="views")


def views_root(project: Path) -> Path:
    """Where a project keeps its read model."""
    return project / "views"


@views_app.command("refresh")
@_user_errors
def refresh(
    directory: Annotated[
        Path, typer.Argument(help="Project folder holding churnwatch.toml.")
    ] = Path("."),
    store_url: Annotated[
        str | None,
        typer.Option(
            "--store",
            envvar="CHURNWATCH_STORE_URL",
            help="Operational store URL, overriding the project file's [store] url.",
        ),
    ] = None,
    warehouse: WarehouseOption = None,
) -> None:
    """Recompute every table of the read model and swap the new set in at once."""
    with _open(directory, warehouse) as (settings, wh):
        refresh_and_print(settings, wh, directory, store_url=store_url)


@contextlib.contextmanager
def _existing_store(project: Path, url: str) -> Iterator[Store | None]:
    """The store at ``url``, or None when its SQLite file was never created.

    A refresh only reads the store: it does not create an empty one.
    """
    from churnwatch.views._inputs import store_file_exists

    if not store_file_exists(url, project):
        yield None
        return
    store = open_store(url, base_dir=project)
    try:
        yield store
    finally:
        store.close()


def refresh_and_print(
    settings: Settings, wh: Warehouse, project: Path, *, store_url: str | None = None
) -> Path:
    """Refresh the project's read model, print each table's rows or why it is missing."""
    from churnwatch._cli_models import registry_root
    from churnwatch.models import ModelRegistry
    from churnwatch.views import TABLES, refresh_views
    from churnwatch.views._inputs import public_store_url

    url = store_url or settings.store.url
    root = views_root(project)
    models = registry_root(project)
    with (
        _existing_store(project, url) as store,
        console.status("refreshing the read model…") as status,
    ):
        result = refresh_views(
            settings,
            wh,
            root,
            registry=ModelRegistry(models) if models.exists() else None,
            store=store,
            store_url=public_store_url(url, project),
            on_progress=lambda name: status.update(f"refreshing the read model: {name}…"),
        )
    table = RichTable("table", "rows", "note", title="read model")
    for name in TABLES:
        if name in result.rows:
            table.add_row(name, f"{result.rows[name]:,}", "")
        else:
            reason = result.missing.get(name, "")
            table.add_row(name, "", f"[yellow]{escape(reason)}[/]")
    console.print(table)
    for key, reason in result.missing.items():
        if key.startswith("accounts."):
            console.print(f"[yellow]{escape(key)}[/] left empty: {escape(reason)}")
    console.print(f"wrote {result.generation.path}")
    return result.generation.path
