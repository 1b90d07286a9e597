"""The reader: account pages against pandas, and lookups before and after the index is built."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from churnwatch.errors import ChurnwatchError
from churnwatch.views import AccountFilter, ReadModel, write_generation


def _accounts(n: int = 500) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    return pd.DataFrame(
        {
            "account_id": [f"acct{i:04d}" for i in range(n)],
            "name": [f"Company {i}" for i in range(n)],
            "region": rng.choice(["eu", "us", "apac"], n),
            "risk_tier": rng.choice(["high", "medium", "low"], n),
            "churn_risk": rng.random(n).round(6),
            "mrr": rng.gamma(2.0, 50.0, n).round(2),
        }
    )


@pytest.fixture
def model(tmp_path: Path) -> tuple[ReadModel, pd.DataFrame]:
    frame = _accounts()
    write_generation(tmp_path / "views", {"accounts": pa.Table.from_pandas(frame)}, {})
    return ReadModel(tmp_path / "views"), frame


def test_a_page_is_the_filtered_sorted_slice(model: tuple[ReadModel, pd.DataFrame]) -> None:
    reader, frame = model
    page = reader.accounts_page(
        AccountFilter(region=("eu", "us"), min_risk=0.2),
        sort_by="mrr",
        descending=False,
        offset=10,
        limit=25,
    )
    expected = frame.loc[frame["region"].isin(["eu", "us"]) & (frame["churn_risk"] >= 0.2)]
    expected = expected.sort_values(["mrr", "account_id"], kind="stable")
    assert page.total == len(expected)
    assert page.rows.column("account_id").to_pylist() == expected["account_id"].iloc[10:35].tolist()


def test_search_matches_id_or_name_in_any_case(model: tuple[ReadModel, pd.DataFrame]) -> None:
    reader, frame = model
    page = reader.accounts_page(AccountFilter(search="COMPANY 12"), limit=100)
    expected = frame.loc[frame["name"].str.lower().str.contains("company 12")]
    assert sorted(page.rows.column("account_id").to_pylist()) == sorted(expected["account_id"])


def test_bad_paging_is_a_user_error(model: tuple[ReadModel, pd.DataFrame]) -> None:
    reader, _ = model
    with pytest.raises(ChurnwatchError, match="sort by"):
        reader.accounts_page(sort_by="name; drop table")
    with pytest.raises(ChurnwatchError, match="limit"):
        reader.accounts_page(limit=0)


def test_lookups_agree_before_and_after_the_index(model: tuple[ReadModel, pd.DataFrame]) -> None:
    reader, frame = model
    # The first lookups are answered by a query while the index is built.
    first = [reader.account(a) for a in ("acct0007", "acct0499", "nobody")]
    deadline = time.monotonic() + 30
    while reader._index is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert reader._index is not None
    again = [reader.account(a) for a in ("acct0007", "acct0499", "nobody")]
    assert first == again
    assert first[2] is None
    row = frame.set_index("account_id").loc["acct0499"]
    assert first[1] is not None
    assert first[1]["churn_risk"] == row["churn_risk"]
    assert first[1]["region"] == row["region"]


def test_a_new_generation_is_followed(tmp_path: Path) -> None:
    root = tmp_path / "views"
    write_generation(root, {"accounts": pa.table({"account_id": ["a"], "churn_risk": [0.1]})}, {})
    reader = ReadModel(root, recheck_seconds=0.0)
    assert reader.account("a") == {"account_id": "a", "churn_risk": 0.1}
    write_generation(root, {"accounts": pa.table({"account_id": ["a"], "churn_risk": [0.9]})}, {})
    assert reader.account("a") == {"account_id": "a", "churn_risk": 0.9}
