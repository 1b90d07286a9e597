"""Global views of a model: typical values, importance, partial dependence and ICE."""

# ruff: noqa: N803 -- X is scikit-learn's (and the contract's) name for a feature matrix
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from churnwatch.errors import ConfigError, ModelError
from churnwatch.explain._reasons import _check_contributions


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
