"""Segments of a frame, or of a warehouse's customers as of a day, with their numbers."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from churnwatch.config import Settings
from churnwatch.errors import AnalysisError, ConfigError
from churnwatch.features import FeatureSpec, compute_features, feature_set
from churnwatch.health._frame import analysis_cutoff, population_frame
from churnwatch.labels import CutoffSchedule, LabelSpec, infer_observation_end, make_labels
from churnwatch.labels._schedule import to_utc
from churnwatch.segments._model import DEFAULT_BEHAVIOUR, SegmentModel
from churnwatch.warehouse import Warehouse

__all__ = ["BREADTH_FEATURE", "Segmentation", "segment_accounts", "segment_frame"]

#: The derived breadth feature: how many of the top event types an account used in 90 days.
BREADTH_FEATURE = "event_types_used_90d"
_MRR = "current_mrr"


@dataclass
class Segmentation:
    """Accounts in named segments, and what each segment is like.

    Attributes
    ----------
    assignments : pandas.DataFrame
        One row per account (sorted by account, then cutoff): ``account_id``,
        (``cutoff``), ``segment_id``, ``segment``, ``probability`` (of the
        assigned segment), ``pc1``, ``pc2`` (the PCA projection).
    profiles : pandas.DataFrame
        One row per segment, by id: ``segment_id, segment, accounts, share,
        churn_rate, churn_examples, mrr_total, mrr_mean``, then the profile on
        each axis (standard deviations from the population), then the median
        of each behaviour feature in its own unit. Pass it back as
        ``previous`` to keep ids and names across runs.
    bic : pandas.DataFrame
        ``k, bic, converged`` for every number of components tried (the lowest
        BIC wins; ``converged`` says whether EM met its tolerance).
    model : SegmentModel
        The fitted model (assigns other frames with ``predict``).
    notes : list of str
        How churn was measured, or why it could not be.
    """

    assignments: pd.DataFrame
    profiles: pd.DataFrame
    bic: pd.DataFrame
    model: SegmentModel = field(repr=False)
    notes: list[str] = field(default_factory=list)

    @property
    def k(self) -> int:
        """The number of segments BIC chose."""
        return int(self.model.k_)


def _churn_by_segment(
    model: SegmentModel, churn_frame: pd.DataFrame | None, label: str | None
) -> pd.DataFrame:
    ids = sorted(model.names_)
    empty = pd.DataFrame(
        {"segment_id": ids, "churn_rate": np.nan, "churn_examples": 0},
    )
    if churn_frame is None or label is None or churn_frame.empty:
        return empty
    known = churn_frame.loc[churn_frame[label].notna()]
    if known.empty:
        return empty
    segment = model.predict(known)
    outcome = known[label].to_numpy(dtype=float)
    rows = []
    for sid in ids:
        mine = outcome[segment == sid]
        rows.append((sid, float(mine.mean()) if mine.size else np.nan, int(mine.size)))
    return pd.DataFrame(rows, columns=["segment_id", "churn_rate", "churn_examples"])


def segment_frame(
    frame: pd.DataFrame,
    *,
    label: str | None = None,
    churn_frame: pd.DataFrame | None = None,
    mrr: str | None = _MRR,
    previous: pd.DataFrame | None = None,
    **params: Any,
) -> Segmentation:
    """Segment the accounts of a feature frame.

    Parameters
    ----------
    frame : pandas.DataFrame
        ``account_id`` (and optionally ``cutoff``) and behaviour features
        (see :data:`DEFAULT_BEHAVIOUR`).
    label : str, optional
        A 0/1 churn column (NaN where unknown): a segment's churn rate is its
        mean over the rows of ``churn_frame`` assigned to the segment.
    churn_frame : pandas.DataFrame, optional
        Accounts whose churn is known (an earlier cutoff) with the same
        behaviour features and ``label``; default: ``frame`` itself.
    mrr : str, optional
        Column of monthly revenue summed and averaged per segment (skipped
        when absent).
    previous : pandas.DataFrame, optional
        An earlier :attr:`Segmentation.profiles`: matched segments keep their
        ids and names.
    **params
        Passed to :class:`SegmentModel` (``k_range``, ``n_init``,
        ``random_state``, ``max_fit_rows``, ``features``, ``match_distance``,
        ``rules``).

    Returns
    -------
    Segmentation

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> frame = pd.DataFrame({
    ...     "account_id": [f"a{i:03}" for i in range(300)],
    ...     "events_30d": np.r_[rng.poisson(30, 150), rng.poisson(30, 150)],
    ...     "events_trend_diff_30d": np.r_[rng.normal(0, 2, 150), rng.normal(-25, 2, 150)],
    ...     "churn_30d": np.r_[np.zeros(150), np.ones(150)]})
    >>> result = segment_frame(frame, label="churn_30d", k_range=(1, 4))
    >>> result.profiles[["segment", "accounts", "churn_rate"]]
      segment  accounts  churn_rate
    0  Fading       150         1.0
    1  Steady       150         0.0
    """
    if label is not None and churn_frame is None:
        if label not in frame.columns:
            raise AnalysisError(f"no label column {label!r} in the frame")
        churn_frame = frame
    if churn_frame is not None and label is not None and label not in churn_frame.columns:
        raise AnalysisError(f"no label column {label!r} in the churn frame")
    model = SegmentModel(previous=previous, **params).fit(frame)
    keys = [k for k in ("account_id", "cutoff") if k in frame.columns]
    ordered = frame.sort_values(keys, kind="mergesort", ignore_index=True)
    segment = model.predict(ordered)
    projected = model.project(ordered)
    assignments = ordered.loc[:, keys].copy()
    assignments["segment_id"] = segment
    assignments["segment"] = [model.names_[int(s)] for s in segment]
    assignments["probability"] = model.predict_proba(ordered)
    assignments["pc1"] = projected[:, 0]
    assignments["pc2"] = projected[:, 1] if projected.shape[1] > 1 else 0.0

    base = model.profiles_.copy()
    counts = pd.Series(segment).value_counts()
    base.insert(2, "accounts", [int(counts.get(s, 0)) for s in base["segment_id"]])
    base.insert(3, "share", base["accounts"] / max(1, len(ordered)))
    churn = _churn_by_segment(model, churn_frame, label)
    base = base.merge(churn, on="segment_id", how="left")
    if mrr is not None and mrr in ordered.columns:
        money = pd.to_numeric(ordered[mrr], errors="coerce").groupby(segment)
        base["mrr_total"] = base["segment_id"].map(money.sum()).astype(float)
        base["mrr_mean"] = base["segment_id"].map(money.mean()).astype(float)
    for feature in model.features_:
        medians = pd.to_numeric(ordered[feature.name], errors="coerce").groupby(segment).median()
        base[f"median_{feature.name}"] = base["segment_id"].map(medians).astype(float)
    axes = list(model.axes_)
    front = [c for c in base.columns if c not in axes and not c.startswith("median_")]
    base = base.loc[:, [*front, *axes, *[c for c in base.columns if c.startswith("median_")]]]
    return Segmentation(assignments=assignments, profiles=base, bic=model.bic_.copy(), model=model)


def _specs(settings: Settings, warehouse: Warehouse) -> tuple[list[FeatureSpec], list[str]]:
    """The project's behaviour specs (and MRR), and the per-type 90-day counts for breadth."""
    known = feature_set(settings, warehouse)
    names = {f.name for f in DEFAULT_BEHAVIOUR} | {_MRR}
    chosen = [s for s in known if s.name in names]
    per_type = [
        s
        for s in known
        if s.kind == "aggregate"
        and s.function == "count"
        and s.event_type is not None
        and s.window_days == 90
        and s.name not in names
    ]
    return chosen + per_type, [s.name for s in per_type]


def _with_breadth(frame: pd.DataFrame, per_type: list[str]) -> pd.DataFrame:
    if per_type:
        used = (frame.loc[:, per_type].fillna(0).to_numpy(dtype=float) > 0).sum(axis=1)
        frame = frame.drop(columns=per_type)
        frame[BREADTH_FEATURE] = used.astype(float)
    return frame


def segment_accounts(
    warehouse: Warehouse,
    settings: Settings,
    *,
    as_of: dt.date | dt.datetime | None = None,
    previous: pd.DataFrame | None = None,
    **params: Any,
) -> Segmentation:
    """Segment the current customers as of a day, with each segment's churn and revenue.

    The customers are the accounts at risk of the ``[churn]`` label at the
    cutoff, with the project's behaviour features (breadth is the number of
    the top event types used in 90 days).

    **Churn rate** of a segment: among the accounts at the latest cutoff
    whose churn has settled (the cutoff less the horizon and the renewal
    grace, earlier if the data ends sooner), assigned to segments by the
    same fitted model from their features then, the share that churned
    within ``[churn] horizon_days``. So the rate is observed, not predicted,
    and says what became of accounts that looked like the segment.

    Parameters
    ----------
    warehouse : Warehouse
        Holds the canonical tables.
    settings : Settings
        The project's settings.
    as_of : date or datetime, optional
        A date segments with the data up to the end of that day; default:
        the end of the data.
    previous : pandas.DataFrame, optional
        An earlier run's profiles, to keep ids and names.
    **params
        Passed to :class:`SegmentModel`; ``random_state`` defaults to
        ``[model] random_seed``.

    Returns
    -------
    Segmentation

    Examples
    --------
    >>> import tempfile
    >>> from churnwatch.ingest import ingest
    >>> from churnwatch.simulate import simulate
    >>> from churnwatch.warehouse import connect
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     sim = simulate(tmp, n_accounts=300, end="2024-09-30", events_per_account=20)
    ...     with connect("duckdb:///:memory:") as wh:
    ...         _ = ingest(sim.settings(), wh)
    ...         result = segment_accounts(wh, sim.settings(), k_range=(2, 4))
    >>> 2 <= result.k <= 4, bool(result.profiles["segment"].is_unique)
    (True, True)
    """
    params.setdefault("random_state", settings.model.random_seed)
    cutoff = analysis_cutoff(warehouse, as_of)
    specs, per_type = _specs(settings, warehouse)
    frame = _with_breadth(population_frame(warehouse, settings, [cutoff], specs), per_type)
    label_spec = LabelSpec.from_settings(settings.churn)
    label = label_spec.columns[0]
    notes: list[str] = []
    churn_frame = None
    try:
        end = (
            to_utc(settings.data.observation_end, "observation_end")
            if settings.data.observation_end
            else infer_observation_end(warehouse, label_spec).at
        )
        delay = dt.timedelta(
            days=label_spec.lead_days + label_spec.horizon_days[0] + label_spec.settle_days
        )
        past = min(cutoff, end) - delay
        labels = make_labels(
            warehouse, label_spec, CutoffSchedule.explicit([past]), observation_end=end
        ).frame
    except ConfigError as exc:
        # The segments stand without a churn rate; say why it is missing.
        notes.append(f"no churn rate: {exc}")
        labels = None
    if labels is not None and labels.num_rows:
        keys = labels.select(["account_id", "cutoff"])
        churn_frame = _with_breadth(compute_features(warehouse, keys, specs).to_pandas(), per_type)
        churn_frame[label] = labels.column(label).to_numpy(zero_copy_only=False)
        notes.append(
            f"churn rate: share of the segment's accounts at {past:%Y-%m-%d} that churned "
            f"within {label_spec.horizon_days[0]} days ({label_spec.describe()})"
        )
    elif labels is not None:
        notes.append(f"no churn rate: no account was a customer at {past:%Y-%m-%d}")
    result = segment_frame(
        frame,
        label=label if churn_frame is not None else None,
        churn_frame=churn_frame,
        previous=previous,
        **params,
    )
    result.notes = notes
    return result
