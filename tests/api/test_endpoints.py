"""The full API over a real server: keys, accounts, scoring, events, retention, health."""

from __future__ import annotations

import datetime as dt
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import sqlalchemy as sa
from sqlglot import exp

from churnwatch.api import create_api_key, revoke_api_key
from churnwatch.inbox import drain_inbox, pending_events
from churnwatch.store import INBOX_EVENTS
from churnwatch.views import ReadModel
from churnwatch.warehouse import connect

from ._business import Business
from .conftest import Api


def _accounts(api: Api) -> pa.Table:
    return ReadModel(api.business.views_root).table("accounts")


# -- keys ----------------------------------------------------------------------------


def test_health_needs_no_key_and_names_the_generation_and_model(api: Api) -> None:
    answered = api.client.get("/health")
    assert answered.status_code == 200, answered.text
    body = answered.json()
    assert body["status"] == "ok"
    assert body["store_reachable"]
    generation = ReadModel(api.business.views_root).generation
    assert body["read_model"]["generation"] == generation.name
    assert body["read_model"]["refreshed_at"] == generation.meta["refreshed_at"]
    promoted = api.business.registry.promoted()
    assert body["models"] == {name: card.version for name, card in promoted.items()}


@pytest.mark.parametrize(
    ("headers", "status", "words"),
    [
        ({}, 401, "API key is required"),
        ({"X-API-Key": "cw_not-a-key"}, 401, "unknown or revoked"),
        ({"Authorization": "Bearer cw_wrong"}, 401, "unknown or revoked"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, 401, "API key is required"),
    ],
)
def test_requests_without_a_valid_key_get_401(
    api: Api, headers: dict[str, str], status: int, words: str
) -> None:
    for method, path in [("GET", "/accounts"), ("POST", "/events"), ("GET", "/kpis")]:
        answered = api.client.request(method, path, headers=headers, json={"events": []})
        assert answered.status_code == status, (path, answered.text)
        assert words in answered.json()["detail"]
        assert answered.headers["www-authenticate"] == "Bearer"


def test_a_read_key_cannot_write(api: Api) -> None:
    first = _accounts(api).column("account_id")[0].as_py()
    for path, body in [
        ("/events", {"events": []}),
        (f"/accounts/{first}/score", None),
        ("/outcomes", {"outcome": "won", "account_id": "x"}),
    ]:
        answered = api.client.post(path, json=body, headers=api.read)
        assert answered.status_code == 403, (path, answered.text)
        assert "scope 'read'" in answered.json()["detail"]
    assert api.client.get("/accounts", headers=api.write).status_code == 200


def test_a_revoked_key_is_refused(api: Api) -> None:
    key, made = create_api_key(api.store, name="temporary", scope="write")
    revoke_api_key(api.store, made.id)
    answered = api.client.get("/accounts", headers={"X-API-Key": key})
    assert answered.status_code == 401


# -- accounts ------------------------------------------------------------------------


def test_pages_cover_every_account_once_in_risk_order(api: Api) -> None:
    accounts = _accounts(api)
    seen: list[dict[str, Any]] = []
    url: str | None = "/accounts?limit=37"
    pages = 0
    while url is not None:
        answered = api.client.get(url, headers=api.read)
        assert answered.status_code == 200, answered.text
        page = answered.json()
        assert page["total"] == accounts.num_rows
        seen.extend(page["items"])
        url = page["next"]
        pages += 1
    assert pages == -(-accounts.num_rows // 37)
    ids = [row["account_id"] for row in seen]
    assert sorted(ids) == sorted(accounts.column("account_id").to_pylist())
    risks = [row["churn_risk"] for row in seen if row["churn_risk"] is not None]
    assert risks == sorted(risks, reverse=True)
    assert all(row["churn_risk"] is None for row in seen[len(risks) :])


def test_filters_and_search_match_the_read_model(api: Api) -> None:
    accounts = _accounts(api)
    plan = accounts.column("plan")[0].as_py()
    expected = accounts.filter(
        pc.and_(pc.equal(accounts["risk_tier"], "high"), pc.equal(accounts["plan"], plan))
    )
    answered = api.client.get(
        "/accounts", params={"tier": "high", "plan": plan, "limit": 1000}, headers=api.read
    ).json()
    assert answered["total"] == expected.num_rows > 0
    assert {row["account_id"] for row in answered["items"]} == set(
        expected.column("account_id").to_pylist()
    )
    regions = sorted(set(accounts.column("region").to_pylist()) - {None})[:2]
    both = api.client.get(
        "/accounts", params={"region": regions, "min_risk": 0.2}, headers=api.read
    ).json()
    for row in both["items"]:
        assert row["region"] in regions
        assert row["churn_risk"] >= 0.2
    one = accounts.column("account_id")[5].as_py()
    found = api.client.get("/accounts", params={"search": one.upper()}, headers=api.read).json()
    assert one in [row["account_id"] for row in found["items"]]
    cheap = api.client.get(
        "/accounts", params={"sort": "mrr", "order": "asc", "limit": 20}, headers=api.read
    ).json()
    mrr = [row["mrr"] for row in cheap["items"] if row["mrr"] is not None]
    assert mrr == sorted(mrr)


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 5000}, {"offset": -1}, {"sort": "name"}, {"min_risk": 2}],
)
def test_bad_list_parameters_are_422(api: Api, params: dict[str, Any]) -> None:
    answered = api.client.get("/accounts", params=params, headers=api.read)
    assert answered.status_code == 422
    assert answered.json()["detail"]


def test_one_account_has_its_row_and_risk_history(api: Api) -> None:
    accounts = _accounts(api)
    row = accounts.filter(pc.is_valid(accounts["churn_risk"])).slice(0, 1).to_pylist()[0]
    answered = api.client.get(f"/accounts/{row['account_id']}", headers=api.read)
    assert answered.status_code == 200, answered.text
    body = answered.json()
    for name in ("churn_risk", "risk_tier", "revenue_at_risk", "reason_1", "segment", "mrr"):
        assert body[name] == row[name]
    history = ReadModel(api.business.views_root).rows_of("risk_history", row["account_id"])
    assert [p["score"] for p in body["risk_history"]] == history.column("score").to_pylist()
    assert len(body["risk_history"]) == 2
    assert body["risk_history"][-1]["score"] == pytest.approx(row["churn_risk"])
    missing = api.client.get("/accounts/nobody-here", headers=api.read)
    assert missing.status_code == 404
    assert "nobody-here" in missing.json()["detail"]


# -- scoring -------------------------------------------------------------------------


def test_scoring_on_demand_repeats_the_daily_scoring(api: Api) -> None:
    accounts = _accounts(api).filter(pc.is_valid(_accounts(api)["churn_risk"]))
    for row in accounts.slice(0, 5).to_pylist() + accounts.slice(accounts.num_rows - 3).to_pylist():
        answered = api.client.post(f"/accounts/{row['account_id']}/score", headers=api.write)
        assert answered.status_code == 200, answered.text
        body = answered.json()
        assert body["score"] == pytest.approx(row["churn_risk"], abs=1e-9)
        assert body["risk_tier"] == row["risk_tier"]
        assert body["revenue_at_risk"] == pytest.approx(row["revenue_at_risk"])
        expected = [row[f"reason_{i}"] for i in (1, 2, 3) if row[f"reason_{i}"]]
        assert body["reasons"] == expected
        assert body["target"] == "churn_30d"


def test_scoring_an_unknown_account_or_target_is_4xx(api: Api) -> None:
    assert api.client.post("/accounts/nobody/score", headers=api.write).status_code == 404
    first = _accounts(api).column("account_id")[0].as_py()
    unknown = api.client.post(
        f"/accounts/{first}/score", params={"target": "sessions_30d"}, headers=api.write
    )
    assert unknown.status_code == 404
    assert "no promoted model for 'sessions_30d'" in unknown.json()["detail"]


def _warehouse_events(api: Api, account_id: str, before: dt.datetime) -> list[dict[str, Any]]:
    with connect(api.business.warehouse_url) as warehouse:
        table = warehouse.query(
            exp.select("*")
            .from_("events")
            .where(exp.column("account_id").eq(exp.Literal.string(account_id)))
        )
    events = []
    for row in table.to_pylist():
        if row["event_time"] >= before:
            continue
        events.append(
            {
                "event_id": row["event_id"],
                "user_id": row["user_id"],
                "event_time": row["event_time"].isoformat(),
                "event_type": row["event_type"],
                "duration_s": row["duration_s"],
                "value": row["value"],
            }
        )
    return events


def test_real_time_scoring_from_all_past_events_gives_the_daily_score(api: Api) -> None:
    # Posting every event the warehouse held before the cutoff, at that cutoff,
    # must compute the same event features, hence the same score.
    accounts = _accounts(api)
    scored = accounts.filter(pc.is_valid(accounts["churn_risk"]))
    cutoff = api.business.scored_at
    checked = 0
    for row in scored.slice(0, 4).to_pylist():
        events = _warehouse_events(api, row["account_id"], cutoff)
        body = {"account_id": row["account_id"], "events": events, "as_of": cutoff.isoformat()}
        answered = api.client.post("/score", json=body, headers=api.write)
        assert answered.status_code == 200, answered.text
        result = answered.json()
        assert result["score"] == pytest.approx(row["churn_risk"], abs=1e-9)
        assert "login_30d" in result["computed_features"]
        assert "current_mrr" in result["kept_features"]
        checked += 1
    assert checked == 4
    # Without the events the account looks idle, and its risk differs.
    first = scored.slice(0, 1).to_pylist()[0]
    idle = api.client.post(
        "/score",
        json={"account_id": first["account_id"], "events": [], "as_of": cutoff.isoformat()},
        headers=api.write,
    ).json()
    assert idle["score"] != pytest.approx(first["churn_risk"], abs=1e-9)


def test_real_time_scoring_refuses_bad_events_with_reasons(api: Api) -> None:
    first = _accounts(api).column("account_id")[0].as_py()
    body = {
        "account_id": first,
        "events": [
            {"event_time": "2024-01-01T00:00:00Z", "event_type": "login"},
            {"event_time": "yesterday", "event_type": "login"},
            {"event_time": "2024-01-01T00:00:00", "event_type": "login", "duration_s": -3},
        ],
    }
    answered = api.client.post("/score", json=body, headers=api.write)
    assert answered.status_code == 422
    refused = answered.json()
    assert refused["detail"] == "2 of 3 events are not valid"
    assert {(r["index"], r["field"]) for r in refused["rejections"]} == {
        (1, "event_time"),
        (2, "event_time"),
        (2, "duration_s"),
    }
    other = api.client.post(
        "/score",
        json={"account_id": first, "events": [{**body["events"][0], "account_id": "someone"}]},
        headers=api.write,
    )
    assert other.status_code == 422
    assert "someone" in other.json()["detail"]


# -- events --------------------------------------------------------------------------


def _event(account_id: str, number: int, **extra: Any) -> dict[str, Any]:
    when = dt.datetime(2024, 12, 30, 10, tzinfo=dt.UTC) + dt.timedelta(minutes=number)
    return {
        "event_id": f"api-{number}",
        "account_id": account_id,
        "event_time": when.isoformat(),
        "event_type": "login",
        **extra,
    }


def _inbox_rows(api: Api) -> int:
    with api.store.engine.connect() as connection:
        return int(
            connection.execute(sa.select(sa.func.count()).select_from(INBOX_EVENTS)).scalar()
        )


def test_ingest_keeps_good_rows_refuses_bad_ones_and_is_idempotent(api: Api) -> None:
    first = _accounts(api).column("account_id")[0].as_py()
    batch = [
        _event(first, 1),
        _event(first, 2, duration_s=30.5, properties={"page": "home"}),
        {"account_id": first, "event_type": "login"},
        _event(first, 4, value="lots"),
        "not an event",
        _event(first, 5, colour="red"),
        {k: v for k, v in _event(first, 6).items() if k != "event_id"},
    ]
    answered = api.client.post("/events", json={"events": batch}, headers=api.write)
    assert answered.status_code == 200, answered.text
    body = answered.json()
    assert (body["received"], body["accepted"], body["duplicates"], body["rejected"]) == (
        7,
        3,
        0,
        4,
    )
    reasons = {(r["index"], r["field"]): r["message"] for r in body["rejections"]}
    assert "required" in reasons[(2, "event_time")]
    assert "expected a number" in reasons[(3, "value")]
    assert "JSON object" in reasons[(4, None)]
    assert "unknown field" in reasons[(5, "colour")]
    again = api.client.post("/events", json={"events": batch}, headers=api.write).json()
    assert (again["accepted"], again["duplicates"], again["rejected"]) == (0, 3, 4)
    assert _inbox_rows(api) == 3
    assert pending_events(api.store) == 3


def test_drained_events_reach_the_warehouse_once(api: Api, tmp_path: Path) -> None:
    accounts = _accounts(api).column("account_id").to_pylist()
    batch = [_event(accounts[i % 3], i) for i in range(20)]
    batch.append(_event("not-a-customer", 99))
    assert (
        api.client.post("/events", json={"events": batch}, headers=api.write).json()["accepted"]
        == 21
    )
    copy = tmp_path / "w.duckdb"
    shutil.copy(api.business.warehouse_url.removeprefix("duckdb:///"), copy)
    ids = exp.column("event_id").like(exp.Literal.string("api-%"))
    with connect(f"duckdb:///{copy}") as warehouse:
        report = drain_inbox(api.store, warehouse)
        assert (report.drained, report.loaded, report.quarantined) == (21, 20, 1)
        assert pending_events(api.store) == 0
        assert drain_inbox(api.store, warehouse).drained == 0
        count = exp.select(exp.func("count", exp.Star())).from_("events").where(ids)
        assert warehouse.query(count).column(0)[0].as_py() == 20


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"{not json", "json"),
        (b'{"events": "many"}', "list"),
        (b'{"events": [], "extra": 1}', "extra"),
        (b"[]", "object"),
    ],
)
def test_malformed_batches_are_422(api: Api, content: bytes, words: str) -> None:
    answered = api.client.post(
        "/events",
        content=content,
        headers={**api.write, "Content-Type": "application/json"},
    )
    assert answered.status_code == 422
    assert words in answered.text.lower()


def test_a_batch_over_the_limit_is_422(api: Api) -> None:
    batch = [_event("a", i) for i in range(10_001)]
    answered = api.client.post("/events", json={"events": batch}, headers=api.write)
    assert answered.status_code == 422
    assert _inbox_rows(api) == 0


# -- retention -----------------------------------------------------------------------


def test_cohorts_and_survival_come_from_the_read_model(api: Api) -> None:
    cohorts = api.client.get("/cohorts", headers=api.read)
    assert cohorts.status_code == 200, cohorts.text
    table = ReadModel(api.business.views_root).table("cohort_retention").to_pylist()
    found = {c["cohort"]: c for c in cohorts.json()["cohorts"]}
    for row in table:
        cohort = found[row["cohort"]]
        assert cohort["retention"][cohort["periods"].index(row["period"])] == row["retention"]
    overall = api.client.get("/survival", headers=api.read).json()
    assert overall["attributes"] == ["all", "plan"]
    assert [c["group"] for c in overall["curves"]] == ["all"]
    assert overall["tests"][0]["attribute"] == "plan"
    by_plan = api.client.get("/survival", params={"attribute": "plan"}, headers=api.read).json()
    assert sorted(c["group"] for c in by_plan["curves"]) == ["basic", "pro"]
    assert all(len(c["points"]) == 3 for c in by_plan["curves"])


# -- without a read model ------------------------------------------------------------


def test_without_a_read_model_the_api_says_how_to_compute_it(tmp_path: Path) -> None:
    from churnwatch.api import create_app
    from churnwatch.config import Settings
    from churnwatch.store import open_store

    from .conftest import serving

    with open_store(f"sqlite:///{tmp_path / 'ops.sqlite'}") as store:
        key, _ = create_api_key(store, name="reader", scope="read")
        app = create_app(Settings(), store=store, views_root=tmp_path / "views")
        with serving(app) as url:
            health = httpx.get(f"{url}/health")
            assert health.status_code == 200
            assert health.json()["status"] == "degraded"
            assert "views refresh" in health.json()["read_model_error"]
            for path in ("/accounts", "/accounts/a1", "/cohorts", "/survival"):
                answered = httpx.get(f"{url}{path}", headers={"X-API-Key": key})
                assert answered.status_code == 503, (path, answered.text)
                assert "churnwatch views refresh" in answered.json()["detail"]


def test_a_new_generation_is_served_once_indexed_without_a_failed_request(
    business: Business, tmp_path: Path
) -> None:
    from churnwatch.api import create_app
    from churnwatch.config import Settings
    from churnwatch.store import open_store
    from churnwatch.views import current_generation, write_generation

    from .conftest import serving

    views = tmp_path / "views"
    first = current_generation(business.views_root)
    tables = {name: first.read(name) for name in first.tables}
    write_generation(views, tables, first.meta)
    accounts = tables["accounts"]
    account = accounts.column("account_id")[0].as_py()
    old_risk = accounts.column("churn_risk")[0].as_py()
    with open_store(f"sqlite:///{tmp_path / 'ops.sqlite'}") as store:
        key, _ = create_api_key(store, name="reader", scope="read")
        app = create_app(Settings(), store=store, views_root=views, warm=True)
        with serving(app) as url, httpx.Client(base_url=url, headers={"X-API-Key": key}) as client:
            assert client.get(f"/accounts/{account}").json()["churn_risk"] == old_risk
            changed = accounts.set_column(
                accounts.schema.get_field_index("churn_risk"),
                "churn_risk",
                pc.multiply(accounts["churn_risk"], 0.5),
            )
            newer = write_generation(views, {**tables, "accounts": changed}, first.meta)
            seen = set()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                answered = client.get(f"/accounts/{account}")
                assert answered.status_code == 200, answered.text
                seen.add(answered.json()["churn_risk"])
                if answered.json()["churn_risk"] != old_risk:
                    break
                time.sleep(0.05)
            assert seen <= {old_risk, old_risk * 0.5}
            assert old_risk * 0.5 in seen
            assert client.get("/health").json()["read_model"]["generation"] == newer.name
