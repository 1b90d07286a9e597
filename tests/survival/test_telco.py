"""Golden: on IBM's Telco table, our path from the canonical tables equals lifelines on the CSV.

The reference is lifelines run here directly on the CSV (duration ``tenure``
in months, event ``Churn``). Ours loads the CSV with the ``telco`` ingest
preset (``tenure_days`` = months x 30.4375, ``churned``), derives durations
from the warehouse and fits through :mod:`churnwatch.survival`; so the test
checks the preset, the derivation and the wrapper together. Times compare
after dividing ours by 30.4375; survival probabilities, bands, p-values and
Cox estimates compare as they are, to 1e-9.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.statistics import (
    multivariate_logrank_test,
    pairwise_logrank_test,
    proportional_hazard_test,
)
from lifelines.utils import median_survival_times
from sqlglot import exp

from churnwatch.config import Settings
from churnwatch.ingest import ingest
from churnwatch.ingest.presets import preset_sources
from churnwatch.survival import (
    analyze_survival,
    cox_time_to_churn,
    fit_cox,
    snapshot_durations,
    with_attribute,
)
from churnwatch.warehouse import Warehouse, connect

SHARED = Path(__file__).parents[2].parent / "shared" / "data" / "telco"
CSV = SHARED / "WA_Fn-UseC_-Telco-Customer-Churn.csv"
DAYS_PER_MONTH = 30.4375
TOLERANCE = 1e-9


@pytest.fixture(scope="module")
def csv() -> pd.DataFrame:
    if not CSV.is_file():
        pytest.skip(f"{CSV} is absent (CI keeps ../shared/data beside the repository)")
    frame = pd.read_csv(CSV)
    assert len(frame) == 7_043  # copies of this file circulate with edits
    frame["E"] = (frame["Churn"] == "Yes").astype(int)
    return frame


@pytest.fixture(scope="module")
def telco(csv: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    path = tmp_path_factory.mktemp("telco") / "w.duckdb"
    with connect(f"duckdb:///{path}") as wh:
        report = ingest(
            Settings(sources=preset_sources("telco", SHARED)),
            wh,
            now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        )
        assert not report.errors
        yield wh


def close(ours: np.ndarray, reference: np.ndarray) -> None:
    np.testing.assert_allclose(ours, reference, rtol=0, atol=TOLERANCE)


def assert_same_curve(ours: pd.DataFrame, reference: KaplanMeierFitter) -> None:
    close(ours["timeline"].to_numpy() / DAYS_PER_MONTH, reference.timeline)
    close(ours["survival"].to_numpy(), reference.survival_function_.iloc[:, 0].to_numpy())
    band = reference.confidence_interval_survival_function_
    close(ours["ci_lower"].to_numpy(), band.iloc[:, 0].to_numpy())
    close(ours["ci_upper"].to_numpy(), band.iloc[:, 1].to_numpy())


def test_kaplan_meier_overall_equals_lifelines(telco: Warehouse, csv: pd.DataFrame) -> None:
    analysis = analyze_survival(telco, Settings(), basis="snapshot")
    reference = KaplanMeierFitter().fit(csv["tenure"], csv["E"])
    assert_same_curve(analysis.overall.survival, reference)
    row = analysis.overall.medians.iloc[0]
    assert (row["accounts"], row["churned"]) == (7_043, 1_869)
    # Telco's curve stays above one half: no median, and it says for how long.
    assert np.isinf(reference.median_survival_time_)
    assert not row["median_reached"]
    assert np.isnan(row["median_days"])
    assert row["followed_days"] == 72 * DAYS_PER_MONTH
    assert analysis.overall.median_text().startswith("more than 2191.5 days")


def test_kaplan_meier_by_contract_equals_lifelines(telco: Warehouse, csv: pd.DataFrame) -> None:
    analysis = analyze_survival(telco, Settings(), basis="snapshot", by="plan")
    curves = analysis.by_group
    assert curves is not None
    assert curves.groups == ["Month-to-month", "One year", "Two year"]
    for contract, part in csv.groupby("Contract"):
        reference = KaplanMeierFitter().fit(part["tenure"], part["E"])
        assert_same_curve(curves.survival.loc[curves.survival["group"] == contract], reference)
        row = curves.medians.loc[curves.medians["group"] == contract].iloc[0]
        median = reference.median_survival_time_
        if np.isfinite(median):
            bounds = median_survival_times(reference.confidence_interval_survival_function_)
            close(
                np.array([row["median_days"], row["ci_lower"], row["ci_upper"]]) / DAYS_PER_MONTH,
                np.array([median, bounds.iloc[0, 0], bounds.iloc[0, 1]]),
            )
        else:
            assert not row["median_reached"]
            assert np.isnan(row["median_days"])
    month_to_month = curves.medians.set_index("group").loc["Month-to-month"]
    assert month_to_month["median_reached"]  # 1,655 of 3,875 churned: the median is reached


def test_retention_at_days_equals_lifelines(telco: Warehouse, csv: pd.DataFrame) -> None:
    analysis = analyze_survival(telco, Settings(), retention_days=(7, 30, 90, 365, 1000))
    reference = KaplanMeierFitter().fit(csv["tenure"] * DAYS_PER_MONTH, csv["E"])
    band = reference.confidence_interval_survival_function_
    for row in analysis.retention.itertuples():
        close(
            np.array([row.retention]),
            reference.survival_function_at_times(row.day).to_numpy(),
        )
        at = band.loc[band.index <= row.day].iloc[-1].to_numpy()
        close(np.array([row.ci_lower, row.ci_upper]), at)


def test_log_rank_p_values_equal_lifelines(telco: Warehouse, csv: pd.DataFrame) -> None:
    for by, column in (("plan", "Contract"), ("InternetService", "InternetService")):
        analysis = analyze_survival(telco, Settings(), by=by)
        assert analysis.by_group is not None
        assert analysis.by_group.logrank is not None
        ours = analysis.by_group.logrank
        reference = multivariate_logrank_test(csv["tenure"], csv[column], csv["E"])
        close(np.array([ours.p_value]), np.array([reference.p_value]))
        np.testing.assert_allclose(ours.statistic, reference.test_statistic, rtol=1e-12)
        assert ours.degrees_of_freedom == reference.degrees_of_freedom
        pairs = pairwise_logrank_test(csv["tenure"], csv[column], csv["E"]).summary
        found = ours.pairwise.set_index(["group_a", "group_b"])
        assert list(found.index) == list(pairs.index)
        close(found["p_value"].to_numpy(), pairs["p"].to_numpy())
        np.testing.assert_allclose(
            found["statistic"].to_numpy(), pairs["test_statistic"].to_numpy(), rtol=1e-12
        )


def cox_frames(telco: Warehouse, csv: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Ours from the canonical tables; the reference straight from the CSV."""
    durations = with_attribute(telco, snapshot_durations(telco), "SeniorCitizen")
    durations = with_attribute(telco, durations, "plan")
    mrr = telco.query(exp.select("account_id", "mrr").from_("accounts")).to_pandas()
    ours = durations.frame.merge(mrr, on="account_id")[
        ["account_id", "duration_days", "event_observed", "mrr", "SeniorCitizen", "plan"]
    ]
    dummies = pd.get_dummies(csv["Contract"], prefix="plan", drop_first=True).astype(float)
    reference = pd.concat(
        [
            csv[["tenure", "E"]],
            csv[["MonthlyCharges"]].rename(columns={"MonthlyCharges": "mrr"}),
            csv["SeniorCitizen"].astype(float).rename("SeniorCitizen_1"),
            dummies,
        ],
        axis=1,
    )
    return ours, reference


def test_cox_equals_lifelines(telco: Warehouse, csv: pd.DataFrame) -> None:
    """Unpenalized and unscaled: the same coefficients, standard errors and p-values."""
    ours_frame, reference_frame = cox_frames(telco, csv)
    ours = fit_cox(ours_frame, standardize=False, penalizer=0.0)
    reference = CoxPHFitter().fit(reference_frame, duration_col="tenure", event_col="E")
    expected = reference.summary
    found = ours.summary.set_index("covariate").loc[expected.index]
    close(found["coef"].to_numpy(), expected["coef"].to_numpy())
    close(found["se"].to_numpy(), expected["se(coef)"].to_numpy())
    close(found["p_value"].to_numpy(), expected["p"].to_numpy())
    close(found["hazard_ratio"].to_numpy(), expected["exp(coef)"].to_numpy())
    close(found["hr_lower"].to_numpy(), expected["exp(coef) lower 95%"].to_numpy())
    assert ours.notes == [
        "SeniorCitizen: text, one-hot encoded against '0' (1 columns)",
        "plan: text, one-hot encoded against 'Month-to-month' (2 columns)",
    ]
    assert ours.churned == 1_869
    assert ours.accounts == 7_043
    close(np.array([ours.concordance]), np.array([reference.concordance_index_]))
    # The proportional-hazards test per covariate is lifelines' (rank time transform).
    # Its ranks are a running count of events in row order, so tied durations rank
    # by row order: ours are in account order, and so must the reference be.
    in_account_order = reference_frame.loc[csv["customerID"].argsort(kind="stable").to_numpy()]
    refit = CoxPHFitter().fit(in_account_order, duration_col="tenure", event_col="E")
    test = proportional_hazard_test(refit, in_account_order, time_transform="rank").summary
    ph = ours.ph_test.set_index("covariate").loc[[str(i) for i in test.index]]
    close(ph["p_value"].to_numpy(), test["p"].to_numpy())
    assert ph["holds"].tolist() == (test["p"] >= 0.01).tolist()
    # Contracts change the hazard over tenure on Telco: reported in words.
    assert "plan_Two year" in ours.violations
    assert ph.loc["plan_Two year", "verdict"].startswith("violated")


def test_standardized_penalized_cox_equals_lifelines_on_scaled_columns(
    telco: Warehouse, csv: pd.DataFrame
) -> None:
    """The default fit is lifelines' on columns centred and scaled by their sample SD."""
    ours_frame, reference_frame = cox_frames(telco, csv)
    ours = fit_cox(ours_frame)
    covariates = [c for c in reference_frame.columns if c not in ("tenure", "E")]
    scaled = reference_frame.copy()
    scaled[covariates] = (scaled[covariates] - scaled[covariates].mean()) / scaled[covariates].std(
        ddof=1
    )
    reference = CoxPHFitter(penalizer=0.01).fit(scaled, duration_col="tenure", event_col="E")
    found = ours.summary.set_index("covariate").loc[reference.summary.index]
    close(found["coef"].to_numpy(), reference.summary["coef"].to_numpy())
    close(found["se"].to_numpy(), reference.summary["se(coef)"].to_numpy())
    close(found["p_value"].to_numpy(), reference.summary["p"].to_numpy())


def test_cox_time_to_churn_equals_lifelines_predict_median(
    telco: Warehouse, csv: pd.DataFrame
) -> None:
    """For customers still there, the median remaining time given their tenure
    (lifelines' conditional_after) from the canonical tables equals lifelines' on the CSV."""
    ours_frame, reference_frame = cox_frames(telco, csv)
    ours = fit_cox(ours_frame, standardize=False, penalizer=0.0)
    reference = CoxPHFitter().fit(reference_frame, duration_col="tenure", event_col="E")
    staying = ours_frame.loc[ours_frame["event_observed"] == 0].head(400)
    found = cox_time_to_churn(ours, staying, conditional_after=staying["duration_days"])
    rows = csv.set_index("customerID").index.get_indexer(staying["account_id"])
    covariates = reference_frame.iloc[rows].drop(columns=["tenure", "E"])
    expected = reference.predict_median(
        covariates, conditional_after=reference_frame["tenure"].iloc[rows].to_numpy()
    ).to_numpy()
    reached = np.isfinite(expected)
    assert reached.any()
    assert (~reached).any()  # long-tenure customers on long contracts: beyond the data
    assert found["median_reached"].tolist() == reached.tolist()
    close(found["predicted_days_to_churn"].to_numpy()[reached] / DAYS_PER_MONTH, expected[reached])
    assert found["predicted_days_to_churn"][~reached].isna().all()
