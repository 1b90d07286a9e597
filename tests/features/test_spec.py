"""Feature specs are validated when built, from code or from a project file's dict."""

from __future__ import annotations

from typing import Any

import pytest

from churnwatch.errors import ConfigError
from churnwatch.features import FeatureSpec, explain


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "Bad Name", "kind": "tenure"}, "feature name"),
        ({"name": "cutoff", "kind": "tenure"}, "reserved"),
        ({"name": "x", "kind": "magic"}, "unknown kind"),
        ({"name": "x", "kind": "aggregate", "function": "median"}, "takes function"),
        ({"name": "x", "kind": "aggregate", "function": "sum"}, "needs column"),
        ({"name": "x", "kind": "aggregate", "function": "mean", "column": "amount"}, "event col"),
        ({"name": "x", "kind": "aggregate", "function": "count", "window_days": 0}, "window_days"),
        ({"name": "x", "kind": "aggregate", "function": "count", "window_days": 1.5}, "window"),
        ({"name": "x", "kind": "trend", "function": "ratio"}, "needs window_days"),
        ({"name": "x", "kind": "consistency"}, "weeks"),
        ({"name": "x", "kind": "tenure", "window_days": 30}, "no window_days"),
        ({"name": "x", "kind": "payments", "function": "failed_count", "event_type": "login"},
         "no event filter"),
        ({"name": "x", "kind": "recency", "property_name": "plan"}, "together"),
        ({"name": "x", "kind": "recency", "property_name": "a.b", "property_value": "1"},
         "plain JSON key"),
        ({"name": "x", "kind": "attribute", "column": "mrr"}, "account columns"),
        ({"name": "x", "kind": "tenure", "windows": 3}, "unknown key"),
        ({"kind": "tenure"}, "missing name"),
    ],
)  # fmt: skip
def test_invalid_specs_say_what_is_wrong(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        FeatureSpec.from_dict(fields)


def test_defaults_and_descriptions() -> None:
    spec = FeatureSpec("share", "consistency", weeks=6)
    assert spec.function == "share"
    assert spec.dtype == "float64"
    assert explain([spec]) == [
        "share (float64): share of weeks with events in the 6 weeks before the cutoff "
        "[source: events]"
    ]
    custom = FeatureSpec("n", "aggregate", "count", description="what I say")
    assert custom.description == "what I say"
    assert FeatureSpec("s", "users", "active_share").source == "users"
    assert FeatureSpec("u", "users", "active_users").source == "events"


def test_public_names_are_pinned() -> None:
    import churnwatch.features

    assert churnwatch.features.__all__ == [
        "FeatureKind",
        "FeatureSpec",
        "compile_features",
        "compute_features",
        "default_features",
        "explain",
        "feature_set",
        "merge_features",
    ]
