"""Feature specifications: what to compute, declared as data.

A :class:`FeatureSpec` names one point-in-time feature: its kind (an
aggregation of events, a recency, a payment rate, ...), the function applied,
the window before the cutoff, and an optional filter on the events. Specs are
plain frozen values, so a project file can hold them as dictionaries
(:meth:`FeatureSpec.from_dict`) and the compiler can group them by the table
they read.

Windows are half-open and end at the cutoff: a window of ``n`` days at cutoff
``c`` holds the rows with ``c - n days <= time < c``. Nothing at or after the
cutoff is ever read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal, get_args

import pyarrow as pa

from churnwatch.errors import FeatureError

__all__ = [
    "ATTRIBUTE_COLUMNS",
    "MAX_WEEKS",
    "MAX_WINDOW_DAYS",
    "MEASURE_COLUMNS",
    "SUPPORT_EVENT_TYPES",
    "FeatureKind",
    "FeatureSpec",
    "Source",
    "explain",
]

FeatureKind = Literal[
    "aggregate",
    "users",
    "recency",
    "tenure",
    "first_week",
    "consistency",
    "trend",
    "payments",
    "subscription",
    "support",
    "attribute",
]
Source = Literal["events", "users", "payments", "subscriptions", "accounts"]
Dtype = Literal["int64", "float64", "string"]

#: The functions each kind accepts, with the dtype of its result.
_FUNCTIONS: dict[str, dict[str, Dtype]] = {
    "aggregate": {
        "count": "int64",
        "sum": "float64",
        "mean": "float64",
        "min": "float64",
        "max": "float64",
        "std": "float64",
        "active_days": "int64",
        "active_weeks": "int64",
    },
    "users": {"active_users": "int64", "active_share": "float64"},
    "recency": {"days_since": "float64"},
    "tenure": {"days": "float64"},
    "first_week": {"count": "int64"},
    "consistency": {"share": "float64"},
    "trend": {"ratio": "float64", "difference": "int64"},
    "payments": {
        "success_rate": "float64",
        "failed_count": "int64",
        "days_since_failure": "float64",
    },
    "subscription": {
        "mrr": "float64",
        "plan": "string",
        "upgrades": "int64",
        "downgrades": "int64",
        "discount": "float64",
        "billing_period": "float64",
    },
    "support": {"count": "int64", "negative_count": "int64"},
    "attribute": {"value": "string", "is_set": "int64"},
}

#: The default function of kinds that have a single natural one.
_DEFAULT_FUNCTION = {
    "recency": "days_since",
    "tenure": "days",
    "first_week": "count",
    "consistency": "share",
    "attribute": "value",
}

#: Subscription functions that read the state at the cutoff (no window).
_AT_CUTOFF = ("mrr", "plan", "discount", "billing_period")

_SOURCES: dict[str, Source] = {
    "aggregate": "events",
    "users": "events",
    "recency": "events",
    "first_week": "events",
    "consistency": "events",
    "trend": "events",
    "support": "events",
    "tenure": "accounts",
    "attribute": "accounts",
    "payments": "payments",
    "subscription": "subscriptions",
}

#: Event types that are contacts with support.
SUPPORT_EVENT_TYPES = ("support_call", "support_ticket")
#: Numeric event columns an aggregation may read.
MEASURE_COLUMNS = ("value", "duration_s")
#: Account columns exposed as categorical attributes.
ATTRIBUTE_COLUMNS = ("plan", "region", "platform", "referral_source", "name", "csm_id")
#: Kinds whose rows an event-type or property filter narrows.
_ARROW_TYPES = {"int64": pa.int64(), "float64": pa.float64(), "string": pa.string()}
_FILTERABLE = frozenset({"aggregate", "users", "recency", "first_week", "consistency", "trend"})
#: Longest window accepted: ten years.
MAX_WINDOW_DAYS = 3650
#: Most weeks a consistency feature looks back: ten years.
MAX_WEEKS = 520

_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,59}$")
_PROPERTY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_RESERVED = frozenset({"account_id", "cutoff"})


@dataclass(frozen=True)
class FeatureSpec:
    """One point-in-time feature of an account at a cutoff.

    Parameters
    ----------
    name : str
        Column name of the feature: lower-case letters, digits and ``_``,
        at most 60 characters; not ``account_id`` or ``cutoff``.
    kind : FeatureKind
        What is computed:

        - ``"aggregate"``: ``function`` over events (``count``, ``active_days``,
          ``active_weeks``) or over ``column`` (``sum``, ``mean``, ``min``,
          ``max``, ``std``; ``count`` counts its non-null values).
        - ``"users"``: ``active_users`` (distinct users with an event) or
          ``active_share`` (active known users / users known at the cutoff).
        - ``"recency"``: days since the last (matching) event.
        - ``"tenure"``: days since the account's ``created_at``.
        - ``"first_week"``: events in ``[created_at, created_at + 7 days)``,
          null while that week has not ended before the cutoff.
        - ``"consistency"``: share of the last ``weeks`` weeks with an event.
        - ``"trend"``: events in the last ``window_days`` against the
          ``window_days`` before them, as ``ratio`` (null when the earlier
          window is empty) or ``difference``.
        - ``"payments"``: ``success_rate`` (succeeded / succeeded + failed),
          ``failed_count`` or ``days_since_failure``.
        - ``"subscription"``: at the cutoff, ``mrr`` (sum over active periods),
          ``plan``, ``discount`` and ``billing_period`` (months per bill) of
          the latest active period, or the
          number of ``upgrades`` / ``downgrades`` (MRR up / down from one
          period to the next).
        - ``"support"``: ``support_call`` and ``support_ticket`` events,
          ``count`` or ``negative_count`` (value < 0 or sentiment negative).
        - ``"attribute"``: the account's ``column`` as a categorical
          (``value``), or ``is_set``: 1 when it is filled, else 0 (such as
          ``csm_id``: whether a customer-success manager owns the account;
          null for an account with no row).
    function : str, optional
        The function of the kind (see above); kinds with one natural function
        default to it.
    column : str, optional
        ``value`` or ``duration_s`` for aggregations; an account column for
        attributes.
    window_days : int, optional
        Length of the window ending at the cutoff; ``None`` for all time.
    event_type : str, optional
        Only events of this type.
    property_name, property_value : str, optional
        Only events whose JSON ``properties`` hold this key with this value.
    weeks : int, optional
        Number of weeks of a consistency feature.
    description : str, optional
        Shown by :func:`explain`; written from the other fields when empty.

    Raises
    ------
    FeatureError
        If a field is out of range or does not fit the kind.

    Examples
    --------
    >>> spec = FeatureSpec("logins_30d", "aggregate", "count", window_days=30, event_type="login")
    >>> spec.dtype, spec.source
    ('int64', 'events')
    >>> spec.description
    "count of events of type 'login' in the 30 days before the cutoff"
    """

    name: str
    kind: FeatureKind
    function: str | None = None
    column: str | None = None
    window_days: int | None = None
    event_type: str | None = None
    property_name: str | None = None
    property_value: str | None = None
    weeks: int | None = None
    description: str = ""

    def __post_init__(self) -> None:
        where = f"feature {self.name!r}"
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise FeatureError(
                f"{where}: a feature name is 1-60 lower-case letters, digits or '_', "
                "starting with a letter or '_'"
            )
        if self.name in _RESERVED:
            raise FeatureError(f"{where}: the name is reserved for the key columns")
        if self.kind not in _FUNCTIONS:
            raise FeatureError(
                f"{where}: unknown kind {self.kind!r}; expected one of "
                f"{', '.join(get_args(FeatureKind))}"
            )
        function = self.function or _DEFAULT_FUNCTION.get(self.kind)
        if function not in _FUNCTIONS[self.kind]:
            raise FeatureError(
                f"{where}: kind {self.kind!r} takes function "
                f"{' / '.join(_FUNCTIONS[self.kind])}, not {self.function!r}"
            )
        object.__setattr__(self, "function", function)
        self._check_column(where, function)
        self._check_window(where, function)
        self._check_filter(where)
        if not self.description:
            object.__setattr__(self, "description", self._describe())

    def _check_column(self, where: str, function: str) -> None:
        if self.kind == "attribute":
            if self.column not in ATTRIBUTE_COLUMNS:
                raise FeatureError(
                    f"{where}: an attribute reads one of the account columns "
                    f"{', '.join(ATTRIBUTE_COLUMNS)}, not {self.column!r}"
                )
        elif self.kind == "aggregate":
            if self.column is not None and self.column not in MEASURE_COLUMNS:
                raise FeatureError(
                    f"{where}: aggregations read the event columns "
                    f"{' or '.join(MEASURE_COLUMNS)}, not {self.column!r}"
                )
            if self.column is None and function in ("sum", "mean", "min", "max", "std"):
                raise FeatureError(f"{where}: {function} needs column='value' or 'duration_s'")
            if self.column is not None and function in ("active_days", "active_weeks"):
                raise FeatureError(f"{where}: {function} counts periods and takes no column")
        elif self.column is not None:
            raise FeatureError(f"{where}: kind {self.kind!r} takes no column")

    def _check_window(self, where: str, function: str) -> None:
        window = self.window_days
        if window is not None and (
            isinstance(window, bool)
            or not isinstance(window, int)
            or not 1 <= window <= MAX_WINDOW_DAYS
        ):
            raise FeatureError(
                f"{where}: window_days must be a whole number of days in "
                f"1..{MAX_WINDOW_DAYS} (or None for all time), not {window!r}"
            )
        windowless = self.kind in ("tenure", "first_week", "consistency", "attribute") or (
            self.kind == "subscription" and function in _AT_CUTOFF
        )
        if windowless and window is not None:
            raise FeatureError(f"{where}: {self.kind} {function} takes no window_days")
        if self.kind == "trend" and window is None:
            raise FeatureError(f"{where}: a trend compares two windows and needs window_days")
        if self.kind == "consistency":
            weeks = self.weeks
            if isinstance(weeks, bool) or not isinstance(weeks, int) or not 1 <= weeks <= MAX_WEEKS:
                raise FeatureError(
                    f"{where}: consistency needs weeks in 1..{MAX_WEEKS}, not {weeks!r}"
                )
        elif self.weeks is not None:
            raise FeatureError(f"{where}: only consistency features take weeks")

    def _check_filter(self, where: str) -> None:
        filtered = self.event_type is not None or self.property_name is not None
        if filtered and self.kind not in _FILTERABLE:
            raise FeatureError(f"{where}: kind {self.kind!r} takes no event filter")
        if self.event_type is not None and (
            not isinstance(self.event_type, str) or not self.event_type
        ):
            raise FeatureError(f"{where}: event_type must be a non-empty string")
        if (self.property_name is None) != (self.property_value is None):
            raise FeatureError(f"{where}: give property_name and property_value together")
        if self.property_name is not None and not _PROPERTY.match(self.property_name):
            raise FeatureError(
                f"{where}: property_name must be a plain JSON key (letters, digits, '_'), "
                f"not {self.property_name!r}"
            )
        if self.property_value is not None and not isinstance(self.property_value, str):
            raise FeatureError(f"{where}: property_value is compared as text; give a string")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureSpec:
        """Build a spec from a mapping, as a project file holds it.

        Raises
        ------
        FeatureError
            If a key is unknown, ``name`` or ``kind`` is missing, or a value
            is invalid.

        Examples
        --------
        >>> FeatureSpec.from_dict({"name": "tenure_days", "kind": "tenure"}).dtype
        'float64'
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise FeatureError(
                f"feature {data.get('name')!r}: unknown key(s) {', '.join(unknown)}; "
                f"expected {', '.join(sorted(known))}"
            )
        missing = [k for k in ("name", "kind") if k not in data]
        if missing:
            raise FeatureError(f"feature {data.get('name')!r}: missing {', '.join(missing)}")
        return cls(**dict(data))

    def to_dict(self) -> dict[str, Any]:
        """The spec as a mapping without its unset fields (what a project file holds)."""
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if getattr(self, f.name) not in (None, "")
        }

    @property
    def dtype(self) -> Dtype:
        """Arrow type name of the result: ``int64``, ``float64`` or ``string``."""
        return _FUNCTIONS[self.kind][str(self.function)]

    @property
    def arrow_type(self) -> pa.DataType:
        """The Arrow type of the result column."""
        return _ARROW_TYPES[self.dtype]

    @property
    def source(self) -> Source:
        """The canonical table the feature is computed from."""
        if self.kind == "users" and self.function == "active_share":
            return "users"
        return _SOURCES[self.kind]

    @property
    def window_text(self) -> str:
        """The window in words."""
        if self.kind == "consistency":
            return f"the {self.weeks} weeks before the cutoff"
        if self.kind == "trend":
            return (
                f"the {self.window_days} days before the cutoff against the "
                f"{self.window_days} days before those"
            )
        if self.kind == "first_week":
            return "the 7 days after signup, once they ended before the cutoff"
        if self.kind == "attribute":
            # Account rows are revised in place: the value is today's, not the cutoff's.
            return "as last loaded (accounts keep no history), if created before the cutoff"
        if self.kind == "tenure" or (self.kind == "subscription" and self.function in _AT_CUTOFF):
            return "at the cutoff"
        if self.window_days is None:
            return "all time before the cutoff"
        return f"the {self.window_days} days before the cutoff"

    def _filter_text(self) -> str:
        parts = []
        if self.event_type is not None:
            parts.append(f"of type {self.event_type!r}")
        if self.property_name is not None:
            parts.append(f"with {self.property_name} = {self.property_value!r}")
        return " ".join(parts)

    def _describe(self) -> str:
        events = " ".join(p for p in ("events", self._filter_text()) if p)
        span = self.window_text
        what = {
            "aggregate": (
                f"{self.function} of {self.column} over {events}"
                if self.column
                else (
                    f"count of {events}"
                    if self.function == "count"
                    else f"distinct {str(self.function).removeprefix('active_')} with {events}"
                )
            ),
            "users": (
                f"distinct users with {events}"
                if self.function == "active_users"
                else f"share of the users known at the cutoff with {events}"
            ),
            "recency": f"days since the last of the {events}",
            "tenure": "days since the account was created",
            "first_week": f"count of {events}",
            "consistency": f"share of weeks with {events}",
            "trend": f"{self.function} of the count of {events}",
            "payments": {
                "success_rate": "share of charge attempts that succeeded",
                "failed_count": "failed charge attempts",
                "days_since_failure": "days since the last failed charge",
            }.get(str(self.function), ""),
            "subscription": {
                "mrr": "MRR of the active subscriptions",
                "plan": "plan of the latest active subscription",
                "discount": "discount of the latest active subscription",
                "billing_period": "months per bill of the latest active subscription",
                "upgrades": "subscription periods whose MRR rose from the previous one",
                "downgrades": "subscription periods whose MRR fell from the previous one",
            }.get(str(self.function), ""),
            "support": (
                "support calls and tickets"
                if self.function == "count"
                else "negative support calls and tickets (value < 0 or sentiment negative)"
            ),
            "attribute": (
                f"whether account {self.column} is set (1) or not (0)"
                if self.function == "is_set"
                else f"account {self.column}"
            ),
        }[self.kind]
        return f"{what} {span}" if span.startswith(("at ", "as ")) else f"{what} in {span}"


def explain(specs: list[FeatureSpec] | tuple[FeatureSpec, ...]) -> list[str]:
    """Describe each feature in one line: name, type, meaning, window and source.

    Examples
    --------
    >>> explain([FeatureSpec("tenure_days", "tenure")])
    ['tenure_days (float64): days since the account was created at the cutoff [source: accounts]']
    """
    return [f"{s.name} ({s.dtype}): {s.description} [source: {s.source}]" for s in specs]
