"""One self-contained HTML page: sections of KPI cards, Plotly figures and tables.

The page embeds plotly.js once (about 4.5 MB) instead of linking to a CDN:
the report is opened from a mail attachment, a shared drive or a machine
without internet, and must still draw every chart.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

__all__ = ["Card", "Section", "render_page"]


@dataclass(frozen=True)
class Card:
    """A headline figure: a label, a value in words and an optional hint.

    ``tone`` colours the card: ``"alert"`` for a figure that needs attention.
    """

    label: str
    value: str
    hint: str = ""
    tone: str = ""


@dataclass
class Section:
    """One part of the report, in the order parts are added.

    A section that could not be computed keeps its place with ``missing``
    saying why (no model trained yet, no subscriptions...), so a reader sees
    what is absent rather than wondering.
    """

    key: str
    title: str
    intro: str = ""
    cards: list[Card] = field(default_factory=list)
    figures: list[go.Figure] = field(default_factory=list)
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    missing: str = ""


def render_page(title: str, subtitle: str, sections: Sequence[Section]) -> str:
    """The whole page as one HTML string.

    Examples
    --------
    >>> page = render_page("Report", "as of 2024-06-01", [Section("kpis", "KPIs",
    ...     cards=[Card("Accounts", "1,200")])])
    >>> '<div class="card"><div class="label">Accounts</div>' in page
    True
    """
    nav = "".join(f'<a href="#{html.escape(s.key)}">{html.escape(s.title)}</a>' for s in sections)
    body = "\n".join(_section(s) for s in sections)
    made = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return _PAGE.format(
        title=html.escape(title),
        subtitle=html.escape(subtitle),
        made=made,
        nav=nav,
        body=body,
        css=_CSS,
        plotly=get_plotlyjs(),
    )


def _section(section: Section) -> str:
    parts = [f'<section id="{html.escape(section.key)}"><h2>{html.escape(section.title)}</h2>']
    if section.intro:
        parts.append(f'<p class="intro">{html.escape(section.intro)}</p>')
    if section.missing:
        parts.append(f'<p class="missing">{html.escape(section.missing)}</p>')
    if section.cards:
        parts.append('<div class="cards">' + "".join(_card(c) for c in section.cards) + "</div>")
    for figure in section.figures:
        figure.update_layout(template="plotly_white")
        parts.append(
            '<div class="figure">'
            + figure.to_html(full_html=False, include_plotlyjs=False, config={"responsive": True})
            + "</div>"
        )
    for caption, table in section.tables:
        parts.append(f"<h3>{html.escape(caption)}</h3>")
        parts.append(_table(table))
    parts.append("</section>")
    return "\n".join(parts)


def _card(card: Card) -> str:
    tone = f" {html.escape(card.tone)}" if card.tone else ""
    hint = f'<div class="hint">{html.escape(card.hint)}</div>' if card.hint else ""
    return (
        f'<div class="card{tone}"><div class="label">{html.escape(card.label)}</div>'
        f'<div class="value">{html.escape(card.value)}</div>{hint}</div>'
    )


def _table(frame: pd.DataFrame) -> str:
    shown = frame.copy()
    for column in shown.columns:
        if pd.api.types.is_float_dtype(shown[column]):
            shown[column] = shown[column].map(_number)
    return str(shown.to_html(index=False, classes="data", border=0, na_rep="–", escape=True))


def _number(value: float) -> str:
    if pd.isna(value):
        return "–"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 1 else f"{value:,.2f}"


_CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       margin: 0; color: #1f2933; background: #f5f7fa; }
header { background: #102a43; color: #fff; padding: 18px 32px; }
header h1 { margin: 0; font-size: 24px; }
header p { margin: 4px 0 0; color: #bcccdc; }
nav { background: #243b53; padding: 8px 32px; position: sticky; top: 0; z-index: 10; }
nav a { color: #d9e2ec; margin-right: 18px; text-decoration: none; font-size: 14px; }
main { padding: 8px 32px 40px; max-width: 1280px; }
section { background: #fff; border-radius: 8px; padding: 16px 24px; margin: 18px 0;
          box-shadow: 0 1px 3px rgba(16, 42, 67, 0.12); }
h2 { margin: 4px 0 8px; font-size: 20px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
p.intro { color: #52606d; margin: 0 0 12px; }
p.missing { color: #8d2b0b; background: #fff3e0; padding: 8px 12px; border-radius: 6px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; }
.card { border: 1px solid #d9e2ec; border-radius: 8px; padding: 10px 16px; min-width: 170px; }
.card .label { font-size: 13px; color: #627d98; }
.card .value { font-size: 24px; font-weight: 600; margin-top: 2px; }
.card .hint { font-size: 12px; color: #829ab1; margin-top: 2px; }
.card.alert { border-color: #e12d39; background: #ffe3e3; }
.figure { margin: 8px 0; }
table.data { border-collapse: collapse; font-size: 13px; margin-bottom: 8px; }
table.data th, table.data td { padding: 4px 10px; border-bottom: 1px solid #e4e7eb;
                               text-align: right; }
table.data th { background: #f0f4f8; }
footer { color: #829ab1; font-size: 12px; padding: 0 32px 24px; }
"""

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{css}</style>
<script type="text/javascript">{plotly}</script>
</head><body>
<header><h1>{title}</h1><p>{subtitle}</p></header>
<nav>{nav}</nav>
<main>
{body}
</main>
<footer>Made by Churnwatch on {made}.</footer>
</body></html>
"""
