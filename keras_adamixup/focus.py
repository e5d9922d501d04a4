"""`LossFloor`: a per-example mixing strength, from each example's loss.

The schedule sets one strength for the whole batch. With a `LossFloor`
(`AdaMixupModel(focus=LossFloor(...))`) the strength becomes per example:
each training step, inside the compiled step, the model first predicts the
clean batch (inference mode, outside the gradient tape) and the compiled loss
gives each example's loss. Examples whose loss is *below the floor*, the
ones the model already fits better than it fits data it never saw, are mixed
with the schedule's full strength; the others with ``rest`` × that strength
(default 0: not mixed, they are learned as they are). RelaxLoss' idea (Chen
et al., ICLR 2022: keep the members' loss from falling below a target) with
mixing as the actuator.

The floor is a fixed number, or ``"holdout"``: ``factor`` × the mean
cross-entropy of the `PrivacyMonitor`'s non-members, updated at every
measurement (the monitor is then required). Before the first measurement the
floor is infinite: every example is mixed as without a `LossFloor`.

With soft targets (`SplitTeachers`), an example's loss can never fall below
the entropy of its target, so the example's loss is taken *above* that
entropy (`target_entropy`; for a cross-entropy, the KL divergence from the
target): the floor then means the same with soft labels as with hard ones.

Cost: one more forward pass per step (inference mode, no gradient), measured
in docs/BENCHMARKS.md ("Per-example strength").

Example:

```python
model = keras_adamixup.AdaMixupModel(
    make_model(), schedule=0.4, focus=keras_adamixup.LossFloor("holdout"))
model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
monitor = keras_adamixup.PrivacyMonitor.from_training(x_train, y_train, (x_val, y_val))
history = model.fit(x_train, y_train, epochs=20, callbacks=[monitor])
history.history["mixup_focus"]  # share of each epoch's examples under the floor
```
"""

import keras
import tensorflow as tf

from keras_adamixup import _checks

HOLDOUT = "holdout"


@keras.saving.register_keras_serializable(package="keras_adamixup")
class LossFloor:
    """Mixes the examples whose loss is under a floor (module docstring).

    Args:
        floor: ``"holdout"`` (``factor`` × the monitored non-members' mean
            cross-entropy, updated at each `PrivacyMonitor` measurement) or a
            number > 0 (a fixed floor, in the units of the compiled loss).
        factor: with ``"holdout"``: the floor is this multiple of the
            hold-out loss, > 0.
        rest: the share of the schedule's strength given to examples at or
            above the floor, in [0, 1] (0: they are not mixed).

    Example:

    ```python
    focus = keras_adamixup.LossFloor("holdout", factor=0.5)
    model = keras_adamixup.AdaMixupModel(base, schedule=0.4, focus=focus)
    ```
    """

    def __init__(self, floor=HOLDOUT, factor=1.0, rest=0.0):
        floor = _checks.word_or_positive("floor", floor, HOLDOUT, code="E35")
        _checks.number("factor", factor, low=0.0, low_open=True)
        _checks.number("rest", rest, low=0.0, high=1.0)
        self.floor = floor
        self.factor = float(factor)
        self.rest = float(rest)

    @property
    def needs_monitor(self):
        """Whether a `PrivacyMonitor` must drive the floor (``"holdout"``)."""
        return self.floor == HOLDOUT

    def initial_floor(self):
        """The floor before any measurement (infinite for ``"holdout"``)."""
        return float("inf") if self.needs_monitor else self.floor

    def floor_after(self, measurement):
        """The floor after a `keras_adamixup.schedules.Measurement`, or `None` (unchanged)."""
        return scaled_holdout_loss(self.needs_monitor, self.factor, measurement)

    def shares(self, losses, floor):
        """Per-example multipliers of the strength: 1 under `floor`, else ``rest``.

        Args:
            losses: `(batch,)` per-example losses on the clean batch.
            floor: scalar tensor.

        Returns:
            `(batch,)` float32 in [0, 1].
        """
        below = tf.cast(losses, tf.float32) < tf.cast(floor, tf.float32)
        return tf.where(below, 1.0, self.rest)

    def get_config(self):
        return {"floor": self.floor, "factor": self.factor, "rest": self.rest}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return (f"LossFloor(floor={self.floor!r}, factor={self.factor:g}, "
                f"rest={self.rest:g})")


def scaled_holdout_loss(follows, factor, measurement):
    """``factor`` × a `keras_adamixup.schedules.Measurement`'s hold-out loss when the
    value `follows` it (``"holdout"``) and the measurement has one, else `None`
    (unchanged): how `LossFloor`'s floor and `LossTarget`'s target move."""
    if not follows or measurement.loss is None:
        return None
    return factor * float(measurement.loss)


def target_entropy(y):
    """`(batch,)` entropy of soft targets, 0 for class ids and one-hot rows.

    A cross-entropy against a soft target never falls below the target's
    entropy, so `LossFloor` compares ``loss − entropy`` (the KL divergence
    from the target, for a cross-entropy loss) with the floor: with
    `SplitTeachers`' soft labels as with hard labels, the floor is the
    distance from what the example is taught. Float targets of rank 2 are
    soft (one column: Bernoulli probabilities); anything else has none.
    """
    y = tf.convert_to_tensor(y)
    if not y.dtype.is_floating or y.shape.rank != 2:
        return tf.zeros(tf.shape(y)[:1], tf.float32)
    t = tf.clip_by_value(tf.cast(y, tf.float32), 0.0, 1.0)
    if y.shape[-1] == 1:
        t = tf.concat([1.0 - t, t], axis=-1)
    return -tf.reduce_sum(tf.math.multiply_no_nan(tf.math.log(t), t), axis=-1)


def per_example_loss(loss):
    """The compiled `loss` as a function `(y, y_pred) -> (batch,)` losses.

    A `keras.losses.Loss` is rebuilt from its config without reduction; a
    function (or a name of one) is used as it is. Extra axes are averaged.
    """
    if isinstance(loss, str):
        loss = keras.losses.get(loss)
    if isinstance(loss, keras.losses.Loss):
        config = dict(loss.get_config())
        config["reduction"] = None
        try:
            unreduced = type(loss).from_config(config)
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"LossFloor needs each example's loss, but the compiled loss "
                f"{type(loss).__name__} cannot be rebuilt without reduction "
                f"({error}); compile with a Keras loss or a loss function."
            ) from error
    elif callable(loss):
        def unreduced(y, y_pred):  # as Keras' wrapper of loss functions: (n,) vs (n, 1)
            if (y.shape.rank is not None and y_pred.shape.rank == y.shape.rank + 1
                    and y_pred.shape[-1] == 1):
                y = tf.expand_dims(y, -1)
            return loss(y, y_pred)
    else:
        raise ValueError(
            "LossFloor needs each example's loss: compile with a single loss "
            f"(a Keras loss, a loss function or its name), got {loss!r}.")

    def compute(y, y_pred):
        values = tf.cast(unreduced(tf.convert_to_tensor(y), tf.convert_to_tensor(y_pred)),
                         tf.float32)
        rank = values.shape.rank
        if rank is not None and rank > 1:
            values = tf.reduce_mean(values, axis=list(range(1, rank)))
        return values

    return compute
