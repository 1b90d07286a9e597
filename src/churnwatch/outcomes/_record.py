"""CSM answers: what a CSM says happened to an at-risk episode.

An answer names an episode (or an account whose open episode is meant), an
outcome — ``won``, ``lost`` or ``not_useful`` — optional notes, and "was
this useful?". It comes from the Slack buttons, the REST API, the CLI or the
dashboard, and lands in the store's ``outcomes`` table.

An answer stops the episode's follow-up cadence: the tracker, on its next
day, closes every open episode that has an answer (``closed_reason``
``outcome:<latest outcome>``, a ``closed_by_outcome`` transition) and queues
nothing more for it. Writing the answer is all this module does; closing is
left to the tracker so that the history records the day it took effect.

A ``won`` answer is a *claim*: it becomes a true win only when the snapshots
show the account re-adopting (see :mod:`churnwatch.outcomes._episodes`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from churnwatch.errors import OutcomeError, UnknownEpisodeError
from churnwatch.store import CHURN_LEDGER, OUTCOMES, TRANSITIONS, WIN_LEDGER, Store

__all__ = ["OUTCOME_KINDS", "OUTCOME_SOURCES", "Outcome", "list_outcomes", "record_outcome"]

#: The answers a CSM can give.
OUTCOME_KINDS = ("won", "lost", "not_useful")
#: Where an answer can come from.
OUTCOME_SOURCES = ("slack", "api", "cli", "dashboard")
_NOTES_CHARS = 10_000


@dataclass(frozen=True)
class Outcome:
    """One recorded CSM answer (a row of ``outcomes``).

    Attributes
    ----------
    id : int
        The row id.
    episode_id, account_id, product : str
        The episode answered and its account.
    csm_id : str or None
        Who answered (the episode's CSM when not given).
    outcome : str
        ``won``, ``lost`` or ``not_useful``.
    useful : bool or None
        The answer to "was this useful?", if given.
    notes : str or None
        Free text.
    source : str
        ``slack``, ``api``, ``cli`` or ``dashboard``.
    recorded_at : datetime
        When it was recorded (UTC).
    """

    id: int
    episode_id: str
    account_id: str
    product: str
    csm_id: str | None
    outcome: str
    useful: bool | None
    notes: str | None
    source: str
    recorded_at: dt.datetime

    def as_json(self) -> dict[str, Any]:
        """The answer as JSON-ready values."""
        return {
            "id": self.id,
            "episode_id": self.episode_id,
            "account_id": self.account_id,
            "product": self.product,
            "csm_id": self.csm_id,
            "outcome": self.outcome,
            "useful": self.useful,
            "notes": self.notes,
            "source": self.source,
            "recorded_at": self.recorded_at.isoformat(),
        }


def _episode(connection: sa.Connection, episode_id: str) -> tuple[str, str, str | None] | None:
    """The account, product and CSM of an episode, wherever it now is."""
    for table in (CHURN_LEDGER, WIN_LEDGER):
        found = connection.execute(
            sa.select(table.c.account_id, table.c.product, table.c.csm_id).where(
                table.c.episode_id == episode_id
            )
        ).first()
        if found is not None:
            return str(found.account_id), str(found.product), found.csm_id
    # An episode whose win row went to history lives on in the transitions.
    found = connection.execute(
        sa.select(TRANSITIONS.c.account_id, TRANSITIONS.c.product, TRANSITIONS.c.csm_id)
        .where(TRANSITIONS.c.episode_id == episode_id)
        .order_by(TRANSITIONS.c.id)
        .limit(1)
    ).first()
    if found is None:
        return None
    return str(found.account_id), str(found.product), found.csm_id


def _open_episode(connection: sa.Connection, account_id: str, product: str | None) -> str:
    query = sa.select(CHURN_LEDGER.c.episode_id, CHURN_LEDGER.c.product).where(
        CHURN_LEDGER.c.account_id == account_id
    )
    if product is not None:
        query = query.where(CHURN_LEDGER.c.product == product)
    found = connection.execute(query.order_by(CHURN_LEDGER.c.product)).all()
    if not found:
        where = f"account {account_id!r}" + (f" (product {product!r})" if product else "")
        raise UnknownEpisodeError(
            f"{where} has no open at-risk episode; give the episode id of the notification "
            "answered (--episode), or check the account id"
        )
    if len(found) > 1:
        products = ", ".join(repr(r.product) for r in found)
        raise OutcomeError(
            f"account {account_id!r} has {len(found)} open episodes (products {products}); "
            "say which product (--product) or give the episode id (--episode)"
        )
    return str(found[0].episode_id)


def _check(outcome: str, source: str, notes: str | None) -> None:
    if outcome not in OUTCOME_KINDS:
        raise OutcomeError(
            f"unknown outcome {outcome!r}; expected one of {', '.join(OUTCOME_KINDS)}"
        )
    if source not in OUTCOME_SOURCES:
        raise OutcomeError(
            f"unknown answer source {source!r}; expected one of {', '.join(OUTCOME_SOURCES)}"
        )
    if notes is not None and len(notes) > _NOTES_CHARS:
        raise OutcomeError(
            f"the notes are {len(notes):,} characters long; keep them under {_NOTES_CHARS:,}"
        )


def _as_outcome(row: Any) -> Outcome:
    return Outcome(
        id=int(row.id),
        episode_id=str(row.episode_id),
        account_id=str(row.account_id),
        product=str(row.product),
        csm_id=row.csm_id,
        outcome=str(row.outcome),
        useful=None if row.useful is None else bool(row.useful),
        notes=row.notes,
        source=str(row.source),
        recorded_at=row.recorded_at,
    )


def record_outcome(
    store: Store,
    outcome: str,
    *,
    episode_id: str | None = None,
    account_id: str | None = None,
    product: str | None = None,
    csm_id: str | None = None,
    useful: bool | None = None,
    notes: str | None = None,
    source: str = "cli",
    now: dt.datetime | None = None,
) -> Outcome:
    """Record a CSM's answer about an at-risk episode.

    Parameters
    ----------
    store : Store
        The operational store.
    outcome : str
        ``won``, ``lost`` or ``not_useful``.
    episode_id : str, optional
        The episode answered (the id carried by the notification).
    account_id, product : str, optional
        Instead of ``episode_id``: the account whose open episode is meant
        (``product`` when the account has several).
    csm_id : str, optional
        Who answers; the episode's CSM if omitted.
    useful : bool, optional
        "Was this useful?"; a ``not_useful`` outcome implies False.
    notes : str, optional
        Free text.
    source : str
        ``slack``, ``api``, ``cli`` or ``dashboard``.
    now : datetime, optional
        When the answer was given (timezone-aware); the clock's if omitted.

    Returns
    -------
    Outcome
        The stored answer.

    Raises
    ------
    OutcomeError
        If the outcome or source is unknown, or the episode cannot be found.

    Examples
    --------
    >>> import datetime as dt
    >>> import pyarrow as pa
    >>> from churnwatch.store import open_store
    >>> from churnwatch.tracker import track_snapshot
    >>> store = open_store("sqlite://")
    >>> _ = track_snapshot(store, pa.table({"account_id": ["a"], "is_enabled": [True]}),
    ...                    date=dt.date(2024, 3, 1))
    >>> _ = track_snapshot(store, pa.table({"account_id": ["a"], "is_enabled": [False]}),
    ...                    date=dt.date(2024, 3, 2))
    >>> answer = record_outcome(store, "won", account_id="a", notes="called them")
    >>> answer.episode_id, answer.outcome, answer.source
    ('a||2024-03-02|snapshot', 'won', 'cli')
    """
    _check(outcome, source, notes)
    if now is not None and now.tzinfo is None:
        raise OutcomeError(f"the answer's time {now} has no time zone; give one (UTC)")
    if outcome == "not_useful" and useful is None:
        useful = False
    at = now or dt.datetime.now(dt.UTC)
    with store.transaction() as connection:
        if episode_id is None:
            if account_id is None:
                raise OutcomeError("say which episode is answered: an episode id or an account id")
            episode_id = _open_episode(connection, account_id, product)
        found = _episode(connection, episode_id)
        if found is None:
            raise UnknownEpisodeError(
                f"no episode {episode_id!r} in the operational store; the id is the one the "
                "notification carries (account|product|date|source)"
            )
        account, found_product, episode_csm = found
        values = {
            "episode_id": episode_id,
            "account_id": account,
            "product": found_product,
            "csm_id": csm_id or episode_csm,
            "outcome": outcome,
            "useful": useful,
            "notes": notes,
            "source": source,
            "recorded_at": at,
        }
        key = (
            (OUTCOMES.c.episode_id == episode_id)
            & (OUTCOMES.c.source == source)
            & (OUTCOMES.c.recorded_at == at)
        )
        # The same answer delivered twice at the same instant (a retried
        # request with its own timestamp) is stored once.
        existing = connection.execute(sa.select(OUTCOMES).where(key)).first()
        if existing is None:
            connection.execute(OUTCOMES.insert().values(**values))
        row = connection.execute(sa.select(OUTCOMES).where(key)).one()
    return _as_outcome(row)


def list_outcomes(
    store: Store,
    *,
    episode_id: str | None = None,
    account_id: str | None = None,
    limit: int | None = None,
) -> list[Outcome]:
    """The recorded answers, newest first, optionally of one episode or account.

    Examples
    --------
    >>> from churnwatch.store import open_store
    >>> list_outcomes(open_store("sqlite://"))
    []
    """
    query = sa.select(OUTCOMES).order_by(OUTCOMES.c.recorded_at.desc(), OUTCOMES.c.id.desc())
    if episode_id is not None:
        query = query.where(OUTCOMES.c.episode_id == episode_id)
    if account_id is not None:
        query = query.where(OUTCOMES.c.account_id == account_id)
    if limit is not None:
        query = query.limit(limit)
    with store.engine.connect() as connection:
        return [_as_outcome(row) for row in connection.execute(query)]
