"""The feature set a project declares: defaults, additions and drops.

A project's ``[features]`` section (see :class:`churnwatch.config.FeaturesSettings`)
says whether to start from :func:`default_features`, how many event types
get features of their own, which features to add or replace and which to
drop. :func:`feature_set` turns that section and the warehouse's data into
the list of specs that :func:`compute_features` computes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from churnwatch.features._defaults import default_features, merge_features
from churnwatch.features._spec import FeatureSpec
from churnwatch.warehouse import Warehouse

if TYPE_CHECKING:
    # Only for annotations: churnwatch.config imports the feature specs to
    # validate [[features.add]], so a runtime import here would be circular.
    from churnwatch.config import Settings

__all__ = ["feature_set"]


def feature_set(
    settings: Settings, warehouse: Warehouse, *, drop: Iterable[str] = ()
) -> list[FeatureSpec]:
    """The features a project computes, from its ``[features]`` settings.

    Parameters
    ----------
    settings : Settings
        The project's settings; only ``settings.features`` is read.
    warehouse : Warehouse
        Holds the canonical tables the default features are generated from.
    drop : iterable of str
        Names to leave out besides ``[features] drop`` (such as the CLI's
        ``--drop``); a name dropped twice is dropped once.

    Returns
    -------
    list of FeatureSpec
        :func:`default_features` (when ``defaults`` is true), with the added
        features appended or replacing defaults of the same name, less the
        dropped ones.

    Raises
    ------
    FeatureError
        If a dropped name is not in the set.

    Examples
    --------
    >>> from churnwatch.config import parse_settings
    >>> from churnwatch.warehouse import connect
    >>> settings = parse_settings({"features": {
    ...     "drop": ["tenure_days"],
    ...     "add": [{"name": "logins_14d", "kind": "aggregate", "function": "count",
    ...              "event_type": "login", "window_days": 14}]}})
    >>> with connect("duckdb:///:memory:") as wh:
    ...     wh.ensure_schema()
    ...     [s.name for s in feature_set(settings, wh)]
    ['logins_14d']
    """
    section = settings.features
    base = default_features(warehouse, section.top_event_types_count) if section.defaults else []
    # dict.fromkeys keeps the order and drops repeats: merge_features would
    # reject the second drop of a name as "no such feature".
    drops = list(dict.fromkeys([*section.drop, *drop]))
    return merge_features(base, add=[f.to_spec() for f in section.add], drop=drops)
