"""`LossTarget`: the training loss held at the hold-out loss (RelaxLoss' idea, adaptive).

RelaxLoss (Chen, Yu and Fritz, ICLR 2022) keeps a classifier's members from
being fitted better than data it never saw: once a batch's mean training loss
falls under a target ``alpha``, the step no longer lowers it, but alternates
between gradient *ascent* on the loss and *posterior flattening* (each
correctly classified example is taught its current probability of its class
with the rest spread evenly over the other classes, so its posterior stops
sharpening). Its one knob, ``alpha``, has to be tuned for every model and data
set: too low protects nothing, too high costs accuracy.

`AdaMixupModel(relax=LossTarget())` sets the target from training instead: it
is ``factor`` × the mean cross-entropy of the `PrivacyMonitor`'s non-members
(the validation rows), updated at every measurement, so the members' loss is
held at what the model achieves on rows it never trained on, whatever the
model and data. Before the first measurement the target is 0: ordinary steps.
A fixed target (``LossTarget(1.2)``) is RelaxLoss' own ``alpha``.

``LossTarget("plateau", factor=0.8, patience=3)`` sets a fixed target from
the data instead of by hand: ordinary steps while the monitored hold-out
loss keeps reaching new lows; once it has not for ``patience``
measurements, the target is ``factor`` × the lowest hold-out loss so far
(following any later low). It is the one mode allowed under mixing's soft
labels: on a CIFAR-10 CNN under static mixup it set itself to 1.0–1.1 nats
(the value tuned there by hand) and on MNIST to 0.19, where the hand-tuned
1.0 cost 4.6 points. Audited there against 8 + 4 shadows it is the image
setting of `keras_adamixup.recommended` (docs/BENCHMARKS.md).

With soft targets (`SplitTeachers`, or mixing with ``label_mode="soft"``) the
loss compared with the target is taken above the target's entropy, as
`LossFloor` does; the target must then be a number (the hold-out loss is a
cross-entropy on given labels, not comparable: E59). The loss compared is
the data's weighted mean (sample and class weights normalized), without
regularization terms. Mixing on top still runs: the flattened target of a mixed
example keeps the model's probability of its mixed label. A single sigmoid
output is flattened as two classes: an example on the right side of 0.5 is
taught its current probability (no gradient through it), the others their
label.

Cost: none beyond the monitor's measurement (the decision uses the step's own
forward pass). What it buys on the CIFAR-10 CNN is measured in
docs/BENCHMARKS.md.

Example:

```python
model = keras_adamixup.AdaMixupModel(
    make_cnn(), schedule=0.0, relax=keras_adamixup.LossTarget("holdout", factor=0.9))
model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True),
              metrics=["accuracy"])
model.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=60)
model.history.history["relax_share"]  # share of each epoch's steps at or under the target
```
"""

import keras
import tensorflow as tf

from keras_adamixup import _checks
from keras_adamixup import focus
from keras_adamixup.focus import HOLDOUT

# the target set at the hold-out loss's plateau (`LossTarget("plateau")`)
PLATEAU = "plateau"
# its default factor: the target is 0.8 x the lowest hold-out loss (docs/BENCHMARKS.md,
# "A loss target set at the hold-out loss's plateau")
PLATEAU_FACTOR = 0.8


@keras.saving.register_keras_serializable(package="keras_adamixup")
class LossTarget:
    """Holds the mean training loss at a target (module docstring).

    Args:
        target: ``"holdout"`` (``factor`` × the monitored non-members' mean
            cross-entropy, updated at each `PrivacyMonitor` measurement),
            ``"plateau"`` (0 until that loss has made no new low for
            ``patience`` measurements, then ``factor`` × its lowest: a fixed
            target set from the data, allowed under mixing's soft labels) or
            a number > 0 (a fixed target in nats, RelaxLoss' ``alpha``).
        factor: with ``"holdout"`` or ``"plateau"``: the target is this
            multiple of the hold-out loss, > 0 (under 1 holds the members a
            little better fitted than the non-members: more accuracy, less
            privacy). Default 1.0 for ``"holdout"``, 0.8 for ``"plateau"``
            (screened on a CIFAR-10 CNN and MNIST; 1.0 locked on too early
            on the augmented CNN, 6.5 points of accuracy), where it must be
            at most 1: a target above the lowest hold-out loss undoes what
            the model had learnt (E59).
        patience: with ``"plateau"`` only: the `PrivacyMonitor`'s
            measurements (one per epoch, whatever ``validation_freq``)
            without a new low before the target is set (default 3).

    The target and the plateau's state are the model's non-trainable
    variables (``model.loss_target``: 0 until set; ``relax_lowest``,
    ``relax_waited``), saved with it; each epoch's logs carry
    ``monitor_loss_target``. A `fit` that ends before the plateau was
    plain training (mixing only): E73 warns. `AdaMixupModel.reset_schedule`
    sets them back (before a `fit` on other validation data).

    Example:

    ```python
    relax = keras_adamixup.LossTarget("holdout", factor=0.9)
    model = keras_adamixup.AdaMixupModel(base, schedule=0.0, relax=relax)
    # under static mixup: the target set at the hold-out loss's plateau
    mixed = keras_adamixup.AdaMixupModel(base, schedule=0.4, coefficient="beta",
                                         label_mode="soft",
                                         relax=keras_adamixup.LossTarget("plateau", 0.8))
    ```
    """

    def __init__(self, target=HOLDOUT, factor=None, patience=None):
        if target != PLATEAU:
            target = _checks.word_or_positive("target", target, (HOLDOUT, PLATEAU),
                                              code="E59")
        if target not in (HOLDOUT, PLATEAU) and factor not in (None, 1.0):
            raise ValueError(f"E59: `factor` scales the hold-out loss of "
                             f"LossTarget('holdout') or ('plateau'); a fixed target "
                             f"({target:g}) takes none (got factor={factor!r}).")
        if patience is not None and target != PLATEAU:
            raise ValueError(f"E59: `patience` belongs to LossTarget('plateau') (got "
                             f"target={target!r}).")
        if factor is None:
            factor = PLATEAU_FACTOR if target == PLATEAU else 1.0
        _checks.number("factor", factor, low=0.0, low_open=True,
                       high=1.0 if target == PLATEAU else None, code="E59")
        self.target = target
        self.factor = float(factor)
        self.patience = None if target != PLATEAU else _checks.positive_int(
            "patience", 3 if patience is None else patience, code="E59")

    @property
    def needs_monitor(self):
        """Whether a `PrivacyMonitor` must set the target (``"holdout"``, ``"plateau"``)."""
        return self.target in (HOLDOUT, PLATEAU)

    def initial_target(self):
        """The target before any measurement (0 for ``"holdout"`` and ``"plateau"``:
        ordinary steps)."""
        return 0.0 if self.needs_monitor else self.target

    def init_state(self):
        """The target's state beside the target itself, ``{name: (initial, dtype)}`` (as
        `FeedbackSchedule.init_state`): the model keeps each entry in a non-trainable
        variable of that name. ``"plateau"``: the lowest hold-out loss and the
        measurements since; the other targets: none."""
        if self.target != PLATEAU:
            return {}
        return {"relax_lowest": (float("inf"), "float32"), "relax_waited": (0, "int32")}

    def update(self, state, measurement):
        """``(target, state)`` after a `keras_adamixup.schedules.Measurement`.

        Args:
            state: the current values of `init_state`'s entries, by name.
            measurement: the monitor's measurement.

        Returns:
            The new target (`None`: unchanged) and the new state values.
        """
        if self.target != PLATEAU:
            return focus.scaled_holdout_loss(self.needs_monitor, self.factor,
                                             measurement), state
        if measurement.loss is None:
            return None, state
        lowest, waited, target = self.plateau_step(
            state["relax_lowest"], state["relax_waited"], float(measurement.loss))
        return target, {"relax_lowest": lowest, "relax_waited": waited}

    def plateau_step(self, lowest, waited, loss):
        """``(lowest, waited, target)`` after a measured hold-out `loss`.

        Args:
            lowest: the lowest hold-out loss measured before (inf: none yet).
            waited: measurements since the last new low.
            loss: this measurement's hold-out loss.

        Returns:
            The new lowest loss and wait, and the target: 0 until the loss
            has made no new low for ``patience`` measurements, then
            ``factor`` × the lowest (it follows later lows).
        """
        on = waited >= self.patience
        if loss < lowest:  # once on, a new low keeps it on: the wait stays at patience
            lowest, waited = loss, (self.patience if on else 0)
        else:
            waited += 1
        on = waited >= self.patience
        return lowest, waited, (self.factor * lowest if on else 0.0)

    def get_config(self):
        config = {"target": self.target, "factor": self.factor}
        if self.target == PLATEAU:
            config["patience"] = self.patience
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        patience = "" if self.patience is None else f", patience={self.patience}"
        return f"LossTarget(target={self.target!r}, factor={self.factor:g}{patience})"


def flattened(y, probabilities):
    """RelaxLoss' flattened targets: `(batch, classes)`.

    Each example whose most probable class is its target's keeps the model's
    current probability ``P`` of its target (``Σ p · y``, no gradient) and
    spreads ``1 − P`` over the other classes in proportion to ``1 − y``; the
    others keep their target `y`.

    Args:
        y: `(batch, classes)` targets (one-hot, mixed or soft).
        probabilities: `(batch, classes)` the model's probabilities.
    """
    y = tf.cast(y, tf.float32)
    p = tf.stop_gradient(tf.cast(probabilities, tf.float32))
    kept = tf.reduce_sum(p * y, axis=-1, keepdims=True)
    rest = 1.0 - y
    spread = rest / tf.maximum(tf.reduce_sum(rest, axis=-1, keepdims=True), 1e-12)
    flat = kept * y / tf.maximum(tf.reduce_sum(y, axis=-1, keepdims=True), 1e-12) \
        + (1.0 - kept) * spread
    correct = tf.equal(tf.argmax(p, axis=-1), tf.argmax(y, axis=-1))
    return tf.where(correct[:, None], flat, y)


def flattened_binary(y, probability):
    """`flattened` for one sigmoid output: `(batch, 1)` targets.

    An example on its label's side of 0.5 is taught the model's current
    probability (no gradient: its posterior stops sharpening); the others keep
    their label `y`.

    Args:
        y: `(batch, 1)` labels or probabilities of class 1.
        probability: `(batch, 1)` the model's probability of class 1.
    """
    y = tf.cast(y, tf.float32)
    p = tf.stop_gradient(tf.cast(probability, tf.float32))
    correct = tf.equal(p > 0.5, y > 0.5)
    return tf.where(correct, p, y)
