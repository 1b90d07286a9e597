"""Reasons in plain words: a feature's value against the typical one, by kind of feature."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from churnwatch.features._spec import FeatureSpec

# --- numbers in words ------------------------------------------------------------------------


def _missing(value: object) -> bool:
    """True for None, NaN, NaT and pd.NA (and never an error for other scalars)."""
    if value is None:
        return True
    try:
        return bool(pd.isna(value))  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return False


def _as_float(value: object) -> float | None:
    """The value as a float, or None when missing or not a number (text, dates)."""
    if type(value) is float:  # the common case, kept cheap: top_reasons calls this a lot
        return value if math.isfinite(value) else None
    if type(value) is int:
        return float(value)
    if _missing(value) or isinstance(value, str):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _num(value: float) -> str:
    """A number as a person writes it: ``1,234``, ``123.5``, ``70.35``, ``0.034``.

    Whole numbers show no decimals whatever their type (a count read from a
    float column with NaN is still a count); others keep three or four
    significant digits, which is all a reader takes in.
    """
    if value == round(value) and abs(value) < 1e15:
        text = f"{round(value):,}"
    elif abs(value) >= 1000:
        # Half up, as people round (format() rounds 1234.5 to the even 1,234).
        text = f"{math.floor(value + 0.5):,}"
    elif abs(value) >= 100:
        text = f"{value:.1f}"
    elif abs(value) >= 1:
        text = f"{value:.2f}"
    else:
        decimals = min(6, 1 - math.floor(math.log10(abs(value))))
        text = f"{value:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _pct(share: float) -> str:
    """A share (0.125) as a percentage ("12.5%"); whole above 10% and near whole numbers."""
    percent = share * 100
    if abs(percent) >= 10 or abs(percent - round(percent)) < 0.05:
        return f"{math.floor(percent + 0.5):,}%"  # half up: 12.5% reads 13%, as people round
    return f"{_num(round(percent, 1))}%"


def _plural(count: float, singular: str, plural: str | None = None) -> str:
    """``"1 failed payment"``, ``"2 failed payments"``, ``"1.5 days"``."""
    word = singular if _num(count) == "1" else (plural or singular + "s")
    return f"{_num(count)} {word}"


def _days(days: float) -> str:
    """Whole days ("45 days", "1 day"); under one day reads "less than a day"."""
    if days < 1:
        return "less than a day"
    return _plural(float(math.floor(days + 0.5)), "day")


def _duration(seconds: float) -> str:
    """Seconds in the unit a person would pick: 45 seconds, 12 minutes, 2.5 hours, 3 days."""
    for unit, size, limit in (
        ("second", 1, 90),
        ("minute", 60, 90 * 60),
        ("hour", 3600, 48 * 3600),
    ):
        if abs(seconds) < limit:
            return _plural(round(seconds / size, 1), unit)
    return _plural(round(seconds / 86_400, 1), "day")


def _typical(text: str | None) -> str:
    return f" (typical: {text})" if text else ""


def _quote(value: object) -> str:
    return f"'{value}'"


# --- the events a spec counts ----------------------------------------------------------------

#: Event types whose plain-English plural is not the name plus "s".
_EVENT_NOUNS = {
    "support_call": ("support call", "support calls"),
    "support_ticket": ("support ticket", "support tickets"),
}


@dataclass(frozen=True)
class _Events:
    """How to name the events a spec reads.

    Three styles: ``any`` (no event type: "activity", "events"), ``noun`` (a
    one-word type such as ``session``: "sessions") and ``quoted`` (any other
    type, named as the customer's data spells it: "used 'report_viewed'").
    Quoting rather than guessing English for ``report_viewed`` lets the reader
    find the event in their own tracking plan.
    """

    style: Literal["any", "noun", "quoted"]
    singular: str
    plural: str
    where: str  # the property filter, " with feature 'export'", or ""

    @classmethod
    def of(cls, spec: FeatureSpec) -> _Events:
        where = ""
        if spec.property_name is not None:
            where = f" with {spec.property_name} {_quote(spec.property_value)}"
        kind = spec.event_type
        if kind is None:
            return cls("any", "event", "events", where)
        if kind in _EVENT_NOUNS:
            return cls("noun", *_EVENT_NOUNS[kind], where)
        if kind.isalpha() and kind.islower():
            plural = kind + "es" if kind.endswith(("s", "x", "ch", "sh")) else kind + "s"
            return cls("noun", kind, plural, where)
        return cls("quoted", _quote(kind), _quote(kind), where)

    def count(self, n: float, when: str) -> str:
        """``"3 sessions in the last 30 days"``, ``"used 'x' 0 times so far"``."""
        if self.style == "quoted":
            return f"used {self.singular}{self.where} {_plural(n, 'time')} {when}"
        if n == 0:
            return f"no {'activity' if self.style == 'any' else self.plural}{self.where} {when}"
        return f"{_plural(n, self.singular, self.plural)}{self.where} {when}"

    def subject(self) -> str:
        """What a trend is about: "activity", "sessions", "use of 'x'"."""
        if self.style == "any":
            return f"activity{self.where}"
        prefix = "use of " if self.style == "quoted" else ""
        return f"{prefix}{self.plural}{self.where}"

    def done(self) -> str:
        """The doing, before "on 2 of ...": "active", "sessions", "used 'x'"."""
        if self.style == "any":
            return f"active{self.where}"
        return f"used {self.singular}{self.where}" if self.style == "quoted" else self.plural

    def one(self) -> str:
        """A single event, after "per" or "a single": "event", "session", "'x' event"."""
        return f"{self.singular} event" if self.style == "quoted" else self.singular


def _when(window_days: int | None) -> str:
    if window_days is None:
        return "so far"
    return "in the last day" if window_days == 1 else f"in the last {window_days:,} days"


# --- one phrase per kind ---------------------------------------------------------------------
# Each takes the spec, the value (a float, or None when missing) and the
# reference (likewise) and returns the text. Counts read a missing value as 0:
# the feature queries leave a count null only when no row matched.


def _aggregate(spec: FeatureSpec, value: float | None, ref: float | None) -> str:
    events, when, function = _Events.of(spec), _when(spec.window_days), spec.function
    if function in ("active_days", "active_weeks"):
        n = value or 0.0
        typical = _typical(None if ref is None else _num(ref))
        if function == "active_weeks":
            return f"{events.done()} in {_plural(n, 'different week')} {when}{typical}"
        if spec.window_days is None:
            return f"{events.done()} on {_plural(n, 'day')} so far{typical}"
        days = "the last day" if spec.window_days == 1 else f"the last {spec.window_days:,} days"
        return f"{events.done()} on {_num(n)} of {days}{typical}"
    typical = _typical(None if ref is None else _num(ref))
    if spec.column is None:
        return events.count(value or 0.0, when) + typical
    label = _label(spec)
    one = events.one()
    if function == "count":
        n = value or 0.0
        counted = f"no {one}s" if n == 0 else _plural(n, one)
        return f"{counted}{events.where} with a recorded {label} {when}{typical}"
    if value is None:
        return f"no {one}s{events.where} with a recorded {label} {when}"
    timed = spec.column == "duration_s"
    show = _duration if timed else _num
    subject = {
        "sum": f"total {label}" + ("" if events.style == "any" else f" in {one}s"),
        "mean": f"average {label} per {one}",
        "min": f"shortest {one}" if timed else f"lowest value of a single {one}",
        "max": f"longest {one}" if timed else f"highest value of a single {one}",
        "std": f"spread (standard deviation) of {label} across {one}s",
    }[str(function)]
    return f"{subject} {when} was {show(value)}{_typical(None if ref is None else show(ref))}"


def _label(spec: FeatureSpec) -> str:
    return "time" if spec.column == "duration_s" else "value"


def _users(spec: FeatureSpec, value: float | None, ref: float | None) -> str:
    events, when = _Events.of(spec), _when(spec.window_days)
    doing = {"any": "active", "noun": f"with {events.plural}", "quoted": ""}[events.style]
    if events.style == "quoted":
        doing = f"who used {events.singular}"
    doing += events.where if events.style != "any" else ""
    if spec.function == "active_share":
        if value is None:
            return "no known users yet"
        return (
            f"{_pct(value)} of users {doing} {when}{_typical(None if ref is None else _pct(ref))}"
        )
    n = value or 0.0
    users = "no users" if n == 0 else _plural(n, "user")
    if events.style == "any":
        users = "no active users" if n == 0 else _plural(n, "active user")
        doing = ""
    text = " ".join(p for p in (users, doing, when) if p)
    return text + _typical(None if ref is None else _num(ref))


def _recency(spec: FeatureSpec, value: float | None, ref: float | None) -> str:
    events = _Events.of(spec)
    typical = _typical(None if ref is None else _num(float(math.floor(ref + 0.5))))
    if value is None:
        when = "yet" if spec.window_days is None else _when(spec.window_days)
        if spec.event_type == "login" and spec.window_days is None and not events.where:
            return "never logged in"
        if events.style == "quoted":
            never = "has never used" if spec.window_days is None else "has not used"
            return f"{never} {events.singular}{events.where}" + (
                "" if spec.window_days is None else f" {when}"
            )
        return f"no {'activity' if events.style == 'any' else events.plural}{events.where} {when}"
    if value < 1:
        last = {"any": "last activity", "noun": f"last {events.singular}", "quoted": ""}
        lead = last[events.style] or f"last used {events.singular}"
        return f"{lead}{events.where} less than a day ago{typical}"
    if events.style == "quoted":
        return f"has not used {events.singular}{events.where} for {_days(value)}{typical}"
    thing = "activity" if events.style == "any" else events.singular
    return f"no {thing}{events.where} for {_days(value)}{typical}"


def _tenure(spec: FeatureSpec, value: float | None, ref: float | None) -> str:
    if value is None:
        return "no signup date on record"
    typical = _typical(None if ref is None else _num(float(math.floor(ref + 0.5))))
    return f"account is {_days(value)} old{typical}"


def _first_week(spec: FeatureSpec, value: float | None, ref: float | None) -> str:
    if value is None:
        # The query leaves it null until the first seven days have ended.
        return "first week not over yet"
    text = _Events.of(spec).count(value, "in its first week")
    return text + _typical(None if ref is None else _num(ref))


def _consistency(spec: FeatureSpec, value: float | None, ref: float | None) -> str:
    weeks = int(spec.weeks or 0)
    # A share of weeks reads better as a count of weeks: "2 of the last 8 weeks".
    n = round((value or 0.0) * weeks, 1)
    typical = _typical(None if ref is None else _num(round(ref * weeks, 1)))
    last = "the last week" if weeks == 1 else f"the last {weeks:,} weeks"
    return f"{_Events.of(spec).done()} in {_num(n)} of {last}{typical}"


def _change(ratio: float) -> str:
    """A ratio as a change: "down 80%", "up 50%", "no change"."""
    if abs(ratio - 1) < 0.0005:
        return "no change"
    return f"{'up' if ratio > 1 else 'down'} {_pct(abs(ratio - 1))}"


def _trend(spec: FeatureSpec, value: float | None, ref: float | None) -> str:
    events, window = _Events.of(spec), int(spec.window_days or 0)
    when, before = _when(window), f"the {window:,} days before"
    if spec.function == "difference":
        diff = value or 0.0
        typical = ""
        if ref is not None:
            typical = _typical(
                "no change" if ref == 0 else f"{_num(abs(ref))} {'more' if ref > 0 else 'fewer'}"
            )
        more = "more" if diff > 0 else "fewer"
        if events.style == "quoted":
            how = "as often" if diff == 0 else f"{_plural(abs(diff), 'time')} {more}"
            return f"used {events.singular}{events.where} {how} {when} than in {before}{typical}"
        noun = ("event", "events") if events.style == "any" else (events.singular, events.plural)
        if diff == 0:
            return f"as many {noun[1]}{events.where} {when} as in {before}{typical}"
        count = _plural(abs(diff), *noun).replace(" ", f" {more} ", 1)
        return f"{count}{events.where} {when} than in {before}{typical}"
    typical = _typical(None if ref is None else _change(ref))
    if value is None:
        # Null when the earlier window was empty: there is nothing to compare with.
        thing = "activity" if events.style == "any" else events.plural
        earlier = f"the {window:,} days before the last {window:,}"
        if events.style == "quoted":
            return f"did not use {events.singular}{events.where} in {earlier}, so no trend"
        return f"no {thing}{events.where} in {earlier}, so no trend"
    if value == 0:
        return f"{events.subject()} stopped {when}, after some in {before}{typical}"
    change = _change(value)
    if change == "no change":
        return f"{events.subject()} {when} held steady against {before}{typical}"
    verb = "rose" if value > 1 else "fell"
    return f"{events.subject()} {when} {verb} {_pct(abs(value - 1))} against {before}{typical}"


def _payments(spec: FeatureSpec, value: float | None, ref: float | None) -> str:
    when = _when(spec.window_days)
    if spec.function == "success_rate":
        if value is None:
            return "no payments yet" if spec.window_days is None else f"no payments {when}"
        typical = _typical(None if ref is None else _pct(ref))
        return f"{_pct(value)} of payments succeeded {when}{typical}"
    if spec.function == "days_since_failure":
        if value is None:
            return "no failed payments yet"
        typical = _typical(None if ref is None else _num(float(math.floor(ref + 0.5))))
        ago = "less than a day" if value < 1 else _days(value)
        return f"last failed payment {ago} ago{typical}"
    n = value or 0.0
    count = "no failed payments" if n == 0 else _plural(n, "failed payment")
    return f"{count} {when}{_typical(None if ref is None else _num(ref))}"


def _amount(value: float) -> str:
    """A discount: a fraction (0.15) as "15%", anything above 1 as an amount."""
    return _pct(value) if 0 <= value <= 1 else _num(value)


def _subscription(spec: FeatureSpec, value: float | None, ref: float | None) -> str:
    function = spec.function
    if function == "mrr":
        if value is None:
            return "no active subscription"
        return f"MRR is {_num(value)}{_typical(None if ref is None else _num(ref))}"
    if function == "discount":
        typical = _typical(None if ref is None else _amount(ref))
        if value is None:
            return f"no discount on record{typical}"
        if value == 0:
            return f"no discount{typical}"
        return f"has a {_amount(value)} discount{typical}"
    if function == "billing_period":
        typical = _typical(None if ref is None or ref == value else _period(ref))
        if value is None:
            return f"no billing period on record{typical}"
        return f"billed {_period(value)}{typical}"
    n, word = value or 0.0, "upgrade" if function == "upgrades" else "downgrade"
    count = f"no {word}s" if n == 0 else _plural(n, word)
    return f"{count} {_when(spec.window_days)}{_typical(None if ref is None else _num(ref))}"


def _period(months: float) -> str:
    """A billing period in months: "monthly", "yearly", "every 3 months"."""
    named = {1.0: "monthly", 12.0: "yearly"}
    return named.get(float(months), f"every {_plural(months, 'month')}")


#: Filled-or-not account columns: (phrase when set, phrase when not).
_SET_PHRASES = {"csm_id": ("has a customer-success manager", "no customer-success manager")}


def _attribute_set(spec: FeatureSpec, value: float | None, ref: float | None) -> str:
    column = str(spec.column)
    filled, empty = _SET_PHRASES.get(column, (f"{column} is set", f"no {column} on record"))
    text = filled if value else empty
    if ref is None or bool(ref >= 0.5) == bool(value):
        return text
    return f"{text} (most accounts {'do' if ref >= 0.5 else 'do not'})"


def _support(spec: FeatureSpec, value: float | None, ref: float | None) -> str:
    n = value or 0.0
    word = "support contact" if spec.function == "count" else "negative support contact"
    count = f"no {word}s" if n == 0 else _plural(n, word)
    return f"{count} {_when(spec.window_days)}{_typical(None if ref is None else _num(ref))}"


_NUMERIC_PHRASES: dict[str, Callable[[FeatureSpec, float | None, float | None], str]] = {
    "aggregate": _aggregate,
    "users": _users,
    "recency": _recency,
    "tenure": _tenure,
    "first_week": _first_week,
    "consistency": _consistency,
    "trend": _trend,
    "payments": _payments,
    "subscription": _subscription,
    "support": _support,
    "attribute": _attribute_set,
}

#: Categorical columns: (phrase with the level, phrase when missing).
_LEVEL_PHRASES = {
    "plan": ("on the {} plan", "no plan on record"),
    "region": ("in the {} region", "no region on record"),
    "platform": ("on the {} platform", "no platform on record"),
    "referral_source": ("signed up through {}", "no referral source on record"),
    "name": ("name is {}", "no name on record"),
    "csm_id": ("CSM is {}", "no CSM assigned"),
}


def _level(column: str, value: object, reference: object) -> str:
    """A categorical: "on the 'basic' plan (most common: 'pro')"."""
    known, unknown = _LEVEL_PHRASES.get(column, (f"{column} is {{}}", f"no {column} on record"))
    common = None if _missing(reference) else str(reference)
    if _missing(value):
        return unknown + (f" (most common: {_quote(common)})" if common is not None else "")
    text = known.format(_quote(value))
    # "(most common: 'pro')" only adds something when the account differs from it.
    return text if common in (None, str(value)) else f"{text} (most common: {_quote(common)})"


def _plain(feature: str, value: object, reference: object) -> str:
    """A feature with no spec: "<name> is 2.3 (typical: 5.1)" or "<name> is 'x' (...)"."""
    number, ref = _as_float(value), _as_float(reference)
    if number is not None or (_missing(value) and ref is not None):
        shown = "missing" if number is None else _num(number)
        return f"{feature} is {shown}{_typical(None if ref is None else _num(ref))}"
    common = None if _missing(reference) else str(reference)
    shown = "missing" if _missing(value) else _quote(value)
    if common is None or common == str(value):
        return f"{feature} is {shown}"
    return f"{feature} is {shown} (most common: {_quote(common)})"


def describe_reason(
    feature: str,
    value: object,
    reference: object = None,
    contribution: float | None = None,
    spec: FeatureSpec | None = None,
    frame_row: Mapping[str, Any] | None = None,
) -> str:
    """Say in plain words what an account's value of a feature is, against the typical value.

    Parameters
    ----------
    feature : str
        The feature (column) name; used as is when there is no ``spec``.
    value : float, int, str or None
        The account's value; ``None`` or NaN when missing (a missing recency
        reads "never logged in", a missing payment rate "no payments yet").
    reference : float, str or None
        The typical value: the training median of a number, the most frequent
        level of a category (see :func:`reference_values`). Shown as
        "(typical: ...)" or "(most common: ...)"; left out when missing.
    contribution : float, optional
        The feature's push on the score. It does not change the words: a
        reason states facts about the account, which lets :func:`top_reasons`
        share one text between every row with the same value. Choosing which
        features to describe (those that raise the risk) is the caller's job.
    spec : FeatureSpec, optional
        How the feature was computed: its kind, function, window and event
        filter pick the phrase. Without one the text is
        "<feature> is <value> (typical: <reference>)".
    frame_row : mapping, optional
        The row's other values. Accepted so a caller can pass the whole row;
        the wording reads only ``value`` and ``reference`` (see
        ``contribution`` for why).

    Returns
    -------
    str
        The reason, lower case, with numbers written for people: whole
        counts without decimals, thousands separated ("1,234"), shares as
        percentages, durations in seconds, minutes, hours or days.

    Examples
    --------
    >>> trend = FeatureSpec("sessions_trend", "trend", "ratio", window_days=30,
    ...                     event_type="session")
    >>> describe_reason("sessions_trend", 0.2, 1.0, 0.9, trend)
    'sessions in the last 30 days fell 80% against the 30 days before (typical: no change)'
    >>> active = FeatureSpec("active_days_30d", "aggregate", "active_days", window_days=30)
    >>> describe_reason("active_days_30d", 2, 12.0, 0.5, active)
    'active on 2 of the last 30 days (typical: 12)'
    >>> describe_reason("days_since_login", None, 3.0, 0.7,
    ...                 FeatureSpec("days_since_login", "recency", event_type="login"))
    'never logged in'
    >>> describe_reason("MonthlyCharges", 1234.5, 70.35)
    'MonthlyCharges is 1,235 (typical: 70.35)'
    """
    del contribution, frame_row  # see the docstring: the words depend on value and reference
    return _phraser(feature, reference, spec)(value)


def _phraser(feature: str, reference: object, spec: FeatureSpec | None) -> Callable[[object], str]:
    """The wording of one feature as a function of its value.

    Everything that depends only on the feature (its kind, the parsed
    reference) is settled once here, so :func:`top_reasons` pays only for
    the value when it words many distinct values of one feature.
    """
    if spec is None:
        ref = _as_float(reference)
        if ref is None:
            return lambda value: _plain(feature, value, reference)
        typical = _typical(_num(ref))

        def plain(value: object) -> str:
            number = _as_float(value)
            if number is None:
                return _plain(feature, value, reference)
            return f"{feature} is {_num(number)}{typical}"

        return plain
    if spec.dtype == "string":
        column = "plan" if spec.kind == "subscription" else str(spec.column)
        return lambda value: _level(column, value, reference)
    phrase, ref = _NUMERIC_PHRASES[spec.kind], _as_float(reference)

    def numeric(value: object) -> str:
        number = _as_float(value)
        if number is None and not _missing(value):
            # A number was expected and text came: say what is there rather than guess.
            return _plain(feature, value, reference)
        return phrase(spec, number, ref)

    return numeric
