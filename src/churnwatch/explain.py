"""Why a model scores an account as it does, in words a customer-success manager would use.

A churn model hands back one number per account. To act on it, someone needs
the *why*: "no activity for 45 days (typical: 3)" tells a customer-success
manager what to ask about, a SHAP value does not. This module turns a model's
per-feature contributions into such reasons, and offers the two global views
that go with them:

- :func:`top_reasons` picks, for every row, the ``k`` features whose
  contribution pushes the score *up* most and words each one with
  :func:`describe_reason`. A feature that lowers the risk is never given as a
  reason for it.
- :func:`describe_reason` states the account's value against the *typical*
  value -- the training median of a number, the most frequent level of a
  category (:func:`reference_values`) -- using the feature's
  :class:`~churnwatch.features.FeatureSpec` (kind, function, window, event
  type) to say it in plain words: "sessions in the last 30 days fell 80%
  against the 30 days before", "2 failed payments in the last 90 days
  (typical: 0)", "on the 'basic' plan (most common: 'pro')". Features without
  a spec (a Telco or bank column) read "<name> is 2.3 (typical: 5.1)".
- :func:`global_importance` ranks features by their mean absolute
  contribution; :func:`partial_dependence` shows how the prediction moves
  when one feature is set to each value of a grid, on average and per row
  (ICE), for numeric and text columns alike.

Contributions come in as a plain ``(rows, features)`` array (TreeSHAP values,
exact linear contributions, occlusion differences...), so nothing here
depends on a particular estimator.

Examples
--------
>>> import numpy as np
>>> import pandas as pd
>>> from churnwatch.features import FeatureSpec
>>> X = pd.DataFrame({"days_since_last_event": [45.0, 2.0], "plan": ["basic", "pro"]})
>>> specs = {"days_since_last_event": FeatureSpec("days_since_last_event", "recency"),
...          "plan": FeatureSpec("plan", "attribute", column="plan")}
>>> references = {"days_since_last_event": 3.0, "plan": "pro"}
>>> contributions = np.array([[1.2, 0.3], [-0.4, -0.1]])
>>> reasons = top_reasons(contributions, X, list(X.columns), references, specs, k=3)
>>> [r.text for r in reasons[0]]
['no activity for 45 days (typical: 3)', "on the 'basic' plan (most common: 'pro')"]
>>> reasons[1]
[]
"""

# ruff: noqa: N803 -- X is scikit-learn's (and the contract's) name for a feature matrix
from __future__ import annotations

import gc
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from churnwatch.errors import ConfigError, ModelError
from churnwatch.features._spec import FeatureSpec

__all__ = [
    "PartialDependence",
    "Reason",
    "describe_reason",
    "global_importance",
    "partial_dependence",
    "reference_values",
    "top_reasons",
]

Direction = Literal["raises", "lowers"]

#: Rows per block in :func:`top_reasons`: bounds the temporary masks to a few MB
#: whatever the number of rows.
_BLOCK_ROWS = 65_536


@dataclass(slots=True)
class Reason:
    """One feature's part in a row's score, with its plain-word text.

    Not frozen on purpose: :func:`top_reasons` builds millions of these, and
    a frozen dataclass is about four times slower to construct.

    Attributes
    ----------
    feature : str
        The feature (column) name.
    value : float, int, str or None
        The row's value of the feature; ``None`` when it is missing.
    contribution : float
        How much the feature moves the score (log-odds for a classifier,
        target units for a regressor).
    direction : {"raises", "lowers"}
        Whether the feature raises or lowers the score.
    text : str
        The reason in plain words (see :func:`describe_reason`).

    Examples
    --------
    >>> reason = Reason("failed_payments_90d", 2, 0.8, "raises",
    ...                 "2 failed payments in the last 90 days (typical: 0)")
    >>> str(reason)
    '2 failed payments in the last 90 days (typical: 0)'
    """

    feature: str
    value: float | str | None
    contribution: float
    direction: Direction
    text: str

    def __str__(self) -> str:
        return self.text


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


# --- choosing the reasons --------------------------------------------------------------------


def _check_contributions(contributions: object, columns: int) -> np.ndarray:
    values = np.asarray(contributions, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != columns:
        raise ModelError(
            f"contributions must be a (rows, features) array with {columns} feature column(s), "
            f"got shape {values.shape}"
        )
    if not np.isfinite(values).all():
        raise ModelError(
            "contributions hold NaN or infinite values: check the model's contributions()"
        )
    return values


def _top_block(block: np.ndarray, k: int, rank: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column positions and values of the ``k`` largest entries of each row.

    Ordered by value descending, then by ``rank`` (each column's place in
    name order), so equal contributions always come out the same way. The
    caller keeps only the positive ones.
    """
    rows, columns = block.shape
    if k >= columns:
        picked = np.broadcast_to(np.arange(columns), (rows, columns))
    else:
        # argpartition finds the k largest in linear time, but which of several
        # equal values at the boundary it keeps is arbitrary. Rows where such a
        # tie matters (a positive k-th value shared with a column left out) are
        # rare with real contributions; only they are sorted in full.
        picked = np.argpartition(block, columns - k, axis=1)[:, columns - k :]
        kth = np.take_along_axis(block, picked, axis=1).min(axis=1, keepdims=True)
        tied = np.flatnonzero((kth[:, 0] > 0) & ((block >= kth).sum(axis=1) > k))
        if len(tied):
            by_name = np.argsort(rank)
            ordered = np.argsort(-block[tied][:, by_name], axis=1, kind="stable")
            picked[tied] = by_name[ordered[:, :k]]
    top = np.take_along_axis(block, picked, axis=1)
    order = np.lexsort((rank[picked], -top), axis=-1)
    return np.take_along_axis(picked, order, axis=1), np.take_along_axis(top, order, axis=1)


def _column_values(column: pd.Series) -> np.ndarray:
    """A feature column as numpy: ints stay ints, other numbers become float, text object."""
    if pd.api.types.is_numeric_dtype(column):
        if column.dtype.kind in "iu" and not column.hasnans:
            return column.to_numpy()
        return column.to_numpy(dtype=np.float64, na_value=np.nan)
    values: np.ndarray = column.astype(object).to_numpy(copy=True)
    values[pd.isna(values)] = None
    return values


def top_reasons(
    contributions: np.ndarray,
    X: pd.DataFrame,
    feature_names: Sequence[str],
    references: Mapping[str, Any],
    specs: Mapping[str, FeatureSpec] | None = None,
    k: int = 3,
) -> list[list[Reason]]:
    """The ``k`` features that raise each row's score most, in plain words.

    Parameters
    ----------
    contributions : ndarray of shape (n_rows, n_features)
        Per-feature contributions to each row's score (positive raises it),
        columns in the order of ``feature_names``.
    X : pandas.DataFrame
        The rows scored, holding every feature column.
    feature_names : sequence of str
        The features, in the column order of ``contributions``.
    references : mapping of str to float or str
        Typical value of each feature (see :func:`reference_values`).
    specs : mapping of str to FeatureSpec, optional
        Specs of the features that have one, for the wording.
    k : int
        Most reasons per row.

    Returns
    -------
    list of list of Reason
        One list per row, strongest first. Only features with a positive
        contribution are given, so a row may have fewer than ``k`` (or none).
        Equal contributions are ordered by feature name, so the same inputs
        always give the same reasons.

    Raises
    ------
    ModelError
        If the shapes disagree, a feature is not in ``X`` or a contribution
        is not finite.
    ConfigError
        If ``k`` is negative.

    Notes
    -----
    Built for whole customer bases (a million rows by sixty features takes
    seconds): the selection is vectorised over blocks of rows, and a text is
    written once per distinct (feature, value) among the chosen cells.

    Examples
    --------
    >>> X = pd.DataFrame({"failed_payments_90d": [2, 0], "tenure_days": [20.0, 400.0]})
    >>> specs = {"failed_payments_90d": FeatureSpec("failed_payments_90d", "payments",
    ...                                             "failed_count", window_days=90),
    ...          "tenure_days": FeatureSpec("tenure_days", "tenure")}
    >>> contributions = np.array([[0.8, 0.3], [-0.2, 0.1]])
    >>> reasons = top_reasons(contributions, X, list(X.columns),
    ...                       {"failed_payments_90d": 0.0, "tenure_days": 380.0}, specs, k=2)
    >>> [r.text for r in reasons[0]]
    ['2 failed payments in the last 90 days (typical: 0)', 'account is 20 days old (typical: 380)']
    >>> [(r.feature, r.direction) for r in reasons[1]]
    [('tenure_days', 'raises')]
    """
    names = [str(name) for name in feature_names]
    if len(set(names)) != len(names):
        raise ModelError("feature_names holds a name twice: each contribution column needs one")
    values = _check_contributions(contributions, len(names))
    if values.shape[0] != len(X):
        raise ModelError(
            f"contributions have {values.shape[0]} row(s) but X has {len(X)}: pass the same rows"
        )
    absent = [name for name in names if name not in X.columns]
    if absent:
        raise ModelError(f"X lacks the feature column(s) {', '.join(absent)}")
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 0:
        raise ConfigError(f"k must be a whole number of reasons, 0 or more, not {k!r}")
    rows, width = values.shape
    k = min(int(k), width)
    if k == 0 or rows == 0:
        return [[] for _ in range(rows)]

    # Each column's place in name order: the tie-breaker.
    rank = np.argsort(np.argsort(np.array(names), kind="stable"))
    picked = np.empty((rows, k), dtype=np.intp)
    top = np.empty((rows, k), dtype=np.float64)
    for start in range(0, rows, _BLOCK_ROWS):
        stop = min(start + _BLOCK_ROWS, rows)
        picked[start:stop], top[start:stop] = _top_block(values[start:stop], k, rank)

    # Only contributions that raise the score can be reasons for it.
    valid = top > 0
    cell_rows = np.nonzero(valid)[0]
    cell_cols = picked[valid]
    cell_contrib = top[valid]
    cell_values = np.empty(len(cell_cols), dtype=object)
    cell_texts = np.empty(len(cell_cols), dtype=object)
    specs = specs or {}
    # Group the chosen cells by feature; within one, factorize the values so
    # each distinct (feature, value) is worded once.
    by_feature = np.argsort(cell_cols, kind="stable")
    features, starts = np.unique(cell_cols[by_feature], return_index=True)
    bounds = [*starts.tolist(), len(by_feature)]
    for feature, begin, end in zip(features.tolist(), bounds, bounds[1:], strict=False):
        cells = by_feature[begin:end]
        name = names[feature]
        chosen = _column_values(X[name])[cell_rows[cells]]
        codes, distinct = pd.factorize(chosen, use_na_sentinel=False)
        phrase = _phraser(name, references.get(name), specs.get(name))
        texts = [phrase(v) for v in distinct.tolist()]
        cell_texts[cells] = np.asarray(texts, dtype=object)[codes]
        # astype(object) gives Python ints / floats; missing numbers become None.
        kept = chosen.astype(object)
        if chosen.dtype.kind == "f":
            kept[np.isnan(chosen)] = None
        cell_values[cells] = kept

    with _gc_paused():
        reasons: list[list[Reason]] = [[] for _ in range(rows)]
        for row, col, value, contrib, text in zip(
            cell_rows.tolist(),
            cell_cols.tolist(),
            cell_values.tolist(),
            cell_contrib.tolist(),
            cell_texts.tolist(),
            strict=True,
        ):
            reasons[row].append(Reason(names[col], value, contrib, "raises", text))
    return reasons


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building millions of small objects.

    Every few hundred new container objects the collector walks the young
    ones; building a million rows of reasons triggers that thousands of times
    and more than triples the time, for nothing: reasons hold no cycles.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# --- global views ----------------------------------------------------------------------------


def reference_values(X: pd.DataFrame) -> dict[str, float | str]:
    """The typical value of each column: the median of numbers, the most frequent text.

    Parameters
    ----------
    X : pandas.DataFrame
        Training rows. A column is categorical when it is not numeric.

    Returns
    -------
    dict of str to float or str
        Per column, the median (missing values left out) or the most
        frequent non-missing level, ties going to the first in sort order so
        the result does not depend on row order. NaN for a column with no
        value at all.

    Examples
    --------
    >>> reference_values(pd.DataFrame({"logins_30d": [1, 4, 10], "plan": ["pro", "basic", "pro"]}))
    {'logins_30d': 4.0, 'plan': 'pro'}
    """
    references: dict[str, float | str] = {}
    for name in X.columns:
        column = X[name]
        if pd.api.types.is_numeric_dtype(column):
            numbers = column.to_numpy(dtype=np.float64, na_value=np.nan)
            numbers = numbers[~np.isnan(numbers)]
            references[str(name)] = float(np.median(numbers)) if len(numbers) else math.nan
            continue
        counts = column.dropna().astype(str).value_counts(sort=False)
        if counts.empty:
            references[str(name)] = math.nan
            continue
        best = counts[counts == counts.max()]
        references[str(name)] = min(str(level) for level in best.index)
    return references


def global_importance(
    contributions: np.ndarray,
    feature_names: Sequence[str],
    gain: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """Rank features by how much they move scores on average.

    Parameters
    ----------
    contributions : ndarray of shape (n_rows, n_features)
        Per-feature contributions, columns in the order of ``feature_names``.
    feature_names : sequence of str
        The features.
    gain : mapping of str to float, optional
        A model's own importance (such as LightGBM's total gain), shown
        beside for comparison; NaN where absent.

    Returns
    -------
    pandas.DataFrame
        Columns ``feature``, ``mean_abs_contribution``, ``share`` (of the
        total mean absolute contribution; 0 when every contribution is 0)
        and ``gain``; most important first, ties by feature name.

    Raises
    ------
    ModelError
        If the shapes disagree or a contribution is not finite.

    Examples
    --------
    >>> table = global_importance(np.array([[0.5, -1.5], [-0.5, 0.5]]), ["tenure", "logins"])
    >>> table[["feature", "mean_abs_contribution", "share"]].to_dict("records")
    [{'feature': 'logins', 'mean_abs_contribution': 1.0, 'share': 0.6666666666666666}, \
{'feature': 'tenure', 'mean_abs_contribution': 0.5, 'share': 0.3333333333333333}]
    """
    names = [str(name) for name in feature_names]
    values = _check_contributions(contributions, len(names))
    mean_abs = np.abs(values).mean(axis=0) if len(values) else np.zeros(len(names))
    total = float(mean_abs.sum())
    table = pd.DataFrame(
        {
            "feature": pd.Series(names, dtype=object),
            "mean_abs_contribution": mean_abs,
            "share": mean_abs / total if total > 0 else np.zeros(len(names)),
            "gain": [
                math.nan if gain is None or gain.get(n) is None else float(gain[n]) for n in names
            ],
        }
    )
    table = table.sort_values(
        ["mean_abs_contribution", "feature"], ascending=[False, True], kind="stable"
    )
    return table.reset_index(drop=True)


@dataclass(eq=False)
class PartialDependence:
    """How predictions move as one feature is set to each grid value.

    Attributes
    ----------
    grid : ndarray
        The values the feature was set to: numbers ascending, or the most
        frequent levels of a text column (object array), most frequent first.
    average : ndarray of shape (n_grid,)
        Mean prediction over every row of ``X`` at each grid value (the
        partial dependence).
    ice : ndarray of shape (n_ice, n_grid)
        Predictions of a sample of single rows (individual conditional
        expectation), one line per row.
    feature : str
        The feature varied.
    rows : ndarray of int
        Positions in ``X`` of the ICE rows, ascending.

    Examples
    --------
    >>> pd_ = PartialDependence(np.array([0.0, 1.0]), np.array([0.1, 0.3]), np.zeros((0, 2)))
    >>> pd_.ice.shape
    (0, 2)
    """

    grid: np.ndarray
    average: np.ndarray
    ice: np.ndarray
    feature: str = ""
    rows: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.intp))


def _grid(column: pd.Series, points: int) -> np.ndarray:
    present = column.dropna()
    if not pd.api.types.is_numeric_dtype(column):
        counts = present.astype(str).value_counts(sort=False)
        # Most frequent first, ties by name: a stable, readable axis.
        levels = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:points]
        return np.array([level for level, _ in levels], dtype=object)
    numbers = present.to_numpy()
    distinct = np.unique(numbers)
    if len(distinct) <= points:
        return distinct
    # Quantiles rather than an even spacing: points fall where the data are,
    # so a long tail (a few huge accounts) does not stretch the grid into
    # values the model has hardly seen. 5%-95% as scikit-learn does.
    grid = np.quantile(numbers.astype(np.float64), np.linspace(0.05, 0.95, points))
    if column.dtype.kind in "iub":
        grid = np.round(grid).astype(np.int64)
    return np.unique(grid)


def _set(column: pd.Series, value: object) -> pd.Series:
    """A column like ``column`` with every row set to ``value``, same dtype."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes = np.full(len(column), column.cat.categories.get_loc(value), dtype=np.int64)
        return pd.Series(pd.Categorical.from_codes(codes, dtype=column.dtype), index=column.index)
    if pd.api.types.is_numeric_dtype(column):
        return pd.Series(np.full(len(column), value), index=column.index, dtype=column.dtype)
    return pd.Series([value] * len(column), index=column.index, dtype=column.dtype)


def partial_dependence(
    predict_fn: Callable[[pd.DataFrame], np.ndarray],
    X: pd.DataFrame,
    feature: str,
    grid_points: int = 20,
    ice_rows: int = 50,
    random_state: int = 0,
) -> PartialDependence:
    """Partial dependence and ICE curves of one feature, numeric or text.

    Every row of ``X`` is scored once per grid value with ``feature`` set to
    that value; the mean is the partial dependence, a seeded sample of rows
    gives the individual (ICE) curves.

    Parameters
    ----------
    predict_fn : callable
        Takes a frame like ``X`` and returns one score per row, e.g.
        ``lambda X: model.predict_proba(X)[:, 1]``.
    X : pandas.DataFrame
        The rows to average over (a sample of a large frame is plenty).
    feature : str
        The column to vary.
    grid_points : int
        Most grid values: the distinct values of a numeric column when there
        are no more than this, else quantiles between the 5th and 95th
        percentile (whole numbers for integer columns); for a text column the
        most frequent levels.
    ice_rows : int
        How many rows get an ICE curve (all rows when ``X`` has fewer).
    random_state : int
        Seed of the ICE sample.

    Returns
    -------
    PartialDependence

    Raises
    ------
    ModelError
        If ``feature`` is not in ``X``, has no value, ``X`` is empty or
        ``predict_fn`` does not return one number per row.
    ConfigError
        If ``grid_points`` is below 2 or ``ice_rows`` negative.

    Examples
    --------
    >>> X = pd.DataFrame({"logins": [0, 1, 2, 3], "plan": ["a", "b", "b", "b"]})
    >>> result = partial_dependence(lambda f: 2.0 * f["logins"].to_numpy() + 1, X, "logins",
    ...                             ice_rows=2)
    >>> result.grid.tolist(), result.average.tolist(), result.ice.shape
    ([0, 1, 2, 3], [1.0, 3.0, 5.0, 7.0], (2, 4))
    >>> by_plan = partial_dependence(lambda f: (f["plan"] == "a").to_numpy(float), X, "plan")
    >>> by_plan.grid.tolist(), by_plan.average.tolist()
    (['b', 'a'], [0.0, 1.0])
    """
    if feature not in X.columns:
        raise ModelError(f"partial dependence: X has no column {feature!r}")
    if isinstance(grid_points, bool) or not isinstance(grid_points, int) or grid_points < 2:
        raise ConfigError(f"grid_points must be 2 or more, not {grid_points!r}")
    if isinstance(ice_rows, bool) or not isinstance(ice_rows, int) or ice_rows < 0:
        raise ConfigError(f"ice_rows must be 0 or more, not {ice_rows!r}")
    rows = len(X)
    if rows == 0:
        raise ModelError("partial dependence needs at least one row of X")
    column = X[feature]
    grid = _grid(column, grid_points)
    if len(grid) == 0:
        raise ModelError(f"partial dependence: column {feature!r} has no value to vary")
    rng = np.random.default_rng(random_state)
    sample = np.sort(rng.choice(rows, size=min(ice_rows, rows), replace=False))
    average = np.empty(len(grid))
    ice = np.empty((len(sample), len(grid)))
    # One copy, the feature replaced per grid value: cheaper than a copy each.
    work = X.copy()
    for position, value in enumerate(grid.tolist()):
        work[feature] = _set(column, value)
        scores = np.asarray(predict_fn(work), dtype=np.float64)
        if scores.shape != (rows,):
            raise ModelError(
                f"predict_fn returned shape {scores.shape} for {rows} row(s); it must return "
                "one score per row, e.g. lambda X: model.predict_proba(X)[:, 1]"
            )
        average[position] = scores.mean()
        ice[:, position] = scores[sample]
    return PartialDependence(grid=grid, average=average, ice=ice, feature=feature, rows=sample)
