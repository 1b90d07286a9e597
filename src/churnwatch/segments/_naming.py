"""Names of segments, read from their profiles by a rule table.

A segment's **profile** says, on each interpretable axis, how far its
centroid lies from the population: ``(segment axis score - population mean)
/ population standard deviation``. The axes are

============  ==================================================  ===============
axis          from                                                higher means
============  ==================================================  ===============
activity      events and active days in 30 days, weekly habit     more use
recency       days since the last event                           longer gone
trend         change of events, last 30 days against the 30 before  growing
tenure        days since signup                                   older account
lifetime      events ever                                         more history
breadth       event types used in 90 days                         wider use
payments      failed payments in 90 days                          more failures
============  ==================================================  ===============

:data:`NAMING_RULES` is read top to bottom and the first rule whose every
condition holds names the segment; a condition on an axis the data lacks
does not hold. Two segments given one name are told apart in canonical
order: ``Fading``, ``Fading (2)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["AXES", "NAMING_RULES", "NamingRule", "name_segments"]

#: The interpretable axes, in the order profiles show them.
AXES: tuple[str, ...] = (
    "activity",
    "recency",
    "trend",
    "tenure",
    "lifetime",
    "breadth",
    "payments",
)


@dataclass(frozen=True)
class NamingRule:
    """A name and the profile conditions that earn it.

    Parameters
    ----------
    name : str
        The segment's name.
    above : mapping of str to float
        Axis -> the profile must be at least this (standard deviations).
    below : mapping of str to float
        Axis -> the profile must be at most this.

    Examples
    --------
    >>> rule = NamingRule("Fading", below={"trend": -0.5})
    >>> rule.matches({"trend": -0.8}), rule.matches({"trend": 0.1}), rule.matches({})
    (True, False, False)
    """

    name: str
    above: Mapping[str, float] | None = None
    below: Mapping[str, float] | None = None

    def matches(self, profile: Mapping[str, float]) -> bool:
        """Whether every condition holds (an axis the profile lacks holds none)."""
        for axis, bound in (self.above or {}).items():
            value = profile.get(axis)
            if value is None or not np.isfinite(value) or value < bound:
                return False
        for axis, bound in (self.below or {}).items():
            value = profile.get(axis)
            if value is None or not np.isfinite(value) or value > bound:
                return False
        return True


#: The rule table, most specific first; the last rule always matches.
NAMING_RULES: tuple[NamingRule, ...] = (
    NamingRule("Payment trouble", above={"payments": 0.75}),
    # Little use ever and none lately; little use ever but recent is a new account.
    NamingRule("One-and-done", above={"recency": 0.25}, below={"activity": -0.5, "lifetime": -0.5}),
    NamingRule("Dormant", above={"recency": 0.75}, below={"activity": -0.5}),
    NamingRule("New and exploring", below={"tenure": -0.75}),
    NamingRule("Fading", below={"trend": -0.5}),
    NamingRule("Power users", above={"activity": 0.5}),
    NamingRule("Casual", below={"activity": -0.25}),
    NamingRule("Steady"),
)


def name_segments(
    profiles: Sequence[Mapping[str, float]],
    rules: Sequence[NamingRule] = NAMING_RULES,
    taken: Sequence[str] = (),
) -> list[str]:
    """Name each profile by the first rule it matches; repeated names get a number.

    Parameters
    ----------
    profiles : sequence of mapping of str to float
        One profile per segment, in canonical order.
    rules : sequence of NamingRule
        The rule table; a profile matching none is called "Segment".
    taken : sequence of str
        Names already used (segments kept from an earlier run).

    Examples
    --------
    >>> name_segments([{"activity": 1.2}, {"trend": -0.9}, {"trend": -0.7}, {}])
    ['Power users', 'Fading', 'Fading (2)', 'Steady']
    """
    used = set(taken)
    names = []
    for profile in profiles:
        base = next((r.name for r in rules if r.matches(profile)), "Segment")
        name, n = base, 1
        while name in used:
            n += 1
            name = f"{base} ({n})"
        used.add(name)
        names.append(name)
    return names
