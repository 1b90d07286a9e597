"""The project file, ``churnwatch.toml``, as validated settings.

Settings are declared as data: every field has a default, a description and,
for quantities, its unit in its name (``horizon_days``, ``batch_rows``). The
settings object is built once at the edge (the CLI reads the file) and passed
in; the domain never reads files or environment variables on its own.

A project file names its **sources**: where each piece of data lives and how
its columns map onto a canonical table (see :mod:`churnwatch.schema`). A
column mapping is either a plain source column name or a table of options::

    [[sources]]
    name = "sessions"
    table = "events"
    path = "data/sessions.csv"
    timezone = "Europe/Paris"

    [sources.columns]
    account_id = "user_id"
    event_time = { source = "session_start" }
    event_type = { value = "session" }
    duration_s = { seconds_between = ["session_start", "session_end"] }
    properties = { json_columns = ["device_type", "pages_viewed"] }

Errors name the key that is wrong and what was expected.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from churnwatch.errors import ConfigError
from churnwatch.schema import TABLES

__all__ = [
    "PROJECT_FILE",
    "ChurnSettings",
    "ColumnMapping",
    "DataSettings",
    "IngestSettings",
    "LookupSpec",
    "ModelSettings",
    "NotifySettings",
    "ProjectSettings",
    "Settings",
    "SourceSpec",
    "WarehouseSettings",
    "load_settings",
    "save_settings",
    "settings_reference",
]

PROJECT_FILE = "churnwatch.toml"

TableName = Literal[
    "csms", "accounts", "users", "subscriptions", "payments", "events", "adoption_snapshots"
]
SourceFormat = Literal["auto", "csv", "parquet", "json", "jsonl", "whitespace"]
Transform = Literal["epoch_s", "epoch_ms", "epoch_us", "bool", "lower", "upper"]


class _Model(BaseModel):
    # Unknown keys are errors: a typo in the project file must not be ignored.
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class LookupSpec(_Model):
    """Find a value in a table already loaded, by a key the source holds.

    For example, usage rows that carry only a ``subscription_id`` get their
    ``account_id`` from the ``subscriptions`` table.
    """

    table: TableName = Field(description="Canonical table to look in.")
    on: str = Field(description="Column of that table matched against the source value.")
    column: str = Field(default="account_id", description="Column of that table to take.")


class ColumnMapping(_Model):
    """How one canonical column is filled from a source row.

    Exactly one of ``source``, ``value``, ``expr``, ``seconds_between`` or
    ``json_columns`` says where the value comes from; the other options
    transform it. The result is cast to the canonical column's type, and a
    value that does not cast sends its row to quarantine.
    """

    source: str | None = Field(
        default=None,
        description="Source column; a dotted path (properties.time) reaches into nested JSON.",
    )
    value: str | float | bool | None = Field(default=None, description="A constant for every row.")
    expr: str | None = Field(
        default=None,
        description="A SQL expression over source columns (DuckDB dialect), such as "
        "'amount / 100'. Source values are text unless the file is typed.",
    )
    seconds_between: tuple[str, str] | None = Field(
        default=None, description="Two timestamp source columns: the value is end - start in s."
    )
    json_columns: list[str] | Literal["*"] | None = Field(
        default=None,
        description="Source columns gathered into a JSON object; '*' takes every source "
        "column no other mapping uses.",
    )
    lookup: LookupSpec | None = Field(
        default=None, description="Take the value from a loaded table by the source's key."
    )
    transform: Transform | None = Field(
        default=None,
        description="epoch_s/epoch_ms/epoch_us: a number of seconds/ms/µs since 1970 UTC; "
        "bool: yes/no, true/false, 1/0 (see true_values); lower/upper: change case.",
    )
    format: str | None = Field(
        default=None, description="strptime format of a timestamp or date text, e.g. '%Y%m%d'."
    )
    values: dict[str, str | float | bool] | None = Field(
        default=None, description="Replace source values: {'Yes' = true, 'No' = false}."
    )
    true_values: list[str] | None = Field(
        default=None, description="Texts read as true by transform 'bool' (case-insensitive)."
    )
    false_values: list[str] | None = Field(
        default=None, description="Texts read as false by transform 'bool' (case-insensitive)."
    )
    scale: float | None = Field(
        default=None, description="Multiply a number: 0.01 turns cents into units."
    )

    @model_validator(mode="after")
    def _one_origin(self) -> ColumnMapping:
        origins = [
            name
            for name in ("source", "value", "expr", "seconds_between", "json_columns")
            if getattr(self, name) is not None
        ]
        if self.lookup is not None and self.source is None:
            raise ValueError("'lookup' needs 'source': the source column holding the key")
        if len(origins) != 1:
            raise ValueError(
                "give exactly one of source, value, expr, seconds_between, json_columns"
                + (f" (got {', '.join(origins)})" if origins else "")
            )
        return self


class SourceSpec(_Model):
    """One source of data and its mapping onto a canonical table."""

    name: str = Field(description="A name for the source, shown in summaries and quarantine.")
    table: TableName = Field(description="The canonical table the source fills.")
    path: str | None = Field(
        default=None,
        description="File or glob, relative to the project folder. CSV (also .gz), "
        "Parquet, JSON, JSONL.",
    )
    format: SourceFormat = Field(
        default="auto", description="File format; 'auto' goes by the file name."
    )
    delimiter: str = Field(default=",", description="CSV field delimiter.")
    url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of a database source (sqlite:///, postgresql://, mysql://).",
    )
    query: str | None = Field(default=None, description="SQL query run on 'url'.")
    sql_table: str | None = Field(default=None, description="Table read whole from 'url'.")
    timezone: str = Field(
        default="UTC", description="Time zone of timestamps that carry no offset."
    )
    unknown_account: Literal["quarantine", "create"] | None = Field(
        default=None,
        description="Rows whose account is not loaded: quarantine them, or create the "
        "account. Default: the table's own (create for adoption_snapshots).",
    )
    columns: dict[str, ColumnMapping] = Field(
        description="Canonical column -> mapping. A plain string is a source column name."
    )

    @field_validator("columns", mode="before")
    @classmethod
    def _plain_names(cls, columns: Any) -> Any:
        if isinstance(columns, dict):
            return {k: {"source": v} if isinstance(v, str) else v for k, v in columns.items()}
        return columns

    @model_validator(mode="after")
    def _fits_table(self) -> SourceSpec:
        if (self.path is None) == (self.url is None):
            raise ValueError("give either 'path' (a file) or 'url' (a database), not both")
        if self.url is not None and (self.query is None) == (self.sql_table is None):
            raise ValueError("a database source needs either 'query' or 'sql_table'")
        table = TABLES[self.table]
        unknown = sorted(set(self.columns) - set(table.column_names))
        if unknown:
            raise ValueError(
                f"table {self.table!r} has no column(s) {', '.join(unknown)}; "
                f"expected some of {', '.join(table.column_names)}"
            )
        missing = [c for c in table.required if c not in self.columns]
        if missing:
            raise ValueError(
                f"required column(s) of {self.table!r} not mapped: {', '.join(missing)}"
            )
        return self


class ProjectSettings(_Model):
    """[project] — who this project is."""

    name: str = Field(default="churnwatch", description="Project name, shown in reports.")


class WarehouseSettings(_Model):
    """[warehouse] — where the canonical tables live."""

    url: str = Field(
        default="duckdb:///churnwatch.duckdb",
        description="duckdb:///FILE (relative to the project folder), postgresql://... "
        "or mysql://... (SQLAlchemy URLs).",
    )
    memory_limit_mb: int = Field(
        default=1024, ge=64, description="Memory DuckDB may use before spilling to disk."
    )
    threads_count: int = Field(
        default=0, ge=0, description="Threads DuckDB may use; 0 uses every core."
    )


class IngestSettings(_Model):
    """[ingest] — how sources are read and checked."""

    batch_rows: int = Field(
        default=500_000, ge=1_000, description="Rows read and checked at a time."
    )
    future_tolerance_hours: float = Field(
        default=24.0,
        ge=0,
        description="How far past the load time a timestamp may lie before it is "
        "rejected as in the future (clock skew between systems).",
    )
    strict: bool = Field(
        default=False, description="Fail the whole load, loading nothing, on any bad row."
    )


class DataSettings(_Model):
    """[data] — facts about the data that cannot be read off it."""

    observation_end: str | None = Field(
        default=None,
        description="Last day the data is complete (YYYY-MM-DD). Later rows are censored, "
        "not churn. Unset: inferred from the data, and said so.",
    )


class ChurnSettings(_Model):
    """[churn] — what churn means for this business."""

    definition: Literal["subscription", "inactivity", "adoption"] = Field(
        default="subscription",
        description="Churn as a subscription ending without renewal, as inactivity, or "
        "as the adoption flag turning off.",
    )
    horizon_days: int = Field(default=30, ge=1, description="How far ahead churn is predicted.")
    inactivity_days: int = Field(
        default=30, ge=1, description="Days without a qualifying event that count as churn."
    )
    grace_days: int = Field(
        default=7, ge=0, description="A renewal within this many days continues a subscription."
    )


class ModelSettings(_Model):
    """[model] — how churn models are trained."""

    algorithm: Literal["lightgbm", "logistic", "mlp"] = Field(
        default="lightgbm", description="The learning algorithm."
    )
    cutoff_interval_days: int = Field(
        default=30, ge=1, description="Days between training cutoffs."
    )
    random_seed: int = Field(default=0, description="Seed for every random choice in training.")


class NotifySettings(_Model):
    """[notify] — where customer-success notifications go."""

    channel: Literal["file", "slack", "email", "webhook"] = Field(
        default="file", description="Delivery channel; 'file' writes them for a dry run."
    )
    slack_token_env: str = Field(
        default="SLACK_BOT_TOKEN",
        description="Environment variable holding the Slack bot token (never the token itself).",
    )
    slack_channel: str | None = Field(
        default=None, description="Post to this channel instead of messaging each CSM."
    )
    smtp_host: str = Field(default="localhost", description="SMTP server for e-mail.")
    smtp_port: int = Field(default=25, ge=1, le=65535, description="Port of the SMTP server.")
    webhook_url: str | None = Field(default=None, description="URL receiving JSON webhooks.")
    timeout_s: float = Field(default=10.0, gt=0, description="Time limit of one delivery.")


class Settings(_Model):
    """Every setting of a project, as read from ``churnwatch.toml``."""

    project: ProjectSettings = Field(
        default_factory=ProjectSettings, description="Who this project is."
    )
    warehouse: WarehouseSettings = Field(
        default_factory=WarehouseSettings, description="Where the canonical tables live."
    )
    ingest: IngestSettings = Field(
        default_factory=IngestSettings, description="How sources are read and checked."
    )
    data: DataSettings = Field(default_factory=DataSettings, description="Facts about the data.")
    churn: ChurnSettings = Field(default_factory=ChurnSettings, description="What churn means.")
    model: ModelSettings = Field(
        default_factory=ModelSettings, description="How models are trained."
    )
    notify: NotifySettings = Field(
        default_factory=NotifySettings, description="Where notifications go."
    )
    sources: list[SourceSpec] = Field(
        default_factory=list, description="The data sources and their mappings."
    )

    @model_validator(mode="after")
    def _unique_source_names(self) -> Settings:
        names = [s.name for s in self.sources]
        doubles = sorted({n for n in names if names.count(n) > 1})
        if doubles:
            raise ValueError(f"source names must be unique; repeated: {', '.join(doubles)}")
        return self


def _key_path(location: tuple[int | str, ...], data: Any) -> str:
    """Turn a pydantic error location into the project file's key path.

    Source entries are named by their ``name`` rather than their index, which
    is what a person sees in the file.
    """
    parts: list[str] = []
    node = data
    for step in location:
        if isinstance(step, int):
            label = f"[{step}]"
            if isinstance(node, list) and step < len(node) and isinstance(node[step], dict):
                name = node[step].get("name")
                label = f"[{step}] ({name})" if name else label
            parts.append(label)
            node = node[step] if isinstance(node, list) and step < len(node) else None
        else:
            parts.append(("." if parts else "") + step)
            node = node.get(step) if isinstance(node, dict) else None
    return "".join(parts)


def parse_settings(data: dict[str, Any], origin: str = PROJECT_FILE) -> Settings:
    """Validate a settings mapping, raising :class:`ConfigError` with key paths.

    Examples
    --------
    >>> parse_settings({"churn": {"horizon_days": 14}}).churn.horizon_days
    14
    """
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            # Drop pydantic's internal union/function tags from the path.
            location = tuple(
                step
                for step in error["loc"]
                if not (isinstance(step, str) and ("[" in step or step.startswith("function-")))
            )
            message = error["msg"].removeprefix("Value error, ")
            got = error.get("input")
            shown = "" if isinstance(got, dict | list) or got is None else f" (got {got!r})"
            lines.append(f"  {_key_path(location, data) or '(top level)'}: {message}{shown}")
        raise ConfigError(f"{origin} is not valid:\n" + "\n".join(lines)) from None


def load_settings(path: str | Path) -> Settings:
    """Read and validate a project file.

    Parameters
    ----------
    path : str or Path
        The ``churnwatch.toml`` file, or the folder holding it.

    Raises
    ------
    ConfigError
        If the file is missing, is not TOML, or holds an invalid setting.
    """
    path = Path(path)
    if path.is_dir():
        path = path / PROJECT_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"no project file at {path}; run 'churnwatch init' to write one"
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    return parse_settings(data, origin=str(path))


def save_settings(settings: Settings, path: str | Path) -> Path:
    """Write settings as a project file, leaving out values equal to their default.

    Returns
    -------
    Path
        The file written.
    """
    path = Path(path)
    if path.is_dir():
        path = path / PROJECT_FILE
    data = settings.model_dump(mode="json", exclude_none=True, exclude_defaults=False)
    sources = [
        s.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
        for s in settings.sources
    ]
    for source in sources:
        # A mapping that only names a source column is written as that name.
        source["columns"] = {
            name: mapping["source"] if set(mapping) == {"source"} else mapping
            for name, mapping in source["columns"].items()
        }
    data["sources"] = sources
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    return path


def settings_reference() -> str:
    """Render every setting with its default and description as Markdown.

    ``docs/configuration.md`` is this text; a test keeps the two equal.
    """
    lines = [
        "# Configuration reference",
        "",
        f"Every setting of `{PROJECT_FILE}`, its default and what it means. "
        "This page is generated by `churnwatch init --reference`.",
        "",
    ]
    sections: list[tuple[str, type[BaseModel]]] = [
        (name, field.annotation)  # type: ignore[misc]
        for name, field in Settings.model_fields.items()
        if name != "sources"
    ]
    sections += [
        ("sources", SourceSpec),
        ("sources.columns.*", ColumnMapping),
        ("sources.columns.*.lookup", LookupSpec),
    ]
    for section, model in sections:
        lines += [f"## [{section}]", "", (model.__doc__ or "").strip().splitlines()[0], ""]
        lines += ["| setting | default | description |", "| --- | --- | --- |"]
        for name, field in model.model_fields.items():
            default = (
                "(required)"
                if field.is_required()
                else repr(field.get_default(call_default_factory=True))
            )
            lines.append(f"| `{name}` | `{default}` | {field.description} |")
        lines.append("")
    return "\n".join(lines)
