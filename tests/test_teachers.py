"""SplitTeachers: out-of-fold soft labels, and AdaMixupModel(targets=...)."""

import keras
import numpy as np
import pytest

import keras_adamixup
from keras_adamixup import SplitTeachers
from tests.conftest import (cluster_mlp, cluster_student, clusters, compile_adam,
                            record_teachers)


def test_every_example_is_left_out_of_exactly_exclude_teachers():
    teachers = SplitTeachers(teachers=6, exclude=2, seed=3)
    left_out = teachers.left_out(500)
    assert left_out.shape == (6, 500)
    assert (left_out.sum(axis=0) == 2).all()
    # spread over the teachers (each leaves out about a third), reproducible
    assert np.allclose(left_out.mean(axis=1), 2 / 6, atol=0.08)
    assert (SplitTeachers(6, 2, seed=3).left_out(500) == left_out).all()
    assert not (SplitTeachers(6, 2, seed=4).left_out(500) == left_out).all()


@pytest.mark.parametrize("together", ["auto", False])
def test_soft_labels_come_only_from_teachers_that_left_the_example_out(together, monkeypatch):
    x, y = clusters()
    teachers = SplitTeachers(teachers=4, exclude=1, seed=0, together=together)
    trained = record_teachers(teachers, monkeypatch)
    soft = teachers.soft_labels(cluster_student(), x, y, epochs=3, batch_size=32)
    assert soft.shape == (len(x), 3) and soft.dtype == np.float32
    np.testing.assert_allclose(soft.sum(axis=1), 1.0, rtol=1e-5)
    # exclude=1: each soft label is the softmax of the one teacher that left it out
    left_out = teachers.left_out(len(x))
    expected = np.zeros_like(soft)
    for k, teacher in enumerate(trained):
        probs = keras.ops.convert_to_numpy(keras.ops.softmax(teacher.predict(x, verbose=0)))
        expected[left_out[k]] = probs[left_out[k]]
    np.testing.assert_allclose(soft, expected, atol=1e-5)
    # the teachers learned (separable clusters), so soft labels mostly agree with y
    assert (soft.argmax(axis=1) == y).mean() > 0.9


def test_teachers_never_train_on_the_examples_they_leave_out():
    x, y = clusters(n=64)
    teachers = SplitTeachers(teachers=2, exclude=1, seed=0, together=False)
    seen = []
    made = teachers.make_teachers(cluster_student())
    for teacher in made:
        fit = teacher.fit

        def recording(xs, ys, _fit=fit, **kwargs):
            seen.append({row.tobytes() for row in xs})
            return _fit(xs, ys, **kwargs)

        teacher.fit = recording
    teachers.make_teachers = lambda model, count=None: made
    teachers.soft_labels(cluster_student(), x, y, epochs=1, batch_size=16)
    left_out = teachers.left_out(len(x))
    for k in range(2):
        rows = {row.tobytes() for row in x[left_out[k]]}
        assert not rows & seen[k]
        assert seen[k] == {row.tobytes() for row in x[~left_out[k]]}


def test_binary_sigmoid_model_gets_one_column_soft_labels():
    x, y = clusters(classes=2)
    base = cluster_mlp(1, "sigmoid")
    model = keras_adamixup.AdaMixupModel(base, schedule=0.0, seed=1)
    model.compile("adam", "binary_crossentropy")
    soft = SplitTeachers(3, 1, seed=0).soft_labels(model, x, y.astype("float32"), epochs=2)
    assert soft.shape == (len(x), 1)
    assert ((soft >= 0) & (soft <= 1)).all()


def test_model_trains_on_soft_labels_and_round_trips(tmp_path):
    x, y = clusters()
    model = cluster_student(
        base=cluster_mlp(), schedule=keras_adamixup.schedules.LinearDecay(0.4, 0.0),
        targets=SplitTeachers(teachers=4, exclude=1, seed=7), metrics=["accuracy"])
    history = model.fit(x, y, epochs=4, batch_size=32, verbose=0)
    # trained on soft targets; it learned the clusters
    assert history.history["accuracy"][-1] > 0.8
    assert (model.predict(x, verbose=0).argmax(axis=1) == y).mean() > 0.9
    config = model.get_config()
    again = keras_adamixup.AdaMixupModel.from_config(config)
    assert isinstance(again.targets, SplitTeachers)
    assert again.targets.get_config() == model.targets.get_config()
    model.save(tmp_path / "teachers.keras")
    loaded = keras.models.load_model(tmp_path / "teachers.keras")
    assert loaded.targets.get_config() == model.targets.get_config()
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-5)


def test_errors():
    with pytest.raises(ValueError, match="smaller than `teachers`"):
        SplitTeachers(teachers=4, exclude=4)
    with pytest.raises(ValueError, match="teachers"):
        SplitTeachers(teachers=1, exclude=1)
    with pytest.raises(ValueError, match="select_epoch"):
        SplitTeachers(select_epoch="auc")
    with pytest.raises(TypeError, match="targets"):
        keras_adamixup.AdaMixupModel(cluster_mlp(), targets="teachers")
    x, y = clusters(n=64)
    import tensorflow as tf

    model = cluster_student()
    model.targets = SplitTeachers(2, 1, seed=0)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    with pytest.raises(ValueError, match="needs training arrays"):
        SplitTeachers(2, 1, seed=0, cache_dir="never-made").fit(model, data, None)
    with pytest.raises(ValueError, match="cannot train together"):
        SplitTeachers(2, 1, seed=0, together=True).soft_labels(_multi_input(), x, y)


@pytest.mark.parametrize("value", [1, 0, "yes", None])
def test_together_is_checked_in_one_place_for_teachers_and_shadows(value):
    from keras_adamixup import audit

    with pytest.raises(ValueError, match="`together` must be 'auto', True or False"):
        SplitTeachers(2, 1, together=value)
    with pytest.raises(ValueError, match="`together` must be 'auto', True or False"):
        audit.ShadowRecipe(model_factory=cluster_mlp, together=value)


def _multi_input():
    a = keras.Input((8,))
    b = keras.Input((8,))
    out = keras.layers.Dense(3)(keras.layers.Concatenate()([a, b]))
    model = keras.Model([a, b], out)
    return compile_adam(model)


@pytest.mark.parametrize("together", ["auto", False])
def test_select_epoch_keeps_each_teachers_best_out_of_fold_epoch(together):
    # noisy labels: the teachers overfit, and their out-of-fold loss rises late
    x, y = clusters(n=200, seed=1)
    y = np.where(np.random.default_rng(2).random(len(y)) < 0.3,
                 np.random.default_rng(3).integers(0, 3, len(y)), y)

    def out_of_fold_loss(select_epoch):
        keras.utils.set_random_seed(0)
        teachers = SplitTeachers(4, 1, seed=0, together=together, select_epoch=select_epoch)
        soft = teachers.soft_labels(cluster_student(), x, y, epochs=20, batch_size=16)
        return float(np.mean(-np.log(soft[np.arange(len(y)), y])))

    selected, last = out_of_fold_loss("loss"), out_of_fold_loss(None)
    assert selected < last - 0.1, (selected, last)


def test_select_epoch_by_accuracy_keeps_the_most_accurate_epoch():
    x, y = clusters(n=120, seed=4)
    teacher = compile_adam(cluster_student().base_model, 1e-2)
    from keras_adamixup.teachers import _BestEpoch

    keeper = _BestEpoch(teacher, x[:60], y[:60], "logits", "accuracy")
    keys = []  # (−accuracy, loss) per epoch: the most accurate, ties to the lower loss
    for _ in range(6):
        teacher.fit(x[60:], y[60:], epochs=1, batch_size=16, verbose=0)
        keeper.update()
        probs = keras.ops.convert_to_numpy(keras.ops.softmax(teacher.predict(x[:60], verbose=0)))
        keys.append((-np.mean(probs.argmax(1) == y[:60]),
                     -np.mean(np.log(probs[np.arange(60), y[:60]]))))
    keeper.restore()
    assert keeper.best_epoch == 1 + min(range(6), key=keys.__getitem__)
    probs = keras.ops.convert_to_numpy(keras.ops.softmax(teacher.predict(x[:60], verbose=0)))
    assert np.mean(probs.argmax(1) == y[:60]) == -min(keys)[0]


@pytest.mark.parametrize("together", ["auto", False])
def test_patience_stops_each_teacher_after_its_best_epoch(together, monkeypatch):
    from keras_adamixup import teachers as teachers_lib

    # noisy labels: the out-of-fold loss turns up after a few epochs
    x, y = clusters(n=200, seed=1)
    y = np.where(np.random.default_rng(2).random(len(y)) < 0.3,
                 np.random.default_rng(3).integers(0, 3, len(y)), y)
    keepers = []
    original = teachers_lib._BestEpoch.__init__

    def spy(self, *args, **kwargs):
        original(self, *args, **kwargs)
        keepers.append(self)

    monkeypatch.setattr(teachers_lib._BestEpoch, "__init__", spy)
    keras.utils.set_random_seed(0)
    split = SplitTeachers(4, 1, seed=0, together=together, patience=3)
    targets = split.fit(cluster_student(), x, y, epochs=40, batch_size=16)
    assert len(keepers) == 4 and all(k.stopped for k in keepers)
    # each stopped 3 epochs after its best; its kept epoch is final
    assert targets.epochs == tuple(k.best_epoch + 3 for k in keepers)
    assert max(targets.epochs) < 40 and targets.planned_epochs == 40
    keepers.clear()
    everything = SplitTeachers(4, 1, seed=0, together=together, patience=None)
    assert everything.fit(cluster_student(), x, y, epochs=12, batch_size=16).epochs == (12,) * 4
    assert SplitTeachers.from_config(split.get_config()).patience == 3
    with pytest.raises(ValueError, match="patience"):
        SplitTeachers(4, 1, patience=0)


def test_compute_caps_the_teachers_epochs_by_rows_times_epochs():
    def capped(teachers, exclude, compute, epochs=40, n=1000):
        split = SplitTeachers(teachers, exclude, seed=0, compute=compute)
        return split.teacher_epochs(epochs, split.left_out(n))

    # each teacher trains on its rows and measures those it left out (a third each)
    assert capped(4, 1, 1.0) == 12   # 3 + 1/3 rows in 4 per teacher: 40 / (10 / 3)
    assert capped(2, 1, 1.0) == 30   # 1 + 1/3 of the model's rows: 40 / (4 / 3)
    assert capped(16, 2, 1.0) == 2   # 14 + 2/3 of 16 each: 40 / 14.7
    assert capped(4, 1, 0.01) == 1   # at least one epoch
    assert capped(2, 1, 5.0) == 40   # never more than the model's epochs
    assert capped(4, 1, None) == 40
    unmeasured = SplitTeachers(2, 1, seed=0, compute=1.0, select_epoch=None)
    assert unmeasured.teacher_epochs(40, unmeasured.left_out(1000)) == 40
    with pytest.raises(ValueError, match="compute"):
        SplitTeachers(4, 1, compute=0)
    x, y = clusters(120)
    targets = SplitTeachers(4, 1, seed=0, compute=1.0, near_duplicates=None).fit(
        compile_adam(cluster_mlp(seed=0), 1e-2), x, y, epochs=10, batch_size=32)
    assert targets.planned_epochs == 3 and max(targets.epochs) <= 3  # 10 / (10 / 3)


def test_label_weight_mixes_the_given_label_into_the_models_targets():
    split = SplitTeachers(2, 1, seed=0, label_weight=0.25)
    soft = np.array([[0.5, 0.5, 0.0], [0.2, 0.2, 0.6], [0.1, 0.8, 0.1]], dtype="float32")
    mixed = split.student_targets(soft, np.array([0, 2]))  # the third row is unlabelled
    np.testing.assert_allclose(mixed, [[0.625, 0.375, 0.0], [0.15, 0.15, 0.7],
                                       [0.1, 0.8, 0.1]], atol=1e-6)
    assert SplitTeachers(2, 1).student_targets(soft, np.array([0, 2])) is soft
    with pytest.raises(ValueError, match="label_weight"):
        SplitTeachers(2, 1, label_weight=1.0)
    x, y = clusters(90)
    model = cluster_student(SplitTeachers(2, 1, seed=0, near_duplicates=None, label_weight=0.5))
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    assert model.get_config()["targets"]["config"]["label_weight"] == 0.5
