"""Fit as usual: `recommended.model(base)` + `fit(..., validation_data=)` is the whole
recommended flow, on arrays and on a `tf.data.Dataset`; teachers as a value."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_adamixup
from keras_adamixup import _fit_dataset, _holdout_callbacks
from keras_adamixup import SplitTeachers, TeacherTargets
from tests.conftest import clusters, small_mlp

SPARSE_CE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _recommended(teachers=None, **overrides):
    if teachers is not None:
        overrides["targets"] = teachers
    model = keras_adamixup.recommended.model(small_mlp(3, inputs=8), seed=0, **overrides)
    model.compile(keras.optimizers.Adam(1e-2), SPARSE_CE, metrics=["accuracy"])
    return model


def _made_callbacks(monkeypatch):
    """Records the callbacks `fit` makes from the validation data."""
    made = []
    original = _holdout_callbacks.make

    def spy(*args, **kwargs):
        made.extend(original(*args, **kwargs))
        return made

    monkeypatch.setattr(_holdout_callbacks, "make", spy)
    return made


@pytest.mark.parametrize("data", ["arrays", "dataset"])
def test_validation_data_makes_the_monitor_and_the_checkpoint(monkeypatch, data):
    x, y = clusters(550, seed=1)
    x, y, x_val, y_val = x[:400], y[:400], x[400:], y[400:]
    made = _made_callbacks(monkeypatch)
    model = _recommended(SplitTeachers(4, 1, seed=0))
    if data == "arrays":
        history = model.fit(x, y, validation_data=(x_val, y_val), epochs=6, batch_size=32,
                            verbose=0)
    else:
        train = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
        val = tf.data.Dataset.from_tensor_slices((x_val, y_val)).batch(64)
        history = model.fit(train, validation_data=val, epochs=6, verbose=0)
    monitor, checkpoint = made
    assert isinstance(monitor, keras_adamixup.PrivacyMonitor)
    assert isinstance(checkpoint, keras_adamixup.PrivacyCheckpoint)
    assert checkpoint.patience == keras_adamixup.recommended.CHECKPOINT["patience"]
    assert len(history.history["monitor_auc"]) == 6 and checkpoint.best_epoch is not None
    # as many members (drawn from the training rows) as validation rows
    assert len(monitor.members[1]) == 150
    assert model.teacher_targets.rows == 400
    assert model.evaluate(x_val, y_val, verbose=0)[1] > 0.8


def test_without_validation_data_the_message_says_what_to_pass():
    x, y = clusters(200)
    model = _recommended(SplitTeachers(2, 1, seed=0))
    with pytest.raises(ValueError, match=r"validation_data=\(x_val, y_val\)"):
        model.fit(x, y, epochs=1, verbose=0)


def test_validation_split_and_given_monitors(monkeypatch):
    x, y = clusters(400, seed=1)
    made = _made_callbacks(monkeypatch)
    model = _recommended(SplitTeachers(2, 1, seed=0), checkpoint=None)
    model.fit(x, y, validation_split=0.3, epochs=2, batch_size=32, verbose=0)
    assert [type(c).__name__ for c in made] == ["PrivacyMonitor"]  # no checkpoint asked
    assert len(made[0].nonmembers[1]) == 120  # the last 30 %, as Keras splits
    made.clear()
    monitor = keras_adamixup.PrivacyMonitor.from_training(x[:280], y[:280], (x[280:], y[280:]))
    model.fit(x[:280], y[:280], validation_data=(x[280:], y[280:]), epochs=1, verbose=0,
              callbacks=[monitor])
    assert made == []  # the user's monitor wins


def test_checkpoint_settings_are_checked_and_round_trip():
    with pytest.raises(ValueError, match="unknown PrivacyCheckpoint arguments"):
        keras_adamixup.AdaMixupModel(small_mlp(), checkpoint={"patience": 2, "wait": 1})
    with pytest.raises(TypeError, match="`checkpoint` must be"):
        keras_adamixup.AdaMixupModel(small_mlp(), checkpoint="yes")
    model = keras_adamixup.AdaMixupModel(small_mlp(), checkpoint=True)
    assert model.checkpoint == {}
    again = keras_adamixup.AdaMixupModel.from_config(
        _recommended().get_config())
    assert again.checkpoint == keras_adamixup.recommended.CHECKPOINT


def test_teacher_targets_are_a_value_saved_and_reused_explicitly(tmp_path, monkeypatch):
    x, y = clusters(200)
    model = _recommended(SplitTeachers(4, 1, seed=0), schedule=0.0, checkpoint=None)
    model.fit(x, y, epochs=2, batch_size=32, verbose=0)
    targets = model.teacher_targets
    assert isinstance(targets, TeacherTargets) and targets.teachers == 4
    assert targets.left_out.sum(axis=0).tolist() == [1] * 200  # each row left out once
    with pytest.raises(ValueError, match="read-only"):
        targets.soft_labels[0, 0] = 1.0
    with pytest.raises(AttributeError):
        targets.digest = "other"
    targets.save(tmp_path / "teachers.npz")
    loaded = TeacherTargets.load(tmp_path / "teachers.npz")
    np.testing.assert_array_equal(loaded.soft_labels, targets.soft_labels)
    assert (loaded.digest, loaded.epochs) == (targets.digest, targets.epochs)
    fresh = _recommended(SplitTeachers(4, 1, seed=0), schedule=0.0, checkpoint=None)
    monkeypatch.setattr(fresh.targets, "make_teachers", lambda *a, **k: pytest.fail("trained"))
    fresh.teacher_targets = loaded
    fresh.fit(x, y, epochs=2, batch_size=32, verbose=0)  # reused: no teacher trains
    assert fresh.teacher_targets is loaded
    with pytest.raises(TypeError, match="TeacherTargets"):
        fresh.teacher_targets = targets.soft_labels
    # a continued fit of fewer epochs keeps teachers trained for more, after loading
    # too (it trained them again, shorter); one of more epochs trains them again
    fresh.fit(x, y, epochs=1, batch_size=32, verbose=0)
    assert fresh.teacher_targets is loaded
    monkeypatch.undo()
    fresh.fit(x, y, epochs=3, batch_size=32, verbose=0)
    assert fresh.teacher_targets is not loaded and fresh.teacher_targets.planned_epochs == 3


def test_fit_names_its_own_arguments():
    import inspect

    parameters = inspect.signature(keras_adamixup.AdaMixupModel.fit).parameters
    assert parameters["groups"].kind is inspect.Parameter.KEYWORD_ONLY
    assert parameters["unlabelled"].kind is inspect.Parameter.KEYWORD_ONLY


def test_soft_labels_join_back_by_index():
    """Each example gets its own soft label, whatever the shuffle does."""
    n = 300
    x = np.arange(n, dtype="float32").reshape(n, 1)
    soft = np.eye(3, dtype="float32")[np.arange(n) % 3] * 0.5 + 0.5 / 3
    dataset = tf.data.Dataset.from_tensor_slices((x, np.zeros(n, "int64"))).batch(7)
    joined = _fit_dataset.with_targets(dataset, soft, np.arange(n, dtype="float32"),
                                       batch_size=16, seed=0)
    seen = []
    for xb, sb, wb in joined.as_numpy_iterator():
        index = xb[:, 0].astype(int)
        np.testing.assert_allclose(sb, soft[index])
        np.testing.assert_allclose(wb, index)
        seen.extend(index)
    assert sorted(seen) == list(range(n)) and seen != list(range(n))  # all, shuffled


def test_a_dataset_that_cannot_be_indexed_is_refused_clearly():
    x, y = clusters(128)
    model = _recommended(SplitTeachers(2, 1, seed=0), schedule=0.0, checkpoint=None)
    shuffled = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(128).batch(32)
    with pytest.raises(ValueError, match="another order at each pass"):
        model.fit(shuffled, epochs=1, verbose=0)
    endless = tf.data.Dataset.from_tensor_slices((x, y)).batch(32).repeat()
    with pytest.raises(ValueError, match="infinite dataset"):
        model.fit(endless, epochs=1, steps_per_epoch=4, verbose=0)
    with pytest.raises(ValueError, match="not batched"):
        model.fit(tf.data.Dataset.from_tensor_slices((x, y)), epochs=1, verbose=0)
    plain = keras_adamixup.AdaMixupModel(small_mlp(3, inputs=8), schedule=0.0)  # no teachers
    plain.compile("adam", SPARSE_CE)
    with pytest.raises(ValueError, match="not batched"):
        plain.fit(tf.data.Dataset.from_tensor_slices((x, y)), epochs=1, verbose=0)


def test_a_dataset_reshuffled_behind_fixed_first_batches_is_caught():
    """Rows sorted by class, shuffled with a small buffer at every pass: the first
    batches hold the same labels each pass, later ones do not. Every indexed pass
    checks each label against the scan's, so the soft labels are never misjoined."""
    y = np.repeat([0, 1, 2], 100)
    x = (np.random.default_rng(0).normal(size=(300, 8)) * 0.3
         + np.eye(3, 8)[y] * 3).astype("float32")
    reshuffled = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(60, seed=1).batch(16)
    model = _recommended(SplitTeachers(3, 1, seed=0, epochs=1), schedule=0.0, checkpoint=None)
    with pytest.raises(ValueError, match="another order at each pass"):
        model.fit(reshuffled, epochs=1, verbose=0)


def test_a_streamed_dataset_with_augmentation_trains_the_teachers(monkeypatch):
    """Examples made on the fly (never a NumPy array of the inputs) with a random
    flip in the pipeline: teachers and model train; a second fit reuses the teachers."""
    centres = np.random.default_rng(0).normal(size=(3, 8)).astype("float32") * 3

    def example(i):
        label = i % 3
        noise = tf.random.stateless_normal((8,), seed=tf.stack([i, 0]))
        return tf.gather(centres, label) + noise, label

    def flip(element, draw):  # random augmentation: inputs change per pass, order does not
        x, y = element
        return tf.where(draw % 2 == 0, x, x * 1.01), y

    draws = tf.data.Dataset.random(seed=1, rerandomize_each_iteration=True)
    stream = tf.data.Dataset.zip((tf.data.Dataset.range(240).map(example), draws))
    stream = stream.map(flip).batch(24)
    scanned = _fit_dataset.scan(stream)
    assert scanned["n"] == 240 and not scanned["fixed_inputs"]
    model = _recommended(SplitTeachers(3, 1, seed=0), schedule=0.0, checkpoint=None)
    model.fit(stream, epochs=4, verbose=0)
    assert model.teacher_targets.rows == 240
    labels = np.arange(240) % 3
    assert (model.teacher_targets.soft_labels.argmax(1) == labels).mean() > 0.9
    monkeypatch.setattr(model.targets, "make_teachers", lambda *a, **k: pytest.fail("again"))
    model.fit(stream, epochs=4, verbose=0)


def test_near_duplicates_are_searched_in_a_dataset_that_fits_the_limit(monkeypatch, caplog):
    """From a dataset as from arrays: planted copies grouped and left out together;
    not searched (and said why) when the inputs change per pass or exceed the limit."""
    x, y = clusters(240, seed=3)
    x[200:210], y[200:210] = x[:10] + 1e-4, y[:10]  # ten near-copies
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(24)
    model = _recommended(SplitTeachers(4, 1, seed=0), schedule=0.0, checkpoint=None)
    model.fit(dataset, epochs=1, verbose=0)
    taught = model.teacher_targets
    assert taught.groups_found["groups"] >= 10
    assert all(np.array_equal(taught.left_out[:, i], taught.left_out[:, 200 + i])
               for i in range(10))
    draws = tf.data.Dataset.random(seed=1, rerandomize_each_iteration=True).batch(24)
    jittered = tf.data.Dataset.zip((dataset, draws)).map(
        lambda element, draw: (element[0] + tf.cast(draw[:, None] % 7, "float32") * 1e-4,
                               element[1]))
    for data, why, limit in ((jittered, "change from pass to pass", x.nbytes),
                             (dataset, "take more than", x.nbytes // 2)):
        monkeypatch.setattr(_fit_dataset, "SEARCH_BYTES", limit)
        caplog.clear()
        model = _recommended(SplitTeachers(4, 1, seed=0), schedule=0.0, checkpoint=None)
        with caplog.at_level("WARNING", logger="keras_adamixup"):
            model.fit(data, epochs=1, verbose=0)
        assert model.teacher_targets.groups_found is None
        assert why in caplog.text and "groups=ids" in caplog.text


def test_images_over_the_limit_are_searched_at_half_their_sides(monkeypatch, caplog):
    """A dataset of images larger than SEARCH_BYTES is kept halved (2 x 2 means) and
    searched there: its shifted and noisy copies are still grouped."""
    from keras_adamixup import _image_ops

    block = np.array([[1, 3, 5], [7, 9, 11], [13, 15, 17]], dtype="uint8")[None]
    assert _image_ops.halved(block).tolist() == [[[5]]]  # the odd row and column dropped
    grey = np.arange(16, dtype="float32").reshape(1, 4, 4)
    assert _image_ops.halved(grey).tolist() == [[[2.5, 4.5], [10.5, 12.5]]]
    rng = np.random.default_rng(0)
    coarse = rng.random((60, 4, 4, 3)).astype("float32")
    images = tf.image.resize(coarse, (32, 32)).numpy()  # smooth images
    copies = np.concatenate([np.roll(images[:5], 2, axis=2),  # shifted by 2 pixels
                             images[5:10] + rng.normal(0, 0.01, images[5:10].shape)])
    x = np.clip(np.concatenate([images, copies]) * 255, 0, 255).astype("uint8")
    y = np.arange(len(x)) % 3
    y[60:70] = y[:10]
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    monkeypatch.setattr(_fit_dataset, "SEARCH_BYTES", x.nbytes // 2)
    scanned = _fit_dataset.scan(dataset, keep_inputs=True)
    assert scanned["inputs_halved"] == 1 and scanned["inputs"].dtype == np.uint8
    whole = _fit_dataset.scan(dataset, keep_inputs=True, halve=False)  # for teachers alone
    assert whole["inputs"] is None and "take more than" in whole["inputs_not_kept"]
    assert "16 pixels" not in whole["inputs_not_kept"]
    np.testing.assert_array_equal(scanned["inputs"], _image_ops.halved(x))
    with caplog.at_level("INFO", logger="keras_adamixup"):
        labels = SplitTeachers(4, 1, seed=0)._dataset_groups(scanned, None)
    assert "1/2 of their sides (16 x 16 pixels, moved in half pixels)" in caplog.text
    assert all(labels[60 + i] == labels[i] for i in range(10))
    assert len(np.unique(labels)) == 60
    monkeypatch.setattr(_fit_dataset, "SEARCH_BYTES", x.nbytes // 64)  # under 8 pixels a side
    scanned = _fit_dataset.scan(dataset, keep_inputs=True)
    assert scanned["inputs"] is None and "even at 8 pixels a side" in scanned["inputs_not_kept"]
    flat = tf.data.Dataset.from_tensor_slices((x.reshape(len(x), -1), y)).batch(16)
    assert "16 pixels or more" in _fit_dataset.scan(flat, keep_inputs=True)["inputs_not_kept"]


def test_scan_keeps_one_input_even_in_a_dict_and_not_two():
    x, y = clusters(64, seed=4)
    one = tf.data.Dataset.from_tensor_slices(({"a": x}, y)).batch(16)
    kept = _fit_dataset.scan(one, keep_inputs=True)
    assert np.array_equal(kept["inputs"], x) and kept["inputs_not_kept"] is None
    two = tf.data.Dataset.from_tensor_slices(({"a": x, "b": x}, y)).batch(16)
    scanned = _fit_dataset.scan(two, keep_inputs=True)
    assert scanned["inputs"] is None and "2 inputs" in scanned["inputs_not_kept"]
    assert _fit_dataset.scan(one)["inputs"] is None  # not asked


def test_a_dataset_held_in_memory_trains_its_teachers_as_arrays_do(monkeypatch):
    """Inputs the same at every pass that fit `SEARCH_BYTES`: the teachers train from
    them as from arrays (together, vectorized): the same soft labels as `fit` on the
    arrays, the dataset's digest. Over the limit (never halved for them), from passes
    of the dataset: together (no `fit`), or one teacher after another with
    ``together=False``."""
    x, y = clusters(240, seed=5)
    weights = np.linspace(0.5, 1.5, len(y)).astype("float32")
    dataset = tf.data.Dataset.from_tensor_slices((x, y, weights)).batch(24)
    teachers = SplitTeachers(4, 1, seed=0, near_duplicates=None)
    model = _recommended(teachers, schedule=0.0, checkpoint=None)
    keras.utils.set_random_seed(1)  # the teachers' first weights
    from_dataset = teachers.fit(model, dataset, None, epochs=3)
    keras.utils.set_random_seed(1)
    from_arrays = teachers.fit(model, x, y, epochs=3, batch_size=24, sample_weight=weights)
    np.testing.assert_array_equal(from_dataset.soft_labels, from_arrays.soft_labels)
    np.testing.assert_array_equal(from_dataset.left_out, from_arrays.left_out)
    scanned = _fit_dataset.scan(dataset)
    assert from_dataset.digest == teachers.dataset_digest(scanned, epochs=3)
    fits = []
    original = keras.Model.fit
    monkeypatch.setattr(keras.Model, "fit", lambda self, data, *a, **k: (
        fits.append(_fit_dataset.is_dataset(data)), original(self, data, *a, **k))[1])
    monkeypatch.setattr(_fit_dataset, "SEARCH_BYTES", x.nbytes // 2)
    keras.utils.set_random_seed(1)
    streamed = teachers.fit(model, dataset, None, epochs=3)
    assert fits == [] and streamed.digest == from_dataset.digest
    assert not np.array_equal(streamed.soft_labels, from_dataset.soft_labels)
    alone = SplitTeachers(4, 1, seed=0, near_duplicates=None, together=False)
    alone.fit(model, dataset, None, epochs=3)
    assert fits == [True] * 4


def test_a_held_dataset_of_one_named_input_trains_as_its_arrays(monkeypatch, caplog):
    """`({"pixels": x}, y)` batches are held as `{"pixels": array}`: the teachers train
    from the arrays (no pass of the dataset each), as `fit` on the dict of arrays does.
    Given `groups` where the search cannot run, the log does not ask for them."""
    x, y = clusters(240, seed=6)
    inputs = keras.Input((8,), name="pixels")
    hidden = keras.layers.Dense(16, activation="relu")(inputs)
    model = keras_adamixup.recommended.model(
        keras.Model({"pixels": inputs}, keras.layers.Dense(3)(hidden)), seed=0)
    model.compile(keras.optimizers.Adam(1e-2), SPARSE_CE)
    teachers = SplitTeachers(4, 1, seed=0, near_duplicates=None)
    keyed = tf.data.Dataset.from_tensor_slices(({"pixels": x}, y)).batch(24)
    fits = []
    original = keras.Model.fit
    monkeypatch.setattr(keras.Model, "fit", lambda self, data, *a, **k: (
        fits.append(_fit_dataset.is_dataset(data)), original(self, data, *a, **k))[1])
    keras.utils.set_random_seed(1)
    held = teachers.fit(model, keyed, None, epochs=2)
    keras.utils.set_random_seed(1)
    arrays = teachers.fit(model, {"pixels": x}, y, epochs=2, batch_size=24)
    np.testing.assert_array_equal(held.soft_labels, arrays.soft_labels)
    assert fits and not any(fits)
    two = tf.data.Dataset.from_tensor_slices(((x, x), y)).batch(24)  # not searched
    with caplog.at_level("WARNING", logger="keras_adamixup"):
        SplitTeachers(2, 1, seed=0, epochs=1)._dataset_groups(
            _fit_dataset.scan(two, keep_inputs=True), np.arange(240) // 2)
    assert "2 inputs; only the given `groups`" in caplog.text
