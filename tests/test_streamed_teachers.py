"""Teachers trained together from a dataset read in passes (`_stacked.train_streamed`)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_adamixup import SplitTeachers, _fit_dataset, _stacked
from tests.conftest import SPARSE_CE, clusters, cluster_student, compile_adam, small_mlp


def _augmented(x, y, batch=24, seed=1):
    """`(x, y)` batches with a random per-pass change of the inputs (not held)."""
    draws = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    data = tf.data.Dataset.from_tensor_slices((x, y))
    return tf.data.Dataset.zip((data, draws)).map(
        lambda element, draw: (element[0] * (1.0 + tf.cast(draw % 3, "float32") * 1e-3),
                               element[1])).batch(batch)


def test_stream_plan_gives_each_model_only_its_own_rows():
    masks = np.array([[1, 1, 0, 1, 0, 1, 1, 1, 1, 1],
                      [0, 1, 1, 1, 1, 1, 0, 1, 1, 1]], dtype=bool)
    i = np.array([9, 2, 0, 6, 5])
    weights_by_example = np.linspace(1.0, 2.0, 10).astype("float32")
    indices, weights = _stacked._stream_plan(i, masks, weights_by_example)
    assert indices.shape == weights.shape == (2, 8)  # 4 rows of model 1: padded to 8
    for k in range(2):
        real = weights[k] > 0
        assert set(i[indices[k]]) <= set(np.flatnonzero(masks[k]))  # padding repeats members
        assert sorted(i[indices[k][real]]) == sorted(e for e in i if masks[k, e])
        # the mean over the padded batch is the weighted mean over its members
        expected = weights_by_example[i[indices[k][real]]].sum() / real.sum()
        assert weights[k].sum() / indices.shape[1] == pytest.approx(expected)


def test_a_batch_where_a_model_has_no_row_is_joined_to_its_neighbour():
    masks = np.array([[1, 1, 1, 0, 1, 1], [1, 1, 1, 1, 0, 1]], dtype=bool)
    batches = [(np.array([0, 1]), tf.constant([[0.0], [1.0]]), tf.constant([0, 1])),
               (np.array([3]), tf.constant([[3.0]]), tf.constant([1])),  # model 0 has none
               (np.array([2, 5]), tf.constant([[2.0], [5.0]]), tf.constant([0, 1])),
               (np.array([4]), tf.constant([[4.0]]), tf.constant([0]))]  # model 1 has none
    joined = list(_stacked._complete_batches(batches, masks))
    assert [list(i) for i, _, _ in joined] == [[0, 1, 3], [2, 5, 4]]
    assert [x.numpy().ravel().tolist() for _, x, _ in joined] == [[0, 1, 3], [2, 5, 4]]


@pytest.mark.parametrize("vectorize", [False, True])
def test_a_streamed_model_never_sees_the_rows_it_does_not_train_on(vectorize):
    """Rows model 0 leaves out hold inputs of 100: its batch-normalization statistics
    stay those of its own rows (model 1 trains on them and its mean moves)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 4)).astype("float32")
    y = (np.arange(96) % 2).astype("int64")
    masks = np.ones((2, 96), dtype=bool)
    masks[0, ::4] = False
    x[::4] += 100.0
    models = []
    for _ in range(2):
        model = keras.Sequential([keras.Input((4,)), keras.layers.BatchNormalization(momentum=0.5),
                                  keras.layers.Dense(2)])
        models.append(compile_adam(model, loss=SPARSE_CE))
    indexed = tf.data.Dataset.from_tensor_slices((np.arange(96), x, y)).shuffle(96, seed=0)
    _stacked.train_streamed(models, indexed.batch(16), masks, epochs=2, vectorize=vectorize)
    means = [float(np.mean(m.layers[0].moving_mean.numpy())) for m in models]
    assert means[0] < 5.0 < means[1]


def test_streamed_teachers_label_each_row_without_it():
    """Random inputs with random labels: a teacher that trained on a row memorizes
    its label and gives it back; left out of it, the row's soft label is a guess."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(240, 64)).astype("float32")
    y = rng.integers(0, 3, 240)
    model = cluster_student(base=small_mlp(3, inputs=64))
    teachers = SplitTeachers(4, 1, seed=0, near_duplicates=None, select_epoch=None)
    targets = teachers.fit(model, _augmented(x, y), None, epochs=40)
    assert (targets.soft_labels.argmax(1) == y).mean() < 0.55  # chance: 1/3


def test_streamed_teachers_keep_their_best_epoch_and_train_as_the_loop_does():
    """With epoch selection (the default) the stacked pass and the loop of `fit`s
    keep epochs and give soft labels of the same quality."""
    x, y = clusters(240, seed=8)
    data = _augmented(x, y)
    results = {}
    for together in ("auto", False):
        teachers = SplitTeachers(3, 1, seed=0, near_duplicates=None, together=together,
                                 patience=2)
        results[together] = teachers.fit(cluster_student(), data, None, epochs=12)
    for taught in results.values():
        assert len(taught.epochs) == 3 and all(1 <= e <= 12 for e in taught.epochs)
        assert (taught.soft_labels.argmax(1) == y).mean() > 0.9
    assert np.array_equal(results["auto"].left_out, results[False].left_out)


def test_together_true_names_why_a_dataset_cannot_train_together():
    x, y = clusters(64)
    two = tf.data.Dataset.from_tensor_slices(({"a": x, "b": x}, y)).batch(16)
    inputs = {name: keras.Input((8,), name=name) for name in "ab"}
    joined = keras.layers.Concatenate()(list(inputs.values()))
    student = cluster_student(base=keras.Model(inputs, keras.layers.Dense(3)(joined)))
    with pytest.raises(ValueError, match="cannot train together: the training inputs are not "
                                         r"a single array \(a dict.*Leave together='auto'"):
        SplitTeachers(2, 1, seed=0, together=True, near_duplicates=None).fit(student, two, None)


def test_batches_of_one_train_the_teachers_one_after_another():
    """With batches of one row, the smaller teachers cannot take the largest's steps
    per epoch: the teachers train one after another (together=True says why)."""
    x, y = clusters(40)
    taught = SplitTeachers(4, 1, seed=0, near_duplicates=None).fit(
        cluster_student(), x, y, epochs=1, batch_size=1)
    assert taught.soft_labels.shape == (40, 3)
    with pytest.raises(ValueError, match="cannot take the .* steps per epoch"):
        SplitTeachers(4, 1, seed=0, near_duplicates=None, together=True).fit(
            cluster_student(), x, y, epochs=1, batch_size=1)


@pytest.mark.slow  # six fits, about 25 s
def test_repeated_streamed_fits_do_not_warn_of_retracing(caplog):
    """Each fit compiles its own step; TensorFlow, which counts traces per function
    code, must not read six fits in one process as excessive retracing."""
    x, y = clusters(48)
    with caplog.at_level("WARNING", logger="tensorflow"):
        for seed in range(6):
            SplitTeachers(3, 1, seed=seed, near_duplicates=None).fit(
                cluster_student(), _augmented(x, y, batch=12), None, epochs=1)
    assert "retracing" not in caplog.text
