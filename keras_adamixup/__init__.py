"""keras-adamixup: scheduled mixup against membership inference, for Keras 3.

Public API:

- `AdaMixupModel`: wrap a Keras classifier; `fit` mixes training batches.
- `adamixup`: the same mixing as a `tf.data` transformation.
- `mixing`: the pure TensorFlow ops (`mix_batch`, `mix`, `sample_beta`, ...).
- `MixingConfig`: the mixing settings, checked once, shared by the model, the
  ops and the `tf.data` op.
- `schedules`: `Constant`, `LinearDecay`, `CosineDecay` (plain, `StrengthSchedule`),
  `PrivacyTarget` and `PlateauDecay` (feedback, `FeedbackSchedule`: state moved by
  measurements).
- `PrivacyMonitor` + `schedules.PrivacyTarget`: measure membership leakage
  during `fit` and move the strength to keep it under a target.
- `PrivacyCheckpoint`: keep (and restore) the most accurate epoch whose
  monitored leakage is within a target; early stopping on the monitor's
  hold-out when no target is set.
- `SplitTeachers`: train on out-of-fold soft labels of split teachers
  (`AdaMixupModel(targets=SplitTeachers())`), so that a member's target is
  what the model family predicts for a non-member.
- `recommended.model` / `recommended.callbacks`: the recommended setting
  (split teachers, `PlateauDecay` mixing, the checkpoint), defined once.
- `duplicates.near_duplicate_groups`: the near-duplicate rows that
  `SplitTeachers` leaves out together.
- `losses.MixupCrossentropy`: cross-entropy for class ids and soft targets.

The membership-inference audit lives in `keras_adamixup.audit` and is imported
only when used (it needs TensorFlow Privacy). So are `keras_adamixup.recipes`
(the table of recipes that get compared: no defence, early stopping, the
paper's schedule, split teachers, the recommended setting) and
`keras_adamixup.experiment` (train, audit and compare them).
"""

from keras_adamixup import losses
from keras_adamixup.checkpoint import PrivacyCheckpoint
from keras_adamixup import duplicates
from keras_adamixup.focus import LossFloor
from keras_adamixup.relax import LossTarget
from keras_adamixup import metrics
from keras_adamixup import mixing
from keras_adamixup import schedules
from keras_adamixup.mixing import mix_batch
from keras_adamixup.mixing_config import MixingConfig
from keras_adamixup import monitor
from keras_adamixup.model import AdaMixupModel
from keras_adamixup.monitor import PrivacyMonitor
from keras_adamixup.pipeline import adamixup
from keras_adamixup import recommended
from keras_adamixup.schedules import PrivacyTarget
from keras_adamixup.teacher_targets import TeacherTargets
from keras_adamixup.teachers import SplitTeachers
from keras_adamixup.version import __version__

__all__ = [
    "AdaMixupModel",
    "adamixup",
    "duplicates",
    "LossFloor",
    "LossTarget",
    "losses",
    "metrics",
    "mix_batch",
    "MixingConfig",
    "mixing",
    "monitor",
    "PrivacyCheckpoint",
    "PrivacyMonitor",
    "PrivacyTarget",
    "recommended",
    "SplitTeachers",
    "TeacherTargets",
    "schedules",
    "__version__",
]

# imported when first used (`keras_adamixup.audit.run_audit` works without an import
# of its own): the audit needs TensorFlow Privacy and scikit-learn, the core does not
_LAZY = ("audit", "experiment", "recipes")


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return importlib.import_module(f"keras_adamixup.{name}")
    raise AttributeError(f"module 'keras_adamixup' has no attribute {name!r}")
