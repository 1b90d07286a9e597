"""Cox proportional hazards on behaviour features, with a check of the assumption.

:func:`fit_cox` wraps :class:`lifelines.CoxPHFitter` on a frame: it prepares
the covariates (text columns one-hot encoded, missing values filled with the
median, constant and collinear columns dropped, each with a note saying so),
standardizes them so that a hazard ratio reads "per standard deviation", fits
with a small ridge penalty for stability, and tests proportional hazards per
covariate with lifelines' :func:`proportional_hazard_test` (the test behind
``CoxPHFitter.check_assumptions``), with a verdict in words.

:func:`cox_on_features` is the landmark analysis a churn team wants: the
accounts at risk at a cutoff, their features at that cutoff (the project's
feature set), and the time from the cutoff to their churn, censored at the
observation end. Measuring behaviour at one instant and following accounts
from it avoids crediting an account's whole past to its current behaviour.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd
import pyarrow as pa
from lifelines import CoxPHFitter
from lifelines.exceptions import ConvergenceError
from lifelines.statistics import proportional_hazard_test

from churnwatch.config import Settings
from churnwatch.errors import AnalysisError
from churnwatch.features import compute_features, feature_set
from churnwatch.labels._schedule import to_utc
from churnwatch.survival._durations import Basis, derive_durations
from churnwatch.warehouse import Warehouse

__all__ = [
    "BEHAVIOUR_COVARIATES",
    "CoxResult",
    "cox_on_features",
    "fit_cox",
    "landmark_frame",
]

#: The default covariates of :func:`cox_on_features`, those the feature set has:
#: level, breadth, recency and trend of use, payments and support, revenue.
BEHAVIOUR_COVARIATES: tuple[str, ...] = (
    "events_30d",
    "active_days_30d",
    "days_since_last_event",
    "events_trend_ratio_30d",
    "weekly_consistency_8w",
    "payment_success_rate_90d",
    "failed_payments_90d",
    "support_contacts_90d",
    "current_mrr",
    "tenure_days",
)
#: Two covariates this correlated carry one signal: the later one is dropped.
COLLINEAR_ABS_CORRELATION = 0.98
#: A covariate missing for more than this share of accounts is dropped, not filled.
MAX_MISSING_SHARE = 0.5


@dataclass(frozen=True)
class CoxResult:
    """A fitted Cox model: hazard ratios, the assumption check, and what was dropped.

    Attributes
    ----------
    summary : pandas.DataFrame
        One row per covariate: ``covariate, coef, se, hazard_ratio, hr_lower,
        hr_upper, p_value``. With standardized covariates a hazard ratio is per
        standard deviation of the covariate.
    ph_test : pandas.DataFrame
        ``covariate, statistic, p_value, holds, verdict``: the proportional
        hazards test (rank-transformed time) per covariate.
    concordance : float
        Concordance index on the fitted rows.
    accounts, churned : int
        Rows fitted, and those with an observed churn.
    notes : list of str
        What was done to the covariates (encoded, filled, dropped) and why.
    standardized : bool
        Whether covariates were centred and scaled (by their sample standard
        deviation) before fitting.
    penalizer : float
        The ridge penalty of the fit.
    fitter : lifelines.CoxPHFitter
        The fitted lifelines model (on the prepared covariates).
    scale : pandas.DataFrame
        ``mean`` and ``std`` per covariate used to standardize (empty otherwise).
    """

    summary: pd.DataFrame
    ph_test: pd.DataFrame
    concordance: float
    accounts: int
    churned: int
    notes: list[str]
    standardized: bool
    penalizer: float
    fitter: CoxPHFitter = field(repr=False)
    scale: pd.DataFrame = field(repr=False)
    design: _Design = field(repr=False)

    def covariates_of(self, frame: pd.DataFrame) -> pd.DataFrame:
        """New rows prepared as the fit prepared its own (encoded, filled, scaled)."""
        return self.design.apply(frame)

    @property
    def violations(self) -> list[str]:
        """Covariates whose effect changes with time (the assumption fails)."""
        return self.ph_test.loc[~self.ph_test["holds"], "covariate"].tolist()


@dataclass(frozen=True)
class _Design:
    """How a fit turned a frame's columns into its covariates, to do the same to new rows."""

    fills: dict[str, float]
    levels: dict[str, list[str]]
    columns: list[str]
    scale: pd.DataFrame

    def apply(self, frame: pd.DataFrame) -> pd.DataFrame:
        missing = [name for name in [*self.fills, *self.levels] if name not in frame.columns]
        if missing:
            raise AnalysisError(f"the frame lacks the covariate(s) {', '.join(missing)}")
        parts: dict[str, pd.Series] = {}
        for name, fill in self.fills.items():
            parts[name] = frame[name].astype(float).fillna(fill)
        for name, levels in self.levels.items():
            text = frame[name].astype("string")
            for level in levels:
                parts[f"{name}_{level}"] = (text == level).fillna(False).astype(float)
        table = pd.DataFrame(parts, index=frame.index)[self.columns]
        if not self.scale.empty:
            table = (table - self.scale["mean"]) / self.scale["std"]
        return table


def _prepare(
    frame: pd.DataFrame, covariates: Sequence[str], notes: list[str]
) -> tuple[pd.DataFrame, dict[str, float], dict[str, list[str]]]:
    """Numeric, complete, non-constant, non-collinear covariates, and how they were made."""
    prepared: dict[str, pd.Series] = {}
    fills: dict[str, float] = {}
    levels: dict[str, list[str]] = {}
    for name in covariates:
        column = frame[name]
        if pd.api.types.is_bool_dtype(column):
            column = column.astype(float)
        if not pd.api.types.is_numeric_dtype(column):
            dummies = pd.get_dummies(column.astype("string"), prefix=name, drop_first=True)
            notes.append(
                f"{name}: text, one-hot encoded against {sorted(column.dropna().unique())[0]!r}"
                f" ({len(dummies.columns)} columns)"
            )
            for dummy in dummies.columns:
                prepared[str(dummy)] = dummies[dummy].astype(float)
            levels[name] = [str(dummy)[len(name) + 1 :] for dummy in dummies.columns]
            continue
        values = column.astype(float)
        missing = float(values.isna().mean())
        if missing > MAX_MISSING_SHARE:
            notes.append(f"{name}: dropped, missing for {missing:.0%} of accounts")
            continue
        fills[name] = float(values.median()) if missing else 0.0
        if missing:
            notes.append(f"{name}: {missing:.1%} missing, filled with the median {fills[name]:g}")
            values = values.fillna(fills[name])
        prepared[name] = values
    table = pd.DataFrame(prepared, index=frame.index)
    for name in list(table.columns):
        if table[name].nunique() <= 1:
            notes.append(f"{name}: dropped, the same value for every account")
            table = table.drop(columns=name)
    if table.shape[1] > 1:
        correlation = table.corr().abs().to_numpy()
        kept: list[int] = []
        for j, name in enumerate(table.columns):
            twin = next((i for i in kept if correlation[i, j] >= COLLINEAR_ABS_CORRELATION), None)
            if twin is None:
                kept.append(j)
            else:
                notes.append(
                    f"{name}: dropped, |correlation| {correlation[twin, j]:.3f} with "
                    f"{table.columns[twin]} (one signal, unstable estimates)"
                )
        table = table.iloc[:, kept]
    return table, fills, levels


def fit_cox(
    frame: pd.DataFrame,
    *,
    duration_col: str = "duration_days",
    event_col: str = "event_observed",
    covariates: Sequence[str] | None = None,
    standardize: bool = True,
    penalizer: float = 0.01,
    alpha: float = 0.05,
    ph_p_value_threshold: float = 0.01,
) -> CoxResult:
    """Fit a Cox proportional hazards model and test its assumption.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per account: the duration, the event and the covariates.
    duration_col, event_col : str
        lifelines' names for the duration (days) and the event (1 = churned).
    covariates : sequence of str, optional
        The columns to use (default: every other column but ``account_id``).
    standardize : bool
        Centre and scale each covariate (hazard ratios per standard deviation).
    penalizer : float
        Ridge penalty (lifelines' ``penalizer``); a little keeps estimates
        stable when covariates are correlated or rare.
    alpha : float
        Intervals are ``1 - alpha``.
    ph_p_value_threshold : float
        A proportional-hazards test below this p-value is reported as a violation.

    Returns
    -------
    CoxResult

    Raises
    ------
    AnalysisError
        On an unknown covariate, no usable covariate, no observed churn, or a
        fit that does not converge.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> usage = rng.normal(size=300)
    >>> days = rng.exponential(100 * np.exp(0.7 * usage))
    >>> frame = pd.DataFrame({"duration_days": days, "event_observed": days < 150,
    ...                       "usage": usage})
    >>> result = fit_cox(frame)
    >>> bool(result.summary.loc[0, "hazard_ratio"] < 1)  # more usage, longer lives
    True
    """
    for column in (duration_col, event_col):
        if column not in frame.columns:
            raise AnalysisError(f"the frame has no column {column!r}")
    if covariates is None:
        covariates = [c for c in frame.columns if c not in (duration_col, event_col, "account_id")]
    unknown = [c for c in covariates if c not in frame.columns]
    if unknown:
        raise AnalysisError(
            f"unknown covariate(s) {', '.join(unknown)}; the frame has "
            f"{', '.join(str(c) for c in frame.columns)}"
        )
    notes: list[str] = []
    table, fills, levels = _prepare(frame, covariates, notes)
    if table.empty or table.shape[1] == 0:
        raise AnalysisError(
            "no usable covariate (every one was constant, missing or collinear): "
            + "; ".join(notes)
        )
    events = frame[event_col].astype(float)
    if not events.sum():
        raise AnalysisError("no churn was observed among these accounts: a Cox model needs events")
    scale = pd.DataFrame(columns=["mean", "std"], dtype=float)
    if standardize:
        scale = pd.DataFrame({"mean": table.mean(), "std": table.std()})
        table = (table - scale["mean"]) / scale["std"]
    columns = list(table.columns)
    design = _Design(
        fills={k: v for k, v in fills.items() if k in columns},
        levels={k: v for k, v in levels.items() if any(f"{k}_{level}" in columns for level in v)},
        columns=columns,
        scale=scale,
    )
    data = table.assign(_duration=frame[duration_col].astype(float).to_numpy(), _event=events)
    fitter = CoxPHFitter(penalizer=penalizer, alpha=alpha)
    try:
        fitter.fit(data, duration_col="_duration", event_col="_event")
    except ConvergenceError as exc:
        raise AnalysisError(
            f"the Cox model did not converge ({str(exc).splitlines()[0]}); raise the "
            "penalizer or name fewer covariates"
        ) from None
    found = fitter.summary
    summary = pd.DataFrame(
        {
            "covariate": found.index.astype(str),
            "coef": found["coef"].to_numpy(),
            "se": found["se(coef)"].to_numpy(),
            "hazard_ratio": found["exp(coef)"].to_numpy(),
            # lifelines names the bounds after the level ("exp(coef) lower 95%").
            "hr_lower": found.filter(like="exp(coef) lower").iloc[:, 0].to_numpy(),
            "hr_upper": found.filter(like="exp(coef) upper").iloc[:, 0].to_numpy(),
            "p_value": found["p"].to_numpy(),
        }
    )
    return CoxResult(
        summary=summary,
        ph_test=_ph_test(fitter, data, ph_p_value_threshold),
        concordance=float(fitter.concordance_index_),
        accounts=len(data),
        churned=int(events.sum()),
        notes=notes,
        standardized=standardize,
        penalizer=penalizer,
        fitter=fitter,
        scale=scale,
        design=design,
    )


def _ph_test(fitter: CoxPHFitter, data: pd.DataFrame, threshold: float) -> pd.DataFrame:
    test = proportional_hazard_test(fitter, data, time_transform="rank")
    table = test.summary
    p_values = table["p"].to_numpy(dtype=float)
    holds = p_values >= threshold
    verdicts = [
        f"holds: no evidence the effect changes with time (p = {p:.3g})"
        if ok
        else f"violated: the effect changes over time (p = {p:.3g} < {threshold:g}); "
        "read its hazard ratio as an average, or stratify on it"
        for p, ok in zip(p_values, holds, strict=True)
    ]
    return pd.DataFrame(
        {
            "covariate": [str(i if not isinstance(i, tuple) else i[0]) for i in table.index],
            "statistic": table["test_statistic"].to_numpy(dtype=float),
            "p_value": p_values,
            "holds": holds,
            "verdict": verdicts,
        }
    )


def landmark_frame(
    warehouse: Warehouse,
    settings: Settings,
    *,
    cutoff: str | dt.date | dt.datetime | None = None,
    covariates: Sequence[str] | None = None,
    basis: Basis | None = None,
) -> tuple[pd.DataFrame, dt.datetime]:
    """The accounts at risk at ``cutoff``, their features then, and their time to churn after.

    Parameters
    ----------
    warehouse : Warehouse
        Holds the canonical tables.
    settings : Settings
        The churn definition, observation end and feature set.
    cutoff : str, date or datetime, optional
        Default: 90 days before the observation end.
    covariates : sequence of str, optional
        Features of the project's feature set (default: those of
        :data:`BEHAVIOUR_COVARIATES` it has).
    basis : {"subscription", "activity"}, optional
        Default: from ``[churn] definition``.

    Returns
    -------
    (pandas.DataFrame, datetime)
        ``account_id, duration_days, event_observed`` and the covariates;
        and the cutoff used.
    """
    durations = derive_durations(warehouse, settings, basis=basis, periods="all")
    if durations.observation_end is None:
        raise AnalysisError(
            "a one-snapshot table has no times to measure features at: fit_cox on the "
            "accounts frame instead"
        )
    end = durations.observation_end.at
    at = end - dt.timedelta(days=90) if cutoff is None else to_utc(cutoff, "cutoff")
    if at >= end:
        raise AnalysisError(
            f"the cutoff {at:%Y-%m-%d} is not before the observation end {end:%Y-%m-%d}: "
            "nothing can be followed after it"
        )
    rows = durations.frame
    elapsed = (at - rows["started_at"]).dt.total_seconds() / 86_400
    active = (rows["started_at"] < at) & (rows["duration_days"] > elapsed)
    population = rows.loc[active].assign(duration_days=rows["duration_days"] - elapsed)
    if population.empty:
        raise AnalysisError(f"no account was at risk at {at:%Y-%m-%d}; choose another cutoff")
    specs = {spec.name: spec for spec in feature_set(settings, warehouse)}
    if covariates is None:
        names = [name for name in BEHAVIOUR_COVARIATES if name in specs]
    else:
        unknown = [name for name in covariates if name not in specs]
        if unknown:
            raise AnalysisError(
                f"unknown feature(s) {', '.join(unknown)}; the feature set has "
                f"{', '.join(sorted(specs))}"
            )
        names = list(covariates)
    if not names:
        raise AnalysisError(
            "none of the default behaviour features is in the feature set; name covariates"
        )
    cutoffs = pa.table(
        {
            "account_id": pa.array(population["account_id"].tolist(), pa.string()),
            "cutoff": pa.array([at] * len(population), pa.timestamp("us", tz="UTC")),
        }
    )
    features = compute_features(warehouse, cutoffs, [specs[name] for name in names]).to_pandas()
    frame = population[["account_id", "duration_days", "event_observed"]].merge(
        features.drop(columns="cutoff"), on="account_id", how="left"
    )
    return frame.reset_index(drop=True), at


def cox_on_features(
    warehouse: Warehouse,
    settings: Settings,
    *,
    cutoff: str | dt.date | dt.datetime | None = None,
    covariates: Sequence[str] | None = None,
    basis: Basis | None = None,
    penalizer: float = 0.01,
) -> CoxResult:
    """Cox model of the time to churn after a cutoff on the behaviour features at it.

    See :func:`landmark_frame` for the frame and :func:`fit_cox` for the fit
    (standardized covariates, ``penalizer``).

    Examples
    --------
    >>> from churnwatch.warehouse import connect
    >>> with connect("duckdb:///:memory:") as wh:
    ...     wh.ensure_schema()
    ...     cox_on_features(wh, Settings())  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    churnwatch.errors.AnalysisError: no subscriptions to derive durations from ...
    """
    frame, _ = landmark_frame(
        warehouse, settings, cutoff=cutoff, covariates=covariates, basis=basis
    )
    return fit_cox(frame, penalizer=penalizer)
