"""PrivacyCheckpoint and the PrivacyTarget's utility awareness (issue 11)."""

import warnings

import keras
import numpy as np
import pytest

import keras_adamixup
from keras_adamixup import PrivacyCheckpoint, PrivacyMonitor, PrivacyTarget
from tests.conftest import SPARSE_CE, small_mlp


# -- the controller's ceiling on a synthetic plant ------------------------------


def controlled(schedule, plant, steps=12):
    """Drives a bound PrivacyTarget with `plant(strength) -> (auc, accuracy)`."""
    keras_adamixup.AdaMixupModel(small_mlp(), schedule=schedule)  # binds the state
    strengths = []
    strength = schedule.initial
    for _ in range(steps):
        auc, accuracy = plant(strength)
        strength = schedule.update(auc, accuracy=accuracy)
        strengths.append(strength)
    return np.array(strengths)


def test_accuracy_budget_caps_the_strength():
    # leakage falls slowly with mixing, accuracy falls fast: 0.9 - 0.2·s
    plant = lambda s: (0.70 - 0.1 * s, 0.90 - 0.2 * s)  # noqa: E731
    free = controlled(PrivacyTarget(0.55, initial=0.0), plant)
    assert free[-1] == 0.5  # unreachable target: saturates, paying 10 points
    budget = controlled(PrivacyTarget(0.55, initial=0.0, max_accuracy_drop=0.01), plant)
    # 0.1 → accuracy 0.88, 2 points below the best (0.90): back to 0.0 and capped
    assert budget.max() == pytest.approx(0.1)
    assert budget[-1] == pytest.approx(0.0, abs=1e-6)
    # a budget that the plant respects changes nothing
    cheap = lambda s: (0.70 - 0.1 * s, 0.90)  # noqa: E731
    assert controlled(PrivacyTarget(0.55, initial=0.0, max_accuracy_drop=0.01), cheap)[-1] == 0.5


def test_backoff_when_raising_does_not_cut_leakage():
    flat = lambda s: (0.70, 0.90)  # noqa: E731 - mixing does nothing for leakage
    strengths = controlled(PrivacyTarget(0.55, initial=0.0, backoff_patience=2), flat)
    assert strengths.max() == pytest.approx(0.2)  # two raises, then one more is refused
    assert strengths[-1] == pytest.approx(0.0, abs=1e-6)
    # where raising works, the controller keeps raising
    working = lambda s: (0.70 - 0.5 * s, 0.90)  # noqa: E731
    strengths = controlled(PrivacyTarget(0.55, initial=0.0, backoff_patience=2), working)
    assert strengths[-1] == pytest.approx(0.3, abs=0.02)


def test_utility_options_round_trip():
    schedule = PrivacyTarget(0.55, max_accuracy_drop=0.01, backoff_patience=3)
    again = PrivacyTarget.from_config(schedule.get_config())
    assert again.max_accuracy_drop == 0.01 and again.backoff_patience == 3
    with pytest.raises(ValueError, match="`max_accuracy_drop` must be in"):
        PrivacyTarget(max_accuracy_drop=2.0)
    with pytest.raises(TypeError, match="`backoff_patience` must be an int"):
        PrivacyTarget(backoff_patience=1.5)


# -- the checkpoint --------------------------------------------------------------


def _memorizing_data(seed=0):
    """Digits with 40 % random labels (members and hold-out alike): accuracy peaks, then memorization."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    x, y = x[order], y[order].copy()
    noisy = rng.random(len(y)) < 0.4
    y[noisy] = rng.integers(0, 10, noisy.sum())
    return (x[:600], y[:600]), (x[1200:1500], y[1200:1500])


def _plain_setup():
    """Noisy digits, a plain (unmixed) Keras MLP and a monitor of its training data."""
    (x, y), holdout = _memorizing_data()
    model = small_mlp(hidden=256, seed=None)
    model.compile(keras.optimizers.Adam(3e-3), SPARSE_CE)
    return (x, y), model, PrivacyMonitor.from_training(x, y, holdout)


def test_checkpoint_restores_the_most_accurate_eligible_epoch():
    (x, y), holdout = _memorizing_data()
    model = keras_adamixup.AdaMixupModel(small_mlp(hidden=256), schedule=0.0, seed=0)
    model.compile(keras.optimizers.Adam(3e-3), SPARSE_CE)
    monitor = PrivacyMonitor.from_training(x, y, holdout)
    checkpoint = PrivacyCheckpoint(monitor, target_auc=None, score="accuracy")
    model.fit(x, y, epochs=25, batch_size=32, callbacks=[checkpoint, monitor], verbose=0)
    accuracies = [r["holdout_accuracy"] for r in monitor.records]
    assert len(accuracies) == 25  # one measurement per epoch, whatever the order
    best = int(np.argmax(accuracies))
    assert checkpoint.best_epoch == best
    restored = monitor.measure()  # the restored weights measure as the kept epoch did
    assert restored["holdout_accuracy"] == pytest.approx(accuracies[best])
    assert restored["auc"] == pytest.approx(monitor.records[best]["auc"], abs=1e-6)
    # memorizing 40 % random labels: the last epoch leaks more than the kept one
    assert monitor.records[-1]["auc"] > monitor.records[best]["auc"]


def test_checkpoint_respects_the_target_and_stops():
    (x, y), model, monitor = _plain_setup()
    target = 0.6
    checkpoint = PrivacyCheckpoint(monitor, target_auc=target, patience=4)  # score="loss"
    model.fit(x, y, epochs=60, batch_size=32, callbacks=[monitor, checkpoint], verbose=0)
    records = monitor.records
    eligible = [r for r in records if r["auc"] <= target]
    assert eligible and checkpoint.best["auc"] <= target
    assert checkpoint.best["holdout_loss"] == min(r["holdout_loss"] for r in eligible)
    assert checkpoint.stopped_epoch is not None and len(records) < 60
    assert len(records) - 1 - checkpoint.best_epoch >= 4
    assert monitor.measure()["auc"] == pytest.approx(checkpoint.best["auc"], abs=1e-6)


def test_checkpoint_without_an_eligible_epoch_warns_and_keeps_the_least_leaky():
    (x, y), holdout = _memorizing_data()
    model = keras_adamixup.AdaMixupModel(small_mlp(hidden=256), schedule=0.0, seed=0)
    model.compile(keras.optimizers.Adam(3e-3), SPARSE_CE)
    monitor = PrivacyMonitor.from_training(x, y, holdout)
    checkpoint = PrivacyCheckpoint(monitor, target_auc=0.01)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(x, y, epochs=5, batch_size=32, callbacks=[monitor, checkpoint], verbose=0)
    assert any(issubclass(w.category, keras_adamixup.checkpoint.CheckpointWarning)
               for w in caught)
    aucs = [r["auc"] for r in monitor.records]
    assert checkpoint.best_epoch == int(np.argmin(aucs))


def test_checkpoint_reads_the_target_of_the_privacy_target_schedule():
    (x, y), holdout = _memorizing_data()
    model = keras_adamixup.AdaMixupModel(small_mlp(), schedule=PrivacyTarget(0.57), seed=0)
    monitor = PrivacyMonitor.from_training(x, y, holdout)
    checkpoint = PrivacyCheckpoint(monitor)
    model.compile("adam", SPARSE_CE)
    model.fit(x, y, epochs=2, batch_size=64, callbacks=[monitor, checkpoint], verbose=0)
    assert checkpoint._target() == 0.57
    with pytest.raises(TypeError, match="`monitor` must be the PrivacyMonitor"):
        PrivacyCheckpoint("monitor")
    with pytest.raises(ValueError, match="`score` must be one of"):
        PrivacyCheckpoint(monitor, score="auc")


def test_accuracy_budget_overrides_a_costly_target():
    (x, y), model, monitor = _plain_setup()
    # a target only the first, barely trained epoch meets
    checkpoint = PrivacyCheckpoint(monitor, target_auc=0.0 + 1e-9, score="accuracy",
                                   max_accuracy_drop=0.03)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(x, y, epochs=15, batch_size=32, callbacks=[monitor, checkpoint], verbose=0)
    best = max(r["holdout_accuracy"] for r in monitor.records)
    band = [r for r in monitor.records if r["holdout_accuracy"] >= best - 0.03]
    assert checkpoint.best["holdout_accuracy"] >= best - 0.03
    assert checkpoint.best["auc"] == min(r["auc"] for r in band)
    assert any("least leaky within the budget" in str(w.message) for w in caught)
    assert monitor.measure()["auc"] == pytest.approx(checkpoint.best["auc"], abs=1e-6)
