"""The dashboard's main script: login, sidebar filters, and the pages.

Run by ``churnwatch dashboard`` (``streamlit run app.py -- --project DIR``).
Each page is a module of :mod:`churnwatch.dashboard.pages`; the filters set
in the sidebar here hold on every page.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import streamlit as st
from streamlit.errors import StreamlitAPIException

from churnwatch._dashboard_settings import DashboardSettings
from churnwatch.dashboard import _context as ctx
from churnwatch.dashboard._access import verify_password
from churnwatch.errors import ChurnwatchError
from churnwatch.views import ACCOUNT_FILTERS, ViewsNotFoundError

__all__ = ["PAGES", "main"]

_HERE = Path(__file__).parent

#: The pages in menu order: (file under pages/, title, icon).
PAGES: tuple[tuple[str, str, str], ...] = (
    ("overview.py", "Overview", ":material/dashboard:"),
    ("at_risk.py", "At-risk accounts", ":material/warning:"),
    ("account.py", "Account", ":material/person:"),
    ("retention.py", "Retention", ":material/timeline:"),
    ("segments.py", "Segments", ":material/scatter_plot:"),
    ("model.py", "Model", ":material/model_training:"),
    ("interventions.py", "Interventions", ":material/support_agent:"),
)


def _password_gate(settings: DashboardSettings) -> bool:
    """The login form; True once this session gave the right password."""
    if st.session_state.get("authenticated"):
        return True
    st.title("Churnwatch")
    with st.form("login"):
        password = st.text_input("Password", type="password")
        submitted = st.form_submit_button("Log in")
    if submitted:
        if settings.password_hash is not None and verify_password(password, settings.password_hash):
            st.session_state["authenticated"] = True
            st.rerun()
        st.error("Wrong password.")
    return False


def _oidc_gate(settings: DashboardSettings) -> bool:
    """Streamlit's OpenID Connect login; True for a logged-in user."""
    if st.user.get("is_logged_in", False):
        st.sidebar.caption(f"Logged in as {st.user.get('email') or st.user.get('name')}")
        st.sidebar.button("Log out", on_click=st.logout)
        return True
    st.title("Churnwatch")
    problem = _oidc_problem(settings)
    if problem:
        st.error(problem)
        return False
    provider = (settings.oidc_provider,) if settings.oidc_provider else ()
    st.button("Log in", type="primary", on_click=st.login, args=provider)
    return False


def _oidc_problem(settings: DashboardSettings) -> str | None:
    """Why OpenID Connect login cannot work here, or None."""
    if importlib.util.find_spec("authlib") is None:
        return "auth = 'oidc' needs the Authlib package: pip install 'Authlib>=1.3.2'."
    try:
        auth = st.secrets.get("auth")
    except (FileNotFoundError, StreamlitAPIException):
        auth = None
    if not auth:
        return (
            "auth = 'oidc' needs an [auth] section in .streamlit/secrets.toml in the project "
            "folder (redirect_uri, cookie_secret, client_id, client_secret, "
            "server_metadata_url)."
        )
    if settings.oidc_provider and settings.oidc_provider not in auth:
        return f"no [auth.{settings.oidc_provider}] section in .streamlit/secrets.toml."
    return None


def _logged_in(settings: DashboardSettings) -> bool:
    if settings.auth == "password":
        return _password_gate(settings)
    if settings.auth == "oidc":
        return _oidc_gate(settings)
    return True


def _sidebar(filter_values: dict[str, list[str]]) -> None:
    """The filters every page applies, from the values the refresh listed."""
    st.sidebar.header("Filters")
    for name in ACCOUNT_FILTERS:
        options = filter_values.get(name) or []
        if options:
            st.sidebar.multiselect(
                ctx.FILTER_LABELS[name], options, key=f"filter_{name}", placeholder="All"
            )


def main() -> None:
    """Render the dashboard: login, then the sidebar and the chosen page."""
    st.set_page_config(page_title="Churnwatch", page_icon=":material/monitoring:", layout="wide")
    try:
        settings = ctx.settings()
        if not _logged_in(settings.dashboard):
            st.stop()
        meta = ctx.model().meta
    except ViewsNotFoundError as exc:
        st.info(f"Nothing to show yet: {exc}")
        st.stop()
    except ChurnwatchError as exc:
        st.error(str(exc))
        st.stop()
    _sidebar(meta.get("filter_values") or {})
    refreshed = meta.get("refreshed_at")
    st.sidebar.caption(f"{meta.get('project') or ''} · data refreshed {refreshed or 'never'}")
    pages = [
        st.Page(str(_HERE / "pages" / file), title=title, icon=icon, default=index == 0)
        for index, (file, title, icon) in enumerate(PAGES)
    ]
    st.navigation(pages).run()


if __name__ == "__main__":
    main()
