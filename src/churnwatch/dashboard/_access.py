"""Access to the dashboard: password hashes, and masking of personal data.

Passwords are kept as salted scrypt hashes (``scrypt$n$r$p$salt$hash``) and
compared in constant time. Names and e-mails are masked to their initials
unless the settings or the logged-in user allow them to be seen.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence

from churnwatch._dashboard_settings import PASSWORD_HASH_PATTERN, DashboardSettings
from churnwatch.errors import ConfigError

__all__ = [
    "PERSONAL_COLUMNS",
    "hash_password",
    "mask_email",
    "mask_name",
    "may_see_personal_data",
    "verify_password",
]

#: Columns of the read model holding personal data.
PERSONAL_COLUMNS = ("name", "email")

# scrypt cost: 16 MiB of memory and ~50 ms per check; a guess costs an attacker as much.
_N, _R, _P = 2**14, 8, 1


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """The stored form of ``password``: a salted scrypt hash.

    Parameters
    ----------
    password : str
        The password; at least 8 characters.
    salt : bytes, optional
        16 random bytes by default (a fixed salt only for a reproducible example).

    Raises
    ------
    ConfigError
        If the password is shorter than 8 characters.

    Examples
    --------
    >>> stored = hash_password("correct horse", salt=bytes(16))
    >>> stored.startswith("scrypt$16384$8$1$0000"), verify_password("correct horse", stored)
    (True, True)
    """
    if len(password) < 8:
        raise ConfigError("a dashboard password needs at least 8 characters")
    salt = secrets.token_bytes(16) if salt is None else salt
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches the ``stored`` hash (compared in constant time).

    Examples
    --------
    >>> stored = hash_password("correct horse", salt=bytes(16))
    >>> verify_password("wrong horse!", stored), verify_password("", stored)
    (False, False)
    """
    if not re.match(PASSWORD_HASH_PATTERN, stored):
        raise ConfigError("[dashboard] password_hash is not a scrypt hash; run --hash-password")
    _, n, r, p, salt, expected = stored.split("$")
    digest = hashlib.scrypt(
        password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=32
    )
    return hmac.compare_digest(digest.hex(), expected)


def _initial(word: str) -> str:
    return f"{word[0]}***" if word else ""


def mask_name(name: str | None) -> str | None:
    """A name reduced to the initial of each word.

    Examples
    --------
    >>> mask_name("Ada Lovelace"), mask_name("acme-corp GmbH"), mask_name(None)
    ('A*** L***', 'a*** G***', None)
    """
    if name is None:
        return None
    return " ".join(_initial(word) for word in name.split())


def mask_email(email: str | None) -> str | None:
    """An e-mail reduced to the initials of its user and domain, keeping the top level.

    Examples
    --------
    >>> mask_email("jane.doe@example.com"), mask_email("ops@mail.acme.co.uk")
    ('j***@e***.com', 'o***@m***.uk')
    >>> mask_email("not an address")
    'n***'
    """
    if email is None:
        return None
    user, at, domain = email.partition("@")
    if not at:
        return _initial(email)
    host, dot, top = domain.rpartition(".")
    if not dot:
        return f"{_initial(user)}@{_initial(domain)}"
    return f"{_initial(user)}@{_initial(host)}.{top}"


def may_see_personal_data(settings: DashboardSettings, user_email: str | None) -> bool:
    """Whether names and e-mails are shown to this user (None: nobody is logged in).

    Examples
    --------
    >>> settings = DashboardSettings(personal_data_viewers=["Lead@Example.com"])
    >>> may_see_personal_data(settings, "lead@example.com"), may_see_personal_data(settings, None)
    (True, False)
    """
    if settings.show_personal_data:
        return True
    allowed: Sequence[str] = [viewer.lower() for viewer in settings.personal_data_viewers]
    return user_email is not None and user_email.lower() in allowed
