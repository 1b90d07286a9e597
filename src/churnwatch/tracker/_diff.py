"""Compare a day's snapshot with the parent table: what changed, as frames.

Pure and vectorised (one outer join of the snapshot with the parent table,
then boolean masks), so a million accounts take seconds and the store only
receives what changed. The rules, per (account, product):

- not in the parent table: a **new** account (``active`` if enabled, else
  ``never_enabled``: an account never seen on is not a churn);
- in the parent table but not in the snapshot: flagged **missing** (once,
  with the first day missing), never treated as churn; its episodes go on;
- back after missing: **returned**, flag cleared;
- ``active`` and now disabled: **churned**: an episode opens in the churn
  ledger (any risk episode of the account is superseded by it, and a win
  row of the same key goes to history);
- ``churned`` and now enabled: **re-adopted**: the episode moves from the
  churn ledger to the win ledger, with the days it took.

Attributes follow the snapshot; a null keeps the last known value. Revenue
and GMV are kept from the last day the product was on, since a disabled
product reports no GMV: they are what is at risk.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from churnwatch.tracker._snapshot import ATTRIBUTES, KEY

__all__ = ["PARENT_COLUMNS", "Changes", "diff_snapshot", "episode_id", "midnight", "stack"]

PARENT_COLUMNS = (
    *KEY,
    *ATTRIBUTES,
    "is_enabled",
    "state",
    "missing_since",
)
_NAMES = ("name", "csm_id", "region")
_AMOUNTS = ("revenue", "gmv")


def episode_id(account_id: str, product: str, day: dt.date, source: str) -> str:
    """The deterministic id of an episode, so that a re-run finds the same one.

    Examples
    --------
    >>> episode_id("a1", "payments", dt.date(2024, 3, 1), "snapshot")
    'a1|payments|2024-03-01|snapshot'
    """
    return f"{account_id}|{product}|{day.isoformat()}|{source}"


def midnight(day: dt.date) -> dt.datetime:
    """The UTC instant a snapshot date stands for (its 00:00)."""
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Changes:
    """What a snapshot changes, each a frame sorted by account and product.

    Attributes
    ----------
    new_accounts : DataFrame
        Parent rows to insert (``PARENT_COLUMNS``).
    updates : DataFrame
        Parent rows whose values change, with their new values.
    opened : DataFrame
        Churn episodes to open: key, ``episode_id``, attributes.
    reopened_wins : DataFrame
        Keys whose win row goes to history (the account churned again).
    superseded : list of str
        Risk episode ids closed because the account churned for real.
    recovered : DataFrame
        Episodes that end in a win: the churn-ledger row's key and
        ``episode_id`` plus the day's attributes.
    transitions : DataFrame
        History rows: ``account_id, product, kind, episode_id, revenue, gmv,
        region, csm_id``.
    """

    new_accounts: pd.DataFrame
    updates: pd.DataFrame
    opened: pd.DataFrame
    reopened_wins: pd.DataFrame
    superseded: list[str]
    recovered: pd.DataFrame
    transitions: pd.DataFrame

    def counts(self) -> dict[str, int]:
        """Number of transitions of each kind."""
        kinds = self.transitions["kind"].value_counts()
        return {str(k): int(v) for k, v in sorted(kinds.items())}


def stack(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Rows of frames with the same columns, one under the other.

    As objects: the frames hold nulls of different types, whose common dtype
    pandas is changing how it picks.
    """
    kept = [f for f in frames if len(f)]
    if not kept:
        return frames[0].iloc[0:0].astype(object)
    # Column by column with numpy: pandas' concat looks at every value of an
    # object column to see whether it is all null (seconds at a million rows).
    columns = list(kept[0].columns)
    return pd.DataFrame(
        {c: np.concatenate([f[c].to_numpy(dtype=object) for f in kept]) for c in columns},
        columns=columns,
    )


def _differs(now: pd.Series, before: pd.Series) -> np.ndarray:
    both_null = now.isna().to_numpy() & before.isna().to_numpy()
    unequal = (now != before).to_numpy()
    return np.asarray(unequal & ~both_null)


def _transitions(rows: pd.DataFrame, kind: str, episodes: pd.Series | None = None) -> pd.DataFrame:
    out = rows.loc[:, [*KEY, "revenue", "gmv", "region", "csm_id"]].copy()
    out["kind"] = kind
    out["episode_id"] = None if episodes is None else episodes.to_numpy()
    return out


def diff_snapshot(
    parent: pd.DataFrame,
    ledger: pd.DataFrame,
    wins: pd.DataFrame,
    snapshot: pd.DataFrame,
    day: dt.date,
) -> Changes:
    """Compare a snapshot with the parent table and ledgers.

    Parameters
    ----------
    parent : DataFrame
        The parent table's ``PARENT_COLUMNS`` (``missing_since`` null or a date).
    ledger : DataFrame
        The churn ledger's ``account_id, product, episode_id, source``.
    wins : DataFrame
        The win ledger's ``account_id, product``.
    snapshot : DataFrame
        The day's rows, from :func:`prepare_snapshot`.
    day : date
        The snapshot's date.

    Returns
    -------
    Changes
        What to write; nothing when the snapshot changes nothing.
    """
    previous = parent.loc[:, list(PARENT_COLUMNS)].rename(
        columns={c: f"{c}_prev" for c in PARENT_COLUMNS if c not in KEY}
    )
    # An empty side comes back from the store or pyarrow with float keys;
    # the keys are text on both sides whatever the row count.
    keys = dict.fromkeys(KEY, object)
    merged = snapshot.astype(keys).merge(
        previous.astype(keys), on=list(KEY), how="outer", indicator=True, sort=True
    )
    side = merged.pop("_merge").to_numpy()
    is_new = side == "left_only"
    absent = side == "right_only"
    both = side == "both"

    new_rows = merged.loc[is_new, [*KEY, *ATTRIBUTES, "is_enabled"]].copy()
    new_rows["is_enabled"] = new_rows["is_enabled"].astype(bool)
    new_rows["state"] = np.where(new_rows["is_enabled"], "active", "never_enabled")
    new_rows["missing_since"] = None

    seen = merged.loc[both]  # only read: no second copy of a million rows
    enabled = seen["is_enabled"].astype(bool).to_numpy()
    before = seen["state_prev"].to_numpy()
    was_missing = seen["missing_since_prev"].notna().to_numpy()
    churned = (before == "active") & ~enabled
    recovered = (before == "churned") & enabled
    state = np.where(churned, "churned", np.where(enabled, "active", before))
    # never_enabled accounts stay so while off; any account on is active.
    after = seen.loc[:, [*KEY]].copy()
    for name in _NAMES:
        after[name] = seen[name].where(seen[name].notna(), seen[f"{name}_prev"])
    for name in _AMOUNTS:
        kept = seen[f"{name}_prev"]
        fresh = seen[name].where(seen[name].notna(), kept)
        after[name] = np.where(enabled, fresh, kept)
    after["is_enabled"] = enabled
    after["state"] = state
    after["missing_since"] = None
    changed = was_missing.copy()
    for name in (*ATTRIBUTES, "is_enabled", "state"):
        changed |= _differs(after[name], seen[f"{name}_prev"])
    updates_seen = after.loc[changed]

    gone = merged.loc[absent & merged["missing_since_prev"].isna().to_numpy()]
    flagged = gone.loc[:, [*KEY]].copy()
    for name in ATTRIBUTES:
        flagged[name] = gone[f"{name}_prev"].to_numpy()
    flagged["is_enabled"] = gone["is_enabled_prev"].astype(bool).to_numpy()
    flagged["state"] = gone["state_prev"].to_numpy()
    flagged["missing_since"] = day

    updates = stack([updates_seen, flagged])
    updates = updates.sort_values(list(KEY), kind="stable", ignore_index=True)

    # Churns: open an episode; supersede risk episodes of the account; a win
    # row of the key goes to history.
    churn_rows = after.loc[churned].reset_index(drop=True)
    opened = churn_rows.copy()
    opened["episode_id"] = [
        episode_id(a, p, day, "snapshot")
        for a, p in zip(opened["account_id"], opened["product"], strict=True)
    ]
    risky = ledger.loc[ledger["source"] == "risk"]
    superseded = sorted(
        risky.loc[risky["account_id"].isin(set(opened["account_id"])), "episode_id"].tolist()
    )
    win_keys = set(zip(wins["account_id"], wins["product"], strict=True))
    reopened = opened.loc[
        [k in win_keys for k in zip(opened["account_id"], opened["product"], strict=True)],
        list(KEY),
    ].reset_index(drop=True)

    # Re-adoptions: the snapshot episode of the key moves to the win ledger.
    back = after.loc[recovered].reset_index(drop=True)
    snapshot_eps = ledger.loc[ledger["source"] == "snapshot", [*KEY, "episode_id"]]
    back = back.merge(snapshot_eps, on=list(KEY), how="inner")

    transitions = stack(
        [
            _transitions(new_rows, "new"),
            _transitions(flagged, "missing"),
            _transitions(after.loc[was_missing], "returned"),
            _transitions(opened, "churned", opened["episode_id"]),
            _transitions(back, "re_adopted", back["episode_id"]),
        ]
    )
    transitions = transitions.sort_values([*KEY, "kind"], kind="stable", ignore_index=True)
    return Changes(
        new_accounts=new_rows.reset_index(drop=True),
        updates=updates,
        opened=opened,
        reopened_wins=reopened,
        superseded=superseded,
        recovered=back,
        transitions=transitions,
    )
