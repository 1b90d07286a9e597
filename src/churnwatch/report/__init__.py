"""The retention report: one self-contained HTML file a team can open anywhere.

:func:`write_report` reads the warehouse (and the model registry, when there
is one) as of one instant and writes a single HTML page with Plotly charts:

1. **KPIs**: accounts, subscribers, MRR, churn rate with its monthly trend
   and a spike alert, revenue at risk and high-risk accounts.
2. **Cohorts**: the logo-retention heatmap of monthly signup cohorts, revenue
   retention and the MRR movements of each month.
3. **Survival**: Kaplan-Meier curves by a chosen attribute with confidence
   bands, medians, retention at days 7/30/90 and the log-rank test.
4. **Segments**: behavioural segments on a 2-D projection, with profiles.
5. **Health**: the distribution of the health score by tier and how well
   the score's rules foresaw churn.
6. **Model quality**: backtest metrics of the promoted churn models beside
   their baselines.

A part that cannot be computed (no subscriptions, no model yet) keeps its
place and says why: the rest of the report is still written.

Examples
--------
>>> import tempfile, pathlib
>>> from churnwatch.config import Settings
>>> from churnwatch.warehouse import connect
>>> out = pathlib.Path(tempfile.mkdtemp()) / "report.html"
>>> with connect("duckdb:///:memory:") as wh:
...     wh.ensure_schema()
...     written = write_report(wh, Settings(), out, as_of="2024-06-01")
>>> written.path.exists(), list(written.sections)
(True, ['kpis', 'cohorts', 'survival', 'segments', 'health', 'model'])
"""

from __future__ import annotations

from churnwatch.report._kpis import BusinessKpis, business_kpis, churn_spike
from churnwatch.report._write import ReportResult, write_report

__all__ = ["BusinessKpis", "ReportResult", "business_kpis", "churn_spike", "write_report"]
