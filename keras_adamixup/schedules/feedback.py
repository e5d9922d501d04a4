"""Feedback schedules: strength held in state that measurements move.

The protocol (optax's `StatefulSchedule` is the model; so is Keras'
`ReduceLROnPlateau` as one readable callback):

- ``init_state()``: the state before the first measurement, as
  ``{name: (value, dtype)}``;
- ``update_state(state, measurement)``: pure, numbers in and numbers out:
  the state after one `Measurement`;
- ``strength_key``: the state entry that is the strength.

`FeedbackSchedule` does the rest once, for every such schedule: the model
that trains with it owns the state as non-trainable `keras.Variable`s
(`create_state`, so they are saved, distributed and restored with the model),
the compiled train step reads the strength from them (`__call__`), and
`update(measurement)` reads the state, applies ``update_state`` and writes it
back. A `ScheduleDriver` (a callback, e.g. `PrivacyMonitor`) measures during
`fit` and calls `update`; `AdaMixupModel.fit` refuses a feedback schedule
without one and runs drivers before other callbacks.
"""

import dataclasses
import math
from typing import Optional

import keras
import tensorflow as tf

from keras_adamixup.schedules.base import StrengthSchedule


@dataclasses.dataclass(frozen=True)
class Measurement:
    """What a driver measured at the end of an epoch.

    Attributes:
        auc: the monitored membership-inference AUC.
        accuracy: accuracy on the driver's held-out non-members, or `None`.
        loss: their mean loss, or `None`.

    Example:

    ```python
    measurement = keras_adamixup.schedules.Measurement(auc=0.56, accuracy=0.93, loss=0.25)
    schedule.update(measurement)   # what a ScheduleDriver does after an epoch
    ```
    """

    auc: float
    accuracy: Optional[float] = None
    loss: Optional[float] = None

    def __post_init__(self):
        if math.isnan(float(self.auc)):
            raise ValueError("A measurement needs an AUC, got NaN.")


class FeedbackSchedule(StrengthSchedule):
    """Base class of schedules whose strength is state moved by measurements.

    Subclasses implement ``init_state``, ``update_state`` and ``get_config``
    and name the strength entry in ``strength_key`` (module docstring).

    Example:

    ```python
    @keras.saving.register_keras_serializable(package="my_project")
    class StepUp(FeedbackSchedule):
        strength_key = "strength"

        def init_state(self):
            return {"strength": (0.0, "float32")}

        def update_state(self, state, measurement):
            up = measurement.auc > 0.55
            return {"strength": min(state["strength"] + 0.1 * up, 0.5)}

        def get_config(self):
            return {}
    ```
    """

    strength_key = "strength"

    def init_state(self):
        raise NotImplementedError(f"{type(self).__name__} must implement init_state().")

    def update_state(self, state, measurement):
        raise NotImplementedError(
            f"{type(self).__name__} must implement update_state(state, measurement).")

    # -- provided: state owned by the model --------------------------------

    def create_state(self):
        """Creates the state variables; called once by the model that trains with it."""
        if getattr(self, "_state", None) is not None:
            name = type(self).__name__
            raise ValueError(f"E15: This {name} already drives a model; create one {name} "
                             "per model.")
        kwargs = dict(trainable=False, aggregation="only_first_replica")
        self._state = {name: keras.Variable(value, dtype=dtype, name=name, **kwargs)
                       for name, (value, dtype) in self.init_state().items()}
        return list(self._state.values())  # in `init_state` order (the saved order)

    def _bound(self):
        if getattr(self, "_state", None) is None:
            raise ValueError(
                f"{type(self).__name__} has no state: pass it as `schedule` to an "
                "AdaMixupModel, which owns the schedule's variables.")
        return self._state

    def state(self):
        """The state as Python numbers."""
        read = lambda v: v.numpy().item()  # noqa: E731
        return {name: read(variable) for name, variable in self._bound().items()}

    def reset_state(self):
        """Back to `init_state`, as before the first measurement."""
        variables = self._bound()
        for name, (value, _) in self.init_state().items():
            variables[name].assign(value)

    def saturation(self, strength, measurement):
        """Why more of this schedule cannot help (a sentence), when `strength` is at
        its limit and `measurement` still misses the goal; else `None` (default).

        A driver warns (`monitor.SaturationWarning`) when this lasts several
        measurements in a row.
        """
        return None

    def update(self, measurement):
        """Feeds one `Measurement`; writes the new state and returns the strength."""
        if not isinstance(measurement, Measurement):
            raise TypeError(f"`measurement` must be a Measurement, got {measurement!r}.")
        new = self.update_state(self.state(), measurement)
        variables = self._bound()
        for name, value in new.items():
            variables[name].assign(value)
        return float(new[self.strength_key])

    def __call__(self, step, total_steps):
        return tf.cast(self._bound()[self.strength_key].value, tf.float32)


class ScheduleDriver(keras.callbacks.Callback):
    """A callback that measures during `fit` and updates a `FeedbackSchedule`.

    `AdaMixupModel.fit` runs drivers before every other callback (so a
    checkpoint or `BackupAndRestore` saves the updated state) and requires one
    when its schedule is a `FeedbackSchedule`. `PrivacyMonitor` is one.

    Example:

    ```python
    class EveryEpoch(keras_adamixup.schedules.ScheduleDriver):
        def on_epoch_end(self, epoch, logs=None):
            self.model.schedule.update(
                keras_adamixup.schedules.Measurement(auc=measure_auc(self.model)))
    ```
    """
