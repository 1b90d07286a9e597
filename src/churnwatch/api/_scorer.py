"""Scoring one account on demand with the promoted models, loaded once.

Two ways in:

- **From the read model** (:meth:`Scorer.score_account`): the account's row
  of the read model's ``features`` table (its features at the last scoring
  cutoff) goes through the promoted model, exactly as the daily scoring
  applies it: a calibrated probability, its risk tier, revenue at risk and,
  above the lowest tier, the three reasons.
- **From posted events** (:meth:`Scorer.score_events`): the features that
  come from events (counts, recency, trends, consistency...) and the
  account's tenure are computed by the feature engine itself, on an
  in-memory DuckDB holding only this account's row and the posted events,
  at the moment asked (default: now). Features from other tables
  (subscriptions, payments, users, account attributes) cannot be known
  from events: they keep their values of the read model's ``features`` row
  and the answer lists them.

Models are read from the registry once, and again only when the read
model's generation changes (a daily run that promotes a new version also
refreshes the read model).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from churnwatch.api._fast import FastChurnModel, fast_model
from churnwatch.api._lookup import Lookups
from churnwatch.config import Settings
from churnwatch.errors import ModelError
from churnwatch.features import FeatureSpec, compute_features
from churnwatch.inbox import events_table
from churnwatch.models import ModelRegistry
from churnwatch.models._registry import LoadedModel
from churnwatch.schema import TABLES, arrow_type
from churnwatch.scoring import RISK_TIERS
from churnwatch.views import ViewsNotFoundError
from churnwatch.warehouse import connect

__all__ = ["Scored", "Scorer"]

REASONS = 3
#: Feature kinds computed from posted events (plus tenure, from the sign-up date).
_FROM_EVENTS = {"events"}


@dataclasses.dataclass(frozen=True)
class Scored:
    """One account scored by one model.

    Attributes
    ----------
    account_id, target, model_version : str
    score : float
        Calibrated P(target) of a binary target, else the predicted value.
    risk_tier : str or None
        ``high`` / ``medium`` / ``low`` of a binary target.
    mrr, revenue_at_risk : float or None
        Revenue at risk is ``score * mrr`` for churn targets.
    reasons : list of str
        The features raising the score most, in words (accounts above the
        lowest tier).
    features_as_of : datetime or None
        The cutoff the features describe.
    computed_features : list of str
        Features computed from the posted events (real-time scoring only).
    kept_features : list of str
        Features taken from the read model's row (real-time scoring only).
    """

    account_id: str
    target: str
    model_version: str
    score: float
    risk_tier: str | None
    mrr: float | None
    revenue_at_risk: float | None
    reasons: list[str]
    features_as_of: dt.datetime | None
    computed_features: list[str] = dataclasses.field(default_factory=list)
    kept_features: list[str] = dataclasses.field(default_factory=list)


def _tier(score: float) -> str:
    for name, bound in RISK_TIERS:
        if score >= bound:
            return name
    return RISK_TIERS[-1][0]


def _scalar_frame(row: Mapping[str, Any], names: Sequence[str], text: set[str]) -> pd.DataFrame:
    """A one-row frame typed as the scoring's (numbers as float with NaN, text as object)."""
    columns: dict[str, Any] = {}
    for name in names:
        value = row.get(name)
        if name in text:
            columns[name] = np.array([value], dtype=object)
        else:
            columns[name] = np.array([np.nan if value is None else value], dtype=float)
    return pd.DataFrame(columns, copy=False)


class Scorer:
    """The promoted models, loaded once, and the scoring of one account.

    Parameters
    ----------
    registry : ModelRegistry or None
        Where the models are; without one, scoring answers that none is promoted.
    settings : Settings
        The churn horizon picks the default target (``churn_<horizon>d``).
    lookups : Lookups
        The read model's per-account rows.
    """

    def __init__(self, registry: ModelRegistry | None, settings: Settings, lookups: Lookups):
        self.registry = registry
        self.settings = settings
        self.lookups = lookups
        self._lock = threading.Lock()
        self._generation: str | None = None
        self._loaded: dict[str, LoadedModel] = {}
        self._text: dict[str, set[str]] = {}
        self._fast_models: dict[tuple[str, str], FastChurnModel | None] = {}

    def models(self) -> dict[str, LoadedModel]:
        """The promoted models by target (re-read when the read model's generation changes)."""
        try:
            generation: str | None = self.lookups.generation()
        except ViewsNotFoundError:
            generation = None
        with self._lock:
            if self._generation is None or generation != self._generation or not self._loaded:
                self._loaded = self._load()
                self._text = {}
                self._generation = generation
            return self._loaded

    def _load(self) -> dict[str, LoadedModel]:
        if self.registry is None:
            return {}
        promoted = self.registry.promoted()
        loaded: dict[str, LoadedModel] = {}
        for name, card in promoted.items():
            kept = self._loaded.get(name)
            if kept is not None and kept.card.version == card.version:
                loaded[name] = kept
            else:
                loaded[name] = self.registry.load(name, card.version)
        return loaded

    def warm(self) -> None:
        """Load the models now (at startup), with their one-row paths."""
        for found in self.models().values():
            self._fast(found)  # folds a blend's linear terms: ~0.5 s, not in a request

    def default_target(self) -> str | None:
        """The target scored when none is asked for: churn at the project's horizon."""
        models = self.models()
        preferred = f"churn_{self.settings.churn.horizon_days}d"
        if preferred in models:
            return preferred
        churn = sorted(name for name in models if name.startswith("churn"))
        return churn[0] if churn else (sorted(models)[0] if models else None)

    def model(self, target: str | None) -> LoadedModel:
        """The promoted model of ``target`` (default: :meth:`default_target`).

        Raises
        ------
        NotFoundError
            When ``target`` is not among the promoted models.
        ModelError
            When nothing is promoted.
        """
        models = self.models()
        name = target or self.default_target()
        known = ", ".join(sorted(models)) or "none"
        if target is not None and target not in models and models:
            from churnwatch.api._app import NotFoundError

            raise NotFoundError(f"no promoted model for {target!r}; promoted: {known}")
        if name is None or name not in models:
            raise ModelError(
                f"no promoted model for {name or 'churn'} (promoted: {known}); train one with "
                "'churnwatch train' and promote it with 'churnwatch models promote'"
            )
        return models[name]

    def _text_features(self, found: LoadedModel) -> set[str]:
        key = found.card.name
        if key not in self._text:
            specs = [FeatureSpec.from_dict(spec) for spec in found.card.feature_specs or []]
            self._text[key] = {spec.name for spec in specs if spec.dtype == "string"}
        return self._text[key]

    def _fast(self, found: LoadedModel) -> FastChurnModel | None:
        key = (found.card.name, found.card.version)
        with self._lock:
            if key not in self._fast_models:
                self._fast_models[key] = fast_model(found.model)
            return self._fast_models[key]

    def _apply(
        self,
        found: LoadedModel,
        account_id: str,
        values: Mapping[str, Any],
        mrr: float | None,
        as_of: dt.datetime | None,
    ) -> Scored:
        model = found.model
        fast = self._fast(found)
        frame: pd.DataFrame | None = None
        if fast is not None:
            score = fast.predict(values)
        else:
            frame = _scalar_frame(values, model.features, self._text_features(found))
            score = float(model.predict(frame)[0])
        binary = model.task == "binary"
        tier = _tier(score) if binary else None
        reasons: list[str] = []
        # As in the daily scoring: reasons for the accounts someone acts on.
        if binary and score >= RISK_TIERS[-2][1]:
            if fast is not None:
                reasons = fast.reasons(values, REASONS)
            else:
                assert frame is not None
                reasons = [reason.text for reason in model.reasons(frame, k=REASONS)[0]]
        churn = binary and model.target.startswith("churn")
        return Scored(
            account_id=account_id,
            target=model.target,
            model_version=found.card.version,
            score=score,
            risk_tier=tier,
            mrr=mrr,
            revenue_at_risk=score * mrr if churn and mrr is not None else None,
            reasons=reasons,
            features_as_of=as_of,
        )

    def _account(self, account_id: str) -> dict[str, Any]:
        from churnwatch.api._app import NotFoundError

        accounts = self.lookups.index("accounts")
        row = accounts.first(account_id) if accounts is not None else None
        if row is None:
            raise NotFoundError(f"no account {account_id!r} in the read model")
        return row

    def _feature_row(self, account_id: str) -> dict[str, Any]:
        features = self.lookups.index("features")
        if features is None:
            raise ModelError(
                "the read model has no features table: run 'churnwatch score' and "
                "'churnwatch views refresh' first"
            )
        row = features.first(account_id)
        if row is None:
            from churnwatch.api._app import NotFoundError

            raise NotFoundError(
                f"account {account_id!r} has no features in the read model (it was not "
                "scored at the last cutoff: not yet signed up, or already churned)"
            )
        return row

    def _features_as_of(self) -> dt.datetime | None:
        scored = self.lookups.model().meta.get("scored_at")
        return dt.datetime.fromisoformat(scored) if isinstance(scored, str) else None

    def score_account(self, account_id: str, target: str | None = None) -> Scored:
        """Score an account from its features in the read model."""
        found = self.model(target)
        account = self._account(account_id)
        row = self._feature_row(account_id)
        mrr = account.get("mrr")
        return self._apply(
            found, account_id, row, None if mrr is None else float(mrr), self._features_as_of()
        )

    def score_events(
        self,
        account_id: str,
        events: Sequence[Mapping[str, Any]],
        *,
        as_of: dt.datetime,
        target: str | None = None,
    ) -> Scored:
        """Score an account from posted events (see the module's description)."""
        found = self.model(target)
        account = self._account(account_id)
        specs = [FeatureSpec.from_dict(spec) for spec in found.card.feature_specs or []]
        wanted = set(found.model.features)
        computed = [
            spec
            for spec in specs
            if spec.name in wanted and (spec.source in _FROM_EVENTS or spec.kind == "tenure")
        ]
        kept = sorted(wanted - {spec.name for spec in computed})
        base = self._feature_row(account_id) if kept else {}
        values: dict[str, Any] = {name: base.get(name) for name in kept}
        if computed:
            values.update(_compute(account, events, computed, as_of))
        mrr = account.get("mrr")
        scored = self._apply(found, account_id, values, None if mrr is None else float(mrr), as_of)
        return dataclasses.replace(
            scored,
            computed_features=sorted(spec.name for spec in computed),
            kept_features=kept,
        )


def _compute(
    account: Mapping[str, Any],
    events: Sequence[Mapping[str, Any]],
    specs: Sequence[FeatureSpec],
    as_of: dt.datetime,
) -> dict[str, Any]:
    """Features of one account at ``as_of`` from its posted events, by the feature engine."""
    accounts_schema = TABLES["accounts"]
    attributes = {
        column.name: pa.array([account.get(column.name)], arrow_type(column.type))
        for column in accounts_schema.columns
        if column.name in account and column.type != "json"
    }
    rows = {name: [event.get(name) for event in events] for name in TABLES["events"].column_names}
    # Every posted event is this account's: the request names the account once.
    rows["account_id"] = [str(account["account_id"])] * len(events)
    with connect("duckdb:///:memory:", threads_count=1, memory_limit_mb=256) as warehouse:
        warehouse.ensure_schema()
        warehouse.append("accounts", pa.table(attributes))
        warehouse.append("events", events_table(rows))
        cutoffs = pa.table(
            {
                "account_id": pa.array([str(account["account_id"])], pa.string()),
                "cutoff": pa.array([as_of], pa.timestamp("us", tz="UTC")),
            }
        )
        found = compute_features(warehouse, cutoffs, list(specs)).to_pylist()[0]
    return {spec.name: found.get(spec.name) for spec in specs}
