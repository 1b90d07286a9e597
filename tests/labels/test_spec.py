"""LabelSpec and CutoffSchedule: validation, defaults and the words they print."""

from __future__ import annotations

import datetime as dt

import pytest

from churnwatch.config import ChurnSettings
from churnwatch.errors import LabelError
from churnwatch.labels import CutoffSchedule, LabelSpec

UTC = dt.UTC


def test_horizons_are_sorted_unique_and_name_the_columns() -> None:
    spec = LabelSpec("subscription", horizon_days=(30, 14, 30))
    assert spec.horizon_days == (14, 30)
    assert spec.columns == ("churn_14d", "churn_30d")
    assert LabelSpec("activity", horizon_days=(7,), name="sessions").columns == ("sessions_7d",)
    assert LabelSpec("revenue").columns == ("revenue_30d",)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"kind": "churn"}, "unknown label kind"),
        ({"kind": "subscription", "horizon_days": (0,)}, "horizon_days"),
        ({"kind": "subscription", "horizon_days": ()}, "horizon_days"),
        ({"kind": "subscription", "lead_days": -1}, "lead_days"),
        ({"kind": "subscription", "grace_days": 1.5}, "grace_days"),
        ({"kind": "subscription", "event_types": ("login",)}, "event_types"),
        ({"kind": "inactivity", "event_types": ()}, "event_types"),
        ({"kind": "inactivity", "product": "pay"}, "product"),
        ({"kind": "inactivity", "name": "churn 30"}, "identifier"),
    ],
)
def test_invalid_specs_say_what_is_wrong(arguments: dict[str, object], message: str) -> None:
    with pytest.raises(LabelError, match=message):
        LabelSpec(**arguments)  # type: ignore[arg-type]


def test_spec_from_settings() -> None:
    churn = ChurnSettings(definition="inactivity", horizon_days=14, inactivity_days=21)
    spec = LabelSpec.from_settings(churn, lead_days=3)
    assert (spec.kind, spec.horizon_days, spec.inactivity_days, spec.lead_days) == (
        "inactivity",
        (14,),
        21,
        3,
    )
    assert "no event in the 14 days starting 3 days after the cutoff" in spec.describe()


def test_every_month_keeps_the_day_or_the_month_end() -> None:
    schedule = CutoffSchedule.every("2024-01-31", "2024-05-01", months=1)
    assert [c.date().isoformat() for c in schedule.dates] == [
        "2024-01-31",
        "2024-02-29",
        "2024-03-31",
        "2024-04-30",
    ]
    assert all(c.tzinfo == UTC for c in schedule.dates)


def test_every_days_and_weeks_are_half_open() -> None:
    weeks = CutoffSchedule.every(dt.date(2024, 1, 1), dt.date(2024, 1, 29), weeks=1)
    assert len(weeks.dates) == 4  # the end, 01-29, is not a cutoff
    days = CutoffSchedule.every("2024-01-01T12:00", "2024-01-04T12:00", days=1)
    assert days.dates[0] == dt.datetime(2024, 1, 1, 12, tzinfo=UTC)
    assert len(days.dates) == 3


def test_explicit_cutoffs_are_utc_sorted_and_unique() -> None:
    paris = dt.timezone(dt.timedelta(hours=1))
    schedule = CutoffSchedule.explicit(
        ["2024-03-01", dt.datetime(2024, 2, 1, 1, tzinfo=paris), dt.date(2024, 3, 1)]
    )
    assert schedule.dates == (
        dt.datetime(2024, 2, 1, tzinfo=UTC),
        dt.datetime(2024, 3, 1, tzinfo=UTC),
    )
    assert not schedule.relative
    assert CutoffSchedule.after_signup(days=7).relative


@pytest.mark.parametrize(
    "make",
    [
        lambda: CutoffSchedule.every("2024-01-01", "2024-02-01"),
        lambda: CutoffSchedule.every("2024-01-01", "2024-02-01", days=1, weeks=1),
        lambda: CutoffSchedule.every("2024-02-01", "2024-01-01", days=1),
        lambda: CutoffSchedule.explicit([]),
        lambda: CutoffSchedule.explicit(["first of May"]),
        lambda: CutoffSchedule.after_signup(days=0),
    ],
)
def test_invalid_schedules_raise(make: object) -> None:
    with pytest.raises(LabelError):
        make()  # type: ignore[operator]
