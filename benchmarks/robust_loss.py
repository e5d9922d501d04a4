"""Generalized cross-entropy for class ids and soft targets: a lever screened on images.

Zhang and Sabuncu, "Generalized Cross Entropy Loss for Training Deep Neural
Networks with Noisy Labels" (NeurIPS 2018), written here from the paper's
formula: an example's loss is ``(1 - p**q) / q`` for the probability ``p`` of
its class, so its gradient is cross-entropy's times ``p**q``. An example the
model does not yet predict (a mislabelled image, an outlier) moves it little,
which is what a membership attack at low false-positive rates feeds on.
``q -> 0`` is cross-entropy, ``q = 1`` the mean absolute error.

Keras 3.9+ has ``keras.losses.CategoricalGeneralizedCrossEntropy``, which reads
class ids and probabilities only; mixing trains on soft targets and the
benchmarks' models give logits, so this loss takes both, reading the targets
as `keras_adamixup.losses.MixupCrossentropy` does (for soft targets
``y``: ``sum_k y_k (1 - p_k**q) / q``, the same for one-hot ones). Benchmark
code: the package never depends on it.
"""

import keras
from keras import ops

from keras_adamixup import losses


@keras.saving.register_keras_serializable(package="benchmarks")
class GeneralizedCrossentropy(keras.losses.Loss):
    """``(1 - p**q) / q`` for class ids or one-hot/soft targets, from logits.

    Args:
        q: in (0, 1]: 0 would be cross-entropy, 1 the mean absolute error.
        from_logits: whether predictions are logits (else probabilities).
        reduction: as in `keras.losses.Loss`.
        name: the loss's name.

    Example:

    >>> loss = GeneralizedCrossentropy(0.7)
    >>> sparse = loss(ops.array([0]), ops.array([[2.0, 0.0, -1.0]]))
    >>> soft = loss(ops.array([[1.0, 0.0, 0.0]]), ops.array([[2.0, 0.0, -1.0]]))  # same
    """

    def __init__(self, q=0.7, from_logits=True, reduction="sum_over_batch_size",
                 name="generalized_crossentropy", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if not 0.0 < q <= 1.0:
            raise ValueError(f"q must be in (0, 1], got {q}.")
        self.q = float(q)
        self.from_logits = from_logits

    def call(self, y_true, y_pred):
        y_pred = ops.convert_to_tensor(y_pred)
        y_true = losses.dense_targets(y_true, y_pred)  # class ids or soft, as mixing gives
        probabilities = ops.softmax(y_pred, axis=-1) if self.from_logits else y_pred
        probabilities = ops.clip(probabilities, 1e-7, 1.0)
        return ops.sum(y_true * (1.0 - ops.power(probabilities, self.q)), axis=-1) / self.q

    def get_config(self):
        return {**super().get_config(), "q": self.q, "from_logits": self.from_logits}
