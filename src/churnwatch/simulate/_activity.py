"""Product usage: the event log of logins, sessions, feature use and support calls.

Usage is an inhomogeneous Poisson process per live subscription period,
sampled by thinning: candidate events are drawn uniformly at the account's
peak rate, then kept with probability ``weekday factor x fade``. The fade is 1
until ``fade_days`` (30-45, per period) before a voluntary cancellation and
then falls linearly to ``HAZARD.fade_floor``, which is the disengagement a
churn model should notice. The hour of day follows a business-hours profile
in the account's region. Support calls come from the lifecycle, which needs
them earlier because their sentiment feeds the hazard.

The account rates are scaled per block so that the block averages
``events_per_account`` events per account over the period, support calls
included.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from churnwatch.simulate import _catalog as cat
from churnwatch.simulate._accounts import AccountBlock, UserBlock
from churnwatch.simulate._drivers import HAZARD
from churnwatch.simulate._lifecycle import CANCELED, Lifecycle
from churnwatch.simulate._sampling import Floats, Ints, group_offsets
from churnwatch.simulate._time import weekday

__all__ = ["EventBlock", "draw_events"]

_WEEKDAY = np.asarray(cat.WEEKDAY_ACTIVITY)
_WEEKDAY_MEAN = float(_WEEKDAY.mean())
_HOUR_CDF = np.cumsum(cat.LOCAL_HOUR_WEIGHTS) / np.sum(cat.LOCAL_HOUR_WEIGHTS)
_USAGE_CDF = np.cumsum(cat.USAGE_EVENT_SHARES) / np.sum(cat.USAGE_EVENT_SHARES)
_N_VARIANTS = np.array([len(v) for v in cat.EVENT_PROPERTIES], dtype=np.int64)
_PLATFORM_EVENT = np.isin(np.arange(len(cat.EVENT_TYPES)), cat.PLATFORM_EVENTS)


@dataclass(frozen=True)
class EventBlock:
    """Events of a block, sorted by account then time."""

    account: Ints  # block-local account row
    user: Ints  # row in the block's UserBlock
    time: Floats
    event_type: Ints  # index of EVENT_TYPES
    variant: Ints  # index into EVENT_PROPERTIES[event_type]
    duration_s: Floats  # NaN when the event has no duration
    value: Floats  # NaN when the event carries no value

    @property
    def size(self) -> int:
        """Number of events."""
        return int(self.account.size)


def draw_events(
    accounts: AccountBlock,
    users: UserBlock,
    life: Lifecycle,
    rng: np.random.Generator,
    horizon_days: float,
    start_day: int,
    events_per_account: float,
) -> EventBlock:
    """Draw the usage events of a block and merge in its support calls."""
    periods = life.periods
    begin = np.maximum(periods.start, 0.0)
    finish = np.minimum(periods.end, horizon_days)
    # Drawn for every period, used or not, so that streams do not depend on filters.
    fade_days = rng.uniform(*HAZARD.fade_days, periods.start.size)
    seg = np.flatnonzero(finish > begin)
    owner = periods.account[seg]
    length = finish[seg] - begin[seg]

    exposure = float(np.sum(accounts.activity[owner] * length))
    target = max(events_per_account * accounts.size - life.calls.account.size, 0.0)
    scale = target / exposure if exposure > 0 else 0.0
    # Thinning keeps a candidate with probability weekday x fade <= 1, so candidates
    # are drawn at the weekday-peak rate and the weekday mean comes back out.
    n_candidates = rng.poisson(scale * accounts.activity[owner] * length / _WEEKDAY_MEAN)
    which = np.repeat(seg, n_candidates)
    who = periods.account[which]
    u = rng.random((which.size, 7))
    at = begin[which] + u[:, 0] * (finish[which] - begin[which])

    cancels = periods.kind[which] == CANCELED
    to_end = periods.end[which] - at
    fade = np.where(
        cancels,
        np.clip(
            HAZARD.fade_floor + (1.0 - HAZARD.fade_floor) * to_end / fade_days[which],
            HAZARD.fade_floor,
            1.0,
        ),
        1.0,
    )
    keep = u[:, 1] < _WEEKDAY[weekday(at, start_day)] * fade
    # Move each kept event to a business hour of its account's region, on the same UTC day.
    local_hour = np.searchsorted(_HOUR_CDF, u[:, 2], side="right")
    offset = np.asarray(cat.REGION_UTC_OFFSET_H)[accounts.region[who]]
    at = np.floor(at) + (local_hour - offset + u[:, 3]) / 24.0
    keep &= (at >= begin[which]) & (at < finish[which])

    kept = np.flatnonzero(keep)
    who, at, fade, u = who[kept], at[kept], fade[kept], u[kept]
    event_type = np.searchsorted(_USAGE_CDF, u[:, 4], side="right").astype(np.int64)
    variant = np.where(
        _PLATFORM_EVENT[event_type],
        accounts.platform[who],
        np.floor(u[:, 5] * _N_VARIANTS[event_type]).astype(np.int64),
    )
    # Sessions also shorten as an account disengages.
    session_s = np.round(np.exp(np.log(480.0) + 0.9 * rng.standard_normal(kept.size)), 1)
    duration = np.where(event_type == cat.SESSION, session_s * (0.4 + 0.6 * fade), np.nan)

    calls = life.calls
    account = np.concatenate((who, calls.account))
    time = np.concatenate((at, calls.time))
    order = np.lexsort((time, account))
    account, time = account[order], time[order]
    n_calls = calls.account.size
    event_type = np.concatenate((event_type, np.full(n_calls, cat.SUPPORT_CALL)))[order]
    return EventBlock(
        account=account,
        user=_pick_users(users, account, time, rng.random(account.size), accounts.size),
        time=time,
        event_type=event_type,
        variant=np.concatenate((variant, calls.sentiment))[order],
        duration_s=np.concatenate((duration, calls.duration_s))[order],
        value=np.concatenate((np.full(who.size, np.nan), calls.score))[order],
    )


def _pick_users(users: UserBlock, account: Ints, time: Floats, u: Floats, n_accounts: int) -> Ints:
    """Pick, for each event, one of its account's users who had signed up by then.

    Early users (the admin, the champions) are favoured: squaring the uniform
    skews the pick towards the first users of the account.
    """
    # One sorted key of (account, time) for users and events; events search the users.
    span = float(max(np.max(time, initial=0.0), np.max(users.created, initial=0.0))) + 1e4
    base = 1e4
    user_key = users.account * span + (users.created + base)
    event_key = account * span + (time + base)
    existing = np.searchsorted(user_key, event_key, side="right")
    first = group_offsets(users.account, n_accounts)[account]
    n_existing = np.maximum(existing - first, 1)
    picked: Ints = first + np.minimum(np.floor(u * u * n_existing).astype(np.int64), n_existing - 1)
    return picked
