"""Charts of a churn model, and a self-contained HTML report that holds them.

Each chart function takes plain arrays or frames (outcomes and scores per
model, an importance table, a partial-dependence grid) and returns a
:class:`matplotlib.figure.Figure`; none needs an estimator, so the same
charts serve a backtest, a training run or a saved model's card.

The figures are made with :class:`~matplotlib.figure.Figure` directly, never
through :mod:`matplotlib.pyplot`: pyplot keeps every figure in a global
registry (they leak unless closed) and may pick an interactive backend that
wants a display. A bare ``Figure`` is rendered by the Agg canvas when saved
and freed like any other object, so the charts work on a headless server and
in threads.

:func:`write_report` writes one HTML file with every image embedded (base64
PNG), so it can be mailed or archived alone, and the same PNGs beside it for
slides and tickets.

Examples
--------
>>> import tempfile, pathlib
>>> curves = {"model": ([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])}
>>> with tempfile.TemporaryDirectory() as folder:
...     files = write_report(pathlib.Path(folder) / "report.html",
...                          [ReportSection("ROC curve", roc_figure(curves))])
...     [path.name for path in (files.html, *files.images)]
['report.html', 'report-01-roc-curve.png']
"""

from __future__ import annotations

import base64
import html
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import (  # type: ignore[import-untyped, unused-ignore]
    average_precision_score,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

from churnwatch.errors import ModelError
from churnwatch.models._metrics import expected_calibration_error, gains_table, reliability_table

__all__ = [
    "Curves",
    "ReportFiles",
    "ReportSection",
    "calibration_figure",
    "figure_png",
    "gains_figure",
    "importance_figure",
    "partial_dependence_figure",
    "pr_figure",
    "roc_figure",
    "write_report",
]

#: Outcomes (0/1) and scores per model name.
Curves = Mapping[str, tuple[npt.ArrayLike, npt.ArrayLike]]

_SIZE = (6.0, 4.5)
_GUIDE_COLOR = "0.6"


def _new_figure(size: tuple[float, float] = _SIZE) -> Figure:
    return Figure(figsize=size, layout="constrained")


def _checked(name: str, y: npt.ArrayLike, p: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Outcomes and scores as arrays, with both classes present (every curve needs them)."""
    outcomes = np.asarray(y, dtype=float).ravel()
    scores = np.asarray(p, dtype=float).ravel()
    if outcomes.size != scores.size:
        raise ModelError(f"{name!r}: {outcomes.size} outcomes but {scores.size} scores.")
    if np.unique(outcomes).size != 2 or not np.isin(outcomes, (0.0, 1.0)).all():
        raise ModelError(
            f"{name!r}: a curve needs outcomes of both classes, 0 and 1; "
            f"got {np.unique(outcomes).tolist()[:5]}."
        )
    if not np.isfinite(scores).all():
        raise ModelError(f"{name!r}: every score must be a finite number.")
    return outcomes, scores


def _require(curves: Curves) -> None:
    if not curves:
        raise ModelError("A chart needs at least one model's outcomes and scores.")


def roc_figure(curves: Curves, *, title: str = "ROC curve") -> Figure:
    """Receiver operating characteristic of each model, AUC in the legend.

    Parameters
    ----------
    curves : mapping of str to (y, p)
        Outcomes (0/1, both present) and scores (larger = riskier) per model.
    title : str, default "ROC curve"
        The chart's title.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = roc_figure({"model": ([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])})
    >>> fig.axes[0].get_legend().get_texts()[0].get_text()
    'model (AUC 0.750)'
    """
    _require(curves)
    fig = _new_figure()
    ax = fig.add_subplot()
    for name, (y, p) in curves.items():
        outcomes, scores = _checked(name, y, p)
        fpr, tpr, _ = roc_curve(outcomes, scores)
        ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(outcomes, scores):.3f})")
    ax.plot([0, 1], [0, 1], label="_chance", color=_GUIDE_COLOR, linestyle="--", linewidth=1.0)
    ax.set(
        xlabel="false positive rate (stayers flagged)",
        ylabel="true positive rate (churners caught)",
        xlim=(0, 1),
        ylim=(0, 1.01),
        title=title,
    )
    ax.legend(loc="lower right")
    return fig


def pr_figure(curves: Curves, *, title: str = "Precision-recall curve") -> Figure:
    """Precision against recall of each model, average precision in the legend.

    The dotted line of each colour is that model's base churn rate: the
    precision of picking accounts at random.

    Parameters
    ----------
    curves : mapping of str to (y, p)
        Outcomes (0/1, both present) and scores per model.
    title : str, default "Precision-recall curve"
        The chart's title.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = pr_figure({"model": ([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])})
    >>> fig.axes[0].get_legend().get_texts()[0].get_text()
    'model (AP 0.833)'
    """
    _require(curves)
    fig = _new_figure()
    ax = fig.add_subplot()
    for name, (y, p) in curves.items():
        outcomes, scores = _checked(name, y, p)
        precision, recall, _ = precision_recall_curve(outcomes, scores)
        ap = average_precision_score(outcomes, scores)
        # Average precision is the step-wise area, so draw steps, not interpolated lines.
        (line,) = ax.step(recall, precision, where="post", label=f"{name} (AP {ap:.3f})")
        ax.axhline(outcomes.mean(), color=line.get_color(), linestyle=":", linewidth=1.0)
    ax.set(xlabel="recall (churners caught)", ylabel="precision", xlim=(0, 1), ylim=(0, 1.01))
    ax.set_title(title)
    ax.legend(loc="upper right")
    return fig


def calibration_figure(curves: Curves, *, bins: int = 10, title: str = "Calibration") -> Figure:
    """Reliability diagram: observed churn rate against mean predicted probability.

    A calibrated model lies on the diagonal. The lower panel counts the
    predictions per bin, since a bin of five rows says little.

    Parameters
    ----------
    curves : mapping of str to (y, p)
        Outcomes (0/1) and probabilities in [0, 1] per model.
    bins : int, default 10
        Equal-width probability bins (see :func:`reliability_table`).
    title : str, default "Calibration"
        The chart's title.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = calibration_figure({"model": ([0, 1, 1, 1], [0.1, 0.2, 0.8, 0.9])}, bins=2)
    >>> fig.axes[0].get_legend().get_texts()[0].get_text()
    'model (ECE 0.250)'
    """
    _require(curves)
    fig = _new_figure((6.0, 6.0))
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    width = 1.0 / bins / (len(curves) + 1)
    for i, (name, (y, p)) in enumerate(curves.items()):
        table = reliability_table(y, p, bins=bins)
        filled = table.loc[table["n"] > 0]
        ece = expected_calibration_error(y, p, bins=bins)
        (line,) = top.plot(
            filled["mean_predicted"],
            filled["observed_rate"],
            marker="o",
            label=f"{name} (ECE {ece:.3f})",
        )
        bottom.bar(
            table["lower"] + (i + 0.5) * width, table["n"], width=width, color=line.get_color()
        )
    top.plot([0, 1], [0, 1], label="_perfect", color=_GUIDE_COLOR, linestyle="--", linewidth=1.0)
    top.set(ylabel="observed churn rate", xlim=(0, 1), ylim=(0, 1), title=title)
    top.legend(loc="upper left")
    bottom.set(xlabel="predicted churn probability", ylabel="rows")
    return fig


def gains_figure(curves: Curves, *, points: int = 100, title: str = "Gains and lift") -> Figure:
    """Cumulative gains (left) and lift (right) against the share of accounts contacted.

    Parameters
    ----------
    curves : mapping of str to (y, p)
        Outcomes (0/1, at least one churner) and scores per model.
    points : int, default 100
        Shares plotted (see :func:`gains_table`).
    title : str, default "Gains and lift"
        The chart's title.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = gains_figure({"model": ([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1])}, points=4)
    >>> [ax.get_ylabel() for ax in fig.axes]
    ['churners caught (share)', 'lift']
    """
    _require(curves)
    fig = _new_figure((10.0, 4.5))
    gains, lift = fig.subplots(1, 2)
    for name, (y, p) in curves.items():
        outcomes, scores = _checked(name, y, p)
        table = gains_table(outcomes, scores, points=points)
        share = np.concatenate(([0.0], table["share"]))
        gains.plot(share, np.concatenate(([0.0], table["recall"])), label=name)
        lift.plot(table["share"], table["lift"], label=name)
    gains.plot([0, 1], [0, 1], label="_random", color=_GUIDE_COLOR, linestyle="--", linewidth=1.0)
    lift.axhline(1.0, color=_GUIDE_COLOR, linestyle="--", linewidth=1.0)
    gains.set(
        xlabel="accounts contacted (share)",
        ylabel="churners caught (share)",
        xlim=(0, 1),
        ylim=(0, 1.01),
    )
    lift.set(xlabel="accounts contacted (share)", ylabel="lift", xlim=(0, 1))
    gains.legend(loc="lower right")
    fig.suptitle(title)
    return fig


def importance_figure(
    importance: Mapping[str, float] | pd.Series,
    *,
    top: int = 20,
    title: str = "Feature importance",
    xlabel: str = "mean |contribution|",
) -> Figure:
    """Horizontal bars of the ``top`` most important features, largest on top.

    Parameters
    ----------
    importance : mapping of str to float, or pandas.Series
        Importance per feature name (e.g. mean absolute contribution).
    top : int, default 20
        Features shown.
    title, xlabel : str
        The chart's title and the measure's name.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = importance_figure({"tenure": 0.2, "logins_30d": 0.5, "plan": 0.1}, top=2)
    >>> [label.get_text() for label in fig.axes[0].get_yticklabels()]
    ['tenure', 'logins_30d']
    """
    values = pd.Series(importance, dtype=float)
    if values.empty:
        raise ModelError("An importance chart needs at least one feature.")
    # Ties broken by name so the same importances always draw the same chart.
    ordered = sorted(values.items(), key=lambda item: (-item[1], str(item[0])))[:top]
    names = [str(name) for name, _ in reversed(ordered)]
    fig = _new_figure((6.0, max(2.5, 0.3 * len(names) + 1.2)))
    ax = fig.add_subplot()
    ax.barh(names, [value for _, value in reversed(ordered)])
    ax.set(xlabel=xlabel, title=title)
    return fig


def partial_dependence_figure(
    grid: Sequence[object] | npt.ArrayLike,
    average: npt.ArrayLike,
    ice: npt.ArrayLike | None = None,
    *,
    feature: str,
    ylabel: str = "predicted churn probability",
) -> Figure:
    """Partial dependence (thick) over individual conditional expectation lines (thin).

    Parameters
    ----------
    grid : sequence
        The feature values tried: numbers, or category levels (text), which
        are drawn as evenly spaced points.
    average : array-like, shape (len(grid),)
        The mean prediction at each grid value.
    ice : array-like, shape (rows, len(grid)), optional
        One row's predictions across the grid, per row.
    feature : str
        The feature's name, for the axis label.
    ylabel : str, default "predicted churn probability"
        What was predicted.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = partial_dependence_figure([0, 10, 20], [0.1, 0.2, 0.4],
    ...                                 [[0.0, 0.1, 0.3], [0.2, 0.3, 0.5]], feature="logins")
    >>> len(fig.axes[0].lines)  # two ICE lines and the average
    3
    >>> fig = partial_dependence_figure(["basic", "pro"], [0.3, 0.1], feature="plan")
    >>> [label.get_text() for label in fig.axes[0].get_xticklabels()]
    ['basic', 'pro']
    """
    levels = list(np.asarray(grid, dtype=object).ravel())
    mean = np.asarray(average, dtype=float).ravel()
    if len(levels) != mean.size or mean.size == 0:
        raise ModelError(
            f"The grid has {len(levels)} values and the average {mean.size}; they must match "
            "and not be empty."
        )
    numeric = all(
        isinstance(level, int | float | np.number) and not isinstance(level, bool)
        for level in levels
    )
    x = np.asarray(levels, dtype=float) if numeric else np.arange(len(levels), dtype=float)
    marker = None if numeric else "o"
    fig = _new_figure()
    ax = fig.add_subplot()
    if ice is not None:
        lines = np.atleast_2d(np.asarray(ice, dtype=float))
        if lines.shape[1] != mean.size:
            raise ModelError(f"ICE rows have {lines.shape[1]} values; the grid has {mean.size}.")
        for row in lines:
            ax.plot(x, row, color="0.7", linewidth=0.6, alpha=0.5, marker=marker, markersize=2)
    ax.plot(x, mean, color="C0", linewidth=2.5, marker=marker, label="average")
    if not numeric:
        ax.set_xticks(x, [str(level) for level in levels])
    ax.set(xlabel=feature, ylabel=ylabel, title=f"Partial dependence on {feature}")
    return fig


def figure_png(figure: Figure, *, dpi: int = 100) -> bytes:
    """The figure rendered as PNG bytes.

    The ``Software`` metadata is left out so the same chart gives the same
    bytes across matplotlib versions.

    Examples
    --------
    >>> figure_png(importance_figure({"tenure": 1.0}))[:8]
    b'\\x89PNG\\r\\n\\x1a\\n'
    """
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return buffer.getvalue()


@dataclass(frozen=True)
class ReportSection:
    """One section of a report: a title, and any of a figure, text and a table.

    Parameters
    ----------
    title : str
        The heading (also names the PNG file).
    figure : matplotlib.figure.Figure, optional
        The chart.
    text : str, default ""
        Plain text; blank lines separate paragraphs. Escaped, never HTML.
    table : pandas.DataFrame, optional
        A table shown under the chart (e.g. metrics per model).
    """

    title: str
    figure: Figure | None = None
    text: str = ""
    table: pd.DataFrame | None = None


@dataclass(frozen=True)
class ReportFiles:
    """What :func:`write_report` wrote.

    Parameters
    ----------
    html : pathlib.Path
        The self-contained HTML report.
    images : tuple of pathlib.Path
        One PNG per section with a figure, beside the HTML file.
    """

    html: Path
    images: tuple[Path, ...]


_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto;
       padding: 0 1rem; color: #222; }
h1 { border-bottom: 2px solid #ddd; padding-bottom: .3rem; }
section { margin: 2rem 0; }
img { max-width: 100%; height: auto; }
table { border-collapse: collapse; font-size: .9rem; margin-top: 1rem; }
th, td { border: 1px solid #ddd; padding: .25rem .5rem; text-align: right; }
th { background: #f4f4f4; }
"""


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:40] or "figure"


def _format_cell(value: object) -> str:
    if isinstance(value, float):
        return "" if np.isnan(value) else f"{value:.4g}"
    return str(value)


def _table_html(table: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(name))}</th>" for name in table.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_format_cell(v))}</td>" for v in row) + "</tr>"
        for row in table.itertuples(index=False, name=None)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _write_atomic(path: Path, data: bytes) -> None:
    # Written beside the target, then renamed: a reader never sees half a report.
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data)
    partial.replace(path)


def write_report(
    path_html: str | Path,
    sections: Sequence[ReportSection] | Mapping[str, Figure],
    *,
    title: str = "Churnwatch model report",
    dpi: int = 100,
) -> ReportFiles:
    """Write a self-contained HTML report, and each chart as a PNG beside it.

    Parameters
    ----------
    path_html : str or pathlib.Path
        The HTML file to write; its folder is created if needed. The PNGs
        are named ``<stem>-<nn>-<section title>.png`` in the same folder.
    sections : sequence of ReportSection, or mapping of title to Figure
        The report's content, in order.
    title : str, default "Churnwatch model report"
        The page's heading.
    dpi : int, default 100
        PNG resolution.

    Returns
    -------
    ReportFiles
        The paths written.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     files = write_report(pathlib.Path(folder) / "r.html",
    ...                          [ReportSection("Notes", text="Backtest on 3 cutoffs.")])
    ...     "Backtest on 3 cutoffs." in files.html.read_text(), files.images
    (True, ())
    """
    path = Path(path_html)
    path.parent.mkdir(parents=True, exist_ok=True)
    items = (
        [ReportSection(name, figure) for name, figure in sections.items()]
        if isinstance(sections, Mapping)
        else list(sections)
    )
    images: list[Path] = []
    parts: list[str] = []
    for number, section in enumerate(items, start=1):
        anchor = f"s{number:02d}-{_slug(section.title)}"
        body = [f'<section id="{anchor}"><h2>{html.escape(section.title)}</h2>']
        for paragraph in re.split(r"\n\s*\n", section.text.strip()):
            if paragraph:
                body.append(f"<p>{html.escape(paragraph)}</p>")
        if section.figure is not None:
            png = figure_png(section.figure, dpi=dpi)
            image = path.with_name(f"{path.stem}-{number:02d}-{_slug(section.title)}.png")
            _write_atomic(image, png)
            images.append(image)
            encoded = base64.b64encode(png).decode("ascii")
            body.append(
                f'<img alt="{html.escape(section.title)}" src="data:image/png;base64,{encoded}">'
            )
        if section.table is not None:
            body.append(_table_html(section.table))
        body.append("</section>")
        parts.append("\n".join(body))
    contents = "\n".join(
        f'<li><a href="#s{number:02d}-{_slug(section.title)}">{html.escape(section.title)}</a></li>'
        for number, section in enumerate(items, start=1)
    )
    page = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n<nav><ul>{contents}</ul></nav>\n"
        + "\n".join(parts)
        + "\n</body>\n</html>\n"
    )
    _write_atomic(path, page.encode("utf-8"))
    return ReportFiles(html=path, images=tuple(images))
