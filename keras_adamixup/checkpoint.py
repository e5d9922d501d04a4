"""`PrivacyCheckpoint`: keep the best epoch whose leakage is within target.

Early stopping keeps the epoch with the best validation score and ignores
leakage; a fixed number of epochs keeps the last one. A `PrivacyMonitor`
already measures, every epoch, both the leakage (its membership signal on
training members vs held-out non-members) and the accuracy on those held-out
non-members, which is a validation score. `PrivacyCheckpoint` uses both:

- an epoch is *eligible* when its monitored AUC is at most `target_auc`
  (every epoch when `target_auc` is `None`: plain early stopping on the
  hold-out score);
- it keeps a copy of the weights of the eligible epoch with the best
  hold-out score: the lowest hold-out loss (``score="loss"``, the default,
  as `keras.callbacks.EarlyStopping` watches ``val_loss``) or the highest
  hold-out accuracy (``score="accuracy"``; the earlier epoch on ties, it
  trained less). On a hold-out of a few hundred examples accuracy moves in
  steps of a fraction of a point and stops improving early; the loss is
  smoother (docs/BENCHMARKS.md, "Epoch selection");
- it stops training when `patience` measurements pass without a better
  score of *any* epoch (eligible or not: as early stopping does, so the best
  accuracy the model reaches is known, which ``max_accuracy_drop`` refers to);
- at the end of training it restores the kept weights. When no epoch was
  eligible it restores the epoch with the lowest monitored AUC and warns
  (`CheckpointWarning`): the target was not met;
- with ``max_accuracy_drop``, utility comes first: when the kept epoch's
  hold-out accuracy is more than that below the best epoch's, it restores
  instead the epoch with the lowest monitored AUC among those within the
  budget, and warns (the target would have cost more accuracy than allowed).

With `target_auc=None` this is early stopping on the monitor's hold-out.
Combined with mixing (an `AdaMixupModel`, possibly driven by a
`PrivacyTarget`), mixing changes which epochs are eligible and how accurate
they are. Whether that beats early stopping is a measurement:
docs/BENCHMARKS.md.
"""

import warnings

import keras

from keras_adamixup import _stack
from keras_adamixup import _checks
from keras_adamixup.schedules.feedback import FeedbackSchedule


class CheckpointWarning(RuntimeWarning):
    """No epoch met the `PrivacyCheckpoint` target; the least leaky one was restored."""


class PrivacyCheckpoint(keras.callbacks.Callback):
    """Restores the best-scoring epoch whose monitored leakage is within target.

    See the module docstring for the rule. The weights kept are those of the
    trained network: an `AdaMixupModel`'s ``base_model`` (its schedule position
    and controller state are not rolled back), any other model's own.

    Args:
        monitor: the `keras_adamixup.PrivacyMonitor` of the same `fit` (pass
            both in ``callbacks``, in any order). It must measure every epoch
            (``every_epochs=1``, no ``every_steps``), or the checkpoint
            measures through it at each epoch end.
        target_auc: the largest monitored AUC an epoch may have to be kept;
            `None`: every epoch is eligible. Default: the target of the
            model's `PrivacyTarget` schedule when it has one, else `None`.
        patience: stop training after this many measurements without a better
            score (of any epoch); `None` never stops early.
        score: ``"loss"`` (hold-out cross-entropy, lower is better) or
            ``"accuracy"`` (hold-out accuracy, higher is better).
        min_delta: an improvement of the score must exceed this.
        max_accuracy_drop: accuracy budget (e.g. 0.01): never restore an epoch
            whose hold-out accuracy is more than this below the best measured;
            `None`: no budget. Keeps a copy of the weights of every epoch
            within the budget of the best so far.
        restore: restore the kept weights at the end of training.

    Attributes:
        best_epoch: the kept epoch (0-based), or `None`.
        best: the monitor's record of that epoch.
        stopped_epoch: the epoch training stopped after, or `None`.

    Example:

    ```python
    monitor = keras_adamixup.PrivacyMonitor.from_training(x_train, y_train, (x_val, y_val))
    checkpoint = keras_adamixup.PrivacyCheckpoint(monitor, target_auc=0.55, patience=5)
    model.fit(x_train, y_train, epochs=60, callbacks=[monitor, checkpoint])
    checkpoint.best_epoch, checkpoint.best["holdout_loss"], checkpoint.best["auc"]
    ```
    """

    def __init__(self, monitor, target_auc="schedule", patience=None, score="loss",
                 min_delta=0.0, max_accuracy_drop=None, restore=True):
        super().__init__()
        from keras_adamixup.monitor import PrivacyMonitor

        if not isinstance(monitor, PrivacyMonitor):
            raise TypeError(
                f"`monitor` must be the PrivacyMonitor of the same fit, got {monitor!r}.")
        self.monitor = monitor
        if target_auc not in ("schedule", None):
            target_auc = _checks.number("target_auc", target_auc, 0.0, 1.0)
        self.target_auc = target_auc
        self.patience = _checks.positive_int("patience", patience, allow_none=True)
        self.score = _checks.choice("score", score, ("loss", "accuracy"))
        self.min_delta = _checks.number("min_delta", min_delta, low=0.0)
        self.max_accuracy_drop = (None if max_accuracy_drop is None else _checks.number(
            "max_accuracy_drop", max_accuracy_drop, 0.0, 1.0))
        _checks.boolean("restore", restore)
        self.restore = restore
        self._reset()

    def _reset(self):
        self.best_epoch = None
        self.best = None
        self.stopped_epoch = None
        self._weights = None
        self._fallback = None  # (auc, epoch, record, weights): the least leaky epoch
        self._waited = 0
        self._best_any = None  # the best-scoring record of any epoch, for patience
        self._band = []  # (epoch, record, weights) within max_accuracy_drop of the best
        self._best_accuracy = -1.0

    def _network(self):
        return getattr(self.model, "base_model", self.model)

    def _target(self):
        if self.target_auc != "schedule":
            return self.target_auc
        schedule = getattr(self.model, "schedule", None)
        if isinstance(schedule, FeedbackSchedule):
            return getattr(schedule, "target_auc", None)
        return None

    def on_train_begin(self, logs=None):
        self._reset()
        watched = getattr(self.monitor, "model", None)
        if watched is None or watched is not self.model:
            where = ("is not among this fit's callbacks" if watched is None else
                     f"measures another model ({getattr(watched, 'name', watched)!r}, not "
                     f"{getattr(self.model, 'name', self.model)!r})")
            raise ValueError(
                f"E38: PrivacyCheckpoint: its monitor {where}. The checkpoint keeps epochs by "
                "that monitor's measurements of *this* model: pass both in the same "
                "`fit(callbacks=[monitor, checkpoint])`.")

    def on_epoch_end(self, epoch, logs=None):
        record = self.monitor.measure_epoch(epoch)
        copy = []  # this epoch's weights, copied at most once, when first needed

        def weights():
            if not copy:
                copy.append(self._network().get_weights())
            return copy[0]

        if self._fallback is None or record["auc"] < self._fallback[0]:
            self._fallback = (record["auc"], epoch, record, weights())
        target = self._target()
        eligible = target is None or record["auc"] <= target
        if eligible and (self.best is None or self._better(record, self.best)):
            self.best_epoch, self.best, self._weights = epoch, record, weights()
        if self._best_any is None or self._better(record, self._best_any):
            self._best_any = record
            self._waited = 0
        else:
            self._waited += 1
        if self.max_accuracy_drop is not None:
            self._best_accuracy = max(self._best_accuracy, record["holdout_accuracy"])
            floor = self._best_accuracy - self.max_accuracy_drop
            self._band = [b for b in self._band if b[1]["holdout_accuracy"] >= floor]
            if record["holdout_accuracy"] >= floor:
                self._band.append((epoch, record, weights()))
        if logs is not None:
            logs["checkpoint_epoch"] = -1 if self.best_epoch is None else self.best_epoch
        if self.patience is not None and self._waited >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def _better(self, record, best):
        if self.score == "loss":
            return record["holdout_loss"] < best["holdout_loss"] - self.min_delta
        return record["holdout_accuracy"] > best["holdout_accuracy"] + self.min_delta

    def on_train_end(self, logs=None):
        if self._weights is None and self._fallback is not None:
            auc, epoch, record, weights = self._fallback
            warnings.warn(
                f"PrivacyCheckpoint: no epoch had a monitored AUC ≤ {self._target():g}; "
                f"restoring epoch {epoch + 1}, the least leaky (AUC {auc:.3f}). Mix more, "
                "train less, or set a reachable target.", CheckpointWarning,
                stacklevel=_stack.user_level())
            self.best_epoch, self.best, self._weights = epoch, record, weights
        if (self.max_accuracy_drop is not None and self.best is not None and self._band
                and self.best["holdout_accuracy"] < self._best_accuracy - self.max_accuracy_drop):
            epoch, record, weights = min(self._band, key=lambda b: (b[1]["auc"], b[0]))
            warnings.warn(
                f"PrivacyCheckpoint: the epoch within the target (hold-out accuracy "
                f"{self.best['holdout_accuracy']:.3f}) costs more than max_accuracy_drop="
                f"{self.max_accuracy_drop:g} below the best ({self._best_accuracy:.3f}); "
                f"restoring epoch {epoch + 1} instead, the least leaky within the budget "
                f"(monitored AUC {record['auc']:.3f}).", CheckpointWarning,
                stacklevel=_stack.user_level())
            self.best_epoch, self.best, self._weights = epoch, record, weights
        if self.restore and self._weights is not None:
            self._network().set_weights(self._weights)
