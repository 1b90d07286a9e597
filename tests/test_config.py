"""Settings: every one documented, with a default and a unit; errors name the key."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from churnwatch.config import (
    ColumnMapping,
    FeatureEntry,
    LookupSpec,
    Settings,
    SourceSpec,
    load_settings,
    parse_settings,
    save_settings,
    settings_reference,
)
from churnwatch.errors import ConfigError
from churnwatch.features import FeatureSpec

ROOT = Path(__file__).resolve().parents[1]
SECTIONS: list[type[BaseModel]] = [
    field.annotation  # type: ignore[misc]
    for name, field in Settings.model_fields.items()
    if name != "sources"
]
# Numbers carry their unit in their name; these suffixes are the units we use.
UNITS = (
    "_days",
    "_hours",
    "_s",
    "_mb",
    "_rows",
    "_count",
    "_port",
    "_seed",
    "_share",
    "_probability",
)

EVENTS = {
    "name": "events",
    "table": "events",
    "path": "events.csv",
    "columns": {"account_id": "user", "event_time": "ts", "event_type": "kind"},
}

LOGINS = {
    "name": "logins_14d",
    "kind": "aggregate",
    "function": "count",
    "event_type": "login",
    "window_days": 14,
}
TENURE = {"name": "tenure_days", "kind": "tenure"}


def all_models() -> list[type[BaseModel]]:
    return [Settings, *SECTIONS, SourceSpec, ColumnMapping, LookupSpec, FeatureEntry]


@pytest.mark.parametrize("model", all_models(), ids=lambda m: m.__name__)
def test_every_setting_has_a_description(model: type[BaseModel]) -> None:
    for name, field in model.model_fields.items():
        assert field.description, f"{model.__name__}.{name}"
        assert len(field.description) > 10, f"{model.__name__}.{name}"


@pytest.mark.parametrize("model", SECTIONS, ids=lambda m: m.__name__)
def test_every_section_setting_has_a_default(model: type[BaseModel]) -> None:
    for name, field in model.model_fields.items():
        assert not field.is_required(), f"{model.__name__}.{name} has no default"


@pytest.mark.parametrize("model", SECTIONS, ids=lambda m: m.__name__)
def test_numbers_name_their_unit(model: type[BaseModel]) -> None:
    for name, field in model.model_fields.items():
        if field.annotation in (int, float):
            assert name.endswith(UNITS), f"{model.__name__}.{name} does not name its unit"


def test_reference_page_is_current() -> None:
    # docs/configuration.md is generated; regenerate with `churnwatch init --reference`.
    committed = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert committed == settings_reference() + "\n"


def test_reference_page_lists_every_setting() -> None:
    page = settings_reference()
    for section in Settings.model_fields:
        assert f"## [{section}]" in page, section
    for model in all_models()[1:]:
        for name in model.model_fields:
            assert f"`{name}`" in page, name


def test_defaults_need_no_file() -> None:
    settings = parse_settings({})
    assert settings.warehouse.url.startswith("duckdb:///")
    assert settings.churn.horizon_days == 30
    assert settings.sources == []
    assert settings.features.defaults
    assert settings.features.add == []


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"churn": {"horizon_days": 0}},
            r"churn\.horizon_days: .*greater than or equal to 1 \(got 0\)",
        ),
        (
            {"churn": {"definition": "vibes"}},
            r"churn\.definition: .*'subscription'.*\(got 'vibes'\)",
        ),
        ({"warehouse": {"urll": "x"}}, r"warehouse\.urll: Extra inputs are not permitted"),
        (
            {"sources": [{**EVENTS, "table": "evnts"}]},
            r"sources\[0\] \(events\)\.table: .*'events'",
        ),
        (
            {"sources": [{**EVENTS, "columns": {"account_id": "user"}}]},
            r"sources\[0\] \(events\): .*required column\(s\) of 'events' not mapped: "
            r"event_time, event_type",
        ),
        (
            {"sources": [{**EVENTS, "columns": {**EVENTS["columns"], "colour": "c"}}]},
            r"table 'events' has no column\(s\) colour",
        ),
        (
            {
                "sources": [
                    {
                        **EVENTS,
                        "columns": {**EVENTS["columns"], "value": {"source": "v", "value": 1}},
                    }
                ]
            },
            r"sources\[0\] \(events\)\.columns\.value: give exactly one of .*\(got source, value\)",
        ),
        ({"sources": [EVENTS, EVENTS]}, r"source names must be unique; repeated: events"),
        ({"sources": [{**EVENTS, "path": None}]}, r"give either 'path' .* or 'url'"),
        ({"features": {"top_event_types_count": -1}}, r"features\.top_event_types_count: "),
        (
            {"features": {"add": [TENURE, {**LOGINS, "window_days": 0}]}},
            r"features\.add\[1\] \(logins_14d\)\.window_days: .*greater than or equal to 1",
        ),
        (
            {"features": {"add": [{**LOGINS, "window_days": True}]}},
            r"features\.add\[0\] \(logins_14d\)\.window_days: .*valid integer",
        ),
        (
            {"features": {"add": [{**LOGINS, "kind": "magic"}]}},
            r"features\.add\[0\] \(logins_14d\)\.kind: .*'aggregate'.*\(got 'magic'\)",
        ),
        # Rules across keys come from FeatureSpec, at the feature's path, named once.
        (
            {"features": {"add": [{"name": "tenure_days", "kind": "tenure", "window_days": 7}]}},
            r"features\.add\[0\] \(tenure_days\): tenure days takes no window_days$",
        ),
        (
            {"features": {"add": [{**LOGINS, "windows": 3}]}},
            r"features\.add\[0\] \(logins_14d\)\.windows: Extra inputs are not permitted",
        ),
        (
            {"features": {"add": [LOGINS, LOGINS]}},
            r"features: added feature names must be unique; repeated: logins_14d",
        ),
        (
            {"features": {"add": [LOGINS], "drop": ["logins_14d"]}},
            r"features: feature\(s\) both added and dropped: logins_14d",
        ),
    ],
)
def test_invalid_settings_name_the_key(data: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        parse_settings(data)


def test_plain_column_names_are_source_mappings() -> None:
    source = parse_settings({"sources": [EVENTS]}).sources[0]
    assert source.columns["event_time"] == ColumnMapping(source="ts")


def test_round_trip_through_the_file(tmp_path: Path) -> None:
    mapping = {
        **EVENTS["columns"],  # type: ignore[dict-item]
        "duration_s": {"seconds_between": ["start", "end"]},
        "properties": {"json_columns": "*"},
        "value": {"source": "amount", "scale": 0.01},
    }
    settings = parse_settings(
        {
            "churn": {"horizon_days": 14},
            "sources": [{**EVENTS, "timezone": "Europe/Paris", "columns": mapping}],
        }
    )
    save_settings(settings, tmp_path)
    assert load_settings(tmp_path) == settings
    assert 'account_id = "user"' in (tmp_path / "churnwatch.toml").read_text()


def test_missing_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no project file .* run 'churnwatch init'"):
        load_settings(tmp_path)
    (tmp_path / "churnwatch.toml").write_text("[churn\nhorizon_days = 3")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(tmp_path)


def test_source_names_in_errors_follow_the_file() -> None:
    # The key path names the source by its name, as a person reads the file.
    with pytest.raises(ConfigError) as caught:
        parse_settings({"sources": [EVENTS, {**EVENTS, "name": "second", "format": "xls"}]})
    assert re.search(r"sources\[1\] \(second\)\.format", str(caught.value))


def test_added_features_are_feature_specs() -> None:
    entry = parse_settings({"features": {"add": [LOGINS]}}).features.add[0]
    assert entry.to_spec() == FeatureSpec(
        "logins_14d", "aggregate", "count", window_days=14, event_type="login"
    )


def test_features_round_trip_through_the_file(tmp_path: Path) -> None:
    settings = parse_settings(
        {
            "features": {
                "defaults": False,
                "top_event_types_count": 2,
                "drop": ["plan"],
                "add": [LOGINS, TENURE],
            }
        }
    )
    save_settings(settings, tmp_path)
    assert load_settings(tmp_path) == settings
    text = (tmp_path / "churnwatch.toml").read_text()
    # Written as a person writes them: tables with only the keys they set.
    assert text.count("[[features.add]]") == 2
    assert "property_name" not in text
