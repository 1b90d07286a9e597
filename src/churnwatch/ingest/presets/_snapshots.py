"""Presets ``telco`` and ``bank_churn``: one snapshot of customers with a churn label.

Such tables have no dates: one row per customer, a tenure and a label. They
fill ``accounts`` only, with ``churned`` and ``tenure_days``, which is what
one-snapshot models and survival curves (duration ``tenure_days``, event
``churned``) read.
"""

from __future__ import annotations

from pathlib import Path

from churnwatch.config import SourceSpec
from churnwatch.ingest.presets._preset import file_path, make_source

__all__ = ["DAYS_PER_MONTH", "DAYS_PER_YEAR", "bank_churn_sources", "telco_sources"]

#: Mean Gregorian month and year, in days.
DAYS_PER_MONTH = 30.4375
DAYS_PER_YEAR = 365.25


def telco_sources(
    data_dir: Path, *, file: str = "WA_Fn-UseC_-Telco-Customer-Churn.csv"
) -> list[SourceSpec]:
    """Map IBM's Telco Customer Churn table onto accounts.

    Parameters
    ----------
    data_dir : Path
        Folder holding the file.
    file : str
        File name inside ``data_dir``.

    Returns
    -------
    list of SourceSpec
        One source, ``telco_customers``.

    Notes
    -----
    Mapping:

    ========================  ====================================================
    ``accounts.account_id``   ``customerID``
    ``accounts.churned``      ``Churn`` (Yes / No)
    ``accounts.tenure_days``  ``tenure`` months × 30.4375
    ``accounts.mrr``          ``MonthlyCharges``
    ``accounts.plan``         ``Contract`` (Month-to-month, One year, Two year)
    ``accounts.attributes``   every other column (``gender``, ``InternetService``,
                              ``PaymentMethod``, ``TotalCharges``, ...) as text
    ========================  ====================================================

    ``TotalCharges`` is blank for the 11 customers of tenure 0; it is kept as
    it is in ``attributes``.

    Examples
    --------
    >>> telco_sources(Path("telco"))[0].columns["churned"].source
    'Churn'
    """
    return [
        make_source(
            "telco_customers",
            "accounts",
            file_path(data_dir, file),
            {
                "account_id": "customerID",
                "churned": "Churn",
                "tenure_days": {"source": "tenure", "scale": DAYS_PER_MONTH},
                "mrr": "MonthlyCharges",
                "plan": "Contract",
                "attributes": {"json_columns": "*"},
            },
        )
    ]


def bank_churn_sources(data_dir: Path, *, file: str = "Churn_Modelling.csv") -> list[SourceSpec]:
    """Map the bank customer churn table (``Churn_Modelling.csv``) onto accounts.

    Parameters
    ----------
    data_dir : Path
        Folder holding the file.
    file : str
        File name inside ``data_dir``.

    Returns
    -------
    list of SourceSpec
        One source, ``bank_customers``.

    Notes
    -----
    Mapping:

    ========================  ====================================================
    ``accounts.account_id``   ``CustomerId``
    ``accounts.churned``      ``Exited`` (1 / 0)
    ``accounts.tenure_days``  ``Tenure`` years × 365.25
    ``accounts.region``       ``Geography``
    ``accounts.name``         ``Surname``
    ``accounts.attributes``   every other column (``CreditScore``, ``Age``,
                              ``Balance``, ``NumOfProducts``, ...) as text
    ========================  ====================================================

    There is no revenue column: ``mrr`` stays empty.

    Examples
    --------
    >>> bank_churn_sources(Path("bank"))[0].path
    'bank/Churn_Modelling.csv'
    """
    return [
        make_source(
            "bank_customers",
            "accounts",
            file_path(data_dir, file),
            {
                "account_id": "CustomerId",
                "churned": "Exited",
                "tenure_days": {"source": "Tenure", "scale": DAYS_PER_YEAR},
                "region": "Geography",
                "name": "Surname",
                "attributes": {"json_columns": "*"},
            },
        )
    ]
