"""Preset ``transactions``: a purchase log of a non-contractual business."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from churnwatch.config import SourceSpec
from churnwatch.ingest.presets._preset import file_path, make_source

__all__ = ["transactions_sources"]


def transactions_sources(
    data_dir: Path,
    *,
    file: str = "CDNOW_master.txt",
    file_format: Literal["auto", "csv", "whitespace"] = "whitespace",
    customer_column: str = "customer_id",
    date_column: str = "date",
    date_format: str | None = "%Y%m%d",
    amount_column: str = "dollar_value",
    event_type: str = "purchase",
) -> list[SourceSpec]:
    """Map a transaction log onto events, creating accounts from first purchases.

    The defaults read the CDNOW master file (whitespace-separated
    ``customer_id date number_of_cds dollar_value``); name your own columns
    for another log.

    Parameters
    ----------
    data_dir : Path
        Folder holding the log.
    file : str
        File name (or glob) inside ``data_dir``.
    file_format : {"auto", "csv", "whitespace"}
        How the file is laid out.
    customer_column : str
        Column of the customer id. Ids are kept as text: ``"00001"`` stays
        ``"00001"``.
    date_column : str
        Column of the purchase date or time.
    date_format : str or None
        strptime format of ``date_column`` (CDNOW: ``%Y%m%d``); ``None`` for
        ISO dates and times.
    amount_column : str
        Column of the amount spent, stored as the event's ``value``.
    event_type : str
        The ``event_type`` of every row.

    Returns
    -------
    list of SourceSpec
        One source, ``transactions``, with ``unknown_account = "create"``: a
        customer's account is created at its first purchase.

    Notes
    -----
    Mapping:

    =======================  ======================================================
    ``events.account_id``    ``customer_id``
    ``events.event_time``    ``date`` (``%Y%m%d``, midnight UTC)
    ``events.event_type``    ``"purchase"``
    ``events.value``         ``dollar_value``
    ``events.properties``    every other column (CDNOW: ``{number_of_cds}``)
    =======================  ======================================================

    A log without transaction ids cannot tell two identical purchases on one
    day from one purchase written twice: lines equal in customer, date,
    amount (and every other key column) are kept once, the repeats
    quarantined as ``duplicate_in_load`` (255 of CDNOW's 69,659 lines).

    Examples
    --------
    >>> transactions_sources(Path("cdnow"))[0].unknown_account
    'create'
    """
    event_time: dict[str, str] = {"source": date_column}
    if date_format is not None:
        event_time["format"] = date_format
    return [
        make_source(
            "transactions",
            "events",
            file_path(data_dir, file),
            {
                "account_id": customer_column,
                "event_time": event_time,
                "event_type": {"value": event_type},
                "value": amount_column,
                "properties": {"json_columns": "*"},
            },
            format=file_format,
            unknown_account="create",
        )
    ]
