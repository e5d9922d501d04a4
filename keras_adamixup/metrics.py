"""Accuracy that accepts class ids *and* one-hot/soft targets.

Keras resolves ``metrics=["accuracy"]`` once, from the label format of the
first batch it sees. Soft mixup can feed soft targets in training (the
`adamixup` tf.data op with ``label_mode="soft"``) and class ids in validation,
which makes the resolved metric wrong for one of them. `AdaMixupModel.compile`
therefore replaces ``"accuracy"`` / ``"acc"`` with `MixupAccuracy` when
``label_mode="soft"``.
"""

import keras
from keras import ops


__all__ = [
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


def soft_compatible(metrics):
    """Replaces ``"accuracy"`` / ``"acc"`` in a list of metrics by `MixupAccuracy`."""
    if not isinstance(metrics, (list, tuple)):
        return metrics
    return [
        MixupAccuracy(name=m) if isinstance(m, str) and m in ("accuracy", "acc") else m
        for m in metrics
    ]
