"""API keys: random tokens handed out once, stored only as SHA-256 digests, with a scope.

A key is ``cw_`` followed by 32 random bytes in URL-safe base64: far too
much entropy to guess, so one unsalted SHA-256 is as strong as a slow
password hash would be, and it lets a request's key be found by its digest
in one indexed lookup. The stored digest is compared with the presented
one in constant time anyway. Scopes: ``read`` (every GET) and ``write``
(which includes read: posting events, answers, scoring).

Examples
--------
>>> from churnwatch.store import open_store
>>> store = open_store("sqlite://")
>>> key, created = create_api_key(store, name="dashboard", scope="read")
>>> key.startswith("cw_"), created.scope
(True, 'read')
>>> authenticate(store, key).name
'dashboard'
>>> authenticate(store, key + "x") is None
True
>>> revoke_api_key(store, created.id).revoked_at is not None
True
>>> authenticate(store, key) is None
True
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import secrets
from typing import Any, Literal

import sqlalchemy as sa

from churnwatch.errors import ChurnwatchError
from churnwatch.store import API_KEYS, Store

__all__ = [
    "SCOPES",
    "ApiKey",
    "Scope",
    "authenticate",
    "create_api_key",
    "list_api_keys",
    "revoke_api_key",
]

Scope = Literal["read", "write"]
#: The scopes a key can have; ``write`` includes ``read``.
SCOPES: tuple[Scope, ...] = ("read", "write")
_PREFIX = "cw_"


@dataclasses.dataclass(frozen=True)
class ApiKey:
    """A stored API key (without the key itself).

    Attributes
    ----------
    id : int
        Its number, for ``churnwatch apikey revoke``.
    name : str
        Who or what uses it.
    scope : {"read", "write"}
    prefix : str
        The key's first characters, to recognise it in a list.
    created_at, revoked_at : datetime
        When it was made and (once revoked) withdrawn.
    """

    id: int
    name: str
    scope: Scope
    prefix: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None

    def allows(self, scope: Scope) -> bool:
        """Whether this key may do what ``scope`` permits."""
        return self.revoked_at is None and (self.scope == "write" or scope == "read")

    @classmethod
    def _from_row(cls, row: Any) -> ApiKey:
        return cls(int(row.id), row.name, row.scope, row.prefix, row.created_at, row.revoked_at)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def create_api_key(
    store: Store, *, name: str, scope: str, now: dt.datetime | None = None
) -> tuple[str, ApiKey]:
    """Make a new key; return it (shown once, never stored) and its record.

    Raises
    ------
    ChurnwatchError
        For an unknown scope or an empty name.
    """
    if scope not in SCOPES:
        raise ChurnwatchError(f"API key scope {scope!r}: expected one of {', '.join(SCOPES)}")
    if not name.strip() or len(name) > 255:
        raise ChurnwatchError("an API key needs a name of 1 to 255 characters")
    key = _PREFIX + secrets.token_urlsafe(32)
    now = now or dt.datetime.now(dt.UTC)
    with store.transaction() as connection:
        connection.execute(
            API_KEYS.insert().values(
                name=name.strip(),
                scope=scope,
                key_hash=_digest(key),
                prefix=key[:10],
                created_at=now,
            )
        )
        row = connection.execute(
            sa.select(API_KEYS).where(API_KEYS.c.key_hash == _digest(key))
        ).one()
    return key, ApiKey._from_row(row)


def list_api_keys(store: Store, *, include_revoked: bool = True) -> list[ApiKey]:
    """Every key, oldest first."""
    query = sa.select(API_KEYS).order_by(API_KEYS.c.id)
    if not include_revoked:
        query = query.where(API_KEYS.c.revoked_at.is_(None))
    with store.engine.connect() as connection:
        return [ApiKey._from_row(row) for row in connection.execute(query)]


def revoke_api_key(store: Store, key_id: int, *, now: dt.datetime | None = None) -> ApiKey:
    """Withdraw a key (kept in the list, refused from now on).

    Raises
    ------
    ChurnwatchError
        When no key has this id.
    """
    now = now or dt.datetime.now(dt.UTC)
    with store.transaction() as connection:
        connection.execute(
            API_KEYS.update()
            .where(API_KEYS.c.id == key_id, API_KEYS.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        row = connection.execute(sa.select(API_KEYS).where(API_KEYS.c.id == key_id)).first()
    if row is None:
        raise ChurnwatchError(f"no API key with id {key_id}; 'churnwatch apikey list' shows them")
    return ApiKey._from_row(row)


def authenticate(store: Store, key: str) -> ApiKey | None:
    """The live key ``key`` is, or None (unknown or revoked)."""
    if not key.startswith(_PREFIX) or len(key) > 200:
        return None
    digest = _digest(key)
    with store.engine.connect() as connection:
        row = connection.execute(sa.select(API_KEYS).where(API_KEYS.c.key_hash == digest)).first()
    # The lookup found the row by its digest; the comparison in constant time
    # keeps a timing difference from telling anything even so.
    if row is None or not hmac.compare_digest(row.key_hash, digest) or row.revoked_at is not None:
        return None
    return ApiKey._from_row(row)
