"""Presets load the exports they are named after, row for row.

Every preset is run on real files: the shared data sets (``../shared/data``
beside the repository) and small exports written for these tests under
``tests/fixtures``. Counts are exact and computed independently of the loader
(csv module, pandas, counting lines): rows read equal the file's rows, and
every row read is loaded or quarantined with its reason. A second run loads
nothing.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import json
import shutil
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlglot

from churnwatch.config import Settings, SourceSpec, load_settings, save_settings
from churnwatch.errors import ConfigError
from churnwatch.ingest import FileLoad, IngestReport, ingest
from churnwatch.ingest.presets import (
    PRESETS,
    get_preset,
    preset_data,
    preset_sources,
    stripe_sources,
)
from churnwatch.schema import TABLES
from churnwatch.warehouse import QUARANTINE_TABLE, Warehouse, connect

SHARED_DATA = Path(__file__).parents[2].parent / "shared" / "data"
FIXTURES = Path(__file__).parents[1] / "fixtures"
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
UTC = dt.UTC


# -- helpers -----------------------------------------------------------------------


def shared(name: str) -> Path:
    """A shared data set's folder; skip when the shared data is not beside the repo."""
    folder = SHARED_DATA / name
    if not folder.is_dir():
        pytest.skip(
            f"shared data set {folder} is absent (CI keeps ../shared/data beside the repository)"
        )
    return folder


@pytest.fixture
def wh(tmp_path: Path) -> Iterator[Warehouse]:
    """A fresh DuckDB warehouse file."""
    with connect("duckdb:///" + str(tmp_path / "w.duckdb")) as opened:
        yield opened


def run(wh: Warehouse, specs: Sequence[SourceSpec]) -> tuple[Settings, IngestReport]:
    settings = Settings(sources=list(specs))
    report = ingest(settings, wh, now=NOW)
    assert not report.errors, [f.error for f in report.errors]
    return settings, report


def by_source(report: IngestReport) -> dict[str, FileLoad]:
    loads = {f.source: f for f in report.files}
    assert len(loads) == len(report.files), "one file per source expected"
    return loads


def rows(wh: Warehouse, sql: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = wh.query(sqlglot.parse_one(sql, read="duckdb")).to_pylist()
    return result


def scalar(wh: Warehouse, sql: str) -> Any:
    (row,) = rows(wh, sql)
    (value,) = row.values()
    return value


def assert_accounted(load: FileLoad, rows_in_file: int) -> None:
    """Every row of the file was read, and went to its table or to quarantine."""
    assert load.rows_read == rows_in_file
    assert load.loaded + load.quarantined == rows_in_file
    assert sum(load.reasons.values()) == load.quarantined


def assert_idempotent(wh: Warehouse, settings: Settings) -> None:
    tables = (*TABLES, QUARANTINE_TABLE)
    before = {t: wh.count(t) for t in tables}
    again = ingest(settings, wh, now=NOW)
    assert all(f.skipped for f in again.files)
    assert {t: wh.count(t) for t in tables} == before


def csv_rows(path: Path) -> int:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", newline="") as handle:
        return sum(1 for _ in csv.reader(handle)) - 1


def json_records(path: Path) -> list[dict[str, Any]]:
    document = json.loads(path.read_text(encoding="utf-8"))
    records: list[dict[str, Any]] = document["data"] if isinstance(document, dict) else document
    return records


def ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


# -- the registry ------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_builds_valid_documented_sources(name: str, tmp_path: Path) -> None:
    preset = get_preset(name)
    assert preset.name == name
    assert preset.description
    doc = preset.sources.__doc__ or ""
    assert "Parameters" in doc
    assert "Mapping" in doc or "maps to the column of the same name" in doc
    relative = preset_sources(name, "data/in")
    absolute = preset_sources(name, tmp_path)
    assert relative
    for spec in relative:
        assert spec.path is not None
        assert spec.path.startswith("data/in/")
    assert all(s.path is not None and Path(s.path).is_absolute() for s in absolute)
    # What `churnwatch init` writes reads back as the same sources.
    settings = Settings(sources=relative, data=preset.data)
    saved = save_settings(settings, tmp_path / "churnwatch.toml")
    assert load_settings(saved).sources == relative


def test_relative_data_folder_is_looked_at_from_the_project(tmp_path: Path) -> None:
    """`init` names the data relative to the project; presets still find the files."""
    project, exports = tmp_path / "project", tmp_path / "exports"
    project.mkdir()
    exports.mkdir()
    for file in ("customers.json", "subscriptions.json", "invoices.json"):
        shutil.copy(FIXTURES / "stripe" / file, exports / file)
    (exports / "subscription.csv").write_text(
        "account_id,product,start_date,end_date,mrr,quantity,units,bill_period_months,discount\n"
        "1,basic,2021-03-04,2021-04-04,10,,,1,0\n1,basic,2021-02-04,2021-03-04,10,,,1,0\n",
        encoding="utf-8",
    )
    specs = preset_sources("stripe", "../exports", base_dir=project)
    assert [s.name for s in specs][-1] == "stripe_invoices"  # found invoices.json only
    assert "discount" in specs[1].columns  # read the subscriptions' shape
    assert all(s.path is not None and s.path.startswith("../exports/") for s in specs)
    assert preset_data("fightchurn", "../exports", base_dir=project) == {
        "observation_end": "2021-03-04"
    }


def test_unknown_preset_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="no preset named 'stripes'") as info:
        get_preset("stripes")
    assert all(name in str(info.value) for name in PRESETS)
    with pytest.raises(ConfigError):
        preset_sources("stripes", "data")


# -- saas_sessions -----------------------------------------------------------------


def test_saas_sessions(wh: Warehouse) -> None:
    folder = FIXTURES / "saas"
    settings, report = run(wh, preset_sources("saas_sessions", folder))
    loads = by_source(report)
    assert_accounted(loads["users"], csv_rows(folder / "users.csv"))
    assert_accounted(loads["sessions"], csv_rows(folder / "sessions.csv"))
    assert loads["users"].quarantined == 0
    assert loads["sessions"].reasons == Counter(
        {"negative": 1, "unparseable": 1, "unknown_account": 1}
    )
    bad = {r["reason"]: r for r in rows(wh, "SELECT reason, row_number, value FROM quarantine")}
    assert bad["negative"]["row_number"] == 13  # s0013 ends ten minutes before it starts
    assert bad["unparseable"]["value"] == "2024-01-23 31:00:00"
    assert bad["unknown_account"]["value"] == "u099"

    assert rows(
        wh, "SELECT platform, referral_source, created_at FROM accounts WHERE account_id = 'u002'"
    ) == [{"platform": "ios", "referral_source": "paid_search", "created_at": ts("2024-01-04")}]
    events = {
        r["event_id"]: r
        for r in rows(
            wh,
            "SELECT event_id, event_type, event_time, duration_s, "
            "properties::VARCHAR AS properties FROM events",
        )
    }
    assert events["s0001"]["duration_s"] == 1175.0
    assert events["s0001"]["event_time"] == ts("2024-01-03 09:12:05")
    assert events["s0005"]["event_type"] == "session"  # empty session_type
    assert events["s0016"]["duration_s"] is None  # no end: no duration, still loaded
    # Stated offsets are honoured: 10:00 at +02:00 is 08:00 UTC.
    assert events["s0034"]["event_time"] == ts("2024-01-28 08:00:00")
    assert events["s0034"]["duration_s"] == 1800.0
    assert json.loads(events["s0003"]["properties"]) == {
        "device_type": "desktop",
        "pages_viewed": "15",
        "is_conversion": "true",
    }
    assert_idempotent(wh, settings)


# -- stripe --------------------------------------------------------------------------


def test_stripe_customers_subscriptions_and_charges(wh: Warehouse) -> None:
    folder = FIXTURES / "stripe"
    specs = stripe_sources(folder, payments="charges")
    assert [s.name for s in specs] == ["stripe_customers", "stripe_subscriptions", "stripe_charges"]
    settings, report = run(wh, specs)
    loads = by_source(report)
    for name, file in [
        ("customers", "customers.json"),
        ("subscriptions", "subscriptions.json"),
        ("charges", "charges.json"),
    ]:
        assert_accounted(loads[f"stripe_{name}"], len(json_records(folder / file)))
    assert loads["stripe_customers"].quarantined == 0
    # A subscription of a customer missing from the export; a guest charge.
    assert loads["stripe_subscriptions"].reasons == Counter({"unknown_account": 1})
    assert loads["stripe_charges"].reasons == Counter({"missing_value": 1})

    acme = rows(
        wh,
        "SELECT name, created_at, attributes::VARCHAR AS attributes FROM accounts "
        "WHERE account_id = 'cus_PmA1b2C3d4E5f6'",
    )[0]
    assert acme["name"] == "Acme Analytics"
    assert acme["created_at"] == ts("2024-01-05 10:00:00")  # epoch seconds, in UTC
    attributes = json.loads(acme["attributes"])
    assert attributes["email"] == "billing@acme.example"
    assert attributes["metadata.segment"] == "smb"

    subs = {
        r["subscription_id"]: r
        for r in rows(
            wh,
            "SELECT subscription_id, status, plan, mrr, quantity, discount, "
            "billing_period_months, started_at, ended_at FROM subscriptions",
        )
    }
    mrr = {k: round(v["mrr"], 6) for k, v in subs.items()}
    assert mrr == {
        "sub_1OxAcmeTeam000001": 87.0,  # 2900 cents x 3 seats, monthly
        "sub_1OxBlueBiz0000002": 100.0,  # 120000 cents a year / 12
        "sub_1OxCobaltWeek0003": 130.0,  # 1500 cents x 2 a week x 52 / 12
        "sub_1OxDeltaPlat00004": 99.0,  # 4900 + 5 x 1000; the metered item adds nothing
        "sub_1OxEdoStarter0005": 3000.0,  # yen have no minor unit
        "sub_1OxFjordTeam00006": 29.0,
        "sub_1OxAcmeQuarter007": 50.0,  # 7500 x 2 every 3 months
    }
    assert subs["sub_1OxAcmeTeam000001"]["discount"] == 0.2
    assert subs["sub_1OxAcmeTeam000001"]["plan"] == "Team monthly"
    assert subs["sub_1OxDeltaPlat00004"]["plan"] == "Platform base + Platform seat + API calls"
    assert subs["sub_1OxDeltaPlat00004"]["quantity"] == 6.0
    assert subs["sub_1OxCobaltWeek0003"]["plan"] == "price_1OxRentalWeek01"  # no nickname
    assert subs["sub_1OxAcmeQuarter007"]["billing_period_months"] == 3.0
    assert subs["sub_1OxBlueBiz0000002"]["ended_at"] == ts("2024-03-10 09:00:00")
    assert subs["sub_1OxBlueBiz0000002"]["status"] == "canceled"
    # Cancelled at period end: still running, so not ended.
    assert subs["sub_1OxFjordTeam00006"]["ended_at"] is None
    assert subs["sub_1OxAcmeTeam000001"]["started_at"] == ts("2024-01-05 10:00:05")

    payments = {
        r["payment_id"]: r
        for r in rows(
            wh, "SELECT payment_id, amount, currency, status, failure_reason FROM payments"
        )
    }
    assert payments["ch_3OxAcme0000000001"]["amount"] == 69.6
    assert payments["ch_3OxEdo00000000006"]["amount"] == 3000.0
    assert payments["ch_3OxBlue0000000002"]["status"] == "refunded"
    assert payments["ch_3OxDelta000000004"]["failure_reason"] == "card_declined"
    assert Counter(p["status"] for p in payments.values()) == Counter(
        {"succeeded": 4, "failed": 2, "refunded": 1, "pending": 1}
    )
    assert_idempotent(wh, settings)


def test_stripe_invoices(wh: Warehouse) -> None:
    folder = FIXTURES / "stripe"
    specs = stripe_sources(folder, payments="invoices")
    _, report = run(wh, specs)
    invoices = by_source(report)["stripe_invoices"]
    records = json_records(folder / "invoices.json")
    assert_accounted(invoices, len(records))
    assert invoices.reasons == Counter({"invalid_choice": 1})  # the void invoice
    assert rows(wh, "SELECT value FROM quarantine WHERE reason = 'invalid_choice'") == [
        {"value": "void"}
    ]
    payments = {
        r["payment_id"]: r
        for r in rows(
            wh, "SELECT payment_id, amount, status, paid_at, subscription_id FROM payments"
        )
    }
    expected = {
        r["id"]: {
            "paid": "succeeded",
            "open": "failed",
            "uncollectible": "failed",
            "draft": "pending",
        }[r["status"]]
        for r in records
        if r["status"] != "void"
    }
    assert {k: v["status"] for k, v in payments.items()} == expected
    paid = payments["in_1OxAcme00000001"]
    assert paid["amount"] == 69.6
    assert paid["paid_at"] == ts("2024-01-05 11:00:09")  # status_transitions.paid_at
    assert paid["subscription_id"] == "sub_1OxAcmeTeam000001"
    assert payments["in_1OxDelta0000010"]["amount"] == 49.0  # amount_due of an unpaid one


def test_stripe_payment_source_follows_the_files(tmp_path: Path) -> None:
    def names(folder: Path) -> list[str]:
        return [s.name for s in stripe_sources(folder)]

    for file in ("customers.json", "subscriptions.json", "invoices.json"):
        shutil.copy(FIXTURES / "stripe" / file, tmp_path / file)
    assert names(tmp_path)[-1] == "stripe_invoices"
    shutil.copy(FIXTURES / "stripe" / "charges.json", tmp_path / "charges.json")
    # A paid invoice is paid by a charge: both would count it twice.
    assert names(tmp_path)[-1] == "stripe_charges"
    assert [s.name for s in stripe_sources(tmp_path, payments="both")][-2:] == [
        "stripe_charges",
        "stripe_invoices",
    ]


def test_stripe_subscriptions_without_any_discount(wh: Warehouse, tmp_path: Path) -> None:
    """No discounted subscription in the export: the discount column reads as null."""
    shutil.copy(FIXTURES / "stripe" / "customers.json", tmp_path / "customers.json")
    subscriptions = json_records(FIXTURES / "stripe" / "subscriptions.json")
    for subscription in subscriptions:
        subscription["discount"] = None
    (tmp_path / "subscriptions.json").write_text(json.dumps(subscriptions), encoding="utf-8")
    specs = stripe_sources(tmp_path)[:2]
    assert "discount" in specs[1].columns
    _, report = run(wh, specs)
    assert by_source(report)["stripe_subscriptions"].loaded == len(subscriptions) - 1
    assert scalar(wh, "SELECT count(discount) FROM subscriptions") == 0
    # API versions from 2025-03-31 have no `discount` field at all: not mapped.
    for subscription in subscriptions:
        del subscription["discount"]
    (tmp_path / "subscriptions.json").write_text(json.dumps(subscriptions), encoding="utf-8")
    assert "discount" not in stripe_sources(tmp_path)[1].columns


# -- mixpanel ------------------------------------------------------------------------


def test_mixpanel(wh: Warehouse) -> None:
    folder = FIXTURES / "mixpanel"
    export = folder / "export.jsonl"
    lines = export.read_text(encoding="utf-8").splitlines()
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    duplicates = len(parsed) - len({json.dumps(p, sort_keys=True) for p in parsed})
    assert (len(lines) - len(parsed), duplicates) == (1, 1)

    settings, report = run(wh, preset_sources("mixpanel", folder))
    load = by_source(report)["mixpanel_events"]
    assert_accounted(load, len(lines))
    assert load.reasons == Counter({"malformed_row": 1, "duplicate_in_load": 1})
    distinct_ids = {p["properties"]["distinct_id"] for p in parsed}
    assert load.accounts_created == len(distinct_ids)
    assert wh.count("accounts") == len(distinct_ids)
    assert wh.count("events") == len(parsed) - duplicates

    first = parsed[0]["properties"]
    event = rows(
        wh,
        "SELECT event_type, event_time, properties::VARCHAR AS properties "
        f"FROM events WHERE event_id = '{first['$insert_id']}'",
    )[0]
    assert event["event_type"] == "Sign Up"
    assert event["event_time"] == dt.datetime.fromtimestamp(first["time"], UTC)
    properties = json.loads(event["properties"])
    assert properties["properties.$os"] == first["$os"]
    assert not {"properties.time", "properties.distinct_id", "properties.$insert_id"} & set(
        properties
    )
    # Accounts date from their first event.
    assert scalar(wh, "SELECT created_at FROM accounts WHERE account_id = 'u-1001'") == (
        dt.datetime.fromtimestamp(first["time"], UTC)
    )
    assert_idempotent(wh, settings)


def test_mixpanel_export_without_insert_ids(wh: Warehouse, tmp_path: Path) -> None:
    """Older exports carry no $insert_id at all: events load without an id."""
    lines = [
        json.dumps({"event": "Login", "properties": {"time": 1714550731 + k, "distinct_id": "u1"}})
        for k in range(3)
    ]
    (tmp_path / "old.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    _, report = run(wh, preset_sources("mixpanel", tmp_path))
    assert by_source(report)["mixpanel_events"].loaded == 3
    assert scalar(wh, "SELECT count(event_id) FROM events") == 0


# -- fightchurn (socialnet7) ------------------------------------------------------------


@pytest.mark.slow
def test_fightchurn_socialnet7(wh: Warehouse) -> None:
    folder = shared("socialnet7")
    specs = preset_sources("fightchurn", folder)
    assert specs[-1].path == (folder / "event.csv.gz").as_posix()
    settings, report = run(wh, specs)
    loads = by_source(report)
    events = pd.read_csv(folder / "event.csv.gz", dtype=str, keep_default_na=False)
    duplicates = int(events.duplicated().sum())
    assert (len(events), duplicates) == (1_768_692, 121)
    assert_accounted(loads["account"], csv_rows(folder / "account.csv"))
    assert_accounted(loads["subscription"], csv_rows(folder / "subscription.csv"))
    assert_accounted(loads["event"], len(events))
    assert loads["account"].loaded == 1_470
    assert loads["subscription"].loaded == 5_769
    assert loads["event"].reasons == Counter({"duplicate_in_load": duplicates})
    assert wh.count("events") == len(events) - duplicates
    assert rows(wh, "SELECT count(DISTINCT event_type) AS n FROM events") == [{"n": 8}]
    # Accounts have no signup date in the files: their first subscription dates them.
    assert scalar(wh, "SELECT count(*) FROM accounts WHERE created_at IS NULL") == 0
    first = rows(
        wh,
        "SELECT event_time, user_id, value FROM events WHERE account_id = '0' "
        "AND event_type = 'post' ORDER BY event_time LIMIT 1",
    )
    assert first == [{"event_time": ts("2020-01-06 02:17:30"), "user_id": "0", "value": None}]
    # The observation end: socialnet7's by default, and read off the files.
    assert get_preset("fightchurn").data == {"observation_end": "2020-06-01"}
    subscriptions = pd.read_csv(folder / "subscription.csv", dtype=str)
    assert preset_data("fightchurn", folder) == {
        "observation_end": subscriptions["start_date"].max()
    }
    assert preset_data("fightchurn", folder)["observation_end"] == "2020-06-01"
    assert_idempotent(wh, settings)


# -- one-snapshot tables ---------------------------------------------------------------


def test_telco(wh: Warehouse) -> None:
    folder = shared("telco")
    file = folder / "WA_Fn-UseC_-Telco-Customer-Churn.csv"
    frame = pd.read_csv(file, dtype=str, keep_default_na=False)
    settings, report = run(wh, preset_sources("telco", folder))
    load = by_source(report)["telco_customers"]
    assert_accounted(load, len(frame))
    assert (load.loaded, load.quarantined) == (7_043, 0)
    churners = scalar(wh, "SELECT count(*) FROM accounts WHERE churned")
    assert churners == (frame["Churn"] == "Yes").sum() == 1_869
    first = rows(
        wh,
        "SELECT churned, tenure_days, mrr, plan, attributes::VARCHAR AS attributes "
        "FROM accounts WHERE account_id = '7590-VHVEG'",
    )[0]
    assert first["churned"] is False  # Churn = "No"
    assert first["tenure_days"] == 30.4375  # one month
    assert first["mrr"] == 29.85
    assert first["plan"] == "Month-to-month"
    attributes = json.loads(first["attributes"])
    assert attributes["gender"] == "Female"
    assert not {"Churn", "customerID", "tenure", "MonthlyCharges", "Contract"} & set(attributes)
    blank_totals = scalar(
        wh, "SELECT count(*) FROM accounts WHERE trim(attributes->>'TotalCharges') = ''"
    )
    assert blank_totals == (frame["TotalCharges"].str.strip() == "").sum() == 11
    assert_idempotent(wh, settings)


def test_bank_churn(wh: Warehouse) -> None:
    folder = shared("bank_churn")
    frame = pd.read_csv(folder / "Churn_Modelling.csv", dtype=str)
    settings, report = run(wh, preset_sources("bank_churn", folder))
    load = by_source(report)["bank_customers"]
    assert_accounted(load, len(frame))
    assert (load.loaded, load.quarantined) == (10_000, 0)
    assert scalar(wh, "SELECT count(*) FROM accounts WHERE churned") == 2_037
    assert scalar(wh, "SELECT count(*) FROM accounts WHERE mrr IS NOT NULL") == 0
    first = rows(
        wh, "SELECT churned, tenure_days, region, name FROM accounts WHERE account_id = '15634602'"
    )[0]
    assert first == {
        "churned": True,
        "tenure_days": 2 * 365.25,
        "region": "France",
        "name": "Hargrave",
    }
    assert_idempotent(wh, settings)


# -- transactions (CDNOW) -----------------------------------------------------------------


def test_transactions_cdnow(wh: Warehouse) -> None:
    folder = shared("cdnow")
    frame = pd.read_csv(folder / "CDNOW_master.txt", sep=r"\s+", dtype=str)
    duplicates = int(frame.duplicated().sum())
    settings, report = run(wh, preset_sources("transactions", folder))
    load = by_source(report)["transactions"]
    assert_accounted(load, len(frame))
    assert len(frame) == 69_659
    # Identical lines (same customer, day, amount and CDs) are kept once.
    assert load.reasons == Counter({"duplicate_in_load": duplicates})
    assert load.accounts_created == frame["customer_id"].nunique() == 23_570
    assert wh.count("accounts") == 23_570
    assert wh.count("events") == len(frame) - duplicates
    first = rows(
        wh,
        "SELECT account_id, event_type, event_time, value, "
        "properties::VARCHAR AS properties FROM events "
        "WHERE account_id = '00001'",
    )
    assert first == [
        {
            "account_id": "00001",
            "event_type": "purchase",
            "event_time": ts("1997-01-01"),
            "value": 11.77,
            "properties": '{"number_of_cds":"1"}',
        }
    ]
    assert scalar(wh, "SELECT created_at FROM accounts WHERE account_id = '00001'") == ts(
        "1997-01-01"
    )
    assert scalar(wh, "SELECT round(sum(value), 2) FROM events") == round(
        pd.to_numeric(frame.drop_duplicates()["dollar_value"]).sum(), 2
    )
    assert_idempotent(wh, settings)


# -- ravenstack -----------------------------------------------------------------------------


def test_ravenstack(wh: Warehouse) -> None:
    folder = shared("ravenstack")

    def table(name: str) -> pd.DataFrame:
        return pd.read_csv(folder / f"ravenstack_{name}.csv", dtype=str, keep_default_na=False)

    accounts, subscriptions = table("accounts"), table("subscriptions")
    usage, tickets, churn = table("feature_usage"), table("support_tickets"), table("churn_events")
    settings, report = run(wh, preset_sources("ravenstack", folder))
    loads = by_source(report)
    sizes = {
        "accounts": 500,
        "subscriptions": 5_000,
        "feature_usage": 25_000,
        "support_tickets": 2_000,
        "churn_events": 600,
    }
    for name, frame in [
        ("accounts", accounts),
        ("subscriptions", subscriptions),
        ("feature_usage", usage),
        ("support_tickets", tickets),
        ("churn_events", churn),
    ]:
        assert len(frame) == sizes[name]
        assert_accounted(loads[f"ravenstack_{name}"], len(frame))
    # Every row passes its own checks: each usage row's subscription is found,
    # each ticket's and churn event's account exists, no value is malformed.
    assert report.reasons == Counter()
    assert wh.count("events") == len(usage) + len(tickets) + len(churn)
    assert rows(wh, "SELECT event_type, count(*) AS n FROM events GROUP BY 1 ORDER BY 1") == [
        {"event_type": "churn", "n": 600},
        {"event_type": "feature_use", "n": 25_000},
        {"event_type": "support_ticket", "n": 2_000},
    ]

    # Values: status from churn_flag, account looked up through the subscription.
    assert (
        scalar(wh, "SELECT count(*) FROM subscriptions WHERE status = 'canceled'")
        == (subscriptions["churn_flag"] == "True").sum()
        == 486
    )
    assert (
        scalar(wh, "SELECT count(*) FROM accounts WHERE churned")
        == (accounts["churn_flag"] == "True").sum()
        == 110
    )
    owner = usage.merge(subscriptions, on="subscription_id")[["usage_id", "account_id"]]
    loaded_owner = pd.DataFrame(
        rows(
            wh,
            "SELECT event_id AS usage_id, account_id FROM events WHERE event_type = 'feature_use'",
        )
    )
    assert sorted(map(tuple, owner.to_numpy().tolist())) == sorted(
        map(tuple, loaded_owner.to_numpy().tolist())
    )
    usage_row = rows(
        wh,
        "SELECT event_time, value, duration_s, properties->>'feature_name' AS f "
        "FROM events WHERE event_id = 'U-1c6c24'",
    )
    assert usage_row == [
        {"event_time": ts("2023-07-27"), "value": 9.0, "duration_s": 5004.0, "f": "feature_20"}
    ]
    assert (
        scalar(wh, "SELECT count(value) FROM events WHERE event_type = 'support_ticket'")
        == (tickets["satisfaction_score"] != "").sum()
        == 1_175
    )

    # What the tables say about each other, measured in the warehouse and in pandas.
    churned_events = churn.merge(accounts, on="account_id")
    disagreeing = churned_events[churned_events["churn_flag"] == "False"]
    assert (
        scalar(
            wh,
            "SELECT count(DISTINCT a.account_id) FROM accounts a JOIN events e "
            "ON e.account_id = a.account_id AND e.event_type = 'churn' WHERE NOT a.churned",
        )
        == disagreeing["account_id"].nunique()
        == 277
    )
    early = tickets.merge(accounts, on="account_id")
    assert (
        scalar(
            wh,
            "SELECT count(*) FROM events e JOIN accounts a USING (account_id) "
            "WHERE e.event_type = 'support_ticket' AND e.event_time < a.created_at",
        )
        == (early["submitted_at"] < early["signup_date"]).sum()
        == 1_077
    )
    assert usage["usage_id"].duplicated().sum() == 21
    assert_idempotent(wh, settings)


# -- churnwatch_simulator ---------------------------------------------------------------------


def test_churnwatch_simulator(wh: Warehouse, tmp_path: Path) -> None:
    from churnwatch.simulate import simulate

    result = simulate(
        tmp_path / "sim", n_accounts=150, end="2024-06-30", events_per_account=10, seed=3
    )
    specs = preset_sources("churnwatch_simulator", result.out_dir)
    assert {s.table for s in specs} == set(result.counts)
    settings, report = run(wh, specs)
    loads = by_source(report)
    for name, count in result.counts.items():
        assert_accounted(loads[name], count)
        assert loads[name].quarantined == 0
        assert wh.count(name) == count
    assert preset_data("churnwatch_simulator", result.out_dir) == {
        "observation_end": result.observation_end.isoformat()
    }
    assert_idempotent(wh, settings)
