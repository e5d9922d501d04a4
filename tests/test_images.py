"""Image classifiers as users write them: convolutions, batch normalization and
augmentation layers in the model or in the tf.data pipeline, with split teachers
(one after another, stacked in a loop, vectorized) and their batch statistics."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_adamixup
from keras_adamixup import SplitTeachers, _stacked
from tests.conftest import SPARSE_CE, clusters, compile_adam


def _images(n=240, seed=0):
    """Three classes of 8x8 RGB images: a bright square in one of three corners."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.normal(0.2, 0.1, (n, 8, 8, 3)).astype("float32")
    for i, label in enumerate(y):
        row, col = [(0, 0), (0, 4), (4, 0)][label]
        x[i, row:row + 4, col:col + 4] += 0.8
    return x, y.astype("int64")


def _cnn(augment=True, seed=0):
    keras.utils.set_random_seed(seed)
    layers = [keras.Input((8, 8, 3))]
    if augment:  # a vertical flip keeps the classes apart (corners move, rows swap)
        layers += [keras.layers.RandomTranslation(0.1, 0.1, fill_mode="nearest")]
    layers += [keras.layers.Conv2D(8, 3, padding="same"), keras.layers.BatchNormalization(),
               keras.layers.ReLU(), keras.layers.MaxPooling2D(2), keras.layers.Flatten(),
               keras.layers.Dense(3)]
    return keras.Sequential(layers)


@pytest.mark.parametrize("vectorize", [True, False])
def test_batch_norm_statistics_stay_with_each_stacked_model(vectorize):
    """Three models on inputs shifted by 0, 5 and 10: each keeps its own moving mean."""
    n = 300
    shift = np.repeat([0.0, 5.0, 10.0], n // 3).astype("float32")
    x = (np.random.default_rng(0).normal(size=(n, 4)) + shift[:, None]).astype("float32")
    y = (np.arange(n) % 2).astype("int64")
    masks = np.stack([shift == s for s in (0.0, 5.0, 10.0)])
    models = []
    for _ in range(3):
        model = keras.Sequential([keras.Input((4,)),
                                  keras.layers.BatchNormalization(momentum=0.5),
                                  keras.layers.Dense(2)])
        model.compile("sgd", SPARSE_CE)
        models.append(model)
    assert (_stacked.vector_reason(models) is None) == True  # noqa: E712 - both paths exist
    _stacked.train_together(models, x, y, masks, epochs=3, batch_size=20,
                            vectorize=vectorize, jit_compile=False)
    means = [float(np.mean(m.layers[0].moving_mean.numpy())) for m in models]
    np.testing.assert_allclose(means, [0.0, 5.0, 10.0], atol=0.6)


def _force_loop(monkeypatch):
    monkeypatch.setattr(_stacked, "vector_reason", lambda *a, **k: "forced by the test")


@pytest.mark.parametrize("path", ["one_by_one", "stacked_loop", "vectorized"])
def test_teachers_train_with_augmentation_layers_and_predict_without(path, monkeypatch):
    x, y = _images()
    if path == "stacked_loop":
        _force_loop(monkeypatch)
    if path == "vectorized":  # without a GPU "auto" keeps the loop for convolutions
        monkeypatch.setattr(_stacked, "_gpu_visible", lambda: True)
    predicted = []
    original = keras.Model.__call__

    def spy(self, *args, **kwargs):  # the teachers' soft labels: inference mode
        if kwargs.get("training") is False:
            predicted.append(True)
        return original(self, *args, **kwargs)

    together = False if path == "one_by_one" else "auto"
    model = keras_adamixup.AdaMixupModel(
        _cnn(), schedule=0.0, seed=0, targets=SplitTeachers(3, 1, seed=0, together=together))
    model.compile(keras.optimizers.Adam(1e-2), SPARSE_CE, metrics=["accuracy"])
    monkeypatch.setattr(keras.Model, "__call__", spy)
    model.fit(x, y, epochs=8, batch_size=32, verbose=0)
    monkeypatch.undo()
    soft = model.teacher_targets.soft_labels
    assert (soft.argmax(1) == y).mean() > 0.85  # out-of-fold, learnt through augmentation
    assert predicted or path == "vectorized"  # the vectorized path predicts stateless
    x_test, y_test = _images(120, seed=1)
    assert model.evaluate(x_test, y_test, verbose=0)[1] > 0.85


def test_convolutional_stacks_keep_the_loop_without_a_gpu(monkeypatch):
    """Vectorized, eight CIFAR-10 CNN teachers trained 1.7 times slower than in the
    loop on two CPU cores: "auto" keeps the loop for convolutions there."""
    cnns = [compile_adam(_cnn(seed=k)) for k in range(2)]
    mlps = [compile_adam(keras.Sequential([keras.Input((8,)), keras.layers.Dense(3)]))
            for _ in range(2)]
    monkeypatch.setattr(_stacked, "_gpu_visible", lambda: False)
    assert _stacked.convolves(cnns[0]) and not _stacked.convolves(mlps[0])
    assert _stacked._use_vectorized(cnns, "auto", False) is False
    assert _stacked._use_vectorized(mlps, "auto", False) is True
    assert _stacked._use_vectorized(cnns, True, False) is True  # asked for: vectorized
    monkeypatch.setattr(_stacked, "_gpu_visible", lambda: True)
    assert _stacked._use_vectorized(cnns, "auto", False) is True


def test_teachers_from_a_pipeline_with_augmentation():
    """Augmentation in tf.data (random per pass, order fixed): teachers and model train."""
    x, y = _images()
    draws = tf.data.Dataset.random(seed=3, rerandomize_each_iteration=True)

    def jitter(element, draw):
        image, label = element
        shift = tf.cast(draw % 3, tf.int32) - 1
        return tf.roll(image, shift, axis=1), label

    train = tf.data.Dataset.zip((tf.data.Dataset.from_tensor_slices((x, y)), draws))
    train = train.map(jitter).batch(32)
    x_val, y_val = _images(150, seed=2)
    model = keras_adamixup.recommended.model(_cnn(augment=False), seed=0,
                                             targets=SplitTeachers(3, 1, seed=0))
    model.compile(keras.optimizers.Adam(1e-2), SPARSE_CE, metrics=["accuracy"])
    model.fit(train, validation_data=(x_val, y_val), epochs=8, verbose=0)
    assert (model.teacher_targets.soft_labels.argmax(1) == y).mean() > 0.8
    assert model.evaluate(x_val, y_val, verbose=0)[1] > 0.8


@pytest.mark.parametrize("layer", ["MixUp", "CutMix"])
def test_a_base_model_that_already_mixes_gets_a_warning(layer):
    if not hasattr(keras.layers, layer):
        pytest.skip(f"keras {keras.__version__} has no keras.layers.{layer}")
    base = keras.Sequential([keras.Input((8, 8, 3)), getattr(keras.layers, layer)(),
                             keras.layers.Flatten(), keras.layers.Dense(3)])
    with pytest.warns(UserWarning, match="E66: .*mixes twice"):
        keras_adamixup.AdaMixupModel(base)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        keras_adamixup.AdaMixupModel(_cnn())  # augmentation that does not mix: no word


def test_refresh_sets_batch_norm_statistics_to_the_training_rows():
    from keras_adamixup import _batch_norm

    x = (np.random.default_rng(0).normal(size=(400, 4)) * 2.0 + 5.0).astype("float32")
    inner = keras.Sequential([keras.Input((4,)), keras.layers.BatchNormalization()])
    model = keras.Sequential([keras.Input((4,)), inner, keras.layers.Dense(2)])
    layer = _batch_norm.layers_of(model)[0]
    _batch_norm.refresh(model, x[_batch_norm.draw(np.ones(400, dtype=bool), seed=0)])
    np.testing.assert_allclose(layer.moving_mean.numpy(), x.mean(0), atol=0.3)
    np.testing.assert_allclose(layer.moving_variance.numpy(), x.var(0), rtol=0.25)
    assert layer.momentum == 0.99 and _batch_norm.draw(np.ones(900, dtype=bool)).sum() == 512


@pytest.mark.parametrize("stacked", [False, True])
def test_teachers_with_batch_norm_measure_their_epochs_on_fresh_statistics(stacked,
                                                                          monkeypatch):
    """Inputs far from 0 and few steps: Keras' moving averages lag, and a teacher
    measured on them would keep garbage soft labels."""
    from keras_adamixup import _batch_norm

    x, y = clusters(240, spread=2.0)
    x = x + 20.0

    def soft_label_accuracy():
        keras.utils.set_random_seed(0)
        base = keras.Sequential([keras.Input((8,)), keras.layers.BatchNormalization(),
                                 keras.layers.Dense(3)])
        teachers = SplitTeachers(2, 1, seed=0, near_duplicates=None, together=stacked or False)
        soft = teachers.fit(compile_adam(base, 1e-2), x, y, epochs=10, batch_size=16).soft_labels
        return np.mean(soft.argmax(1) == y)

    fresh = soft_label_accuracy()
    monkeypatch.setattr(_batch_norm, "follow", lambda model: None)  # Keras' 0.99
    stale = soft_label_accuracy()
    assert fresh > 0.9 and stale < fresh - 0.2


def test_the_monitor_measures_a_batch_norm_model_on_fresh_statistics():
    x, y = clusters(400, spread=2.0)
    x = x + 20.0
    keras.utils.set_random_seed(0)
    base = keras.Sequential([keras.Input((8,)), keras.layers.BatchNormalization(),
                             keras.layers.Dense(3)])
    model = keras_adamixup.AdaMixupModel(base, schedule=keras_adamixup.schedules.PlateauDecay(
        0.2), seed=0)
    compile_adam(model, 1e-2)
    model.fit(x[:240], y[:240], validation_data=(x[240:], y[240:]), epochs=2, batch_size=16,
              verbose=0)
    mean = model.base_model.layers[0].moving_mean.numpy()
    np.testing.assert_allclose(mean, x[:240].mean(0), atol=0.5)  # stale: about 5 off


def test_validation_metrics_read_fresh_batch_norm_statistics():
    """Keras validates before the epoch-end callbacks: `val_accuracy` must read the
    re-estimated statistics too, as the model `fit` returns does."""
    x, y = clusters(400, spread=2.0)
    x = x + 20.0
    keras.utils.set_random_seed(0)
    base = keras.Sequential([keras.Input((8,)), keras.layers.BatchNormalization(),
                             keras.layers.Dense(3)])
    model = keras_adamixup.AdaMixupModel(base, schedule=0.0, seed=0)
    compile_adam(model, 1e-2)
    # one epoch of 15 steps: the moving averages have moved 14 % of the way from 0 to 20
    history = model.fit(x[:240], y[:240], validation_data=(x[240:], y[240:]), epochs=1,
                        batch_size=16, verbose=0)
    after = model.evaluate(x[240:], y[240:], verbose=0, return_dict=True)
    assert history.history["val_loss"][-1] == pytest.approx(after["loss"], rel=1e-4)


def test_statistics_are_refreshed_each_epoch_only_when_a_callback_reads_the_model(monkeypatch):
    """No callback: one refresh, when `fit` ends (the model ends fresh); a callback
    that may read or save the model: one per epoch; a given `Refresh` is not doubled."""
    from keras_adamixup import _batch_norm

    x, y = clusters(240, spread=2.0)
    x = x + 20.0
    calls = []
    original = _batch_norm.refresh
    monkeypatch.setattr(_batch_norm, "refresh",
                        lambda model, inputs: (calls.append(1), original(model, inputs)))

    def fit(callbacks):
        calls.clear()
        keras.utils.set_random_seed(0)
        base = keras.Sequential([keras.Input((8,)), keras.layers.BatchNormalization(),
                                 keras.layers.Dense(3)])
        model = compile_adam(keras_adamixup.AdaMixupModel(base, schedule=0.2, seed=0), 1e-2)
        model.fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=callbacks)
        return model, len(calls)

    model, count = fit([])
    assert count == 1
    np.testing.assert_allclose(model.base_model.layers[0].moving_mean.numpy(), x.mean(0),
                               atol=0.5)
    assert fit([keras.callbacks.LambdaCallback()])[1] == 3
    given = _batch_norm.Refresh(x[:64])
    assert fit([given])[1] == 1


class _Block(keras.layers.Layer):
    """A convolution and batch normalization inside a custom layer (a ResNet block's
    way): Keras tracks them as attributes, not in ``layers``."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.conv = keras.layers.Conv2D(4, 3, padding="same", use_bias=False)
        self.norms = [keras.layers.BatchNormalization()]

    def call(self, inputs, training=None):
        return keras.ops.relu(self.norms[0](self.conv(inputs), training=training))


def test_layers_inside_custom_layers_and_wrappers_are_found():
    """They were not: a custom block's statistics were never refreshed (inference
    accuracy halved) and E64 missed its convolution."""
    from keras_adamixup import _batch_norm

    inputs = keras.Input((8, 8, 3))
    block = _Block()
    outputs = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(block(inputs)))
    base = keras.Model(inputs, outputs)
    assert _batch_norm.layers_of(base) == [block.norms[0]]
    assert _batch_norm.layers_of(base, keras.layers.Conv2D) == [block.conv]
    wrapped = keras.Sequential([keras.Input((4, 8)),
                                keras.layers.TimeDistributed(keras.layers.BatchNormalization())])
    assert len(_batch_norm.layers_of(wrapped)) == 1
    assert keras_adamixup.recommended.image_setting(base)  # the convolution is found
    with pytest.warns(UserWarning, match="E64"):
        keras_adamixup.recommended.model(base, budget=2.0)
    x = (np.random.default_rng(0).normal(size=(96, 8, 8, 3)) + 5.0).astype("float32")
    model = compile_adam(keras_adamixup.AdaMixupModel(base, schedule=0.0, seed=0), 1e-2)
    model.fit(x, np.arange(96) % 3, epochs=1, batch_size=32, verbose=0)
    fresh = keras.ops.convert_to_numpy(block.conv(x)).mean(axis=(0, 1, 2))
    np.testing.assert_allclose(block.norms[0].moving_mean.numpy(), fresh, atol=0.3)


def _dense_batch_norm(seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((8,)), keras.layers.Dense(8),
                             keras.layers.BatchNormalization(), keras.layers.Dense(3)])


def _ema_adam(wrapped=False):
    adam = keras.optimizers.Adam(5e-2, use_ema=True, ema_momentum=0.95)
    return keras.optimizers.LossScaleOptimizer(adam) if wrapped else adam


@pytest.mark.parametrize("wrapped", [False, True])
def test_statistics_fit_the_averaged_weights_of_an_ema_optimizer(wrapped):
    """`fit` swaps in the optimizer's averaged weights (``use_ema=True``, also inside
    a loss-scale wrapper, as under mixed precision) after the last epoch's refresh:
    the statistics must be those of the averaged weights (a CIFAR-10 CNN on stale
    ones fell from 0.56 to 0.43 test accuracy)."""
    from keras_adamixup import _batch_norm

    x, y = clusters(240, spread=2.0)
    base = _dense_batch_norm()
    model = keras_adamixup.AdaMixupModel(base, schedule=0.0, seed=0)
    model.compile(_ema_adam(wrapped), SPARSE_CE)
    model.fit(x, y, epochs=3, batch_size=16, verbose=0,
              callbacks=[keras.callbacks.LambdaCallback()])  # a refresh at each epoch's end
    layer = _batch_norm.layers_of(base)[0]
    kept = layer.moving_mean.numpy().copy()
    _batch_norm.refresh(base, x)
    np.testing.assert_allclose(kept, layer.moving_mean.numpy(), atol=1e-4)


def test_validation_reads_the_weights_swap_ema_weights_puts_in_with_their_statistics():
    """Keras' `SwapEMAWeights` swaps the averaged weights in for validation: the
    refresh must follow the swap (it ran first: val_loss 0.93 against 0.38 after
    `fit` in a helper's run)."""
    x, y = clusters(400, spread=2.0)
    model = keras_adamixup.AdaMixupModel(_dense_batch_norm(), schedule=0.0, seed=0)
    model.compile(_ema_adam(), SPARSE_CE)
    history = model.fit(x[:240], y[:240], validation_data=(x[240:], y[240:]), epochs=3,
                        batch_size=16, verbose=0,
                        callbacks=[keras.callbacks.LambdaCallback(),
                                   keras.callbacks.SwapEMAWeights()])
    after = model.evaluate(x[240:], y[240:], verbose=0, return_dict=True)
    assert history.history["val_loss"][-1] == pytest.approx(after["loss"], rel=1e-3)


@pytest.mark.parametrize("together", [False, True])
def test_teachers_train_without_the_weights_average(together):
    """A teacher kept at its last epoch got the averaged weights swapped in by its
    own `fit` and statistics of the raw ones (soft labels 0.84 accurate against
    1.00), the vectorized teachers none: teachers train without the average."""
    from keras_adamixup.teachers import _without_average

    x, y = clusters(240, spread=2.0)
    base = keras_adamixup.AdaMixupModel(_dense_batch_norm(), schedule=0.0, seed=0)
    base.compile(_ema_adam(), SPARSE_CE)
    teachers = SplitTeachers(2, 1, seed=0, near_duplicates=None, together=together,
                             select_epoch=None)
    soft = teachers.fit(base, x, y, epochs=4, batch_size=16).soft_labels
    assert np.mean(soft.argmax(1) == y) > 0.95
    for wrapped in (False, True):
        copy = _without_average(_ema_adam(wrapped))
        assert not getattr(copy, "inner_optimizer", copy).use_ema


def test_statistics_follow_the_raw_weights_swapped_back_after_validation():
    """`SwapEMAWeights()` validates the averaged weights and puts the raw ones back:
    at the epoch's end the monitors read the raw weights, with their statistics."""
    from keras_adamixup import _batch_norm

    x, y = clusters(400, spread=2.0)
    base = _dense_batch_norm()
    layer, gaps = _batch_norm.layers_of(base)[0], []

    def gap(epoch, logs):
        kept = layer.moving_mean.numpy().copy()
        _batch_norm.refresh(base, x[:240])
        gaps.append(float(np.abs(kept - layer.moving_mean.numpy()).max()))

    model = keras_adamixup.AdaMixupModel(base, schedule=0.0, seed=0)
    model.compile(_ema_adam(), SPARSE_CE)
    model.fit(x[:240], y[:240], validation_data=(x[240:], y[240:]), epochs=3, batch_size=16,
              verbose=0, callbacks=[keras.callbacks.LambdaCallback(on_epoch_end=gap),
                                    keras.callbacks.SwapEMAWeights()])
    assert max(gaps) < 1e-4


def test_the_recommended_setting_of_a_convolutional_base_is_the_image_setting(tmp_path):
    """Static mixup under LossTarget('plateau'), no teachers, the monitor alone: its
    target set from the validation data, on arrays and on a dataset; saved whole."""
    base = _cnn(augment=True)
    model = keras_adamixup.recommended.model(base, seed=0)
    assert model.targets is None and model.checkpoint is None
    assert repr(model.relax) == "LossTarget(target='plateau', factor=0.8, patience=3)"
    assert (model.label_mode, model.coefficient) == ("soft", "beta")
    assert not keras_adamixup.recommended.image_setting(base, budget=2.0)
    assert not keras_adamixup.recommended.image_setting(base, targets=SplitTeachers(2, 1))
    assert keras_adamixup.recommended.image_setting(base, targets=None)  # no teachers
    # not images: a text CNN (token ids through an embedding) and a sequence model
    text = keras.Sequential([keras.Input((20,), dtype="int32"), keras.layers.Embedding(50, 8),
                             keras.layers.Conv1D(8, 3), keras.layers.GlobalMaxPooling1D(),
                             keras.layers.Dense(3)])
    sequence = keras.Sequential([keras.Input((20, 4)), keras.layers.Conv1D(8, 3),
                                 keras.layers.GlobalMaxPooling1D(), keras.layers.Dense(3)])
    for other in (text, sequence):
        assert not keras_adamixup.recommended.image_setting(other)
        assert keras_adamixup.recommended.model(other).targets is not None
    x, y = _images(300, seed=0)
    x_val, y_val = _images(150, seed=2)
    model.compile(keras.optimizers.Adam(1e-2), SPARSE_CE, metrics=["accuracy"])
    data = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(300).batch(32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # E73 on so short a fit
        model.fit(data, validation_data=(x_val, y_val), epochs=3, verbose=0)
    assert [type(c).__name__ for c in model.holdout_callbacks] == ["PrivacyMonitor"]
    assert "monitor_loss_target" in model.history.history
    # the callbacks in hand, for this model: the same (no checkpoint), unless asked
    mine = keras_adamixup.recommended.callbacks(x, y, (x_val, y_val), model=model)
    assert [type(c).__name__ for c in mine] == ["PrivacyMonitor"]
    asked = keras_adamixup.recommended.callbacks(x, y, (x_val, y_val), model=model,
                                                 checkpoint=True)
    assert [type(c).__name__ for c in asked] == ["PrivacyMonitor", "PrivacyCheckpoint"]
    validation = tf.data.Dataset.from_tensor_slices((x_val, y_val)).batch(50)
    monitor, = keras_adamixup.recommended.callbacks(data, None, validation, model=model)
    assert len(monitor.members[1]) == 150  # drawn from the dataset: as many as held out
    model.save(tmp_path / "image.keras")
    loaded = keras.saving.load_model(tmp_path / "image.keras")
    assert repr(loaded.relax) == repr(model.relax) and loaded.targets is None


def test_shadows_of_a_saved_image_setting_model_get_monitors_and_plain_shadows(tmp_path):
    """The CLI's LiRA on `recommended.model(cnn)`: its shadows need a monitor for
    their loss target (E59 without one), and undefended shadows beside them."""
    from keras_adamixup.audit import saved_model

    model = keras_adamixup.recommended.model(_cnn(), seed=0)
    model.compile("adam", SPARSE_CE)
    x, y = _images(300, seed=0)
    with pytest.raises(ValueError, match="LossTarget.*need monitors"):
        saved_model.recipes_from_model(model, 2, str(tmp_path / "c"))
    own, plain = saved_model.recipes_from_model(model, 2, str(tmp_path / "c"),
                                                population=(x, y), epochs=1)
    kwargs = own.fit_kwargs(x[:150], y[:150])
    assert [type(c).__name__ for c in kwargs["callbacks"]] == ["PrivacyMonitor"]
    assert plain.name == "plain" and "callbacks" not in plain.fit_kwargs(x[:150], y[:150])
    assert saved_model.needs_monitor(model.base_model) is None
