"""The read model: precomputed tables the dashboard and the API read.

The daily job (or ``churnwatch views refresh``) computes every table the
dashboard pages and the API answers need — one row per account with risk,
reasons, health, segment and tracker state; risk history; weekly activity;
churn trend; cohorts; survival curves; segments; model diagnostics — and
writes them as one *generation* of Parquet files swapped in atomically
(:func:`write_generation`). Readers (:class:`ReadModel`) never hold a lock on
the warehouse, so they keep serving while the next refresh is written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from churnwatch.views._generation import (
    Generation,
    ViewsNotFoundError,
    current_generation,
    write_generation,
)
from churnwatch.views._read import (
    ACCOUNT_FILTERS,
    SORTABLE,
    AccountFilter,
    AccountPage,
    ReadModel,
)

if TYPE_CHECKING:
    from churnwatch.views._inputs import MissingInputError
    from churnwatch.views._refresh import TABLES, RefreshResult, refresh_views

# The refresh needs the models (scikit-learn, LightGBM: seconds to import);
# the dashboard and the API only read, so it is imported on first use.
_LAZY = {
    "MissingInputError": "churnwatch.views._inputs",
    "TABLES": "churnwatch.views._refresh",
    "RefreshResult": "churnwatch.views._refresh",
    "refresh_views": "churnwatch.views._refresh",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ACCOUNT_FILTERS",
    "SORTABLE",
    "TABLES",
    "AccountFilter",
    "AccountPage",
    "Generation",
    "MissingInputError",
    "ReadModel",
    "RefreshResult",
    "ViewsNotFoundError",
    "current_generation",
    "refresh_views",
    "write_generation",
]
