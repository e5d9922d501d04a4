"""PrivacyTarget (feedback schedule) and PrivacyMonitor (the callback driving it)."""

import math
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_adamixup
from keras_adamixup import PrivacyMonitor, PrivacyTarget
from keras_adamixup.schedules.privacy_target import pi_update
from tests.conftest import SPARSE_CE, small_mlp

LAW = dict(kp=1.0, ki=2.0, deadband=0.005, max_step=0.1, min_strength=0.0, max_strength=0.5)


# -- the control law on a synthetic plant ---------------------------------------


def simulate(plant, target, steps=40, strength=0.0, noise=0.0, seed=0, **law):
    """Closed loop: the plant maps strength → AUC; returns (strengths, aucs)."""
    rng = np.random.default_rng(seed)
    law = {**LAW, **law}
    previous, strengths, aucs = 0.0, [], []
    for _ in range(steps):
        auc = plant(strength) + noise * rng.standard_normal()
        strength, previous = pi_update(strength, auc - target, previous, **law)
        strengths.append(strength)
        aucs.append(auc)
    return np.array(strengths), np.array(aucs)


def linear_plant(s):
    return 0.65 - 0.3 * s  # leakage falls as mixing rises; 0.55 at s = 1/3


def test_converges_to_the_target_without_oscillation():
    strengths, aucs = simulate(linear_plant, target=0.55)
    assert abs(aucs[-1] - 0.55) <= LAW["deadband"] + 1e-9
    assert abs(strengths[-1] - 1 / 3) < 0.02
    # No oscillation: from a start below the equilibrium the strength only rises.
    assert np.all(np.diff(strengths) >= -1e-12)
    assert strengths.max() < 1 / 3 + 0.02


def test_step_size_and_bounds_respected():
    strengths, _ = simulate(lambda s: 0.9, target=0.55, steps=20)  # unreachable
    steps = np.diff(np.concatenate([[0.0], strengths]))
    assert np.all(np.abs(steps) <= LAW["max_step"] + 1e-12)
    assert strengths[-1] == LAW["max_strength"]
    # Leaving the bound takes one measurement once there is margin (no wind-up).
    strength, _ = pi_update(0.5, 0.50 - 0.55, 0.35, **LAW)
    assert strength < 0.5
    strengths, _ = simulate(lambda s: 0.51, target=0.55, strength=0.3, steps=20)
    assert strengths[-1] == LAW["min_strength"]


def test_deadband_holds_the_strength():
    strength, error = pi_update(0.2, 0.004, 0.0, **LAW)
    assert (strength, error) == (0.2, 0.0)
    strength, error = pi_update(0.2, -0.004, 0.03, **LAW)  # no kick from the P term
    assert (strength, error) == (0.2, 0.0)
    strength, error = pi_update(0.2, 0.02, 0.0, **LAW)
    assert error == 0.02 and strength == pytest.approx(0.2 + 1.0 * 0.02 + 2.0 * 0.02)
    strength, _ = pi_update(0.2, 0.05, 0.0, **LAW)  # 0.15 clamped to max_step
    assert strength == pytest.approx(0.3)


def test_noisy_signal_stays_near_the_target():
    strengths, aucs = simulate(linear_plant, target=0.55, steps=60, noise=0.01)
    tail = strengths[30:]
    assert abs(np.mean(tail) - 1 / 3) < 0.05
    assert np.std(tail) < 0.08


# -- the schedule object ------------------------------------------------------------


def test_config_round_trip_and_bad_arguments():
    schedule = PrivacyTarget(target_auc=0.6, initial=0.2, max_strength=0.45, ki=1.5)
    again = PrivacyTarget.from_config(schedule.get_config())
    assert again.get_config() == schedule.get_config()
    assert keras_adamixup.schedules.PrivacyTarget is PrivacyTarget
    for target in (0.5, 1.0, 0.3, float("nan")):
        with pytest.raises(ValueError, match="target_auc"):
            PrivacyTarget(target_auc=target)
    with pytest.raises(ValueError, match="initial"):
        PrivacyTarget(initial=0.6, max_strength=0.5)
    with pytest.raises(ValueError, match="max_strength"):
        PrivacyTarget(min_strength=0.3, max_strength=0.2)
    with pytest.raises(ValueError, match="max_step"):
        PrivacyTarget(max_step=0.0)
    with pytest.raises(ValueError, match="has no state"):
        PrivacyTarget()(tf.constant(0, tf.int64), tf.constant(-1, tf.int64))


def test_one_schedule_per_model_and_bounds_checked_against_coefficient():
    schedule = PrivacyTarget()
    keras_adamixup.AdaMixupModel(small_mlp(), schedule=schedule)
    with pytest.raises(ValueError, match="one\\s+PrivacyTarget per model"):
        keras_adamixup.AdaMixupModel(small_mlp(), schedule=schedule)
    with pytest.raises(ValueError, match="schedule value"):
        keras_adamixup.AdaMixupModel(small_mlp(), schedule=PrivacyTarget(max_strength=0.8))
    keras_adamixup.AdaMixupModel(small_mlp(), coefficient="beta",
                                 schedule=PrivacyTarget(max_strength=8.0))


# -- the monitor ----------------------------------------------------------------------


def test_membership_signal_matches_a_direct_computation():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    logits_m, logits_n = rng.normal(size=(300, 4)) * 3, rng.normal(size=(200, 4))
    ym, yn = rng.integers(0, 4, 300), rng.integers(0, 4, 200)
    signal = keras_adamixup.monitor.membership_signal(logits_m, ym, logits_n, yn)

    def ce(logits, y):
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        return -np.log(p[np.arange(len(y)), y]), p[np.arange(len(y)), y]

    (lm, pm), (ln, pn) = ce(logits_m, ym), ce(logits_n, yn)
    truth = np.r_[np.ones(300), np.zeros(200)]
    assert signal["auc"] == pytest.approx(roc_auc_score(truth, -np.r_[lm, ln]))
    assert signal["loss_gap"] == pytest.approx(ln.mean() - lm.mean())
    assert signal["confidence_gap"] == pytest.approx(pm.mean() - pn.mean())


def test_monitor_errors(digits):
    (x, y), (xt, yt) = digits
    with pytest.raises(ValueError, match="needs `members`"):
        PrivacyMonitor(None, (xt, yt))
    with pytest.raises(ValueError, match="at least 100 per side"):
        PrivacyMonitor((x[:50], y[:50]), (xt, yt))
    with pytest.raises(ValueError, match="different numbers of rows"):
        PrivacyMonitor((x[:200], y[:150]), (xt, yt))
    with pytest.raises(ValueError, match="also appear among the monitor members"):
        PrivacyMonitor((x[:200], y[:200]), (x[150:350], y[150:350]))
    with pytest.raises(ValueError, match="every_epochs"):
        PrivacyMonitor((x[:200], y[:200]), (xt, yt), every_epochs=0)
    model = keras_adamixup.AdaMixupModel(small_mlp(), schedule=PrivacyTarget())
    model.compile("adam", SPARSE_CE)
    with pytest.raises(ValueError, match="no\\s+monitor was given"):
        model.fit(x[:128], y[:128], epochs=1, verbose=0)


def test_from_training_draws_a_balanced_subset_of_the_training_data(digits):
    (x, y), (xt, yt) = digits
    monitor = PrivacyMonitor.from_training(x, y, (xt[:150], yt[:150]), seed=3, every_epochs=2)
    mx, my = monitor.members
    assert len(my) == 150 and monitor.every_epochs == 2
    rows = {row.tobytes(): label for row, label in zip(x, y)}
    assert all(rows[row.tobytes()] == label for row, label in zip(mx, my))  # rows of x, y
    again = PrivacyMonitor.from_training(x, y, (xt[:150], yt[:150]), seed=3)
    other = PrivacyMonitor.from_training(x, y, (xt[:150], yt[:150]), seed=4)
    np.testing.assert_array_equal(again.members[0], mx)
    assert not np.array_equal(other.members[0], mx)
    # fewer training rows than non-members: every training row, once
    small = PrivacyMonitor.from_training(x[:120], y[:120], (xt[:300], yt[:300]))
    np.testing.assert_array_equal(small.members[0], x[:120])  # in the original order
    with pytest.raises(ValueError, match="200 of the `nonmembers` are rows of `x_train`"):
        PrivacyMonitor.from_training(x[:300], y[:300], (x[:200], y[:200]))


class ScriptedMonitor(PrivacyMonitor):
    """A monitor whose measurements follow a script (the controller's input)."""

    def __init__(self, aucs, data, **kwargs):
        super().__init__(*data, **kwargs)
        self._aucs = list(aucs)

    def measure(self):
        return {"auc": self._aucs.pop(0), "loss_gap": 0.0, "confidence_gap": 0.0,
                "member_accuracy": 1.0, "holdout_accuracy": 0.9}


@pytest.mark.parametrize("mix_in", ["train_step", "none"])
def test_controller_moves_the_strength_in_compiled_fit_without_retracing(digits, mix_in):
    (x, y), (xt, yt) = digits
    traces = []

    class Counting(PrivacyTarget):
        def __call__(self, step, total_steps):
            traces.append(1)
            return super().__call__(step, total_steps)

    schedule = Counting(target_auc=0.55, initial=0.0, kp=0.0, ki=1.0, deadband=0.0)
    model = keras_adamixup.AdaMixupModel(small_mlp(), schedule=schedule, seed=0, mix_in=mix_in)
    model.compile(keras.optimizers.Adam(1e-3), SPARSE_CE, jit_compile=True)
    data = tf.data.Dataset.from_tensor_slices((x[:512], y[:512])).batch(64)
    if mix_in == "none":  # the tf.data op reads the model's strength variable
        data = data.apply(keras_adamixup.adamixup(model, num_classes=10, seed=0))
    monitor = ScriptedMonitor([0.65, 0.60, 0.55, 0.50], ((x[:200], y[:200]), (xt[:200], yt[:200])))
    after_epoch = []
    count = keras.callbacks.LambdaCallback(on_epoch_end=lambda e, l: after_epoch.append(len(traces)))
    history = model.fit(data, epochs=4, verbose=0, callbacks=[monitor, count])
    expected = [0.1, 0.15, 0.15, 0.1]  # s += 1.0 * (auc − 0.55)
    np.testing.assert_allclose(history.history["controller_strength"], expected, atol=1e-6)
    # The strength used in epoch k is the controller's output after epoch k − 1.
    np.testing.assert_allclose(history.history["mixup_strength"], [0.0] + expected[:3], atol=1e-6)
    np.testing.assert_allclose(history.history["monitor_auc"], [0.65, 0.60, 0.55, 0.50])
    assert after_epoch[0] == after_epoch[-1]
    state = schedule.state()
    assert state["controller_updates"] == 4
    assert state["controller_last_auc"] == pytest.approx(0.5)
    model.reset_schedule()
    assert schedule.state()["controller_strength"] == 0.0
    assert math.isnan(schedule.state()["controller_last_auc"])


def test_controller_state_saved_and_restored(digits, tmp_path):
    (x, y), (xt, yt) = digits
    model = keras_adamixup.AdaMixupModel(
        small_mlp(), schedule=PrivacyTarget(0.55, initial=0.0), seed=3)
    model.compile(keras.optimizers.Adam(1e-3), SPARSE_CE)
    monitor = ScriptedMonitor([0.7, 0.68], ((x[:200], y[:200]), (xt[:200], yt[:200])))
    model.fit(x[:256], y[:256], epochs=2, batch_size=64, verbose=0, callbacks=[monitor])
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.schedule, PrivacyTarget)
    assert loaded.schedule.get_config() == model.schedule.get_config()
    assert loaded.schedule.state() == pytest.approx(model.schedule.state(), nan_ok=True)
    assert loaded.schedule.state()["controller_strength"] == pytest.approx(0.2)
    weights = str(tmp_path / "m.weights.h5")
    model.save_weights(weights)
    fresh = keras_adamixup.AdaMixupModel(small_mlp(), schedule=PrivacyTarget(0.55, initial=0.0))
    fresh.load_weights(weights)
    assert fresh.schedule.state() == pytest.approx(model.schedule.state(), nan_ok=True)


def test_saturation_warns_when_mixing_cannot_reach_the_target(digits):
    (x, y), (xt, yt) = digits
    model = keras_adamixup.AdaMixupModel(
        small_mlp(), schedule=PrivacyTarget(0.55, initial=0.4, max_step=0.1), seed=0)
    model.compile(keras.optimizers.Adam(1e-3), SPARSE_CE)
    monitor = ScriptedMonitor([0.8] * 5, ((x[:200], y[:200]), (xt[:200], yt[:200])))
    with pytest.warns(RuntimeWarning, match="Mixing alone does not reach") as caught:
        model.fit(x[:256], y[:256], epochs=5, batch_size=64, verbose=0, callbacks=[monitor])
    # its own RuntimeWarning subclass, which the demo and the benchmark count by class
    assert any(issubclass(w.category, keras_adamixup.monitor.SaturationWarning)
               for w in caught)


def test_monitor_only_logs_for_other_schedules_and_plain_models(digits, tmp_path):
    (x, y), (xt, yt) = digits
    for model in (small_mlp(), keras_adamixup.AdaMixupModel(small_mlp(), schedule=0.2)):
        model.compile(keras.optimizers.Adam(1e-3), SPARSE_CE)
        monitor = PrivacyMonitor((x[:200], y[:200]), (xt[:200], yt[:200]), every_epochs=2)
        history = model.fit(x[:256], y[:256], epochs=4, batch_size=64, verbose=0,
                            callbacks=[monitor])
        assert "controller_strength" not in history.history
        assert [r["epoch"] for r in monitor.records] == [1, 3]
        assert len(history.history["monitor_auc"]) == 2  # one per measurement (issue 39)
        assert history.history["monitor_epoch"] == [2, 4]
        assert 0.0 <= history.history["monitor_auc"][-1] <= 1.0
    keras_adamixup.monitor.plot_privacy_trajectory(history, str(tmp_path / "t.png"),
                                                   target_auc=0.55)
    assert (tmp_path / "t.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="no `monitor_auc`"):
        keras_adamixup.monitor.plot_privacy_trajectory({"loss": [1.0]})


def test_every_steps_and_datasets(digits):
    (x, y), (xt, yt) = digits
    members = tf.data.Dataset.from_tensor_slices((x[:200], y[:200])).batch(50)
    nonmembers = tf.data.Dataset.from_tensor_slices((xt[:200], yt[:200])).batch(50)
    model = keras_adamixup.AdaMixupModel(small_mlp(), schedule=PrivacyTarget(0.55), seed=0)
    model.compile(keras.optimizers.Adam(1e-3), SPARSE_CE)
    monitor = PrivacyMonitor(members, nonmembers, every_steps=3)
    model.fit(x[:256], y[:256], epochs=3, batch_size=64, verbose=0, callbacks=[monitor])
    assert [r["step"] for r in monitor.records] == [3, 6, 9, 12]
    assert model.schedule.state()["controller_updates"] == 4


def noisy_digits(digits, noise=0.3, n=300):
    """Digits with a share of random training labels: a model memorizes them."""
    (x, y), _ = digits
    rng = np.random.default_rng(0)
    y = y.copy()
    flip = rng.random(len(y)) < noise
    y[flip] = rng.integers(0, 10, flip.sum())
    return (x[:n], y[:n]), (x[n:2 * n], y[n:2 * n])


def test_controller_lowers_leakage_on_an_overfitting_setup(digits):
    """30 % random labels: mixing less memorization is what lowers the AUC."""
    members, nonmembers = noisy_digits(digits)

    def train(schedule):
        keras.utils.set_random_seed(0)
        base = keras.Sequential([keras.Input((64,)), keras.layers.Dense(256, activation="relu"),
                                 keras.layers.Dense(256, activation="relu"),
                                 keras.layers.Dense(10)])
        model = keras_adamixup.AdaMixupModel(base, schedule=schedule, seed=1)
        model.compile(keras.optimizers.Adam(1e-3), SPARSE_CE)
        monitor = PrivacyMonitor(members, nonmembers)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            history = model.fit(*members, epochs=30, batch_size=32, verbose=0,
                                callbacks=[monitor])
        return history.history

    constant = train(keras_adamixup.schedules.Constant(0.0))
    controlled = train(PrivacyTarget(target_auc=0.6, initial=0.0))
    assert constant["monitor_auc"][-1] > 0.65  # the undefended model memorizes
    assert max(controlled["controller_strength"]) > 0.2
    assert controlled["monitor_auc"][-1] < constant["monitor_auc"][-1] - 0.04
