"""The dashboard: a Streamlit app over the read model, for product, growth and CS people.

``churnwatch dashboard [DIR]`` runs :data:`APP_FILE` with Streamlit. The app
reads precomputed tables (:class:`churnwatch.views.ReadModel`) and the
operational store through the domain's functions; it computes nothing of
its own. Access is set in the project file's ``[dashboard]`` section (see
:mod:`churnwatch.dashboard._access`).

Importing this package does not import Streamlit.
"""

from __future__ import annotations

from pathlib import Path

from churnwatch.dashboard._access import (
    hash_password,
    mask_email,
    mask_name,
    may_see_personal_data,
    verify_password,
)

__all__ = [
    "APP_FILE",
    "hash_password",
    "mask_email",
    "mask_name",
    "may_see_personal_data",
    "verify_password",
]

#: The Streamlit script of the dashboard.
APP_FILE = Path(__file__).parent / "app.py"
