"""The image paths tried as a careless user would, fourth round (docs/HARDENING.md)."""

import keras
import numpy as np

import keras_adamixup
from keras_adamixup import metrics as metrics_lib
from tests.conftest import cluster_student, clusters


def test_keras_sparse_metrics_read_the_teachers_soft_labels_as_their_dominant_class():
    """Keras' sparse metrics read class ids; with split teachers the model's targets are
    soft labels (a graph error before): they read each one's dominant class."""
    keras.utils.set_random_seed(0)  # the weights' draw: independent of the tests run before
    x, y = clusters(120)
    top2 = keras.metrics.SparseTopKCategoricalAccuracy(2, name="top2")
    model = cluster_student(keras_adamixup.SplitTeachers(2, 1, seed=0, near_duplicates=None,
                                                         epochs=2),
                            metrics=["sparse_categorical_accuracy", top2, "accuracy"])
    history = model.fit(x, y, validation_data=(x[:40], y[:40]), epochs=3, batch_size=24,
                        verbose=0).history
    for name in ("sparse_categorical_accuracy", "top2", "val_sparse_categorical_accuracy",
                 "val_top2"):
        assert 0.0 <= history[name][-1] <= 1.0, name
    # well-separated clusters: the dominant class of the teachers' labels is learnt
    assert history["sparse_categorical_accuracy"][-1] > 0.8
    assert history["top2"][-1] >= history["sparse_categorical_accuracy"][-1]


def test_dominant_class_reads_soft_targets_and_class_ids_and_round_trips():
    wrapped = metrics_lib.DominantClass("sparse_categorical_accuracy")
    wrapped.update_state(np.array([[0.2, 0.7, 0.1], [0.6, 0.3, 0.1]]),
                         np.array([[0.1, 0.8, 0.1], [0.1, 0.8, 0.1]]))  # right, wrong
    wrapped.update_state(np.array([2]), np.array([[0.1, 0.1, 0.8]]))  # a class id, right
    assert wrapped.name == "sparse_categorical_accuracy"
    assert float(wrapped.result()) == np.float32(2 / 3)
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(
        metrics_lib.DominantClass(keras.metrics.SparseTopKCategoricalAccuracy(2))))
    assert isinstance(again.metric, keras.metrics.SparseTopKCategoricalAccuracy)
    assert again.metric.k == 2
    # what is not sparse is left alone; names that are not metrics too
    kept = metrics_lib.soft_compatible(["mae", keras.metrics.AUC(), "sparse_nonsense"])
    assert kept[0] == "mae" and isinstance(kept[1], keras.metrics.AUC)
    assert kept[2] == "sparse_nonsense"
