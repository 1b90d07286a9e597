"""The commands of the REST API: ``serve``, ``apikey create|list|revoke``, ``events drain``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table as RichTable

from churnwatch._cli_notify import StoreOption, _store
from churnwatch.cli import ProjectOption, WarehouseOption, _open, _user_errors, app, console, errors
from churnwatch.config import load_settings

__all__ = ["SLACK_SIGNING_SECRET_ENV", "apikey_app", "events_app"]

#: The environment variable holding the Slack app's signing secret.
SLACK_SIGNING_SECRET_ENV = "SLACK_SIGNING_SECRET"

apikey_app = typer.Typer(
    help="Make, list and revoke the REST API's keys (stored hashed).", no_args_is_help=True
)
app.add_typer(apikey_app, name="apikey")
events_app = typer.Typer(help="Events posted to the REST API.", no_args_is_help=True)
app.add_typer(events_app, name="events")


@app.command("serve")
@_user_errors
def serve_command(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Server processes (each loads the read model).")
    ] = 1,
    project: ProjectOption = Path("."),
    store_url: StoreOption = None,
) -> None:
    """Serve the REST API (accounts, scoring, events, retention, answers, Slack, KPIs)."""
    import uvicorn

    settings = load_settings(project)
    if os.environ.get(SLACK_SIGNING_SECRET_ENV) is None:
        errors.print(
            f"[yellow]note:[/] {SLACK_SIGNING_SECRET_ENV} is not set: the Slack interaction "
            "endpoint will refuse every request.",
            soft_wrap=True,
        )
    # The store is opened here once, so that a bad URL or a too-new schema is
    # one clear line before any server process starts.
    with _store(project, settings, store_url):
        pass
    os.environ["CHURNWATCH_API_PROJECT"] = str(project.resolve())
    if store_url:
        os.environ["CHURNWATCH_STORE_URL"] = store_url
    uvicorn.run(
        "churnwatch.api._serve:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
    )


@apikey_app.command("create")
@_user_errors
def create_command(
    name: Annotated[str, typer.Option(help="Who or what uses the key.")],
    scope: Annotated[str, typer.Option(help="read (GET endpoints) or write (all).")] = "read",
    project: ProjectOption = Path("."),
    store_url: StoreOption = None,
) -> None:
    """Make an API key; it is printed once and only its SHA-256 is kept."""
    from churnwatch.api import create_api_key

    settings = load_settings(project)
    with _store(project, settings, store_url) as store:
        key, made = create_api_key(store, name=name, scope=scope)
    errors.print(
        f"API key {made.id} ({escape(made.name)}, scope {made.scope}) created; it is shown "
        "once, keep it now:",
        soft_wrap=True,
    )
    console.print(key, soft_wrap=True, markup=False)


@apikey_app.command("list")
@_user_errors
def list_command(project: ProjectOption = Path("."), store_url: StoreOption = None) -> None:
    """List the API keys (never the keys themselves)."""
    from churnwatch.api import list_api_keys

    settings = load_settings(project)
    with _store(project, settings, store_url) as store:
        keys = list_api_keys(store)
    if not keys:
        console.print("No API keys yet: churnwatch apikey create --name NAME --scope read")
        return
    table = RichTable("id", "name", "scope", "starts with", "created", "revoked")
    for key in keys:
        table.add_row(
            str(key.id),
            escape(key.name),
            key.scope,
            escape(key.prefix) + "…",
            f"{key.created_at:%Y-%m-%d %H:%M}",
            f"{key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "",
        )
    console.print(table)


@apikey_app.command("revoke")
@_user_errors
def revoke_command(
    key_id: Annotated[int, typer.Argument(help="The key's id (see 'churnwatch apikey list').")],
    project: ProjectOption = Path("."),
    store_url: StoreOption = None,
) -> None:
    """Revoke an API key: refused from now on (servers notice within seconds)."""
    from churnwatch.api import revoke_api_key

    settings = load_settings(project)
    with _store(project, settings, store_url) as store:
        revoked = revoke_api_key(store, key_id)
    console.print(f"API key {revoked.id} ({escape(revoked.name)}) is revoked.")


@events_app.command("drain")
@_user_errors
def drain_command(
    project: ProjectOption = Path("."),
    warehouse_url: WarehouseOption = None,
    store_url: StoreOption = None,
) -> None:
    """Move the events posted to the API into the warehouse (checked, deduplicated)."""
    from churnwatch.inbox import drain_inbox

    settings = load_settings(project)
    with (
        _open(project, warehouse_url) as (_, warehouse),
        _store(project, settings, store_url) as store,
    ):
        report = drain_inbox(store, warehouse)
    console.print(
        f"{report.drained:,} posted event(s) drained: {report.loaded:,} loaded into the "
        f"warehouse, {report.quarantined:,} quarantined."
    )
    for reason, count in sorted(report.ingest.reasons.items()):
        console.print(f"  quarantined, {escape(reason)}: {count:,}")


@events_app.command("prune")
@_user_errors
def prune_command(
    project: ProjectOption = Path("."),
    store_url: StoreOption = None,
    keep_days: Annotated[
        int | None,
        typer.Option(
            "--keep-days",
            min=1,
            help="Keep events drained this many days ago or less (default: [store] "
            "inbox_keep_days).",
        ),
    ] = None,
) -> None:
    """Delete events drained into the warehouse long ago (the daily run does it too)."""
    from churnwatch.inbox import prune_inbox

    settings = load_settings(project)
    days = keep_days if keep_days is not None else settings.store.inbox_keep_days
    with _store(project, settings, store_url) as store:
        deleted = prune_inbox(store, keep_days=days)
    console.print(f"{deleted:,} drained event(s) older than {days} day(s) deleted from the inbox.")
