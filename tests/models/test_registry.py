"""The model registry: numbering, crash safety, promotion, loading and fingerprints."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression

from churnwatch.errors import FeatureError, ModelError
from churnwatch.features import FeatureSpec
from churnwatch.models._drift import DriftProfile
from churnwatch.models._registry import (
    LibraryVersionWarning,
    ModelCard,
    ModelRegistry,
    check_features,
    fingerprint,
)

FEATURES = ["logins_30d", "tenure_days"]
SPECS = [
    FeatureSpec("logins_30d", "aggregate", "count", window_days=30, event_type="login"),
    FeatureSpec("tenure_days", "tenure"),
]


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    logins = rng.poisson(5, 80).astype(float)
    tenure = rng.uniform(0, 400, 80)
    churn = (logins + rng.normal(0, 2, 80) < 5).astype(float)
    return pd.DataFrame(
        {
            "account_id": [f"a{i}" for i in range(80)],
            "logins_30d": logins,
            "tenure_days": tenure,
            "churn_30d": churn,
        }
    )


@pytest.fixture(scope="module")
def model(frame: pd.DataFrame) -> LogisticRegression:
    return LogisticRegression().fit(frame[FEATURES], frame["churn_30d"])


def _save(registry: ModelRegistry, model: object, name: str = "churn_30d", **extra: Any) -> Any:
    return registry.save(
        model,
        name=name,
        features=FEATURES,
        metrics={"roc_auc": 0.8},
        data_fingerprint="f" * 64,
        **extra,
    )


def test_versions_count_up_per_name(tmp_path: Path, model: LogisticRegression) -> None:
    registry = ModelRegistry(tmp_path)
    assert [_save(registry, model).version for _ in range(3)] == ["v1", "v2", "v3"]
    assert _save(registry, model, name="sessions_30d").version == "v1"
    assert [(c.name, c.version) for c in registry.versions()] == [
        ("churn_30d", "v1"),
        ("churn_30d", "v2"),
        ("churn_30d", "v3"),
        ("sessions_30d", "v1"),
    ]
    assert registry.names() == ["churn_30d", "sessions_30d"]


def test_versions_sort_by_number_not_text(tmp_path: Path, model: LogisticRegression) -> None:
    registry = ModelRegistry(tmp_path)
    for _ in range(11):
        _save(registry, model)
    assert [c.version_number for c in registry.versions("churn_30d")] == list(range(1, 12))


def test_a_crashed_save_is_not_listed_and_its_number_not_reused(
    tmp_path: Path, model: LogisticRegression
) -> None:
    registry = ModelRegistry(tmp_path)
    _save(registry, model)
    # What a save that died before writing its card leaves behind.
    (tmp_path / "churn_30d" / "v2").mkdir()
    (tmp_path / "churn_30d" / "v2" / "model.joblib").write_bytes(b"half")
    assert [c.version for c in registry.versions("churn_30d")] == ["v1"]
    assert _save(registry, model).version == "v3"
    with pytest.raises(ModelError, match=r"no version v2 of 'churn_30d'; saved versions: v1, v3"):
        registry.card("churn_30d", "v2")


def test_concurrent_saves_never_share_a_version(
    tmp_path: Path, model: LogisticRegression, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = ModelRegistry(tmp_path)
    numbers = ModelRegistry._numbers

    def slow_numbers(self: ModelRegistry, name: str) -> list[int]:
        # Widen the race: every saver reads the same highest version before any
        # creates a folder, so only the exclusive mkdir keeps them apart.
        found = numbers(self, name)
        time.sleep(0.05)
        return found

    monkeypatch.setattr(ModelRegistry, "_numbers", slow_numbers)
    threads = 8
    start = threading.Barrier(threads)
    versions: list[str] = []
    errors: list[BaseException] = []

    def save() -> None:
        try:
            start.wait()
            versions.append(_save(registry, model).version)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    workers = [threading.Thread(target=save) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    assert sorted(versions, key=lambda v: int(v[1:])) == [f"v{i}" for i in range(1, threads + 1)]
    assert len(registry.versions("churn_30d")) == threads


def test_promote_and_load_give_identical_predictions(
    tmp_path: Path, frame: pd.DataFrame, model: LogisticRegression
) -> None:
    registry = ModelRegistry(tmp_path)
    profile = DriftProfile.fit(frame, FEATURES)
    saved = registry.save(
        model,
        name="churn_30d",
        features=FEATURES,
        feature_specs=SPECS,
        label_spec={"kind": "inactivity", "horizon_days": 30},
        training_window=(pd.Timestamp("2024-01-01", tz="UTC"), "2024-06-01T00:00:00+00:00"),
        metrics={"roc_auc": np.float64(0.81), "n": np.int64(80)},
        data_fingerprint=fingerprint(frame),
        extra={"drift": profile.to_dict()},
    )
    _save(registry, LogisticRegression(C=0.01).fit(frame[FEATURES], frame["churn_30d"]))
    promoted = registry.promote("churn_30d", "v1")
    assert promoted.promoted
    assert promoted.promoted_at is not None

    loaded = registry.load("churn_30d")
    assert loaded.card == promoted
    np.testing.assert_array_equal(
        loaded.model.predict_proba(frame[FEATURES]), model.predict_proba(frame[FEATURES])
    )
    card = loaded.card
    assert card.features == FEATURES
    assert [FeatureSpec.from_dict(s) for s in card.feature_specs or []] == SPECS
    assert card.label_spec == {"kind": "inactivity", "horizon_days": 30}
    assert card.training_window == ("2024-01-01T00:00:00+00:00", "2024-06-01T00:00:00+00:00")
    assert card.metrics == {"roc_auc": 0.81, "n": 80}
    assert card.data_fingerprint == fingerprint(frame)
    assert DriftProfile.from_dict(card.extra["drift"]) == profile
    assert set(card.libraries) >= {"python", "churnwatch", "sklearn", "lightgbm", "numpy"}
    # The card save returned is the stored one, apart from the promotion.
    assert saved == dataclasses.replace(card, promoted=False, promoted_at=None)
    assert ModelCard.from_dict(json.loads(json.dumps(card.to_dict()))) == card


def test_one_promoted_version_per_name(tmp_path: Path, model: LogisticRegression) -> None:
    registry = ModelRegistry(tmp_path)
    for _ in range(2):
        _save(registry, model)
    _save(registry, model, name="sessions_30d")
    registry.promote("churn_30d", "v1")
    registry.promote("sessions_30d", 1)
    registry.promote("churn_30d", "v2")
    flags = {(c.name, c.version): c.promoted for c in registry.versions()}
    assert flags == {
        ("churn_30d", "v1"): False,
        ("churn_30d", "v2"): True,
        ("sessions_30d", "v1"): True,
    }
    assert {name: card.version for name, card in registry.promoted().items()} == {
        "churn_30d": "v2",
        "sessions_30d": "v1",
    }
    assert registry.load("churn_30d", "v1").card.version == "v1"
    written = json.loads((tmp_path / "registry.json").read_text())
    assert written["promoted"]["churn_30d"]["version"] == "v2"


def test_concurrent_promotions_keep_each_other(
    tmp_path: Path, model: LogisticRegression, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = ModelRegistry(tmp_path)
    names = [f"target_{i}" for i in range(4)]
    for name in names:
        _save(registry, model, name=name)
    read_index = ModelRegistry._read_index

    def slow_read_index(self: ModelRegistry) -> dict[str, dict[str, str]]:
        # Every promoter reads registry.json before any writes it back: without
        # the lock, the last writer would drop the others' promotions.
        found = read_index(self)
        time.sleep(0.05)
        return found

    monkeypatch.setattr(ModelRegistry, "_read_index", slow_read_index)
    workers = [threading.Thread(target=registry.promote, args=(name, "v1")) for name in names]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert sorted(registry.promoted()) == names


def test_load_says_what_to_do(tmp_path: Path, model: LogisticRegression) -> None:
    registry = ModelRegistry(tmp_path)
    with pytest.raises(ModelError, match=r"no saved model named 'churn_30d'.*churnwatch train"):
        registry.load("churn_30d")
    _save(registry, model)
    _save(registry, model)
    with pytest.raises(
        ModelError,
        match=r"no promoted version of 'churn_30d'; promote one with "
        r"`churnwatch models promote churn_30d v2`",
    ):
        registry.load("churn_30d")
    with pytest.raises(ModelError, match="no version v7 of 'churn_30d'; saved versions: v1, v2"):
        registry.promote("churn_30d", "v7")
    with pytest.raises(ModelError, match="a version is written v1, v2"):
        registry.load("churn_30d", "seven")


def test_a_deleted_promoted_version_is_reported(tmp_path: Path, model: LogisticRegression) -> None:
    registry = ModelRegistry(tmp_path)
    _save(registry, model)
    registry.promote("churn_30d", "v1")
    (tmp_path / "churn_30d" / "v1" / "card.json").unlink()
    with pytest.raises(ModelError, match="promoted but its folder is gone"):
        registry.promoted()


def test_loading_warns_when_library_versions_differ(
    tmp_path: Path, model: LogisticRegression
) -> None:
    registry = ModelRegistry(tmp_path)
    _save(registry, model)
    path = tmp_path / "churn_30d" / "v1" / "card.json"
    card = json.loads(path.read_text())
    card["libraries"]["sklearn"] = "0.24.2"
    path.write_text(json.dumps(card))
    with pytest.warns(LibraryVersionWarning, match=r"sklearn 0\.24\.2") as caught:
        registry.load("churn_30d", "v1")
    # stacklevel=2: the warning points at the caller's line, not the registry's.
    assert caught[0].filename == __file__


def test_loading_the_same_libraries_does_not_warn(
    tmp_path: Path, model: LogisticRegression
) -> None:
    registry = ModelRegistry(tmp_path)
    _save(registry, model)
    registry.load("churn_30d", "v1")  # warnings are errors in this suite


def test_bad_saves_leave_nothing_behind(tmp_path: Path, model: LogisticRegression) -> None:
    registry = ModelRegistry(tmp_path)
    with pytest.raises(ModelError, match="cannot save model 'churn_30d'"):
        _save(registry, lambda rows: rows)  # a lambda cannot be pickled
    with pytest.raises(ModelError, match="cannot write the model card"):
        _save(registry, model, extra={"callback": print})
    with pytest.raises(ModelError, match="not usable as a folder name"):
        _save(registry, model, name="../escape")
    with pytest.raises(FeatureError):
        _save(registry, model, feature_specs=[{"name": "x", "kind": "nonsense"}])
    assert registry.versions() == []
    assert not list(tmp_path.rglob("*.tmp"))
    assert _save(registry, model).version == "v1"


def test_a_damaged_index_is_reported(tmp_path: Path, model: LogisticRegression) -> None:
    registry = ModelRegistry(tmp_path)
    _save(registry, model)
    (tmp_path / "registry.json").write_text("{not json")
    with pytest.raises(ModelError, match=r"registry\.json.*delete it"):
        registry.promoted()


def test_check_features_names_what_differs() -> None:
    card = ModelCard(
        "churn_30d",
        "v3",
        "2024-05-01T00:00:00+00:00",
        features=FEATURES,
        feature_specs=[s.to_dict() for s in SPECS],
    )
    check_features(card, SPECS)
    check_features(card, [s.to_dict() for s in reversed(SPECS)])
    renamed = FeatureSpec(
        "logins_30d", "aggregate", "count", window_days=30, event_type="login", description="x"
    )
    check_features(card, [renamed, SPECS[1]])  # a new description changes no value
    fewer_days = FeatureSpec("logins_30d", "aggregate", "count", window_days=14)
    with pytest.raises(ModelError) as raised:
        check_features(
            card, [fewer_days, SPECS[1], FeatureSpec("plan", "attribute", column="plan")]
        )
    message = str(raised.value)
    assert "churn_30d v3" in message
    assert "added plan" in message
    assert "changed logins_30d (event_type login -> None; window_days 30 -> 14)" in message
    assert "tenure_days" not in message
    with pytest.raises(ModelError, match="removed tenure_days"):
        ModelRegistry.check_features(card, SPECS[:1])
    with pytest.raises(ModelError, match="saved without feature specs"):
        check_features(ModelCard("m", "v1", "2024-05-01T00:00:00+00:00"), SPECS)


def test_fingerprint_ignores_order_but_not_content(frame: pd.DataFrame) -> None:
    print_ = fingerprint(frame)
    assert len(print_) == 64
    assert fingerprint(frame.iloc[::-1]) == print_
    assert fingerprint(frame.sample(frac=1.0, random_state=1).reset_index(drop=True)) == print_
    assert fingerprint(frame[frame.columns[::-1]]) == print_
    changed = frame.copy()
    changed.loc[5, "tenure_days"] += 1e-9
    assert fingerprint(changed) != print_
    assert fingerprint(frame.astype({"churn_30d": "int64"})) != print_
    assert fingerprint(frame.rename(columns={"churn_30d": "churn_60d"})) != print_
    assert fingerprint(frame.iloc[:-1]) != print_
    # A repeated row is content too.
    assert fingerprint(pd.concat([frame, frame.iloc[:1]])) != print_


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(st.one_of(st.floats(allow_nan=True), st.none()), min_size=1, max_size=30),
    seed=st.integers(0, 2**16),
)
def test_fingerprint_is_the_same_for_any_row_order(values: list[float | None], seed: int) -> None:
    frame = pd.DataFrame(
        {
            "account_id": [f"a{i % 7}" for i in range(len(values))],
            "cutoff": pd.Timestamp("2024-01-01", tz="UTC"),
            "x": pd.Series(values, dtype=float),
        }
    )
    assert fingerprint(frame.sample(frac=1.0, random_state=seed)) == fingerprint(frame)
