"""RelaxLoss for Keras 3 (TensorFlow backend): a baseline of the image benchmarks.

Chen, Yu and Fritz, "RelaxLoss: Defending Membership Inference Attacks
without Losing Utility" (ICLR 2022), written here from the paper's
description. Training aims the mean training loss at a target ``alpha``
instead of zero:

1. while the batch's mean cross-entropy is above ``alpha``: an ordinary
   gradient step on it;
2. below ``alpha``, steps alternate between
   - gradient *ascent* on the cross-entropy (the loss is pushed back up to
     the target), and
   - *posterior flattening*: each correctly classified example's target keeps
     the model's current probability of its true class (no gradient through
     it) and spreads the rest evenly over the other classes, so the model
     stops sharpening its members' posteriors; misclassified examples keep
     their one-hot target.

The paper alternates by epoch; this version alternates by step (every
other step below the target ascends), which keeps the step one compiled
function without an epoch counter. Benchmark code: the package never
depends on it.
"""

import keras
import tensorflow as tf

from benchmarks.wrapped_model import WrappedModel


class RelaxLossModel(WrappedModel):
    """Wraps a classifier (logits out) so that `fit` trains it with RelaxLoss.

    Args:
        model: the Keras classifier, logits out.
        alpha: the target mean training loss (cross-entropy, nats).

    Compile it with ``SparseCategoricalCrossentropy(from_logits=True)`` (the
    loss that is tracked and compared with ``alpha``).

    Example:

    ```python
    relaxed = RelaxLossModel(cnn, alpha=1.0)
    relaxed.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                    metrics=["accuracy"])
    relaxed.fit(x, y, batch_size=64, epochs=40)
    ```
    """

    OPTIONS = ("alpha",)

    def __init__(self, model, alpha=1.0, **kwargs):
        super().__init__(model, **kwargs)
        if not alpha > 0:
            raise ValueError(f"RelaxLoss needs alpha > 0, got {alpha}.")
        self.alpha = float(alpha)
        self.steps_below = keras.Variable(0, dtype="int64", trainable=False,
                                          name="relaxloss_steps_below")

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        labels = tf.cast(tf.reshape(y, [-1]), "int32")
        with tf.GradientTape() as tape:
            logits = self(x, training=True)
            mean = self.compute_loss(x=x, y=y, y_pred=logits, sample_weight=sample_weight)
            self.track_loss(mean, tf.shape(labels)[0])
            loss = tf.cond(mean > self.alpha, lambda: mean,
                           lambda: self._relaxed(labels, logits, mean))
            scaled = self.optimizer.scale_loss(loss)
        grads = tape.gradient(scaled, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        return self.compute_metrics(x, y, logits, sample_weight)

    def _relaxed(self, labels, logits, mean):
        """Below the target: ascent on every other step, posterior flattening between."""
        ascend = tf.equal(self.steps_below % 2, 0)
        self.steps_below.assign_add(1)
        classes = tf.shape(logits)[-1]
        onehot = tf.one_hot(labels, classes)
        p_true = tf.stop_gradient(tf.reduce_sum(tf.nn.softmax(logits) * onehot, -1,
                                                keepdims=True))
        others = (1.0 - p_true) / tf.cast(classes - 1, logits.dtype)
        flat = onehot * p_true + (1.0 - onehot) * others
        correct = tf.equal(tf.argmax(logits, -1, output_type="int32"), labels)
        target = tf.where(correct[:, None], flat, onehot)
        flattening = tf.reduce_mean(keras.losses.categorical_crossentropy(
            target, logits, from_logits=True))
        return tf.cond(ascend, lambda: -mean, lambda: flattening)
