"""``/cohorts`` and ``/survival``: retention summaries from the read model.

Cohort retention (share of each sign-up cohort still active after each
period), Kaplan-Meier curves by attribute with their confidence band, and
the log-rank test of each attribute, as the daily refresh computed them.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from churnwatch.api._app import state_of
from churnwatch.api._auth import AUTH_RESPONSES, ErrorOut, reader
from churnwatch.views import ReadModel

__all__ = ["CohortsOut", "SurvivalOut", "router"]

router = APIRouter(tags=["retention"], dependencies=[reader], responses=AUTH_RESPONSES)
_ERRORS: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorOut, "description": "Not computed yet in the read model."},
}


class CohortOut(BaseModel):
    """One sign-up cohort: its size and retention after each period (0-1)."""

    cohort: str
    cohort_size: int | None
    retention: list[float | None]
    periods: list[int]


class CohortsOut(BaseModel):
    """Cohort retention, oldest cohort first."""

    cohorts: list[CohortOut]


class CurvePoint(BaseModel):
    """One step of a Kaplan-Meier curve."""

    days: float | None
    survival: float | None
    lower: float | None
    upper: float | None


class CurveOut(BaseModel):
    """The survival curve of one group of an attribute."""

    attribute: str
    group: str
    points: list[CurvePoint]


class SurvivalTestOut(BaseModel):
    """The log-rank test of an attribute's groups."""

    attribute: str
    statistic: float | None
    p_value: float | None
    degrees_of_freedom: float | None
    groups: int | None


class SurvivalOut(BaseModel):
    """Survival curves and the log-rank tests."""

    attributes: list[str]
    curves: list[CurveOut]
    tests: list[SurvivalTestOut]


def _views(request: Request) -> ReadModel:
    state = state_of(request)
    assert state.lookups is not None
    return state.lookups.model()


@router.get("/cohorts", responses=_ERRORS)
def cohorts(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=1000, description="The latest cohorts kept.")] = 120,
) -> CohortsOut:
    """Cohort retention from the read model's ``cohort_retention`` table."""
    rows = _views(request).table("cohort_retention").to_pylist()
    found: dict[str, CohortOut] = {}
    for row in sorted(rows, key=lambda r: (str(r["cohort"]), r["period"])):
        key = str(row["cohort"])
        cohort = found.setdefault(
            key, CohortOut(cohort=key, cohort_size=row.get("cohort_size"), retention=[], periods=[])
        )
        cohort.periods.append(int(row["period"]))
        cohort.retention.append(row.get("retention"))
    return CohortsOut(cohorts=list(found.values())[-limit:])


@router.get("/survival", responses=_ERRORS)
def survival(
    request: Request,
    attribute: Annotated[
        str | None,
        Query(max_length=128, description="Curves of this attribute's groups ('all': overall)."),
    ] = None,
) -> SurvivalOut:
    """Kaplan-Meier curves (``survival_curves``) and log-rank tests (``survival_tests``)."""
    views = _views(request)
    rows = views.table("survival_curves").to_pylist()
    attributes = sorted({str(row["attribute"]) for row in rows})
    chosen = attribute or "all"
    curves: dict[str, CurveOut] = {}
    for row in rows:
        if str(row["attribute"]) != chosen:
            continue
        group = str(row["group"])
        curve = curves.setdefault(group, CurveOut(attribute=chosen, group=group, points=[]))
        curve.points.append(CurvePoint.model_validate(row))
    tests: list[SurvivalTestOut] = []
    if "survival_tests" in views.generation.tables:
        found = views.table("survival_tests").to_pylist()
        tests = [SurvivalTestOut.model_validate(row) for row in found]
    return SurvivalOut(attributes=attributes, curves=list(curves.values()), tests=tests)
