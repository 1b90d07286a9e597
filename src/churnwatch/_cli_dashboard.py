"""The ``dashboard`` command: run the Streamlit dashboard on a project's read model.

A thin layer over :mod:`churnwatch.dashboard`; registered on the application
by :mod:`churnwatch.cli`. It checks the project file (so a bad ``[dashboard]``
section is one clear error, not a page of Streamlit output), then replaces
nothing and wraps nothing: it runs ``streamlit run`` on the app with the
project folder passed after ``--``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from churnwatch.cli import _user_errors, app, console
from churnwatch.config import PROJECT_FILE, load_settings
from churnwatch.dashboard import APP_FILE, hash_password
from churnwatch.errors import ConfigError

__all__ = ["dashboard"]


def streamlit_command(project: Path, port: int, *, headless: bool) -> list[str]:
    """The command line running the dashboard of ``project`` on ``port``.

    Examples
    --------
    >>> streamlit_command(Path("/p"), 8501, headless=True)[-2:]
    ['--project', '/p']
    """
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP_FILE),
        "--server.port",
        str(port),
        "--server.headless",
        "true" if headless else "false",
        "--browser.gatherUsageStats",
        "false",
        # Readers, not developers: no "Deploy" button or developer menu.
        "--client.toolbarMode",
        "viewer",
        "--",
        "--project",
        str(project),
    ]


@app.command()
@_user_errors
def dashboard(
    project: Annotated[
        Path, typer.Argument(help="Project folder holding churnwatch.toml and views/.")
    ] = Path("."),
    port: Annotated[int, typer.Option(help="Port to serve the dashboard on.")] = 8501,
    headless: Annotated[bool, typer.Option(help="Do not open a browser window.")] = False,
    hash_password_: Annotated[
        bool,
        typer.Option(
            "--hash-password",
            help="Ask for a password and print its hash, for password_hash in the project file.",
        ),
    ] = False,
) -> None:
    """Open the dashboard: KPIs, at-risk accounts, retention, segments, model, interventions."""
    if hash_password_:
        password = typer.prompt("Dashboard password", hide_input=True, confirmation_prompt=True)
        console.print(f'password_hash = "{hash_password(password)}"', soft_wrap=True)
        return
    if not 1 <= port <= 65535:
        raise ConfigError(f"--port {port}: expected a port between 1 and 65535")
    project = project.resolve()
    if (project / PROJECT_FILE).exists():
        load_settings(project)  # a bad [dashboard] section fails here, in one line
    if not (project / "views").exists():
        console.print(
            f"[yellow]note:[/] no read model in {project / 'views'} yet; the dashboard will "
            "say so until 'churnwatch views refresh' computes it."
        )
    # Run from the project folder: its .streamlit/ (secrets for OIDC login, theme) applies.
    completed = subprocess.run(
        streamlit_command(project, port, headless=headless), cwd=project, check=False
    )
    raise typer.Exit(completed.returncode)
