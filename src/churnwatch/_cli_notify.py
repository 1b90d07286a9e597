"""The notification commands of the CLI: ``notify dispatch`` and ``notify csms``.

A thin layer over :mod:`churnwatch.notify`; registered on the application by
:mod:`churnwatch.cli`. This is the edge where secrets are read: the project
file names environment variables (``[notify] slack_token_env``, ...), and
only here are they looked up.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import sqlalchemy as sa
import typer
from rich.markup import escape
from rich.table import Table as RichTable

from churnwatch.cli import ProjectOption, WarehouseOption, _open, _user_errors, app, console, errors
from churnwatch.config import Settings, load_settings
from churnwatch.notify import (
    Channel,
    ConsoleChannel,
    CsmDirectory,
    EmailChannel,
    FileChannel,
    RetryPolicy,
    SlackChannel,
    WebhookChannel,
    dispatch,
    due_notifications,
    queue_digests,
)
from churnwatch.store import OUTBOX, TRACKER_ACCOUNTS, Store, open_store

__all__ = ["notify_app"]

notify_app = typer.Typer(
    help="Deliver the queued notifications; list the CSMs they cannot reach.",
    no_args_is_help=True,
)
app.add_typer(notify_app, name="notify")

StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        envvar="CHURNWATCH_STORE_URL",
        help="Operational store URL, overriding the project file's [store] url.",
    ),
]


@contextlib.contextmanager
def _store(project: Path, settings: Settings, url: str | None) -> Iterator[Store]:
    store = open_store(url or settings.store.url, base_dir=project)
    try:
        yield store
    finally:
        store.close()


def _directory(project: Path, warehouse: str | None) -> CsmDirectory:
    with _open(project, warehouse) as (_, wh):
        return CsmDirectory.from_warehouse(wh)


def _channels(
    settings: Settings, project: Path, warehouse: str | None, wanted: set[str]
) -> tuple[dict[str, Channel], dict[str, str]]:
    """The channels ``wanted`` that the settings configure, and why the others are not."""
    notify = settings.notify
    channels: dict[str, Channel] = {}
    missing: dict[str, str] = {}
    directory: CsmDirectory | None = None
    for name in sorted(wanted):
        if name == "file":
            channels[name] = FileChannel(project / notify.file_path)
        elif name == "webhook":
            secret = os.environ.get(notify.webhook_secret_env, "")
            if notify.webhook_url is None:
                missing[name] = "set [notify] webhook_url"
            elif not secret:
                missing[name] = f"set the environment variable {notify.webhook_secret_env}"
            else:
                channels[name] = WebhookChannel(
                    notify.webhook_url, secret, timeout_s=notify.timeout_s
                )
        elif name in {"slack", "email"}:
            token = os.environ.get(notify.slack_token_env, "")
            if name == "slack" and not token:
                missing[name] = f"set the environment variable {notify.slack_token_env}"
                continue
            directory = directory or _directory(project, warehouse)
            if name == "slack":
                from slack_sdk import WebClient

                client = WebClient(token=token, timeout=max(1, round(notify.timeout_s)))
                channels[name] = SlackChannel(client, directory, channel=notify.slack_channel)
            else:
                channels[name] = EmailChannel(
                    directory,
                    host=notify.smtp_host,
                    port=notify.smtp_port,
                    from_address=notify.email_from,
                    timeout_s=notify.timeout_s,
                    starttls=notify.smtp_starttls,
                    username=notify.smtp_username,
                    password=os.environ.get(notify.smtp_password_env),
                )
        else:
            missing[name] = "no such channel (expected slack, email, webhook or file)"
    return channels, missing


def _count_due(store: Store, now: dt.datetime) -> dict[str, int]:
    due = [n.channel for n in due_notifications(store, now=now)]
    return {channel: due.count(channel) for channel in sorted(set(due))}


@notify_app.command("dispatch")
@_user_errors
def dispatch_command(
    project: ProjectOption = Path("."),
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Print what would be delivered now, and change nothing."),
    ] = False,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Deliver at most this many notifications.")
    ] = None,
    store_url: StoreOption = None,
    warehouse: WarehouseOption = None,
) -> None:
    """Deliver the outbox's due notifications, with retries and backoff."""
    settings = load_settings(project)
    notify = settings.notify
    now = dt.datetime.now(dt.UTC)
    with _store(project, settings, store_url) as store:
        if dry_run:
            due = due_notifications(store, now=now, limit=limit)
            preview = ConsoleChannel(console.file)
            for note in due:
                console.print(
                    f"[bold]{escape(note.channel)}[/] → {escape(note.recipient_csm_id or '-')} "
                    f"({escape(note.idempotency_key)})",
                    soft_wrap=True,
                )
                preview.deliver(note)
            console.print(f"{len(due)} notification(s) due; nothing was sent (dry run).")
            return
        if notify.digest:
            queued = queue_digests(store, date=now.date(), channel=notify.channel, now=now)
            if queued:
                console.print(f"{queued} daily digest(s) queued.")
        waiting = _count_due(store, now)
        channels, missing = _channels(settings, project, warehouse, set(waiting))
        policy = RetryPolicy(
            max_attempts=notify.max_attempts_count,
            backoff_s=notify.backoff_s,
            max_backoff_s=notify.max_backoff_s,
            lease_s=notify.lease_s,
            batch_rows=notify.batch_rows,
        )
        try:
            report = dispatch(store, channels, policy=policy, limit=limit)
        finally:
            for channel in channels.values():
                close = getattr(channel, "close", None)
                if close is not None:
                    close()
    table = RichTable(
        "sent", "retrying", "dead", "deferred", "lost lease", "cancelled", title="notifications"
    )
    counts = (
        report.sent,
        report.retrying,
        report.dead,
        report.deferred,
        report.lost_lease,
        report.cancelled,
    )
    table.add_row(*[str(count) for count in counts])
    console.print(table)
    for line in report.errors:
        errors.print(f"[yellow]failed:[/] {escape(line)}", soft_wrap=True)
    for name, reason in missing.items():
        errors.print(
            f"[yellow]waiting:[/] {waiting[name]} notification(s) for channel {name!r}: "
            f"{escape(reason)}",
            soft_wrap=True,
        )
    if missing:
        raise typer.Exit(1)


@notify_app.command("csms")
@_user_errors
def csms_command(
    project: ProjectOption = Path("."),
    channel: Annotated[
        str | None,
        typer.Option(help="Check this channel (slack or email); default: [notify] channel."),
    ] = None,
    store_url: StoreOption = None,
    warehouse: WarehouseOption = None,
) -> None:
    """List the CSMs that notifications cannot reach, and why (exit code 1 if any)."""
    settings = load_settings(project)
    chosen = channel or settings.notify.channel
    with _store(project, settings, store_url) as store, store.engine.connect() as connection:
        accounts: dict[str, int] = dict(
            connection.execute(
                sa.select(TRACKER_ACCOUNTS.c.csm_id, sa.func.count())
                .where(TRACKER_ACCOUNTS.c.csm_id.is_not(None))
                .group_by(TRACKER_ACCOUNTS.c.csm_id)
            ).all()
        )
        waiting: dict[str | None, int] = dict(
            connection.execute(
                sa.select(OUTBOX.c.recipient_csm_id, sa.func.count())
                .where(OUTBOX.c.status.in_(("pending", "failed", "dead")))
                .group_by(OUTBOX.c.recipient_csm_id)
            ).all()
        )
    directory = _directory(project, warehouse)
    refs = sorted({str(r) for r in accounts} | {str(r) for r in waiting if r is not None})
    unmapped = directory.unmapped(refs, channel=chosen)
    if chosen not in {"slack", "email"}:
        console.print(f"channel {chosen!r} does not need CSM addresses.")
    if not unmapped:
        console.print(f"every CSM ({len(refs)}) can be reached on {chosen}.")
        return
    table = RichTable(
        "CSM", "accounts", "notifications not delivered", "why", title=f"unreachable on {chosen}"
    )
    for missing in unmapped:
        table.add_row(
            escape(missing.csm_ref),
            str(accounts.get(missing.csm_ref, 0)),
            str(waiting.get(missing.csm_ref, 0)),
            escape(missing.reason),
        )
    console.print(table)
    console.print(
        f"{len(unmapped)} of {len(refs)} CSM(s) cannot be reached: add them, with their e-mail "
        "(and Slack id, if known), to the csms source and ingest it."
    )
    raise typer.Exit(1)
