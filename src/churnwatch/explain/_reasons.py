"""Choosing each row's reasons: the features that raise its score most."""

# ruff: noqa: N803 -- X is scikit-learn's (and the contract's) name for a feature matrix
from __future__ import annotations

import gc
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from churnwatch.errors import ConfigError, ModelError
from churnwatch.explain._wording import _phraser
from churnwatch.features._spec import FeatureSpec

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
