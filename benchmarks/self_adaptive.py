"""Self-adaptive training for Keras 3 (TensorFlow backend): a lever screened on the image benchmarks.

Huang, Zhang and Zhang, "Self-Adaptive Training: beyond Empirical Risk
Minimization" (NeurIPS 2020), written here from the paper's description (its
sample re-weighting left out). Each training row keeps a target, first its
one-hot label; from epoch ``start`` on, every time the row is in a batch its
target moves towards the model's prediction on it (no gradient through it),
``target ← momentum · target + (1 − momentum) · softmax(logits)``, and the
model trains on cross-entropy against the moved target. A row the model
does not learn by ``start`` (a mislabelled or atypical member) sees its
given label fade into what the model predicts for it instead of being
memorized.

With ``alpha > 0`` every batch is also mixed with a shuffled copy of itself
(mixup, ``λ ~ Beta(α, α)`` taken as ``max(λ, 1 − λ)``): the model trains on
the mixed targets, and each row's target moves towards the prediction on the
pair it dominates.

With ``flood > 0`` the mean loss is flooded at that level (Ishida et al.,
ICML 2020): below it the step ascends, ``|loss − flood| + flood``, so the
training loss is held near the level instead of falling to zero.

Benchmark code: the package never depends on it. The per-row targets need
each row's index, so `fit` takes NumPy arrays only (the benchmarks' inputs).
"""

import keras
import numpy as np
import tensorflow as tf

from benchmarks.wrapped_model import WrappedModel


class SelfAdaptiveModel(WrappedModel):
    """Wraps a classifier (logits out) so that `fit` trains it with self-adaptive targets.

    Args:
        model: the Keras classifier, logits out.
        start: the first epoch (0-based) at which the targets move.
        momentum: how much of its target a row keeps at each visit, in (0, 1).
        alpha: mixup's Beta coefficient; 0 trains without mixing.
        seed: the mixing's seed.
        flood: the mean training loss held from below (0: none).

    Compile it as the plain model (the loss compiled is what validation
    reports; training uses the moved targets).

    Example:

    ```python
    model = SelfAdaptiveModel(cnn, start=40, momentum=0.9)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(x, y, batch_size=64, epochs=60)
    ```
    """

    OPTIONS = ("start", "momentum", "alpha", "seed", "flood")

    def __init__(self, model, start=40, momentum=0.9, alpha=0.0, seed=0, flood=0.0, **kwargs):
        super().__init__(model, **kwargs)
        if not 0.0 < momentum < 1.0 or start < 0 or alpha < 0 or flood < 0:
            raise ValueError(f"SelfAdaptiveModel needs start >= 0, momentum in (0, 1), "
                             f"alpha >= 0 and flood >= 0, got {start}, {momentum}, {alpha}, "
                             f"{flood}.")
        self.start, self.momentum = int(start), float(momentum)
        self.alpha, self.seed, self.flood = float(alpha), int(seed), float(flood)
        self.mixing_seed = keras.random.SeedGenerator(seed)
        self.epoch = keras.Variable(0, dtype="int32", trainable=False, name="sat_epoch")
        # the per-row targets and labels of the current fit, untracked (no saved state)
        object.__setattr__(self, "_state", {})

    def fit(self, x=None, y=None, sample_weight=None, **kwargs):
        """`keras.Model.fit` on arrays: each row trains against its own moving target."""
        labels = np.asarray(y)
        classes = int(self.model.output_shape[-1])
        onehot = (labels.astype("float32") if labels.ndim == 2
                  else np.eye(classes, dtype="float32")[labels.reshape(-1).astype(int)])
        object.__setattr__(self, "_state", {
            "targets": tf.Variable(onehot, trainable=False),
            "labels": tf.constant(onehot.argmax(1).astype("int32"))})
        self.train_function = None  # the step reads this fit's targets
        callbacks = list(kwargs.pop("callbacks", None) or []) + [_Epoch()]
        index = np.arange(len(labels), dtype="int64")
        return super().fit(x, index, sample_weight=sample_weight, callbacks=callbacks, **kwargs)

    def train_step(self, data):
        x, index, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        index = tf.reshape(tf.cast(index, "int32"), [-1])
        targets, labels = self._state["targets"], tf.gather(self._state["labels"], index)
        old = tf.gather(targets, index)
        if self.alpha > 0:
            size = tf.shape(index)[0]
            lam = keras.random.beta([size], self.alpha, self.alpha, seed=self.mixing_seed)
            lam = tf.maximum(lam, 1.0 - lam)
            partner = tf.random.shuffle(tf.range(size))
            shape = tf.concat([[size], tf.ones([tf.rank(x) - 1], "int32")], 0)
            x = tf.reshape(lam, shape) * x + tf.reshape(1.0 - lam, shape) * tf.gather(x, partner)
        with tf.GradientTape() as tape:
            logits = self(x, training=True)
            moved = self.momentum * old + (1.0 - self.momentum) * tf.stop_gradient(
                tf.nn.softmax(logits))
            new = tf.where(self.epoch >= self.start, moved, old)
            target = new if self.alpha == 0 else (
                lam[:, None] * new + (1.0 - lam[:, None]) * tf.gather(new, partner))
            per_row = tf.nn.softmax_cross_entropy_with_logits(target, logits)
            if sample_weight is not None:
                per_row = per_row * tf.reshape(tf.cast(sample_weight, per_row.dtype), [-1])
            loss = tf.reduce_mean(per_row)
            objective = tf.abs(loss - self.flood) + self.flood if self.flood > 0 else loss
            scaled = self.optimizer.scale_loss(objective)
        grads = tape.gradient(scaled, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        targets.scatter_nd_update(index[:, None], new)
        self.track_loss(loss, tf.shape(index)[0])
        return self.compute_metrics(x, labels, logits, sample_weight)


class _Epoch(keras.callbacks.Callback):
    """Tells the model the epoch about to run (the targets move from ``start`` on)."""

    def on_epoch_begin(self, epoch, logs=None):
        self.model.epoch.assign(epoch)
