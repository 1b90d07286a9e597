"""An independent, plain-Python model of the tracker's rules, for the tests to compare with.

Written row by row with dictionaries, from the rules of issue 6, sharing no
code with :mod:`churnwatch.tracker`: the parent table holds every (account,
product) ever seen; enabled -> disabled opens an episode dated that day,
disabled -> enabled moves it to the wins; absent accounts are flagged with
the first day of their absence; the default cadence queues ``first`` on days
0-1 after churn, ``second`` on days 2-3 and ``final`` after day 3, each once,
never late.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import sqlalchemy as sa

from churnwatch.store import CHURN_LEDGER, OUTBOX, TRACKER_ACCOUNTS, WIN_LEDGER, Store

Key = tuple[str, str]
WINDOWS = (("first", 0, 1), ("second", 2, 3), ("final", 4, 10**9))


@dataclass
class Account:
    enabled: bool
    state: str
    first_seen: dt.date
    last_seen: dt.date
    missing_since: dt.date | None = None


@dataclass
class Reference:
    accounts: dict[Key, Account] = field(default_factory=dict)
    churn: dict[Key, tuple[str, dt.date]] = field(default_factory=dict)
    wins: dict[Key, tuple[str, dt.date, dt.date]] = field(default_factory=dict)
    queued: set[tuple[str, str]] = field(default_factory=set)
    last: dt.date | None = None
    tracked: set[dt.date] = field(default_factory=set)

    def track(self, day: dt.date, snapshot: dict[Key, bool]) -> str:
        """Apply a day; say whether it was 'applied', 'repeated' or 'refused'.

        A date tracked before is a no-op; a new date before the last one is refused.
        """
        if day in self.tracked:
            return "repeated"
        if self.last is not None and day < self.last:
            return "refused"
        self.last = day
        self.tracked.add(day)
        for key, enabled in snapshot.items():
            account = self.accounts.get(key)
            if account is None:
                state = "active" if enabled else "never_enabled"
                self.accounts[key] = Account(enabled, state, day, day)
                continue
            account.missing_since = None
            account.last_seen = day
            if account.state == "active" and not enabled:
                account.state = "churned"
                self.churn[key] = (f"{key[0]}|{key[1]}|{day.isoformat()}|snapshot", day)
                self.wins.pop(key, None)
            elif account.state == "churned" and enabled:
                episode, churned = self.churn.pop(key)
                self.wins[key] = (episode, churned, day)
                account.state = "active"
            elif account.state == "never_enabled" and enabled:
                account.state = "active"
            account.enabled = enabled
        for key, account in self.accounts.items():
            if key not in snapshot and account.missing_since is None:
                account.missing_since = day
        for episode, churned in self.churn.values():
            days = (day - churned).days
            for step, low, high in WINDOWS:
                if low <= days <= high:
                    self.queued.add((episode, step))
        return "applied"


def store_view(store: Store) -> Reference:
    """Read the store into the reference's shape, to compare with it."""
    found = Reference()
    with store.engine.connect() as connection:
        for row in connection.execute(sa.select(TRACKER_ACCOUNTS)):
            found.accounts[(row.account_id, row.product)] = Account(
                bool(row.is_enabled), row.state, row.first_seen, row.last_seen, row.missing_since
            )
        for row in connection.execute(sa.select(CHURN_LEDGER)):
            assert row.source == "snapshot"
            found.churn[(row.account_id, row.product)] = (row.episode_id, row.churned_at.date())
        for row in connection.execute(sa.select(WIN_LEDGER)):
            assert row.days_to_recover == (row.recovered_at - row.churned_at).days
            found.wins[(row.account_id, row.product)] = (
                row.episode_id,
                row.churned_at.date(),
                row.recovered_at.date(),
            )
        for row in connection.execute(sa.select(OUTBOX.c.episode_id, OUTBOX.c.step)):
            found.queued.add((row.episode_id, row.step))
    return found


def assert_matches(store: Store, expected: Reference) -> None:
    """The store's state equals the reference's, table by table, and the invariants hold."""
    found = store_view(store)
    assert found.accounts == expected.accounts
    assert found.churn == expected.churn
    assert found.wins == expected.wins
    assert found.queued == expected.queued
    # An account is in at most one of the ledgers, and churned iff in the churn ledger.
    assert not set(found.churn) & set(found.wins)
    churned = {k for k, a in found.accounts.items() if a.state == "churned"}
    assert churned == set(found.churn)
