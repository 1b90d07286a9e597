"""Assemble the sections and write the page."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from churnwatch.config import Settings
from churnwatch.errors import ChurnwatchError
from churnwatch.models import ModelRegistry
from churnwatch.report._html import Section, render_page
from churnwatch.report._kpis import business_kpis
from churnwatch.report._sections import (
    cohort_section,
    health_section,
    kpi_section,
    model_section,
    segment_section,
    survival_section,
)
from churnwatch.warehouse import Warehouse

__all__ = ["ReportResult", "write_report"]


@dataclass(frozen=True)
class ReportResult:
    """What :func:`write_report` wrote.

    Attributes
    ----------
    path : Path
        The HTML file.
    as_of : datetime
        The instant the report describes.
    sections : dict of str to str
        Each section's key and ``"ok"``, or why it is missing.
    """

    path: Path
    as_of: dt.datetime
    sections: dict[str, str] = field(default_factory=dict)


def write_report(
    warehouse: Warehouse,
    settings: Settings,
    out: str | os.PathLike[str],
    *,
    registry: ModelRegistry | None = None,
    as_of: str | dt.date | dt.datetime | None = None,
    by: str = "plan",
) -> ReportResult:
    """Write the retention report as one self-contained HTML file.

    Parameters
    ----------
    warehouse : Warehouse
        Holds the canonical tables (and ``risk_scores`` once scored).
    settings : Settings
        The project's settings (churn definition, observation end, health).
    out : path
        The HTML file to write; its folder is created.
    registry : ModelRegistry, optional
        Where the promoted models are, for the model-quality section.
    as_of : str, date or datetime, optional
        The instant described; default the end of the data.
    by : str
        The account attribute the survival curves are split by (``plan``,
        ``region``, ``platform``, ``segment``...).

    Returns
    -------
    ReportResult
    """
    kpis = business_kpis(warehouse, settings, as_of=as_of)
    moment = kpis.as_of
    builders: list[tuple[str, str, Callable[[], Section]]] = [
        ("kpis", "The business at a glance", lambda: kpi_section(kpis)),
        (
            "cohorts",
            "Cohorts and revenue retention",
            lambda: cohort_section(warehouse, settings, moment),
        ),
        ("survival", "Survival", lambda: survival_section(warehouse, settings, moment, by)),
        ("segments", "Segments", lambda: segment_section(warehouse, settings, moment)),
        ("health", "Health score", lambda: health_section(warehouse, settings, moment)),
        ("model", "Model quality", lambda: model_section(registry)),
    ]
    sections = [_built(key, title, build) for key, title, build in builders]
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    name = settings.project.name or "Churnwatch"
    page = render_page(
        f"{name}: retention report",
        f"As of {kpis.as_of.date().isoformat()} · warehouse {warehouse.dialect}",
        sections,
    )
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(page, encoding="utf-8")
    temporary.replace(path)  # a reader never sees half a report
    return ReportResult(
        path=path,
        as_of=kpis.as_of,
        sections={s.key: s.missing or "ok" for s in sections},
    )


def _built(key: str, title: str, build: Callable[[], Section]) -> Section:
    """A section, or its place with the reason it could not be computed."""
    try:
        return build()
    except ChurnwatchError as exc:
        return Section(key, title, missing=str(exc))
