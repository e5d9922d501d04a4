"""Regression tests of the third hostile-user round (issue 39) on the teachers and
the model's `fit` (docs/HARDENING.md, third table): each test names its case."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_adamixup
from keras_adamixup import SplitTeachers, predictions
from keras_adamixup.teacher_targets import TeachersWarning
from tests.conftest import SPARSE_CE, cluster_mlp, cluster_student, clusters


@pytest.mark.parametrize("bad", [-1, 3, 2.5])
def test_case3_teacher_labels_outside_the_classes_are_refused(bad):
    x, y = clusters(60)
    y = y.copy().astype("float64")
    y[7] = bad
    model = cluster_student(SplitTeachers(2, 1, seed=0, near_duplicates=None))
    with pytest.raises(ValueError, match=r"E55: .*not class ids in \[0, 3\).*rows \[7\]"):
        model.fit(x, y, epochs=1, batch_size=16, verbose=0)


def test_case3_teacher_labels_outside_the_classes_are_refused_from_a_dataset():
    x, y = clusters(60)
    y = y.copy()
    y[3] = 3
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    model = cluster_student(SplitTeachers(2, 1, seed=0, near_duplicates=None))
    with pytest.raises(ValueError, match=r"E55: .*rows \[3\]"):
        model.fit(data, epochs=1, verbose=0)


def test_case4_a_loss_that_reads_probabilities_on_logits_warns():
    x, y = clusters(64)
    model = keras_adamixup.AdaMixupModel(cluster_mlp(seed=0), seed=0)
    model.compile("adam", "sparse_categorical_crossentropy")
    with pytest.warns(predictions.OutputKindWarning, match="E56: the model emits logits.*"
                                                           "from_logits=True"):
        model.fit(x, y, epochs=1, batch_size=16, verbose=0)


def test_case4_a_loss_that_reads_logits_on_probabilities_warns():
    x, y = clusters(64)
    model = keras_adamixup.AdaMixupModel(cluster_mlp(seed=0, activation="softmax"), seed=0)
    model.compile("adam", SPARSE_CE)
    with pytest.warns(predictions.OutputKindWarning, match="E56: the model emits probabilities"):
        model.fit(x, y, epochs=1, batch_size=16, verbose=0)


@pytest.mark.parametrize("activation,loss", [(None, SPARSE_CE),
                                             ("softmax", "sparse_categorical_crossentropy")])
def test_case4_matching_loss_and_outputs_do_not_warn(activation, loss):
    x, y = clusters(64)
    model = keras_adamixup.AdaMixupModel(cluster_mlp(seed=0, activation=activation), seed=0)
    model.compile("adam", loss)
    with warnings.catch_warnings():
        warnings.simplefilter("error", predictions.OutputKindWarning)
        model.fit(x, y, epochs=1, batch_size=16, verbose=0)


def test_case7_teachers_reused_past_their_epochs_warn():
    x, y = clusters(90)
    model = cluster_student(SplitTeachers(2, 1, seed=0, near_duplicates=None))
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)  # the teachers train 1 epoch
    with pytest.warns(TeachersWarning, match=r"E57: the teachers trained for a fit of 1 epoch.*"
                                             r"SplitTeachers\(epochs=N\)"):
        model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    with warnings.catch_warnings():  # once per model
        warnings.simplefilter("error", TeachersWarning)
        model.fit(x, y, epochs=1, batch_size=16, verbose=0)


def test_case7_teachers_given_their_epochs_do_not_warn():
    x, y = clusters(90)
    model = cluster_student(SplitTeachers(2, 1, seed=0, near_duplicates=None, epochs=3))
    with warnings.catch_warnings():
        warnings.filterwarnings("error", "E57", TeachersWarning)
        for _ in range(3):
            model.fit(x, y, epochs=1, batch_size=16, verbose=0)


def test_teacher_errors_speak_of_teachers_not_shadows():
    x, y = clusters(60)
    inputs = {"a": keras.Input((8,), name="a")}
    out = keras.layers.Dense(3)(inputs["a"])
    base = keras.Model(inputs, out)
    model = cluster_student(SplitTeachers(2, 1, seed=0, together=True, near_duplicates=None),
                            base=base)
    with pytest.raises(ValueError, match="teachers cannot train together") as raised:
        model.fit({"a": x}, y, epochs=1, batch_size=16, verbose=0)
    assert "shadow" not in str(raised.value) and "population" not in str(raised.value)


def test_case8_teachers_still_improving_when_their_epochs_run_out_warn():
    x, y = clusters(120, spread=1.0)
    model = cluster_student(SplitTeachers(2, 1, seed=0, near_duplicates=None))
    with pytest.warns(TeachersWarning, match=r"E58: 2 of 2 teachers were still improving.*"
                                             r"3 epoch\(s\) ran out"):
        model.fit(x, y, epochs=3, batch_size=16, verbose=0)


def test_case8_teachers_that_reach_their_plateau_do_not_warn():
    x, y = clusters(120, spread=0.5)  # overlapping: the left-out loss turns up
    model = cluster_student(SplitTeachers(2, 1, seed=0, near_duplicates=None, patience=2))
    with warnings.catch_warnings():
        warnings.simplefilter("error", TeachersWarning)
        model.fit(x, y, epochs=40, batch_size=16, verbose=0)
    assert max(model.teacher_targets.epochs) < 40
