"""The Plotly figures show what the results hold, and leave unknown periods blank."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from churnwatch.cohorts import (
    logo_retention,
    movements_chart,
    mrr_movements,
    retention_heatmap,
    revenue_heatmap,
    revenue_retention,
)
from churnwatch.warehouse import Warehouse, connect

from .conftest import END, load


@pytest.fixture
def duck(tmp_path: Path) -> Iterator[Warehouse]:
    """The tiny business on DuckDB only: figures do not depend on the engine."""
    with connect(f"duckdb:///{tmp_path / 'w.duckdb'}") as wh:
        load(wh)
        yield wh


def test_retention_heatmap(duck: Warehouse) -> None:
    table = logo_retention(duck, periods_count=4, observation_end=END)
    trace = retention_heatmap(table).data[0]
    assert list(trace.y) == ["2024-01 (2)", "2024-02 (1)", "2024-04 (1)"]
    assert list(trace.text[0]) == ["100%", "50%", "50%", "50%"]
    assert list(trace.text[2]) == ["100%", "", "", ""]  # unknown periods stay blank
    assert np.isnan(trace.z[2][1])
    counts = retention_heatmap(table, rates=False).data[0]
    assert list(counts.text[0]) == ["2", "1", "1", "1"]


def test_revenue_heatmap(duck: Warehouse) -> None:
    revenue = revenue_retention(duck, periods_count=4, observation_end=END)
    trace = revenue_heatmap(revenue).data[0]
    assert list(trace.text[0]) == ["100%", "100%", "113%", "107%"]
    assert list(trace.y) == ["2024-01 (2)", "2024-02 (1)", "2024-04 (1)"]


def test_movements_chart(duck: Warehouse) -> None:
    figure = movements_chart(mrr_movements(duck, observation_end=END))
    bars = {trace.name: list(trace.y) for trace in figure.data if trace.type == "bar"}
    assert bars["churned"] == [0.0, -50.0, -80.0, 0.0]  # below the axis
    assert bars["reactivation"] == [0.0, 0.0, 0.0, 10.0]
    net = next(trace for trace in figure.data if trace.name == "net change")
    stacked = np.sum([bars[name] for name in bars], axis=0)
    np.testing.assert_allclose(list(net.y), stacked)
    assert "<div" in figure.to_html(full_html=False, include_plotlyjs=False)
