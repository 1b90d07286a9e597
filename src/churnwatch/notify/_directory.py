"""The CSM directory: who a CSM is, and how to reach them.

Snapshots name an account's CSM however the business does — an id in some
exports, a display name in others — so the directory finds a CSM by either:
``csm_id`` first, then the name compared without case or surrounding space.
It comes from the warehouse's canonical ``csms`` table (csm_id, name, email,
slack_user_id); a Slack member id that is not stored is found on Slack by the
CSM's e-mail when a message is sent (see :class:`~churnwatch.notify.SlackChannel`).

A CSM that cannot be reached on a channel is *unmapped*: not in the table at
all, without an e-mail (for e-mail), or with neither an e-mail nor a Slack id
(for Slack DMs). :meth:`CsmDirectory.unmapped` lists them with the reason so
the table can be fixed before the messages go dead.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping

import sqlglot.expressions as exp

from churnwatch.warehouse import Warehouse

__all__ = ["CsmContact", "CsmDirectory", "UnmappedCsm"]


@dataclasses.dataclass(frozen=True)
class CsmContact:
    """One customer-success manager and how to reach them.

    Examples
    --------
    >>> CsmContact("c1", name="Ana Silva", email="ana@example.com").label
    'Ana Silva'
    """

    csm_id: str
    name: str | None = None
    email: str | None = None
    slack_user_id: str | None = None

    @property
    def label(self) -> str:
        """The name to show: the display name, else the id."""
        return self.name or self.csm_id


@dataclasses.dataclass(frozen=True)
class UnmappedCsm:
    """A CSM some channel cannot reach, and why."""

    csm_ref: str
    reason: str


def _key(text: str) -> str:
    return " ".join(text.split()).casefold()


class CsmDirectory:
    """Find CSMs by id or name.

    Parameters
    ----------
    contacts : iterable of CsmContact
        Every known CSM. Ids must be unique; a name shared by two CSMs finds
        neither by name (which one was meant cannot be known).

    Examples
    --------
    >>> directory = CsmDirectory([CsmContact("c1", "Ana Silva", "ana@example.com")])
    >>> directory.find("  ana SILVA ").csm_id
    'c1'
    >>> [u.reason for u in directory.unmapped(["c1", "Bo"], channel="email")]
    ['not in the csms table']
    """

    def __init__(self, contacts: Iterable[CsmContact] = ()) -> None:
        self._by_id: dict[str, CsmContact] = {}
        names: dict[str, list[CsmContact]] = {}
        for contact in contacts:
            if contact.csm_id in self._by_id:
                raise ValueError(f"CSM id {contact.csm_id!r} appears twice in the directory")
            self._by_id[contact.csm_id] = contact
            if contact.name:
                names.setdefault(_key(contact.name), []).append(contact)
        self._by_name = {name: found[0] for name, found in names.items() if len(found) == 1}
        self._ambiguous = {name for name, found in names.items() if len(found) > 1}

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, object]]) -> CsmDirectory:
        """Build a directory from ``csms`` rows (mappings with the canonical columns).

        Empty texts count as absent.

        Examples
        --------
        >>> CsmDirectory.from_rows([{"csm_id": "c1", "email": ""}]).find("c1").email is None
        True
        """

        def text(row: Mapping[str, object], column: str) -> str | None:
            value = row.get(column)
            return str(value).strip() or None if value is not None else None

        return cls(
            CsmContact(
                csm_id=str(row["csm_id"]),
                name=text(row, "name"),
                email=text(row, "email"),
                slack_user_id=text(row, "slack_user_id"),
            )
            for row in rows
        )

    @classmethod
    def from_warehouse(cls, warehouse: Warehouse) -> CsmDirectory:
        """Read the directory from the warehouse's ``csms`` table (empty when absent).

        Examples
        --------
        >>> from churnwatch.warehouse import connect
        >>> with connect("duckdb:///:memory:") as wh:
        ...     wh.ensure_schema()
        ...     len(CsmDirectory.from_warehouse(wh))
        0
        """
        if not warehouse.table_exists("csms"):
            return cls()
        columns = ("csm_id", "name", "email", "slack_user_id")
        query = exp.select(*columns).from_("csms").order_by("csm_id")
        return cls.from_rows(warehouse.query(query).to_pylist())

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[CsmContact]:
        return iter(self._by_id.values())

    def contacts(self) -> list[CsmContact]:
        """Every CSM, by id."""
        return [self._by_id[key] for key in sorted(self._by_id)]

    def find(self, csm_ref: str | None) -> CsmContact | None:
        """The CSM with this id, else with this name; None when there is none."""
        if not csm_ref:
            return None
        found = self._by_id.get(csm_ref)
        if found is not None:
            return found
        return self._by_name.get(_key(csm_ref))

    def why_unreachable(self, csm_ref: str | None, *, channel: str) -> str | None:
        """Why ``channel`` cannot reach this CSM, or None when it can.

        Slack posts to a shared channel and webhooks / files reach everyone:
        only 'slack' DMs and 'email' need an address.
        """
        if channel not in {"slack", "email"}:
            return None
        if not csm_ref:
            return "the account has no CSM"
        contact = self.find(csm_ref)
        if contact is None:
            if _key(csm_ref) in self._ambiguous:
                return "the name is shared by several CSMs; use the csm_id"
            return "not in the csms table"
        if channel == "email" and not contact.email:
            return "no e-mail in the csms table"
        if channel == "slack" and not (contact.email or contact.slack_user_id):
            return "neither an e-mail nor a Slack id in the csms table"
        return None

    def unmapped(self, csm_refs: Iterable[str | None], *, channel: str) -> list[UnmappedCsm]:
        """The CSMs among ``csm_refs`` that ``channel`` cannot reach, with the reason.

        Each CSM is listed once, in the order of their references.
        """
        seen: set[str] = set()
        missing: list[UnmappedCsm] = []
        for ref in csm_refs:
            shown = ref or ""
            if shown in seen:
                continue
            seen.add(shown)
            reason = self.why_unreachable(ref, channel=channel)
            if reason is not None:
                missing.append(UnmappedCsm(shown, reason))
        return missing
