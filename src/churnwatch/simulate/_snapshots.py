"""The daily adoption report of managed accounts: which products are switched on.

For every day of the last ``snapshot_days`` days, each managed account (one
with a CSM) that exists by then has one row per product it has adopted. The
core product, ``payments``, is on while the account is subscribed and goes
off a few days before a cancellation (the merchant stops taking payments
before formally leaving) or at a lapse; it comes back on when the account
returns, a *win*. Other products are adopted some time after signup and are
now and then dropped without the account churning. Some accounts also
flicker off for a few days and come back by themselves, and some rows are
missing altogether (a day the export skipped): both are what a tracker of
these flags must cope with.

A snapshot dated ``d`` shows the state at ``d`` 00:00 UTC, so the last one,
dated on the observation end, still describes the observed period.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from churnwatch.simulate import _catalog as cat
from churnwatch.simulate._accounts import AccountBlock
from churnwatch.simulate._lifecycle import CANCELED, Periods
from churnwatch.simulate._sampling import Bools, Floats, Ints

__all__ = ["SnapshotBlock", "draw_snapshots"]

#: A cancelling merchant switches payments off up to this many days before the end.
_LEAD_DAYS = 10.0
_FLICKER_SHARE = 0.04
_FLICKER_DAYS = (2, 10)
_PRODUCT_DROP_SHARE = 0.10
_GAP_SHARE = 0.015
_GAP_DAYS = (1, 3)
_ROW_LOSS = 0.001


@dataclass(frozen=True)
class SnapshotBlock:
    """Snapshot rows of a block, sorted by day, account and product."""

    account: Ints  # block-local account row
    day: Floats  # days since the period start of the snapshot date
    product: Ints  # index of PRODUCTS
    is_enabled: Bools
    revenue: Floats  # NaN when the product reports none
    gmv: Floats  # NaN when the product reports none

    @property
    def size(self) -> int:
        """Number of rows."""
        return int(self.account.size)


def _covered(rows: Ints, low: Floats, high: Floats, days: Floats, n_rows: int) -> Bools:
    """``(n_rows, len(days))`` mask of days inside any interval ``[low, high)`` of each row."""
    width = days.size + 1
    first = np.searchsorted(days, low, side="left")
    stop = np.searchsorted(days, high, side="left")
    size = n_rows * width
    # A difference array per row: +1 where an interval opens, -1 where it closes.
    diff = np.bincount(rows * width + first, minlength=size) - np.bincount(
        rows * width + stop, minlength=size
    )
    inside: Bools = np.cumsum(diff.reshape(n_rows, width), axis=1)[:, :-1] > 0
    return inside


def draw_snapshots(
    accounts: AccountBlock,
    periods: Periods,
    rng: np.random.Generator,
    days: Floats,
) -> SnapshotBlock:
    """Draw the adoption report rows of a block's managed accounts on ``days``."""
    managed = np.flatnonzero(accounts.csm >= 0)
    m, n_days = managed.size, days.size
    row_of = np.full(accounts.size, -1, dtype=np.int64)
    row_of[managed] = np.arange(m)
    u = rng.random((m, 12))
    lead = rng.random(periods.start.size) * _LEAD_DAYS

    mine = np.flatnonzero(row_of[periods.account] >= 0)
    rows = row_of[periods.account[mine]]
    start, end = periods.start[mine], periods.end[mine]
    subscribed = _covered(rows, start, end, days, m)
    off_early = np.where(periods.kind[mine] == CANCELED, lead[mine], 0.0)
    core_on = _covered(rows, start, end - off_early, days, m)
    # A few accounts switch off for some days and come back by themselves.
    flicker = np.flatnonzero(u[:, 0] < _FLICKER_SHARE)
    flicker_from = days[0] + np.floor(u[flicker, 1] * n_days)
    flicker_to = (
        flicker_from
        + _FLICKER_DAYS[0]
        + np.floor(u[flicker, 2] * (_FLICKER_DAYS[1] - _FLICKER_DAYS[0] + 1))
    )
    core_on &= ~_covered(flicker, flicker_from, flicker_to, days, m)

    created = accounts.created[managed]
    exists = days[None, :] >= created[:, None]
    gap_from = days[0] + np.floor(u[:, 3] * n_days)
    gap_to = gap_from + _GAP_DAYS[0] + np.floor(u[:, 4] * (_GAP_DAYS[1] - _GAP_DAYS[0] + 1))
    has_gap = u[:, 5] < _GAP_SHARE
    in_gap = (
        has_gap[:, None] & (days[None, :] >= gap_from[:, None]) & (days[None, :] < gap_to[:, None])
    )
    reported = exists & ~in_gap

    mrr = np.round(accounts.list_mrr[managed] * (1.0 - accounts.discount[managed]), 2)
    parts: list[tuple[Ints, Ints, Ints, Bools, Floats, Floats]] = []
    for product, share in enumerate(cat.PRODUCT_SHARES):
        if product == 0:
            listed, enabled = reported, core_on
        else:
            holds = u[:, 5 + 2 * product] < share
            adopted = created + rng.exponential(cat.PRODUCT_ADOPTION_DAYS[product], m)
            dropped = np.where(
                u[:, 6 + 2 * product] < _PRODUCT_DROP_SHARE,
                days[0] + rng.random(m) * n_days,
                np.inf,
            )
            since = days[None, :] >= adopted[:, None]
            listed = reported & holds[:, None] & since
            enabled = core_on & (days[None, :] < dropped[:, None])
        row, day = np.nonzero(listed)
        on = enabled[row, day]
        if product == 0:
            revenue = np.where(subscribed[row, day], mrr[row], 0.0)
            daily_gmv = accounts.gmv[managed][row] / 30.0
            gmv = np.where(on, np.round(daily_gmv * rng.lognormal(0.0, 0.3, row.size), 2), 0.0)
        else:
            revenue = gmv = np.full(row.size, np.nan)
        parts.append((row, day, np.full(row.size, product, dtype=np.int64), on, revenue, gmv))

    row = np.concatenate([p[0] for p in parts])
    day = np.concatenate([p[1] for p in parts])
    product_code = np.concatenate([p[2] for p in parts])
    lost = rng.random(row.size) < _ROW_LOSS
    order = np.lexsort((product_code, row, day))
    order = order[~lost[order]]
    return SnapshotBlock(
        account=managed[row[order]],
        day=days[day[order]],
        product=product_code[order],
        is_enabled=np.concatenate([p[3] for p in parts])[order],
        revenue=np.concatenate([p[4] for p in parts])[order],
        gmv=np.concatenate([p[5] for p in parts])[order],
    )
