"""`StrengthSchedule`: the protocol of every strength schedule, and `get`.

A schedule maps the training position to the mixing strength (the partner
share ``s`` for ``coefficient="share"``, Beta ``α`` for ``coefficient="beta"``;
see `keras_adamixup.mixing`). `AdaMixupModel` evaluates it inside the compiled
train step, from its own step counter (a non-trainable variable saved with the
model), and writes the result to its ``strength`` variable, so nothing is
retraced when the value changes.

Plain schedules are pure functions ``(step, total_steps) -> strength``
(`schedules.fixed`). Feedback schedules keep state that measurements move
(`schedules.feedback.FeedbackSchedule`, e.g. `PrivacyTarget`).

Write your own by subclassing `StrengthSchedule`: implement ``__call__(step,
total_steps)`` with TensorFlow ops (it runs in the graph) and ``get_config``,
decorate it with ``keras.saving.register_keras_serializable``.
"""

import keras


@keras.saving.register_keras_serializable(package="keras_adamixup")
class StrengthSchedule:
    """Base class of strength schedules.

    Subclasses implement ``__call__(step, total_steps)`` returning a float32
    scalar tensor, using only TensorFlow ops (it is traced into the train
    step), and ``get_config()`` so the schedule is saved with the model.

    Args (of ``__call__``):
        step: int64 scalar tensor, the number of training steps done so far.
        total_steps: int64 scalar tensor, the number of steps planned by the
            current ``fit`` call (``epochs × steps_per_epoch``), or ``-1`` when
            unknown.

    Example:

    ```python
    @keras.saving.register_keras_serializable(package="my_project")
    class StepDown(keras_adamixup.schedules.StrengthSchedule):
        def __init__(self, high=0.4, low=0.1, at=1000):
            self.high, self.low, self.at = high, low, at

        def __call__(self, step, total_steps):
            return tf.where(step < self.at, self.high, self.low)

        def get_config(self):
            return {"high": self.high, "low": self.low, "at": self.at}
    ```
    """

    def __call__(self, step, total_steps):
        raise NotImplementedError(
            f"{type(self).__name__} must implement __call__(step, total_steps)."
        )

    def needs_total_steps(self):
        """True if the schedule uses the planned length of training."""
        return False

    def value_bounds(self):
        """`(min, max)` of the values the schedule can take, or `None`."""
        return None

    def get_config(self):
        raise NotImplementedError(f"{type(self).__name__} must implement get_config().")

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"
