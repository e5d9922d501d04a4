"""`PlateauDecay`: mixing that follows training, cut when the hold-out loss stops falling.

A fixed schedule is planned over the epochs given to `fit`; when a
`PrivacyCheckpoint` keeps an early epoch of a long plan, the kept weights
were trained at nearly the starting strength (a schedule planned over 60
epochs is still at 0.35 of 0.4 at epoch 8). `PlateauDecay` instead moves
with what the `PrivacyMonitor` measures, the way Keras'
`ReduceLROnPlateau` treats the learning rate: full strength while the
monitor's hold-out loss still falls, and a cut by ``factor`` each time it has
not fallen (by more than ``min_delta``) for ``patience`` measurements in a
row; a strength below ``min_strength`` becomes 0. Mixing thus stops soon
after the model stops generalizing better, before the checkpoint's own
patience runs out, and the epoch the checkpoint keeps was reached at a low
strength or none.

Update rule, at measurement ``k`` with hold-out loss ``L_k``:

    if L_k < best − min_delta:  best = L_k, wait = 0
    else:                       wait += 1
    if wait ≥ patience and s > 0:
        s = s · factor  (0 when below min_strength),  wait = 0

``best`` is kept across cuts (as `ReduceLROnPlateau` keeps it): after a cut,
the strength is cut again unless the loss beats the best loss so far.
"""

import math

import keras

from keras_adamixup import _checks
from keras_adamixup.schedules.feedback import FeedbackSchedule


# the floor when none is given (or the start, when lower)
DEFAULT_MIN_STRENGTH = 0.1


@keras.saving.register_keras_serializable(package="keras_adamixup")
class PlateauDecay(FeedbackSchedule):
    """Feedback schedule: strength cut when the monitored hold-out loss plateaus.

    The strength starts at `start` and changes only when a
    `keras_adamixup.PrivacyMonitor` (or another `ScheduleDriver`) feeds a
    `Measurement` with the hold-out loss, by default once per epoch. The
    rule is in this module's docstring. Its state (strength, best loss,
    measurements without improvement, cuts) lives in non-trainable variables
    of the `AdaMixupModel` that trains with it, so it is saved with the model
    and restored by `keras.callbacks.BackupAndRestore`. One instance drives
    one model.

    Args:
        start: strength before the first cut (the partner share for
            ``coefficient="share"``; 0.4 is the paper's starting value).
        factor: each cut multiplies the strength by this, in [0, 1); 0 turns
            mixing off at the first plateau.
        patience: measurements without a new best hold-out loss before a cut
            (≥ 1).
        min_delta: the least fall of the loss that counts as a new best (≥ 0).
        min_strength: a cut to below this sets the strength to 0 (≥ 0), so
            mixing ends instead of fading forever. At most `start` (E45; a
            `start` of 0, no mixing, takes any floor). Default: 0.1, or
            `start` when that is lower (the first cut then ends mixing).

    Example:

    ```python
    model = keras_adamixup.AdaMixupModel(
        base, schedule=keras_adamixup.schedules.PlateauDecay(start=0.4))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    monitor = keras_adamixup.PrivacyMonitor.from_training(x_train, y_train, (x_val, y_val))
    checkpoint = keras_adamixup.PrivacyCheckpoint(monitor, patience=5)
    history = model.fit(x_train, y_train, epochs=30, callbacks=[monitor, checkpoint])
    history.history["controller_strength"]   # the strength after each measurement
    ```
    """

    strength_key = "plateau_strength"

    def __init__(self, start=0.4, factor=0.5, patience=1, min_delta=0.0, min_strength=None):
        self.start = _checks.number("start", start, low=0.0, code="E42")
        self.factor = _checks.number("factor", factor, low=0.0, high=1.0, high_open=True,
                                     code="E42")
        self.patience = _checks.positive_int("patience", patience, code="E42")
        self.min_delta = _checks.number("min_delta", min_delta, low=0.0)
        if min_strength is None:  # the default floor, never above the start
            min_strength = min(DEFAULT_MIN_STRENGTH, self.start)
        self.min_strength = _checks.number("min_strength", min_strength, low=0.0, code="E42")
        if 0.0 < self.start < self.min_strength:
            raise ValueError(
                f"E45: PlateauDecay: `min_strength` ({self.min_strength:g}) is above `start` "
                f"({self.start:g}): the strength would mix below its own floor until the "
                "first cut, then stop. Give a floor at most the start (e.g. "
                f"min_strength={self.start / 2:g}, or 0 to fade without a floor), or "
                f"start ≥ {self.min_strength:g}.")

    def init_state(self):
        """Each state entry's value before the first measurement, and its dtype."""
        return {
            "plateau_strength": (self.start, "float32"),
            "plateau_best_loss": (math.inf, "float32"),
            "plateau_wait": (0, "int64"),
            "plateau_cuts": (0, "int64"),
        }

    def update_state(self, state, measurement):
        """The state after one measurement (pure: numbers in, numbers out)."""
        if measurement.loss is None or math.isnan(float(measurement.loss)):
            raise ValueError(
                "E42: PlateauDecay follows the hold-out loss, but the measurement has none: "
                "give the PrivacyMonitor labelled non-members (e.g. "
                "PrivacyMonitor.from_training(x, y, (x_val, y_val))).")
        loss = float(measurement.loss)
        strength, best = state["plateau_strength"], state["plateau_best_loss"]
        wait, cuts = state["plateau_wait"], state["plateau_cuts"]
        if loss < best - self.min_delta:
            best, wait = loss, 0
        else:
            wait += 1
        if wait >= self.patience and strength > 0.0:
            strength *= self.factor
            if strength < self.min_strength:
                strength = 0.0
            wait, cuts = 0, cuts + 1
        return {"plateau_strength": strength, "plateau_best_loss": best,
                "plateau_wait": wait, "plateau_cuts": cuts}

    def value_bounds(self):
        return (0.0, self.start)

    def get_config(self):
        return {"start": self.start, "factor": self.factor, "patience": self.patience,
                "min_delta": self.min_delta, "min_strength": self.min_strength}
