"""`PrivacyTarget`: a feedback schedule that keeps measured leakage near a target.

A fixed schedule cannot know whether a model is leaking. `PrivacyTarget`
holds the mixing strength in a variable that a `PrivacyMonitor` callback
moves after each measurement of membership leakage on a monitor set, so the
strength rises while the monitored attack AUC is above the target and falls
back when there is margin (the most accurate model that meets the target).

Control law (velocity-form PI with a dead band, a rate limit and clamping).
At measurement ``k`` with monitored AUC ``a_k``:

    e_k  = a_k − target_auc                 (positive: leaking too much)
    if |e_k| ≤ deadband: hold s_k = s_{k−1}, store e_k = 0  (no chatter)
    Δ_k  = kp · (e_k − e_{k−1}) + ki · e_k
    Δ_k  = clip(Δ_k, −max_step, max_step)   (bounded step)
    s_k  = clip(s_{k−1} + Δ_k, min_strength, max_strength)

The velocity form keeps no separate integral, so there is nothing to wind up
while the strength sits at a bound: the first measurement with the opposite
sign of error moves it off the bound. ``ki`` is the integral gain (per
measurement, strength units per unit of AUC error); ``kp`` damps the response
to changes of the error.

Utility awareness (both off by default). The strength is also capped by a
*ceiling* the controller learns, which starts at ``max_strength``:

- ``max_accuracy_drop``: the monitor's non-members are held out, so their
  accuracy is a validation signal. When it falls more than this below the
  best accuracy measured so far, the strength backs off one ``max_step`` and
  the ceiling comes down to the backed-off value: mixing that costs more
  accuracy than the budget is not used again in this run.
- ``backoff_patience``: after this many consecutive raises of the strength
  without the monitored AUC falling (by more than ``deadband``) below its
  value before the first of them, the strength goes back to where the raises
  started and the ceiling to that value: more mixing did not cut leakage.
"""

import math

import keras

from keras_adamixup import _checks
from keras_adamixup.schedules.feedback import FeedbackSchedule, Measurement



def pi_update(strength, error, previous_error, *, kp, ki, deadband, max_step,
              min_strength, max_strength):
    """One step of the control law above, in plain Python floats.

    Args:
        strength: the current strength ``s_{k−1}``.
        error: ``a_k − target_auc``.
        previous_error: the previous error after the dead band (``e_{k−1}``),
            0 before the first measurement.

    Returns:
        ``(new_strength, error_after_deadband)``.
    """
    if abs(error) <= deadband:
        return strength, 0.0  # hold; the P term restarts from 0 on leaving
    delta = kp * (error - previous_error) + ki * error
    delta = min(max(delta, -max_step), max_step)
    return min(max(strength + delta, min_strength), max_strength), error


@keras.saving.register_keras_serializable(package="keras_adamixup")
class PrivacyTarget(FeedbackSchedule):
    """Feedback schedule: mixing strength that keeps monitored AUC ≤ target.

    The strength starts at `initial` and is changed only by a
    `keras_adamixup.PrivacyMonitor` callback, which measures a membership
    signal on a monitor set (training members vs held-out non-members) and
    calls `update`. The control law is in this module's docstring. The
    controller's state (current strength, last error, number of updates,
    last AUC) lives in non-trainable variables of the `AdaMixupModel` that
    uses the schedule, so it is saved with the model and restored by
    `keras.callbacks.BackupAndRestore`. One instance drives one model.

    The target is for the monitor's signal (a loss-threshold attack by
    default), which is weaker than the strongest attacks of the final audit;
    docs/BENCHMARKS.md reports how the two compare, so choose the target
    with that margin in mind.

    Args:
        target_auc: the monitored attack AUC to stay at or under, in (0.5, 1).
        initial: strength before the first measurement.
        min_strength: lower bound of the strength.
        max_strength: upper bound (0.5 is the largest partner share; use a
            Beta α bound with ``coefficient="beta"``).
        ki: integral gain: change of strength per measurement per unit of AUC
            error (≥ 0).
        kp: proportional gain on the change of the error (≥ 0).
        deadband: errors of at most this size count as zero (≥ 0).
        max_step: largest change of strength per measurement (> 0).
        max_accuracy_drop: accuracy budget on the monitor's hold-out (e.g.
            0.01 for one point) below the best measured so far; `None` turns
            it off (see the module docstring).
        backoff_patience: consecutive raises without a fall of the
            monitored AUC before the controller backs off and caps the
            strength; `None` turns it off.

    Example:

    ```python
    model = keras_adamixup.AdaMixupModel(
        base, schedule=keras_adamixup.schedules.PrivacyTarget(target_auc=0.55))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    monitor = keras_adamixup.PrivacyMonitor(
        members=(x_train[:500], y_train[:500]), nonmembers=(x_val, y_val))
    history = model.fit(x_train, y_train, epochs=30, callbacks=[monitor])
    history.history["monitor_auc"], history.history["controller_strength"]
    ```
    """

    def __init__(self, target_auc=0.55, initial=0.1, min_strength=0.0, max_strength=0.5,
                 ki=2.0, kp=1.0, deadband=0.005, max_step=0.1, max_accuracy_drop=None,
                 backoff_patience=None):
        self.target_auc = _checks.number("target_auc", target_auc, code="E11")
        if not 0.5 < self.target_auc < 1.0:
            raise ValueError(
                f"E11: `target_auc` must be in (0.5, 1): 0.5 is a perfect defence (no "
                f"attack can be met) and 1 no defence; got {self.target_auc}."
            )
        self.min_strength = _checks.number("min_strength", min_strength, low=0.0, code="E11")
        self.max_strength = _checks.number("max_strength", max_strength, low=0.0, code="E11")
        if self.max_strength < self.min_strength:
            raise ValueError(
                f"E11: `max_strength` ({self.max_strength}) must be ≥ `min_strength` "
                f"({self.min_strength})."
            )
        self.initial = _checks.number("initial", initial, low=self.min_strength,
                                     high=self.max_strength, code="E11")
        self.ki = _checks.number("ki", ki, low=0.0, code="E11")
        self.kp = _checks.number("kp", kp, low=0.0, code="E11")
        self.deadband = _checks.number("deadband", deadband, low=0.0, high=0.5)
        self.max_step = _checks.number("max_step", max_step, low=0.0, low_open=True)
        self.max_accuracy_drop = (None if max_accuracy_drop is None else _checks.number(
            "max_accuracy_drop", max_accuracy_drop, low=0.0, high=1.0))
        self.backoff_patience = _checks.positive_int("backoff_patience", backoff_patience,
                                                     allow_none=True)

    # -- the protocol (`FeedbackSchedule`) -----------------------------------

    strength_key = "controller_strength"

    def init_state(self):
        """Each state entry's value before the first measurement, and its dtype."""
        return {
            "controller_strength": (self.initial, "float32"),
            "controller_previous_error": (0.0, "float32"),
            "controller_updates": (0, "int64"),
            "controller_last_auc": (math.nan, "float32"),
            "controller_ceiling": (self.max_strength, "float32"),
            "controller_best_accuracy": (-1.0, "float32"),
            "controller_raises": (0, "int64"),
            "controller_raise_start_auc": (math.nan, "float32"),
            "controller_raise_start": (self.initial, "float32"),
        }

    def update_state(self, state, measurement):
        """The state after one measurement (pure: numbers in, numbers out)."""
        auc = float(measurement.auc)
        accuracy = measurement.accuracy
        previous = state["controller_strength"]
        ceiling = state["controller_ceiling"]
        strength, error = pi_update(
            previous, auc - self.target_auc,
            state["controller_previous_error"], kp=self.kp, ki=self.ki,
            deadband=self.deadband, max_step=self.max_step,
            min_strength=self.min_strength, max_strength=self.max_strength)
        best = state["controller_best_accuracy"]
        raises, start_auc = state["controller_raises"], state["controller_raise_start_auc"]
        start = state["controller_raise_start"]
        if self.max_accuracy_drop is not None and accuracy is not None:
            accuracy = float(accuracy)
            if best >= 0.0 and accuracy < best - self.max_accuracy_drop and previous > self.min_strength:
                # over the accuracy budget: back off, and do not come back
                ceiling = max(previous - self.max_step, self.min_strength)
            best = max(best, accuracy)
        if self.backoff_patience is not None:
            if strength > previous:
                if raises == 0:
                    start_auc, start = auc, previous
                raises += 1
                if raises > self.backoff_patience and auc >= start_auc - self.deadband:
                    # raised `backoff_patience` times, leakage did not fall
                    ceiling = min(ceiling, start)
                    raises = 0
            else:
                raises = 0
        return {
            "controller_strength": min(strength, ceiling),
            "controller_previous_error": error,
            "controller_updates": state["controller_updates"] + 1,
            "controller_last_auc": auc, "controller_ceiling": ceiling,
            "controller_best_accuracy": best, "controller_raises": raises,
            "controller_raise_start_auc": start_auc, "controller_raise_start": start,
        }

    def saturation(self, strength, measurement):
        """At `max_strength` with the monitored AUC still above the target."""
        if strength >= self.max_strength and measurement.auc > self.target_auc + self.deadband:
            return (f"the strength is at max_strength={self.max_strength:g} and the monitored "
                    f"AUC ({measurement.auc:.3f}) is still above the target "
                    f"({self.target_auc:g}). Mixing alone does not reach the target here: "
                    "raise max_strength, train less, or combine with another defence.")
        return None

    def update(self, auc, accuracy=None):
        """Feeds one measurement; moves and returns the strength (a float).

        Args:
            auc: the monitored attack AUC, or a `Measurement`.
            accuracy: the accuracy on the monitor's held-out non-members, for
                ``max_accuracy_drop`` (ignored when that is `None`).
        """
        if not isinstance(auc, Measurement):
            if math.isnan(float(auc)):
                raise ValueError("PrivacyTarget.update got a NaN AUC.")
            auc = Measurement(auc=float(auc), accuracy=accuracy)
        return super().update(auc)

    def value_bounds(self):
        return (self.min_strength, self.max_strength)

    def get_config(self):
        return {"target_auc": self.target_auc, "initial": self.initial,
                "min_strength": self.min_strength, "max_strength": self.max_strength,
                "ki": self.ki, "kp": self.kp, "deadband": self.deadband,
                "max_step": self.max_step, "max_accuracy_drop": self.max_accuracy_drop,
                "backoff_patience": self.backoff_patience}
