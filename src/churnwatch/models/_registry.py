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
import json
import os
import shutil
import sys
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib  # type: ignore[import-untyped, unused-ignore]

from churnwatch.errors import ChurnwatchError, ModelError
from churnwatch.features import FeatureSpec
from churnwatch.models._card import (
    _CARD,
    _CHECKED_LIBRARIES,
    _INDEX,
    _LOCK,
    _MODEL,
    _NAME,
    _VERSION,
    LibraryVersionWarning,
    ModelCard,
    _check_name,
    _iso,
    _libraries_text,
    _minor,
    _normalise_version,
    _now,
    _spec_dict,
    _to_json,
    _with_promotion,
    _write_atomic,
    check_features,
    fingerprint,
    library_versions,
)

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
