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

The **features** section adds, drops or replaces features of the default
set (see :mod:`churnwatch.features`); each added feature is one table::

    [features]
    top_event_types_count = 8
    drop = ["region"]

    [[features.add]]
    name = "logins_14d"
    kind = "aggregate"
    function = "count"
    event_type = "login"
    window_days = 14

Errors name the key that is wrong and what was expected.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

import tomli_w
from pydantic import BaseModel, Field, ValidationError, model_validator

from churnwatch._dashboard_settings import DashboardSettings
from churnwatch._feature_settings import FeatureEntry, FeaturesSettings
from churnwatch._health_settings import HealthComponentEntry, HealthSettings
from churnwatch._settings_base import _Model, repeated
from churnwatch._source_settings import ColumnMapping, LookupSpec, SourceSpec
from churnwatch._tracker_settings import CadenceStepEntry, StoreSettings, TrackerSettings
from churnwatch.errors import ConfigError

__all__ = [
    "PROJECT_FILE",
    "CadenceStepEntry",
    "ChurnSettings",
    "ColumnMapping",
    "DashboardSettings",
    "DataSettings",
    "FeatureEntry",
    "FeaturesSettings",
    "HealthSettings",
    "IngestSettings",
    "LookupSpec",
    "ModelSettings",
    "NotifySettings",
    "ProjectSettings",
    "Settings",
    "SourceSpec",
    "StoreSettings",
    "TrackerSettings",
    "WarehouseSettings",
    "load_settings",
    "save_settings",
    "settings_reference",
]

PROJECT_FILE = "churnwatch.toml"


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
    file_path: str = Field(
        default="notifications.jsonl",
        description="File the 'file' channel appends JSON lines to (relative to the project).",
    )
    email_from: str = Field(
        default="churnwatch@localhost", description="Sender address of e-mail notifications."
    )
    smtp_starttls: bool = Field(
        default=False, description="Upgrade the SMTP connection with STARTTLS."
    )
    smtp_username: str | None = Field(
        default=None, description="Log in to the SMTP server as this user (unset: no login)."
    )
    smtp_password_env: str = Field(
        default="CHURNWATCH_SMTP_PASSWORD",
        description="Environment variable holding the SMTP password (never the password).",
    )
    webhook_secret_env: str = Field(
        default="CHURNWATCH_WEBHOOK_SECRET",
        description="Environment variable holding the webhook signing secret (never the "
        "secret itself).",
    )
    max_attempts_count: int = Field(
        default=8, ge=1, description="Delivery attempts before a notification is marked dead."
    )
    backoff_s: float = Field(
        default=60.0,
        ge=0,
        description="Wait after a first failed delivery; doubles after each further one "
        "(a longer Retry-After from the provider wins).",
    )
    max_backoff_s: float = Field(
        default=21600.0, ge=0, description="Longest wait between two delivery attempts."
    )
    lease_s: float = Field(
        default=300.0,
        gt=0,
        description="A notification left 'sending' this long (the dispatcher stopped) is "
        "retried; must exceed the time a batch takes.",
    )
    batch_rows: int = Field(
        default=10, ge=1, description="Notifications claimed and delivered at a time."
    )
    digest: bool = Field(
        default=False,
        description="Also send each CSM a daily digest of their accounts still at risk.",
    )


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
    features: FeaturesSettings = Field(
        default_factory=FeaturesSettings, description="Which features are computed."
    )
    model: ModelSettings = Field(
        default_factory=ModelSettings, description="How models are trained."
    )
    notify: NotifySettings = Field(
        default_factory=NotifySettings, description="Where notifications go."
    )
    health: HealthSettings = Field(
        default_factory=HealthSettings, description="The customer-health score."
    )
    store: StoreSettings = Field(
        default_factory=StoreSettings, description="Where the operational store lives."
    )
    tracker: TrackerSettings = Field(
        default_factory=TrackerSettings, description="The daily adoption tracker."
    )
    dashboard: DashboardSettings = Field(
        default_factory=DashboardSettings, description="Who may open the dashboard."
    )
    sources: list[SourceSpec] = Field(
        default_factory=list, description="The data sources and their mappings."
    )

    @model_validator(mode="after")
    def _unique_source_names(self) -> Settings:
        names = [s.name for s in self.sources]
        doubles = repeated(names)
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
    # Added features are written with only the keys they set, as a person writes them.
    data["features"]["add"] = [
        f.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
        for f in settings.features.add
    ]
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
        ("features.add", FeatureEntry),
        ("health.components", HealthComponentEntry),
        ("tracker.cadence", CadenceStepEntry),
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
