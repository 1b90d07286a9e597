"""Running a label spec over a schedule: :func:`make_labels` and :class:`LabelTable`."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from churnwatch.errors import ConfigError
from churnwatch.labels._queries import label_query
from churnwatch.labels._schedule import CutoffSchedule, to_utc
from churnwatch.labels._spec import LabelSpec
from churnwatch.warehouse import Warehouse

__all__ = ["LabelCounts", "LabelTable", "ObservationEnd", "infer_observation_end", "make_labels"]

#: The table and time column each kind reads its outcome from.
_SOURCES: dict[str, tuple[str, str]] = {
    "inactivity": ("events", "event_time"),
    "activity": ("events", "event_time"),
    "subscription": ("subscriptions", "started_at"),
    "conversion": ("subscriptions", "started_at"),
    "adoption": ("adoption_snapshots", "snapshot_date"),
    "revenue": ("payments", "paid_at"),
}


@dataclass(frozen=True)
class ObservationEnd:
    """The instant the data is complete up to, and how it was chosen.

    Parameters
    ----------
    at : datetime
        The observation end (UTC). A label window must close at or before it.
    source : {"given", "inferred"}
        Stated by the user (``[data] observation_end``) or read off the data.
    reason : str
        How it was chosen, in words.
    """

    at: dt.datetime
    source: Literal["given", "inferred"]
    reason: str


@dataclass(frozen=True)
class LabelCounts:
    """What happened to every candidate ``(account, cutoff)`` pair.

    ``candidates = not_yet_existing + already_churned + censored +
    churned_in_lead + examples``.

    Parameters
    ----------
    candidates : int
        Pairs the schedule asked about.
    not_yet_existing : int
        The account was created at or after the cutoff (or has no ``created_at``).
    already_churned : int
        The account was not at risk at the cutoff: already churned (for
        conversion: already paying).
    censored : int
        Even the shortest horizon runs past the observation end.
    churned_in_lead : int
        The outcome happened during the lead time, before the window opened.
    examples : int
        Rows of the label table.
    labelled : dict of str to int
        Per label column: rows with a label (longer horizons may be censored).
    positives : dict of str to int
        Per label column: rows labelled 1 (regression: rows with a non-zero target).
    censored_by_horizon : dict of str to int
        Per label column: rows whose window runs past the observation end.
    """

    candidates: int
    not_yet_existing: int
    already_churned: int
    censored: int
    churned_in_lead: int
    examples: int
    labelled: dict[str, int] = field(default_factory=dict)
    positives: dict[str, int] = field(default_factory=dict)
    censored_by_horizon: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class LabelTable:
    """Labels per ``(account_id, cutoff)``, with a record of how they were made.

    Parameters
    ----------
    frame : pyarrow.Table
        ``account_id`` (string), ``cutoff`` (timestamp[us, UTC]) and one column
        per horizon (``spec.columns``), sorted by cutoff then account. A label
        whose window runs past the observation end is null, never 0.
    spec : LabelSpec
        What was labelled.
    schedule : CutoffSchedule
        When.
    observation_end : ObservationEnd
        The end of the data used for censoring, and how it was chosen.
    data_start, data_end : datetime or None
        The earliest and latest time in the table the label reads.
    counts : LabelCounts
        What happened to every candidate pair.
    """

    frame: pa.Table
    spec: LabelSpec
    schedule: CutoffSchedule
    observation_end: ObservationEnd
    data_start: dt.datetime | None
    data_end: dt.datetime | None
    counts: LabelCounts

    def describe(self) -> str:
        """How the labels were made, in plain words."""
        c = self.counts
        table = _SOURCES[self.spec.kind][0]
        not_at_risk = "already paying" if self.spec.kind == "conversion" else "already churned"
        lines = [
            f"Label: {self.spec.describe()}.",
            f"Cutoffs: {self.schedule.description}.",
            f"Data: {table}.{_SOURCES[self.spec.kind][1]} from {_day(self.data_start)} "
            f"to {_day(self.data_end)}.",
            f"Observation end: {self.observation_end.at.isoformat()} "
            f"({self.observation_end.source}: {self.observation_end.reason}).",
            f"Of {c.candidates} account-cutoff pairs: {c.not_yet_existing} did not exist yet, "
            f"{c.already_churned} were {not_at_risk}, {c.censored} were censored (horizon past "
            f"the observation end), {c.churned_in_lead} resolved during the lead time; "
            f"{c.examples} are examples.",
        ]
        for column in self.spec.columns:
            what = "positive" if self.spec.binary else "non-zero"
            lines.append(
                f"  {column}: {c.labelled[column]} labelled, {c.positives[column]} {what}"
                + (
                    f", {c.censored_by_horizon[column]} censored"
                    if c.censored_by_horizon[column]
                    else ""
                )
                + "."
            )
        return "\n".join(lines)


def _day(value: dt.datetime | None) -> str:
    return "(no rows)" if value is None else value.isoformat()


def _scalar_time(warehouse: Warehouse, table: str, column: str, func: str) -> dt.datetime | None:
    result = warehouse.query(
        exp.select(exp.func(func, exp.column(column, quoted=True))).from_(table)
    )
    value = result.column(0)[0].as_py()
    if value is None:
        return None
    return to_utc(value)


def infer_observation_end(warehouse: Warehouse, spec: LabelSpec) -> ObservationEnd:
    """Read the observation end off the data the label uses.

    - subscription and conversion labels: the latest subscription **start**.
      End dates may run on past the last renewal the source recorded
      (scheduled ends of running subscriptions); taking the latest end would
      turn every account still subscribed into a churner.
    - events and payments: the latest event / payment, or the latest
      subscription start when subscriptions exist and it comes earlier (the
      data is complete only where every table is).
    - adoption snapshots: the day after the latest snapshot.

    Raises
    ------
    ConfigError
        When the table holds no rows to infer from.
    """
    table, column = _SOURCES[spec.kind]
    latest_start = _scalar_time(warehouse, "subscriptions", "started_at", "MAX")
    if spec.kind in ("subscription", "conversion"):
        if latest_start is None:
            raise _no_data(table)
        return ObservationEnd(
            latest_start,
            "inferred",
            "the latest subscription start; later end dates are scheduled ends, not churn",
        )
    latest = _scalar_time(warehouse, table, column, "MAX")
    if latest is None:
        raise _no_data(table)
    if spec.kind == "adoption":
        return ObservationEnd(
            latest + dt.timedelta(days=1), "inferred", "the day after the latest snapshot"
        )
    if latest_start is not None and latest_start < latest:
        return ObservationEnd(
            latest_start,
            "inferred",
            f"the latest subscription start, earlier than the latest {column} "
            f"({latest.isoformat()}): data past it may be incomplete",
        )
    return ObservationEnd(latest, "inferred", f"the latest {column} in {table}")


def _no_data(table: str) -> ConfigError:
    return ConfigError(
        f"cannot infer the observation end: table {table!r} is empty; load it, or give "
        "observation_end ([data] observation_end = 'YYYY-MM-DD')"
    )


def make_labels(
    warehouse: Warehouse,
    spec: LabelSpec,
    schedule: CutoffSchedule,
    *,
    observation_end: str | dt.date | dt.datetime | None = None,
) -> LabelTable:
    """Label every account at every cutoff, in the warehouse.

    One query handles every cutoff; only the per-``(account_id, cutoff)``
    rows come back.

    Parameters
    ----------
    warehouse : Warehouse
        Holds the canonical tables.
    spec : LabelSpec
        What to label.
    schedule : CutoffSchedule
        When.
    observation_end : str, date or datetime, optional
        The instant the data is complete up to (``[data] observation_end``);
        a date is its midnight UTC. Inferred from the data when omitted
        (see :func:`infer_observation_end`), and the result says so.

    Returns
    -------
    LabelTable

    Examples
    --------
    >>> from churnwatch.warehouse import connect
    >>> with connect("duckdb:///:memory:") as wh:
    ...     wh.ensure_schema()
    ...     labels = make_labels(
    ...         wh, LabelSpec("inactivity"), CutoffSchedule.explicit(["2024-01-01"]),
    ...         observation_end="2024-06-01",
    ...     )
    >>> labels.counts.candidates, labels.frame.column_names
    (0, ['account_id', 'cutoff', 'churn_30d'])
    """
    if observation_end is None:
        end = infer_observation_end(warehouse, spec)
    else:
        end = ObservationEnd(
            to_utc(observation_end, "observation_end"), "given", "stated by the user"
        )
    table, column = _SOURCES[spec.kind]
    data_start = _scalar_time(warehouse, table, column, "MIN")
    data_end = _scalar_time(warehouse, table, column, "MAX")

    cutoffs_table: str | None = None
    try:
        if not schedule.relative:
            cutoffs_table = f"cw_cutoffs_{uuid.uuid4().hex[:12]}"
            warehouse.create_table(cutoffs_table, [("cutoff", "timestamp")], temporary=True)
            warehouse.append(
                cutoffs_table,
                pa.table({"cutoff": pa.array(schedule.dates, pa.timestamp("us", tz="UTC"))}),
            )
        query = label_query(
            spec, cutoffs_table=cutoffs_table, days_after_signup=schedule.days_after_signup
        )
        raw = warehouse.query(query)
    finally:
        if cutoffs_table is not None:
            warehouse.drop_table(cutoffs_table, temporary=True)
    frame, counts = _settle(raw, spec, end.at)
    return LabelTable(frame, spec, schedule, end, data_start, data_end, counts)


def accounts_at_risk(warehouse: Warehouse, spec: LabelSpec, cutoff: dt.datetime) -> pa.Table:
    """The accounts that would be examples of ``spec`` at ``cutoff``: whom to score.

    The same test as :func:`make_labels` applies (the account exists and has
    not already churned, or is not yet paying for conversion), without the
    future: a model is applied to exactly the population it learned from.

    Parameters
    ----------
    warehouse : Warehouse
        Holds the canonical tables.
    spec : LabelSpec
        The model's label.
    cutoff : datetime
        The moment of scoring (timezone-aware).

    Returns
    -------
    pyarrow.Table
        ``account_id`` (string) and ``cutoff`` (``timestamp[us, UTC]``),
        sorted by account.

    Examples
    --------
    >>> import datetime as dt
    >>> from churnwatch.warehouse import connect
    >>> with connect("duckdb:///:memory:") as wh:
    ...     wh.ensure_schema()
    ...     found = accounts_at_risk(wh, LabelSpec("inactivity"),
    ...                              dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
    >>> found.num_rows
    0
    """
    name = f"cw_cutoffs_{uuid.uuid4().hex[:12]}"
    warehouse.create_table(name, [("cutoff", "timestamp")], temporary=True)
    try:
        warehouse.append(
            name, pa.table({"cutoff": pa.array([cutoff], pa.timestamp("us", tz="UTC"))})
        )
        raw = warehouse.query(label_query(spec, cutoffs_table=name, days_after_signup=None))
    finally:
        warehouse.drop_table(name, temporary=True)
    keep = (_ints(raw, "_exists") == 1) & (_ints(raw, "_at_risk") == 1)
    found = pa.table(
        {
            "account_id": raw.column("account_id").cast(pa.string()).filter(pa.array(keep)),
            "cutoff": raw.column("cutoff")
            .cast(pa.timestamp("us", tz="UTC"))
            .filter(pa.array(keep)),
        }
    )
    return found.sort_by("account_id")


def _ints(raw: pa.Table, name: str) -> np.ndarray:
    return np.asarray(raw.column(name).to_numpy(zero_copy_only=False), dtype=np.int64)


def _settle(raw: pa.Table, spec: LabelSpec, end: dt.datetime) -> tuple[pa.Table, LabelCounts]:
    """Sort candidates into examples and the reasons others are not, censor, type."""
    cutoff_type = pa.timestamp("us", tz="UTC")
    cutoffs = raw.column("cutoff").cast(cutoff_type)
    cutoff_us = np.asarray(cutoffs.cast(pa.int64()).to_numpy(zero_copy_only=False), np.int64)
    end_us = int((end - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) / dt.timedelta(microseconds=1))
    day_us = 86_400_000_000
    exists = _ints(raw, "_exists") == 1
    at_risk = exists & (_ints(raw, "_at_risk") == 1)
    censored_by = [
        cutoff_us + (spec.lead_days + h + spec.settle_days) * day_us > end_us
        for h in spec.horizon_days
    ]
    # Horizons are sorted: censoring the shortest censors them all.
    censored = at_risk & censored_by[0]
    in_lead = at_risk & ~censored & (_ints(raw, "_in_lead") == 1)
    keep = at_risk & ~censored & ~in_lead

    # 0/1 labels are int64, not int8: summing them (churners per month) must not overflow.
    label_type = pa.float64() if spec.kind == "revenue" else pa.int64()
    columns: dict[str, pa.Array] = {
        "account_id": raw.column("account_id").cast(pa.string()).filter(pa.array(keep)),
        "cutoff": cutoffs.filter(pa.array(keep)),
    }
    labelled: dict[str, int] = {}
    positives: dict[str, int] = {}
    censored_counts: dict[str, int] = {}
    for i, name in enumerate(spec.columns):
        values = raw.column(f"_value_{i}").cast(label_type).filter(pa.array(keep))
        values = pc.if_else(pa.array(censored_by[i][keep]), pa.scalar(None, label_type), values)
        columns[name] = values
        labelled[name] = len(values) - values.null_count
        positives[name] = int(pc.sum(pc.not_equal(values, 0).cast(pa.int64())).as_py() or 0)
        censored_counts[name] = values.null_count
    frame = pa.table(columns).sort_by([("cutoff", "ascending"), ("account_id", "ascending")])
    counts = LabelCounts(
        candidates=raw.num_rows,
        not_yet_existing=int((~exists).sum()),
        already_churned=int((exists & ~at_risk).sum()),
        censored=int(censored.sum()),
        churned_in_lead=int(in_lead.sum()),
        examples=int(keep.sum()),
        labelled=labelled,
        positives=positives,
        censored_by_horizon=censored_counts,
    )
    return frame, counts
