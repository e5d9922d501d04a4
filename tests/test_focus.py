"""LossFloor: a per-example mixing strength inside the compiled train step."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_adamixup
from keras_adamixup import LossFloor
from tests.conftest import SPARSE_CE, cluster_mlp, clusters, compile_adam


def _data(n=192, classes=3, seed=0):
    return clusters(n, classes, seed, spread=2.0)


def _model(focus, schedule=0.4, loss=None, activation=None, **kwargs):
    model = keras_adamixup.AdaMixupModel(cluster_mlp(activation=activation, seed=0),
                                         schedule=schedule, focus=focus, seed=3, **kwargs)
    return compile_adam(model, 1e-2, loss or SPARSE_CE, metrics=["accuracy"])


def test_shares_are_full_under_the_floor_and_rest_above():
    losses = tf.constant([0.1, 0.5, 0.9, 2.0])
    np.testing.assert_allclose(LossFloor(1.0).shares(losses, 1.0), [1, 1, 1, 0])
    np.testing.assert_allclose(LossFloor(1.0, rest=0.25).shares(losses, 0.5),
                               [1, 0.25, 0.25, 0.25])


@pytest.mark.parametrize("loss", [None, "sparse_categorical_crossentropy"])
def test_each_example_keeps_its_own_share_by_its_clean_loss(loss):
    x, y = _data()
    activation = "softmax" if loss else None
    model = _model(LossFloor(0.6), loss=loss, activation=activation)
    model.fit(x, y, epochs=2, batch_size=32, verbose=0)
    probs = keras.ops.convert_to_numpy(model.predict(x[:64], verbose=0))
    if activation is None:
        probs = keras.ops.convert_to_numpy(keras.ops.softmax(probs))
    ce = -np.log(probs[np.arange(64), y[:64]])
    lam = np.full(64, 0.6, "float32")  # partner share 0.4
    out = keras.ops.convert_to_numpy(model._focused(x[:64], y[:64], tf.constant(lam)))
    under = ce < 0.6
    assert 0 < under.sum() < 64  # both kinds in the batch
    np.testing.assert_allclose(out[under], 0.6, atol=1e-6)
    np.testing.assert_allclose(out[~under], 1.0, atol=1e-6)


@pytest.mark.parametrize("floor, twin_schedule, share", [
    (1e-9, 0.0, 0.0),  # no example under the floor: exactly as without mixing
    (1e9, 0.4, 1.0),   # every example under it: exactly as without focus
])
def test_a_floor_below_or_above_every_loss_trains_as_its_twin(floor, twin_schedule, share):
    x, y = _data()
    focused = _model(LossFloor(floor))
    twin = _model(None, schedule=twin_schedule)
    twin.base_model.set_weights(focused.base_model.get_weights())
    history = focused.fit(x, y, epochs=2, batch_size=32, shuffle=False, verbose=0)
    twin.fit(x, y, epochs=2, batch_size=32, shuffle=False, verbose=0)
    for a, b in zip(focused.base_model.get_weights(), twin.base_model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert history.history["mixup_focus"] == [share, share]


def test_compiling_again_rebuilds_the_per_example_loss():
    x, y = _data()
    model = _model(LossFloor(0.6))
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    lam = tf.constant(np.full(64, 0.6, "float32"))
    assert np.any(keras.ops.convert_to_numpy(model._focused(x[:64], y[:64], lam)) == 1.0)
    model.allow_any_loss = True  # a loss that is zero for every example
    model.compile("adam", lambda y_true, y_pred: tf.zeros(tf.shape(y_pred)[:1]))
    np.testing.assert_allclose(model._focused(x[:64], y[:64], lam), 0.6)


def test_holdout_floor_follows_the_monitor():
    x, y = _data(n=400)
    model = _model(LossFloor("holdout", factor=0.5))
    assert np.isinf(keras.ops.convert_to_numpy(model.loss_floor.value))
    monitor = keras_adamixup.PrivacyMonitor((x[:100], y[:100]), (x[300:], y[300:]))
    history = model.fit(x[:300], y[:300], epochs=4, batch_size=32, verbose=0,
                        callbacks=[monitor])
    floors = [0.5 * r["holdout_loss"] for r in monitor.records]
    np.testing.assert_allclose(history.history["monitor_loss_floor"], floors, rtol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model.loss_floor.value),
                               floors[-1], rtol=1e-5)
    shares = history.history["mixup_focus"]
    assert shares[0] == 1.0  # no measurement yet: every example mixed
    assert all(0.0 <= s <= 1.0 for s in shares) and min(shares[1:]) < 1.0


def test_round_trip_and_save_load(tmp_path):
    x, y = _data()
    model = _model(LossFloor(0.7, rest=0.1))
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    again = keras_adamixup.AdaMixupModel.from_config(model.get_config())
    assert again.focus.get_config() == {"floor": 0.7, "factor": 1.0, "rest": 0.1}
    path = str(tmp_path / "focus.keras")
    model.loss_floor.assign(0.3)
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.focus, LossFloor)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded.loss_floor.value), 0.3)
    np.testing.assert_allclose(loaded.predict(x[:8], verbose=0),
                               model.predict(x[:8], verbose=0), rtol=1e-5, atol=1e-6)


def test_compiles_under_xla_with_binary_outputs():
    x, y = _data(classes=2)
    model = keras_adamixup.AdaMixupModel(
        keras.Sequential([keras.Input((8,)), keras.layers.Dense(1, activation="sigmoid")]),
        schedule=0.4, focus=LossFloor(0.5), seed=0)
    model.compile("adam", "binary_crossentropy", jit_compile=True)
    history = model.fit(x, y.astype("float32"), epochs=2, batch_size=32, verbose=0)
    assert all(0.0 <= s <= 1.0 for s in history.history["mixup_focus"])
