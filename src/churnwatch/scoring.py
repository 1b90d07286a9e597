"""Today's risk table: every account scored by the promoted models, with reasons.

:func:`score_accounts` computes each account's features as of a moment (by
default the end of the data), applies every promoted model of the registry,
and appends one row per account and model to the warehouse table
``risk_scores``:

======================  ============================================================
``account_id``          the account
``scored_at``           the cutoff the features were computed at
``target``              what the model predicts (``churn_30d``, ``sessions_30d`` ...)
``model_version``       the registry version that scored it
``score``               P(target) for a binary target, else the predicted value
``risk_tier``           ``high`` / ``medium`` / ``low`` from ``score`` (binary targets)
``mrr``                 monthly recurring revenue at the cutoff (null without one)
``revenue_at_risk``     ``score * mrr`` for churn targets: calibrated, so it adds up
``reason_1..3``         the features raising this account's risk most, in words
                        (accounts above the lowest risk tier; see below)
``predicted_days_to_``  churn targets: the median days left to the account given how
``churn``               long it has lasted (Kaplan-Meier of its label's durations,
                        :mod:`churnwatch.survival`); null when the curve never falls
                        that far within the data, or for other targets
======================  ============================================================

The table keeps every earlier run: scoring the same moment again replaces
that moment's rows only, so a re-run changes nothing and history survives.

Reasons come from exact SHAP values (TreeSHAP for LightGBM), which cost
about a hundred microseconds per account on two cores: they are computed
for every account above the lowest risk tier, the ones anyone acts on.
Forecasts of a number (sessions, revenue) carry no reasons.

Before scoring, each model's saved feature specs are checked against the
features it is about to read, and each feature's distribution is compared
with the training one (population stability index): drifted features are
reported, not hidden.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from churnwatch.errors import ModelError
from churnwatch.features import FeatureSpec, compute_features
from churnwatch.features._compute import accounts_at
from churnwatch.features._portable import instant
from churnwatch.labels import LabelSpec, accounts_at_risk
from churnwatch.models._drift import DriftProfile, psi
from churnwatch.models._registry import LoadedModel, ModelRegistry
from churnwatch.models._train import TrainedModel
from churnwatch.models._workflow import data_time
from churnwatch.schema import ColumnType, sql_type
from churnwatch.survival import predicted_days_to_churn
from churnwatch.warehouse import Warehouse

__all__ = ["RISK_SCORES_TABLE", "RISK_TIERS", "ScoringRun", "data_end", "score_accounts"]

RISK_SCORES_TABLE = "risk_scores"
#: Lower bounds of the risk tiers on the calibrated probability, highest first.
RISK_TIERS: tuple[tuple[str, float], ...] = (("high", 0.30), ("medium", 0.10), ("low", 0.0))
REASONS = 3
_MRR = FeatureSpec("_mrr_at_scoring", "subscription", "mrr")
_COLUMNS: tuple[tuple[str, ColumnType], ...] = (
    ("account_id", "string"),
    ("scored_at", "timestamp"),
    ("target", "string"),
    ("model_version", "string"),
    ("score", "double"),
    ("risk_tier", "string"),
    ("mrr", "double"),
    ("revenue_at_risk", "double"),
    *((f"reason_{i}", "string") for i in range(1, REASONS + 1)),
    ("predicted_days_to_churn", "double"),
)


@dataclass
class ScoringRun:
    """What one scoring run did.

    Attributes
    ----------
    scored_at : datetime
        The cutoff the features were computed at.
    accounts : int
        Accounts scored.
    models : dict of str to str
        Target -> registry version applied.
    drift : pandas.DataFrame
        Population stability of each model's features against its training
        data: ``target, feature, psi, status`` (``ok``, ``watch``, ``drift``).
    scores : pandas.DataFrame
        The rows written to ``risk_scores``.
    """

    scored_at: dt.datetime
    accounts: int
    models: dict[str, str]
    drift: pd.DataFrame
    scores: pd.DataFrame = field(repr=False)

    @property
    def drifted(self) -> list[str]:
        """``target: feature`` of every feature whose distribution drifted."""
        bad = self.drift.loc[self.drift["status"] == "drift"]
        return [f"{row.target}: {row.feature}" for row in bad.itertuples()]


def data_end(warehouse: Warehouse) -> dt.datetime:
    """The day after the latest event (or subscription start): "now" for the data.

    Features at this cutoff see every row of the last day.
    """
    last = data_time(warehouse, "MAX")
    if last is None:
        raise ModelError("the warehouse holds no events or subscriptions to score from")
    return dt.datetime.combine(last.date() + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)


def score_accounts(
    warehouse: Warehouse,
    registry: ModelRegistry,
    *,
    as_of: dt.datetime | None = None,
    targets: Sequence[str] | None = None,
    accounts: Sequence[str] | None = None,
    tiers: Sequence[tuple[str, float]] = RISK_TIERS,
    write: bool = True,
    on_progress: Callable[[str], None] | None = None,
) -> ScoringRun:
    """Score every account with the promoted models and append them to ``risk_scores``.

    Parameters
    ----------
    warehouse : Warehouse
        Holds the canonical tables; receives ``risk_scores``.
    registry : ModelRegistry
        Its promoted version of each target is applied.
    as_of : datetime, optional
        The cutoff: features read rows before it. Default :func:`data_end`.
    targets : sequence of str, optional
        Only these promoted targets (default: all).
    accounts : sequence of str, optional
        Only these accounts (default: every account a model applies to);
        an account a model does not apply to at ``as_of`` (not yet signed
        up, already churned) gets no row from it.
    tiers : sequence of (name, lower bound)
        Risk tiers on the probability, highest first; the last bound is 0.
    write : bool
        Append to ``risk_scores`` (replacing rows of the same ``scored_at``
        and target); ``False`` only returns them.
    on_progress : callable, optional
        Called with a short message at each step.

    Returns
    -------
    ScoringRun

    Raises
    ------
    ModelError
        If nothing is promoted, or a model's features no longer match.
    """
    say = on_progress or (lambda message: None)
    promoted = registry.promoted()
    if targets is not None:
        unknown = sorted(set(targets) - set(promoted))
        if unknown:
            raise ModelError(
                f"no promoted model for {', '.join(unknown)}; promoted: "
                f"{', '.join(sorted(promoted)) or 'none'}"
            )
        promoted = {name: promoted[name] for name in targets}
    if not promoted:
        raise ModelError(
            "no model is promoted: train one (`churnwatch train`) and promote it "
            "(`churnwatch models promote NAME VERSION`)"
        )
    cutoff = as_of or data_end(warehouse)
    loaded = {name: registry.load(name) for name in sorted(promoted)}
    specs = _feature_specs(loaded)
    # Each model scores the population it learned from (its label's
    # examples: subscribers for subscription churn, free accounts for
    # conversion); the features are computed once for all of them.
    populations = {name: _population(warehouse, found, cutoff) for name, found in loaded.items()}
    if accounts is not None:
        wanted = pa.array(sorted({str(account) for account in accounts}), pa.string())
        populations = {
            name: table.filter(pc.is_in(table["account_id"].cast(pa.string()), wanted))
            for name, table in populations.items()
        }
    everyone = (
        pa.concat_tables(populations.values()).group_by(["account_id", "cutoff"]).aggregate([])
    )
    everyone = everyone.sort_by("account_id")
    say(
        f"computing {len(specs)} features of {everyone.num_rows:,} accounts at "
        f"{cutoff:%Y-%m-%d %H:%M} UTC"
    )
    frame = compute_features(warehouse, everyone, [*specs, _MRR]).to_pandas()
    mrr_all = frame.pop(_MRR.name).to_numpy(dtype=float)
    parts, drift = [], []
    days_by_label: dict[str, pd.Series | None] = {}
    for name, found in loaded.items():
        model: TrainedModel = found.model
        say(f"scoring {name} ({found.card.version})")
        rows = frame["account_id"].isin(populations[name].column("account_id").to_pylist())
        mine = frame.loc[rows.to_numpy()].reset_index(drop=True)
        part = _score(model, found, mine, mrr_all[rows.to_numpy()], tiers)
        part["predicted_days_to_churn"] = _days_to_churn(
            warehouse, found, cutoff, part["account_id"], days_by_label
        )
        parts.append(part)
        profile = found.card.extra.get("drift")
        if profile and len(mine):
            table = psi(DriftProfile.from_dict(profile), mine)
            drift.append(table.assign(target=name))
    scores = pd.concat(parts, ignore_index=True)
    if write:
        _write(warehouse, scores, cutoff, list(loaded))
    drift_table = (
        pd.concat(drift, ignore_index=True)
        if drift
        else pd.DataFrame(columns=["target", "feature", "psi", "status"])
    )
    return ScoringRun(
        scored_at=cutoff,
        accounts=len(frame),
        models={name: found.card.version for name, found in loaded.items()},
        drift=drift_table,
        scores=scores,
    )


def _population(warehouse: Warehouse, found: LoadedModel, cutoff: dt.datetime) -> pa.Table:
    """The accounts a model applies to at ``cutoff``: its label's examples."""
    saved = found.card.label_spec
    if not saved:
        return accounts_at(warehouse, [cutoff])
    return accounts_at_risk(warehouse, LabelSpec.from_dict(saved), cutoff)


def _days_to_churn(
    warehouse: Warehouse,
    found: LoadedModel,
    cutoff: dt.datetime,
    account_ids: pd.Series,
    cache: dict[str, pd.Series | None],
) -> np.ndarray:
    """Median days to churn of each account, from the survival of the model's churn label."""
    model: TrainedModel = found.model
    saved = found.card.label_spec
    if not saved or model.task != "binary" or not model.target.startswith("churn"):
        return np.full(len(account_ids), np.nan)
    spec = LabelSpec.from_dict(saved)
    key = repr(spec)  # two horizons of one label share their durations
    if key not in cache:
        cache[key] = predicted_days_to_churn(warehouse, spec, cutoff)
    days = cache[key]
    if days is None:
        return np.full(len(account_ids), np.nan)
    found_days: np.ndarray = account_ids.map(days).to_numpy(dtype=float)
    return found_days


def _feature_specs(loaded: Mapping[str, LoadedModel]) -> list[FeatureSpec]:
    """The union of the models' feature specs; the same name must mean the same feature."""
    specs: dict[str, FeatureSpec] = {}
    for name, found in loaded.items():
        model: TrainedModel = found.model
        saved = [FeatureSpec.from_dict(spec) for spec in found.card.feature_specs or []]
        known = {spec.name for spec in saved}
        missing = [feature for feature in model.features if feature not in known]
        if missing:
            raise ModelError(
                f"model {name} {found.card.version} reads features with no saved spec "
                f"({', '.join(missing)}): it was trained on a frame, not on the warehouse, "
                "and cannot score from it"
            )
        for spec in saved:
            if spec.name in specs and specs[spec.name] != spec:
                raise ModelError(
                    f"two promoted models define feature {spec.name!r} differently; "
                    "retrain one of them on the current feature set"
                )
            specs[spec.name] = spec
    return list(specs.values())


def _score(
    model: TrainedModel,
    found: LoadedModel,
    frame: pd.DataFrame,
    mrr: np.ndarray,
    tiers: Sequence[tuple[str, float]],
) -> pd.DataFrame:
    score = model.predict(frame)
    rows = pd.DataFrame(
        {
            "account_id": frame["account_id"].astype(str),
            "scored_at": frame["cutoff"],
            "target": model.target,
            "model_version": found.card.version,
            "score": score,
        }
    )
    if model.task == "binary":
        rows["risk_tier"] = _tiers(score, tiers)
    else:
        rows["risk_tier"] = None
    rows["mrr"] = mrr
    churn = model.task == "binary" and model.target.startswith("churn")
    rows["revenue_at_risk"] = score * np.nan_to_num(mrr) if churn else np.nan
    for i in range(REASONS):
        rows[f"reason_{i + 1}"] = None
    if model.task == "binary":
        # Exact SHAP values cost about 100 us per account: they are computed
        # for the accounts someone will act on (every tier above the lowest),
        # and a low-risk account has no reasons to read.
        explained = np.flatnonzero(score >= tiers[-2][1]) if len(tiers) > 1 else np.arange(0)
        if len(explained):
            reasons = model.reasons(frame.iloc[explained], k=REASONS)
            for i in range(REASONS):
                texts = [r[i].text if len(r) > i else None for r in reasons]
                rows.loc[rows.index[explained], f"reason_{i + 1}"] = texts
    return rows


def _tiers(score: np.ndarray, tiers: Sequence[tuple[str, float]]) -> np.ndarray:
    names = np.array([name for name, _ in tiers], dtype=object)
    bounds = np.array([bound for _, bound in tiers], dtype=float)
    if np.any(np.diff(bounds) >= 0) or bounds[-1] != 0:
        raise ModelError("risk tiers go from the highest bound down to a last bound of 0")
    # The first tier whose lower bound the score reaches.
    index = np.argmax(score[:, None] >= bounds[None, :], axis=1)
    tiers_found: np.ndarray = names[index]
    return tiers_found


def _write(
    warehouse: Warehouse, scores: pd.DataFrame, cutoff: dt.datetime, targets: list[str]
) -> None:
    warehouse.create_table(RISK_SCORES_TABLE, list(_COLUMNS))
    _add_missing_columns(warehouse)
    arrow = pa.Table.from_pandas(scores.loc[:, [c for c, _ in _COLUMNS]], preserve_index=False)
    same_run = exp.and_(
        exp.column("scored_at").eq(instant(cutoff, warehouse.dialect)),
        exp.column("target").isin(*[exp.Literal.string(t) for t in targets]),
    )
    with warehouse.transaction():
        warehouse.execute(exp.delete(RISK_SCORES_TABLE, where=same_run))
        warehouse.append(RISK_SCORES_TABLE, arrow)


def _add_missing_columns(warehouse: Warehouse) -> None:
    """Columns added to ``risk_scores`` since a project first scored are added to its table."""
    present = set(warehouse.query(exp.select("*").from_(RISK_SCORES_TABLE).limit(0)).column_names)
    for column, kind in _COLUMNS:
        if column not in present:
            definition = exp.ColumnDef(
                this=exp.to_identifier(column, quoted=True),
                kind=exp.DataType.build(
                    sql_type(kind, warehouse.dialect), dialect=warehouse.dialect
                ),
            )
            warehouse.execute(
                exp.Alter(this=exp.to_table(RISK_SCORES_TABLE), kind="TABLE", actions=[definition])
            )
