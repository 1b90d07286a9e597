"""Simulated time: float days since the period's start, and calendar arithmetic on it.

Inside the simulator an instant is a float number of days since ``start``
00:00 UTC (negative for accounts that existed before the period). That keeps
hazards, windows and thinning in plain float arithmetic; only at the Parquet
boundary are instants turned into microseconds, and dates into ``date32``.
Billing needs real calendar months (a subscription started on Jan 31 renews
on Feb 29 and Mar 31), so :func:`add_months` goes through ``datetime64``.
"""

from __future__ import annotations

from datetime import date

import numpy as np

from churnwatch.simulate._sampling import Floats, Ints

__all__ = ["MICROS_PER_DAY", "add_months", "epoch_day", "to_micros", "weekday"]

MICROS_PER_DAY = 86_400_000_000
_EPOCH = date(1970, 1, 1)


def epoch_day(day: date) -> int:
    """Days from 1970-01-01 to ``day``.

    Examples
    --------
    >>> epoch_day(date(1970, 1, 11))
    10
    """
    return (day - _EPOCH).days


def add_months(t: Floats, months: Ints, start_day: int) -> Floats:
    """Move instants ``t`` by whole calendar months, keeping the day of month.

    A day of month that the target month lacks becomes its last day, as
    billing systems do. The time of day is kept.

    Examples
    --------
    >>> start = epoch_day(date(2024, 1, 1))
    >>> add_months(np.array([30.5]), np.array([1]), start).tolist()  # Jan 31 -> Feb 29
    [59.5]
    """
    whole = np.floor(t)
    day = (whole.astype(np.int64) + start_day).astype("datetime64[D]")
    month = day.astype("datetime64[M]")
    day_of_month = (day - month.astype("datetime64[D]")).astype(np.int64)
    target = month + months.astype("timedelta64[M]")
    first = target.astype("datetime64[D]")
    length = ((target + np.timedelta64(1, "M")).astype("datetime64[D]") - first).astype(np.int64)
    moved = first + np.minimum(day_of_month, length - 1).astype("timedelta64[D]")
    result: Floats = (moved.astype(np.int64) - start_day).astype(np.float64) + (t - whole)
    return result


def to_micros(t: Floats, start_day: int) -> Ints:
    """Instants as microseconds since the epoch (what ``timestamp[us]`` stores).

    Rounding is monotonic, so an event at or after its account's creation in
    days stays at or after it in microseconds.
    """
    micros: Ints = start_day * MICROS_PER_DAY + np.round(t * MICROS_PER_DAY).astype(np.int64)
    return micros


def weekday(t: Floats, start_day: int) -> Ints:
    """Day of week of instants ``t``, Monday = 0 (1970-01-01 was a Thursday)."""
    days: Ints = (np.floor(t).astype(np.int64) + start_day + 3) % 7
    return days
