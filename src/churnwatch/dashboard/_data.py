"""The questions pages ask the read model and the store, under the sidebar's filters.

Plain functions over a :class:`~churnwatch.views.ReadModel` (DuckDB over the
generation's Parquet files, so a 1M-account table is aggregated, never loaded)
and over the episodes of :func:`churnwatch.outcomes.episode_frame`. Pages
only lay their answers out.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from churnwatch.outcomes import Kpis, kpis_from_episodes
from churnwatch.views import AccountFilter, AccountPage, ReadModel

__all__ = [
    "account_page",
    "account_row",
    "account_summary",
    "accounts_csv",
    "filter_episodes",
    "filtered_durations",
    "kpis_by",
    "risk_histogram",
    "segment_points",
    "tier_breakdown",
]


def _where(model: ReadModel, filters: AccountFilter) -> tuple[str, list[Any]]:
    return filters.where(model.columns("accounts"))


def _frame(table: pa.Table) -> pd.DataFrame:
    frame: pd.DataFrame = table.to_pandas()
    return frame


def _present(model: ReadModel, column: str, fallback: str = "NULL") -> str:
    return f'"{column}"' if column in model.columns("accounts") else fallback


def account_page(
    model: ReadModel,
    filters: AccountFilter,
    *,
    sort_by: str,
    descending: bool,
    offset: int,
    limit: int,
    columns: Sequence[str],
    late_from_offset: int = 10_000,
) -> AccountPage:
    """A page of the account list; deep pages fetch their rows once their ids are known.

    Sorting a million rows with every column costs seconds deep in the list
    (2.1 s at offset 500,000 by MRR); sorting only the ids and then reading
    the page's rows costs half of it. Near the top DuckDB keeps only the
    first rows while sorting, and one query is quicker. The rows come back
    in list order either way.
    """
    if offset < late_from_offset:
        return model.accounts_page(
            filters,
            sort_by=sort_by,
            descending=descending,
            offset=offset,
            limit=limit,
            columns=columns,
        )
    ids_page = model.accounts_page(
        filters,
        sort_by=sort_by,
        descending=descending,
        offset=offset,
        limit=limit,
        columns=["account_id"],
    )
    ids = ids_page.rows.column("account_id").to_pylist()
    chosen = [c for c in columns if c in model.columns("accounts")]
    select = ", ".join(f'"{c}"' for c in dict.fromkeys(["account_id", *chosen]))
    if not ids:
        rows = model.query(f"SELECT {select} FROM {{a}} LIMIT 0", a="accounts")
    else:
        rows = model.query(
            f"SELECT {select} FROM {{a}} WHERE account_id IN ({', '.join('?' for _ in ids)})",
            ids,
            a="accounts",
        )
        position = {key: i for i, key in enumerate(ids)}
        order = sorted(range(rows.num_rows), key=lambda i: position[rows["account_id"][i].as_py()])
        rows = rows.take(order)
    return AccountPage(rows.select(chosen), ids_page.total, offset, limit)


def account_row(model: ReadModel, account_id: str) -> dict[str, Any] | None:
    """One account's row, or None.

    A scan of the ``account_id`` column (about 50 ms at 1M accounts) rather
    than :meth:`ReadModel.account`, whose index keeps the whole accounts
    table in memory: worth it for the API's thousands of lookups a second,
    not for a page opened now and then.
    """
    rows = model.rows_of("accounts", account_id).to_pylist()
    return dict(rows[0]) if rows else None


def account_summary(model: ReadModel, filters: AccountFilter) -> dict[str, float | int | None]:
    """Accounts, active accounts, churned, revenue at risk and mean risk under ``filters``."""
    where, params = _where(model, filters)
    status = _present(model, "status", "'active'")
    row = model.query(
        f"""SELECT count(*) AS accounts,
                   count(*) FILTER (WHERE {status} = 'active') AS active_accounts,
                   count(*) FILTER (WHERE {status} = 'churned') AS churned_accounts,
                   coalesce(sum({_present(model, "revenue_at_risk", "0.0")}), 0.0)
                       AS revenue_at_risk,
                   avg({_present(model, "churn_risk")}) AS mean_risk,
                   coalesce(sum({_present(model, "mrr", "0.0")}), 0.0) AS mrr
            FROM {{a}} WHERE {where}""",
        params,
        a="accounts",
    ).to_pylist()[0]
    return dict(row)


def tier_breakdown(model: ReadModel, filters: AccountFilter) -> pd.DataFrame:
    """Accounts and revenue at risk per risk tier, under ``filters``."""
    where, params = _where(model, filters)
    tier = _present(model, "risk_tier", "'unscored'")
    found = model.query(
        f"""SELECT coalesce({tier}, 'unscored') AS risk_tier, count(*) AS accounts,
                   coalesce(sum({_present(model, "revenue_at_risk", "0.0")}), 0.0)
                       AS revenue_at_risk
            FROM {{a}} WHERE {where} GROUP BY 1 ORDER BY 2 DESC""",
        params,
        a="accounts",
    )
    return _frame(found)


def risk_histogram(model: ReadModel, filters: AccountFilter, bins: int = 20) -> pd.DataFrame:
    """Accounts per band of churn risk (``bins`` equal bands of 0-1), under ``filters``."""
    if "churn_risk" not in model.columns("accounts"):
        return pd.DataFrame({"risk_from": [], "accounts": []})
    where, params = _where(model, filters)
    frame = model.query(
        f"""SELECT least(floor(churn_risk * ?), ? - 1) / ? AS risk_from, count(*) AS accounts
            FROM {{a}} WHERE {where} AND churn_risk IS NOT NULL GROUP BY 1 ORDER BY 1""",
        [bins, bins, bins, *params],
        a="accounts",
    )
    return _frame(frame)


def accounts_csv(
    model: ReadModel,
    filters: AccountFilter,
    *,
    sort_by: str,
    descending: bool,
    columns: Sequence[str],
    mask: Callable[[pd.DataFrame], pd.DataFrame],
    limit_rows: int = 100_000,
) -> bytes:
    """The filtered, sorted accounts (at most ``limit_rows``) as CSV, through ``mask``."""
    pages = []
    for offset in range(0, limit_rows, 10_000):
        page = model.accounts_page(
            filters,
            sort_by=sort_by,
            descending=descending,
            offset=offset,
            limit=10_000,
            columns=columns,
        )
        pages.append(page.rows)
        if offset + 10_000 >= page.total:
            break
    frame = mask(pa.concat_tables(pages).to_pandas())
    out = io.BytesIO()
    pacsv.write_csv(pa.Table.from_pandas(frame, preserve_index=False), out)
    return out.getvalue()


def segment_points(model: ReadModel, filters: AccountFilter) -> pd.DataFrame:
    """The sampled PCA points of the accounts matching ``filters``, with their risk."""
    where, params = _where(model, filters)
    risk = "churn_risk" if "churn_risk" in model.columns("accounts") else "NULL"
    # A semi-join: the filter's SQL names the accounts' own columns, unqualified.
    points = model.query(
        # Three decimals are more than a scatter shows, and a third of the bytes sent.
        f"""SELECT p.account_id, round(p.pc1, 3) AS pc1, round(p.pc2, 3) AS pc2, p.segment,
                   round(a.churn_risk, 3) AS churn_risk
            FROM {{p}} AS p
            JOIN (SELECT account_id, {risk} AS churn_risk FROM {{a}} WHERE {where}) AS a
              ON a.account_id = p.account_id""",
        params,
        p="segment_points",
        a="accounts",
    )
    return _frame(points)


def filtered_durations(
    model: ReadModel, filters: AccountFilter, attribute: str | None = None
) -> pd.DataFrame:
    """The followed periods of the accounts matching ``filters``, for survival curves.

    ``duration_days, event_observed`` per period of ``survival_durations``,
    with ``group``: the account's ``attribute`` (as text; ``all`` when no
    attribute is given). Periods of accounts without the attribute are left out.
    """
    where, params = _where(model, filters)
    group = "'all'" if attribute is None else f'CAST(a."{attribute}" AS VARCHAR)'
    chosen = "account_id" if attribute is None else f'account_id, "{attribute}"'
    found = model.query(
        f"""SELECT d.duration_days, d.event_observed, {group} AS "group"
            FROM {{d}} AS d
            JOIN (SELECT {chosen} FROM {{a}} WHERE {where}) AS a
              ON a.account_id = d.account_id""",
        params,
        d="survival_durations",
        a="accounts",
    )
    frame = _frame(found)
    return frame.loc[frame["group"].notna()].reset_index(drop=True)


def filter_episodes(
    episodes: pd.DataFrame, filters: AccountFilter, model: ReadModel | None = None
) -> pd.DataFrame:
    """The episodes of ``episodes`` that pass ``filters``.

    Region and CSM are the episode's own, at churn; the other filters (risk
    tier, plan, platform, segment) keep the episodes of the read model's
    accounts that pass them, when ``model`` is given.

    Examples
    --------
    >>> frame = pd.DataFrame({"account_id": ["a", "b", "c"], "region": ["eu", "us", None],
    ...                       "csm_id": ["c1", "c1", "c2"]})
    >>> filter_episodes(frame, AccountFilter(region=("eu",)))["account_id"].tolist()
    ['a']
    """
    keep = pd.Series(True, index=episodes.index)
    for column in ("region", "csm_id"):
        wanted = getattr(filters, column)
        if wanted:
            keep &= episodes[column].isin(wanted)
    others = dataclasses.replace(filters, region=(), csm_id=())
    if model is not None and others != AccountFilter():
        where, params = others.where(model.columns("accounts"))
        ids = model.query(f"SELECT account_id FROM {{a}} WHERE {where}", params, a="accounts")
        keep &= episodes["account_id"].isin(ids.column("account_id").to_pylist())
    return episodes.loc[keep]


def kpis_by(episodes: pd.DataFrame, as_of: dt.date, column: str, *, top: int = 20) -> pd.DataFrame:
    """The main KPIs per value of ``column`` (region, csm_id), for the ``top`` busiest.

    Each group's figures come from :func:`~churnwatch.outcomes.kpis_from_episodes`,
    so they are the same KPIs as the whole's, on fewer episodes.
    """
    keys = episodes[column].astype(object).where(episodes[column].notna(), "unknown")
    busiest = keys.value_counts().head(top).index
    rows = []
    for key in busiest:
        kpis: Kpis = kpis_from_episodes(episodes.loc[keys == key], as_of)
        rows.append(
            {
                column: key,
                "episodes": kpis.episodes,
                "accounts_at_risk": kpis.accounts_at_risk,
                "revenue_at_risk": kpis.revenue_at_risk,
                "accounts_recovered": kpis.accounts_recovered,
                "revenue_recovered": kpis.revenue_recovered,
                "csm_true_wins": kpis.csm_true_wins,
                "csm_losses": kpis.csm_losses,
                "self_service_wins": kpis.self_service_wins,
            }
        )
    return pd.DataFrame(rows)
