"""How good a churn model is: ranking, probability quality and targeting value.

A churn model is judged on three questions, and :func:`binary_metrics`
answers each:

- **Does it rank?** ``roc_auc`` (the chance a random churner scores above a
  random stayer) and ``pr_auc`` (average precision, which weighs the top of
  the list and so suits rare churn).
- **Are its probabilities true?** ``log_loss`` and ``brier`` (proper scoring
  rules) and ``ece``, the expected calibration error: in ten equal-width
  bins of predicted probability, the gap between the mean prediction and the
  observed churn rate, weighted by the bin's share of rows.
- **Is it worth acting on?** ``lift_top10`` (how many times the base churn
  rate the top 10% by score hold) and ``recall_top10`` (the share of all
  churners they hold): what a retention team contacting one account in ten
  would gain.

Ranking and probability metrics come from scikit-learn; the top-share and
calibration metrics are computed here, so that their two subtle choices are
written down once:

- **Ties at the top-share boundary** are split in proportion: when the
  ``k``-th highest score is shared by ``m`` rows of which only ``r`` fit in
  the top ``k``, each tied row counts ``r / m``. This is the expected value
  under a random tie-break, so the result never depends on row order, and a
  constant score has a lift of exactly 1.
- **Calibration bins** are ``[i / bins, (i + 1) / bins)`` found as
  ``floor(p * bins)`` (a probability of exactly 1 goes to the last bin), so
  a prediction of exactly 0.3 lies in the bin starting at 0.3.

A metric that is undefined for the data (ROC AUC with a single class, lift
with no churner) is NaN rather than a warning or an error, so a backtest
fold that happens to hold no churner still reports its other metrics.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.metrics import (  # type: ignore[import-untyped, unused-ignore]
    average_precision_score,
    brier_score_loss,
    log_loss,
    roc_auc_score,
)

from churnwatch.errors import ModelError

__all__ = [
    "BINARY_METRICS",
    "REGRESSION_METRICS",
    "binary_metrics",
    "expected_calibration_error",
    "gains_table",
    "regression_metrics",
    "reliability_table",
    "top_share_rates",
]

#: The keys :func:`binary_metrics` returns, in order.
BINARY_METRICS = (
    "roc_auc",
    "pr_auc",
    "log_loss",
    "brier",
    "lift_top10",
    "recall_top10",
    "ece",
    "n",
    "positives",
    "base_rate",
)

#: The keys :func:`regression_metrics` returns, in order.
REGRESSION_METRICS = ("mae", "rmse", "r2", "n")

_FloatArray = npt.NDArray[np.float64]


def _outcomes(y_true: npt.ArrayLike, name: str = "y_true") -> _FloatArray:
    """``y_true`` as a float array of 0/1, or a :class:`ModelError` saying what is wrong."""
    values = np.asarray(y_true, dtype=float).ravel()
    if values.size == 0:
        raise ModelError(f"{name} is empty: metrics need at least one labelled row.")
    bad = ~np.isin(values, (0.0, 1.0))
    if bad.any():
        example = values[bad][0]
        raise ModelError(
            f"{name} must hold only 0 and 1 (drop rows whose label is unknown first); "
            f"found {example!r} in {int(bad.sum())} row(s)."
        )
    return values


def _scores(p: npt.ArrayLike, n: int, *, probabilities: bool, name: str = "p") -> _FloatArray:
    """``p`` as a finite float array of length ``n``; in [0, 1] when ``probabilities``."""
    values = np.asarray(p, dtype=float).ravel()
    if values.size != n:
        raise ModelError(f"{name} has {values.size} values but y_true has {n}: they must match.")
    if not np.isfinite(values).all():
        raise ModelError(
            f"{name} holds {int((~np.isfinite(values)).sum())} NaN or infinite value(s); "
            "every row needs a finite score."
        )
    if probabilities and ((values < 0.0) | (values > 1.0)).any():
        raise ModelError(
            f"{name} must be probabilities in [0, 1]; found values from {values.min():g} to "
            f"{values.max():g}. Pass probabilities=False for a score that only ranks."
        )
    return values


def _top_count(n: int, share: float) -> int:
    """Rows in the top ``share`` of ``n``: ``ceil(share * n)``, at least 1.

    Rounded to 9 decimals first because ``0.07 * 100`` is ``7.000000000000001``
    in floating point, and the top 7% of 100 rows is 7 rows, not 8.
    """
    return max(1, math.ceil(round(share * n, 9)))


def _positives_in_top(y: _FloatArray, p: _FloatArray, k: int) -> float:
    """Expected churners among the ``k`` highest scores, tied rows sharing the last slots."""
    threshold = np.sort(p)[::-1][k - 1]
    above = p > threshold
    tied = p == threshold
    slots = k - int(above.sum())
    # Each tied row takes a slot with probability slots / tied.sum() under a random
    # tie-break; summing that over the tied churners gives the expected count.
    return float(y[above].sum() + slots * y[tied].sum() / tied.sum())


def top_share_rates(
    y_true: npt.ArrayLike, p: npt.ArrayLike, share: float = 0.1
) -> tuple[float, float]:
    """Lift and recall of the top ``share`` of rows by score.

    The top share holds ``ceil(share * n)`` rows (at least one). Rows tied
    with the last one in are counted in proportion (see the module notes), so
    the result does not depend on row order.

    Parameters
    ----------
    y_true : array-like of 0/1
        Observed outcomes.
    p : array-like of float
        Scores; larger means riskier. Need not be probabilities.
    share : float, default 0.1
        The share of rows contacted, in (0, 1].

    Returns
    -------
    lift : float
        Churn rate in the top share divided by the overall churn rate
        (NaN when there is no churner).
    recall : float
        Share of all churners that are in the top share (NaN when there is
        no churner).

    Examples
    --------
    >>> y = [1, 0, 1, 0, 0, 0, 0, 0, 0, 0]
    >>> p = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0]
    >>> top_share_rates(y, p, share=0.2)  # top 2 rows hold 1 of 2 churners
    (2.5, 0.5)
    >>> top_share_rates(y, [0.5] * 10, share=0.2)  # a constant score has no lift
    (1.0, 0.2)
    """
    if not 0.0 < share <= 1.0:
        raise ModelError(f"share must be in (0, 1]; got {share!r}.")
    y = _outcomes(y_true)
    scores = _scores(p, y.size, probabilities=False)
    positives = float(y.sum())
    if positives == 0.0:
        return math.nan, math.nan
    k = _top_count(y.size, share)
    caught = _positives_in_top(y, scores, k)
    return (caught / k) / (positives / y.size), caught / positives


def _bin_of(p: _FloatArray, bins: int) -> npt.NDArray[np.intp]:
    # floor(p * bins) rather than searchsorted on linspace edges: linspace(0, 1, 11)[3]
    # is 0.30000000000000004, which would put a prediction of exactly 0.3 a bin too low.
    return np.minimum(np.floor(p * bins).astype(np.intp), bins - 1)


def reliability_table(y_true: npt.ArrayLike, p: npt.ArrayLike, bins: int = 10) -> pd.DataFrame:
    """Mean prediction against observed churn rate in equal-width probability bins.

    Parameters
    ----------
    y_true : array-like of 0/1
        Observed outcomes.
    p : array-like of float in [0, 1]
        Predicted probabilities.
    bins : int, default 10
        Number of equal-width bins over [0, 1].

    Returns
    -------
    pandas.DataFrame
        One row per bin, empty bins included (with ``n`` 0 and NaN means):
        ``bin`` (0-based), ``lower``, ``upper``, ``n``, ``mean_predicted``,
        ``observed_rate``. Bin ``i`` holds ``lower <= p < upper``; the last
        bin also holds ``p == 1``.

    Examples
    --------
    >>> table = reliability_table([0, 1, 1, 1], [0.1, 0.2, 0.8, 0.9], bins=2)
    >>> table[["bin", "lower", "upper", "n", "mean_predicted", "observed_rate"]]
       bin  lower  upper  n  mean_predicted  observed_rate
    0    0    0.0    0.5  2            0.15            0.5
    1    1    0.5    1.0  2            0.85            1.0
    """
    if bins < 1:
        raise ModelError(f"bins must be at least 1; got {bins!r}.")
    y = _outcomes(y_true)
    scores = _scores(p, y.size, probabilities=True)
    which = _bin_of(scores, bins)
    counts = np.bincount(which, minlength=bins)
    predicted = np.bincount(which, weights=scores, minlength=bins)
    observed = np.bincount(which, weights=y, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_predicted = np.where(counts > 0, predicted / counts, np.nan)
        observed_rate = np.where(counts > 0, observed / counts, np.nan)
    edges = np.arange(bins + 1) / bins
    return pd.DataFrame(
        {
            "bin": np.arange(bins, dtype=np.int64),
            "lower": edges[:-1],
            "upper": edges[1:],
            "n": counts.astype(np.int64),
            "mean_predicted": mean_predicted,
            "observed_rate": observed_rate,
        }
    )


def expected_calibration_error(y_true: npt.ArrayLike, p: npt.ArrayLike, bins: int = 10) -> float:
    """Expected calibration error over equal-width bins, weighted by bin count.

    ``ECE = sum over bins of (n_b / n) * |mean_predicted_b - observed_rate_b|``;
    0 for a model whose every bin is right on average, at most 1.

    Examples
    --------
    >>> ece = expected_calibration_error([0, 1, 1, 1], [0.1, 0.2, 0.8, 0.9], bins=2)
    >>> round(ece, 6)  # half the rows off by 0.35, half by 0.15
    0.25
    """
    table = reliability_table(y_true, p, bins)
    filled = table.loc[table["n"] > 0]
    gaps = (filled["mean_predicted"] - filled["observed_rate"]).abs().to_numpy()
    weights = filled["n"].to_numpy(dtype=float)
    return float(np.dot(weights, gaps) / weights.sum())


def binary_metrics(
    y_true: npt.ArrayLike, p: npt.ArrayLike, *, probabilities: bool = True
) -> dict[str, float]:
    """Ranking, probability and targeting metrics of churn scores.

    Parameters
    ----------
    y_true : array-like of 0/1
        Observed outcomes; unknown (NaN) labels must be dropped first.
    p : array-like of float
        Predicted churn probabilities, or any risk score (larger = riskier)
        when ``probabilities`` is False.
    probabilities : bool, default True
        When False (a baseline score such as days since last login), the
        metrics that need probabilities (``log_loss``, ``brier``, ``ece``)
        are NaN and ``p`` may be any finite number.

    Returns
    -------
    dict of str to float
        The keys of :data:`BINARY_METRICS`: ``roc_auc``, ``pr_auc``,
        ``log_loss``, ``brier``, ``lift_top10``, ``recall_top10``, ``ece``,
        ``n``, ``positives``, ``base_rate``. ROC and PR AUC are NaN when only
        one class is present; lift and recall when there is no churner.

    Raises
    ------
    ModelError
        When ``y_true`` is empty or not 0/1, the lengths differ, a score is
        not finite, or a probability lies outside [0, 1].

    Examples
    --------
    >>> m = binary_metrics([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    >>> m["roc_auc"], m["positives"], m["base_rate"]
    (0.75, 2.0, 0.5)
    >>> round(m["brier"], 6)  # mean of 0.1², 0.4², 0.65², 0.2²
    0.158125
    >>> import math
    >>> math.isnan(binary_metrics([0, 1], [3.0, 7.0], probabilities=False)["log_loss"])
    True
    """
    y = _outcomes(y_true)
    scores = _scores(p, y.size, probabilities=probabilities)
    n = y.size
    positives = float(y.sum())
    both_classes = 0.0 < positives < n
    nan = math.nan
    lift, recall = top_share_rates(y, scores, 0.1) if positives > 0 else (nan, nan)
    return {
        # scikit-learn warns (an error under strict settings) and returns NaN on a
        # single class; asking first keeps a no-churner fold quiet and explicit.
        "roc_auc": float(roc_auc_score(y, scores)) if both_classes else nan,
        "pr_auc": float(average_precision_score(y, scores)) if both_classes else nan,
        "log_loss": float(log_loss(y, scores, labels=[0.0, 1.0])) if probabilities else nan,
        "brier": float(brier_score_loss(y, scores, pos_label=1.0)) if probabilities else nan,
        "lift_top10": lift,
        "recall_top10": recall,
        "ece": expected_calibration_error(y, scores) if probabilities else nan,
        "n": float(n),
        "positives": positives,
        "base_rate": positives / n,
    }


def gains_table(y_true: npt.ArrayLike, p: npt.ArrayLike, points: int = 100) -> pd.DataFrame:
    """Cumulative gains and lift at evenly spaced shares of rows contacted.

    Parameters
    ----------
    y_true : array-like of 0/1
        Observed outcomes; at least one churner.
    p : array-like of float
        Scores; larger means riskier.
    points : int, default 100
        Number of shares, ``1 / points, 2 / points, ..., 1``.

    Returns
    -------
    pandas.DataFrame
        ``share`` (rows contacted), ``recall`` (churners caught, the gain)
        and ``lift``, with the same tie rule as :func:`top_share_rates`.

    Examples
    --------
    >>> gains_table([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1], points=4).round(3)
       share  recall   lift
    0   0.25     0.5  2.000
    1   0.50     0.5  1.000
    2   0.75     1.0  1.333
    3   1.00     1.0  1.000
    """
    if points < 1:
        raise ModelError(f"points must be at least 1; got {points!r}.")
    y = _outcomes(y_true)
    scores = _scores(p, y.size, probabilities=False)
    positives = float(y.sum())
    if positives == 0.0:
        raise ModelError("A gains table needs at least one churner in y_true.")
    shares = np.arange(1, points + 1) / points
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_y = scores[order], y[order]
    # One pass instead of re-sorting per share: for the k-th row, the rows strictly
    # above its score and the tied block around it come from the sorted array.
    cumulative = np.concatenate(([0.0], np.cumsum(sorted_y)))
    recall = np.empty(points)
    lift = np.empty(points)
    base_rate = positives / y.size
    for i, share in enumerate(shares):
        k = _top_count(y.size, float(share))
        threshold = sorted_scores[k - 1]
        first = int(np.searchsorted(-sorted_scores, -threshold, side="left"))
        last = int(np.searchsorted(-sorted_scores, -threshold, side="right"))
        tied_positives = cumulative[last] - cumulative[first]
        caught = cumulative[first] + (k - first) * tied_positives / (last - first)
        recall[i] = caught / positives
        lift[i] = (caught / k) / base_rate
    return pd.DataFrame({"share": shares, "recall": recall, "lift": lift})


def regression_metrics(y_true: npt.ArrayLike, predicted: npt.ArrayLike) -> dict[str, float]:
    """Mean absolute error, root mean squared error, R² and row count.

    Parameters
    ----------
    y_true : array-like of float
        Observed values; unknown (NaN) values must be dropped first.
    predicted : array-like of float
        Predictions.

    Returns
    -------
    dict of str to float
        The keys of :data:`REGRESSION_METRICS`: ``mae``, ``rmse``, ``r2``
        (NaN when ``y_true`` is constant, since no variance is there to
        explain) and ``n``.

    Examples
    --------
    >>> metrics = regression_metrics([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 6.0])
    >>> {name: round(value, 6) for name, value in metrics.items()}
    {'mae': 0.5, 'rmse': 1.0, 'r2': 0.2, 'n': 4.0}
    """
    y = np.asarray(y_true, dtype=float).ravel()
    if y.size == 0:
        raise ModelError("y_true is empty: metrics need at least one row with a known target.")
    if not np.isfinite(y).all():
        raise ModelError("y_true holds NaN or infinite values; drop rows with an unknown target.")
    pred = _scores(predicted, y.size, probabilities=False, name="predicted")
    errors = pred - y
    total = float(np.sum((y - y.mean()) ** 2))
    return {
        "mae": float(np.mean(np.abs(errors))),
        "rmse": float(np.sqrt(np.mean(errors**2))),
        "r2": 1.0 - float(np.sum(errors**2)) / total if total > 0.0 else math.nan,
        "n": float(y.size),
    }


def rounded(table: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    """``table`` with its float columns rounded for display (dates and text untouched)."""
    floats = [c for c in table.columns if pd.api.types.is_float_dtype(table[c])]
    return table.round(dict.fromkeys(floats, digits))
