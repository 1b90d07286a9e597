"""Preset ``stripe``: customers, subscriptions, charges and invoices from Stripe's API.

Amounts in Stripe are integers in the currency's smallest unit: cents for
USD and EUR, but yen for JPY, which has no minor unit. The expressions below
divide by 100 except for Stripe's zero-decimal currencies, so that a
¥3,000 charge is 3000, not 30.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from churnwatch.config import SourceSpec
from churnwatch.ingest.presets._preset import file_path, make_source

__all__ = ["stripe_sources"]

#: Currencies Stripe counts in whole units (its "zero-decimal" list).
ZERO_DECIMAL_CURRENCIES = (
    "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga",
    "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf",
)  # fmt: skip

_MINOR_UNITS = (
    "CASE WHEN LOWER(currency) IN ("
    + ", ".join(f"'{c}'" for c in ZERO_DECIMAL_CURRENCIES)
    + ") THEN 1 ELSE 100 END"
)

# Every item of a subscription, priced per month: amount x quantity, scaled
# by the billing interval. Metered and tiered prices have no flat amount and
# add nothing (their charge depends on usage), so MRR here is the licensed,
# recurring part. The legacy `plan` and the current `price` fields are both read.
_ITEM_INTERVAL = "COALESCE(i ->> '$.plan.interval', i ->> '$.price.recurring.interval')"
_ITEM_COUNT = (
    "COALESCE(TRY_CAST(COALESCE(i ->> '$.plan.interval_count', "
    "i ->> '$.price.recurring.interval_count') AS DOUBLE), 1)"
)
_MONTHS_PER_INTERVAL = (
    f"CASE {_ITEM_INTERVAL} WHEN 'year' THEN 12.0 WHEN 'week' THEN 12.0 / 52 "
    f"WHEN 'day' THEN 12.0 / 365.25 ELSE 1.0 END * {_ITEM_COUNT}"
)
_ITEMS = 'CAST("items.data" AS JSON[])'
_MRR = (
    f"COALESCE(LIST_SUM(LIST_TRANSFORM({_ITEMS}, lambda i: "
    "COALESCE(TRY_CAST(COALESCE(i ->> '$.plan.amount', i ->> '$.price.unit_amount') AS DOUBLE), 0)"
    " * COALESCE(TRY_CAST(i ->> '$.quantity' AS DOUBLE), 0)"
    f" / ({_MONTHS_PER_INTERVAL}))), 0) / {_MINOR_UNITS}"
)
_PLAN = (
    f"ARRAY_TO_STRING(LIST_TRANSFORM({_ITEMS}, lambda i: COALESCE("
    "i ->> '$.plan.nickname', i ->> '$.price.nickname', i ->> '$.plan.id', i ->> '$.price.id'"
    ")), ' + ')"
)
_QUANTITY = (
    f"COALESCE(LIST_SUM(LIST_TRANSFORM({_ITEMS}, lambda i: "
    "COALESCE(TRY_CAST(i ->> '$.quantity' AS DOUBLE), 0))), 0)"
)
_BILLING_MONTHS = f"LIST_TRANSFORM({_ITEMS}, lambda i: {_MONTHS_PER_INTERVAL})[1]"


def _record_keys(path: Path) -> set[str] | None:
    """Top-level keys of the objects of a Stripe JSON export; None if unreadable."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(document, dict) and isinstance(document.get("data"), list):
        document = document["data"]
    if not isinstance(document, list):
        return None
    keys: set[str] = set()
    for record in document:
        if isinstance(record, dict):
            keys.update(record)
    return keys


def _customers(data_dir: Path) -> SourceSpec:
    return make_source(
        "stripe_customers",
        "accounts",
        file_path(data_dir, "customers.json"),
        {
            "account_id": "id",
            "created_at": {"source": "created", "transform": "epoch_s"},
            "name": "name",
            "attributes": {"json_columns": "*"},
        },
        format="json",
    )


def _subscriptions(data_dir: Path) -> SourceSpec:
    columns: dict[str, Any] = {
        "subscription_id": "id",
        "account_id": "customer",
        "status": "status",
        "started_at": {"expr": "COALESCE(start_date, created)", "transform": "epoch_s"},
        # A cancellation scheduled for the period end sets canceled_at while
        # the subscription runs on: only an ended status makes it the end.
        "ended_at": {
            "expr": "COALESCE(ended_at, CASE WHEN status IN ('canceled', 'incomplete_expired') "
            "THEN canceled_at END)",
            "transform": "epoch_s",
        },
        "plan": {"expr": _PLAN},
        "mrr": {"expr": _MRR},
        "quantity": {"expr": _QUANTITY},
        "billing_period_months": {"expr": _BILLING_MONTHS},
        "attributes": {
            "json_columns": ["collection_method", "cancel_at_period_end", "cancel_at", "currency"]
        },
    }
    # API versions before 2025-03-31 carry one `discount` object (null when
    # none); later ones only a list of discount ids, with no percentage.
    keys = _record_keys(Path(data_dir, "subscriptions.json"))
    if keys is not None and "discount" in keys:
        columns["discount"] = {"expr": '"discount.coupon.percent_off" / 100'}
    return make_source(
        "stripe_subscriptions",
        "subscriptions",
        file_path(data_dir, "subscriptions.json"),
        columns,
        format="json",
    )


def _charges(data_dir: Path) -> SourceSpec:
    return make_source(
        "stripe_charges",
        "payments",
        file_path(data_dir, "charges.json"),
        {
            "payment_id": "id",
            "account_id": "customer",
            "paid_at": {"source": "created", "transform": "epoch_s"},
            "amount": {"expr": f"amount / {_MINOR_UNITS}"},
            "currency": "currency",
            "status": {"expr": "CASE WHEN refunded = 'true' THEN 'refunded' ELSE status END"},
            "failure_reason": "failure_code",
            "attributes": {"json_columns": ["description", "amount_refunded", "failure_message"]},
        },
        format="json",
    )


def _invoices(data_dir: Path) -> SourceSpec:
    columns: dict[str, Any] = {
        "payment_id": "id",
        "account_id": "customer",
        "paid_at": {
            "expr": """COALESCE("status_transitions.paid_at", created)""",
            "transform": "epoch_s",
        },
        "amount": {
            # Source values are text: the CASE picks one, the cast makes it a number.
            "expr": "TRY_CAST(CASE WHEN status = 'paid' THEN amount_paid ELSE amount_due END "
            f"AS DOUBLE) / {_MINOR_UNITS}"
        },
        "currency": "currency",
        # Draft invoices were never attempted; void ones were cancelled and are
        # no payment at all: they reach quarantine as invalid_choice.
        "status": {
            "source": "status",
            "values": {
                "paid": "succeeded",
                "open": "failed",
                "uncollectible": "failed",
                "draft": "pending",
            },
        },
        "attributes": {"json_columns": ["number", "billing_reason", "attempt_count"]},
    }
    keys = _record_keys(Path(data_dir, "invoices.json"))
    if keys is None or "subscription" in keys:
        columns["subscription_id"] = "subscription"
    elif "parent" in keys:  # API 2025-03-31 and later
        columns["subscription_id"] = "parent.subscription_details.subscription"
    return make_source(
        "stripe_invoices",
        "payments",
        file_path(data_dir, "invoices.json"),
        columns,
        format="json",
    )


def stripe_sources(
    data_dir: Path, *, payments: Literal["auto", "charges", "invoices", "both"] = "auto"
) -> list[SourceSpec]:
    """Map Stripe API objects onto accounts, subscriptions and payments.

    Each file holds what the API lists: a JSON array of objects, or the list
    object itself (``{"object": "list", "data": [...]}``).

    Parameters
    ----------
    data_dir : Path
        Folder holding the exports.
    payments : {"auto", "charges", "invoices", "both"}
        Where payments come from. A paid invoice is paid *by* a charge, so
        loading both counts that payment twice; ``"auto"`` takes
        ``charges.json`` when the folder has it (a charge is one attempt, the
        grain of ``payments``) and ``invoices.json`` otherwise.

    Returns
    -------
    list of SourceSpec
        ``stripe_customers``, ``stripe_subscriptions`` and the payment
        source(s).

    Notes
    -----
    Expected files: ``customers.json``, ``subscriptions.json``, and
    ``charges.json`` and/or ``invoices.json``.

    Mapping:

    ========================================  =========================================
    ``accounts.account_id``                   customer ``id``
    ``accounts.created_at``                   ``created`` (seconds since 1970, UTC)
    ``accounts.name``                         ``name``
    ``accounts.attributes``                   every other field: ``email``,
                                              ``metadata.*``, ``address.*``, ...
    ``subscriptions.subscription_id``         ``id``
    ``subscriptions.account_id``              ``customer``
    ``subscriptions.status``                  ``status`` (active, past_due, canceled...)
    ``subscriptions.started_at``              ``start_date``, else ``created``
    ``subscriptions.ended_at``                ``ended_at``; for an ended status also
                                              ``canceled_at``
    ``subscriptions.plan``                    each item's plan ``nickname``, else its
                                              ``id``, joined by ``" + "``
    ``subscriptions.mrr``                     sum over ``items.data`` of amount ×
                                              quantity per month: ``year`` ÷ 12,
                                              ``week`` × 52 / 12, ``day`` × 365.25 / 12,
                                              divided by ``interval_count``; cents
                                              to units
    ``subscriptions.quantity``                sum of the items' quantities
    ``subscriptions.billing_period_months``   first item's interval in months
    ``subscriptions.discount``                ``discount.coupon.percent_off`` / 100,
                                              when the export has a ``discount``
                                              field (API versions before 2025-03-31;
                                              later ones list discount ids only)
    ``payments.*`` from charges               ``id``, ``customer``, ``created``,
                                              ``amount`` in units, ``currency``,
                                              ``status`` (``refunded = true`` →
                                              ``refunded``), ``failure_code`` as
                                              ``failure_reason``
    ``payments.*`` from invoices              ``id``, ``customer``, paid time (else
                                              ``created``), ``amount_paid`` or
                                              ``amount_due``, ``status``: paid →
                                              succeeded, open / uncollectible →
                                              failed, draft → pending; void
                                              invoices are quarantined
                                              (``invalid_choice``); ``subscription``
                                              (from API 2025-03-31:
                                              ``parent.subscription_details``) as
                                              ``subscription_id``
    ========================================  =========================================

    A charge without a customer (a guest checkout) is quarantined as
    ``missing_value``: there is no account to attach it to.

    Examples
    --------
    >>> [s.name for s in stripe_sources(Path("no-such-folder"))]
    ['stripe_customers', 'stripe_subscriptions', 'stripe_charges']
    """
    specs = [_customers(data_dir), _subscriptions(data_dir)]
    has_charges = Path(data_dir, "charges.json").is_file()
    has_invoices = Path(data_dir, "invoices.json").is_file()
    if payments == "auto":
        payments = "invoices" if has_invoices and not has_charges else "charges"
    if payments in ("charges", "both"):
        specs.append(_charges(data_dir))
    if payments in ("invoices", "both"):
        specs.append(_invoices(data_dir))
    return specs
