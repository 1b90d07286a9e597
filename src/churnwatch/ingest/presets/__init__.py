"""Presets: ready-made column mappings for common exports.

A preset turns a folder of files laid out the way a known tool exports them
into :class:`~churnwatch.config.SourceSpec` objects, the same mappings a
person would write in ``churnwatch.toml``. ``churnwatch init --preset NAME
--data DIR`` writes them into the project file, where they can be read and
changed like any other source.

========================  ======================================================
``saas_sessions``         ``users.csv`` + ``sessions.csv`` of a SaaS product
``stripe``                Stripe customers, subscriptions, charges / invoices
``mixpanel``              Mixpanel raw event export (JSON lines)
``fightchurn``            fightchurn simulator tables (``socialnet7``)
``telco``                 IBM Telco Customer Churn snapshot
``bank_churn``            bank customer churn snapshot (``Churn_Modelling.csv``)
``transactions``          a purchase log (CDNOW by default)
``ravenstack``            the RavenStack five-table SaaS export
``churnwatch_simulator``  the output folder of :mod:`churnwatch.simulate`
========================  ======================================================

Each ``<name>_sources`` function documents the files it expects and what
maps where; those with parameters (column names, file names) can be called
directly for exports that differ from the defaults.

Examples
--------
>>> from pathlib import Path
>>> [s.name for s in preset_sources("saas_sessions", Path("data"))]
['users', 'sessions']
>>> preset_data("fightchurn", Path("no-such-folder"))
{'observation_end': '2020-06-01'}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from churnwatch.config import SourceSpec
from churnwatch.errors import ConfigError
from churnwatch.ingest.presets._fightchurn import (
    SOCIALNET7_OBSERVATION_END,
    detect_observation_end,
    fightchurn_sources,
)
from churnwatch.ingest.presets._mixpanel import mixpanel_sources
from churnwatch.ingest.presets._preset import Preset
from churnwatch.ingest.presets._ravenstack import ravenstack_sources
from churnwatch.ingest.presets._saas import saas_sessions_sources
from churnwatch.ingest.presets._simulator import (
    SIMULATOR_FILES,
    simulator_data,
    simulator_sources,
)
from churnwatch.ingest.presets._snapshots import bank_churn_sources, telco_sources
from churnwatch.ingest.presets._stripe import stripe_sources
from churnwatch.ingest.presets._transactions import transactions_sources

__all__ = [
    "PRESETS",
    "SIMULATOR_FILES",
    "Preset",
    "bank_churn_sources",
    "detect_observation_end",
    "fightchurn_sources",
    "get_preset",
    "mixpanel_sources",
    "preset_data",
    "preset_sources",
    "ravenstack_sources",
    "saas_sessions_sources",
    "simulator_data",
    "simulator_sources",
    "stripe_sources",
    "telco_sources",
    "transactions_sources",
]

PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            "saas_sessions",
            "A SaaS users.csv and sessions.csv: users become accounts, sessions events.",
            saas_sessions_sources,
        ),
        Preset(
            "stripe",
            "Stripe API exports: customers, subscriptions (MRR from items), charges or invoices.",
            stripe_sources,
        ),
        Preset(
            "mixpanel",
            "Mixpanel raw event export (JSON lines): accounts are distinct_ids.",
            mixpanel_sources,
        ),
        Preset(
            "fightchurn",
            "fightchurn simulator tables account / subscription / event (socialnet7).",
            fightchurn_sources,
            data={"observation_end": SOCIALNET7_OBSERVATION_END},
            detect_data=detect_observation_end,
        ),
        Preset(
            "telco",
            "IBM Telco Customer Churn: one snapshot of customers with a Churn label.",
            telco_sources,
        ),
        Preset(
            "bank_churn",
            "Bank customer churn (Churn_Modelling.csv): one snapshot with an Exited label.",
            bank_churn_sources,
        ),
        Preset(
            "transactions",
            "A purchase log (CDNOW by default): purchases become events, buyers accounts.",
            transactions_sources,
        ),
        Preset(
            "ravenstack",
            "RavenStack SaaS export: accounts, subscriptions, feature usage, support "
            "tickets, churn events.",
            ravenstack_sources,
        ),
        Preset(
            "churnwatch_simulator",
            "The Parquet folder written by churnwatch.simulate, in canonical columns.",
            simulator_sources,
            detect_data=simulator_data,
        ),
    )
}


def get_preset(name: str) -> Preset:
    """Return the preset called ``name``.

    Raises
    ------
    ConfigError
        If there is no such preset; the message lists the known ones.

    Examples
    --------
    >>> get_preset("telco").name
    'telco'
    """
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(
            f"no preset named {name!r}; choose one of: {', '.join(sorted(PRESETS))}"
        ) from None


def _located(data_dir: Path, base_dir: str | Path | None) -> Path:
    """Where the files of ``data_dir`` are, seen from here."""
    if base_dir is None or data_dir.is_absolute():
        return data_dir
    return Path(base_dir, data_dir)


def preset_sources(
    name: str, data_dir: str | Path, *, base_dir: str | Path | None = None
) -> list[SourceSpec]:
    """The sources of preset ``name`` for the files in ``data_dir``.

    Paths are under ``data_dir`` as given: relative stays relative (to the
    project folder, when written into ``churnwatch.toml``), absolute stays
    absolute.

    Parameters
    ----------
    name : str
        The preset.
    data_dir : str or Path
        The folder of the files, as the project file should name it.
    base_dir : str or Path, optional
        The folder a relative ``data_dir`` is relative to (the project
        folder), when it is not the current directory. Some presets look at
        the files (which of them exist, the shape of a JSON export); this says
        where to find them, while the paths written stay under ``data_dir``.

    Raises
    ------
    ConfigError
        If there is no such preset.

    Examples
    --------
    >>> preset_sources("telco", "/data/telco")[0].path
    '/data/telco/WA_Fn-UseC_-Telco-Customer-Churn.csv'
    >>> preset_sources("telco", "../telco", base_dir="project")[0].path
    '../telco/WA_Fn-UseC_-Telco-Customer-Churn.csv'
    """
    preset = get_preset(name)
    data_dir = Path(data_dir)
    located = _located(data_dir, base_dir)
    specs = preset.sources(located)
    if located == data_dir:
        return specs
    # Looked at where the files are; written as the project file names them.
    return [
        spec.model_copy(
            update={"path": Path(data_dir, Path(spec.path).relative_to(located)).as_posix()}
        )
        if spec.path is not None and Path(spec.path).is_relative_to(located)
        else spec
        for spec in specs
    ]


def preset_data(
    name: str, data_dir: str | Path, *, base_dir: str | Path | None = None
) -> dict[str, Any]:
    """The ``[data]`` settings of preset ``name``: its defaults, then what the files say.

    ``churnwatch init`` should write these rather than :attr:`Preset.data`
    alone: for ``fightchurn`` the observation end is read off the
    simulation's files, for ``churnwatch_simulator`` off its manifest.

    Parameters
    ----------
    name : str
        The preset.
    data_dir : str or Path
        The folder of the files.
    base_dir : str or Path, optional
        The folder a relative ``data_dir`` is relative to, as in
        :func:`preset_sources`.

    Raises
    ------
    ConfigError
        If there is no such preset.

    Examples
    --------
    >>> preset_data("telco", "telco")
    {}
    """
    preset = get_preset(name)
    data = dict(preset.data)
    if preset.detect_data is not None:
        data.update(preset.detect_data(_located(Path(data_dir), base_dir)))
    return data
