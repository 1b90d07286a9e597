"""The [features] section: defaults, additions and drops make the feature set."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from churnwatch.config import Settings, parse_settings
from churnwatch.errors import FeatureError
from churnwatch.features import FeatureSpec, default_features, feature_set, merge_features
from churnwatch.warehouse import Warehouse, connect

LOGINS_14D = {
    "name": "logins_14d",
    "kind": "aggregate",
    "function": "count",
    "event_type": "login",
    "window_days": 14,
}


@pytest.fixture
def loaded(golden: Any, tmp_path: Path) -> Iterator[Warehouse]:
    """The golden business in DuckDB: logins are the most frequent event type."""
    with connect(f"duckdb:///{tmp_path / 'w.duckdb'}") as warehouse:
        golden.load(warehouse)
        yield warehouse


def settings(**features: Any) -> Settings:
    return parse_settings({"features": features})


def names(specs: list[FeatureSpec]) -> list[str]:
    return [s.name for s in specs]


def test_defaults_follow_the_data_and_the_event_type_count(loaded: Warehouse) -> None:
    specs = feature_set(settings(), loaded)
    assert specs == default_features(loaded, 5)
    one_type = names(feature_set(settings(top_event_types_count=1), loaded))
    assert "login_30d" in one_type
    assert "support_call_30d" not in one_type
    two_types = names(feature_set(settings(top_event_types_count=2), loaded))
    assert {"login_30d", "support_call_30d"} <= set(two_types)
    none = names(feature_set(settings(top_event_types_count=0), loaded))
    assert not any(n.startswith("login_") for n in none)
    assert "events_30d" in none


def test_without_defaults_only_the_added_features(loaded: Warehouse) -> None:
    specs = feature_set(settings(defaults=False, add=[LOGINS_14D]), loaded)
    assert specs == [
        FeatureSpec("logins_14d", "aggregate", "count", window_days=14, event_type="login")
    ]


def test_an_added_feature_replaces_a_default_in_place(loaded: Warehouse) -> None:
    defaults = names(default_features(loaded))
    replaced = {"name": "events_30d", "kind": "aggregate", "function": "active_days",
                "window_days": 30}  # fmt: skip
    specs = feature_set(settings(add=[replaced, LOGINS_14D]), loaded)
    assert names(specs) == [*defaults, "logins_14d"]
    assert specs[defaults.index("events_30d")].function == "active_days"


def test_configured_and_extra_drops_add_up(loaded: Warehouse) -> None:
    specs = feature_set(settings(drop=["plan", "region"]), loaded, drop=["region", "tenure_days"])
    kept = names(specs)
    assert not {"plan", "region", "tenure_days"} & set(kept)
    assert len(kept) == len(default_features(loaded)) - 3


def test_dropping_an_unknown_feature_names_it(loaded: Warehouse) -> None:
    with pytest.raises(FeatureError, match="cannot drop feature 'logins_7d'"):
        feature_set(settings(), loaded, drop=["logins_7d"])


# -- invalid features raise FeatureError, a ConfigError --------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"name": "Bad Name", "kind": "tenure"},
        {"name": "x", "kind": "aggregate", "function": "median"},
        {"name": "x", "kind": "consistency", "weeks": 521},
        {"name": "x", "kind": "tenure", "windows": 3},
        {"kind": "tenure"},
    ],
)
def test_invalid_specs_raise_feature_errors(fields: dict[str, Any]) -> None:
    with pytest.raises(FeatureError):
        FeatureSpec.from_dict(fields)


def test_feature_set_errors_are_feature_errors(tmp_path: Path) -> None:
    with pytest.raises(FeatureError, match="no such feature"):
        merge_features([FeatureSpec("tenure_days", "tenure")], drop=["plan"])
    with connect(f"duckdb:///{tmp_path / 'w.duckdb'}") as warehouse:
        warehouse.ensure_schema()
        with pytest.raises(FeatureError, match="top_event_types"):
            default_features(warehouse, top_event_types=-1)
