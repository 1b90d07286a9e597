"""What every section of the project file shares: strict models, and a check for repeats."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict


class _Model(BaseModel):
    # Unknown keys are errors: a typo in the project file must not be ignored.
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


def repeated(names: Iterable[str]) -> list[str]:
    """The names that occur more than once, sorted.

    Examples
    --------
    >>> repeated(["a", "b", "a", "c", "b"])
    ['a', 'b']
    """
    return sorted(name for name, count in Counter(names).items() if count > 1)
