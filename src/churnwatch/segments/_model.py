"""The segmentation model: behaviour features, scaling, a Gaussian mixture chosen by BIC.

Stability is designed in, not hoped for:

- rows are put in a canonical order (by account and cutoff) before
  anything random happens, so a shuffled frame gives the same fit;
- every random choice takes ``random_state`` (fit sample, k-means
  initialisations of each of the ``n_init`` restarts);
- components are numbered in a canonical order of their centroids
  (most active first), so the same data gives the same ids and names;
- given an earlier run's profiles, new components are matched to the old
  segments by the Hungarian algorithm on their profiles and keep their ids
  and names.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.optimize import linear_sum_assignment  # type: ignore[import-untyped, unused-ignore]
from sklearn.decomposition import PCA  # type: ignore[import-untyped, unused-ignore]
from sklearn.exceptions import ConvergenceWarning  # type: ignore[import-untyped, unused-ignore]
from sklearn.mixture import GaussianMixture  # type: ignore[import-untyped, unused-ignore]
from sklearn.preprocessing import RobustScaler  # type: ignore[import-untyped, unused-ignore]
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped, unused-ignore]

from churnwatch.errors import AnalysisError
from churnwatch.segments._naming import AXES, NAMING_RULES, NamingRule, name_segments

__all__ = ["DEFAULT_BEHAVIOUR", "BehaviourFeature", "SegmentModel"]

_FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class BehaviourFeature:
    """A feature the segments are fitted on, the axis it speaks to, and its transform.

    Parameters
    ----------
    name : str
        The feature column.
    axis : str
        One of :data:`AXES`; higher values mean more of the axis.
    transform : {"log1p", "signed_log1p", "identity"}
        ``log1p`` for counts and durations (heavy right tails), ``signed_log1p``
        for differences, ``identity`` for shares.

    Examples
    --------
    >>> BehaviourFeature("events_trend_diff_30d", "trend", "signed_log1p").apply(
    ...     np.array([-np.e + 1, 0.0, np.e - 1])).round(6).tolist()
    [-1.0, 0.0, 1.0]
    """

    name: str
    axis: str
    transform: str = "log1p"

    def __post_init__(self) -> None:
        if self.axis not in AXES:
            raise AnalysisError(
                f"behaviour feature {self.name!r}: axis must be one of {', '.join(AXES)}, "
                f"not {self.axis!r}"
            )
        if self.transform not in ("log1p", "signed_log1p", "identity"):
            raise AnalysisError(
                f"behaviour feature {self.name!r}: transform must be log1p, signed_log1p or "
                f"identity, not {self.transform!r}"
            )

    def apply(self, values: _FloatArray) -> _FloatArray:
        """The transformed values (NaN stays NaN)."""
        if self.transform == "log1p":
            out: _FloatArray = np.log1p(np.clip(values, 0.0, None))
            return out
        if self.transform == "signed_log1p":
            signed: _FloatArray = np.sign(values) * np.log1p(np.abs(values))
            return signed
        return values


#: Behaviour features of the default feature set, by axis. ``event_types_used_90d``
#: is derived from the per-type counts (see :func:`churnwatch.segments.segment_accounts`).
DEFAULT_BEHAVIOUR: tuple[BehaviourFeature, ...] = (
    BehaviourFeature("events_30d", "activity"),
    BehaviourFeature("active_days_30d", "activity"),
    BehaviourFeature("weekly_consistency_8w", "activity", "identity"),
    BehaviourFeature("days_since_last_event", "recency"),
    BehaviourFeature("events_trend_diff_30d", "trend", "signed_log1p"),
    BehaviourFeature("tenure_days", "tenure"),
    BehaviourFeature("events_all", "lifetime"),
    BehaviourFeature("event_types_used_90d", "breadth", "identity"),
    BehaviourFeature("failed_payments_90d", "payments"),
)

_KEYS = ("account_id", "cutoff")


class SegmentModel:
    """Gaussian mixture segments of accounts, the number chosen by BIC, named from profiles.

    Follows the scikit-learn contract: parameters are stored, ``fit``
    learns, learned state ends in ``_``.

    Parameters
    ----------
    features : sequence of BehaviourFeature, optional
        What to fit on; default :data:`DEFAULT_BEHAVIOUR`, of which the
        columns the frame has are used (at least two).
    k_range : (int, int)
        Smallest and largest number of components tried.
    n_init : int
        k-means initialisations per number of components (the best is kept).
    random_state : int
        Seed of every random choice.
    max_fit_rows : int
        The mixture is fitted on a seeded sample of at most this many rows,
        then assigns every row.
    previous : pandas.DataFrame, optional
        An earlier run's :attr:`profiles_`: matched segments keep their ids
        and names.
    match_distance : float
        A new segment takes an old one's id and name only when their profiles
        lie within this Euclidean distance (in standard deviations over the
        shared axes); a segment that has changed more is named afresh.
    rules : sequence of NamingRule
        The naming rule table.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> frame = pd.DataFrame({
    ...     "account_id": [f"a{i}" for i in range(200)],
    ...     "events_30d": np.r_[rng.poisson(40, 100), rng.poisson(1, 100)],
    ...     "tenure_days": rng.uniform(200, 400, 200)})
    >>> model = SegmentModel(k_range=(1, 3)).fit(frame)
    >>> model.k_, sorted(model.names_.values())
    (2, ['Casual', 'Power users'])
    """

    def __init__(
        self,
        features: Sequence[BehaviourFeature] | None = None,
        *,
        k_range: tuple[int, int] = (2, 8),
        n_init: int = 3,
        random_state: int = 0,
        max_fit_rows: int = 20_000,
        previous: pd.DataFrame | None = None,
        match_distance: float = 1.0,
        rules: Sequence[NamingRule] = NAMING_RULES,
    ) -> None:
        self.features = features
        self.k_range = k_range
        self.n_init = n_init
        self.random_state = random_state
        self.max_fit_rows = max_fit_rows
        self.previous = previous
        self.match_distance = match_distance
        self.rules = rules

    # -- preparing the matrix ------------------------------------------------------
    def _matrix(self, frame: pd.DataFrame, fill: _FloatArray | None = None) -> _FloatArray:
        columns = []
        for feature in self.features_:
            values = pd.to_numeric(frame[feature.name], errors="coerce").to_numpy(dtype=float)
            if feature.name == "days_since_last_event" and "tenure_days" in frame.columns:
                # Never active: at least as long without an event as the account is old.
                tenure = pd.to_numeric(frame["tenure_days"], errors="coerce").to_numpy(float)
                values = np.where(np.isnan(values), tenure, values)
            columns.append(feature.apply(values))
        matrix = np.column_stack(columns)
        if fill is not None:
            # Other missing values (a ratio with nothing to divide) take the fit's median.
            matrix = np.where(np.isnan(matrix), fill[None, :], matrix)
        return matrix

    def _chosen_features(self, frame: pd.DataFrame) -> tuple[BehaviourFeature, ...]:
        wanted = tuple(self.features) if self.features is not None else DEFAULT_BEHAVIOUR
        present = tuple(f for f in wanted if f.name in frame.columns)
        if self.features is not None and len(present) < len(wanted):
            absent = [f.name for f in wanted if f.name not in frame.columns]
            raise AnalysisError(f"behaviour feature(s) {', '.join(absent)} not in the frame")
        if len(present) < 2:
            raise AnalysisError(
                "segments need at least two behaviour features; the frame has "
                f"{', '.join(f.name for f in present) or 'none'} of "
                f"{', '.join(f.name for f in wanted)}"
            )
        return present

    # -- fitting ---------------------------------------------------------------------
    def fit(self, frame: pd.DataFrame) -> SegmentModel:
        """Choose k by BIC, fit the mixture, order, profile and name the segments.

        Raises
        ------
        AnalysisError
            With fewer rows than the largest k tried needs, too few
            behaviour features, or a bad parameter.
        """
        low, high = self.k_range
        if not 1 <= low <= high:
            raise AnalysisError(
                f"k_range must be (low, high) with 1 <= low <= high; got {low, high}"
            )
        if self.n_init < 1 or self.max_fit_rows < 2:
            raise AnalysisError("n_init must be >= 1 and max_fit_rows >= 2")
        self.features_ = self._chosen_features(frame)
        ordered = _canonical(frame)
        raw = self._matrix(ordered)
        medians = [np.median(c[~np.isnan(c)]) if (~np.isnan(c)).any() else 0.0 for c in raw.T]
        self.fill_ = np.asarray(medians, dtype=float)
        raw = np.where(np.isnan(raw), self.fill_[None, :], raw)
        if len(raw) < max(high, 2) * 2:
            raise AnalysisError(
                f"{len(raw)} accounts are too few to segment into up to {high} segments; "
                "lower the largest k or segment more accounts"
            )
        rng = np.random.default_rng(self.random_state)
        sample = (
            np.sort(rng.choice(len(raw), self.max_fit_rows, replace=False))
            if len(raw) > self.max_fit_rows
            else np.arange(len(raw))
        )
        # Quantiles 10-90: a count that is zero for most accounts still gets a scale.
        self.scaler_ = RobustScaler(quantile_range=(10.0, 90.0)).fit(raw[sample])
        scaled = self.scaler_.transform(raw)
        fit_rows = scaled[sample]
        # One thread: on matrices this small, thread start-up dwarfs the work, and on
        # a busy machine oversubscribed k-means runs tens of times slower.
        with threadpool_limits(1), warnings.catch_warnings():
            # A mixture that has not converged in max_iter steps is still a fit; whether
            # it converged is recorded in bic_ rather than raised as a warning.
            warnings.simplefilter("ignore", ConvergenceWarning)
            bic: dict[int, float] = {}
            fitted: dict[int, GaussianMixture] = {}
            for k in range(low, min(high, len(fit_rows) - 1) + 1):
                mixture = GaussianMixture(
                    n_components=k,
                    covariance_type="full",
                    n_init=self.n_init,
                    reg_covar=1e-3,
                    max_iter=300,
                    random_state=self.random_state,
                ).fit(fit_rows)
                bic[k] = float(mixture.bic(fit_rows))
                fitted[k] = mixture
            self.bic_ = pd.DataFrame(
                {
                    "k": list(bic),
                    "bic": list(bic.values()),
                    "converged": [bool(fitted[k].converged_) for k in bic],
                }
            )
            self.k_ = min(bic, key=lambda k: (bic[k], k))
            self.mixture_ = fitted[self.k_]
            self.pca_ = PCA(n_components=min(2, scaled.shape[1])).fit(fit_rows)
        self._axis_stats(scaled)
        self._order_and_name()
        return self

    def _axis_scores(self, scaled: _FloatArray) -> _FloatArray:
        """Each row's score on each present axis: the mean of its scaled features."""
        columns = []
        for axis in self.axes_:
            mine = [i for i, f in enumerate(self.features_) if f.axis == axis]
            columns.append(scaled[:, mine].mean(axis=1))
        return np.column_stack(columns)

    def _axis_stats(self, scaled: _FloatArray) -> None:
        self.axes_ = tuple(a for a in AXES if any(f.axis == a for f in self.features_))
        scores = self._axis_scores(scaled)
        self.axis_mean_ = scores.mean(axis=0)
        std = scores.std(axis=0)
        self.axis_std_ = np.where(std > 0, std, 1.0)

    def _order_and_name(self) -> None:
        means = np.asarray(self.mixture_.means_, dtype=float)
        profiles = (self._axis_scores(means) - self.axis_mean_) / self.axis_std_
        activity = profiles[:, self.axes_.index("activity")] if "activity" in self.axes_ else 0
        # Most active first; the rounded centroid breaks ties, so the order is a
        # function of the fitted means alone.
        keys = [
            (-float(np.round(a, 9)), *np.round(m, 9).tolist())
            for a, m in zip(np.broadcast_to(activity, len(means)), means, strict=True)
        ]
        order = sorted(range(len(means)), key=lambda i: keys[i])
        profiles = profiles[order]
        table = [dict(zip(self.axes_, p.tolist(), strict=True)) for p in profiles]
        ids, names = _match_previous(
            table, self.previous, self.axes_, self.rules, self.match_distance
        )
        # component -> segment id / name
        self.segment_of_ = np.empty(len(means), dtype=np.int64)
        self.segment_of_[order] = ids
        self.names_ = dict(zip(ids, names, strict=True))
        self.profiles_ = pd.DataFrame(
            {
                "segment_id": ids,
                "segment": names,
                **{a: profiles[:, i] for i, a in enumerate(self.axes_)},
            }
        ).sort_values("segment_id", ignore_index=True)

    # -- applying --------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "mixture_"):
            raise AnalysisError("this SegmentModel is not fitted yet; call fit(frame) first")

    def scaled(self, frame: pd.DataFrame) -> _FloatArray:
        """The frame's behaviour matrix, transformed and scaled as at fit."""
        self._check_fitted()
        absent = [f.name for f in self.features_ if f.name not in frame.columns]
        if absent:
            raise AnalysisError(f"the frame lacks the behaviour feature(s) {', '.join(absent)}")
        scaled: _FloatArray = self.scaler_.transform(self._matrix(frame, self.fill_))
        return scaled

    def predict(self, frame: pd.DataFrame) -> npt.NDArray[np.int64]:
        """Segment id of each row (in the frame's own order)."""
        scaled = self.scaled(frame)  # checks the model is fitted first
        component = self.mixture_.predict(scaled)
        segment: npt.NDArray[np.int64] = self.segment_of_[component]
        return segment

    def predict_proba(self, frame: pd.DataFrame) -> _FloatArray:
        """Probability of each row's assigned segment."""
        scaled = self.scaled(frame)
        proba: _FloatArray = self.mixture_.predict_proba(scaled).max(axis=1)
        return proba

    def project(self, frame: pd.DataFrame) -> _FloatArray:
        """The rows on the first two principal components of the scaled features."""
        scaled = self.scaled(frame)
        projected: _FloatArray = self.pca_.transform(scaled)
        return projected


def _canonical(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame sorted by its keys, so that row order changes no fit."""
    if "account_id" not in frame.columns:
        raise AnalysisError("the frame needs an account_id column to segment accounts")
    keys = [k for k in _KEYS if k in frame.columns]
    if frame.duplicated(keys).any():
        raise AnalysisError(f"the frame has duplicate ({', '.join(keys)}) rows")
    return frame.sort_values(keys, kind="mergesort", ignore_index=True)


def _match_previous(
    profiles: list[dict[str, float]],
    previous: pd.DataFrame | None,
    axes: Sequence[str],
    rules: Sequence[NamingRule],
    match_distance: float = 1.0,
) -> tuple[list[int], list[str]]:
    """Ids and names of the new segments, in canonical order.

    Without a previous run: ids 0, 1, ... and names from the rules. With one,
    the Hungarian algorithm pairs new and old segments to minimise the total
    Euclidean distance between their profiles (on the axes both have); pairs
    closer than ``match_distance`` keep the old id and name (a pair further
    apart would carry a name its new profile contradicts), the others get new
    ids after the old ones and names from the rules that no old segment holds.
    """
    if previous is None or previous.empty:
        return list(range(len(profiles))), name_segments(profiles, rules)
    missing = [c for c in ("segment_id", "segment") if c not in previous.columns]
    if missing:
        raise AnalysisError(
            f"previous profiles need the columns segment_id and segment; missing {missing}"
        )
    shared = [a for a in axes if a in previous.columns]
    if not shared:
        raise AnalysisError("previous profiles share no axis with this segmentation")
    new = np.array([[p[a] for a in shared] for p in profiles])
    old = previous.loc[:, shared].to_numpy(dtype=float)
    cost = np.sqrt(((new[:, None, :] - old[None, :, :]) ** 2).sum(axis=2))
    rows, cols = linear_sum_assignment(cost)
    old_ids = previous["segment_id"].astype(int).tolist()
    old_names = previous["segment"].astype(str).tolist()
    ids: list[int | None] = [None] * len(profiles)
    names: list[str | None] = [None] * len(profiles)
    for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
        if cost[r, c] <= match_distance:
            ids[r], names[r] = old_ids[c], old_names[c]
    unmatched = [i for i in range(len(profiles)) if ids[i] is None]
    kept = [n for n in names if n is not None]
    fresh = name_segments([profiles[i] for i in unmatched], rules, taken=kept)
    next_id = max(old_ids) + 1
    for i, name in zip(unmatched, fresh, strict=True):
        ids[i], names[i] = next_id, name
        next_id += 1
    return [int(i) for i in ids if i is not None], [str(n) for n in names if n is not None]
