"""Plain schedules: pure functions of the training position.

`Constant` (static mixup), `LinearDecay` (the AdaMixup paper's shape) and
`CosineDecay`. Each is ``(step, total_steps) -> strength`` with no state.
"""

import math

import keras
import tensorflow as tf

from keras_adamixup import _checks
from keras_adamixup.schedules.base import StrengthSchedule


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
        self.value = _checks.number("value", value, low=0.0, code="E01")

    def __call__(self, step, total_steps):
        return tf.constant(self.value, tf.float32)

    def value_bounds(self):
        return (self.value, self.value)

    def get_config(self):
        return {"value": self.value}


class _Decay(StrengthSchedule):
    def __init__(self, start, end, decay_steps=None):
        self.start = _checks.number("start", start, low=0.0, code="E01")
        self.end = _checks.number("end", end, low=0.0, code="E01")
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
    >>> round(float(schedule(tf.constant(50, tf.int64), tf.constant(-1, tf.int64))), 4)
    0.2
    """

    def __call__(self, step, total_steps):
        fraction = self._fraction(step, total_steps)
        cosine = 0.5 * (1.0 + tf.cos(math.pi * fraction))
        return self.end + (self.start - self.end) * cosine
