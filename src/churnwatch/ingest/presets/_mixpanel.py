"""Preset ``mixpanel``: Mixpanel's raw event export."""

from __future__ import annotations

from pathlib import Path

from churnwatch.config import SourceSpec
from churnwatch.ingest.presets._preset import file_path, make_source

__all__ = ["mixpanel_sources"]


def mixpanel_sources(data_dir: Path, *, pattern: str = "*.jsonl") -> list[SourceSpec]:
    """Map a Mixpanel raw event export (JSON lines) onto events.

    The export (``/api/2.0/export``) holds one JSON object a line::

        {"event": "Signed up", "properties": {"time": 1704067200,
         "distinct_id": "u-1", "$insert_id": "a1b2", "$os": "Mac OS X", ...}}

    Accounts are the ``distinct_id`` values: an id seen for the first time
    creates its account, dated by its first event (``unknown_account =
    "create"``).

    Parameters
    ----------
    data_dir : Path
        Folder holding the export.
    pattern : str
        Glob of the export files inside ``data_dir`` (``*.jsonl.gz`` files are
        read too when the pattern matches them).

    Returns
    -------
    list of SourceSpec
        One source, ``mixpanel_events``.

    Notes
    -----
    Mapping:

    ======================  ==================================================
    ``events.account_id``   ``properties.distinct_id``
    ``events.event_time``   ``properties.time``, seconds since 1970 UTC
    ``events.event_type``   ``event``
    ``events.event_id``     ``properties.$insert_id``
    ``events.properties``   every other property, keyed by its dotted source
                            name (``{"properties.$os": "Mac OS X", ...}``)
    ======================  ==================================================

    A line that is not JSON is quarantined as ``malformed_row``; an event sent
    twice (same ``$insert_id``, time, name and ``distinct_id``, Mixpanel's own
    de-duplication rule) as ``duplicate_in_load``.

    Projects created before 2023 may export ``time`` in the project's time
    zone rather than UTC; such exports are shifted by that offset.

    Examples
    --------
    >>> mixpanel_sources(Path("mp"))[0].path
    'mp/*.jsonl'
    """
    return [
        make_source(
            "mixpanel_events",
            "events",
            file_path(data_dir, pattern),
            {
                "event_id": "properties.$insert_id",
                "account_id": "properties.distinct_id",
                "event_time": {"source": "properties.time", "transform": "epoch_s"},
                "event_type": "event",
                "properties": {"json_columns": "*"},
            },
            format="jsonl",
            unknown_account="create",
        )
    ]
