"""A churn model trained on simulated data names the simulator's causes of churn.

The simulator documents why its accounts churn (:data:`DRIVERS`) and which
attributes do nothing (:data:`NEUTRAL_SIGNALS`). A model of its output, from
the default feature set, should give reasons that point at the drivers, in
the right direction, and never at the neutral signals.
"""

from __future__ import annotations

import collections
from pathlib import Path

import pandas as pd
import pytest

from churnwatch.explain import Reason
from churnwatch.ingest import ingest
from churnwatch.labels import CutoffSchedule, LabelSpec
from churnwatch.models import TrainedModel, importance_table, train_model, training_frame
from churnwatch.simulate import DRIVERS, NEUTRAL_SIGNALS, simulate
from churnwatch.warehouse import connect

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrainedModel, pd.DataFrame]:
    folder: Path = tmp_path_factory.mktemp("drivers")
    result = simulate(folder / "data", n_accounts=1000, seed=5, end="2024-12-31")
    settings = result.settings()
    with connect(f"duckdb:///{folder / 'warehouse.duckdb'}") as wh:
        ingest(settings, wh)
        frame = training_frame(
            wh,
            LabelSpec("subscription", (30,)),
            CutoffSchedule.every("2024-02-01", "2024-12-01", months=1),
            observation_end=str(result.observation_end),
        )
    model = train_model(
        frame.data, frame.features, frame.targets[0], search_iterations=0, specs=frame.specs
    )
    return model, frame.data


@pytest.fixture(scope="module")
def reasons(trained: tuple[TrainedModel, pd.DataFrame]) -> list[Reason]:
    model, data = trained
    # The accounts someone would act on: above the lowest risk tier.
    risky = data.loc[model.predict(data) >= 0.10]
    assert len(risky) > 100
    return [reason for row in model.reasons(risky, k=3) for reason in row]


def _share(reasons: list[Reason], driver: str) -> float:
    (found,) = [d for d in DRIVERS if d.name == driver]
    return sum(found.observed_by(r.feature) for r in reasons) / len(reasons)


def test_reasons_name_drivers_not_neutral_signals(reasons: list[Reason]) -> None:
    """Nearly every reason observes a driver; region and platform are (almost) never named."""
    counts = collections.Counter(r.feature for r in reasons)
    observed = sum(n for f, n in counts.items() if any(d.observed_by(f) for d in DRIVERS))
    assert observed / len(reasons) >= 0.95, counts.most_common()
    for neutral in NEUTRAL_SIGNALS:
        assert counts[neutral] / len(reasons) <= 0.01, counts.most_common()


@pytest.mark.parametrize(
    "driver", ["sessions_30d", "failed_payments_90d", "negative_support_calls_90d", "early_tenure"]
)
def test_strong_drivers_appear_among_reasons(reasons: list[Reason], driver: str) -> None:
    """Each strong cause of churn is the reason for some at-risk accounts."""
    assert _share(reasons, driver) >= 0.005


def test_reasons_point_the_way_the_simulator_pushes(reasons: list[Reason]) -> None:
    """Short tenure, negative calls, failed payments and no CSM raise risk; never the reverse."""
    higher = {"negative_support_90d", "failed_payments_90d"}
    checked = 0
    for reason in reasons:
        value = reason.value
        if reason.feature == "tenure_days" and value is not None:
            # Young accounts churn more; a long tenure is never a reason for risk.
            assert float(value) < 365, reason.text
            checked += 1
        elif reason.feature in higher:
            assert value is not None, reason.text
            assert float(value) >= 1, reason.text
            checked += 1
        elif reason.feature == "has_csm":
            assert value == 0, reason.text
            checked += 1
    assert checked > 0


def test_activity_is_the_most_important_driver(trained: tuple[TrainedModel, pd.DataFrame]) -> None:
    """Mean |SHAP| puts a usage feature first and the neutral signals outside the top five."""
    model, data = trained
    ranking = list(importance_table(model, data)["feature"])
    (activity,) = [d for d in DRIVERS if d.name == "sessions_30d"]
    assert activity.observed_by(ranking[0]), ranking[:5]
    for neutral in NEUTRAL_SIGNALS:
        assert ranking.index(neutral) >= 5, ranking[:10]
