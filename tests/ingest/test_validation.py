"""Validation loses nothing: every input row is loaded or quarantined, for the right reason.

The property test writes CSV files from generated rows whose fate it decides
itself (an oracle independent of the loader), then checks the loader agrees row
by row: which rows loaded, which were rejected, and why.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from churnwatch.config import parse_settings
from churnwatch.errors import StrictLoadError
from churnwatch.ingest import ingest
from churnwatch.warehouse import connect

NOW = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)
KNOWN = ("a1", "a2")
HEADER = ["account", "ts", "kind", "secs"]
BLANKS = " \t\n\r\x0b\x0c"

good_time = st.datetimes(min_value=dt.datetime(2023, 1, 1), max_value=dt.datetime(2024, 5, 30)).map(
    lambda t: t.replace(microsecond=0).isoformat(sep=" ")
)
times = st.one_of(
    good_time,
    st.sampled_from(["", "not a time", "2024-13-45 10:00:00", "2031-01-01 00:00:00", "31/12/2023"]),
)
kinds = st.one_of(
    st.sampled_from(["login", "post", "like"]),
    st.text(alphabet='ab, "\n\té', min_size=0, max_size=6),
)
seconds = st.one_of(
    st.just(""),
    st.integers(-5, 5000).map(str),
    st.sampled_from(["1.5", "-0.5", "ten", "1e3"]),
)
accounts = st.sampled_from([*KNOWN, "zz"])
rows = st.lists(
    st.one_of(
        st.tuples(accounts, times, kinds, seconds),
        # A row with the wrong number of fields.
        st.tuples(accounts, good_time).map(lambda r: (*r, "extra", "1", "2")),
    ),
    max_size=25,
)


def oracle(fields: tuple[str, ...]) -> str | None:
    """The reason a row must be rejected, or None when it must load.

    A row is judged column by column in the table's order (event_time,
    event_type, duration_s); checks against the warehouse (unknown account,
    duplicates) come after every value check.
    """
    if len(fields) != len(HEADER):
        return "malformed_row"
    account, ts, kind, secs = (f.strip(BLANKS) for f in fields)
    if not ts:
        return "missing_value"
    try:
        when = dt.datetime.fromisoformat(ts).replace(tzinfo=dt.UTC)
    except ValueError:
        return "unparseable"
    if when > NOW + dt.timedelta(hours=24):
        return "future"
    if not kind:
        return "missing_value"
    if secs:
        try:
            duration = float(secs)
        except ValueError:
            return "unparseable"
        if duration < 0:
            return "negative"
    if account not in KNOWN:
        return "unknown_account"
    return None


def write_csv(path: Path, body: list[tuple[str, ...]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(body)
    path.write_text(buffer.getvalue(), encoding="utf-8")


def project(tmp_path: Path) -> Any:
    (tmp_path / "accounts.csv").write_text("id\n" + "\n".join(KNOWN) + "\n")
    return parse_settings(
        {
            "sources": [
                {
                    "name": "accounts",
                    "table": "accounts",
                    "path": "accounts.csv",
                    "columns": {"account_id": "id"},
                },
                {
                    "name": "events",
                    "table": "events",
                    "path": "events.csv",
                    "columns": {
                        "account_id": "account",
                        "event_time": "ts",
                        "event_type": "kind",
                        "duration_s": "secs",
                    },
                },
            ]
        }
    )


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=rows)
def test_every_row_is_loaded_or_quarantined_for_its_reason(
    tmp_path_factory: Any, body: list[tuple[str, ...]]
) -> None:
    tmp_path = tmp_path_factory.mktemp("csv")
    write_csv(tmp_path / "events.csv", body)
    with connect("duckdb:///:memory:") as wh:
        report = ingest(project(tmp_path), wh, base_dir=tmp_path, now=NOW)
        events_load = next(f for f in report.files if f.source == "events")
        assert events_load.error is None
        assert events_load.rows_read == len(body)
        quarantined = {
            r["row_number"]: r["reason"]
            for r in wh.query(
                parse("SELECT row_number, reason FROM quarantine WHERE source = 'events'")
            ).to_pylist()
        }
        loaded = wh.count("events")
    expected: dict[int, str] = {}
    keys_seen: set[tuple[str, ...]] = set()
    for number, fields in enumerate(body, start=1):
        reason = oracle(fields)
        if reason is None:
            account, ts, kind, secs = (f.strip(BLANKS) for f in fields)
            key = (account, ts, kind, str(float(secs)) if secs else "")
            if key in keys_seen:
                reason = "duplicate_in_load"
            keys_seen.add(key)
        if reason is not None:
            expected[number] = reason
    assert quarantined == expected
    assert loaded + len(quarantined) == len(body)


def parse(sql: str) -> Any:
    import sqlglot

    return sqlglot.parse_one(sql, read="duckdb")


def test_strict_load_is_atomic(tmp_path: Path) -> None:
    write_csv(
        tmp_path / "events.csv",
        [("a1", "2024-01-01 10:00:00", "login", "5"), ("a1", "bad", "login", "")],
    )
    with connect("duckdb:///:memory:") as wh:
        with pytest.raises(
            StrictLoadError, match=r"1 row\(s\) of .*events.csv would be quarantined.*row 2"
        ):
            ingest(project(tmp_path), wh, base_dir=tmp_path, now=NOW, strict=True)
        # Not even the accounts, loaded before the bad file, remain.
        assert wh.count("accounts") == 0
        assert wh.count("events") == 0
        assert wh.count("quarantine") == 0
        assert wh.count("_loads") == 0


def test_reingest_changes_nothing_and_new_file_appends(tmp_path: Path) -> None:
    write_csv(tmp_path / "events.csv", [("a1", "2024-01-01 10:00:00", "login", "5")])
    settings_ = project(tmp_path)
    with connect("duckdb:///:memory:") as wh:
        ingest(settings_, wh, base_dir=tmp_path, now=NOW)
        again = ingest(settings_, wh, base_dir=tmp_path, now=NOW)
        assert all(f.skipped for f in again.files)
        assert wh.count("events") == 1
        # A second export overlapping the first: the repeated event is a duplicate.
        write_csv(
            tmp_path / "events.csv",
            [
                ("a1", "2024-01-01 10:00:00", "login", "5"),
                ("a2", "2024-01-02 10:00:00", "post", ""),
            ],
        )
        third = ingest(settings_, wh, base_dir=tmp_path, now=NOW, sources=["events"])
        assert third.files[0].inserted == 1
        assert third.files[0].reasons == {"duplicate_loaded": 1}
        assert wh.count("events") == 2
