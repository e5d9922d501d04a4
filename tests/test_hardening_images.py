"""Regression tests of the careless-user pass on the image and dataset paths
(docs/HARDENING.md, "Images and datasets, tried as a careless user would"): each test
names its case."""

import numpy as np
import pytest
import tensorflow as tf

import keras_adamixup
from keras_adamixup import SplitTeachers, schedules
from tests.conftest import cluster_student, clusters


def _monitored():
    """A model whose `fit` makes a monitor from `validation_data` (PlateauDecay)."""
    return cluster_student(schedule=schedules.PlateauDecay(0.4))


def test_an_infinite_validation_dataset_is_refused_not_counted_forever():
    """Was a hang: the monitor counted the examples of `validation_data.repeat()`."""
    x, y = clusters(300)
    val = tf.data.Dataset.from_tensor_slices(clusters(200, seed=1)).batch(32).repeat()
    with pytest.raises(ValueError, match="`validation_data` is an infinite dataset"):
        _monitored().fit(x, y, validation_data=val, validation_steps=3, epochs=1, verbose=0)


def test_an_unbatched_validation_dataset_says_batch_it():
    """Was TensorFlow's "Cannot unbatch an input with scalar components"."""
    x, y = clusters(300)
    val = tf.data.Dataset.from_tensor_slices(clusters(200, seed=1))
    with pytest.raises(ValueError, match=r"`validation_data` is not batched .*"
                                         r"validation_data.batch\(64\)"):
        _monitored().fit(x, y, validation_data=val, epochs=1, verbose=0)


def test_a_dataset_of_dicts_says_how_to_make_pairs_without_teachers_too():
    """Was Keras' structure error from inside the train step (teachers: clear)."""
    x, y = clusters(64)
    data = tf.data.Dataset.from_tensor_slices({"image": x, "label": y}).batch(16)
    for targets in (None, SplitTeachers(2, 1, near_duplicates=None)):
        with pytest.raises(ValueError, match=r"\(x, y\) or \(x, y, sample_weight\) batches.*"
                                             r"as_supervised=True"):
            cluster_student(targets=targets).fit(data, epochs=1, verbose=0)


def test_channels_first_images_are_searched_as_images():
    """Was silent: (n, C, H, W) read as features, a shifted copy never grouped."""
    rng = np.random.default_rng(0)
    images = rng.random((60, 16, 16, 3)).astype("float32")
    images[1] = np.concatenate([images[0][:1], images[0][:-1]])  # moved down a pixel
    first = np.transpose(images, (0, 3, 1, 2))
    for x in (images, first):
        groups = SplitTeachers(2, 1).groups(x)
        assert groups[1] == groups[0] == 0 and len(np.unique(groups)) == 59
    assert keras_adamixup.duplicates.settings_for(first)["shift"] == 0  # what it was


def test_the_near_duplicate_search_says_it_starts(caplog):
    """Was 10 s of silence on 2,000 CIFAR-10 images (minutes on tens of thousands)."""
    images = np.random.default_rng(0).random((40, 16, 16, 3)).astype("float32")
    with caplog.at_level("INFO", logger="keras_adamixup"):
        SplitTeachers(2, 1).groups(images)
    said = [r.getMessage() for r in caplog.records]
    assert said[0] == ("SplitTeachers: searching 40 rows for near-duplicates (images: "
                       "shifted up to 2 and cropped up to 3 pixels, in half pixels)")
    assert said[1].startswith("SplitTeachers: 0 of 40 rows in groups")


def test_nan_in_the_training_images_is_named_by_fit_not_by_the_monitor():
    """Was E52 about "the monitor's members", which the user never made (fit's E39
    came after the monitor was drawn)."""
    import keras

    x = np.random.default_rng(0).random((300, 8, 8, 1)).astype("float32")
    y = np.arange(300) % 3
    x[:100, 2, 2, 0] = np.nan  # half the training rows: the monitor's draw holds some
    base = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3),
                             keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)])
    model = keras_adamixup.recommended.model(base, budget=2.0)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    with pytest.raises(ValueError, match=r"E39: `x` has NaN or inf in 100 row\(s\)"):
        model.fit(x[:200], y[:200], validation_data=(x[200:], y[200:]), epochs=1, verbose=0)


def test_third_round_errors_name_the_argument_given():
    """docs/HARDENING.md, third round: a negative `schedule` was blamed on `value`, a
    target given as a string was asked to be 'holdout'."""
    with pytest.raises(ValueError, match="E01: `schedule` must be ≥ 0, got -0.1"):
        keras_adamixup.AdaMixupModel(cluster_student().base_model, schedule=-0.1)
    with pytest.raises(TypeError, match="got the string '1.0': give the number, 1"):
        keras_adamixup.LossTarget("1.0")
    with pytest.raises(ValueError,
                       match="E59: `target` must be 'holdout' or 'plateau' or a number > 0"):
        keras_adamixup.LossTarget("hold")  # a misspelt word: every word allowed is named
    assert keras_adamixup.LossTarget(1.0).target == 1.0


def test_third_round_an_error_in_a_shadow_recipe_names_the_recipe():
    """docs/HARDENING.md, third round: E14 from a shadow recipe's `validation_data`
    said nothing of the recipe."""
    import sys

    from keras_adamixup import audit
    from tests.conftest import compile_adam, small_mlp

    if sys.version_info < (3, 11):
        pytest.skip("exception notes need Python 3.11")
    rng = np.random.default_rng(0)
    x, y = rng.random((400, 64)).astype("float32"), rng.integers(0, 10, 400)
    model = compile_adam(small_mlp(), 1e-3)
    model.fit(x[:200], y[:200], epochs=1, verbose=0)
    recipe = audit.ShadowRecipe(
        lambda: compile_adam(keras_adamixup.recommended.model(small_mlp(), seed=0), 1e-3),
        num_shadows=2, name="defended",
        fit_kwargs={"epochs": 1, "verbose": 0, "validation_data": (x[200:], y[200:])})
    plain = audit.ShadowRecipe(lambda: compile_adam(small_mlp(), 1e-3), num_shadows=2,
                               fit_kwargs={"epochs": 1, "verbose": 0})
    with pytest.raises(ValueError, match="E14") as error:
        audit.run_audit(model, (x[:200], y[:200]), (x[200:], y[200:]),
                        attacks=("threshold",), lira=[plain, recipe])
    assert "the shadows of the recipe 'defended'" in " ".join(error.value.__notes__)


def test_images_from_a_directory_reshuffled_are_refused_and_cached_train(tmp_path):
    """Fifth round: E72 sent users to `image_dataset_from_directory(shuffle=False)`,
    whose files come in class order (its validation split: the last classes alone).
    Its advice now, `shuffle=True, seed=N` and `.cache()`, trains split teachers."""
    import keras

    rng = np.random.default_rng(0)
    for label in range(3):
        (tmp_path / f"class{label}").mkdir()
        for i in range(20):
            image = rng.integers(0, 80, (8, 8, 3)) + 80 * label
            tf.io.write_file(str(tmp_path / f"class{label}" / f"{i}.png"),
                             tf.io.encode_png(image.astype("uint8")))
    load = lambda: keras.utils.image_dataset_from_directory(  # noqa: E731
        tmp_path, image_size=(8, 8), batch_size=16, shuffle=True, seed=1, verbose=False)
    base = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Rescaling(1 / 255),
                             keras.layers.Flatten(), keras.layers.Dense(3)])
    model = keras_adamixup.AdaMixupModel(base, schedule=0.2, seed=0,
                                         targets=SplitTeachers(2, 1, near_duplicates=None))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    with pytest.raises(ValueError, match=r"E72: .*shuffle=True, seed=N` and add `.cache\(\)"):
        model.fit(load(), epochs=1, verbose=0)
    model.fit(load().cache(), epochs=1, verbose=0)
    assert model.teacher_targets.rows == 60
