import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_adamixup
from keras_adamixup import schedules
from tests.conftest import SPARSE_CE, cluster_mlp, compile_adam, small_mlp


def compiled(model, jit=True, loss=SPARSE_CE, **kwargs):
    return compile_adam(model, 3e-3, loss, metrics=["accuracy"], jit_compile=jit, **kwargs)


@pytest.mark.parametrize("label_mode", ["dominant", "soft"])
def test_fit_on_digits_reaches_sensible_accuracy(digits, label_mode):
    (x, y), (xt, yt) = digits
    model = compiled(keras_adamixup.AdaMixupModel(
        small_mlp(), schedule=schedules.LinearDecay(0.4, 0.0), label_mode=label_mode, seed=0))
    history = model.fit(x, y, epochs=8, batch_size=32, verbose=0, validation_data=(xt, yt))
    _, acc = model.evaluate(xt, yt, verbose=0)
    assert acc > 0.9
    strengths = history.history["mixup_strength"]
    # 38 steps per epoch, 304 planned: the last step of epoch k (0-based) is
    # step 38(k + 1) − 1, and used strength 0.4·(1 − step/304)
    expected = [0.4 * (1 - (38 * (k + 1) - 1) / 304) for k in range(8)]
    np.testing.assert_allclose(strengths, expected, atol=1e-5)
    assert "val_accuracy" in history.history
    assert int(model.mixup_step.value) == 304
    # evaluation and prediction are on clean data: the wrapper is the base model
    np.testing.assert_allclose(model.predict(xt, verbose=0),
                               model.base_model.predict(xt, verbose=0), rtol=1e-5, atol=1e-5)


def test_soft_mode_swaps_sparse_loss():
    model = compiled(keras_adamixup.AdaMixupModel(small_mlp(), label_mode="soft"),
                     loss="sparse_categorical_crossentropy")
    assert isinstance(model.loss, keras_adamixup.losses.MixupCrossentropy)
    model = compiled(keras_adamixup.AdaMixupModel(small_mlp(), label_mode="soft"))
    assert isinstance(model.loss, keras_adamixup.losses.MixupCrossentropy)
    assert model.loss.from_logits
    model = compiled(keras_adamixup.AdaMixupModel(small_mlp()))  # dominant: unchanged
    assert model.loss is SPARSE_CE
    with pytest.raises(ValueError, match="ignore_class"):
        compiled(keras_adamixup.AdaMixupModel(small_mlp(), label_mode="soft"),
                 loss=keras.losses.SparseCategoricalCrossentropy(ignore_class=0))


def test_mixup_accuracy_any_label_format():
    m = keras_adamixup.metrics.MixupAccuracy()
    m.update_state(np.array([[0.7, 0.3, 0.0], [0.2, 0.8, 0.0]]), np.array([[0.9, 0.05, 0.05], [0.9, 0.05, 0.05]]))
    m.update_state(np.array([2, 1]), np.array([[0.1, 0.2, 0.7], [0.1, 0.2, 0.7]]))
    assert float(m.result()) == pytest.approx(0.5)
    b = keras_adamixup.metrics.MixupAccuracy()
    b.update_state(np.array([[0.7], [0.2]]), np.array([[0.9], [0.9]]))
    assert float(b.result()) == pytest.approx(0.5)


def test_mixup_crossentropy_sparse_equals_onehot():
    loss = keras_adamixup.losses.MixupCrossentropy(from_logits=True)
    logits = np.array([[2.0, 0.0, -1.0], [0.1, 0.2, 0.3]], "float32")
    sparse = float(loss(np.array([0, 2]), logits))
    dense = float(loss(np.eye(3, dtype="float32")[[0, 2]], logits))
    reference = float(SPARSE_CE(np.array([0, 2]), logits))
    assert sparse == pytest.approx(dense) == pytest.approx(reference)
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert restored.get_config() == loss.get_config()


def test_one_hot_labels_and_categorical_loss(digits):
    (x, y), _ = digits
    onehot = np.eye(10, dtype="float32")[y]
    for mode in ("dominant", "soft"):
        model = compiled(keras_adamixup.AdaMixupModel(small_mlp(), label_mode=mode, seed=1),
                         loss=keras.losses.CategoricalCrossentropy(from_logits=True))
        history = model.fit(x[:256], onehot[:256], epochs=2, batch_size=64, verbose=0)
        assert np.isfinite(history.history["loss"]).all()


@pytest.mark.gpu
@pytest.mark.parametrize("jit", [True, False])
def test_jit_compile_and_no_retracing(digits, jit):
    (x, y), _ = digits
    traces = []

    class Counting(schedules.LinearDecay):
        def __call__(self, step, total_steps):
            traces.append(1)
            return super().__call__(step, total_steps)

    model = compiled(keras_adamixup.AdaMixupModel(small_mlp(), schedule=Counting(0.4, 0.0),
                                                  seed=0), jit=jit)
    after_epoch = []
    count = keras.callbacks.LambdaCallback(on_epoch_end=lambda e, l: after_epoch.append(len(traces)))
    history = model.fit(x[:512], y[:512], epochs=3, batch_size=64, verbose=0, callbacks=[count])
    # tf.function traces during the first epoch (twice: once more after the
    # optimizer creates its variables); later epochs reuse the graph while
    # the strength changes every step.
    assert after_epoch[0] == after_epoch[1] == after_epoch[2]
    assert history.history["mixup_strength"][0] > history.history["mixup_strength"][-1]
    assert model.jit_compile is jit


def test_seed_makes_training_reproducible(digits):
    (x, y), _ = digits

    def run(seed):
        model = compiled(keras_adamixup.AdaMixupModel(small_mlp(seed=0), schedule=0.3,
                                                      coefficient="share", jitter=0.5,
                                                      seed=seed), jit=False)
        model.fit(x[:256], y[:256], epochs=2, batch_size=64, verbose=0, shuffle=False)
        return model.base_model.get_weights()[0]

    np.testing.assert_allclose(run(1), run(1), rtol=1e-6)
    assert not np.allclose(run(1), run(2))


def test_save_load_round_trip(digits, tmp_path):
    (x, y), (xt, yt) = digits
    model = compiled(keras_adamixup.AdaMixupModel(
        small_mlp(), schedule=schedules.CosineDecay(0.4, 0.05, decay_steps=1000),
        label_mode="soft", jitter=0.2, seed=5))
    model.fit(x[:512], y[:512], epochs=2, batch_size=64, verbose=0)
    path = os.fspath(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded, keras_adamixup.AdaMixupModel)
    assert loaded.schedule.get_config() == model.schedule.get_config()
    assert (loaded.label_mode, loaded.jitter, loaded.seed) == ("soft", 0.2, 5)
    assert int(loaded.mixup_step.value) == 16
    assert loaded.current_strength() == pytest.approx(model.current_strength())
    np.testing.assert_array_equal(loaded.seed_generator.state.numpy(),
                                  model.seed_generator.state.numpy())
    np.testing.assert_allclose(loaded.predict(xt, verbose=0), model.predict(xt, verbose=0),
                               rtol=1e-5, atol=1e-5)
    assert isinstance(loaded.loss, keras_adamixup.losses.MixupCrossentropy)
    # training continues from the saved position with the saved optimizer
    loaded.fit(x[:512], y[:512], epochs=1, batch_size=64, verbose=0)
    assert int(loaded.mixup_step.value) == 24
    # the plain inner model for serving
    serving = os.fspath(tmp_path / "serving.keras")
    loaded.base_model.save(serving)
    plain = keras.saving.load_model(serving)
    assert not isinstance(plain, keras_adamixup.AdaMixupModel)
    np.testing.assert_allclose(plain.predict(xt, verbose=0), loaded.predict(xt, verbose=0),
                               rtol=1e-5, atol=1e-5)


def test_class_weight_and_sample_weight_reach_the_loss(digits):
    (x, y), _ = digits
    # Weight 0 for class 0: with the (default) share coefficient every mixed
    # example keeps its own label and weight, so class 0 is never learned.
    model = compiled(keras_adamixup.AdaMixupModel(small_mlp(), schedule=0.3, seed=0))
    model.fit(x, y, epochs=6, batch_size=32, verbose=0,
              class_weight={c: (0.0 if c == 0 else 1.0) for c in range(10)})
    pred = np.argmax(model.predict(x, verbose=0), axis=1)
    assert np.mean(pred[y == 0] == 0) < 0.2
    assert np.mean(pred[y != 0] == y[y != 0]) > 0.85
    # All-zero sample weights: no example contributes, the weights stay put.
    for mode in ("soft", "dominant"):
        model = compiled(keras_adamixup.AdaMixupModel(small_mlp(), schedule=0.3,
                                                      label_mode=mode, seed=0))
        before = model.base_model.get_weights()
        history = model.fit(x[:256], y[:256], sample_weight=np.zeros(256, "float32"),
                            epochs=1, batch_size=32, verbose=0)
        assert history.history["loss"][0] == 0.0
        for a, b in zip(before, model.base_model.get_weights()):
            np.testing.assert_array_equal(a, b)


def test_callbacks_and_validation(digits):
    (x, y), (xt, yt) = digits
    model = compiled(keras_adamixup.AdaMixupModel(small_mlp(), seed=0))
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=0)
    seen = []
    log = keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: seen.append(logs))
    history = model.fit(x, y, epochs=50, batch_size=32, verbose=0,
                        validation_data=(xt, yt), callbacks=[stop, log])
    assert len(history.history["loss"]) < 50
    assert all("mixup_strength" in logs and "val_accuracy" in logs for logs in seen)


def test_tf_data_op_with_model_strength(digits):
    (x, y), (xt, yt) = digits
    model = compiled(keras_adamixup.AdaMixupModel(
        small_mlp(), schedule=schedules.LinearDecay(0.4, 0.0, decay_steps=100), mix_in="none",
        label_mode="soft", seed=0))
    ds = (tf.data.Dataset.from_tensor_slices((x, y)).shuffle(1200, seed=0).batch(32)
          .apply(keras_adamixup.adamixup(model, num_classes=10, label_mode="soft", seed=0))
          .prefetch(2))
    history = model.fit(ds, epochs=4, verbose=0, validation_data=(xt, yt))
    assert history.history["mixup_strength"][-1] == pytest.approx(0.0)
    assert history.history["mixup_strength"][0] == pytest.approx(0.4 * (1 - 37 / 100), abs=1e-5)
    assert history.history["val_accuracy"][-1] > 0.85
    assert isinstance(model.metrics[-1].metrics[0], keras_adamixup.metrics.MixupAccuracy)


def test_binary_single_output_model():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(512, 8)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype("float32")
    base = cluster_mlp(1, "sigmoid")
    for mode in ("soft", "dominant"):
        model = keras_adamixup.AdaMixupModel(base, label_mode=mode, coefficient="beta",
                                             schedule=0.4, seed=0)
        model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
        history = model.fit(x, y, epochs=15, batch_size=32, verbose=0)
        assert history.history["accuracy"][-1] > 0.8


def test_multi_input_dict_model():
    rng = np.random.default_rng(0)
    a_in, b_in = keras.Input((4,), name="a"), keras.Input((3,), name="b")
    h = keras.layers.Concatenate()([a_in, b_in])
    base = keras.Model({"a": a_in, "b": b_in}, keras.layers.Dense(3)(h))
    x = {"a": rng.normal(size=(128, 4)).astype("float32"),
         "b": rng.integers(0, 5, size=(128, 3)).astype("int32")}
    y = rng.integers(0, 3, size=128)
    model = compiled(keras_adamixup.AdaMixupModel(base, label_mode="soft", seed=0))
    history = model.fit(x, y, epochs=2, batch_size=32, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    with pytest.raises(ValueError, match="input tensor"):
        model.fit(x["a"], y, epochs=1, batch_size=32, verbose=0)


@pytest.mark.gpu
@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("label_mode", ["soft", "dominant"])
def test_mixed_precision_policy(digits, policy, label_mode):
    (x, y), (xt, yt) = digits
    keras.mixed_precision.set_global_policy(policy)
    try:
        base = small_mlp()
        model = compiled(keras_adamixup.AdaMixupModel(base, label_mode=label_mode, seed=0))
        history = model.fit(x[:512], y[:512], epochs=3, batch_size=64, verbose=0)
        _, accuracy = model.evaluate(xt, yt, verbose=0)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    # Loss scaling only where float16 needs it; state variables stay float32.
    scaled = isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert scaled is (policy == "mixed_float16")
    assert model.strength.dtype == "float32"
    assert np.isfinite(history.history["loss"]).all()
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert accuracy > 0.7


# -- bad input ----------------------------------------------------------------


@pytest.mark.parametrize("jit", [True, False])
def test_labels_out_of_range(digits, jit):
    (x, y), _ = digits
    bad = y[:256].copy()
    bad[3] = 12
    model = compiled(keras_adamixup.AdaMixupModel(small_mlp(), label_mode="soft"), jit=jit)
    # arrays: refused before training, with or without XLA
    with pytest.raises(ValueError, match=r"E03: .* not class ids in \[0, 10\)"):
        model.fit(x[:256], bad, epochs=1, batch_size=256, verbose=0)
    # a dataset: in the training step
    expected = ValueError if jit else tf.errors.InvalidArgumentError
    data = tf.data.Dataset.from_tensor_slices((x[:256], bad)).batch(256)
    with pytest.raises(expected, match=r"(outside \[0, num_classes\))|(in \[0, 10\))"):
        model.fit(data, epochs=1, verbose=0)


def test_batch_size_one(digits):
    (x, y), _ = digits
    model = compiled(keras_adamixup.AdaMixupModel(small_mlp()))
    with pytest.raises(ValueError, match="(single example)|(batch of size 1)"):
        model.fit(x[:8], y[:8], epochs=1, batch_size=1, verbose=0)


def test_constructor_errors():
    with pytest.raises(TypeError, match="`base_model` must be a keras.Model"):
        keras_adamixup.AdaMixupModel(keras.layers.Dense(3))
    with pytest.raises(ValueError, match="`schedule value` must be in"):
        keras_adamixup.AdaMixupModel(small_mlp(), schedule=0.8)
    with pytest.raises(ValueError, match="`schedule value` must be in"):
        keras_adamixup.AdaMixupModel(small_mlp(), schedule=schedules.LinearDecay(0.6, 0.0))
    with pytest.raises(ValueError, match="`mix_in` must be one of"):
        keras_adamixup.AdaMixupModel(small_mlp(), mix_in="data")
    with pytest.raises(ValueError, match="`label_mode` must be one of"):
        keras_adamixup.AdaMixupModel(small_mlp(), label_mode="hard")
    with pytest.raises(ValueError, match="`num_classes` must be"):
        keras_adamixup.AdaMixupModel(small_mlp(), num_classes=0)
    with pytest.raises(TypeError, match="`seed` must be"):
        keras_adamixup.AdaMixupModel(small_mlp(), seed=1.5)
    keras_adamixup.AdaMixupModel(small_mlp(), coefficient="beta", schedule=4.0)  # α may exceed 0.5


def test_unknown_steps_with_planned_schedule():
    x = np.zeros((64, 64), "float32")
    y = np.zeros(64, "int64")
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16).filter(lambda a, b: True)
    model = compiled(keras_adamixup.AdaMixupModel(small_mlp()))
    with pytest.raises(ValueError, match="steps per epoch is unknown"):
        model.fit(ds, epochs=1, verbose=0)
    model = compiled(keras_adamixup.AdaMixupModel(
        small_mlp(), schedule=schedules.LinearDecay(0.4, 0.0, decay_steps=10)))
    model.fit(ds, epochs=1, verbose=0)  # explicit decay_steps: fine


def test_multi_output_model_is_rejected():
    inp = keras.Input((4,))
    base = keras.Model(inp, [keras.layers.Dense(3)(inp), keras.layers.Dense(2)(inp)])
    model = keras_adamixup.AdaMixupModel(base)
    model.compile("adam", ["sparse_categorical_crossentropy"] * 2)
    x = np.zeros((8, 4), "float32")
    with pytest.raises(ValueError, match="one classification output"):
        model.fit(x, np.zeros(8, "int64"), epochs=1, batch_size=4, verbose=0)


def test_subclassed_base_model(digits):
    (x, y), _ = digits

    class Net(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.hidden = keras.layers.Dense(32, activation="relu")
            self.out = keras.layers.Dense(10)

        def call(self, inputs):
            return self.out(self.hidden(inputs))

    model = compiled(keras_adamixup.AdaMixupModel(Net(), label_mode="soft", seed=0))
    history = model.fit(x[:256], y[:256], epochs=2, batch_size=64, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert model.predict(x[:4], verbose=0).shape == (4, 10)
