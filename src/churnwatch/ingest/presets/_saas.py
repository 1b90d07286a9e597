"""Preset ``saas_sessions``: a SaaS users table and its sessions log."""

from __future__ import annotations

from pathlib import Path

from churnwatch.config import SourceSpec
from churnwatch.ingest.presets._preset import file_path, make_source

__all__ = ["saas_sessions_sources"]


def saas_sessions_sources(
    data_dir: Path, *, users_file: str = "users.csv", sessions_file: str = "sessions.csv"
) -> list[SourceSpec]:
    """Map a SaaS ``users.csv`` and ``sessions.csv`` onto accounts and events.

    Each user is an account; each session is one event.

    Parameters
    ----------
    data_dir : Path
        Folder holding the two files.
    users_file, sessions_file : str
        File names inside ``data_dir``.

    Returns
    -------
    list of SourceSpec
        ``users`` (accounts) and ``sessions`` (events).

    Notes
    -----
    Expected files:

    - ``users.csv``: ``user_id, signup_date, signup_platform, referral_source``
    - ``sessions.csv``: ``session_id, user_id, session_start, session_end,
      device_type, session_type, pages_viewed, is_conversion``

    Mapping:

    ============================  =================================================
    ``accounts.account_id``       ``user_id``
    ``accounts.created_at``       ``signup_date``
    ``accounts.platform``         ``signup_platform``
    ``accounts.referral_source``  ``referral_source``
    ``events.event_id``           ``session_id``
    ``events.account_id``         ``user_id``; a session of an unknown user is
                                  quarantined (``unknown_account``)
    ``events.event_time``         ``session_start``
    ``events.event_type``         ``session_type``, ``"session"`` where it is empty
    ``events.duration_s``         ``session_end - session_start`` in seconds; a
                                  session ending before it starts is quarantined
                                  (``negative``)
    ``events.properties``         ``{device_type, pages_viewed, is_conversion}``
    ============================  =================================================

    Timestamps without an offset are read as UTC; text that states its offset
    (``2024-03-04T10:00:00+02:00``) keeps it.

    Examples
    --------
    >>> [s.table for s in saas_sessions_sources(Path("data"))]
    ['accounts', 'events']
    """
    users = make_source(
        "users",
        "accounts",
        file_path(data_dir, users_file),
        {
            "account_id": "user_id",
            "created_at": "signup_date",
            "platform": "signup_platform",
            "referral_source": "referral_source",
        },
    )
    sessions = make_source(
        "sessions",
        "events",
        file_path(data_dir, sessions_file),
        {
            "event_id": "session_id",
            "account_id": "user_id",
            "event_time": "session_start",
            "event_type": {"expr": "COALESCE(session_type, 'session')"},
            "duration_s": {"seconds_between": ["session_start", "session_end"]},
            "properties": {"json_columns": ["device_type", "pages_viewed", "is_conversion"]},
        },
    )
    return [users, sessions]
