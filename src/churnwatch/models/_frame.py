"""The training frame: labels at each cutoff joined to the features at that cutoff.

Several label specs can share one frame (churn at 14 and 30 days, conversion,
next-month activity): the rows are every (account, cutoff) that is an
example of at least one of them, the features are computed once for all,
and a target is null on the rows that are not its examples (a paying
account is no conversion example) as well as where it is censored.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa

from churnwatch.errors import ModelError
from churnwatch.features import FeatureSpec, compute_features, default_features
from churnwatch.labels import CutoffSchedule, LabelSpec, LabelTable, make_labels
from churnwatch.warehouse import Warehouse

__all__ = ["TrainingFrame", "training_frame"]


@dataclass
class TrainingFrame:
    """Examples to learn from: one row per account and cutoff.

    Attributes
    ----------
    data : pandas.DataFrame
        ``account_id``, ``cutoff``, the feature columns, then the label
        columns (nulls where a label is censored).
    features : tuple of str
        The feature columns.
    targets : tuple of str
        The label columns (one per horizon).
    specs : tuple of FeatureSpec
        How each feature was computed.
    labels : tuple of LabelTable
        How each target's labels were made (spec, schedule, counts,
        observation end), in the order of the specs given.

    Notes
    -----
    A label at cutoff ``c`` is known only at ``c + delay_days`` (lead time,
    horizon and, for subscriptions, the renewal grace): :meth:`delay_days`.
    """

    data: pd.DataFrame
    features: tuple[str, ...]
    targets: tuple[str, ...]
    specs: tuple[FeatureSpec, ...]
    labels: tuple[LabelTable, ...]

    def label_table(self, target: str) -> LabelTable:
        """The label table ``target`` comes from."""
        for table in self.labels:
            if target in table.spec.columns:
                return table
        raise ModelError(
            f"no target {target!r} in this frame; its targets are {', '.join(self.targets)}"
        )

    def delay_days(self, target: str) -> int:
        """Days after its cutoff until the label ``target`` is settled."""
        spec = self.label_table(target).spec
        horizon = spec.horizon_days[spec.columns.index(target)]
        return spec.lead_days + horizon + spec.settle_days

    @property
    def cutoffs(self) -> list[dt.datetime]:
        """The distinct cutoffs, in order."""
        return [pd.Timestamp(c).to_pydatetime() for c in sorted(self.data["cutoff"].unique())]


def training_frame(
    warehouse: Warehouse,
    label_specs: LabelSpec | Sequence[LabelSpec],
    schedule: CutoffSchedule,
    specs: Sequence[FeatureSpec] | None = None,
    *,
    observation_end: str | dt.datetime | None = None,
) -> TrainingFrame:
    """Label the accounts at each cutoff and compute their features there.

    Parameters
    ----------
    warehouse : Warehouse
        Holds the canonical tables.
    label_specs : LabelSpec or sequence of LabelSpec
        What is predicted (churn at one or more horizons, conversion, ...);
        their label columns must have distinct names.
    schedule : CutoffSchedule
        When accounts are observed.
    specs : sequence of FeatureSpec, optional
        The features; the default set of the warehouse when omitted.
    observation_end : str or datetime, optional
        Where the data ends; inferred (and said) when omitted.

    Returns
    -------
    TrainingFrame

    Raises
    ------
    ModelError
        If no account is an example at any cutoff.
    """
    specs_list = [label_specs] if isinstance(label_specs, LabelSpec) else list(label_specs)
    tables = [
        make_labels(warehouse, spec, schedule, observation_end=observation_end)
        for spec in specs_list
    ]
    targets = tuple(column for table in tables for column in table.spec.columns)
    if len(set(targets)) < len(targets):
        raise ModelError(
            f"two label specs make a column of the same name ({', '.join(targets)}); "
            "give one of them a name"
        )
    keys: pd.DataFrame | None = None
    for table in tables:
        part = table.frame.to_pandas()
        keys = part if keys is None else keys.merge(part, on=["account_id", "cutoff"], how="outer")
    if keys is None or keys.empty:
        raise ModelError(
            f"no examples: no account is at risk at the cutoffs ({schedule.description}); "
            "move the cutoffs into the data's range"
        )
    keys = keys.sort_values(["cutoff", "account_id"], kind="stable", ignore_index=True)
    chosen = list(specs) if specs is not None else default_features(warehouse)
    cutoffs = pa.Table.from_pandas(keys.loc[:, ["account_id", "cutoff"]], preserve_index=False)
    data = compute_features(warehouse, cutoffs, chosen).to_pandas()
    for name in targets:
        data[name] = keys[name].astype(float).to_numpy()
    return TrainingFrame(
        data=data,
        features=tuple(spec.name for spec in chosen),
        targets=targets,
        specs=tuple(chosen),
        labels=tuple(tables),
    )
