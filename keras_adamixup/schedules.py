"""Strength schedules: how strongly to mix at each training step.

A schedule maps the training position to the mixing strength (the partner
share ``s`` for ``coefficient="share"``, Beta ``α`` for ``coefficient="beta"``;
see `keras_adamixup.mixing`). `AdaMixupModel` evaluates it inside the compiled
train step, from its own step counter (a non-trainable variable saved with the
model), and writes the result to its ``strength`` variable, so nothing is
retraced when the value changes.

`PrivacyTarget` (in `keras_adamixup.privacy_target`, also reachable here) is
a feedback schedule: a `PrivacyMonitor` callback moves its strength to keep
the measured membership leakage under a target.

Write your own by subclassing `StrengthSchedule`: implement ``__call__(step,
total_steps)`` with TensorFlow ops (it runs in the graph) and ``get_config``,
decorate it with ``keras.saving.register_keras_serializable``.
"""

import math

import keras
import tensorflow as tf

from keras_adamixup import _checks


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

    def needs_monitor(self):
        """True if the schedule is driven by a `PrivacyMonitor` during `fit`."""
        return False

    def create_state(self):
        """Variables the schedule keeps; `AdaMixupModel` owns and saves them."""
        return []

    def reset_state(self):
        """Puts the schedule's variables back to their start (see `create_state`)."""

    def get_config(self):
        raise NotImplementedError(f"{type(self).__name__} must implement get_config().")

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


@keras.saving.register_keras_serializable(package="keras_adamixup")
class Constant(StrengthSchedule):
    """The same strength at every step (static mixup).

    Args:
        value: the strength.

    Example:

    >>> schedule = Constant(0.3)
    >>> float(schedule(tf.constant(10, tf.int64), tf.constant(-1, tf.int64)))
    0.3...
    """

    def __init__(self, value):
        self.value = _checks.number("value", value, low=0.0)

    def __call__(self, step, total_steps):
        return tf.constant(self.value, tf.float32)

    def value_bounds(self):
        return (self.value, self.value)

    def get_config(self):
        return {"value": self.value}


class _Decay(StrengthSchedule):
    def __init__(self, start, end, decay_steps=None):
        self.start = _checks.number("start", start, low=0.0)
        self.end = _checks.number("end", end, low=0.0)
        self.decay_steps = _checks.positive_int("decay_steps", decay_steps, allow_none=True)

    def needs_total_steps(self):
        return self.decay_steps is None

    def value_bounds(self):
        return (min(self.start, self.end), max(self.start, self.end))

    def _fraction(self, step, total_steps):
        """Training progress in [0, 1]; 0 while the plan is unknown."""
        step = tf.cast(step, tf.float32)
        if self.decay_steps is not None:
            length = tf.constant(float(self.decay_steps))
        else:
            length = tf.cast(total_steps, tf.float32)
        fraction = step / tf.maximum(length, 1.0)
        fraction = tf.where(length > 0.0, fraction, tf.zeros_like(fraction))
        return tf.clip_by_value(fraction, 0.0, 1.0)

    def get_config(self):
        return {"start": self.start, "end": self.end, "decay_steps": self.decay_steps}


@keras.saving.register_keras_serializable(package="keras_adamixup")
class LinearDecay(_Decay):
    """Strength moves linearly from `start` to `end` (the AdaMixup paper's).

    ``value(step) = start + (end − start) · min(step / decay_steps, 1)``.
    Strong mixing early, little late when ``start > end``.

    Args:
        start: strength at step 0.
        end: strength from `decay_steps` on.
        decay_steps: length of the decay in steps. `None` (default) uses the
            length planned by the current `fit` call (``epochs ×
            steps_per_epoch``), so the decay spans the whole training run.

    Example:

    >>> schedule = LinearDecay(start=0.4, end=0.0, decay_steps=100)
    >>> float(schedule(tf.constant(50, tf.int64), tf.constant(-1, tf.int64)))
    0.2...
    """

    def __call__(self, step, total_steps):
        fraction = self._fraction(step, total_steps)
        return self.start + (self.end - self.start) * fraction


@keras.saving.register_keras_serializable(package="keras_adamixup")
class CosineDecay(_Decay):
    """Strength follows half a cosine from `start` to `end`.

    ``value(step) = end + (start − end) · (1 + cos(π · min(step /
    decay_steps, 1))) / 2``.

    Args:
        start: strength at step 0.
        end: strength from `decay_steps` on.
        decay_steps: length of the decay in steps, or `None` for the length
            planned by the current `fit` call.

    Example:

    >>> schedule = CosineDecay(start=0.4, end=0.0, decay_steps=100)
    >>> float(schedule(tf.constant(50, tf.int64), tf.constant(-1, tf.int64)))
    0.2...
    """

    def __call__(self, step, total_steps):
        fraction = self._fraction(step, total_steps)
        cosine = 0.5 * (1.0 + tf.cos(math.pi * fraction))
        return self.end + (self.start - self.end) * cosine


def __getattr__(name):
    # `schedules.PrivacyTarget` lives in its own module, which imports this one.
    if name == "PrivacyTarget":
        from keras_adamixup.privacy_target import PrivacyTarget

        return PrivacyTarget
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def get(identifier):
    """Returns a schedule from a schedule, a number (→ `Constant`) or a config."""
    if isinstance(identifier, StrengthSchedule):
        return identifier
    if isinstance(identifier, (int, float)) and not isinstance(identifier, bool):
        return Constant(identifier)
    if isinstance(identifier, dict):
        return keras.saving.deserialize_keras_object(identifier)
    raise TypeError(
        "`schedule` must be a keras_adamixup.schedules.StrengthSchedule, a "
        f"number or a serialized schedule, got {identifier!r}."
    )
