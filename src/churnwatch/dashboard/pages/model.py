"""Model: backtest metrics, ROC / PR / calibration curves, importance, PDP and drift."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st

from churnwatch.dashboard import _context as ctx
from churnwatch.dashboard import _data

__all__ = ["render"]

_CURVE_AXES = {
    "roc": ("false positive rate", "true positive rate"),
    "pr": ("recall", "precision"),
    "calibration": ("predicted probability", "observed churn rate"),
}
#: Metrics shown as figures above the table, when the backtest has them.
_HEADLINE = ("roc_auc", "pr_auc", "brier", "lift_top_decile", "lift_top10")
_DRIFT_COLOURS = {"ok": "#2ca02c", "watch": "#ff7f0e", "drift": "#d62728"}


def _targets() -> list[str]:
    targets = set((ctx.model().meta.get("models") or {}).keys())
    if ctx.has_table("model_metrics"):
        targets |= set(ctx.model().table("model_metrics", ["target"]).column(0).to_pylist())
    return sorted(str(t) for t in targets)


def _of(frame: pd.DataFrame, target: str) -> pd.DataFrame:
    return frame.loc[frame["target"] == target]


def _metrics(target: str) -> None:
    st.subheader("Backtest")
    table = ctx.table_or_info("model_metrics", "Model metrics are")
    if table is None:
        return
    metrics = _of(table.to_pandas(), target)
    if metrics.empty:
        st.info(f"No backtest metrics for {target}.")
        return
    if "method" not in metrics.columns:
        metrics = metrics.assign(method="model")
    dated = metrics.loc[metrics["cutoff"].notna()]
    # The summary: metrics over the whole backtest when given, else at the latest cutoff.
    summary = metrics.loc[metrics["cutoff"].isna()]
    if summary.empty:
        summary = dated.loc[dated["cutoff"] == dated["cutoff"].max()]
    grid = summary.pivot_table(index="metric", columns="method", values="value", sort=False)
    headline = [m for m in _HEADLINE if m in grid.index]
    if headline:
        first = grid.columns[0]
        columns = st.columns(len(headline))
        for column, metric in zip(columns, headline, strict=True):
            value = grid[first].astype(float)[metric]
            column.metric(f"{metric.replace('_', ' ')} ({first!s})", f"{value:.3f}")
    st.dataframe(grid.round(4), width="stretch")
    if dated["cutoff"].nunique() > 1:
        figure = px.line(
            dated.loc[dated["metric"].isin(headline or dated["metric"].unique())],
            x="cutoff",
            y="value",
            color="metric",
            line_dash="method",
            markers=True,
            height=300,
        )
        st.plotly_chart(figure, width="stretch")


def _curves(target: str) -> None:
    table = ctx.table_or_info("model_curves", "ROC, PR and calibration curves are")
    if table is None:
        return
    curves = _of(table.to_pandas(), target)
    columns = st.columns(3)
    for column, (name, (x_title, y_title)) in zip(columns, _CURVE_AXES.items(), strict=True):
        with column:
            st.markdown(f"**{name.upper() if name != 'calibration' else 'Calibration'}**")
            rows = curves.loc[curves["curve"] == name]
            if rows.empty:
                st.caption("not computed")
                continue
            figure = px.line(rows, x="x", y="y", markers=name == "calibration", height=300)
            if name != "pr":
                figure.add_shape(
                    type="line", x0=0, y0=0, x1=1, y1=1, line={"dash": "dot", "color": "grey"}
                )
            figure.update_layout(xaxis_title=x_title, yaxis_title=y_title)
            st.plotly_chart(figure, width="stretch")


def _importance_and_pdp(target: str) -> None:
    left, right = st.columns(2)
    with left:
        st.subheader("Feature importance")
        table = ctx.table_or_info("importance", "Feature importance is")
        if table is not None:
            found = _of(table.to_pandas(), target).nlargest(20, "importance")
            figure = px.bar(
                found.sort_values("importance"),
                x="importance",
                y="feature",
                orientation="h",
                height=max(320, 22 * len(found)),
            )
            st.plotly_chart(figure, width="stretch")
    with right:
        st.subheader("Partial dependence")
        table = ctx.table_or_info("pdp", "Partial dependence is")
        if table is not None:
            pdp = _of(table.to_pandas(), target)
            features = sorted(pdp["feature"].unique())
            if features:
                feature = st.selectbox("Feature", features, key="pdp_feature")
                rows = pdp.loc[pdp["feature"] == feature].sort_values("x")
                figure = px.line(rows, x="x", y="y", markers=True, height=320)
                figure.update_layout(xaxis_title=feature, yaxis_title="predicted churn risk")
                st.plotly_chart(figure, width="stretch")


def _drift(target: str) -> None:
    st.subheader("Drift since training")
    table = ctx.table_or_info("drift", "Drift is")
    if table is None:
        return
    drift = _of(table.to_pandas(), target).sort_values("psi", ascending=False)
    drifting = drift.loc[drift["status"] == "drift", "feature"].tolist()
    if drifting:
        st.warning(f"Drifting features (PSI ≥ 0.25): {', '.join(drifting)} — consider retraining.")
    figure = px.bar(
        drift.head(25),
        x="feature",
        y="psi",
        color="status",
        color_discrete_map=_DRIFT_COLOURS,
        height=320,
    )
    st.plotly_chart(figure, width="stretch")


def render() -> None:
    """Draw the page."""
    st.title("Model")
    targets = _targets()
    if not targets:
        st.info("No model yet — run `churnwatch train`, then `churnwatch views refresh`.")
        return
    preferred = ctx.model().meta.get("risk_target")
    target = st.selectbox(
        "Target",
        targets,
        index=targets.index(preferred) if preferred in targets else 0,
        key="model_target",
    )
    summary = (ctx.model().meta.get("models") or {}).get(target) or {}
    if summary:
        st.caption(
            f"Model version {summary.get('version') or '—'} · "
            f"{len(summary.get('features') or [])} features"
        )
    _metrics(target)
    _curves(target)
    _importance_and_pdp(target)
    _drift(target)
    filters = ctx.account_filter()
    st.subheader("Scores of the filtered accounts")
    ctx.filter_caption(filters)
    histogram = _data.risk_histogram(ctx.model(), filters)
    if not histogram.empty:
        figure = px.bar(histogram, x="risk_from", y="accounts", height=260)
        figure.update_layout(xaxis_title="churn risk (band start)", bargap=0.05)
        st.plotly_chart(figure, width="stretch")


if __name__ == "__main__":
    render()
