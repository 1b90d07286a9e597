"""Charts and the HTML report: real PNGs, every section present, no display needed."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from churnwatch.errors import ModelError
from churnwatch.models._charts import (
    ReportSection,
    calibration_figure,
    figure_png,
    gains_figure,
    importance_figure,
    partial_dependence_figure,
    pr_figure,
    roc_figure,
    write_report,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def curves() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    p = rng.beta(1.0, 4.0, 300)
    y = (rng.random(300) < p).astype(float)
    noisy = np.clip(p + rng.normal(0.0, 0.2, 300), 0.0, 1.0)
    return {"lightgbm": (y, p), "logistic": (y, noisy)}


def _legend(figure: Figure, axis: int = 0) -> list[str]:
    legend = figure.axes[axis].get_legend()
    assert legend is not None
    return [text.get_text() for text in legend.get_texts()]


def test_curve_charts_name_each_model_with_its_score(
    curves: dict[str, tuple[np.ndarray, np.ndarray]],
) -> None:
    assert [label.split(" (")[0] for label in _legend(roc_figure(curves))] == list(curves)
    assert all(" (AUC 0." in label for label in _legend(roc_figure(curves)))
    assert all(" (AP 0." in label for label in _legend(pr_figure(curves)))
    assert all(" (ECE 0." in label for label in _legend(calibration_figure(curves)))
    gains = gains_figure(curves, points=20)
    assert _legend(gains) == list(curves)
    assert len(gains.axes) == 2


def test_every_chart_renders_to_png(curves: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    figures = [
        roc_figure(curves),
        pr_figure(curves),
        calibration_figure(curves),
        gains_figure(curves),
        importance_figure(pd.Series({"tenure": 0.3, "logins": 0.5})),
        partial_dependence_figure(np.linspace(0, 1, 5), np.linspace(0.2, 0.4, 5), feature="x"),
    ]
    for figure in figures:
        png = figure_png(figure, dpi=50)
        assert png.startswith(PNG_SIGNATURE)
        assert len(png) > 1000


def test_importance_shows_the_top_features_largest_first() -> None:
    scores = {f"f{i:02d}": float(i) for i in range(30)} | {"tie_a": 29.0}
    figure = importance_figure(scores, top=3)
    labels = [label.get_text() for label in figure.axes[0].get_yticklabels()]
    # Drawn bottom-up, so the largest is the last label; of the tied two, "f29" sorts
    # before "tie_a" by name and is drawn above it.
    assert labels == ["f28", "tie_a", "f29"]


def test_partial_dependence_draws_ice_and_categorical_levels() -> None:
    ice = np.array([[0.1, 0.2, 0.3], [0.3, 0.2, 0.1], [0.2, 0.2, 0.2]])
    figure = partial_dependence_figure([1.0, 2.0, 3.0], ice.mean(axis=0), ice, feature="logins")
    lines = figure.axes[0].lines
    assert len(lines) == 4
    assert lines[-1].get_ydata().tolist() == pytest.approx([0.2, 0.2, 0.2])
    plan = partial_dependence_figure(["basic", "pro", "team"], [0.3, 0.2, 0.1], feature="plan")
    ticks = [label.get_text() for label in plan.axes[0].get_xticklabels()]
    assert ticks == ["basic", "pro", "team"]


@pytest.mark.parametrize(
    ("draw", "message"),
    [
        (lambda: roc_figure({}), "at least one"),
        (lambda: roc_figure({"m": ([0, 0, 0], [0.1, 0.2, 0.3])}), "both classes"),
        (lambda: pr_figure({"m": ([0, 1], [0.1])}), "2 outcomes but 1 scores"),
        (lambda: gains_figure({"m": ([0, 1], [0.1, np.nan])}), "finite"),
        (lambda: importance_figure({}), "at least one feature"),
        (lambda: partial_dependence_figure([1, 2], [0.1], feature="x"), "must match"),
        (lambda: partial_dependence_figure([1, 2], [0.1, 0.2], [[1, 2, 3]], feature="x"), "ICE"),
    ],
)
def test_charts_reject_what_they_cannot_draw(draw: object, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        draw()  # type: ignore[operator]


def test_report_writes_html_and_pngs_with_every_section(
    tmp_path: Path, curves: dict[str, tuple[np.ndarray, np.ndarray]]
) -> None:
    metrics = pd.DataFrame({"model": ["lightgbm", "logistic"], "roc_auc": [0.81234, np.nan]})
    sections = [
        ReportSection("ROC curve", roc_figure(curves), text="Pooled over 3 folds."),
        ReportSection("Calibration & <reliability>", calibration_figure(curves)),
        ReportSection("Metrics", text="First paragraph.\n\nSecond <b>one</b>.", table=metrics),
        ReportSection("ROC curve", pr_figure(curves)),
    ]
    files = write_report(tmp_path / "out" / "backtest.html", sections, title="Backtest")
    assert files.html == tmp_path / "out" / "backtest.html"
    assert [path.name for path in files.images] == [
        "backtest-01-roc-curve.png",
        "backtest-02-calibration-reliability.png",
        "backtest-04-roc-curve.png",
    ]
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == sorted(
        ["backtest.html", *(path.name for path in files.images)]
    )
    page = files.html.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    for title in ("ROC curve", "Calibration &amp; &lt;reliability&gt;", "Metrics", "Backtest"):
        assert f">{title}</h" in page
    assert "Second &lt;b&gt;one&lt;/b&gt;." in page  # text is escaped, never markup
    assert "<p>First paragraph.</p>" in page
    assert "<td>0.8123</td>" in page
    assert "<td></td>" in page  # NaN shown as an empty cell
    embedded = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(embedded) == 3
    for encoded, image in zip(embedded, files.images, strict=True):
        png = base64.b64decode(encoded)
        assert png.startswith(PNG_SIGNATURE)
        assert png == image.read_bytes()
    # Self-contained: nothing is fetched from elsewhere.
    assert "http" not in page
    assert "src=" not in re.sub(r'src="data:[^"]+"', "", page)


def test_report_accepts_a_mapping_of_titles_to_figures(tmp_path: Path) -> None:
    files = write_report(tmp_path / "r.html", {"Importance": importance_figure({"tenure": 1.0})})
    assert [path.name for path in files.images] == ["r-01-importance.png"]
    assert files.images[0].read_bytes().startswith(PNG_SIGNATURE)
    assert ">Importance</h2>" in files.html.read_text(encoding="utf-8")
    # Rewriting replaces the report and leaves no partial file behind.
    write_report(tmp_path / "r.html", {"Importance": importance_figure({"tenure": 2.0})})
    assert sorted(path.name for path in tmp_path.iterdir()) == ["r-01-importance.png", "r.html"]
