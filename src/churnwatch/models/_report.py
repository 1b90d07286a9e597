"""The model report: how good a model is on the future, what its scores mean, and why.

:func:`model_report` writes one self-contained HTML page (and each chart as
a PNG beside it) with, in order: the backtest's metrics per fold and pooled,
beside the baselines; ROC and precision-recall curves; calibration (the
reliability table of the last fold); gains and lift; global importance
(mean absolute SHAP value and LightGBM gain); partial dependence with ICE
lines for the most important features; and the training card.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churnwatch.explain import global_importance, partial_dependence
from churnwatch.models._backtest import BacktestResult
from churnwatch.models._charts import (
    ReportFiles,
    ReportSection,
    calibration_figure,
    gains_figure,
    importance_figure,
    partial_dependence_figure,
    pr_figure,
    roc_figure,
    write_report,
)
from churnwatch.models._frame import TrainingFrame
from churnwatch.models._metrics import rounded
from churnwatch.models._train import TrainedModel

__all__ = ["importance_table", "model_report"]

#: Rows whose contributions make the global importance: exact TreeSHAP is
#: costly, and a few thousand rows rank the features as well as all of them.
IMPORTANCE_SAMPLE_ROWS = 5000
PDP_FEATURES = 4


def importance_table(
    model: TrainedModel, data: pd.DataFrame, *, sample_rows: int = IMPORTANCE_SAMPLE_ROWS
) -> pd.DataFrame:
    """Global importance of each feature: mean |SHAP| on a sample, and gain when known.

    Parameters
    ----------
    model : TrainedModel
        The model.
    data : pandas.DataFrame
        Rows holding the model's features (a fixed-seed sample is taken).
    sample_rows : int
        At most this many rows.

    Returns
    -------
    pandas.DataFrame
        As :func:`churnwatch.explain.global_importance`, most important first.
    """
    rows = data.sample(min(sample_rows, len(data)), random_state=0) if len(data) else data
    contributions, _ = model.contributions(rows)
    gain = getattr(model.estimator, "feature_importances_", None)
    gains = None
    if gain is not None and len(gain) == len(model.features):
        gains = dict(zip(model.features, np.asarray(gain, dtype=float), strict=True))
    return global_importance(contributions, list(model.features), gains)


def model_report(
    model: TrainedModel,
    frame: TrainingFrame | pd.DataFrame,
    folder: str | Path,
    *,
    backtest_result: BacktestResult | None = None,
) -> ReportFiles:
    """Write the report of ``model`` into ``folder`` (``report.html`` and PNGs).

    Parameters
    ----------
    model : TrainedModel
        The trained model.
    frame : TrainingFrame or pandas.DataFrame
        The rows it was trained on (for importance and partial dependence).
    folder : str or pathlib.Path
        Created if missing.
    backtest_result : BacktestResult, optional
        Its backtest: the curves and metrics come from its test predictions
        (out of time). Without one, the report shows the model itself only.

    Returns
    -------
    ReportFiles
    """
    data = frame.data if isinstance(frame, TrainingFrame) else frame
    sections: list[ReportSection] = []
    if backtest_result is not None and model.task == "binary":
        sections.extend(_backtest_sections(backtest_result))
    importance = importance_table(model, data)
    top = importance.head(20)
    sections.append(
        ReportSection(
            "Feature importance",
            importance_figure(
                top.set_index("feature")["mean_abs_contribution"], xlabel="mean |SHAP value|"
            ),
            text="Mean absolute SHAP value of each feature on a sample of the training rows "
            "(log-odds for churn models): how much the feature moves a typical score.",
            table=rounded(top),
        )
    )
    sample = data.sample(min(2000, len(data)), random_state=0)
    for feature in top["feature"].head(PDP_FEATURES):
        found = partial_dependence(model.predict, sample, str(feature))
        sections.append(
            ReportSection(
                f"Partial dependence: {feature}",
                partial_dependence_figure(
                    found.grid,
                    found.average,
                    found.ice,
                    feature=str(feature),
                    ylabel="predicted probability" if model.task == "binary" else "prediction",
                ),
            )
        )
    sections.append(ReportSection("Model card", text=_card_text(model)))
    return write_report(
        Path(folder) / "report.html", sections, title=f"Churnwatch model report: {model.target}"
    )


def _backtest_sections(result: BacktestResult) -> list[ReportSection]:
    curves = result.curves()
    last = result.folds["test_cutoff"].max()
    reliability = result.reliability(_main_model(result), last_fold_only=True)
    return [
        ReportSection(
            "Backtest",
            text="Rolling origin: at each test cutoff, models are trained on the earlier "
            "cutoffs whose labels had settled, and scored on that cutoff. Baselines: recency "
            "(days since the last event) and logistic regression.",
            table=rounded(result.folds),
        ),
        ReportSection("Backtest, pooled over folds", table=rounded(result.pooled)),
        ReportSection("ROC curve", roc_figure(curves)),
        ReportSection("Precision-recall curve", pr_figure(curves)),
        ReportSection(
            "Calibration",
            calibration_figure({k: v for k, v in curves.items() if k != "recency"}),
            text=f"Reliability of the model on the last fold ({pd.Timestamp(last):%Y-%m-%d}).",
            table=rounded(reliability),
        ),
        ReportSection("Gains and lift", gains_figure(curves)),
    ]


def _main_model(result: BacktestResult) -> str:
    names = [m for m in result.models if m not in ("recency", "logistic")]
    return names[0] if names else result.models[0]


def _card_text(model: TrainedModel) -> str:
    window = model.training_window
    parts: list[Any] = [
        f"Target: {model.target} ({model.task}); model: {model.kind}.",
        f"Training rows: {model.rows:,}."
        + (f" Cutoffs {window[0]:%Y-%m-%d} to {window[1]:%Y-%m-%d}." if window else ""),
        "Calibration: "
        + ("none" if model.calibrator is None else model.calibrator.method)
        + ". Held-out: "
        + ", ".join(f"{k} {v:.4g}" for k, v in model.validation.items()),
        "Parameters: " + (", ".join(f"{k}={v}" for k, v in model.params.items()) or "defaults"),
    ]
    return "\n\n".join(str(p) for p in parts)
