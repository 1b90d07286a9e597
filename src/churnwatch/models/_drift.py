"""Feature drift: has what a model sees today moved away from what it learned on?

A :class:`DriftProfile` records, for each feature, how the training rows
spread over a few bins; :func:`psi` spreads new rows over the same bins and
compares the two with the *population stability index*::

    PSI = sum over bins of (actual share - expected share) * ln(actual / expected)

Each term is >= 0 (the difference and the log always have the same sign), so
PSI is 0 when the shares match and grows with every bin that moved.

Bins
----
- **Numbers**: quantile bins of the training values, so each holds about the
  same share of the training rows and PSI weighs every part of the range
  alike. Edges are de-duplicated (a count that is 0 for half the accounts
  gives one bin ``(-inf, 0]`` rather than five empty ones), and the outer
  bins reach ``-inf`` and ``inf`` so no new value falls outside. Bins are
  closed on the right: ``(edge[i-1], edge[i]]``.
- **Text** (any non-numeric column): one bin per category holding at least
  ``min_share`` of the training rows; rarer categories and categories never
  seen in training share one ``"other"`` bin.
- **Missing values** get a bin of their own in both cases: a feature that
  suddenly goes missing for many accounts (a broken pipeline) is drift too.

Empty bins
----------
``ln(a / e)`` is undefined when a share is 0, which happens whenever a bin is
empty (no missing values in training, an unseen category today). Such a share
is counted as :data:`PSI_EPSILON` ``= 1e-4`` (one row in ten thousand): PSI stays
finite, and a bin that appears from nothing with share ``a`` adds about
``a * ln(a / 1e-4)`` -- 0.1 of the rows in a new bin gives about 0.69, which
reads as drift, as it should.

Status
------
The thresholds are the industry convention from credit scoring: below 0.1
the population is stable (``"ok"``), from 0.1 to 0.25 it moved somewhat
(``"watch"``), above 0.25 it shifted enough to question the model
(``"drift"``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from churnwatch.errors import ConfigError, ModelError

__all__ = [
    "OTHER",
    "PSI_DRIFT",
    "PSI_EPSILON",
    "PSI_WATCH",
    "DriftProfile",
    "DriftStatus",
    "FeatureProfile",
    "drift_status",
    "psi",
    "stability_index",
]

DriftStatus = Literal["ok", "watch", "drift"]

#: Share given to an empty bin, so that ``ln(actual / expected)`` stays finite.
PSI_EPSILON = 1e-4
#: PSI from which a feature is worth watching (industry convention).
PSI_WATCH = 0.1
#: PSI above which a feature has drifted (industry convention).
PSI_DRIFT = 0.25
#: Label of the bin holding rare and unseen categories.
OTHER = "other"

_FloatArray = npt.NDArray[np.float64]


def stability_index(expected: npt.ArrayLike, actual: npt.ArrayLike) -> float:
    """The population stability index of two share vectors over the same bins.

    Shares of 0 count as :data:`PSI_EPSILON`.

    Parameters
    ----------
    expected : array-like of float
        Share of the training rows in each bin (summing to 1).
    actual : array-like of float
        Share of the new rows in the same bins.

    Returns
    -------
    float
        ``sum((actual - expected) * ln(actual / expected))``, >= 0.

    Raises
    ------
    ModelError
        If the two vectors have different lengths.

    Examples
    --------
    >>> round(stability_index([0.5, 0.5], [0.75, 0.25]), 6)  # 0.25 * ln 3
    0.274653
    >>> stability_index([0.2, 0.8], [0.2, 0.8])
    0.0
    """
    e = np.asarray(expected, dtype=float)
    a = np.asarray(actual, dtype=float)
    if e.shape != a.shape:
        raise ModelError(
            f"cannot compare {e.size} expected shares with {a.size} actual ones: "
            "both must be over the same bins"
        )
    e = np.where(e > 0, e, PSI_EPSILON)
    a = np.where(a > 0, a, PSI_EPSILON)
    return float(np.sum((a - e) * np.log(a / e)))


def drift_status(value: float) -> DriftStatus:
    """``"ok"`` below 0.1, ``"watch"`` up to 0.25, ``"drift"`` above.

    Examples
    --------
    >>> drift_status(0.05), drift_status(0.1), drift_status(0.25), drift_status(0.3)
    ('ok', 'watch', 'watch', 'drift')
    """
    if value > PSI_DRIFT:
        return "drift"
    if value >= PSI_WATCH:
        return "watch"
    return "ok"


@dataclass(frozen=True)
class FeatureProfile:
    """How one feature's training values spread over its bins.

    Parameters
    ----------
    feature : str
        Column name.
    kind : {"numeric", "categorical"}
        How the bins are made.
    shares : tuple of float
        Training share of each bin, in the order of :attr:`labels`: for a
        number the ``len(edges) + 1`` value bins then the missing bin; for
        text the kept categories, then ``"other"``, then the missing bin.
    edges : tuple of float
        Numbers only: inner bin edges, increasing and unique.
    categories : tuple of str
        Text only: the categories kept as bins of their own.

    Examples
    --------
    >>> profile = FeatureProfile("mrr", "numeric", (0.5, 0.5, 0.0), edges=(10.0,))
    >>> profile.labels
    ['(-inf, 10]', '(10, inf)', 'missing']
    """

    feature: str
    kind: Literal["numeric", "categorical"]
    shares: tuple[float, ...]
    edges: tuple[float, ...] = ()
    categories: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in ("numeric", "categorical"):
            raise ModelError(
                f"drift profile of {self.feature!r}: kind must be 'numeric' or "
                f"'categorical', not {self.kind!r}"
            )
        # Value bins (or kept categories + "other"), then the missing bin.
        expected = len(self.edges) + 2 if self.kind == "numeric" else len(self.categories) + 2
        if len(self.shares) != expected:
            raise ModelError(
                f"drift profile of {self.feature!r}: {len(self.shares)} shares for "
                f"{expected} bins; the profile is damaged, fit it again"
            )
        if any(b <= a for a, b in itertools.pairwise(self.edges)):
            raise ModelError(
                f"drift profile of {self.feature!r}: bin edges must increase; "
                "the profile is damaged, fit it again"
            )

    @property
    def labels(self) -> list[str]:
        """A readable name for each bin, in the order of :attr:`shares`."""
        if self.kind == "categorical":
            return [*self.categories, OTHER, "missing"]
        bounds = [-math.inf, *self.edges, math.inf]
        value_bins = [
            f"({_number(lo)}, {_number(hi)}{')' if math.isinf(hi) else ']'}"
            for lo, hi in itertools.pairwise(bounds)
        ]
        return [*value_bins, "missing"]

    def shares_of(self, values: pd.Series) -> _FloatArray:
        """The share of ``values`` in each bin (empty bins give 0, not epsilon).

        Raises
        ------
        ModelError
            If the values are empty, or text where numbers were profiled.
        """
        if len(values) == 0:
            raise ModelError(f"no rows to compare feature {self.feature!r} with its profile")
        if self.kind == "numeric":
            return _numeric_shares(self.feature, values, np.asarray(self.edges, dtype=float))
        return _categorical_shares(values, self.categories)


@dataclass(frozen=True)
class DriftProfile:
    """The training distribution of each feature, for :func:`psi`.

    Build it with :meth:`fit`; store it with :meth:`to_dict` (plain JSON
    types, so a model card can hold it) and read it back with
    :meth:`from_dict`.

    Parameters
    ----------
    features : tuple of FeatureProfile
        One profile per feature, in column order.
    bins : int
        Number of quantile bins asked for numbers (fewer remain when values
        tie).
    min_share : float
        Share below which a training category is folded into ``"other"``.

    Examples
    --------
    >>> import pandas as pd
    >>> train = pd.DataFrame({"logins": [0, 0, 1, 2, 3, 5], "plan": list("aabbbc")})
    >>> profile = DriftProfile.fit(train, ["logins", "plan"], bins=2, min_share=0.2)
    >>> profile.features[0].edges, profile.features[1].categories
    ((1.5,), ('a', 'b'))
    >>> DriftProfile.from_dict(profile.to_dict()) == profile
    True
    """

    features: tuple[FeatureProfile, ...]
    bins: int = 10
    min_share: float = 0.01

    @classmethod
    def fit(
        cls,
        X: pd.DataFrame,
        features: Sequence[str],
        bins: int = 10,
        *,
        min_share: float = 0.01,
    ) -> DriftProfile:
        """Profile the training rows ``X`` of each feature.

        Parameters
        ----------
        X : pandas.DataFrame
            Training rows.
        features : sequence of str
            Columns to profile; a column is text (categorical) when it is not
            numeric.
        bins : int
            Quantile bins per number, 2 to 100.
        min_share : float
            Categories holding less than this share of the rows (0 to 0.5)
            are folded into ``"other"``; with the default a column of unique
            names becomes one ``"other"`` bin rather than thousands.

        Returns
        -------
        DriftProfile

        Raises
        ------
        ConfigError
            If ``bins`` or ``min_share`` is out of range.
        ModelError
            If ``X`` has no rows or lacks a feature.
        """
        if isinstance(bins, bool) or not isinstance(bins, int) or not 2 <= bins <= 100:
            raise ConfigError(f"drift bins must be a whole number in 2..100, not {bins!r}")
        if not 0 <= min_share <= 0.5:
            raise ConfigError(f"drift min_share must be in 0..0.5, not {min_share!r}")
        if len(set(features)) != len(features):
            raise ModelError("each feature may be profiled once; the list repeats a name")
        _require_columns(X, features, "profile")
        if len(X) == 0:
            raise ModelError("cannot profile features on a frame with no rows")
        profiles = []
        for name in features:
            column = X[name]
            if pd.api.types.is_numeric_dtype(column):
                values = _as_float(name, column)
                finite = values[np.isfinite(values)]
                if finite.size:
                    # Edges at the inner quantiles of the finite values: each bin
                    # holds ~1/bins of the rows; ties collapse into one edge.
                    quantiles = np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1])
                    edges = np.unique(quantiles)
                else:
                    edges = np.array([], dtype=float)
                shares = _numeric_shares(name, column, edges)
                profiles.append(
                    FeatureProfile(
                        name,
                        "numeric",
                        _tuple(shares),
                        edges=tuple(float(e) for e in edges),
                    )
                )
            else:
                counts = _text(column).value_counts(dropna=True)
                kept = counts[counts / len(column) >= min_share]
                # Sorted by name so the profile does not depend on row order.
                categories = tuple(sorted(str(c) for c in kept.index))
                shares = _categorical_shares(column, categories)
                profiles.append(
                    FeatureProfile(name, "categorical", _tuple(shares), categories=categories)
                )
        return cls(tuple(profiles), bins=bins, min_share=float(min_share))

    @property
    def names(self) -> list[str]:
        """The profiled features, in order."""
        return [p.feature for p in self.features]

    def to_dict(self) -> dict[str, Any]:
        """The profile as JSON-ready types (lists, str, float, int)."""
        return {
            "bins": self.bins,
            "min_share": self.min_share,
            "features": [
                {
                    "feature": p.feature,
                    "kind": p.kind,
                    "shares": list(p.shares),
                    "edges": list(p.edges),
                    "categories": list(p.categories),
                }
                for p in self.features
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriftProfile:
        """Read a profile written by :meth:`to_dict`.

        Raises
        ------
        ModelError
            If a key is missing or the bins do not fit together.
        """
        try:
            profiles = tuple(
                FeatureProfile(
                    feature=str(item["feature"]),
                    kind=item["kind"],
                    shares=tuple(float(s) for s in item["shares"]),
                    edges=tuple(float(e) for e in item.get("edges", ())),
                    categories=tuple(str(c) for c in item.get("categories", ())),
                )
                for item in data["features"]
            )
            return cls(profiles, bins=int(data["bins"]), min_share=float(data["min_share"]))
        except (KeyError, TypeError, ValueError) as error:
            raise ModelError(
                f"cannot read the drift profile ({type(error).__name__}: {error}); "
                "it was not written by DriftProfile.to_dict -- fit it again"
            ) from error


def psi(profile: DriftProfile, X_new: pd.DataFrame) -> pd.DataFrame:
    """Population stability index of each profiled feature on new rows.

    Parameters
    ----------
    profile : DriftProfile
        The training distributions.
    X_new : pandas.DataFrame
        The rows scored now; other columns are ignored.

    Returns
    -------
    pandas.DataFrame
        ``feature``, ``psi`` and ``status`` (``ok`` < 0.1 <= ``watch`` <= 0.25
        < ``drift``), one row per feature in profile order.

    Raises
    ------
    ModelError
        If ``X_new`` has no rows or lacks a profiled feature.

    Examples
    --------
    >>> import pandas as pd
    >>> train = pd.DataFrame({"logins": [1, 1, 2, 2]})
    >>> profile = DriftProfile.fit(train, ["logins"], bins=2)
    >>> psi(profile, pd.DataFrame({"logins": [1, 1, 1, 2]})).round(4)
      feature     psi status
    0  logins  0.2747  drift
    """
    _require_columns(X_new, profile.names, "check for drift")
    if len(X_new) == 0:
        raise ModelError("cannot check drift on a frame with no rows")
    values = [stability_index(p.shares, p.shares_of(X_new[p.feature])) for p in profile.features]
    return pd.DataFrame(
        {
            "feature": pd.Series(profile.names, dtype=object),
            "psi": pd.Series(values, dtype=float),
            "status": pd.Series([drift_status(v) for v in values], dtype=object),
        }
    )


def _numeric_shares(name: str, column: pd.Series, edges: _FloatArray) -> _FloatArray:
    values = _as_float(name, column)
    missing = np.isnan(values)
    # side="left" puts a value equal to an edge in the bin that edge closes:
    # bins are (edge[i-1], edge[i]], so the tied values of a quantile stay together.
    index = np.searchsorted(edges, values[~missing], side="left")
    counts = np.bincount(index, minlength=edges.size + 1).astype(float)
    return np.append(counts, float(missing.sum())) / values.size


def _categorical_shares(column: pd.Series, categories: Sequence[str]) -> _FloatArray:
    text = _text(column)
    missing = text.isna().to_numpy()
    # Codes follow ``categories``; rare and unseen categories get -1, as do
    # missing values, which are counted apart below.
    codes = pd.Index(list(categories), dtype=object).get_indexer(pd.Index(text, dtype=object))
    index = np.where(codes < 0, len(categories), codes)[~missing]
    counts = np.bincount(index, minlength=len(categories) + 1).astype(float)
    return np.append(counts, float(missing.sum())) / len(text)


def _as_float(name: str, column: pd.Series) -> _FloatArray:
    try:
        return np.asarray(column.to_numpy(dtype=float, na_value=np.nan), dtype=float)
    except (TypeError, ValueError) as error:
        raise ModelError(
            f"feature {name!r} was numeric in training but holds text now ({error}); "
            "check how the feature is computed"
        ) from error


def _text(column: pd.Series) -> pd.Series:
    # Categories are compared as text so a profile survives a JSON round trip.
    return column.astype(object).where(column.notna()).map(str, na_action="ignore")


def _tuple(shares: Iterable[float]) -> tuple[float, ...]:
    return tuple(float(s) for s in shares)


def _number(value: float) -> str:
    return "inf" if value == math.inf else "-inf" if value == -math.inf else f"{value:g}"


def _require_columns(frame: pd.DataFrame, features: Iterable[str], what: str) -> None:
    missing = [f for f in features if f not in frame.columns]
    if missing:
        raise ModelError(
            f"cannot {what}: the frame lacks feature(s) {', '.join(missing)}; compute them first"
        )
