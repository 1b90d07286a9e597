"""CRM activity: when CSMs actually contacted accounts, and how soon after a churn.

A CRM export (calls, e-mails, meetings) is imported into the store's
``crm_activity`` table from a CSV file with the columns ``account``,
``csm``, ``time``, ``kind`` and ``notes`` (``account_id``, ``csm_id`` and
``activity_at`` are accepted too). Times without a zone are taken as UTC,
which is what CRM exports write. Importing the same file again adds nothing:
a row equal to one already stored (account, CSM, time, kind) is skipped.

The time from churn to first contact of an episode is the first activity
for the account at or after the churn instant, up to its re-adoption.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from churnwatch.errors import OutcomeError
from churnwatch.store import CRM_ACTIVITY, Store

__all__ = ["CRM_COLUMNS", "first_contacts", "import_crm_activity", "read_crm_csv"]

#: Accepted header names of each column of a CRM file (the first found wins).
CRM_COLUMNS: dict[str, tuple[str, ...]] = {
    "account_id": ("account", "account_id"),
    "csm_id": ("csm", "csm_id"),
    "activity_at": ("time", "activity_at", "timestamp"),
    "kind": ("kind", "type"),
    "notes": ("notes", "note"),
}
_KIND_CHARS = 32


def read_crm_csv(path: str | Path) -> pd.DataFrame:
    """Read and check a CRM activity CSV file.

    Returns
    -------
    DataFrame
        ``account_id, csm_id, activity_at`` (UTC), ``kind, notes``.

    Raises
    ------
    OutcomeError
        If the file cannot be read, lacks the account or time column, or has
        a row without an account or with a time that is not one.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "crm.csv"
    >>> _ = path.write_text("account,csm,time,kind,notes\\na1,c1,2024-03-02 10:00,call,\\n")
    >>> read_crm_csv(path)[["account_id", "activity_at", "kind"]].values.tolist()
    [['a1', Timestamp('2024-03-02 10:00:00+0000', tz='UTC'), 'call']]
    """
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise OutcomeError(f"cannot read the CRM file {path}: {exc}") from None
    except pd.errors.EmptyDataError:
        raise OutcomeError(f"the CRM file {path} is empty; expected a header row") from None
    lower = {str(c).strip().lower(): c for c in raw.columns}
    frame = pd.DataFrame(index=raw.index)
    for column, names in CRM_COLUMNS.items():
        found = next((lower[n] for n in names if n in lower), None)
        if found is None and column in ("account_id", "activity_at"):
            raise OutcomeError(
                f"the CRM file {path} has no {names[0]!r} column (columns: "
                f"{', '.join(map(str, raw.columns))}); expected account, csm, time, kind, notes"
            )
        values = raw[found].str.strip() if found is not None else pd.Series("", index=raw.index)
        frame[column] = values.replace("", None)
    blank = frame["account_id"].isna()
    if blank.any():
        row = int(np.flatnonzero(blank.to_numpy())[0]) + 2  # header is line 1
        raise OutcomeError(f"line {row} of the CRM file {path} has no account")
    times = pd.to_datetime(frame["activity_at"], errors="coerce", utc=True, format="mixed")
    bad = times.isna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise OutcomeError(
            f"line {row + 2} of the CRM file {path} has time {frame['activity_at'].iloc[row]!r}, "
            "which is not a date and time; write it as YYYY-MM-DD HH:MM[:SS][+zone]"
        )
    frame["activity_at"] = times
    long_kind = frame["kind"].fillna("").str.len() > _KIND_CHARS
    if long_kind.any():
        row = int(np.flatnonzero(long_kind.to_numpy())[0])
        raise OutcomeError(
            f"line {row + 2} of the CRM file {path} has a kind longer than {_KIND_CHARS} "
            "characters; use a short word such as call, email or meeting"
        )
    return frame.reset_index(drop=True)


def import_crm_activity(store: Store, path: str | Path) -> int:
    """Import a CRM activity CSV file into ``crm_activity``; return the rows added.

    Rows already stored (same account, CSM, time and kind) are skipped, so
    importing a file twice, or an export that overlaps the last one, adds
    each contact once.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from churnwatch.store import open_store
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "crm.csv"
    >>> _ = path.write_text("account,csm,time,kind,notes\\na1,c1,2024-03-02T10:00Z,call,hi\\n")
    >>> store = open_store("sqlite://")
    >>> import_crm_activity(store, path), import_crm_activity(store, path)
    (1, 0)
    """
    frame = read_crm_csv(path)
    if frame.empty:
        return 0

    def text(value: object) -> str | None:
        return None if value is None or value is pd.NA or value != value else str(value)

    times = [t.to_pydatetime() for t in frame["activity_at"]]
    rows: list[dict[str, Any]] = [
        {
            "account_id": str(account),
            "csm_id": text(csm),
            "activity_at": at,
            "kind": text(kind),
            "notes": text(notes),
        }
        for account, csm, at, kind, notes in zip(
            frame["account_id"].tolist(),
            frame["csm_id"].tolist(),
            times,
            frame["kind"].tolist(),
            frame["notes"].tolist(),
            strict=True,
        )
    ]
    with store.transaction() as connection:
        accounts = sorted({str(r["account_id"]) for r in rows})
        seen: set[tuple[object, ...]] = set()
        for start in range(0, len(accounts), 500):
            found = connection.execute(
                sa.select(
                    CRM_ACTIVITY.c.account_id,
                    CRM_ACTIVITY.c.csm_id,
                    CRM_ACTIVITY.c.activity_at,
                    CRM_ACTIVITY.c.kind,
                ).where(CRM_ACTIVITY.c.account_id.in_(accounts[start : start + 500]))
            )
            seen.update(tuple(row) for row in found)
        fresh = []
        for row in rows:
            key = (row["account_id"], row["csm_id"], row["activity_at"], row["kind"])
            if key not in seen:
                seen.add(key)
                fresh.append(row)
        if fresh:
            connection.execute(CRM_ACTIVITY.insert(), fresh)
    return len(fresh)


def first_contacts(
    store: Store, episodes: pd.DataFrame, *, as_of: dt.datetime | None = None
) -> pd.Series:
    """The first CRM contact of each episode, or NaT: at or after churn, before re-adoption.

    Parameters
    ----------
    store : Store
        Holds ``crm_activity``.
    episodes : DataFrame
        ``episode_id, account_id, churned_at`` and ``recovered_at`` (NaT while open).
    as_of : datetime, optional
        Ignore contacts after this instant.

    Returns
    -------
    Series
        UTC timestamps indexed by ``episode_id``.
    """
    query = sa.select(CRM_ACTIVITY.c.account_id, CRM_ACTIVITY.c.activity_at)
    if as_of is not None:
        query = query.where(CRM_ACTIVITY.c.activity_at <= as_of)
    with store.engine.connect() as connection:
        contacts = pd.DataFrame.from_records(
            list(connection.execute(query)), columns=["account_id", "activity_at"]
        )
    empty = pd.Series(pd.NaT, index=episodes["episode_id"], dtype="datetime64[ns, UTC]")
    if contacts.empty or episodes.empty:
        return empty
    contacts["activity_at"] = pd.to_datetime(contacts["activity_at"], utc=True)
    joined = episodes.loc[:, ["episode_id", "account_id", "churned_at", "recovered_at"]].merge(
        contacts, on="account_id", how="inner"
    )
    after = joined["activity_at"] >= joined["churned_at"]
    before = joined["recovered_at"].isna() | (joined["activity_at"] <= joined["recovered_at"])
    first = joined.loc[after & before].groupby("episode_id")["activity_at"].min()
    return first.reindex(empty.index).astype("datetime64[ns, UTC]")
