"""Strength schedules: how strongly to mix at each training step.

- `StrengthSchedule` (`base.py`): the protocol, ``(step, total_steps) -> strength``;
- plain schedules (`fixed.py`): `Constant`, `LinearDecay`, `CosineDecay`;
- feedback schedules (`feedback.py`): `FeedbackSchedule`, whose strength is
  state moved by `Measurement`s from a `ScheduleDriver` callback;
  `PrivacyTarget` (`privacy_target.py`, leakage near a target) and
  `PlateauDecay` (`plateau.py`, cut when the hold-out loss plateaus) are two;
- `get`: a schedule from a schedule, a number or a saved config.
"""

import numbers

import keras
import numpy as np

from keras_adamixup import _checks
from keras_adamixup.schedules.base import StrengthSchedule
from keras_adamixup.schedules.feedback import FeedbackSchedule, Measurement, ScheduleDriver
from keras_adamixup.schedules.fixed import Constant, CosineDecay, LinearDecay
from keras_adamixup.schedules.plateau import PlateauDecay
from keras_adamixup.schedules.privacy_target import PrivacyTarget

__all__ = [
    "Constant",
    "CosineDecay",
    "FeedbackSchedule",
    "LinearDecay",
    "Measurement",
    "PlateauDecay",
    "PrivacyTarget",
    "ScheduleDriver",
    "StrengthSchedule",
    "get",
]


def get(identifier):
    """Returns a schedule from a schedule, a number (→ `Constant`) or a config.

    Args:
        identifier: a `StrengthSchedule` (returned as it is), a number (a
            `Constant` strength) or a schedule's serialized config (a dict).

    Example:

    ```python
    keras_adamixup.schedules.get(0.2)            # Constant(0.2)
    keras_adamixup.schedules.get(keras.saving.serialize_keras_object(
        keras_adamixup.schedules.LinearDecay(0.4, 0.0)))
    ```
    """
    if isinstance(identifier, StrengthSchedule):
        return identifier
    if isinstance(identifier, numbers.Real) and not isinstance(identifier, (bool, np.bool_)):
        # a number's errors name `schedule`, the argument the user gave (not Constant's)
        _checks.number("schedule", identifier, low=0.0, code="E01")
        return Constant(float(identifier))  # NumPy numbers too
    if isinstance(identifier, dict):
        return keras.saving.deserialize_keras_object(identifier)
    raise TypeError(
        "E47: `schedule` must be a keras_adamixup.schedules.StrengthSchedule, a "
        f"number or a serialized schedule, got {identifier!r}{_remedy(identifier)}"
    )


def _remedy(identifier):
    """What to pass instead of a name, a number as a string or a plain function."""
    if isinstance(identifier, str):
        try:
            return f": pass the number, schedule={float(identifier):g}."
        except ValueError:
            pass
        named = {name.lower(): name for name in __all__}.get(identifier.lower().replace("_", ""))
        return (f": pass an instance, e.g. schedule=keras_adamixup.schedules.{named}(...)."
                if named else ": names are not looked up; pass e.g. "
                "keras_adamixup.schedules.LinearDecay(0.4, 0.0).")
    if callable(identifier):
        return (": a function is not saved with the model; subclass "
                "keras_adamixup.schedules.StrengthSchedule (__call__(step, total_steps) and "
                "get_config()).")
    return "."
