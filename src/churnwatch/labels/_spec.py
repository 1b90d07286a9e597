"""What a label means: :class:`LabelSpec`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal, get_args

from churnwatch.config import ChurnSettings
from churnwatch.errors import LabelError

__all__ = ["BINARY_KINDS", "LabelKind", "LabelSpec"]

LabelKind = Literal["inactivity", "subscription", "adoption", "conversion", "activity", "revenue"]

#: Kinds whose label is 0/1; the others are regression targets.
BINARY_KINDS: frozenset[str] = frozenset({"inactivity", "subscription", "adoption", "conversion"})

_DEFAULT_PREFIX: dict[str, str] = {
    "inactivity": "churn",
    "subscription": "churn",
    "adoption": "churn",
    "conversion": "conversion",
    "activity": "activity",
    "revenue": "revenue",
}


@dataclass(frozen=True)
class LabelSpec:
    """What is predicted at each cutoff, and over which horizons.

    Parameters
    ----------
    kind : {"inactivity", "subscription", "adoption", "conversion", "activity", "revenue"}
        - ``"inactivity"``: churn = no qualifying event in the window.
        - ``"subscription"``: churn = the account's active period (subscriptions
          chained through gaps of at most ``grace_days``) ends in the window.
        - ``"adoption"``: churn = the adoption flag turns from enabled to
          disabled (consecutive snapshots) in the window.
        - ``"conversion"``: the account's first paid subscription (``mrr > 0``)
          starts in the window.
        - ``"activity"``: the number of qualifying events in the window
          (session velocity).
        - ``"revenue"``: the sum of succeeded payments in the window.
    horizon_days : int or sequence of int
        Length of the label window; several give one column per horizon.
    lead_days : int
        Days between the cutoff and the start of the window (time to act).
    inactivity_days : int
        ``inactivity`` only: an account is active at the cutoff (an example)
        when it had a qualifying event in the ``inactivity_days`` before it.
    grace_days : int
        ``subscription`` only: a subscription starting within this many days
        of the previous end continues the period.
    event_types : sequence of str, optional
        ``inactivity`` and ``activity``: only these event types qualify.
    product : str, optional
        ``adoption`` only: look at this product's flag only.
    name : str, optional
        Prefix of the label columns; ``churn``, ``conversion``, ``activity``
        or ``revenue`` by default (columns read ``churn_30d``).

    Raises
    ------
    LabelError
        If a value is out of range or does not apply to the kind.

    Examples
    --------
    >>> spec = LabelSpec("subscription", horizon_days=(30, 14), grace_days=7)
    >>> spec.horizon_days
    (14, 30)
    >>> spec.columns
    ('churn_14d', 'churn_30d')
    """

    kind: LabelKind
    horizon_days: tuple[int, ...] = (30,)
    lead_days: int = 0
    inactivity_days: int = 30
    grace_days: int = 7
    event_types: tuple[str, ...] | None = None
    product: str | None = None
    name: str | None = field(default=None)

    def __post_init__(self) -> None:
        if self.kind not in get_args(LabelKind):
            kinds = ", ".join(get_args(LabelKind))
            raise LabelError(f"unknown label kind {self.kind!r}; expected one of {kinds}")
        horizons = _days_tuple(self.horizon_days)
        if not horizons or any(h < 1 for h in horizons):
            raise LabelError(f"horizon_days must be whole days >= 1, got {self.horizon_days!r}")
        object.__setattr__(self, "horizon_days", tuple(sorted(set(horizons))))
        for setting, minimum in (("lead_days", 0), ("inactivity_days", 1), ("grace_days", 0)):
            value = getattr(self, setting)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise LabelError(f"{setting} must be a whole number >= {minimum}, got {value!r}")
        if self.event_types is not None:
            if self.kind not in ("inactivity", "activity"):
                raise LabelError(
                    f"event_types applies to inactivity and activity labels, not {self.kind!r}"
                )
            types = (self.event_types,) if isinstance(self.event_types, str) else self.event_types
            if not types or not all(isinstance(t, str) and t for t in types):
                raise LabelError(f"event_types must be non-empty names, got {self.event_types!r}")
            object.__setattr__(self, "event_types", tuple(sorted(set(types))))
        if self.product is not None and self.kind != "adoption":
            raise LabelError(f"product applies to adoption labels, not {self.kind!r}")
        if self.name is not None and not self.name.isidentifier():
            raise LabelError(
                f"name must be a plain identifier (letters, digits, _), got {self.name!r}"
            )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LabelSpec:
        """A spec from its fields as JSON holds them (lists for tuples).

        Examples
        --------
        >>> import dataclasses
        >>> spec = LabelSpec("subscription", horizon_days=(14, 30))
        >>> LabelSpec.from_dict(dataclasses.asdict(spec)) == spec
        True
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise LabelError(f"unknown label spec field(s): {', '.join(unknown)}")
        values: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in data.items()
        }
        return cls(**values)

    @classmethod
    def from_settings(cls, churn: ChurnSettings, *, lead_days: int = 0) -> LabelSpec:
        """The churn label a project's ``[churn]`` settings describe.

        Examples
        --------
        >>> LabelSpec.from_settings(ChurnSettings(definition="inactivity", horizon_days=14))
        ... # doctest: +ELLIPSIS
        LabelSpec(kind='inactivity', horizon_days=(14,), lead_days=0, inactivity_days=30, ...)
        """
        return cls(
            kind=churn.definition,
            horizon_days=(churn.horizon_days,),
            lead_days=lead_days,
            inactivity_days=churn.inactivity_days,
            grace_days=churn.grace_days,
        )

    @property
    def binary(self) -> bool:
        """Whether the label is 0/1 (``False`` for regression targets)."""
        return self.kind in BINARY_KINDS

    @property
    def columns(self) -> tuple[str, ...]:
        """The label column names, one per horizon, shortest first."""
        prefix = self.name or _DEFAULT_PREFIX[self.kind]
        return tuple(f"{prefix}_{h}d" for h in self.horizon_days)

    @property
    def settle_days(self) -> int:
        """Days past a window's end the data must reach before its label is known.

        A subscription period that ends just before the window closes may
        still be renewed up to ``grace_days`` later; until then it is neither
        churn nor not churn.
        """
        return self.grace_days if self.kind == "subscription" else 0

    def describe(self) -> str:
        """The label in plain words.

        Examples
        --------
        >>> LabelSpec("revenue", horizon_days=(30,), lead_days=7).describe()
        'revenue: the sum of succeeded payments in the 30 days starting 7 days after the cutoff'

        """
        horizons = " / ".join(str(h) for h in self.horizon_days)
        after = (
            f"the {horizons} days after the cutoff"
            if self.lead_days == 0
            else f"the {horizons} days starting {self.lead_days} days after the cutoff"
        )
        events = (
            "event" if self.event_types is None else "event of type " + ", ".join(self.event_types)
        )
        text = {
            "inactivity": f"churn by inactivity: no {events} in {after} (examples: accounts "
            f"with an {events} in the {self.inactivity_days} days before it)",
            "subscription": f"churn by subscription: the active period (renewals within "
            f"{self.grace_days} days continue it) ends in {after}",
            "adoption": "churn by adoption: the "
            + (f"{self.product!r} " if self.product else "")
            + f"adoption flag turns from enabled to disabled in {after}",
            "conversion": f"conversion: the first paid subscription (mrr > 0) starts in {after}",
            "activity": f"activity: the number of {events}s in {after}",
            "revenue": f"revenue: the sum of succeeded payments in {after}",
        }
        return text[self.kind]


def _days_tuple(value: int | Iterable[int]) -> tuple[int, ...]:
    items = (value,) if isinstance(value, int) else tuple(value)
    for item in items:
        if isinstance(item, bool) or not isinstance(item, int):
            raise LabelError(f"horizon_days must be whole days, got {value!r}")
    return items
