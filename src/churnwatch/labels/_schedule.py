"""When labels are taken: :class:`CutoffSchedule`."""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from churnwatch.errors import LabelError

__all__ = ["CutoffSchedule", "to_utc"]


def to_utc(value: str | dt.date | dt.datetime, what: str = "time") -> dt.datetime:
    """Read a date, datetime or ISO text as a UTC instant.

    Dates and zone-less times are taken as UTC; a date is its midnight.

    Examples
    --------
    >>> to_utc("2020-06-01")
    datetime.datetime(2020, 6, 1, 0, 0, tzinfo=datetime.timezone.utc)
    """
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            raise LabelError(f"{what} {value!r} is not an ISO date or time") from None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    raise LabelError(f"{what} must be a date, datetime or ISO text, got {value!r}")


def _add_months(start: dt.datetime, months: int) -> dt.datetime:
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    # The 31st of a shorter month is its last day.
    day = min(start.day, calendar.monthrange(year, month)[1])
    return start.replace(year=year, month=month, day=day)


@dataclass(frozen=True)
class CutoffSchedule:
    """The cutoffs at which labels (and features) are taken.

    Either fixed instants shared by every account (``dates``), or one cutoff
    per account a fixed number of days after its signup
    (``days_after_signup``). Build one with :meth:`explicit`, :meth:`every`
    or :meth:`after_signup`.

    Parameters
    ----------
    dates : tuple of datetime
        Fixed cutoffs, UTC, ascending.
    days_after_signup : int, optional
        Each account's cutoff is its ``created_at`` plus this many days.
    description : str
        How the schedule was made, in words.

    Examples
    --------
    >>> schedule = CutoffSchedule.every("2020-02-01", "2020-05-01", months=1)
    >>> [c.date().isoformat() for c in schedule.dates]
    ['2020-02-01', '2020-03-01', '2020-04-01']
    >>> CutoffSchedule.after_signup(days=7).description
    'day 7 after each account signed up'
    """

    dates: tuple[dt.datetime, ...] = ()
    days_after_signup: int | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if (self.days_after_signup is None) == (not self.dates):
            raise LabelError(
                "a cutoff schedule needs either dates or days_after_signup (exactly one)"
            )
        if self.days_after_signup is not None and self.days_after_signup < 1:
            # At signup itself the account has no history, and does not exist
            # before the cutoff (created_at < cutoff): no example could come of it.
            raise LabelError(f"days_after_signup must be >= 1, got {self.days_after_signup}")
        dates = tuple(sorted({to_utc(d, "cutoff") for d in self.dates}))
        object.__setattr__(self, "dates", dates)
        if not self.description:
            object.__setattr__(self, "description", self._default_description())

    def _default_description(self) -> str:
        if self.days_after_signup is not None:
            return f"day {self.days_after_signup} after each account signed up"
        shown = ", ".join(d.isoformat() for d in self.dates[:5])
        more = f" and {len(self.dates) - 5} more" if len(self.dates) > 5 else ""
        return f"{len(self.dates)} cutoff(s): {shown}{more}"

    @property
    def relative(self) -> bool:
        """Whether cutoffs are relative to each account's signup."""
        return self.days_after_signup is not None

    @classmethod
    def explicit(cls, dates: Iterable[str | dt.date | dt.datetime]) -> CutoffSchedule:
        """Cutoffs at the given instants (dates are midnight UTC).

        Examples
        --------
        >>> len(CutoffSchedule.explicit(["2020-03-01", "2020-04-01"]).dates)
        2
        """
        return cls(dates=tuple(to_utc(d, "cutoff") for d in dates))

    @classmethod
    def every(
        cls,
        start: str | dt.date | dt.datetime,
        end: str | dt.date | dt.datetime,
        *,
        days: int | None = None,
        weeks: int | None = None,
        months: int | None = None,
    ) -> CutoffSchedule:
        """Cutoffs from ``start`` every N days, weeks or months, before ``end``.

        The range is half-open: ``end`` itself is not a cutoff.

        Raises
        ------
        LabelError
            Unless exactly one step >= 1 is given and ``start < end``.
        """
        steps = {"days": days, "weeks": weeks, "months": months}
        given = {unit: n for unit, n in steps.items() if n is not None}
        if len(given) != 1 or next(iter(given.values())) < 1:
            raise LabelError("give exactly one of days, weeks or months, as a number >= 1")
        ((unit, count),) = given.items()
        first, last = to_utc(start, "start"), to_utc(end, "end")
        if first >= last:
            raise LabelError(f"the schedule's start {first} must come before its end {last}")
        cutoffs: list[dt.datetime] = []
        k = 0
        while True:
            if unit == "months":
                cutoff = _add_months(first, k * count)
            else:
                cutoff = first + dt.timedelta(days=k * count * (7 if unit == "weeks" else 1))
            if cutoff >= last:
                break
            cutoffs.append(cutoff)
            k += 1
        return cls(
            dates=tuple(cutoffs),
            description=f"every {count} {unit} from {first.isoformat()} before {last.isoformat()}"
            f" ({len(cutoffs)} cutoffs)",
        )

    @classmethod
    def after_signup(cls, days: int) -> CutoffSchedule:
        """One cutoff per account, ``days`` after its ``created_at`` (early-life churn)."""
        return cls(days_after_signup=days)
