"""`PrivacyMonitor`: measures membership leakage during `fit`.

Each measurement runs the model (inference mode, batched, one compiled
forward function) on a *monitor set*: a fixed subset of the training members
and held-out non-members the model never trains on (for example part of the
validation data, never the test set used for the final audit). From the
per-example cross-entropy ℓ it computes

- ``monitor_auc``: AUC of the loss-threshold attack (score −ℓ: members have
  lower loss), the signal a `PrivacyTarget` schedule is driven by;
- ``monitor_loss_gap``: mean ℓ of non-members − mean ℓ of members;
- ``monitor_confidence_gap``: mean probability of the true class, members −
  non-members;

With ``signal="trajectory"`` the AUC that drives everything is a
training-trajectory one instead: each example's change of logit-scaled
confidence ``log p_y − log(1 − p_y)`` since the end of epoch
``reference_epoch`` (members' confidence grows more than non-members'); the
loss-threshold AUC is logged beside it as ``monitor_loss_auc``, and is the
signal until the reference exists. On digits and Adult it tracks the audit a
little closer than the loss (docs/BENCHMARKS.md, "A stronger in-training
signal"); both stay far weaker than LiRA.

With a `PrivacyTarget` schedule, the monitor feeds the AUC to it and logs the
new strength as ``controller_strength``. The values are added to the logs of
the epoch they were measured at (with ``monitor_epoch``, counted from 1), so
`History` keeps one value per measurement (``history.history["monitor_auc"]``;
epochs without a measurement have none, as ``val_loss`` with Keras'
``validation_freq``); every measurement, with its step, is also in
`PrivacyMonitor.records`.

The AUC of ``n`` members against ``n`` non-members has a standard error of
about ``1/sqrt(6n)`` near 0.5 (0.041 at n = 100, 0.018 at n = 500), so the
monitor refuses fewer than `MIN_MONITOR_EXAMPLES` per side; use 500 or more
to control to a target within a few hundredths.
"""

import math
import warnings

import keras
import numpy as np
import tensorflow as tf

from keras_adamixup import _stack
from keras_adamixup import _checks, _fit_data
from keras_adamixup import predictions as predictions_lib
from keras_adamixup.schedules.feedback import FeedbackSchedule, Measurement, ScheduleDriver

__all__ = [
    "HoldoutWarning",
    "PrivacyMonitor",
    "SaturationWarning",
    "SignalWarning",
    "membership_signal",
    "plot_privacy_trajectory",
]


MIN_MONITOR_EXAMPLES = 100
SIGNALS = ("loss", "trajectory")
SATURATION_PATIENCE = 3
# Standard errors below 0.5 that count as "clearly below" for `HoldoutWarning`.
BELOW_CHANCE_SE = 2.0


class SaturationWarning(RuntimeWarning):
    """The controller sat at `max_strength` and the monitored AUC stayed above target.

    A `RuntimeWarning`; its own class so callers (a benchmark, the demo, LiRA's
    shadow training) can count or filter it without matching the message.

    Example:

    ```python
    import warnings

    warnings.simplefilter("error", keras_adamixup.monitor.SaturationWarning)
    ```
    """


class HoldoutWarning(RuntimeWarning):
    """The monitored AUC stayed clearly below 0.5: the non-members are probably not held out.

    A loss-threshold attack does worse than chance only when the "non-members"
    fit the model better than the members, e.g. when they are training rows
    or the two sides were swapped. A `PrivacyTarget` would read such an AUC as
    "no leakage" and switch mixing off.

    Example:

    ```python
    import warnings

    warnings.simplefilter("error", keras_adamixup.monitor.HoldoutWarning)
    ```
    """


class SignalWarning(RuntimeWarning):
    """The monitor's signal cannot be what was asked for in this `fit`: with
    ``signal="trajectory"``, a `reference_epoch` beyond the planned epochs
    leaves the loss AUC as the signal for the whole fit.

    Example:

    ```python
    import warnings

    warnings.simplefilter("error", keras_adamixup.monitor.SignalWarning)
    ```
    """


def _auc_standard_error(n):
    return 1.0 / math.sqrt(6.0 * n)


def membership_signal(outputs_members, labels_members, outputs_nonmembers,
                      labels_nonmembers, outputs="auto"):
    """Loss-threshold AUC, loss gap and confidence gap from model outputs.

    Args:
        outputs_members: the members' logits or probabilities,
            `(n, classes)` (or `(n,)`/`(n, 1)` for one sigmoid output).
        labels_members: their class ids or one-hot rows.
        outputs_nonmembers: the same as `outputs_members`, for non-members.
        labels_nonmembers: their class ids or one-hot rows.
        outputs: ``"auto"`` (detected from the values), ``"logits"`` or
            ``"probabilities"``.

    Returns:
        dict with ``auc``, ``loss_gap``, ``confidence_gap``,
        ``member_accuracy``, ``holdout_accuracy`` and ``holdout_loss`` (the
        non-members are held out from training: their accuracy and mean
        cross-entropy are validation signals).

    Example:

    ```python
    signal = keras_adamixup.monitor.membership_signal(
        model.predict(x_in), y_in, model.predict(x_out), y_out)
    signal["auc"], signal["loss_gap"]
    ```
    """
    pm, ym, pn, yn, _ = predictions_lib.check_pair(
        outputs_members, labels_members, outputs_nonmembers, labels_nonmembers,
        kind=outputs)
    loss_m = predictions_lib.cross_entropy(pm, ym)
    loss_n = predictions_lib.cross_entropy(pn, yn)
    auc = predictions_lib.roc_auc(-loss_m, -loss_n)
    return {
        "auc": float(auc),
        "loss_gap": float(loss_n.mean() - loss_m.mean()),
        "confidence_gap": float(pm[np.arange(len(ym)), ym].mean()
                                - pn[np.arange(len(yn)), yn].mean()),
        "member_accuracy": float(np.mean(np.argmax(pm, 1) == ym)),
        "holdout_accuracy": float(np.mean(np.argmax(pn, 1) == yn)),
        "holdout_loss": float(loss_n.mean()),
    }


def _check_dataset(data, name):
    """A finite, batched dataset of `(x, y)`: `(count, digests of the rows)`.

    Iterates the dataset once (monitor sets are small), so a dataset that
    cannot be measured fails here, not after the first epoch.
    """
    if data.cardinality() == tf.data.INFINITE_CARDINALITY:
        raise ValueError(f"E30: `{name}` is an infinite dataset (`repeat()`): the monitor "
                         "measures a fixed, finite set.")
    spec = data.element_spec
    if not isinstance(spec, tuple) or len(spec) not in (2, 3):
        raise ValueError(f"`{name}` must be a dataset of (x, y) elements, got "
                         f"element_spec {spec}.")
    if spec[1].shape.rank == 0:
        raise ValueError(
            f"E30: `{name}` is not batched (its labels are scalars): batch it, e.g. "
            f"`{name}.batch(256)`.")
    count, digests, peaks = 0, [], []
    for element in data.as_numpy_iterator():
        for leaf in tf.nest.flatten(element[0]):
            _check_finite(leaf, name, count)
        x = np.asarray(tf.nest.flatten(element[0])[0])
        count += len(element[1])
        digests.extend(predictions_lib.row_digests(x))
        peaks.append(_checks.row_peaks(x))
    return count, digests, _checks.joined_peaks(peaks)


def _check_finite(x, name, offset=0, name_of=None, rows=None):
    """E52: a monitor side's inputs must be finite: the model's outputs on NaN rows
    (a ReLU reads NaN as 0) would give an AUC that drives the schedule on noise.

    Args:
        x: an array of inputs (rows first).
        name: ``"members"`` or ``"nonmembers"``.
        offset: the index of `x`'s first row in the side (a dataset's batch).
        name_of: what the row numbers count instead, e.g. ``"training rows"`` when
            `x` is the members drawn from the training set.
        rows: with `name_of`: the number of each row of `x` there (the draw's
            indices into the training set).
    """
    bad = _fit_data.non_finite_rows(x)
    if len(bad):
        where = f"the {name_of} the monitor's `{name}` are drawn from" if name_of else \
            f"the monitor's `{name}`"
        named = np.asarray(rows)[bad[:10]] if rows is not None else bad[:10] + offset
        raise ValueError(
            f"E52: {where} have NaN or inf in their inputs (e.g. rows {named.tolist()}): "
            "the AUC on them would be noise, and a schedule driven by it would follow the "
            "noise. Remove or impute those rows.")


def _check_side(data, name):
    """`(data, count, row digests)`: `(x, y)` arrays (x may be a structure) or a batched dataset."""
    if data is None:
        raise ValueError(
            f"E13: PrivacyMonitor needs `{name}`: (x, y) arrays or a batched tf.data "
            "dataset of (x, y). Members are a fixed subset of the training data; "
            "non-members are held-out examples the model never trains on (never "
            "the test set of the final audit)."
        )
    if isinstance(data, tf.data.Dataset):
        count, digests, peaks = _check_dataset(data, name)
    else:
        if not isinstance(data, (tuple, list)) or len(data) != 2:
            got = (f"a {type(data).__name__} of {len(data)}" if isinstance(data, (tuple, list))
                   else type(data).__name__)
            raise ValueError(f"`{name}` must be a tuple (x, y) or a tf.data.Dataset, "
                             f"got {got}" + (" (sample weights are not taken: pass (x, y))"
                                             if isinstance(data, (tuple, list))
                                             and len(data) == 3 else "") + ".")
        x, y = data
        x = tf.nest.map_structure(np.asarray, x)
        y = np.asarray(y)
        sizes = {len(leaf) for leaf in tf.nest.flatten(x)} | {len(y)}
        if len(sizes) != 1:
            raise ValueError(
                f"`{name}`: x and y have different numbers of rows {sorted(sizes)}.")
        for leaf in tf.nest.flatten(x):
            _check_finite(leaf, name)
        data, count = (x, y), len(y)
        digests = predictions_lib.row_digests(tf.nest.flatten(x)[0])
        peaks = _checks.row_peaks(tf.nest.flatten(x)[0])
    if count < MIN_MONITOR_EXAMPLES:
        raise ValueError(
            f"E13: `{name}` has {count} examples; the monitor needs at least "
            f"{MIN_MONITOR_EXAMPLES} per side, for a usable AUC (standard error "
            f"≈ 1/sqrt(6n) = {_auc_standard_error(max(count, 1)):.3f} at n = {count}; "
            "500 or more is better) and a steady hold-out loss (what "
            "LossTarget('holdout') and LossFloor('holdout') follow). Give more held-out "
            "rows: a larger `validation_split`, or `validation_data`."
        )
    return data, count, digests, peaks


class PrivacyMonitor(ScheduleDriver):
    """Measures membership leakage during `fit` and drives `PrivacyTarget`.

    See the module docstring for the signal. Works with any Keras classifier:
    with an `AdaMixupModel` whose schedule is a `PrivacyTarget` it also moves
    the mixing strength (also when the mixing runs in a `tf.data` pipeline
    reading the model's ``strength``); otherwise it only logs.

    Args:
        members: `(x, y)` of training members (a fixed subset of the training
            data), or a batched `tf.data.Dataset` of `(x, y)`.
        nonmembers: `(x, y)` of held-out examples the model never trains on,
            or a batched dataset. At least `MIN_MONITOR_EXAMPLES` (100) per
            side (arrays and datasets alike; E13).
        every_epochs: measure at the end of every this many epochs (epochs
            ``every_epochs``, ``2 · every_epochs``, ... counted from 1). The
            epoch logs, and so ``history.history["monitor_auc"]``, get one
            value per measurement, at the epoch it was made (as Keras logs
            ``val_loss`` with ``validation_freq``): `every_epochs=2` over 4
            epochs gives 2 values, also in `records`, and
            ``monitor_epoch`` (counted from 1) says which epochs they are.
            A `PrivacyCheckpoint` measures through the monitor at every
            epoch, and those measurements are logged too. A fit shorter than
            `every_epochs` measures nothing: `SignalWarning` (E49).
        every_steps: measure every this many training steps instead; an
            epoch's logs hold the latest measurement made during it (none
            for an epoch without one). `PrivacyMonitor` is not serialized:
            create it again when resuming (the controller's state is saved
            with the model).
        batch_size: batch size of the forward passes over arrays.
        signal: ``"loss"`` (the loss-threshold AUC) or ``"trajectory"`` (the
            AUC of each example's confidence change since the end of epoch
            `reference_epoch`; the loss AUC until then). The trajectory needs
            the monitor's examples in the same order at every measurement
            (arrays, or datasets without shuffling).
        reference_epoch: with ``"trajectory"``: the epoch (counted from 1)
            whose measurement is the reference.

    Example:

    ```python
    monitor = keras_adamixup.PrivacyMonitor(
        members=(x_train[:1000], y_train[:1000]), nonmembers=(x_val, y_val))
    history = model.fit(x_train, y_train, epochs=20, callbacks=[monitor])
    keras_adamixup.monitor.plot_privacy_trajectory(history, "trajectory.png")
    ```
    """

    def __init__(self, members, nonmembers, every_epochs=1, every_steps=None,
                 batch_size=512, signal="loss", reference_epoch=5):
        super().__init__()
        self.signal = _checks.choice("signal", signal, SIGNALS, code="E36")
        self.reference_epoch = _checks.positive_int("reference_epoch", reference_epoch,
                                                      code="E36")
        self._reference = None  # (confidences of members, of non-members, labels)
        self._measuring_epoch = None  # the epoch `_step` measures (`measure()` reads it)
        self._kind = None  # the output kind, decided at the first measurement of a fit
        self.output_kind_evidence = None
        self.members, n_members, member_rows, member_peaks = _check_side(members, "members")
        self.nonmembers, n_nonmembers, nonmember_rows, nonmember_peaks = _check_side(
            nonmembers, "nonmembers")
        self._member_rows, self._nonmember_rows = member_rows, nonmember_rows
        _checks.same_scale(member_peaks, nonmember_peaks,  # datasets too, batch by batch
                           ("monitor's members (training rows)",
                            "monitor's non-members (validation rows)"), "E68")
        overlap = predictions_lib.count_common(member_rows, nonmember_rows)
        if overlap:
            raise ValueError(
                f"E14: {overlap} monitor non-member row(s) also appear among the monitor "
                "members: non-members must be held out from training."
            )
        self._min_side = min(n_members, n_nonmembers)
        _checks.positive_int("every_epochs", every_epochs)
        _checks.positive_int("batch_size", batch_size)
        _checks.positive_int("every_steps", every_steps, allow_none=True)
        self.every_epochs = every_epochs
        self.every_steps = every_steps
        self.batch_size = batch_size
        self.records = []
        self._forward = None
        self._steps = 0
        self._epoch = 0
        self._streaks = {}  # warning category → measurements in a row
        self._warned = set()
        self._fit_start = 0  # index in `records` of this fit's first measurement
        self._epoch_logs = None  # (epoch, the logs dict of its end) once it has ended
        self._epochs_ended = 0  # epochs ended in this fit
        self._holdout_by_digest = False  # from_training: non-members not rows of x_train
        self._rows_checked = False  # this fit: check_training_data passed

    @classmethod
    def from_training(cls, x_train, y_train, nonmembers, seed=0, **kwargs):
        """A monitor of a random training subset the size of `nonmembers`.

        Draws ``min(len(y_train), len(nonmembers))`` training examples without
        replacement (with `seed`), so both sides are the same size and the AUC
        is balanced. Useful when a factory builds a fresh monitor for each
        model it trains (LiRA's shadow models, seeds of a benchmark).

        Args:
            x_train: the inputs the model trains on (arrays).
            y_train: their labels.
            nonmembers: `(x, y)` arrays held out from training.
            seed: seed of the draw.
            **kwargs: passed to `PrivacyMonitor` (``every_epochs``, ...).
        """
        y_train = np.asarray(y_train)
        # the non-members first: a short hold-out is named as such, not as too few members
        nonmembers, count, _, _ = _check_side(nonmembers, "nonmembers")
        by_digest = not isinstance(nonmembers, tf.data.Dataset)
        if by_digest:
            first = tf.nest.flatten(nonmembers[0])[0]
            overlap = predictions_lib.count_overlap(tf.nest.flatten(x_train)[0], first)
            if overlap:
                raise ValueError(
                    f"E14: {overlap} of the `nonmembers` are rows of `x_train`: non-members "
                    "must be held out from training.")
        if len(y_train) < MIN_MONITOR_EXAMPLES:
            raise ValueError(
                f"E13: the monitor draws its members from the training rows, and there are "
                f"{len(y_train)}; it needs at least {MIN_MONITOR_EXAMPLES} (a usable AUC "
                "and hold-out loss). Train on more rows, or without the monitor: "
                "AdaMixupModel(base, ...) with a fixed `schedule` and no `checkpoint` "
                "(recommended.model(...) needs the monitor for PlateauDecay and its "
                "checkpoint).")
        n = min(len(y_train), count)
        pick = np.sort(np.random.default_rng(seed).choice(len(y_train), n, replace=False))
        x_pick = tf.nest.map_structure(lambda a: np.asarray(a)[pick], x_train)
        for leaf in tf.nest.flatten(x_pick):  # rows named as rows of x_train, not of the draw
            _check_finite(leaf, "members", name_of="training rows", rows=pick)
        monitor = cls((x_pick, y_train[pick]), nonmembers, **kwargs)
        monitor._holdout_by_digest = by_digest  # compared with x_train: HoldoutWarning moot
        return monitor

    def check_training_data(self, x_train):
        """Refuses a monitor whose sides do not match the rows `fit` trains on (E14).

        The non-members must not be training rows, and the members must be:
        otherwise the AUC reads near 0.5 (or below) whatever the model
        leaks, and a `PrivacyTarget` switches mixing off. `AdaMixupModel.fit`
        calls this with its training arrays (after ``validation_split``);
        call it yourself for another model. Rows are compared by digest
        (the first input of a model of several).

        Args:
            x_train: the training inputs (an array, or a structure of them).
        """
        first = keras.tree.flatten(x_train)[0]
        training = predictions_lib.row_digests(first)
        inside = predictions_lib.count_common(training, self._nonmember_rows)
        if inside:
            raise ValueError(
                f"E14: {inside} of the monitor's {len(self._nonmember_rows)} non-members are "
                "rows of the training data given to `fit`: the monitor would compare "
                "members with members and read no leakage. Take the non-members from "
                "data held out from training (e.g. part of the validation data).")
        outside = len(self._member_rows) - predictions_lib.count_common(training,
                                                                        self._member_rows)
        if outside:
            raise ValueError(
                f"E14: {outside} of the monitor's {len(self._member_rows)} members are not rows "
                "of the training data given to `fit` (after `validation_split`): members "
                "must be examples the model trains on, e.g. "
                "`PrivacyMonitor.from_training(x_train, y_train, nonmembers)` with the "
                "arrays given to `fit`.")
        self._rows_checked = True  # for this fit: the digests decide, not the AUC

    # -- measuring -----------------------------------------------------------

    def _outputs(self, data):
        if self._forward is None:
            model = self.model
            self._forward = tf.function(
                lambda x: tf.cast(model(x, training=False), tf.float32),
                reduce_retracing=True)
        outputs, labels = [], []
        if isinstance(data, tf.data.Dataset):
            for element in data:
                x, y, _ = keras.utils.unpack_x_y_sample_weight(element)
                outputs.append(self._forward(x).numpy())
                labels.append(np.asarray(y))
        else:
            x, y = data
            for start in range(0, len(y), self.batch_size):
                chunk = tf.nest.map_structure(
                    lambda a, s=start: a[s:s + self.batch_size], x)
                outputs.append(self._forward(chunk).numpy())
            labels.append(y)
        return np.concatenate(outputs), np.concatenate(labels)

    def measure(self):
        """One measurement now: dict with ``auc``, ``loss_gap``, ``confidence_gap``, ...

        With ``signal="trajectory"``, during `fit` from the end of the
        reference epoch on, ``auc`` is the trajectory AUC (the first such
        measurement sets the reference) and ``loss_auc`` the loss AUC.
        """
        epoch = self._measuring_epoch
        om, ym = self._outputs(self.members)
        on, yn = self._outputs(self.nonmembers)
        if self._kind is None:  # decided once per fit: the last layer and the values
            self._kind, self.output_kind_evidence = predictions_lib.decide_kind(
                self.model, np.concatenate([predictions_lib.as_outputs(om, "outputs"),
                                            predictions_lib.as_outputs(on, "outputs")]))
        kind = self._kind
        signal = membership_signal(om, ym, on, yn, outputs=kind)
        if self.signal == "trajectory":
            signal = {**signal, "loss_auc": signal["auc"],
                      **self._trajectory(om, ym, on, yn, kind, epoch)}
        return signal

    def _trajectory(self, om, ym, on, yn, kind, epoch):
        """``{"auc", "trajectory_auc"}`` once the reference exists, else ``{}``."""
        _, ym, _, yn, kind = predictions_lib.check_pair(om, ym, on, yn, kind=kind)
        om, on = (predictions_lib.as_outputs(o, "outputs") for o in (om, on))  # (n,) → (n, 1)
        now = (predictions_lib.log_odds(om, ym, kind), predictions_lib.log_odds(on, yn, kind))
        if self._reference is None:
            if epoch is not None and epoch + 1 >= self.reference_epoch:
                self._reference = (*now, np.concatenate([ym, yn]))
            return {}
        ref_m, ref_n, labels = self._reference
        if len(labels) != len(ym) + len(yn) or np.any(labels != np.concatenate([ym, yn])):
            raise ValueError(
                "E36: signal='trajectory' compares each monitor example with itself at the "
                "reference epoch, but the monitor's examples came in a different order: "
                "use arrays, or datasets without shuffling.")
        auc = float(predictions_lib.roc_auc(now[0] - ref_m, now[1] - ref_n))
        return {"auc": auc, "trajectory_auc": auc}

    def _controller(self):
        schedule = getattr(self.model, "schedule", None)
        return schedule if isinstance(schedule, FeedbackSchedule) else None

    def measure_epoch(self, epoch):
        """The measurement of the end of `epoch`, made now if not made yet.

        Idempotent within an epoch, so callbacks that need this epoch's
        measurement (`PrivacyCheckpoint`) work in any callback order.
        """
        record = self._record_of(epoch)
        if record is not None and record.get("epoch_end"):
            return record
        record = self._step(epoch)
        record["epoch_end"] = True
        if self._epoch_logs is not None and self._epoch_logs[0] == epoch:
            self._write_logs(record, self._epoch_logs[1])  # measured after on_epoch_end
        return record

    def _record_of(self, epoch):
        """The latest measurement made during `epoch` of this fit, or `None`."""
        if len(self.records) > self._fit_start and self.records[-1]["epoch"] == epoch:
            return self.records[-1]
        return None

    def _step(self, epoch):
        self._measuring_epoch = epoch  # `measure()` keeps its signature: subclasses override it
        try:
            signal = self.measure()
        finally:
            self._measuring_epoch = None
        record = {"epoch": epoch, "step": self._steps, **signal}
        controller = self._controller()
        measurement = Measurement(auc=signal["auc"], accuracy=signal.get("holdout_accuracy"),
                                  loss=signal.get("holdout_loss"))
        if any(getattr(self.model, name, None) is not None  # AdaMixupModel's LossFloor,
               for name in ("focus", "relax")):                # LossTarget
            self.model.observe(measurement)
            for name in ("loss_floor", "loss_target"):
                if hasattr(self.model, name):
                    record[name] = float(getattr(self.model, name).numpy())
        if controller is not None:
            record["controller_strength"] = controller.update(measurement)
            self._check_saturation(controller, record["controller_strength"], measurement)
        self._check_below_chance(record)
        self.records.append(record)
        return record

    def _warn_after_streak(self, category, condition, message):
        """Warns once per category after `SATURATION_PATIENCE` measurements in a row."""
        self._streaks[category] = self._streaks.get(category, 0) + 1 if condition else 0
        if self._streaks[category] == SATURATION_PATIENCE and category not in self._warned:
            self._warned.add(category)
            warnings.warn(message(), category, stacklevel=_stack.user_level())

    def _check_below_chance(self, record):
        """E48: warns once when the AUC stays clearly below 0.5 (`HoldoutWarning`), unless
        row digests showed the non-members are not training rows (then an AUC below
        0.5 is an easier hold-out, or chance: no evidence of a mix-up)."""
        if self._holdout_by_digest or self._rows_checked:
            self._streaks[HoldoutWarning] = 0
            return
        limit = 0.5 - BELOW_CHANCE_SE * _auc_standard_error(self._min_side)
        self._warn_after_streak(HoldoutWarning, record["auc"] < limit, lambda: (
            f"E48: PrivacyMonitor: the monitored AUC has been below {limit:.3f} (0.5 minus "
            f"{BELOW_CHANCE_SE:g} standard errors) for {SATURATION_PATIENCE} "
            f"measurements (last {record['auc']:.3f}): the model fits the "
            "'non-members' better than the members, so they are probably training "
            "rows (or the two sides are swapped); a PrivacyTarget reads this as no "
            "leakage and turns mixing off. The training rows were not compared with "
            "them: build the monitor with PrivacyMonitor.from_training(x_train, y_train, "
            "nonmembers), or call monitor.check_training_data(x_train) before `fit`, "
            "to decide by exact rows (this warning then stays silent)."))

    def _check_saturation(self, controller, strength, measurement):
        """Warns once when the schedule says it is saturated (`FeedbackSchedule.saturation`)
        for `SATURATION_PATIENCE` measurements in a row."""
        reason = controller.saturation(strength, measurement)
        self._warn_after_streak(SaturationWarning, reason is not None, lambda: (
            f"{type(controller).__name__}, {SATURATION_PATIENCE} measurements in a row: "
            f"{reason}"))

    # -- callback hooks --------------------------------------------------------

    def on_train_begin(self, logs=None):
        self._forward = None  # the model may have changed since the last fit
        self._kind = None
        self._epoch = 0
        self._fit_start = len(self.records)  # epochs count from 0 again in every fit
        self._epoch_logs = None
        self._epochs_ended = 0
        self._reference = None  # a new fit, a new trajectory
        epochs = (self.params or {}).get("epochs")
        if self.signal == "trajectory" and epochs and self.reference_epoch > epochs:
            warnings.warn(
                f"PrivacyMonitor(signal='trajectory', reference_epoch={self.reference_epoch}) "
                f"in a fit of {epochs} epoch(s): the reference epoch is never reached, so "
                "the signal is the loss-threshold AUC throughout. Choose a reference_epoch "
                f"≤ {epochs} (e.g. a fifth of the epochs).", SignalWarning,
                stacklevel=_stack.user_level())
        for name, data in (("members", self.members), ("nonmembers", self.nonmembers)):
            if isinstance(data, tf.data.Dataset):
                self._check_dataset_ranks(data, name)

    def _check_dataset_ranks(self, data, name):
        """A dataset's inputs must have the model's input ranks (batched), checked before epoch 1."""
        model = getattr(self.model, "base_model", self.model)
        expected = getattr(model, "inputs", None)
        if not expected:
            return
        leaves = tf.nest.flatten(data.element_spec[0])
        for leaf, tensor in zip(leaves, expected):
            rank, want = leaf.shape.rank, len(tensor.shape)
            if rank is not None and rank != want:
                hint = " batch it, e.g. `.batch(256)`" if rank == want - 1 else ""
                raise ValueError(
                    f"E30: The monitor's `{name}` dataset yields inputs of rank {rank} but the "
                    f"model expects rank {want} (batch first):{hint or ' check its shape'}."
                )

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self._steps += 1
        if self.every_steps is not None and self._steps % self.every_steps == 0:
            self._step(self._epoch)

    def on_epoch_end(self, epoch, logs=None):
        self._epoch_logs = (epoch, logs)  # a later measure_epoch(epoch) logs there too
        self._epochs_ended += 1
        if self.every_steps is None and (epoch + 1) % self.every_epochs == 0:
            self.measure_epoch(epoch)
        record = self._record_of(epoch)  # none: this epoch is not logged (validation_freq)
        if record is not None:
            self._write_logs(record, logs)

    def on_train_end(self, logs=None):
        self._rows_checked = False  # the next fit checks (or not) its own rows
        self._epoch_logs = None
        if len(self.records) > self._fit_start or not self._epochs_ended:
            return
        every = (f"every_steps={self.every_steps}" if self.every_steps is not None
                 else f"every_epochs={self.every_epochs}")
        warnings.warn(
            f"E49: PrivacyMonitor({every}) measured nothing in this fit of "
            f"{self._epochs_ended} epoch(s): no monitor values were logged "
            "and no schedule or checkpoint it drives moved. Measure more often "
            "(every_epochs=1, the default) or train longer.", SignalWarning,
            stacklevel=_stack.user_level())

    @staticmethod
    def _write_logs(record, logs):
        """The measurement's values into an epoch's `logs` (what `History` keeps)."""
        if logs is not None:
            logs["monitor_epoch"] = record["epoch"] + 1
            logs["monitor_auc"] = record["auc"]
            logs["monitor_loss_gap"] = record["loss_gap"]
            logs["monitor_confidence_gap"] = record["confidence_gap"]
            if "holdout_accuracy" in record:
                logs["monitor_holdout_accuracy"] = record["holdout_accuracy"]
            for key in ("loss_auc", "trajectory_auc"):
                if key in record:
                    logs[f"monitor_{key}"] = record[key]
            for key in ("loss_floor", "loss_target"):
                if key in record:
                    logs[f"monitor_{key}"] = record[key]
            if "controller_strength" in record:
                logs["controller_strength"] = record["controller_strength"]


def plot_privacy_trajectory(history, path=None, target_auc=None):
    """Plots strength and monitored AUC per epoch; returns the figure.

    Args:
        history: a `keras.callbacks.History` (what `fit` returns) or its
            ``history`` dict; needs ``monitor_auc``.
        path: PNG file to write (atomically), or None.
        target_auc: a horizontal line at the target; default: read from the
            model's `PrivacyTarget` when `history` is a `History`.

    Example:

    ```python
    history = model.fit(x, y, epochs=30, callbacks=[monitor])
    keras_adamixup.monitor.plot_privacy_trajectory(history, "trajectory.png")
    ```
    """
    from matplotlib.figure import Figure

    logs = history.history if hasattr(history, "history") else history
    if "monitor_auc" not in logs:
        raise ValueError("The history has no `monitor_auc`: train with a PrivacyMonitor "
                         "callback.")
    if target_auc is None and hasattr(history, "model"):
        target_auc = getattr(getattr(history.model, "schedule", None), "target_auc", None)
    total = max(len(v) for v in logs.values())

    measured = logs.get("monitor_epoch")

    def epochs(key):  # the monitor's values at the epochs it measured (`monitor_epoch`)
        if measured is not None and key != "mixup_strength" and len(measured) == len(logs[key]):
            return np.asarray(measured)
        return np.arange(total - len(logs[key]) + 1, total + 1)  # older histories

    # A Figure of its own (no pyplot): the caller's backend and open figures are untouched.
    fig = Figure(figsize=(7, 6))
    ax_s, ax_a = fig.subplots(2, 1, sharex=True)
    if "mixup_strength" in logs:
        ax_s.plot(epochs("mixup_strength"), logs["mixup_strength"], "o-",
                  label="strength used (last step)")
    if "controller_strength" in logs:
        ax_s.plot(epochs("controller_strength"), logs["controller_strength"], "s--",
                  label="controller output")
    ax_s.set_ylabel("mixing strength")
    if ax_s.get_legend_handles_labels()[0]:  # a plain model logs no strength
        ax_s.legend(fontsize=8)
    ax_a.plot(epochs("monitor_auc"), logs["monitor_auc"], "o-", color="C3",
              label="monitored AUC")
    if target_auc is not None:
        ax_a.axhline(target_auc, color="k", linestyle=":", label=f"target {target_auc:g}")
    ax_a.set_xlabel("epoch")
    ax_a.set_ylabel("loss-threshold AUC")
    ax_a.legend(fontsize=8)
    fig.tight_layout()
    if path is not None:
        from keras_adamixup import _io

        with _io.atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, format="png")
    return fig
