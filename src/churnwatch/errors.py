"""The Churnwatch exception tree.

Every error Churnwatch raises on purpose derives from :class:`ChurnwatchError`,
so callers (and the CLI, which turns them into one readable line and exit code
2) can catch one type. Messages say what was wrong, where, and what to do.

::

    ChurnwatchError
    ├── ConfigError          the project file or a setting is invalid
    │   ├── LabelError       a label spec or cutoff schedule is invalid
    │   └── FeatureError     a feature spec or feature set is invalid
    ├── MappingError         a source's column mapping does not fit its data
    ├── SourceError          a file or database source cannot be read
    ├── WarehouseError       the warehouse cannot be reached or is inconsistent
    ├── StrictLoadError      a --strict load met a bad row and loaded nothing
    ├── SimulationError      simulator parameters are out of range
    ├── ModelError           a model cannot be trained, found, loaded or applied
    ├── AnalysisError        a retention analysis (survival, cohorts, segments, health)
    │                        cannot be computed from the data or settings given
    ├── DeliveryError        a notification could not be delivered by its channel
    ├── StoreError           the operational store cannot be opened or is too new
    ├── TrackerError         a snapshot cannot be tracked (bad rows, a date out of order)
    └── OutcomeError         a CSM answer, a CRM import or a daily run is invalid or blocked
        └── UnknownEpisodeError  the episode (or account) answered is not in the store
"""

from __future__ import annotations

__all__ = [
    "AnalysisError",
    "ChurnwatchError",
    "ConfigError",
    "DeliveryError",
    "FeatureError",
    "LabelError",
    "MappingError",
    "ModelError",
    "OutcomeError",
    "SimulationError",
    "SourceError",
    "StoreError",
    "StrictLoadError",
    "TrackerError",
    "UnknownEpisodeError",
    "WarehouseError",
]


class ChurnwatchError(Exception):
    """Root of every error Churnwatch raises on purpose."""


class ConfigError(ChurnwatchError):
    """The project file or a setting is invalid."""


class LabelError(ConfigError):
    """A label spec or cutoff schedule is invalid.

    A :class:`ConfigError`, since labels are declared by settings and flags.
    """


class FeatureError(ConfigError):
    """A feature spec or feature set is invalid (a bad field, a drop of no feature).

    A :class:`ConfigError`, since features are declared by the project file.
    """


class MappingError(ChurnwatchError):
    """A source's column mapping does not fit the data it reads."""


class SourceError(ChurnwatchError):
    """A source file or database cannot be read."""


class WarehouseError(ChurnwatchError):
    """The warehouse cannot be reached, or holds something unexpected."""


class StrictLoadError(ChurnwatchError):
    """A strict load met rows it would have quarantined, and loaded nothing.

    Parameters
    ----------
    message : str
        What was rejected.
    problems : list of dict
        The first rejected rows: file, row number, column, value and reason.
    """

    def __init__(self, message: str, problems: list[dict[str, object]] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class SimulationError(ChurnwatchError):
    """Simulator parameters are out of range."""


class ModelError(ChurnwatchError):
    """A model cannot be trained, found, loaded or applied.

    Raised, for example, when a frame has no positive example, when a
    registry holds no version of that name, or when a saved model's feature
    specs no longer match the features it is asked to score.
    """


class AnalysisError(ChurnwatchError):
    """A retention analysis cannot be computed from the data or settings given.

    Raised, for example, when survival is asked by an attribute the accounts do
    not have, when a cohort table has no account, or when a health component
    names a metric that is not in the frame.
    """


class DeliveryError(ChurnwatchError):
    """A notification could not be delivered by its channel.

    Parameters
    ----------
    message : str
        What failed, where, and what to do.
    permanent : bool
        True when retrying cannot help (an unknown recipient, a refused
        address, a 4xx answer): the outbox marks the row dead at once.
    retry_after_s : float or None
        The provider's own wait before a retry (HTTP ``Retry-After``), which
        the outbox honours when it is longer than its backoff.
    """

    def __init__(
        self, message: str, *, permanent: bool = False, retry_after_s: float | None = None
    ) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry_after_s = retry_after_s


class StoreError(ChurnwatchError):
    """The operational store cannot be opened, reached or migrated.

    Raised, for example, for an invalid ``[store] url``, a server that does
    not answer, or a database of a newer schema version than this code knows.
    """


class TrackerError(ChurnwatchError):
    """A snapshot cannot be tracked as given.

    Raised, for example, for a snapshot with repeated (account, product)
    rows or missing columns, or one dated before the last date tracked.
    """


class OutcomeError(ChurnwatchError):
    """A CSM answer, a CRM activity import or a daily run cannot be done as asked.

    Raised, for example, for an outcome that is not won, lost or not_useful,
    an episode the store does not know, a CRM file without an account
    column, or a daily run while another one holds the lock.
    """


class UnknownEpisodeError(OutcomeError):
    """The episode an answer names, or the account's open episode, is not in the store."""
