"""Accuracy that accepts class ids *and* one-hot/soft targets.

Keras resolves ``metrics=["accuracy"]`` once, from the label format of the
first batch it sees. Soft mixup can feed soft targets in training (the
`adamixup` tf.data op with ``label_mode="soft"``) and class ids in validation,
which makes the resolved metric wrong for one of them. `AdaMixupModel.compile`
therefore replaces ``"accuracy"`` / ``"acc"`` with `MixupAccuracy` when
``label_mode="soft"``, and wraps Keras' sparse metrics
(``"sparse_categorical_accuracy"``, `keras.metrics.SparseTopKCategoricalAccuracy`,
...), which read class ids only, in `DominantClass`: each soft target is read
as its dominant class.
"""

import keras
from keras import ops


__all__ = [
    "DominantClass",
    "MixupAccuracy",
]


@keras.saving.register_keras_serializable(package="keras_adamixup")
class MixupAccuracy(keras.metrics.MeanMetricWrapper):
    """Accuracy against the dominant class of the target, in any label format.

    - Predictions with more than one class: the predicted class is the
      argmax; the true class is the id itself for class-id targets, or the
      argmax (the dominant class) for one-hot and soft targets.
    - Single-output (binary) predictions: both prediction and target are
      thresholded at 0.5 (the target's dominant class).

    Args:
        name: metric name (default ``"accuracy"``).
        dtype: metric dtype.

    Example:

    >>> m = MixupAccuracy()
    >>> m.update_state([[0.7, 0.3, 0.0]], [[0.9, 0.05, 0.05]])  # soft target
    >>> m.update_state([2], [[0.1, 0.2, 0.7]])                   # class id
    >>> float(m.result())
    1.0
    """

    def __init__(self, name="accuracy", dtype=None):
        super().__init__(fn=mixup_accuracy, name=name, dtype=dtype)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


def mixup_accuracy(y_true, y_pred):
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.convert_to_tensor(y_true)
    classes = y_pred.shape[-1]
    if classes == 1:
        truth = ops.reshape(ops.cast(y_true, "float32") >= 0.5, (-1,))
        guess = ops.reshape(ops.cast(y_pred, "float32") >= 0.5, (-1,))
        return ops.cast(ops.equal(truth, guess), "float32")
    guess = ops.argmax(y_pred, axis=-1)
    if len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] == classes:
        truth = ops.argmax(y_true, axis=-1)
    else:
        truth = ops.reshape(y_true, ops.shape(guess))
    return ops.cast(ops.equal(ops.cast(truth, "int64"), ops.cast(guess, "int64")), "float32")


@keras.saving.register_keras_serializable(package="keras_adamixup")
class DominantClass(keras.metrics.Metric):
    """A metric of class ids (Keras' sparse metrics) fed soft targets as their dominant class.

    Targets with one value per class of the prediction (one-hot or soft, as
    split teachers and soft mixing give) are replaced by their argmax before
    the wrapped metric reads them; class ids pass unchanged. The result and
    name are the wrapped metric's.

    Args:
        metric: a Keras metric that reads class ids (e.g.
            ``keras.metrics.SparseTopKCategoricalAccuracy(3)``), or its name.

    Example:

    >>> m = DominantClass(keras.metrics.SparseCategoricalAccuracy())
    >>> m.update_state([[0.1, 0.8, 0.1]], [[0.2, 0.7, 0.1]])  # soft target, class 1
    >>> m.update_state([0], [[0.6, 0.3, 0.1]])                # class id
    >>> float(m.result())
    1.0
    """

    def __init__(self, metric, name=None, dtype=None):
        metric = keras.metrics.get(metric) if isinstance(metric, (str, dict)) else metric
        super().__init__(name=name or metric.name, dtype=dtype or metric.dtype)
        self.metric = metric

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred = ops.convert_to_tensor(y_true), ops.convert_to_tensor(y_pred)
        if len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] == y_pred.shape[-1] \
                and y_pred.shape[-1] not in (None, 1):
            y_true = ops.argmax(y_true, axis=-1)
        return self.metric.update_state(y_true, y_pred, sample_weight=sample_weight)

    def result(self):
        return self.metric.result()

    def reset_state(self):
        self.metric.reset_state()

    def get_config(self):
        return {"metric": keras.saving.serialize_keras_object(self.metric), "name": self.name,
                "dtype": self.dtype}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["metric"] = keras.saving.deserialize_keras_object(config["metric"])
        return cls(**config)


def _soft_compatible_one(metric):
    """`metric` (a name or a metric) as `soft_compatible` gives it back."""
    if isinstance(metric, str) and metric in ("accuracy", "acc"):
        return MixupAccuracy(name=metric)
    resolved = metric
    if isinstance(metric, str):
        if not metric.startswith("sparse_"):
            return metric
        try:
            resolved = keras.metrics.get(metric)
        except (ValueError, TypeError):  # not a metric's name: Keras says so at compile
            return metric
    if isinstance(resolved, keras.metrics.Metric) and type(resolved).__name__.startswith(
            "Sparse"):  # one of Keras' sparse metrics: reads class ids only
        return DominantClass(resolved)
    return metric


def soft_compatible(metrics):
    """Replaces ``"accuracy"`` / ``"acc"`` in a list of metrics by `MixupAccuracy`, and
    wraps Keras' sparse metrics (names or objects) in `DominantClass`."""
    if not isinstance(metrics, (list, tuple)):
        return metrics
    return [_soft_compatible_one(m) for m in metrics]
