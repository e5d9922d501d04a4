"""The monitor and checkpoint `AdaMixupModel.fit` makes from ``validation_data``.

A Keras user passes ``validation_data=`` (or ``validation_split=``) to `fit`
and expects what needs a hold-out to follow, as `EarlyStopping` follows
``val_loss``. When a model needs a `PrivacyMonitor` (a feedback schedule such
as `PlateauDecay`, a `LossFloor("holdout")`, or ``checkpoint=`` settings) and
`fit` got none among its callbacks, one is made here for this `fit`:

- its non-members are the validation rows (held out from training);
- its members are a seeded draw of as many training rows (arrays), or of
  the training dataset's examples (by index, in one pass);
- with ``checkpoint=`` settings, a `PrivacyCheckpoint` on that monitor.

Callbacks given to `fit` win: a `PrivacyMonitor` among them (any
`ScheduleDriver`) turns this off.
"""

import numpy as np

from keras_adamixup import _fit_data, _fit_dataset
from keras_adamixup import schedules as schedules_lib
from keras_adamixup.checkpoint import PrivacyCheckpoint
from keras_adamixup.monitor import MIN_MONITOR_EXAMPLES, PrivacyMonitor

_NO_HOLDOUT = (
    "{needs}, measured on held-out rows during `fit`, but no monitor was given and "
    "`fit` got no validation data: pass `validation_data=(x_val, y_val)` (rows the "
    "model never trains on, "
    "at least 100; not the test set of the final audit){split}, "
    "or give `callbacks=[keras_adamixup.PrivacyMonitor(members=(x_m, y_m), "
    "nonmembers=(x_n, y_n))]` yourself.")
# arrays may be split; a dataset takes no validation_split (as in Keras)
_SPLIT = " or `validation_split=0.1`"
_NO_SPLIT = " or a dataset of them (`validation_split` splits arrays only)"


def needs(model):
    """Why `model` needs a monitor in `fit` (a phrase), or `None`."""
    if isinstance(model.schedule, schedules_lib.FeedbackSchedule):
        return (f"The schedule {type(model.schedule).__name__} is driven by measurements "
                "of membership leakage")
    if model.focus is not None and model.focus.needs_monitor:
        return "LossFloor('holdout') sets its floor from the hold-out loss"
    if model.relax is not None and model.relax.needs_monitor:
        return f"LossTarget({model.relax.target!r}) sets its target from the hold-out loss"
    if model.checkpoint is not None:
        return "The model's `checkpoint` keeps the epoch of lowest hold-out loss"
    return None


def _error_id(model):
    """The error-table id that leads the message of a missing monitor: E12 for
    a feedback schedule, E35 for ``LossFloor('holdout')``, else none."""
    if isinstance(model.schedule, schedules_lib.FeedbackSchedule):
        return "E12: "
    if model.focus is not None and model.focus.needs_monitor:
        return "E35: "
    if model.relax is not None and model.relax.needs_monitor:
        return "E59: "
    return ""


def make(model, x, y, kwargs, seed):
    """``[monitor]`` or ``[monitor, checkpoint]`` for `model`'s `fit` on `(x, y)`.

    Args:
        model: the `AdaMixupModel` (its ``checkpoint`` settings).
        x: the inputs given to `fit` (arrays, or a dataset of examples).
        y: the labels given to `fit` (`None` with a dataset).
        kwargs: `fit`'s other keyword arguments (``validation_data``,
            ``validation_split``, ``sample_weight``).
        seed: the seed of the draw of members.
    """
    readers = ([_fit_data.TEACHERS_READ] if getattr(model, "targets", None) is not None
               else []) + [_fit_data.MONITOR_READS]
    _fit_data.require_arrays_or_dataset(x, y, readers)  # one E34 naming every reader
    holdout = _holdout(x, y, kwargs)
    if holdout is None and kwargs.get("validation_split") and not _fit_data.are_arrays(x, y):
        raise ValueError(_error_id(model) + f"{needs(model)}, measured on held-out rows "
                         "during `fit`; `validation_split` splits arrays only, and this fit "
                         "got a dataset: pass `validation_data=` (a dataset or arrays of "
                         "rows the model never trains on, at least 100) instead.")
    if holdout is None:
        raise ValueError(_error_id(model) + _NO_HOLDOUT.format(
            needs=needs(model), split=_SPLIT if _fit_data.are_arrays(x, y) else _NO_SPLIT))
    size = _fit_dataset.count_examples(holdout)
    if size < MIN_MONITOR_EXAMPLES:  # named as the user gave them
        given = "validation_data" if kwargs.get("validation_data") is not None \
            else "validation_split"
        raise ValueError(
            f"E13: `{given}` holds {size} examples; the monitor this fit makes from them "
            f"needs at least {MIN_MONITOR_EXAMPLES} (500 or more is better) for a usable AUC "
            "and a steady hold-out loss: give more held-out rows"
            + (" (a larger `validation_split`)." if given == "validation_split" else "."))
    if _fit_data.are_arrays(x, y):
        x, y, _ = _fit_data.training_part(x, y, kwargs)
    monitor = monitor_of(x, y, holdout, seed, size=size)
    if model.checkpoint is None:
        return [monitor]
    return [monitor, PrivacyCheckpoint(monitor, **model.checkpoint)]


def monitor_of(x, y, holdout, seed, size=None):
    """A `PrivacyMonitor` of training rows against `holdout` (arrays or a dataset).

    Args:
        x: the training inputs (arrays), or a dataset of ``(x, y)`` batches.
        y: their labels (`None` with a dataset).
        holdout: the non-members.
        seed: the seed of the draw of members (as many as `holdout` has rows).
        size: `holdout`'s number of rows when already counted (a dataset's
            count is a pass over it), or `None`.
    """
    if _fit_dataset.is_dataset(x):
        size = _fit_dataset.count_examples(holdout) if size is None else size
        return PrivacyMonitor(_fit_dataset.draw_examples(x, size, seed), holdout)
    return PrivacyMonitor.from_training(x, y, holdout, seed=seed)


def _holdout(x, y, kwargs):
    """The validation rows as the monitor's non-members: `(x, y)` or a dataset, or `None`."""
    validation = kwargs.get("validation_data")
    if validation is not None:
        if isinstance(validation, (tuple, list)):
            if len(validation) not in (2, 3):
                raise ValueError("`validation_data` must be (x_val, y_val), (x_val, y_val, "
                                 "sample_weight) or a dataset.")
            return tuple(validation[:2])
        if _fit_dataset.is_dataset(validation):
            _fit_dataset.check(validation, "validation_data")
        return _fit_dataset.without_weights(validation)
    split = kwargs.get("validation_split") or 0.0
    if split and _fit_data.are_arrays(x, y):
        at = _fit_data.split_index(x, split)
        return _fit_data.rows(x, slice(at, None)), np.asarray(y)[at:]
    return None
