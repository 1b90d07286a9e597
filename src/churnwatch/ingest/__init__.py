"""Ingestion: sources mapped onto the canonical tables, losing nothing.

See :func:`ingest` for the entry point, :mod:`churnwatch.ingest.presets` for
ready-made mappings of common exports.
"""

from __future__ import annotations

from churnwatch.ingest.loader import FileLoad, IngestReport, ingest

__all__ = ["FileLoad", "IngestReport", "ingest"]
