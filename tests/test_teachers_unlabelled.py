"""SplitTeachers' public rows without labels: `soft_labels(..., unlabelled=)` and
`AdaMixupModel.fit(..., unlabelled=)` (DMP's reference set)."""

import keras
import numpy as np
import pytest

from keras_adamixup import SplitTeachers
from tests.conftest import cluster_student, clusters, record_teachers


@pytest.mark.parametrize("together", ["auto", False])
def test_unlabelled_rows_get_the_mean_of_every_teacher(together, monkeypatch):
    x, y = clusters(300, 3, 0, spread=3.0)
    x, y, public, public_y = x[:240], y[:240], x[240:], y[240:]
    teachers = SplitTeachers(teachers=4, exclude=1, seed=0, together=together)
    trained = record_teachers(teachers, monkeypatch)
    soft = teachers.soft_labels(cluster_student(), x, y, epochs=3, batch_size=32, unlabelled=public)
    assert soft.shape == (300, 3) and soft.dtype == np.float32
    # the training rows' labels are out-of-fold, as without public rows
    left_out = teachers.left_out(len(x))
    for k, teacher in enumerate(trained):
        probs = keras.ops.convert_to_numpy(keras.ops.softmax(teacher.predict(x, verbose=0)))
        np.testing.assert_allclose(soft[:240][left_out[k]], probs[left_out[k]], atol=1e-5)
    # every teacher answers for the public rows (none trained on them)
    expected = np.mean([keras.ops.convert_to_numpy(keras.ops.softmax(
        t.predict(public, verbose=0))) for t in trained], axis=0)
    np.testing.assert_allclose(soft[240:], expected, atol=1e-5)
    assert (soft[240:].argmax(axis=1) == public_y).mean() > 0.9


def test_nearest_unlabelled_teachers_are_those_that_left_out_the_nearest_member(
        monkeypatch):
    x, y = clusters(300, 3, 0, spread=3.0)
    x, y, public = x[:240], y[:240], x[240:]
    teachers = SplitTeachers(teachers=4, exclude=1, seed=0, unlabelled_teachers="nearest")
    trained = record_teachers(teachers, monkeypatch)
    soft = teachers.soft_labels(cluster_student(), x, y, epochs=2, batch_size=32, unlabelled=public)
    left_out = teachers.left_out(len(x))
    distances = ((public[:, None, :] - x[None, :, :]) ** 2).sum(axis=2)
    nearest = distances.argmin(axis=1)
    for row, member in enumerate(nearest):
        (k,) = np.flatnonzero(left_out[:, member])  # exclude=1: one teacher
        probs = keras.ops.convert_to_numpy(keras.ops.softmax(
            trained[k].predict(public[row:row + 1], verbose=0)))
        np.testing.assert_allclose(soft[240 + row], probs[0], atol=1e-5)


def test_the_model_trains_on_the_public_rows_too_and_the_cache_keeps_them(tmp_path):
    x, y = clusters(300, 3, 0, spread=3.0)
    x, y, public = x[:240], y[:240], x[240:]
    seen = []

    class Rows(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen.append(self.params.get("steps"))

    weights = np.linspace(0.5, 1.5, 240).astype("float32")
    targets = SplitTeachers(teachers=3, exclude=1, seed=0, cache_dir=str(tmp_path))
    model = cluster_student(targets)
    model.fit(x, y, epochs=2, batch_size=30, verbose=0, unlabelled=public,
              sample_weight=weights, callbacks=[Rows()])
    assert seen == [10]  # (240 + 60) rows / 30
    soft = model.teacher_soft_labels
    assert soft.shape == (300, 3)
    # a second model reads the teachers (and their labels of the public rows) from the cache
    again = cluster_student(SplitTeachers(teachers=3, exclude=1, seed=0, cache_dir=str(tmp_path)))
    again.targets.make_teachers = None  # training a teacher would fail
    again.fit(x, y, epochs=2, batch_size=30, verbose=0, unlabelled=public,
              sample_weight=weights)
    np.testing.assert_allclose(again.teacher_soft_labels, soft, atol=1e-6)
    # the model keeps its soft labels for the same data only: without the public rows
    # (or with others) the teachers answer again
    other = cluster_student(SplitTeachers(teachers=3, exclude=1, seed=0))
    other.fit(x, y, epochs=1, batch_size=30, verbose=0, unlabelled=public)
    other.fit(x, y, epochs=1, batch_size=30, verbose=0)
    assert other.teacher_soft_labels.shape == (240, 3)
    other.fit(x, y, epochs=1, batch_size=30, verbose=0, unlabelled=public[:20])
    assert other.teacher_soft_labels.shape == (260, 3)


def test_student_rows_unlabelled_trains_the_model_on_the_public_rows_alone(tmp_path):
    x, y = clusters(300, 3, 0, spread=3.0)
    x, y, public, public_y = x[:240], y[:240], x[240:], y[240:]
    batches = []

    class Batches(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            batches.append(self.params.get("steps"))

    shared = SplitTeachers(teachers=3, exclude=1, seed=0, epochs=3, cache_dir=str(tmp_path))
    both = cluster_student(shared)
    both.fit(x, y, epochs=3, batch_size=30, verbose=0, unlabelled=public)
    alone = SplitTeachers(teachers=3, exclude=1, seed=0, epochs=3, cache_dir=str(tmp_path),
                          student_rows="unlabelled")
    alone.make_teachers = None  # the same teachers: read from the cache, not retrained
    model = cluster_student(alone)
    model.fit(x, y, epochs=20, batch_size=30, verbose=0, unlabelled=public,
              callbacks=[Batches()])
    assert batches == [2]  # 60 public rows / 30: no training row reaches the model
    np.testing.assert_allclose(model.teacher_soft_labels, both.teacher_soft_labels,
                               atol=1e-6)
    assert (model.predict(public, verbose=0).argmax(axis=1) == public_y).mean() > 0.9
    config = alone.get_config()
    assert config["student_rows"] == "unlabelled"
    assert SplitTeachers.from_config(config).get_config() == config
    with pytest.raises(ValueError, match="pass them as `fit"):
        cluster_student(SplitTeachers(3, 1, seed=0, student_rows="unlabelled")).fit(
            x, y, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="student_rows"):
        SplitTeachers(3, 1, student_rows="public")
    with pytest.raises(ValueError, match="unlabelled_teachers"):
        SplitTeachers(3, 1, unlabelled_teachers="some")


def test_unlabelled_errors():
    x, y = clusters(60, 3, 0, spread=3.0)
    with pytest.raises(ValueError, match="no `targets=SplitTeachers"):
        cluster_student().fit(x, y, epochs=1, verbose=0, unlabelled=x)
    model = cluster_student(SplitTeachers(3, 1, seed=0))
    with pytest.raises(ValueError, match="rows have shape"):
        model.fit(x, y, epochs=1, verbose=0, unlabelled=x[:, :4])
    with pytest.raises(ValueError, match="at least one row"):
        model.fit(x, y, epochs=1, verbose=0, unlabelled=x[:0])
    with pytest.raises(ValueError, match="same structure"):
        model.fit(x, y, epochs=1, verbose=0, unlabelled={"a": x})
