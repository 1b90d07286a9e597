"""The model commands of the CLI: train, models (list, show, promote) and score.

A thin layer over :mod:`churnwatch.models` and :mod:`churnwatch.scoring`;
registered on the application by :mod:`churnwatch.cli`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table as RichTable

from churnwatch.cli import (
    ProjectOption,
    WarehouseOption,
    _open,
    _user_errors,
    _write_frame,
    app,
    console,
    errors,
)
from churnwatch.config import Settings
from churnwatch.errors import ChurnwatchError
from churnwatch.models._metrics import rounded
from churnwatch.warehouse import Warehouse

__all__ = ["models_app"]

models_app = typer.Typer(help="List, show and promote the registry's models.", no_args_is_help=True)
app.add_typer(models_app, name="models")

_EXTRA_KINDS = ("conversion", "activity", "revenue")


def registry_root(project: Path) -> Path:
    """Where a project keeps its models."""
    return project / "models"


@app.command()
@_user_errors
def train(
    project: ProjectOption = Path("."),
    horizon: Annotated[
        list[int] | None,
        typer.Option(help="Churn horizon in days (repeatable); default: [churn] horizon_days."),
    ] = None,
    also: Annotated[
        list[str] | None,
        typer.Option(
            help="Also train a model of conversion, activity (sessions) or revenue over the "
            "longest horizon (repeatable)."
        ),
    ] = None,
    kind: Annotated[
        str | None, typer.Option(help="lightgbm, logistic or mlp; default: [model] algorithm.")
    ] = None,
    start: Annotated[str | None, typer.Option(help="First training cutoff (YYYY-MM-DD).")] = None,
    search: Annotated[int, typer.Option(help="Hyperparameter sets tried (0: the defaults).")] = 12,
    backtest: Annotated[
        bool, typer.Option(help="Backtest by rolling origin before training.")
    ] = True,
    test_cutoffs: Annotated[
        int, typer.Option(help="Backtest on this many of the latest cutoffs.", min=1)
    ] = 3,
    promote: Annotated[
        bool,
        typer.Option(help="Promote the new versions (a model's first version always is)."),
    ] = False,
    report: Annotated[
        bool, typer.Option(help="Write the model report (HTML and PNG) under reports/.")
    ] = True,
    warehouse: WarehouseOption = None,
) -> None:
    """Train, backtest, calibrate and register churn models on the project's data."""
    with _open(project, warehouse) as (settings, wh):
        results = _train(
            settings,
            wh,
            project,
            horizon,
            also,
            kind,
            start,
            search,
            backtest,
            promote,
            report,
            test_cutoffs,
        )
    for line in results:
        console.print(line, markup=False, highlight=False)


def _train(
    settings: Settings,
    wh: Warehouse,
    project: Path,
    horizon: list[int] | None,
    also: list[str] | None,
    kind: str | None,
    start: str | None,
    search: int,
    run_backtest: bool,
    promote: bool,
    write_report: bool,
    test_cutoffs: int = 3,
) -> list[str]:
    """Train every target; return what to tell the user, line by line."""
    from churnwatch.features import feature_set
    from churnwatch.labels import LabelSpec
    from churnwatch.models import (
        ModelRegistry,
        backtest_frame,
        model_report,
        register_model,
        training_frame,
        training_schedule,
    )

    algorithm = kind or settings.model.algorithm
    if algorithm not in ("lightgbm", "logistic", "mlp"):
        raise ChurnwatchError(f"--kind {algorithm!r}: expected lightgbm, logistic or mlp")
    churn = LabelSpec.from_settings(settings.churn)
    if horizon:
        churn = dataclasses.replace(churn, horizon_days=tuple(horizon))
    specs = [churn]
    longest = max(churn.horizon_days)
    for extra in also or []:
        if extra not in _EXTRA_KINDS:
            raise ChurnwatchError(f"--also {extra!r}: expected one of {', '.join(_EXTRA_KINDS)}")
        if extra == "activity":
            specs.append(
                LabelSpec("activity", (longest,), name="sessions", event_types=_session_types(wh))
            )
        else:
            specs.append(LabelSpec(extra, (longest,)))  # type: ignore[arg-type]
    schedule = training_schedule(
        wh,
        churn,
        start=start,
        every_days=settings.model.cutoff_interval_days,
        observation_end=settings.data.observation_end,
    )
    features = feature_set(settings, wh)
    console.print(
        f"building the training frame: {schedule.description}, {len(features)} features ..."
    )
    frame = training_frame(
        wh, specs, schedule, features, observation_end=settings.data.observation_end
    )
    lines = [table.describe() for table in frame.labels]
    registry = ModelRegistry(registry_root(project))
    for target in frame.targets:
        known = frame.data[target].notna()
        if not known.any():
            lines.append(f"{target}: no settled label at any cutoff; not trained")
            continue
        result = None
        if run_backtest:
            console.print(f"backtesting {target} ...")
            try:
                result = backtest_frame(
                    frame,
                    target,
                    kind=algorithm,  # type: ignore[arg-type]
                    search_iterations=search,
                    test_cutoffs=test_cutoffs,
                    random_state=settings.model.random_seed,
                )
            except ChurnwatchError as exc:
                lines.append(f"{target}: no backtest ({exc})")
        console.print(f"training {target} ...")
        first = not registry.versions(target)
        registered = register_model(
            frame,
            target,
            registry,
            kind=algorithm,  # type: ignore[arg-type]
            search_iterations=search,
            backtest_result=result,
            promote=promote or first,
            random_state=settings.model.random_seed,
        )
        card = registered.card
        state = "promoted" if card.promoted else "not promoted"
        lines.append(
            f"{target}: saved {card.version} ({state}), {registered.model.rows:,} "
            f"training rows; held-out {_metrics_text(registered.model.validation)}"
        )
        if result is not None:
            lines.append(rounded(result.pooled).to_string(index=False))
        if write_report:
            folder = project / "reports" / f"model_{target}_{card.version}"
            files = model_report(registered.model, frame, folder, backtest_result=result)
            lines.append(f"{target}: report {files.html}")
    return lines


def _session_types(wh: Warehouse) -> tuple[str, ...] | None:
    """Event types that count as sessions: ``session`` when the data has it."""
    from sqlglot import exp

    found = wh.query(
        exp.select("event_type")
        .from_("events")
        .where(exp.column("event_type").eq(exp.Literal.string("session")))
        .limit(1)
    )
    return ("session",) if found.num_rows else None


def _metrics_text(metrics: dict[str, float]) -> str:
    shown = [f"{k} {metrics[k]:.3f}" for k in ("roc_auc", "ece", "brier", "mae") if k in metrics]
    return ", ".join(shown) or "no held-out rows"


# -- models ------------------------------------------------------------------------
@models_app.command("list")
@_user_errors
def list_models(project: ProjectOption = Path(".")) -> None:
    """List every saved version, newest last; * marks the promoted ones."""
    from churnwatch.models import ModelRegistry

    table = RichTable("", "name", "version", "created", "kind", "rows", "held-out AUC")
    for card in ModelRegistry(registry_root(project)).versions():
        auc = card.metrics.get("holdout", {}).get("roc_auc")
        table.add_row(
            "*" if card.promoted else "",
            card.name,
            card.version,
            card.created_at[:19],
            str(card.extra.get("kind", "")),
            f"{card.extra.get('rows', 0):,}",
            "" if auc is None else f"{auc:.3f}",
        )
    console.print(table)


@models_app.command("show")
@_user_errors
def show_model(
    name: Annotated[str, typer.Argument(help="The model's name, such as churn_30d.")],
    version: Annotated[
        str | None, typer.Argument(help="Its version (v3); default: the promoted one.")
    ] = None,
    project: ProjectOption = Path("."),
) -> None:
    """Show a model's card: specs, window, metrics, library versions."""
    from churnwatch.models import ModelRegistry

    registry = ModelRegistry(registry_root(project))
    if version is None:
        promoted = registry.promoted()
        if name not in promoted:
            raise ChurnwatchError(
                f"no promoted version of {name!r}; give a version "
                f"(`churnwatch models list` shows them)"
            )
        card = promoted[name]
    else:
        card = registry.card(name, version)
    shown = card.to_dict()
    shown.get("extra", {}).pop("drift", None)  # bin edges: too long to read
    console.print_json(json.dumps(shown, default=str))


@models_app.command("promote")
@_user_errors
def promote_model(
    name: Annotated[str, typer.Argument(help="The model's name, such as churn_30d.")],
    version: Annotated[str, typer.Argument(help="The version to promote, such as v3.")],
    project: ProjectOption = Path("."),
) -> None:
    """Make a version the one scoring applies."""
    from churnwatch.models import ModelRegistry

    card = ModelRegistry(registry_root(project)).promote(name, version)
    console.print(f"{card.name} {card.version} promoted")


# -- score -------------------------------------------------------------------------
@app.command()
@_user_errors
def score(
    project: ProjectOption = Path("."),
    as_of: Annotated[
        str | None,
        typer.Option(
            help="Score with the data up to the end of this day (YYYY-MM-DD); "
            "default: the last day of data."
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Also write the scores to this .parquet or .csv file.")
    ] = None,
    top: Annotated[int, typer.Option(help="Show this many riskiest accounts.")] = 10,
    account: Annotated[
        list[str] | None,
        typer.Option(help="Score only this account (repeat the option for several)."),
    ] = None,
    warehouse: WarehouseOption = None,
) -> None:
    """Score every account with the promoted models into the risk_scores table."""
    cutoff = None
    if as_of is not None:
        try:
            day = dt.date.fromisoformat(as_of)
        except ValueError:
            raise ChurnwatchError(
                f"--as-of {as_of!r}: expected a date such as 2024-06-30"
            ) from None
        cutoff = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    with _open(project, warehouse) as (_, wh):
        score_and_print(wh, project, cutoff, out, top, accounts=account or None)


def score_and_print(
    wh: Warehouse,
    project: Path,
    cutoff: dt.datetime | None,
    out: Path | None,
    top: int,
    accounts: list[str] | None = None,
) -> None:
    """Score every account, print the summary and the riskiest accounts, write ``out``."""
    import pyarrow as pa

    from churnwatch.models import ModelRegistry
    from churnwatch.scoring import score_accounts

    run = score_accounts(
        wh,
        ModelRegistry(registry_root(project)),
        as_of=cutoff,
        accounts=accounts,
        on_progress=console.print,
    )
    console.print(
        f"scored {run.accounts:,} accounts as of {run.scored_at:%Y-%m-%d %H:%M} UTC "
        f"with {', '.join(f'{t} {v}' for t, v in run.models.items())}"
    )
    scores = run.scores
    for target in run.models:
        rows = scores.loc[scores["target"] == target]
        tiers = rows["risk_tier"].value_counts().to_dict()
        at_risk = rows["revenue_at_risk"].sum(min_count=1)
        money = "" if at_risk != at_risk else f", revenue at risk {at_risk:,.0f}/month"
        summary = ", ".join(f"{k} {v:,}" for k, v in sorted(tiers.items()))
        console.print(f"{target}: {summary or f'mean prediction {rows.score.mean():.2f}'}{money}")
        table = RichTable("account", "score", "tier", "reasons", title=f"riskiest: {target}")
        for row in rows.nlargest(top, "score").itertuples():
            reasons = "; ".join(str(r) for r in (row.reason_1, row.reason_2, row.reason_3) if r)
            table.add_row(
                str(row.account_id), f"{row.score:.3f}", str(row.risk_tier or ""), reasons
            )
        console.print(table)
    for line in run.drifted:
        errors.print(f"[yellow]drift:[/] {line} (population stability index above 0.25)")
    if out is not None:
        _write_frame(pa.Table.from_pandas(scores, preserve_index=False), out)
        console.print(f"wrote {out}")
