"""What every page shares: the project, the cached read model and store, filters, masking.

This is the dashboard's edge: it reads the project folder from the script's
arguments (``--project DIR``, as ``churnwatch dashboard`` passes it) or the
``CHURNWATCH_PROJECT_DIR`` environment variable, loads the settings, and
keeps one :class:`~churnwatch.views.ReadModel` and one operational store per
process (``st.cache_resource``). A page asks for a table with
:func:`table_or_info`, which shows how to compute a missing table instead of
failing.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import streamlit as st

from churnwatch.config import PROJECT_FILE, Settings, load_settings
from churnwatch.dashboard._access import (
    PERSONAL_COLUMNS,
    mask_email,
    mask_name,
    may_see_personal_data,
)
from churnwatch.errors import ChurnwatchError
from churnwatch.outcomes import episode_frame, last_tracked_date
from churnwatch.store import Store, open_store
from churnwatch.views import ACCOUNT_FILTERS, AccountFilter, ReadModel

__all__ = [
    "PROJECT_ENV",
    "account_filter",
    "episodes",
    "filter_caption",
    "forget_episodes",
    "mask_frame",
    "model",
    "money",
    "percent",
    "project_dir",
    "settings",
    "store",
    "table_or_info",
]

#: Environment variable naming the project folder (the script argument wins).
PROJECT_ENV = "CHURNWATCH_PROJECT_DIR"

#: How each table of the read model gets computed: shown when one is missing.
HOW_TO_COMPUTE: dict[str, str] = {
    "accounts": "churnwatch views refresh",
    "risk_history": "churnwatch score, then churnwatch views refresh",
    "activity": "churnwatch views refresh",
    "features": "churnwatch features, then churnwatch views refresh",
    "churn_trend": "churnwatch labels, then churnwatch views refresh",
    "cohort_retention": "churnwatch cohorts, then churnwatch views refresh",
    "survival_curves": "churnwatch survival, then churnwatch views refresh",
    "survival_tests": "churnwatch survival, then churnwatch views refresh",
    "segment_points": "churnwatch segments, then churnwatch views refresh",
    "segment_profiles": "churnwatch segments, then churnwatch views refresh",
    "model_metrics": "churnwatch train, then churnwatch views refresh",
    "model_curves": "churnwatch train, then churnwatch views refresh",
    "importance": "churnwatch train, then churnwatch views refresh",
    "pdp": "churnwatch train, then churnwatch views refresh",
    "drift": "churnwatch score, then churnwatch views refresh",
}

#: Sidebar labels of the account filters.
FILTER_LABELS = {
    "risk_tier": "Risk tier",
    "csm_id": "CSM",
    "region": "Region",
    "plan": "Plan",
    "platform": "Platform",
    "segment": "Segment",
}


def project_dir() -> Path:
    """The project folder: ``--project DIR`` after the script, else the environment."""
    arguments = sys.argv[1:]
    if "--project" in arguments:
        position = arguments.index("--project")
        if position + 1 < len(arguments):
            return Path(arguments[position + 1]).resolve()
    return Path(os.environ.get(PROJECT_ENV, ".")).resolve()


@st.cache_resource(show_spinner=False)
def _read_model(root: str) -> ReadModel:
    # One per process: its account index and DuckDB connection serve every session.
    return ReadModel(Path(root))


def model() -> ReadModel:
    """The project's read model (``<project>/views``), shared by every session."""
    return _read_model(str(project_dir() / "views"))


@st.cache_data(ttl=30, show_spinner=False)
def _settings(project: str) -> Settings:
    if not (Path(project) / PROJECT_FILE).exists():
        return Settings()
    return load_settings(project)


def settings() -> Settings:
    """The project's settings (the defaults when it has no project file)."""
    return _settings(str(project_dir()))


@st.cache_resource(show_spinner=False)
def _store(url: str, base_dir: str) -> Store:
    return open_store(url, base_dir=base_dir)


def store() -> Store | None:
    """The operational store named by the read model (else the settings), or None.

    A SQLite store that was never created is None: opening it would create
    an empty one beside the project.
    """
    project = project_dir()
    url = model().meta.get("store_url") or settings().store.url
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if not (path if path.is_absolute() else project / path).exists():
            return None
    try:
        return _store(url, str(project))
    except ChurnwatchError as exc:
        st.warning(f"The operational store cannot be opened: {exc}")
        return None


def table_or_info(name: str, what: str) -> pa.Table | None:
    """Table ``name`` of the read model, or None after an info box saying how to compute it."""
    read_model = model()
    if name not in read_model.generation.tables:
        command = HOW_TO_COMPUTE.get(name, "churnwatch views refresh")
        st.info(f"{what} not computed yet — run `{command}`.")
        return None
    return read_model.table(name)


def has_table(name: str) -> bool:
    """Whether the current generation holds table ``name``."""
    return name in model().generation.tables


def account_filter() -> AccountFilter:
    """The sidebar's filters (set by the app's sidebar, kept in the session)."""
    chosen: dict[str, Any] = {
        name: tuple(st.session_state.get(f"filter_{name}", ())) for name in ACCOUNT_FILTERS
    }
    return AccountFilter(**chosen)


def filter_caption(filters: AccountFilter, applies_to: str = "") -> None:
    """A caption naming the active filters, so a number is never read out of context."""
    active = [
        f"{FILTER_LABELS[name]}: {', '.join(getattr(filters, name))}"
        for name in ACCOUNT_FILTERS
        if getattr(filters, name)
    ]
    if active:
        st.caption("Filtered — " + "; ".join(active) + (f" ({applies_to})" if applies_to else ""))


def user_email() -> str | None:
    """The logged-in user's e-mail (OpenID Connect), else None."""
    if st.user.get("is_logged_in", False):
        email = st.user.get("email")
        return str(email) if email else None
    return None


def personal_data_visible() -> bool:
    """Whether this session may see account names and e-mails."""
    return may_see_personal_data(settings().dashboard, user_email())


def mask_frame(frame: pd.DataFrame, visible: bool | None = None) -> pd.DataFrame:
    """``frame`` with names and e-mails masked unless this session may see them.

    ``visible`` decided beforehand lets a download thread (which has no
    session) mask as the session would.
    """
    if personal_data_visible() if visible is None else visible:
        return frame
    frame = frame.copy()
    for column, mask in zip(PERSONAL_COLUMNS, (mask_name, mask_email), strict=True):
        if column in frame.columns:
            frame[column] = frame[column].map(mask, na_action="ignore")
    return frame


@st.cache_data(ttl=60, show_spinner=False)
def _episodes(store_key: str, as_of: dt.date, _store: Store, _tracker: Any) -> pd.DataFrame:
    # Keyed by the store and the date tracked; a new tracker run or an answer clears it.
    return episode_frame(_store, as_of=as_of, tracker=_tracker)


def episodes() -> tuple[pd.DataFrame, dt.date] | None:
    """The store's churn episodes as of the last tracked date, or None after an info box."""
    live = store()
    as_of = last_tracked_date(live) if live is not None else None
    if live is None or as_of is None:
        st.info(
            "Nothing tracked yet — run `churnwatch track` (or `churnwatch daily`) on an "
            "adoption snapshot to follow at-risk accounts and their outcomes."
        )
        return None
    return _episodes(str(live.engine.url), as_of, live, settings().tracker), as_of


def forget_episodes() -> None:
    """Drop the cached episodes (after an answer was recorded)."""
    _episodes.clear()


def money(value: float | None) -> str:
    """A sum of money for a metric: ``12,345``, ``1.2M``, or a dash.

    Examples
    --------
    >>> money(1234.5), money(2_500_000), money(None)
    ('1,234', '2.50M', '—')
    """
    if value is None:
        return "—"
    if abs(value) >= 1_000_000:
        return f"{value / 1_000_000:.2f}M"
    return f"{value:,.0f}"


def percent(value: float | None) -> str:
    """A share as a percentage, or a dash.

    Examples
    --------
    >>> percent(0.1234), percent(None)
    ('12.3%', '—')
    """
    return "—" if value is None else f"{value:.1%}"
