"""What a preset is: a named function from a data folder to source mappings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from churnwatch.config import SourceSpec

__all__ = ["Preset", "file_path", "make_source"]


@dataclass(frozen=True)
class Preset:
    """A ready-made mapping of a common export onto the canonical tables.

    A preset is data: it reads nothing when it is declared, and its
    :attr:`sources` function only builds :class:`~churnwatch.config.SourceSpec`
    objects (some presets look at which files the folder holds, or at the
    shape of a JSON export, to pick the right variant).

    Parameters
    ----------
    name : str
        The name given to ``churnwatch init --preset``.
    description : str
        One line saying which export the preset reads.
    sources : callable
        ``sources(data_dir)`` returns the sources, their paths under
        ``data_dir`` (relative or absolute, as ``data_dir`` is given).
    data : dict
        Values for the ``[data]`` settings that the export cannot state
        itself, such as ``observation_end``.
    detect_data : callable, optional
        ``detect_data(data_dir)`` reads ``[data]`` values off the files; its
        values take precedence over :attr:`data`. See
        :func:`churnwatch.ingest.presets.preset_data`.
    """

    name: str
    description: str
    sources: Callable[[Path], list[SourceSpec]]
    data: dict[str, Any] = field(default_factory=dict)
    detect_data: Callable[[Path], dict[str, Any]] | None = None


def file_path(data_dir: Path, *parts: str) -> str:
    """A path under ``data_dir`` as the project file spells it (forward slashes).

    Examples
    --------
    >>> file_path(Path("data"), "events", "part-*.parquet")
    'data/events/part-*.parquet'
    """
    return Path(data_dir, *parts).as_posix()


def make_source(
    name: str, table: str, path: str, columns: dict[str, Any], **options: Any
) -> SourceSpec:
    """Build and validate one source; ``columns`` values as in the project file."""
    return SourceSpec.model_validate(
        {"name": name, "table": table, "path": path, "columns": columns, **options}
    )
