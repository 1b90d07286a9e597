"""What an ingest run did: rows read, loaded and rejected per file."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["FileLoad", "IngestReport", "ProgressFn"]


@dataclass
class FileLoad:
    """What happened to one file (or query) of a source."""

    source: str
    table: str
    file: str
    rows_read: int = 0
    inserted: int = 0
    updated: int = 0
    quarantined: int = 0
    accounts_created: int = 0
    skipped: bool = False
    error: str | None = None
    reasons: Counter[str] = field(default_factory=Counter)

    @property
    def loaded(self) -> int:
        """Rows now in the canonical table from this file (new or replacing)."""
        return self.inserted + self.updated


@dataclass
class IngestReport:
    """The outcome of one ``ingest`` run."""

    files: list[FileLoad] = field(default_factory=list)

    @property
    def rows_read(self) -> int:
        """Rows read across every file."""
        return sum(f.rows_read for f in self.files)

    @property
    def quarantined(self) -> int:
        """Rows rejected across every file."""
        return sum(f.quarantined for f in self.files)

    @property
    def errors(self) -> list[FileLoad]:
        """Files that could not be loaded at all."""
        return [f for f in self.files if f.error]

    @property
    def reasons(self) -> Counter[str]:
        """Rejected rows by reason."""
        total: Counter[str] = Counter()
        for f in self.files:
            total.update(f.reasons)
        return total


ProgressFn = Callable[[FileLoad], None]
