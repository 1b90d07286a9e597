"""What a refresh reads, each read once and shared by the table builders.

Several tables stand on the same results: the latest risk scores feed the
account list and the KPIs, the segmentation feeds the account list, the
segment map and the survival curves by segment. :class:`RefreshInputs`
computes each on first use and keeps it — or keeps the error that stopped it,
so a table that needs a missing input says why instead of computing it again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa
import sqlalchemy as sa
from sqlglot import exp

from churnwatch.config import Settings
from churnwatch.errors import ChurnwatchError, ModelError
from churnwatch.features._portable import instant
from churnwatch.models import ModelCard, ModelRegistry
from churnwatch.scoring import RISK_SCORES_TABLE, data_end
from churnwatch.store import Store, read_columns
from churnwatch.warehouse import Warehouse

__all__ = ["MissingInputError", "RefreshInputs", "public_store_url", "store_file_exists"]

T = TypeVar("T")


class MissingInputError(ChurnwatchError):
    """An input a table needs is absent (no model, no scores, no store...)."""


class RefreshInputs:
    """The sources of one refresh and the results several tables share.

    Parameters
    ----------
    settings : Settings
        The project's settings.
    warehouse : Warehouse
        The canonical tables and ``risk_scores``.
    registry : ModelRegistry or None
        The project's models, if any.
    store : Store or None
        The operational store, if there is one.
    store_url : str or None
        Its URL, passed on to readers for live data.
    """

    def __init__(
        self,
        settings: Settings,
        warehouse: Warehouse,
        *,
        registry: ModelRegistry | None = None,
        store: Store | None = None,
        store_url: str | None = None,
    ) -> None:
        self.settings = settings
        self.warehouse = warehouse
        self.registry = registry
        self.store = store
        self.store_url = store_url
        self._memo: dict[str, Any] = {}

    def shared(self, key: str, compute: Callable[[], T]) -> T:
        """``compute()`` once per refresh; a ChurnwatchError is kept and raised again."""
        if key not in self._memo:
            try:
                self._memo[key] = compute()
            except ChurnwatchError as exc:
                self._memo[key] = exc
        found = self._memo[key]
        if isinstance(found, ChurnwatchError):
            raise found
        result: T = found
        return result

    # -- the model side -----------------------------------------------------

    @property
    def churn_target(self) -> str:
        """The churn target the account list shows (``churn_<horizon>d``)."""
        return f"churn_{self.settings.churn.horizon_days}d"

    def promoted_churn(self) -> dict[str, ModelCard]:
        """Promoted churn models by target (empty without a registry)."""
        if self.registry is None or not self.registry.root.exists():
            return {}
        promoted = self.registry.promoted()
        return {name: promoted[name] for name in sorted(promoted) if name.startswith("churn")}

    def scored_target(self) -> tuple[str, dt.datetime]:
        """The churn target of the latest scores and when it was scored.

        Raises
        ------
        MissingInputError
            When nothing was scored yet.
        """
        return self.shared("scored_target", self._scored_target)

    def _scored_target(self) -> tuple[str, dt.datetime]:
        wh = self.warehouse
        if not wh.table_exists(RISK_SCORES_TABLE):
            raise MissingInputError(
                "no risk scores yet: run 'churnwatch train' and 'churnwatch score'"
            )
        rows = wh.query(
            exp.select(
                exp.column("target"),
                exp.alias_(exp.func("MAX", exp.column("scored_at")), "latest"),
            )
            .from_(RISK_SCORES_TABLE)
            .where(exp.column("target").like(exp.Literal.string("churn%")))
            .group_by(exp.column("target"))
        ).to_pylist()
        if not rows:
            raise MissingInputError("no churn risk scores yet: run 'churnwatch score'")
        latest = {row["target"]: _utc(row["latest"]) for row in rows}
        target = self.churn_target if self.churn_target in latest else sorted(latest)[-1]
        return target, latest[target]

    def latest_scores(self) -> pa.Table:
        """The rows of ``risk_scores`` of the latest run of :meth:`scored_target`."""
        return self.shared("latest_scores", self._latest_scores)

    def _latest_scores(self) -> pa.Table:
        target, scored_at = self.scored_target()
        return self.warehouse.query(
            exp.select("*")
            .from_(RISK_SCORES_TABLE)
            .where(
                exp.and_(
                    exp.column("target").eq(exp.Literal.string(target)),
                    exp.column("scored_at").eq(instant(scored_at, self.warehouse.dialect)),
                )
            )
        )

    def moment(self) -> dt.datetime:
        """The instant the read model describes: the latest scoring, else the end of the data."""
        return self.shared("moment", self._moment)

    def _moment(self) -> dt.datetime:
        try:
            return self.scored_target()[1]
        except MissingInputError:
            pass
        try:
            return data_end(self.warehouse)
        except ModelError:
            return dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)

    # -- the store side -----------------------------------------------------

    def require_store(self) -> Store:
        """The operational store.

        Raises
        ------
        MissingInputError
            When the project has none yet.
        """
        if self.store is None:
            raise MissingInputError(
                "no operational store yet: run 'churnwatch daily' (or 'churnwatch track') "
                "to track adoption"
            )
        return self.store

    def store_rows(self, query: sa.Select[Any]) -> pa.Table:
        """The rows of a store query, as Arrow."""
        store = self.require_store()
        with store.engine.connect() as connection:
            # Column lists straight from the driver: a million tracked
            # accounts are never a million Row objects.
            columns = read_columns(connection, query)
        return pa.table(columns)


def _utc(value: object) -> dt.datetime:
    if not isinstance(value, dt.datetime):
        raise ModelError(f"risk_scores.scored_at holds {value!r}, not a timestamp")
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def store_file_exists(url: str, base_dir: Path | None) -> bool:
    """Whether a SQLite store's file exists (a server store is assumed to).

    Examples
    --------
    >>> store_file_exists("sqlite:///no/such/file.sqlite", None)
    False
    >>> store_file_exists("postgresql://db/ops", None)
    True
    """
    path = _sqlite_file(url, base_dir)
    return path is None or path.exists()


def public_store_url(url: str, base_dir: Path | None) -> str:
    """The store URL readers are told: a SQLite file made absolute, a password hidden.

    The read model's meta document is read by the dashboard and the API; a
    password in it would be a secret in a plain file, so readers take their
    credentials from the settings instead.

    Examples
    --------
    >>> public_store_url("sqlite:///ops.sqlite", Path("/srv/project"))
    'sqlite:////srv/project/ops.sqlite'
    >>> public_store_url("postgresql://cw:secret@db/ops", None)
    'postgresql://cw:***@db/ops'
    """
    path = _sqlite_file(url, base_dir)
    if path is not None:
        return f"sqlite:///{path.resolve()}"
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return url


def _sqlite_file(url: str, base_dir: Path | None) -> Path | None:
    """The file of a SQLite URL (relative to ``base_dir``), None for memory or a server."""
    if not url.startswith("sqlite"):
        return None
    database = url.split("///", 1)[1] if "///" in url else ""
    if database in ("", ":memory:"):
        return None
    path = Path(database)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return path
