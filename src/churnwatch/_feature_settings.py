"""The project file's ``[features]``: the default set, and features added, dropped or overridden.

Kept apart from :mod:`churnwatch.config`, which re-exports these names, to
keep each settings module small.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from churnwatch._settings_base import _Model, repeated
from churnwatch.errors import FeatureError
from churnwatch.features._spec import MAX_WEEKS, MAX_WINDOW_DAYS, FeatureKind, FeatureSpec

__all__ = ["FeatureEntry", "FeaturesSettings"]


class FeatureEntry(_Model):
    """One added feature: a ``[[features.add]]`` table, the fields of a FeatureSpec.

    A feature named like a default one replaces it.
    """

    name: str = Field(
        description="Column name: lower-case letters, digits and '_', at most 60 characters."
    )
    kind: FeatureKind = Field(
        description="What is computed: aggregate, users, recency, tenure, first_week, "
        "consistency, trend, payments, subscription, support or attribute."
    )
    function: str | None = Field(
        default=None,
        description="The kind's function (count, sum, mean, active_days, ratio, mrr, ...); "
        "kinds with one natural function default to it.",
    )
    column: str | None = Field(
        default=None,
        description="value or duration_s for aggregations; an account column for attributes.",
    )
    # Strict: TOML has real integers, and `true` or 1.5 days is a mistake, not a number.
    window_days: int | None = Field(
        default=None,
        ge=1,
        le=MAX_WINDOW_DAYS,
        strict=True,
        description="Days of the window ending at the cutoff; unset for all time.",
    )
    event_type: str | None = Field(default=None, description="Only events of this type.")
    property_name: str | None = Field(
        default=None,
        description="Only events whose JSON properties hold this key (with property_value).",
    )
    property_value: str | None = Field(
        default=None, description="The value property_name must have, compared as text."
    )
    weeks: int | None = Field(
        default=None,
        ge=1,
        le=MAX_WEEKS,
        strict=True,
        description="Number of weeks a consistency feature looks back.",
    )
    description: str = Field(
        default="", description="Shown by --explain; written from the other keys when empty."
    )

    @model_validator(mode="after")
    def _fits_kind(self) -> FeatureEntry:
        try:
            self.to_spec()
        except FeatureError as exc:
            # The key path already names the feature: drop the spec's own prefix.
            raise ValueError(str(exc).removeprefix(f"feature {self.name!r}: ")) from None
        return self

    def to_spec(self) -> FeatureSpec:
        """The feature this table declares.

        Raises
        ------
        FeatureError
            If the keys do not fit together (such as a window on a tenure).

        Examples
        --------
        >>> FeatureEntry(name="tenure_days", kind="tenure").to_spec().dtype
        'float64'
        """
        return FeatureSpec.from_dict(self.model_dump(exclude_none=True))


class FeaturesSettings(_Model):
    """[features] — which point-in-time features are computed."""

    defaults: bool = Field(
        default=True,
        description="Start from the default features generated from the warehouse's data; "
        "false: only the added ones.",
    )
    top_event_types_count: int = Field(
        default=5,
        ge=0,
        description="Per-type activity features are generated for this many most frequent "
        "event types.",
    )
    drop: list[str] = Field(
        default_factory=list, description="Names of features to leave out of the set."
    )
    add: list[FeatureEntry] = Field(
        default_factory=list,
        description="Features to add ([[features.add]] tables); one named like a default "
        "feature replaces it.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> FeaturesSettings:
        names = [f.name for f in self.add]
        doubles = repeated(names)
        if doubles:
            raise ValueError(f"added feature names must be unique; repeated: {', '.join(doubles)}")
        both = sorted(set(names) & set(self.drop))
        if both:
            raise ValueError(f"feature(s) both added and dropped: {', '.join(both)}")
        return self
