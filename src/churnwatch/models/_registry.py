"""A folder of trained models: numbered versions, model cards and promotion.

Every saved model gets the next version of its name (``v1``, ``v2`` ...) and a
folder of its own::

    root/
    ├── registry.json          which version of each name is promoted, and when
    └── churn_30d/
        ├── v1/
        │   ├── model.joblib   the fitted model
        │   └── card.json      what it is: features, label, window, metrics, versions
        └── v2/ ...

The :class:`ModelCard` says what a model is without loading it: the features
and their specs, the label, the training window, the metrics, a fingerprint
of the training data and the versions of the libraries that fitted it.
Scoring applies the *promoted* version of each name, so a new model is only
used once someone promotes it.

Safety
------
- Versions are numbered by creating the version folder exclusively (one
  ``mkdir`` succeeds per number), so two processes saving at once never share
  a number. The next number is one more than the highest folder present.
- The card is written last, and every file is written to a temporary name and
  renamed: a save that crashes leaves a folder without ``card.json``, which
  :meth:`ModelRegistry.versions` ignores (and whose number is not reused).
- ``registry.json`` is rewritten whole under a lock file (on POSIX), so two
  promotions at once do not lose each other.
- ``model.joblib`` is a pickle: loading one runs code, so only load
  registries you trust.
"""

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
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib  # type: ignore[import-untyped, unused-ignore]
import numpy as np
import pandas as pd

import churnwatch
from churnwatch.errors import ChurnwatchError, ModelError
from churnwatch.features import FeatureSpec

if sys.platform != "win32":
    import fcntl

__all__ = [
    "LibraryVersionWarning",
    "LoadedModel",
    "ModelCard",
    "ModelRegistry",
    "check_features",
    "fingerprint",
    "library_versions",
]

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


@dataclass(frozen=True)
class LoadedModel:
    """A model read from the registry, with its card.

    Parameters
    ----------
    model : object
        The fitted model as it was saved.
    card : ModelCard
        What it is.
    """

    model: Any
    card: ModelCard


class ModelRegistry:
    """Saved models under ``root``, one folder per name and version.

    Parameters
    ----------
    root : path
        The registry folder; created on the first save.

    Examples
    --------
    >>> import tempfile
    >>> from sklearn.dummy import DummyClassifier
    >>> model = DummyClassifier().fit([[0], [1]], [0, 1])
    >>> with tempfile.TemporaryDirectory() as root:
    ...     registry = ModelRegistry(root)
    ...     first = registry.save(model, name="churn_30d", features=["x"],
    ...                           metrics={"roc_auc": 0.5}, data_fingerprint="abc")
    ...     second = registry.save(model, name="churn_30d", features=["x"],
    ...                            metrics={"roc_auc": 0.6}, data_fingerprint="abc")
    ...     _ = registry.promote("churn_30d", "v2")
    ...     loaded = registry.load("churn_30d")
    ...     [c.version for c in registry.versions("churn_30d")], loaded.card.version
    (['v1', 'v2'], 'v2')
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"ModelRegistry({str(self.root)!r})"

    # -- saving -----------------------------------------------------------

    def save(
        self,
        model: object,
        *,
        name: str,
        features: Sequence[str],
        metrics: Mapping[str, Any],
        data_fingerprint: str,
        feature_specs: Sequence[FeatureSpec | Mapping[str, Any]] | None = None,
        label_spec: Mapping[str, Any] | None = None,
        training_window: tuple[Any, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> ModelCard:
        """Save ``model`` as the next version of ``name``.

        Parameters
        ----------
        model : object
            A fitted model; anything joblib can pickle.
        name : str
            What it predicts: letters, digits, ``_`` and ``-``.
        features : sequence of str
            The feature columns it reads, in order.
        metrics : mapping
            Its held-out metrics.
        data_fingerprint : str
            :func:`fingerprint` of the training frame.
        feature_specs : sequence of FeatureSpec or dict, optional
            Specs of its warehouse features.
        label_spec : mapping, optional
            How the label was made.
        training_window : (start, end), optional
            First and last training cutoff: datetimes, dates or ISO strings.
        extra : mapping, optional
            Anything else JSON can hold.

        Returns
        -------
        ModelCard
            The new version's card (not promoted).

        Raises
        ------
        ModelError
            If the name is invalid, the model cannot be pickled, or a value
            cannot be written as JSON. Nothing is left behind.
        FeatureError
            If a feature spec is invalid (checked now rather than at scoring).
        """
        _check_name(name)
        card_data = {
            "name": name,
            "version": "",
            "created_at": _now(),
            "features": [str(f) for f in features],
            "feature_specs": (
                None if feature_specs is None else [_spec_dict(s) for s in feature_specs]
            ),
            "label_spec": None if label_spec is None else dict(label_spec),
            "training_window": (
                None
                if training_window is None
                else [_iso(training_window[0]), _iso(training_window[1])]
            ),
            "metrics": dict(metrics),
            "data_fingerprint": str(data_fingerprint),
            "libraries": library_versions(),
            "extra": {} if extra is None else dict(extra),
        }
        # Serialise before taking a version number: a bad value then costs nothing.
        _to_json({**card_data, "version": "v1"})
        folder = self._reserve_version(name)
        try:
            card_data["version"] = folder.name
            _write_atomic(folder / _MODEL, lambda path: joblib.dump(model, path))
            text = _to_json(card_data)
            # Last: the card is what makes the version exist for readers.
            _write_atomic(folder / _CARD, lambda path: path.write_text(text, encoding="utf-8"))
        except Exception as error:
            shutil.rmtree(folder, ignore_errors=True)
            if isinstance(error, ChurnwatchError):
                raise
            raise ModelError(
                f"cannot save model {name!r}: {type(error).__name__}: {error}"
            ) from error
        return ModelCard.from_dict(json.loads(text))

    def _reserve_version(self, name: str) -> Path:
        folder = self.root / name
        folder.mkdir(parents=True, exist_ok=True)
        number = max(self._numbers(name), default=0) + 1
        while True:
            candidate = folder / f"v{number}"
            try:
                # Exclusive: exactly one concurrent saver creates each folder.
                candidate.mkdir()
            except FileExistsError:
                number += 1
            else:
                return candidate

    def _numbers(self, name: str) -> list[int]:
        """Every version number with a folder, finished or not."""
        folder = self.root / name
        if not folder.is_dir():
            return []
        found = (_VERSION.match(child.name) for child in folder.iterdir() if child.is_dir())
        return [int(match.group(1)) for match in found if match]

    # -- reading ----------------------------------------------------------

    def names(self) -> list[str]:
        """Names with at least one saved version, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(
            child.name
            for child in self.root.iterdir()
            if child.is_dir() and _NAME.match(child.name) and self._finished(child.name)
        )

    def versions(self, name: str | None = None) -> list[ModelCard]:
        """Cards of every saved version, by name then version number.

        Parameters
        ----------
        name : str, optional
            Only this name's versions (none when it has none).

        Returns
        -------
        list of ModelCard
            With ``promoted`` and ``promoted_at`` filled in.
        """
        names = self.names() if name is None else [name]
        promoted = self._read_index()
        cards = []
        for each in names:
            _check_name(each)
            for number in sorted(self._finished(each)):
                cards.append(_with_promotion(self._read_card(each, f"v{number}"), promoted))
        return cards

    def _finished(self, name: str) -> list[int]:
        return [n for n in self._numbers(name) if (self.root / name / f"v{n}" / _CARD).is_file()]

    def card(self, name: str, version: str | int) -> ModelCard:
        """The card of one version.

        Parameters
        ----------
        name : str
        version : str or int
            ``"v2"`` or ``2``.

        Raises
        ------
        ModelError
            If there is no such version.
        """
        _check_name(name)
        version = _normalise_version(version)
        if not (self.root / name / version / _CARD).is_file():
            raise ModelError(self._no_version(name, version))
        return _with_promotion(self._read_card(name, version), self._read_index())

    def _read_card(self, name: str, version: str) -> ModelCard:
        path = self.root / name / version / _CARD
        try:
            return ModelCard.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError) as error:
            raise ModelError(
                f"cannot read {path}: {error}; the version is damaged -- delete its folder "
                "and train again"
            ) from error

    def _no_version(self, name: str, version: str) -> str:
        saved = [f"v{n}" for n in sorted(self._finished(name))]
        if not saved:
            return self._no_name(name)
        return f"no version {version} of {name!r}; saved versions: {', '.join(saved)}"

    def _no_name(self, name: str) -> str:
        known = self.names()
        return (
            f"no saved model named {name!r} in {self.root} "
            f"(saved: {', '.join(known) or 'none'}); train one with `churnwatch train`"
        )

    # -- promotion --------------------------------------------------------

    def promote(self, name: str, version: str | int) -> ModelCard:
        """Make ``version`` the one scoring applies for ``name``.

        The previously promoted version of the name, if any, stops being so.

        Returns
        -------
        ModelCard
            The promoted card.

        Raises
        ------
        ModelError
            If there is no such version.
        """
        version = _normalise_version(version)
        self.card(name, version)  # raises with the saved versions listed
        with self._locked():
            index = self._read_index()
            index[name] = {"version": version, "promoted_at": _now()}
            text = json.dumps({"promoted": dict(sorted(index.items()))}, indent=2) + "\n"
            _write_atomic(self.root / _INDEX, lambda path: path.write_text(text, "utf-8"))
        return self.card(name, version)

    def promoted(self) -> dict[str, ModelCard]:
        """The promoted card of each name that has one.

        Raises
        ------
        ModelError
            If a promoted version's folder has gone.
        """
        found = {}
        for name, entry in sorted(self._read_index().items()):
            if not (self.root / name / entry["version"] / _CARD).is_file():
                raise ModelError(
                    f"{name!r} {entry['version']} is promoted but its folder is gone; "
                    f"promote another version with `churnwatch models promote {name} VERSION`"
                )
            found[name] = self.card(name, entry["version"])
        return found

    def _read_index(self) -> dict[str, dict[str, str]]:
        path = self.root / _INDEX
        if not path.is_file():
            return {}
        try:
            promoted = json.loads(path.read_text(encoding="utf-8"))["promoted"]
            return {
                str(name): {"version": str(e["version"]), "promoted_at": str(e["promoted_at"])}
                for name, e in promoted.items()
            }
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            raise ModelError(
                f"cannot read {path} ({type(error).__name__}: {error}); delete it and "
                "promote the models again"
            ) from error

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / _LOCK, "a+b") as lock:
            if sys.platform != "win32":
                fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                if sys.platform != "win32":
                    fcntl.flock(lock, fcntl.LOCK_UN)

    # -- loading ----------------------------------------------------------

    def load(self, name: str, version: str | int | None = None) -> LoadedModel:
        """Read a model and its card.

        Warns with :class:`LibraryVersionWarning` when the card records
        another major.minor release of scikit-learn or LightGBM than the one
        installed.

        Parameters
        ----------
        name : str
        version : str or int, optional
            Default: the promoted version.

        Raises
        ------
        ModelError
            If nothing is promoted (and no version is given), the version does
            not exist, or the model file cannot be read.
        """
        _check_name(name)
        if version is None:
            entry = self._read_index().get(name)
            if entry is None:
                saved = self._finished(name)
                if not saved:
                    raise ModelError(self._no_name(name))
                raise ModelError(
                    f"no promoted version of {name!r}; promote one with "
                    f"`churnwatch models promote {name} v{max(saved)}`"
                )
            version = entry["version"]
        card = self.card(name, version)
        installed = library_versions()
        for library in _CHECKED_LIBRARIES:
            saved_with = card.libraries.get(library)
            if saved_with and _minor(saved_with) != _minor(installed[library]):
                warnings.warn(
                    f"{name} {card.version} was saved with {library} {saved_with} but "
                    f"{installed[library]} is installed: it may predict differently; "
                    f"retrain it, or install {library} {_minor(saved_with)}",
                    LibraryVersionWarning,
                    stacklevel=2,
                )
        path = self.root / name / card.version / _MODEL
        try:
            model = joblib.load(path)
        except Exception as error:
            raise ModelError(
                f"cannot load {path} ({type(error).__name__}: {error}); retrain the model "
                f"or install the libraries its card lists: {_libraries_text(card)}"
            ) from error
        return LoadedModel(model=model, card=card)

    @staticmethod
    def check_features(card: ModelCard, specs: Sequence[FeatureSpec | Mapping[str, Any]]) -> None:
        """The same as the module function :func:`check_features`."""
        check_features(card, specs)


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
