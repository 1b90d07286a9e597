"""A model's card (what it was trained on, how well it did, with what) and the checks on it."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import importlib.metadata
import json
import os
import platform
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import churnwatch
from churnwatch.errors import ModelError
from churnwatch.features import FeatureSpec

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,99}$")
_VERSION = re.compile(r"^v([1-9][0-9]*)$")
_CARD = "card.json"
_MODEL = "model.joblib"
_INDEX = "registry.json"
_LOCK = ".registry.lock"
#: Libraries whose pickles may not load, or may predict differently, across
#: minor releases: a card recording another major.minor warns on load.
_CHECKED_LIBRARIES = ("sklearn", "lightgbm")
_DISTRIBUTIONS = {
    "sklearn": "scikit-learn",
    "lightgbm": "lightgbm",
    "numpy": "numpy",
    "pandas": "pandas",
    "joblib": "joblib",
}
#: Spec fields that change no value: a new description needs no retraining.
_COSMETIC = frozenset({"description"})


class LibraryVersionWarning(UserWarning):
    """A model was saved with another major.minor release of scikit-learn or LightGBM.

    The model may fail to load or predict slightly differently; retrain it
    with the installed libraries, or install the ones its card lists.
    """


def library_versions() -> dict[str, str]:
    """Versions of Python, Churnwatch and the modelling libraries installed now.

    A library that is not installed is reported as ``"not installed"``.

    Examples
    --------
    >>> sorted(library_versions())
    ['churnwatch', 'joblib', 'lightgbm', 'numpy', 'pandas', 'python', 'sklearn']
    """
    found = {"python": platform.python_version(), "churnwatch": churnwatch.__version__}
    for key, distribution in _DISTRIBUTIONS.items():
        # Metadata, not an import: importing LightGBM only to read its version is slow.
        try:
            found[key] = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            found[key] = "not installed"
    return found


@dataclass(frozen=True)
class ModelCard:
    """What a saved model is, readable without loading it.

    Parameters
    ----------
    name : str
        What the model predicts, usually the target column (``churn_30d``).
    version : str
        ``v1``, ``v2`` ... per name, in the order they were saved.
    created_at : str
        When it was saved, ISO 8601 in UTC.
    features : list of str
        The feature columns, in the order the model reads them.
    feature_specs : list of dict or None
        The :class:`~churnwatch.features.FeatureSpec` of each warehouse
        feature as :meth:`~churnwatch.features.FeatureSpec.to_dict` writes it;
        ``None`` when the model was trained on a frame without specs.
    label_spec : dict or None
        How the label was made.
    training_window : (str, str) or None
        First and last training cutoff, ISO 8601.
    metrics : dict
        Held-out metrics (``roc_auc``, ``brier`` ...).
    data_fingerprint : str
        :func:`fingerprint` of the training frame.
    libraries : dict of str to str
        :func:`library_versions` when it was saved.
    extra : dict
        Anything else JSON can hold (a drift profile, parameters, notes).
    promoted : bool
        Whether this version is the promoted one of its name; filled in by
        the registry when it lists cards, not stored in ``card.json``.
    promoted_at : str or None
        When it was promoted (ISO 8601 UTC), if it is.

    Examples
    --------
    >>> card = ModelCard("churn_30d", "v1", "2024-05-01T00:00:00+00:00", features=["logins_30d"])
    >>> ModelCard.from_dict(card.to_dict()) == card
    True
    """

    name: str
    version: str
    created_at: str
    features: list[str] = field(default_factory=list)
    feature_specs: list[dict[str, Any]] | None = None
    label_spec: dict[str, Any] | None = None
    training_window: tuple[str, str] | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    data_fingerprint: str = ""
    libraries: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    promoted: bool = False
    promoted_at: str | None = None

    @property
    def version_number(self) -> int:
        """The version as a number (``v12`` -> 12), for sorting."""
        return _version_number(self.version)

    def to_dict(self) -> dict[str, Any]:
        """The card as JSON-ready types."""
        data = dataclasses.asdict(self)
        if self.training_window is not None:
            data["training_window"] = list(self.training_window)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelCard:
        """Read a card written by :meth:`to_dict`; unknown keys are ignored.

        Ignoring unknown keys lets an older Churnwatch read a card that a newer
        one wrote with more fields.

        Raises
        ------
        ModelError
            If ``name``, ``version`` or ``created_at`` is missing.
        """
        missing = [key for key in ("name", "version", "created_at") if key not in data]
        if missing:
            raise ModelError(f"the model card lacks {', '.join(missing)}; it is damaged")
        known = {f.name for f in dataclasses.fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        window = values.get("training_window")
        if window is not None:
            values["training_window"] = (str(window[0]), str(window[1]))
        return cls(**values)


def check_features(card: ModelCard, specs: Sequence[FeatureSpec | Mapping[str, Any]]) -> None:
    """Check that ``specs`` are exactly the feature specs ``card`` was trained with.

    Parameters
    ----------
    card : ModelCard
        The saved model's card.
    specs : sequence of FeatureSpec or dict
        The features about to be computed for it.

    Raises
    ------
    ModelError
        Naming the features added, removed or changed (with the fields that
        differ), or when the card holds no feature specs. A changed
        ``description`` alone is not a change: it alters no value.

    Examples
    --------
    >>> logins = FeatureSpec("logins_30d", "aggregate", "count", window_days=30)
    >>> card = ModelCard("churn_30d", "v1", "2024-05-01T00:00:00+00:00",
    ...                  features=["logins_30d"], feature_specs=[logins.to_dict()])
    >>> check_features(card, [logins])
    >>> check_features(card, [FeatureSpec("logins_30d", "aggregate", "count", window_days=7)])
    Traceback (most recent call last):
    ...
    churnwatch.errors.ModelError: churn_30d v1 was trained on other features: changed logins_30d (window_days 30 -> 7); retrain it on the current features or restore the old definitions
    """  # noqa: E501
    if card.feature_specs is None:
        raise ModelError(
            f"{card.name} {card.version} was saved without feature specs (trained on a "
            "frame, not on warehouse features), so its features cannot be checked"
        )
    saved = {s.name: s for s in (_spec(d) for d in card.feature_specs)}
    given = {s.name: s for s in (_spec(d) for d in specs)}
    problems = []
    added = [name for name in given if name not in saved]
    removed = [name for name in saved if name not in given]
    if added:
        problems.append(f"added {', '.join(added)}")
    if removed:
        problems.append(f"removed {', '.join(removed)}")
    changed = []
    for name in saved.keys() & given.keys():
        old, new = saved[name].to_dict(), given[name].to_dict()
        keys = sorted((old.keys() | new.keys()) - _COSMETIC)
        diffs = [f"{k} {old.get(k)} -> {new.get(k)}" for k in keys if old.get(k) != new.get(k)]
        if diffs:
            changed.append(f"{name} ({'; '.join(diffs)})")
    if changed:
        problems.append(f"changed {', '.join(sorted(changed))}")
    if problems:
        raise ModelError(
            f"{card.name} {card.version} was trained on other features: {', '.join(problems)}; "
            "retrain it on the current features or restore the old definitions"
        )


def fingerprint(frame: pd.DataFrame) -> str:
    """A SHA-256 of a frame's content that ignores the order of rows and columns.

    Two frames get the same fingerprint when they hold the same columns
    (names and dtypes) and the same rows, whatever their order: each row is
    hashed (``pandas.util.hash_pandas_object``, index ignored), the row hashes
    are sorted, and the column header and sorted hashes go through SHA-256.
    Sorting the row hashes rather than the rows by ``account_id`` and
    ``cutoff`` makes it order-free even when keys repeat or are absent. The
    row hashes come from pandas, so a fingerprint is stable for one pandas
    release line rather than forever.

    Parameters
    ----------
    frame : pandas.DataFrame

    Returns
    -------
    str
        64 hexadecimal digits.

    Raises
    ------
    ModelError
        If a column holds values pandas cannot hash (lists, dicts).

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"account_id": ["a", "b"], "logins_30d": [3, 0]})
    >>> fingerprint(frame) == fingerprint(frame.iloc[::-1])
    True
    >>> fingerprint(frame) == fingerprint(frame.assign(logins_30d=[3, 1]))
    False
    """
    columns = sorted(frame.columns, key=str)
    ordered = frame.loc[:, columns]
    digest = hashlib.sha256()
    header = [[str(c), str(ordered[c].dtype)] for c in columns]
    digest.update(json.dumps({"columns": header, "rows": len(frame)}).encode())
    if columns and len(frame):
        try:
            rows = pd.util.hash_pandas_object(ordered, index=False).to_numpy(dtype=np.uint64)
        except TypeError as error:
            raise ModelError(
                f"cannot fingerprint the frame: {error}; its columns must hold numbers, "
                "text or timestamps"
            ) from error
        digest.update(np.sort(rows).tobytes())
    return digest.hexdigest()


# -- helpers ------------------------------------------------------------------


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ModelError(
            f"model name {name!r} is not usable as a folder name: use 1-100 letters, "
            "digits, '_' or '-', not starting with '-'"
        )


def _normalise_version(version: str | int) -> str:
    if isinstance(version, int) and not isinstance(version, bool) and version >= 1:
        return f"v{version}"
    if isinstance(version, str) and _VERSION.match(version):
        return version
    raise ModelError(f"a version is written v1, v2 ... (or 1, 2 ...), not {version!r}")


def _version_number(version: str) -> int:
    match = _VERSION.match(version)
    if match is None:
        raise ModelError(f"a version is written v1, v2 ..., not {version!r}")
    return int(match.group(1))


def _with_promotion(card: ModelCard, index: Mapping[str, Mapping[str, str]]) -> ModelCard:
    entry = index.get(card.name)
    if entry is None or entry["version"] != card.version:
        return dataclasses.replace(card, promoted=False, promoted_at=None)
    return dataclasses.replace(card, promoted=True, promoted_at=entry["promoted_at"])


def _spec(spec: FeatureSpec | Mapping[str, Any]) -> FeatureSpec:
    return spec if isinstance(spec, FeatureSpec) else FeatureSpec.from_dict(spec)


def _spec_dict(spec: FeatureSpec | Mapping[str, Any]) -> dict[str, Any]:
    # Through FeatureSpec so an invalid spec fails at save time, not at scoring.
    return _spec(spec).to_dict()


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _iso(moment: Any) -> str:
    if isinstance(moment, str):
        return moment
    if isinstance(moment, dt.datetime | dt.date | pd.Timestamp | np.datetime64):
        stamp = pd.Timestamp(moment)
        return stamp.isoformat()
    raise ModelError(f"a training window bound is a datetime, date or ISO string, not {moment!r}")


def _json_default(value: Any) -> Any:
    # numpy scalars and arrays, timestamps and paths are common in metrics and
    # extras; anything else is refused rather than silently turned to text.
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dt.datetime | dt.date | pd.Timestamp):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _to_json(data: Mapping[str, Any]) -> str:
    try:
        return json.dumps(data, indent=2, default=_json_default) + "\n"
    except (TypeError, ValueError) as error:
        raise ModelError(
            f"cannot write the model card: {error}; metrics, label_spec and extra must "
            "hold numbers, text, lists and dicts"
        ) from error


def _write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    """Write ``path`` through ``write(temporary path)``, then rename it into place."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        write(Path(temporary))
        # A rename within one folder is atomic: readers see the old file or the new one.
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def _libraries_text(card: ModelCard) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(card.libraries.items())) or "none recorded"
