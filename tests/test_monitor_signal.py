"""PrivacyMonitor(signal="trajectory"): the confidence change since a reference epoch."""

import keras
import numpy as np
import pytest

import keras_adamixup
from keras_adamixup import monitor as monitor_lib
from keras_adamixup import predictions
from tests.conftest import compile_adam, small_mlp


def test_log_odds_of_the_label_from_probabilities_logits_and_one_sigmoid():
    probs = np.array([[0.8, 0.2], [0.5, 0.5], [0.1, 0.9]])
    labels = np.array([0, 1, 0])
    expected = [np.log(4.0), 0.0, np.log(1 / 9)]
    np.testing.assert_allclose(predictions.log_odds(probs, labels, "probabilities"), expected)
    np.testing.assert_allclose(predictions.log_odds(np.log(probs), labels, "logits"), expected)
    sigmoid = np.array([[np.log(4.0)], [0.0], [np.log(9.0)]])  # logit of class 1
    np.testing.assert_allclose(predictions.log_odds(sigmoid, np.array([1, 1, 0]), "logits"),
                               expected)
    assert np.isfinite(predictions.log_odds(np.array([[1.0, 0.0]]), np.array([0]),
                                            "probabilities"))
    assert predictions.log_odds(np.array([[60.0, 0.0]]), np.array([0]), "logits") == 60.0


def _data(n=600, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = (rng.normal(size=(3, 8))[y] * 1.5 + rng.normal(size=(n, 8))).astype("float32")
    return x, y


@pytest.mark.parametrize("signal", ["loss", "trajectory"])
def test_trajectory_signal_is_the_confidence_change_since_the_reference(signal):
    x, y = _data()
    model = compile_adam(small_mlp(3, inputs=8, seed=0, hidden=32), 1e-2)
    members, nonmembers = (x[:200], y[:200]), (x[400:], y[400:])
    monitor = keras_adamixup.PrivacyMonitor(members, nonmembers, signal=signal,
                                            reference_epoch=2)
    snapshots = {}

    def confidences():
        return [predictions.log_odds(keras.ops.convert_to_numpy(model(a, training=False)), b,
                                     "logits") for a, b in (members, nonmembers)]

    record = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: snapshots.__setitem__(epoch, confidences()))
    history = model.fit(x[:400], y[:400], epochs=5, batch_size=32, verbose=0,
                        callbacks=[monitor, record])
    records = monitor.records
    if signal == "loss":
        assert all("trajectory_auc" not in r and "loss_auc" not in r for r in records)
        return
    # epochs 1 and 2 (the reference) have no trajectory yet: the loss AUC drives
    assert [("trajectory_auc" in r) for r in records] == [False, False, True, True, True]
    assert records[-1]["loss_auc"] == pytest.approx(
        monitor_lib.membership_signal(*_outputs(model, members, nonmembers))["auc"], abs=1e-6)
    ref_m, ref_n = snapshots[1]
    now_m, now_n = snapshots[4]
    expected = predictions.roc_auc(now_m - ref_m, now_n - ref_n)
    assert records[-1]["auc"] == records[-1]["trajectory_auc"] == pytest.approx(expected,
                                                                              abs=1e-6)
    assert records[0]["auc"] == records[0]["loss_auc"]
    assert history.history["monitor_auc"][-1] == records[-1]["trajectory_auc"]
    assert history.history["monitor_loss_auc"][-1] == records[-1]["loss_auc"]


def _outputs(model, members, nonmembers):
    return (model.predict(members[0], verbose=0), members[1],
            model.predict(nonmembers[0], verbose=0), nonmembers[1])


def test_trajectory_signal_with_one_sigmoid_output():
    x, y = _data()
    y = (y > 0).astype("int64")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy")
    monitor = keras_adamixup.PrivacyMonitor((x[:200], y[:200]), (x[400:], y[400:]),
                                            signal="trajectory", reference_epoch=1)
    model.fit(x[:400], y[:400].astype("float32"), epochs=3, verbose=0, callbacks=[monitor])
    assert [("trajectory_auc" in r) for r in monitor.records] == [False, True, True]
    assert 0.0 <= monitor.records[-1]["trajectory_auc"] <= 1.0
