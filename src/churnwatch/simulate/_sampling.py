"""Vectorised sampling helpers shared by the simulator's stages.

Every stage of the simulator draws whole arrays at once (one numpy call per
quantity per block of accounts, never one per account or per event); these
helpers are the few patterns that recur: a categorical draw from shares, the
position of a row inside its group, and group offsets.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

__all__ = ["Bools", "Floats", "Ints", "draw_categories", "group_offsets", "rank_within_groups"]

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]


def draw_categories(rng: np.random.Generator, shares: Sequence[float], size: int) -> Ints:
    """Draw ``size`` category codes, code ``i`` with probability ``shares[i]``.

    Examples
    --------
    >>> codes = draw_categories(np.random.default_rng(0), (0.5, 0.5), 4)
    >>> sorted(set(codes.tolist())) <= [0, 1]
    True
    """
    cdf = np.cumsum(np.asarray(shares, dtype=np.float64))
    cdf /= cdf[-1]
    codes = np.searchsorted(cdf, rng.random(size), side="right")
    return np.minimum(codes, len(shares) - 1).astype(np.int64)


def rank_within_groups(groups: Ints) -> Ints:
    """Position of each row within its run of equal group ids (``groups`` sorted).

    Examples
    --------
    >>> rank_within_groups(np.array([0, 0, 2, 2, 2, 5])).tolist()
    [0, 1, 0, 1, 2, 0]
    """
    first = np.searchsorted(groups, groups, side="left")
    return np.arange(groups.size, dtype=np.int64) - first


def group_offsets(groups: Ints, n_groups: int) -> Ints:
    """Row where each group starts in ``groups`` (sorted), plus the total at the end.

    Examples
    --------
    >>> group_offsets(np.array([0, 0, 2]), 3).tolist()
    [0, 2, 2, 3]
    """
    counts = np.bincount(groups, minlength=n_groups).astype(np.int64)
    return np.concatenate((np.zeros(1, dtype=np.int64), np.cumsum(counts)))
