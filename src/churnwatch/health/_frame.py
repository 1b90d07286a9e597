"""The accounts a retention analysis looks at, and their features, as of a date.

Health scores and segments describe the customers a business still has: the
accounts at risk of the project's ``[churn]`` label at the cutoff (created
before it and not churned yet), with the project's features computed there.
Both analyses read the same frame, so it is built here once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pandas as pd
import pyarrow as pa

from churnwatch.config import Settings
from churnwatch.errors import AnalysisError
from churnwatch.features import FeatureSpec, compute_features, feature_set
from churnwatch.labels import LabelSpec, accounts_at_risk
from churnwatch.warehouse import Warehouse

__all__ = ["analysis_cutoff", "population_frame", "project_specs"]


def analysis_cutoff(warehouse: Warehouse, as_of: dt.date | dt.datetime | None) -> dt.datetime:
    """The cutoff of an analysis "as of" a day: the midnight after it (UTC).

    Features then see every row of that day. Without a day, the end of the
    data (the day after its latest event).
    """
    from churnwatch.scoring import data_end

    if as_of is None:
        return data_end(warehouse)
    if isinstance(as_of, dt.datetime):
        return as_of if as_of.tzinfo else as_of.replace(tzinfo=dt.UTC)
    return dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)


def project_specs(
    settings: Settings, warehouse: Warehouse, names: Sequence[str]
) -> dict[str, FeatureSpec]:
    """The project's feature specs of the given names that exist (absent ones left out)."""
    known = {spec.name: spec for spec in feature_set(settings, warehouse)}
    return {name: known[name] for name in names if name in known}


def population_frame(
    warehouse: Warehouse,
    settings: Settings,
    cutoffs: Sequence[dt.datetime],
    specs: Sequence[FeatureSpec],
) -> pd.DataFrame:
    """Accounts at risk at each cutoff with the given features, sorted by cutoff and account.

    Raises
    ------
    AnalysisError
        If no account is at risk at any cutoff.
    """
    label = LabelSpec.from_settings(settings.churn)
    parts = [accounts_at_risk(warehouse, label, cutoff) for cutoff in cutoffs]
    population = pa.concat_tables(parts) if parts else None
    if population is None or population.num_rows == 0:
        shown = ", ".join(f"{c:%Y-%m-%d}" for c in cutoffs)
        raise AnalysisError(
            f"no account is a current customer ({label.describe()}) at {shown}; "
            "choose a date inside the data's range (--as-of)"
        )
    population = population.sort_by([("cutoff", "ascending"), ("account_id", "ascending")])
    frame: pd.DataFrame = compute_features(warehouse, population, list(specs)).to_pandas()
    return frame
