"""The business tables: churn trend, cohort retention, survival curves and segments.

Each table is the tidy form of a domain result — the report's churn trend,
:func:`churnwatch.cohorts.logo_retention`, :func:`churnwatch.survival.kaplan_meier`,
:func:`churnwatch.segments.segment_accounts` — never a second computation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from churnwatch.errors import AnalysisError, ChurnwatchError
from churnwatch.features import FeatureSpec, compute_features
from churnwatch.labels import CutoffSchedule, LabelSpec, make_labels
from churnwatch.views._accounts import segmentation
from churnwatch.views._curves import CURVE_POINTS, curve_rows
from churnwatch.views._inputs import MissingInputError, RefreshInputs

__all__ = [
    "CURVE_POINTS",
    "MAX_GROUPS",
    "SEGMENT_POINTS",
    "SURVIVAL_ATTRIBUTES",
    "churn_trend_table",
    "cohort_retention_table",
    "segment_points_table",
    "segment_profiles_table",
    "survival_tables",
]

#: Account attributes the survival curves are split by (when the data has them).
SURVIVAL_ATTRIBUTES = ("plan", "region", "platform", "referral_source")
#: An attribute with more groups than this gets no curves: unreadable, and costly.
MAX_GROUPS = 12
#: Accounts drawn on the segment map (a fixed-seed sample of larger populations).
SEGMENT_POINTS = 20_000
_MRR = FeatureSpec("_mrr_churned", "subscription", "mrr")


def churn_trend_table(inputs: RefreshInputs) -> pa.Table:
    """Churn of each settled monthly window, with the revenue that left.

    Columns: ``period, accounts, churned, churn_rate, revenue_churned``.

    The windows and rates are those of the report
    (:func:`churnwatch.report.business_kpis`); ``period`` is the window's
    first day. ``revenue_churned`` is the MRR, at the window's start, of the
    accounts that churned in it.
    """
    from churnwatch.report import business_kpis

    wh, settings = inputs.warehouse, inputs.settings
    kpis = inputs.shared("business_kpis", lambda: business_kpis(wh, settings))
    trend = kpis.churn_trend
    if trend.empty:
        raise MissingInputError("no monthly churn window has settled yet")
    cutoffs = [pd.Timestamp(c).to_pydatetime() for c in trend["cutoff"]]
    spec = LabelSpec.from_settings(settings.churn)
    labels = make_labels(
        wh, spec, CutoffSchedule.explicit(cutoffs), observation_end=kpis.as_of
    ).frame
    label = labels[spec.columns[0]].to_numpy(zero_copy_only=False)
    churned = labels.filter(pa.array(np.nan_to_num(label.astype(float)) == 1))
    revenue: dict[pd.Timestamp, float] = {}
    if churned.num_rows:
        mrr = compute_features(wh, churned.select(["account_id", "cutoff"]), [_MRR]).to_pandas()
        mrr["cutoff"] = pd.to_datetime(mrr["cutoff"], utc=True)
        revenue = mrr.groupby("cutoff")[_MRR.name].sum().to_dict()
    stamps = pd.to_datetime(trend["cutoff"], utc=True)
    return pa.table(
        {
            "period": pa.array([s.date() for s in stamps], pa.date32()),
            "accounts": pa.array(trend["at_risk"].to_numpy(dtype=np.int64)),
            "churned": pa.array(trend["churned"].to_numpy(dtype=np.int64)),
            "churn_rate": pa.array(trend["churn_rate"].to_numpy(dtype=float)),
            "revenue_churned": pa.array([float(revenue.get(s, 0.0)) for s in stamps]),
        }
    )


def cohort_retention_table(inputs: RefreshInputs) -> pa.Table:
    """Monthly signup cohorts' logo retention: ``cohort, cohort_size, period, retention``."""
    from churnwatch.cohorts import logo_retention

    found = logo_retention(inputs.warehouse, inputs.settings).to_arrow()
    if found.num_rows == 0:
        raise MissingInputError("no cohort has a whole month of data yet")
    cohorts = [d.isoformat()[:7] for d in found["cohort"].to_pylist()]
    return pa.table(
        {
            "cohort": pa.array(cohorts, pa.string()),
            "cohort_size": found["cohort_size"],
            "period": found["period_number"],
            "retention": found["retention"].cast(pa.float64()),
        }
    )


def survival_tables(inputs: RefreshInputs) -> dict[str, pa.Table]:
    """Kaplan-Meier curves overall and by each attribute, and the log-rank tests.

    Returns
    -------
    dict
        ``survival_curves`` (``attribute, group, days, survival, lower,
        upper``; attribute ``all`` for the overall curve),
        ``survival_tests`` (``attribute, statistic, p_value,
        degrees_of_freedom, groups``) and ``survival_durations``
        (``account_id, duration_days, event_observed``: one row per
        subscription or activity period followed).
    """
    from churnwatch.survival import derive_durations, kaplan_meier, with_attribute

    wh, settings = inputs.warehouse, inputs.settings
    durations = derive_durations(wh, settings)
    if durations.frame.empty:
        raise MissingInputError("no account has a duration to follow yet")
    overall = kaplan_meier(durations.durations, durations.event_observed)
    curves = [curve_rows(overall.survival, "all")]
    tests: list[dict[str, object]] = []
    splits: list[tuple[str, pd.Series | None]] = [(name, None) for name in SURVIVAL_ATTRIBUTES]
    try:
        found = segmentation(inputs).assignments
        splits.append(("segment", found.set_index("account_id")["segment"].astype(str)))
    except ChurnwatchError:
        pass  # no segments: the other attributes still get curves
    for name, values in splits:
        try:
            grouped = with_attribute(wh, durations, name, values)
        except AnalysisError:
            continue  # the data has no such attribute
        groups = grouped.frame[name].astype(str)
        if not 1 < groups.nunique() <= MAX_GROUPS:
            continue
        split = kaplan_meier(grouped.durations, grouped.event_observed, groups=groups, by=name)
        curves.append(curve_rows(split.survival, name))
        if split.logrank is not None:
            tests.append(
                {
                    "attribute": name,
                    "statistic": float(split.logrank.statistic),
                    "p_value": float(split.logrank.p_value),
                    "degrees_of_freedom": int(split.logrank.degrees_of_freedom),
                    "groups": int(groups.nunique()),
                }
            )
    table = pd.concat(curves, ignore_index=True)
    test_table = pd.DataFrame(
        tests, columns=["attribute", "statistic", "p_value", "degrees_of_freedom", "groups"]
    )
    # Every account's durations too: with sidebar filters the dashboard fits
    # the curves of just the filtered accounts from these.
    lives = durations.frame.loc[:, ["account_id", "duration_days", "event_observed"]]
    lives = lives.astype({"duration_days": "float64", "event_observed": "int64"})
    return {
        "survival_durations": pa.Table.from_pandas(
            lives.sort_values("account_id", kind="stable"), preserve_index=False
        ),
        "survival_curves": pa.Table.from_pandas(table, preserve_index=False),
        "survival_tests": pa.Table.from_pandas(
            test_table.astype({"degrees_of_freedom": "int64", "groups": "int64"}),
            preserve_index=False,
        ),
    }


def segment_points_table(inputs: RefreshInputs) -> pa.Table:
    """The segment map: ``account_id, pc1, pc2, segment`` of at most SEGMENT_POINTS accounts."""
    found = segmentation(inputs).assignments
    if len(found) > SEGMENT_POINTS:
        found = found.sample(SEGMENT_POINTS, random_state=0).sort_values("account_id")
    return pa.table(
        {
            "account_id": found["account_id"].astype(str).to_numpy(),
            "pc1": found["pc1"].to_numpy(dtype=float),
            "pc2": found["pc2"].to_numpy(dtype=float),
            "segment": found["segment"].astype(str).to_numpy(),
        }
    )


def segment_profiles_table(inputs: RefreshInputs) -> pa.Table:
    """Each segment's profile in long form: ``segment, accounts, feature, mean``.

    ``feature`` is each numeric column of the segmentation's profiles: the
    axes (standard deviations from the population), the behaviour features'
    typical values, ``share``, ``churn_rate`` and revenue.
    """
    profiles = segmentation(inputs).profiles
    skip = {"segment_id", "segment", "accounts"}
    numeric = [
        c for c in profiles.columns if c not in skip and pd.api.types.is_numeric_dtype(profiles[c])
    ]
    long = profiles.melt(
        id_vars=["segment", "accounts"], value_vars=numeric, var_name="feature", value_name="mean"
    )
    return pa.table(
        {
            "segment": long["segment"].astype(str).to_numpy(),
            "accounts": long["accounts"].to_numpy(dtype=np.int64),
            "feature": long["feature"].astype(str).to_numpy(),
            "mean": long["mean"].to_numpy(dtype=float),
        }
    )
