"""The project file's ``[dashboard]`` section: who may open the dashboard and see whom.

Kept apart from :mod:`churnwatch.dashboard` because :mod:`churnwatch.config`
validates the section, and the dashboard reads the config: importing it from
the config would be circular. This module needs only pydantic.

A password is never stored, only a salted scrypt hash of it, written by
``churnwatch dashboard --hash-password``::

    [dashboard]
    auth = "password"
    password_hash = "scrypt$16384$8$1$<salt hex>$<hash hex>"
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from churnwatch._settings_base import _Model

__all__ = ["PASSWORD_HASH_PATTERN", "DashboardSettings"]

#: The stored form of a password: ``scrypt$n$r$p$salt$hash`` (hex salt and hash).
PASSWORD_HASH_PATTERN = r"^scrypt\$\d+\$\d+\$\d+\$[0-9a-f]{16,}\$[0-9a-f]{32,}$"


class DashboardSettings(_Model):
    """[dashboard] — who may open the dashboard, and whether personal data is shown."""

    auth: Literal["none", "password", "oidc"] = Field(
        default="none",
        description="Login: none; password (one team password, see password_hash); oidc "
        "(Streamlit's OpenID Connect login, configured in .streamlit/secrets.toml).",
    )
    password_hash: str | None = Field(
        default=None,
        pattern=PASSWORD_HASH_PATTERN,
        description="Salted scrypt hash of the password (auth = 'password'), as printed by "
        "'churnwatch dashboard --hash-password'; never the password itself.",
    )
    oidc_provider: str | None = Field(
        default=None,
        description="Provider name of [auth.<name>] in .streamlit/secrets.toml (auth = "
        "'oidc'); unset: the [auth] section itself.",
    )
    show_personal_data: bool = Field(
        default=False,
        description="Show account names and e-mails to everyone; false: masked "
        "(j***@e***.com, A*** B***) except for personal_data_viewers.",
    )
    personal_data_viewers: list[str] = Field(
        default_factory=list,
        description="E-mails of logged-in users (auth = 'oidc') who see names and e-mails.",
    )
    page_rows: int = Field(
        default=50, ge=10, le=1000, description="Accounts per page of the at-risk list."
    )

    @model_validator(mode="after")
    def _password_given(self) -> DashboardSettings:
        if self.auth == "password" and self.password_hash is None:
            raise ValueError(
                "auth = 'password' needs password_hash; print one with "
                "'churnwatch dashboard --hash-password'"
            )
        return self
