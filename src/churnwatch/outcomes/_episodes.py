"""Churn episodes as of a date, and what became of each: the KPIs' unit.

Episodes are rebuilt from the append-only ``transitions`` history, not from
the ledgers (which hold only the current state): a ``churned`` transition
opens an episode on its snapshot date (``churned_at`` is that date's 00:00
UTC), a ``re_adopted`` transition with the same episode id closes it as
recovered. Only snapshot churns count here; risk-alert episodes are
predictions, not churns.

Each episode is then classified, as of the date, into exactly one of:

=====================  ================================================================
``csm_true_win``       re-adopted, and the CSM's latest answer is ``won`` (not holdout)
``engaged_win``        re-adopted after CSM engagement without a ``won`` answer
``self_service_win``   re-adopted without CSM engagement, or in the holdout
``csm_loss``           not re-adopted, and the CSM's latest answer is ``lost``
``engaged_open``       not re-adopted, engaged, no ``lost`` answer (a claimed win waits
                       for re-adoption here)
``self_service_loss``  not re-adopted, without CSM engagement, or in the holdout
=====================  ================================================================

*Engagement* is a ``won`` or ``lost`` answer, or a CRM contact for the
account between the churn and the re-adoption (or the end of the as-of day).
A ``not_useful`` answer is feedback on the alert, not contact. Answers are
read as recorded so far, whatever the as-of date; CRM contacts up to the end
of the as-of day. Losses are provisional: an episode still open may yet
recover.

The holdout flag comes from the ledgers while the episode is in one, and is
otherwise recomputed with the tracker's own deterministic draw (the same
hash of the episode id, so it is the same answer the tracker gave as long as
``[tracker] holdout_share`` and ``holdout_seed`` have not changed).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import sqlalchemy as sa

from churnwatch._tracker_settings import TrackerSettings
from churnwatch.errors import OutcomeError
from churnwatch.outcomes._crm import first_contacts
from churnwatch.store import CHURN_LEDGER, OUTCOMES, TRACKER_RUNS, TRANSITIONS, WIN_LEDGER, Store
from churnwatch.tracker import in_holdout

__all__ = ["EPISODE_CLASSES", "episode_frame", "last_tracked_date", "midnight_utc"]

EPISODE_CLASSES = (
    "csm_true_win",
    "engaged_win",
    "self_service_win",
    "csm_loss",
    "engaged_open",
    "self_service_loss",
)


def midnight_utc(day: dt.date) -> pd.Timestamp:
    """The instant a snapshot date stands for: its 00:00 UTC.

    Examples
    --------
    >>> midnight_utc(dt.date(2024, 3, 1))
    Timestamp('2024-03-01 00:00:00+0000', tz='UTC')
    """
    return pd.Timestamp(day.isoformat(), tz="UTC")


def last_tracked_date(store: Store) -> dt.date | None:
    """The latest snapshot date the tracker processed, or None."""
    with store.engine.connect() as connection:
        found = connection.execute(sa.select(sa.func.max(TRACKER_RUNS.c.snapshot_date))).scalar()
    if found is None:
        return None
    return found if isinstance(found, dt.date) else dt.date.fromisoformat(str(found))


def _holdout(connection: sa.Connection) -> dict[str, bool]:
    flags: dict[str, bool] = {}
    for table in (CHURN_LEDGER, WIN_LEDGER):
        for row in connection.execute(sa.select(table.c.episode_id, table.c.holdout)):
            flags[str(row.episode_id)] = bool(row.holdout)
    return flags


def _latest_answers(connection: sa.Connection) -> pd.DataFrame:
    rows = connection.execute(
        sa.select(OUTCOMES.c.episode_id, OUTCOMES.c.outcome, OUTCOMES.c.useful).order_by(
            OUTCOMES.c.recorded_at, OUTCOMES.c.id
        )
    ).all()
    answers = pd.DataFrame.from_records(
        [tuple(r) for r in rows], columns=["episode_id", "outcome", "useful"]
    )
    return answers.drop_duplicates("episode_id", keep="last")


def episode_frame(
    store: Store, *, as_of: dt.date | None = None, tracker: TrackerSettings | None = None
) -> pd.DataFrame:
    """Every snapshot churn episode opened up to ``as_of``, with its fate and class.

    Parameters
    ----------
    store : Store
        The operational store.
    as_of : date, optional
        The snapshot date to look from; the last date tracked if omitted.
    tracker : TrackerSettings, optional
        Holdout share and seed for episodes no longer in a ledger.

    Returns
    -------
    DataFrame
        One row per episode: ``episode_id, account_id, product, churned_at,
        revenue, gmv, region, csm_id`` (at churn), ``recovered_at`` (NaT if
        not re-adopted by ``as_of``), ``recovered, holdout, outcome, useful,
        first_contact_at, engaged, klass``; sorted by ``episode_id``.

    Raises
    ------
    OutcomeError
        If nothing was tracked yet.

    Examples
    --------
    >>> import pyarrow as pa
    >>> from churnwatch.store import open_store
    >>> from churnwatch.tracker import track_snapshot
    >>> store = open_store("sqlite://")
    >>> for day, on in [(1, True), (2, False), (5, True)]:
    ...     _ = track_snapshot(store, pa.table({"account_id": ["a"], "is_enabled": [on]}),
    ...                        date=dt.date(2024, 3, day))
    >>> episode_frame(store)[["episode_id", "recovered", "klass"]].values.tolist()
    [['a||2024-03-02|snapshot', True, 'self_service_win']]
    """
    tracker = tracker or TrackerSettings()
    as_of = as_of or last_tracked_date(store)
    if as_of is None:
        raise OutcomeError(
            "nothing was tracked yet: run churnwatch track (or churnwatch daily) on a "
            "snapshot first"
        )
    columns = ["snapshot_date", "kind", "episode_id", "account_id", "product"]
    columns += ["revenue", "gmv", "region", "csm_id"]
    with store.engine.connect() as connection:
        found = connection.execute(
            sa.select(*[TRANSITIONS.c[c] for c in columns]).where(
                TRANSITIONS.c.kind.in_(("churned", "re_adopted")),
                TRANSITIONS.c.snapshot_date <= as_of,
            )
        ).all()
        holdout = _holdout(connection)
        answers = _latest_answers(connection)
    history = pd.DataFrame.from_records([tuple(r) for r in found], columns=columns)
    churns = history.loc[history["kind"] == "churned"].drop(columns="kind")
    churns = churns.rename(columns={"snapshot_date": "churn_date"})
    recoveries = history.loc[history["kind"] == "re_adopted", ["episode_id", "snapshot_date"]]
    recoveries = recoveries.rename(columns={"snapshot_date": "recovered_date"})
    frame = churns.merge(recoveries, on="episode_id", how="left")
    frame = frame.sort_values("episode_id", ignore_index=True)
    frame["churned_at"] = pd.to_datetime(frame["churn_date"].astype(str), utc=True)
    recovered_at = pd.to_datetime(frame["recovered_date"].astype("string"), utc=True)
    frame["recovered_at"] = recovered_at
    frame = frame.drop(columns=["churn_date", "recovered_date"])
    frame["recovered"] = frame["recovered_at"].notna()
    for name in ("revenue", "gmv"):
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype(float)
    frame["holdout"] = [
        holdout[e] if e in holdout else in_holdout(e, tracker.holdout_share, tracker.holdout_seed)
        for e in frame["episode_id"]
    ]
    frame["holdout"] = frame["holdout"].astype(bool)
    frame = frame.merge(answers, on="episode_id", how="left")
    frame["outcome"] = frame["outcome"].astype(object).where(frame["outcome"].notna(), None)
    end_of_day = midnight_utc(as_of + dt.timedelta(days=1))
    contact = first_contacts(store, frame, as_of=end_of_day.to_pydatetime())
    frame["first_contact_at"] = pd.Series(
        contact.reindex(frame["episode_id"]).array, index=frame.index, dtype="datetime64[ns, UTC]"
    )
    answered = frame["outcome"].isin(["won", "lost"]).to_numpy()
    contacted = frame["first_contact_at"].notna().to_numpy()
    held = frame["holdout"].to_numpy()
    engaged = ~held & (answered | contacted)
    frame["engaged"] = engaged
    recovered = frame["recovered"].to_numpy()
    won = (frame["outcome"] == "won").to_numpy() & ~held
    lost = (frame["outcome"] == "lost").to_numpy() & ~held
    frame["klass"] = np.select(
        [
            recovered & won,
            recovered & engaged,
            recovered,
            lost,
            engaged,
        ],
        ["csm_true_win", "engaged_win", "self_service_win", "csm_loss", "engaged_open"],
        default="self_service_loss",
    )
    return frame
