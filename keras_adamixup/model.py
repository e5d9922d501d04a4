"""`AdaMixupModel`: wrap any Keras classifier, train with scheduled mixup."""

import logging
import warnings

import keras
import numpy as np
import tensorflow as tf

from keras_adamixup import _stack
from keras_adamixup import _batch_norm
from keras_adamixup import _checks
from keras_adamixup import _compat
from keras_adamixup import focus as focus_lib
from keras_adamixup import relax as relax_lib
from keras_adamixup import losses as losses_lib
from keras_adamixup import metrics as metrics_lib
from keras_adamixup import mixing
from keras_adamixup import mixing_config as mixing_config_lib
from keras_adamixup import predictions
from keras_adamixup import schedules as schedules_lib
from keras_adamixup import teachers as teachers_lib
from keras_adamixup import _fit_data as training_data
from keras_adamixup import _fit_dataset
from keras_adamixup import _holdout_callbacks
from keras_adamixup.teacher_targets import TeacherTargets, TeachersWarning

_LOG = logging.getLogger("keras_adamixup")

MIX_IN = ("train_step", "none")
_SEED_KEY = "mixup_seed_state"
# TeacherTargets.to_store's arrays, saved under this prefix
_TEACHER_PREFIX = "teacher_targets."
# what files of versions before TeacherTargets held (not read: the teachers train again)
_OLD_TEACHER_KEYS = ("teacher_soft_labels", "teacher_digest", "teacher_row_weights")
# raised at the first batch, and before split teachers train on batches of one
E06_FIRST_BATCH = ("E06: The first training batch has a single example, which cannot be "
                   "mixed (it has no partner): use a `batch_size` of at least 2.")
# the digests of the rows the last fit held out (`predictions.held_out_digests`)
_HELD_OUT_KEY = "fit_held_out_digests"
# the training state saved by name too (`_state_variables`), so that it loads by name
_STATE_PREFIX = "training_state."


def default_schedule(coefficient):
    """The paper's shape: linear decay over the planned training length.

    The paper publishes no numbers: we start at a partner share of 0.4 (Beta
    α = 1.0 for ``coefficient="beta"``) and end at 0 (no mixing).
    """
    start = 0.4 if coefficient == "share" else 1.0
    return schedules_lib.LinearDecay(start=start, end=0.0)


@keras.saving.register_keras_serializable(package="keras_adamixup")
class AdaMixupModel(keras.Model):
    """Trains a Keras classifier on mixed pairs, with a scheduled strength.

    `compile`, `fit`, `evaluate`, `predict` and callbacks behave as for the
    base model; only the training batches are mixed. Evaluation and prediction
    see clean data. Each training step (inside the compiled, possibly
    XLA-compiled step):

    1. reads the schedule at the model's step counter and writes the value to
       the non-trainable variable ``strength`` (logged as ``mixup_strength``);
    2. mixes the batch on the device (`keras_adamixup.mixing.mix`);
    3. runs Keras' own ``compute_loss`` → ``optimizer.scale_loss`` → gradients
       → ``compute_metrics``, so mixed precision and `tf.distribute` work as in
       a plain model.

    Loss and metrics: in ``label_mode="dominant"`` the loss gets the dominant
    sample's label in the labels' own format, so any loss works unchanged. In
    ``"soft"`` mode it gets soft targets; a sparse categorical cross-entropy
    given to `compile` is replaced by `keras_adamixup.losses.MixupCrossentropy`,
    and ``"accuracy"`` by `keras_adamixup.metrics.MixupAccuracy`; both take
    class ids and soft targets. When mixing in the train step, training metrics
    get the dominant label in the labels' own format (so metrics mean the same
    in training and validation); with ``mix_in="none"`` they get the labels
    the pipeline made. Under `tf.distribute`, each replica mixes
    within its own shard of the global batch.

    The schedule position is the model's own step counter ``mixup_step``
    (saved with the model). Schedules with ``decay_steps=None`` decay over the
    length planned by the current `fit` call (``epochs × steps_per_epoch``);
    a second `fit` call continues from where the counter stands (call
    `reset_schedule()` to start over).

    When `fit` gets NumPy arrays it first refuses non-finite inputs, string
    labels and one-hot labels for a sparse loss (E39), and checks every
    `PrivacyMonitor` among the callbacks against the training rows
    (`PrivacyMonitor.check_training_data`, E14).

    Bad sparse labels (outside ``[0, num_classes)``) raise
    `tf.errors.InvalidArgumentError` in the step when it is not XLA-compiled;
    under XLA (Keras' default ``jit_compile="auto"`` on TensorFlow) the step
    counts them in a variable and `fit` raises `ValueError` after the first
    batch and at every epoch end. A first batch of a single example raises
    `ValueError` (use ``batch_size ≥ 2``); a later single-example batch (the
    remainder of an epoch) passes through unmixed.

    Args:
        base_model: the `keras.Model` to train (single input tensor or a
            structure of inputs; one classification output).
        schedule: a `keras_adamixup.schedules.StrengthSchedule` or a number
            (constant strength). Default: `LinearDecay` from 0.4 to 0 (partner
            share) or from α = 1 to 0 (``coefficient="beta"``) over training.
        label_mode: ``"dominant"`` (the paper's: the mixed example gets the
            label of the sample with the larger share) or ``"soft"``
            (λ-weighted labels).
        coefficient: ``"share"`` (strength = partner share in [0, 0.5]) or
            ``"beta"`` (strength = Beta α in [0, 100], standard mixup).
        jitter: relative per-example jitter of the share, in [0, 1]
            (``"share"`` only).
        mix_in: ``"train_step"`` (mix on the device, default) or ``"none"``
            (the data are already mixed, e.g. by `keras_adamixup.adamixup`
            reading this model's ``strength``; set `label_mode` to the
            pipeline's so the loss is adapted).
        num_classes: number of classes. Default: the last dimension of the
            base model's output (``1`` means a single sigmoid output).
        seed: int seed of the mixing stream (`keras.random.SeedGenerator`);
            `None` draws one.
        features: how inputs are mixed: ``"interpolate"`` (blend, for dense
            continuous inputs), ``"swap"`` (each feature from the partner with
            probability ``1 − λ``: stays on the data manifold for binary,
            categorical and one-hot features) or ``"auto"`` (``"swap"`` when
            every value of the arrays given to `fit` is 0 or 1, else
            ``"interpolate"``; datasets need an explicit choice).
        feature_groups: with ``"swap"``, lists of column indices swapped as a
            whole (the columns of one one-hot category); single rank-2 input.
        targets: `None` (train on the labels given to `fit`) or a
            `keras_adamixup.SplitTeachers`: `fit` first trains its teachers on
            the (array) training data (with a progress bar unless
            ``verbose=0``) and then trains this model on their
            out-of-fold soft labels (the loss and ``"accuracy"`` are adapted
            to soft labels as with ``label_mode="soft"``). The teachers see
            only the training part of ``validation_split`` and get the
            sample or class weights; their soft labels are reused by later
            `fit` calls on the same data (`teacher_soft_labels`, saved with
            the model; `keras_adamixup.teachers` says more). Near-duplicate
            rows, and rows sharing an id of ``fit(..., groups=ids)`` (a
            patient, a person, one per training row), are left out of the
            same teachers and, by default, weigh as one row each
            (`SplitTeachers(weigh_groups=)`). With ``fit(...,
            unlabelled=x_public)`` (inputs whose membership need not be
            protected: public data of the same kind, without labels) the
            teachers also label those rows, each with the mean of all
            teachers, and this model trains on them beside the training rows
            (weight 1 each): it learns what a member would otherwise teach it
            from public rows instead (DMP's reference set; measured in
            docs/BENCHMARKS.md).
        focus: `None` (every example mixed with the schedule's strength) or
            a `keras_adamixup.LossFloor`: a per-example strength, full for
            the examples whose clean loss is under a floor, ``rest`` × it
            for the others (one more forward pass per step; logged as
            ``mixup_focus``, the share of examples under the floor).
        relax: `None` or a `keras_adamixup.LossTarget`: once a batch's mean
            loss falls to the target (by default the monitored hold-out loss),
            the step alternates gradient ascent and posterior flattening
            instead of lowering it further (RelaxLoss, with a target that
            follows training; no extra forward pass; logged as
            ``relax_share``, the share of steps at or under the target).
        checkpoint: `None` (default), or `PrivacyCheckpoint` settings (a
            dict of its arguments but the monitor, e.g. ``{"patience": 5,
            "max_accuracy_drop": 0.01}``; `True`: its defaults): every `fit`
            that gets ``validation_data`` (or ``validation_split``) and no
            monitor among its callbacks makes a `PrivacyMonitor` of the
            validation rows and a draw of as many training rows, and this
            checkpoint on it, which restores the epoch it keeps at the end.
            Feedback schedules (`PlateauDecay`) get the same monitor without
            the checkpoint when this is `None`. A `fit` with neither
            validation data nor a monitor among its callbacks raises
            `ValueError` (E12). The callbacks made by the last `fit` are in
            ``holdout_callbacks``.
        mixing: `None`, or a `keras_adamixup.MixingConfig` holding the
            mixing settings (``label_mode``, ``coefficient``, ``jitter``,
            ``features``, ``feature_groups``, ``num_classes``) instead of
            those arguments (both at once is refused). Either way the model
            holds one config, ``mixing_config``, checked once, which the
            `tf.data` op reuses (``adamixup(model)``).
        allow_any_loss: `compile` refuses losses that are not classification
            losses (mean squared error and other regression losses), since a
            one-output regression model would be mixed as a binary
            classifier. `True` accepts any loss (a custom classification
            loss, or numeric targets you want mixed as numbers).
        **kwargs: passed to `keras.Model` (e.g. ``name``).

    Example:

    ```python
    base = keras.Sequential([keras.Input((64,)), keras.layers.Dense(10)])
    model = keras_adamixup.AdaMixupModel(
        base, schedule=keras_adamixup.schedules.LinearDecay(0.4, 0.0))
    model.compile("adam",
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    history = model.fit(x_train, y_train, epochs=10)
    history.history["mixup_strength"]   # the schedule, epoch by epoch
    model.base_model.save("serving.keras")  # the plain model
    ```
    """

    def __init__(
        self,
        base_model,
        schedule=None,
        label_mode="dominant",
        coefficient="share",
        jitter=0.0,
        mix_in="train_step",
        num_classes=None,
        seed=None,
        allow_any_loss=False,
        features="interpolate",
        feature_groups=None,
        targets=None,
        focus=None,
        relax=None,
        checkpoint=None,
        mixing=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(base_model, keras.Model):
            raise TypeError(
                "E10: `base_model` must be a keras.Model, got "
                f"{type(base_model).__name__}."
            )
        self.mixing_config = _mixing_settings(
            mixing, label_mode=label_mode, coefficient=coefficient, jitter=jitter,
            features=features, feature_groups=feature_groups, num_classes=num_classes)
        self.mix_in = _checks.choice("mix_in", mix_in, MIX_IN, code="E10")
        self.seed = _checks.seed(seed)
        self.targets = _component(targets, teachers_lib.SplitTeachers, "targets")
        self.focus = _component(focus, focus_lib.LossFloor, "focus")
        if self.focus is not None and mix_in == "none":
            raise ValueError("E35: `focus` sets a strength per example in the train step: "
                             "it needs mix_in='train_step'.")
        self.relax = _component(relax, relax_lib.LossTarget, "relax")
        self._check_relax_targets()
        self.allow_any_loss = _checks.boolean("allow_any_loss", allow_any_loss)
        self.checkpoint = _checkpoint_settings(checkpoint)
        self._teacher_targets, self._targets_assigned = None, False  # given by the user: E71
        self._epochs_on_targets, self._outgrown_warned = 0, False  # E57
        self._targets_made_for = None
        # the PrivacyMonitor (and PrivacyCheckpoint) the last `fit` made from its
        # validation data: read them after `fit` (best_epoch, records)
        self.holdout_callbacks = []
        self.base_model = base_model
        _warn_if_it_mixes(base_model)
        self.schedule = self._checked_schedule(schedule)
        self.seed_generator = keras.random.SeedGenerator(seed, name="mixup_seed")
        self._make_state()
        if base_model.built:
            self.built = True

    def _checked_schedule(self, schedule):
        """The schedule (default: `default_schedule`), its bounds checked."""
        coefficient = self.mixing_config.coefficient
        schedule = (default_schedule(coefficient) if schedule is None
                    else schedules_lib.get(schedule))
        bounds = schedule.value_bounds()
        if bounds is not None:
            for value in bounds:
                mixing.validate_strength(value, coefficient, name="schedule value")
        return schedule

    def _make_state(self):
        """The non-trainable variables of training (saved with the model)."""
        # Feedback schedules keep state (e.g. PrivacyTarget's controller);
        # tracked here, it is saved and restored with the model's variables.
        feedback = isinstance(self.schedule, schedules_lib.FeedbackSchedule)
        self.schedule_state = list(self.schedule.create_state()) if feedback else []
        first = float(self.schedule(tf.constant(0, tf.int64), tf.constant(-1, tf.int64)))
        state = dict(trainable=False, aggregation="only_first_replica")
        self.strength = keras.Variable(first, dtype="float32", name="mixup_strength",
                                       **state)
        for name, dtype, value in (("mixup_step", "int64", 0), ("planned_steps", "int64", -1),
                                   ("bad_label_batches", "int32", 0),
                                   ("unmixed_batches", "int32", 0),
                                   ("bad_strength_steps", "int32", 0)):
            setattr(self, name, keras.Variable(value, dtype=dtype, name=name, **state))
        if self.focus is not None:  # only then: saved models without focus keep theirs
            self.loss_floor = keras.Variable(
                self.focus.initial_floor(), dtype="float32", name="loss_floor", **state)
            # examples under the floor / seen this epoch (their ratio: mixup_focus)
            self.focus_mixed = keras.Variable(0.0, dtype="float32", name="focus_mixed",
                                              **state)
            self.focus_seen = keras.Variable(0.0, dtype="float32", name="focus_seen", **state)
        if self.relax is not None:  # likewise only then
            self.loss_target = keras.Variable(
                self.relax.initial_target(), dtype="float32", name="loss_target", **state)
            # steps at or under the target: ever (ascent on the even ones), this epoch
            self.relax_steps = keras.Variable(0, dtype="int64", name="relax_steps", **state)
            self.relax_under = keras.Variable(0.0, dtype="float32", name="relax_under",
                                              **state)
            self.relax_seen = keras.Variable(0.0, dtype="float32", name="relax_seen", **state)
            for name, (initial, dtype) in self.relax.init_state().items():  # "plateau"'s
                setattr(self, name, keras.Variable(initial, dtype=dtype, name=name, **state))

    # the mixing settings, read from `mixing_config`
    label_mode = property(lambda self: self.mixing_config.label_mode)
    coefficient = property(lambda self: self.mixing_config.coefficient)
    jitter = property(lambda self: self.mixing_config.jitter)
    features = property(lambda self: self.mixing_config.features)
    num_classes = property(lambda self: self.mixing_config.num_classes)

    @property
    def feature_groups(self):
        groups = self.mixing_config.feature_groups
        return None if groups is None else [list(g) for g in groups]

    def call(self, inputs, training=None):
        return self.base_model(inputs, training=training)

    def _check_relax_targets(self):
        """E59: a target that follows the hold-out loss, with targets it cannot follow."""
        if self.relax is not None and self.relax.target == relax_lib.PLATEAU \
                and self.targets is not None:
            raise ValueError(
                "E59: LossTarget('plateau') was measured under mixing's soft labels only; "
                "with SplitTeachers give a fixed target, LossTarget(value), in nats above "
                "the teachers' soft labels' entropy (after a first fit, "
                "model.teacher_targets.soft_labels hold them), or drop the teachers and "
                "mix with label_mode='soft' under LossTarget('plateau').")
        if (self.relax is not None and self.relax.target == relax_lib.HOLDOUT
                and (self.targets is not None or self.mixing_config.label_mode == "soft")):
            raise ValueError(
                "E59: LossTarget('holdout') compares the training loss with the hold-out "
                "cross-entropy on given labels; with soft targets (SplitTeachers, "
                "label_mode='soft') the training loss is taken above the targets' entropy "
                "and the two are not comparable. Give a fixed target, LossTarget(value), "
                "in nats above that entropy (or LossTarget('plateau') under mixing).")

    def build(self, input_shape):
        if not self.base_model.built:
            self.base_model.build(input_shape)
        self.built = True

    def compile(self, optimizer="rmsprop", loss=None, metrics=None,
                weighted_metrics=None, **kwargs):
        if not self.allow_any_loss:
            losses_lib.check_classification_loss(loss)
        elif self.relax is not None:
            try:
                losses_lib.check_classification_loss(loss)
            except ValueError:
                warnings.warn(
                    "LossTarget compares the compiled loss with its target (a hold-out "
                    "cross-entropy with 'holdout') and flattens posteriors: with a loss "
                    "that is not a classification loss neither means what it does for a "
                    "cross-entropy.", stacklevel=_stack.user_level())
        if self.label_mode == "soft" or self.targets is not None or self.relax is not None:
            loss = losses_lib.soft_compatible(loss)
            metrics = metrics_lib.soft_compatible(metrics)
            weighted_metrics = metrics_lib.soft_compatible(weighted_metrics)
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics,
                        weighted_metrics=weighted_metrics, **kwargs)
        self._focus_loss = None  # LossFloor's per-example loss: rebuilt from this loss

    def compile_from_config(self, config):
        # Keras skips compile() on load when compile() is overridden; ours
        # only adapts the loss, so restore the compiled state as Keras does.
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto",
            callbacks=None, *, groups=None, unlabelled=None, **kwargs):
        """Trains the model as `keras.Model.fit` does, with the mixing (and teachers).

        Keras' own arguments (``validation_data``, ``validation_split``,
        ``sample_weight``, ``class_weight``, ``shuffle``, ...) pass through
        with their meaning. `x` may be arrays or a `tf.data.Dataset` of
        batches (the teachers then read it by position: see
        `keras_adamixup._fit_dataset` for what such a dataset must satisfy).
        When the model needs a hold-out monitor (a feedback schedule such as
        `PlateauDecay`, ``checkpoint=`` settings, a `LossFloor("holdout")`)
        and `callbacks` hold none, a `PrivacyMonitor` (and the
        `PrivacyCheckpoint`) is made from ``validation_data`` or
        ``validation_split``, for this `fit`; without either, `fit` raises
        `ValueError` (E12).

        Args:
            x: the training inputs (arrays, or a dataset of ``(x, y)`` or
                ``(x, y, sample_weight)`` batches).
            y: the labels (`None` with a dataset).
            batch_size: as in Keras (arrays only).
            epochs: as in Keras.
            verbose: as in Keras; the teachers show their progress unless 0.
            callbacks: as in Keras.
            groups: `None`, or one id per training row (a patient, a
                person): rows sharing an id are left out of the same
                teachers (`SplitTeachers` only).
            unlabelled: `None`, or public inputs of the same kind without
                labels (membership not protected): the teachers label them
                and the model trains on them too (`SplitTeachers` only;
                arrays only).
            **kwargs: Keras' other `fit` arguments.

        Returns:
            the Keras `History`.

        Example:

        ```python
        model = keras_adamixup.recommended.model(base)
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=40)
        ```
        """
        _checks.fit_arguments(epochs, batch_size, verbose, kwargs)
        self._check_dataset(x)
        self._check_teacher_arguments(x, groups, unlabelled, kwargs)
        self._check_arrays(x, y, kwargs)  # before the monitor draws members from them
        callbacks = self._fit_callbacks(x, y, callbacks, kwargs)
        self._check_inputs_of_fit(x, y, kwargs, callbacks)
        with _fit_dataset.order_checked():  # a dataset reshuffled at each pass: ValueError
            if self.targets is not None:
                x, y, kwargs = self._student_inputs(x, y, epochs, batch_size, verbose, kwargs,
                                                    groups, unlabelled)
                self._warn_if_target_unlearns(self.teacher_targets)
            history = super().fit(x, y, batch_size=batch_size, epochs=epochs,
                                  verbose=verbose, callbacks=callbacks, **kwargs)
        self._epochs_on_targets += len(history.epoch)
        self._warn_if_target_never_set(len(history.epoch))
        return history

    def _warn_if_target_never_set(self, epochs):
        """E73: a `fit` under ``LossTarget("plateau")`` that ended before the hold-out
        loss stopped improving trained without a target (a warning)."""
        if self.relax is None or self.relax.target != relax_lib.PLATEAU \
                or float(self.loss_target.numpy()) > 0:
            return
        lowest = float(self.relax_lowest.numpy())
        seen = (f"its lowest, {lowest:.3f}, came within the last {self.relax.patience} "
                f"measurements" if np.isfinite(lowest) else "it was never measured")
        warnings.warn(
            f"E73: LossTarget('plateau') set no target in this fit ({epochs} epochs): the "
            f"target is set once the monitored hold-out loss has made no new low for "
            f"{self.relax.patience} measurements, and {seen}. Every step was an ordinary "
            "(mixed) step, as without `relax`: train more epochs, or fit again (the "
            "plateau's state carries over to the next fit). recommended.model's image "
            "setting holds the loss with this target.",
            stacklevel=_stack.user_level())

    def _check_dataset(self, x):
        """A dataset given to `fit`, before anything reads a batch of it: indexable when
        teachers read it by position (`_fit_dataset.check`), batched in any case."""
        if not _fit_dataset.is_dataset(x):
            return
        if self.targets is not None:
            _fit_dataset.check(x)
        else:
            _fit_dataset.check_batched(x)

    def _check_inputs_of_fit(self, x, y, kwargs, callbacks):
        """`fit`'s checks of its training inputs, once the callbacks are made."""
        self._resolve_features(x)
        if training_data.are_arrays(x, y):
            self._check_training_arrays(x, y, kwargs, callbacks)
        elif self.targets is not None and not _fit_dataset.is_dataset(x):
            training_data.require_arrays_for_teachers()
        self._check_output_kind(x, y)
        self._warn_if_target_unlearns()
        self._warn_if_weights_averaged()

    def _student_inputs(self, x, y, epochs, batch_size, verbose, kwargs, groups,
                        unlabelled):
        """`(x, y, kwargs)` the model trains on: the training data with the
        teachers' soft labels (the teachers trained first, or reused)."""
        if not self.compiled:
            raise ValueError("Call `compile` before `fit`: SplitTeachers copies the "
                             "compiled loss and optimizer for its teachers.")
        first = (len(keras.tree.flatten(_fit_dataset.first_inputs(x))[0])
                 if _fit_dataset.is_dataset(x) else batch_size)
        if first == 1:  # before the teachers train, not at the model's first batch
            raise ValueError(E06_FIRST_BATCH)
        if not _fit_dataset.is_dataset(x):
            return self._student_data(x, y, epochs, batch_size, verbose, kwargs, groups,
                                      unlabelled)
        dataset, kwargs = self._student_dataset(x, epochs, verbose, kwargs, groups)
        kwargs["shuffle"] = False  # the joined examples are shuffled already
        return dataset, None, kwargs

    def _check_teacher_arguments(self, x, groups, unlabelled, kwargs):
        """`groups` and `unlabelled` belong to SplitTeachers; refused without them.
        E62: ``steps_per_epoch`` counts the model's steps, not the teachers'."""
        if self.targets is not None and kwargs.get("steps_per_epoch") is not None:
            warnings.warn(
                f"E62: steps_per_epoch={kwargs['steps_per_epoch']} counts this model's steps "
                "only: each split teacher trains on full passes of its rows (up to the "
                "fit's epochs), so the teachers' cost and `budget` do not follow it. To train "
                "on fewer examples per epoch, give fewer (e.g. `dataset.take(n)`).",
                stacklevel=_stack.user_level())
        if groups is not None and self.targets is None:
            raise ValueError("`groups` tells SplitTeachers which rows to leave out together; "
                             "this model has no `targets=SplitTeachers(...)`.")
        if unlabelled is not None and self.targets is None:
            raise ValueError("`unlabelled` rows get their labels from SplitTeachers; this "
                             "model has no `targets=SplitTeachers(...)`.")
        if unlabelled is not None and _fit_dataset.is_dataset(x):
            raise ValueError("`unlabelled` rows are taken as arrays, beside training arrays; "
                             "with a training dataset, give `x` and `unlabelled` as arrays "
                             "(or train without public rows).")
        if (unlabelled is None and self.targets is not None
                and self.targets.student_rows == "unlabelled"):
            raise ValueError("SplitTeachers(student_rows='unlabelled') trains the model on "
                             "the public rows alone: pass them as `fit(..., unlabelled="
                             "x_public)`.")

    def _fit_callbacks(self, x, y, callbacks, kwargs):
        """The callbacks of this `fit`: monitors first (made from the validation data
        when the model needs one and none is given), the training plan last."""
        callbacks = list(callbacks or [])
        # Monitors first: at each epoch end the controller is updated before
        # other callbacks (BackupAndRestore, ModelCheckpoint) save the model.
        drives = [isinstance(c, schedules_lib.ScheduleDriver) for c in callbacks]
        callbacks = [c for c, d in zip(callbacks, drives) if d] + [
            c for c, d in zip(callbacks, drives) if not d]
        self.holdout_callbacks = []
        if not any(drives) and _holdout_callbacks.needs(self) is not None:
            seed = 0 if self.seed is None else self.seed
            self.holdout_callbacks = _holdout_callbacks.make(self, x, y, kwargs, seed)
        self._keep_held_out(next((c.nonmembers for c in self.holdout_callbacks if isinstance(
            getattr(c, "nonmembers", None), tuple)), None))
        # Keras' SwapEMAWeights first of all: the refresh, the monitors and the
        # checkpoint then read (and keep) the averaged weights it swaps in
        swaps = [c for c in callbacks if isinstance(c, keras.callbacks.SwapEMAWeights)]
        callbacks = [c for c in callbacks if not isinstance(c, keras.callbacks.SwapEMAWeights)]
        first = []
        if _batch_norm.layers_of(self.base_model):
            # the model refreshes its statistics itself: a given refresh would repeat it;
            # at each epoch's end only when a callback reads or saves the model
            callbacks = [c for c in callbacks if not isinstance(c, _batch_norm.Refresh)]
            first = [_batch_norm.Refresh(
                self._refresh_inputs(x, y, kwargs), self.base_model,
                every_epoch=bool(self.holdout_callbacks or callbacks),
                swapped_back=any(not swap.swap_on_epoch for swap in swaps))]
        return swaps + first + self.holdout_callbacks + callbacks + [_TrainingPlan(self)]

    def _keep_held_out(self, held):
        """Keeps the rows this fit holds out (`held`: `(x, y)`, or their digests, or
        `None`) on the model and its base model, for the audit's E69 check
        (`predictions.HELD_OUT_ATTRIBUTE`; untracked by Keras)."""
        for holder in (self, self.base_model):
            object.__setattr__(holder, predictions.HELD_OUT_ATTRIBUTE, held)

    def _warn_if_target_unlearns(self, teacher_targets=None, target=None):
        """Warns when a fixed `relax` target (or `target`, a ``"plateau"`` target once
        set) is at or above what a uniform prediction scores, ln(classes) less the
        soft labels' mean entropy (the mixtures', or the teachers' once they have
        trained): every step would then ascend or flatten. With split teachers it
        waits for their labels (`teacher_targets`)."""
        if target is None and self.relax is not None and not self.relax.needs_monitor:
            target = self.relax.target
        if target is None or (self.targets is not None and teacher_targets is None):
            return
        width = self.num_classes or _output_width(self.base_model)
        if width is None:
            return
        classes = max(int(width), 2)
        uniform, entropy = float(np.log(classes)), self._mixtures_entropy(classes)
        source = "the mixed labels at the schedule's largest strength"
        if teacher_targets is not None:
            soft = np.clip(np.asarray(teacher_targets.soft_labels, dtype="float64"), 1e-12, 1)
            taught = float(np.mean(-(soft * np.log(soft)).sum(axis=-1)))
            if taught > entropy:
                entropy, source = taught, "the teachers' soft labels"
        if target >= uniform - entropy:
            where = (f"ln({classes}) = {uniform:.3f}, the loss of a uniform prediction" if
                     not entropy else
                     f"{uniform - entropy:.3f}, what a uniform prediction scores above the "
                     f"soft labels' entropy (ln({classes}) = {uniform:.3f} less the mean "
                     f"entropy of {source}, {entropy:.3f})")
            named = (f"LossTarget({target:g}) is" if not self.relax.needs_monitor else
                     f"The target LossTarget('plateau') set, {target:.3f} ("
                     f"{self.relax.factor:g} x the lowest hold-out loss), is")
            warnings.warn(
                f"{named} at or above {where}: every step will "
                "ascend or flatten and the model will unlearn. RelaxLoss' targets lie well "
                "under it (a fixed target near the hold-out loss you expect, "
                "LossTarget('holdout'), or a lower plateau factor).",
                stacklevel=_stack.user_level())

    def _warn_if_weights_averaged(self):
        """E65: a loss target with an optimizer that averages the weights (a warning)."""
        # before `compile` there is no optimizer yet: Keras' own error says to compile
        if self.relax is not None and _batch_norm.averages_weights(
                getattr(self, "optimizer", None)):
            warnings.warn(
                "E65: the optimizer keeps a moving average of the weights (use_ema=True), "
                "which fit swaps in when it ends: the relaxed steps hold the training "
                "loss at the target by going up and down around it, and their average "
                "fits the members more closely than any of them. On a CIFAR-10 CNN "
                "static mixup under LossTarget(1.0) lost most of its protection with it "
                "(best attack AUC 0.697 and 0.677 on two seeds, against 0.662 and 0.640 "
                "without the average and 0.704 and 0.687 with no defence). Compile without "
                "use_ema, or audit the averaged model.",
                stacklevel=_stack.user_level())

    def _mixtures_entropy(self, classes):
        """The mean entropy of the soft mixed labels (``label_mode="soft"``) at the
        schedule's largest strength, which a relaxed step's loss is taken above: pairs
        of two classes (1 − 1/classes of them) mixed in the sampled shares; 0 otherwise."""
        bounds = self.schedule.value_bounds()
        if self.mixing_config.label_mode != "soft" or not bounds or not bounds[1]:
            return 0.0
        config = self.mixing_config
        kept = mixing.sample_mix_coefficients(4096, bounds[1], config.coefficient,
                                              config.jitter, seed=0).numpy()
        kept = np.clip(kept, 1e-7, 1.0 - 1e-7)
        entropy = -(kept * np.log(kept) + (1.0 - kept) * np.log(1.0 - kept))
        return float(np.mean(entropy) * (1.0 - 1.0 / classes))

    def _refresh_inputs(self, x, y, kwargs):
        """Some training inputs (`_batch_norm.ROWS`) that re-estimate the base model's
        batch-normalization statistics before the monitors measure it."""
        if _fit_dataset.is_dataset(x):
            return next(iter(x.unbatch().map(lambda *element: element[0])
                             .take(_batch_norm.ROWS).batch(_batch_norm.ROWS)))
        if not training_data.are_arrays(x, y):
            return None
        part = training_data.training_part(x, y, kwargs)[0]
        rows = np.ones(len(keras.tree.flatten(part)[0]), dtype=bool)
        return training_data.rows(part, _batch_norm.draw(rows, self.seed or 0))

    def _check_output_kind(self, x, y):
        """E56: warns (once) when the loss reads logits and the model emits
        probabilities, or the other way round (the layers and a few outputs decide)."""
        expected = losses_lib.reads_logits(getattr(self, "loss", None))
        if expected is None or getattr(self, "_output_kind_checked", False):
            return
        self._output_kind_checked = True
        if _fit_dataset.is_dataset(x):  # its first batch (any dataset `fit` takes)
            first = next(iter(x.take(1).as_numpy_iterator()), None)
            if not isinstance(first, tuple):
                return
            x = first[0]
        elif not training_data.are_arrays(x, y):
            return
        self._check_inputs(x)  # E07 before the model reads them
        outputs = keras.ops.convert_to_numpy(
            self.base_model(training_data.rows(x, slice(0, 64)), training=False))
        kind, _ = predictions.decide_kind(self.base_model, outputs)
        if (kind == "logits") == expected:
            return
        binary = outputs.ndim == 2 and outputs.shape[-1] == 1
        fix = (("keras.losses.BinaryCrossentropy(from_logits=True)" if binary else
                "keras.losses.SparseCategoricalCrossentropy(from_logits=True) (or the "
                "categorical one for one-hot labels)") if kind == "logits" else
               "the loss with from_logits=False (Keras' default)")
        warnings.warn(
            f"E56: the model emits {kind} but the loss reads "
            f"{'logits' if expected else 'probabilities'} (from_logits={expected}): it "
            f"would train on wrong numbers. Compile with {fix}.",
            predictions.OutputKindWarning, stacklevel=_stack.user_level())

    def _check_arrays(self, x, y, kwargs):
        """Refuses bad training arrays (E39 and the other `_fit_data.check_arrays`
        errors), before anything is made from them. Labels mixed into soft ones
        still reach the compiled loss as given when the fit validates."""
        if training_data.are_arrays(x, y):
            dominant = self.label_mode == "dominant" and self.targets is None
            validates = bool(kwargs.get("validation_data") is not None
                             or kwargs.get("validation_split"))
            training_data.check_arrays(
                x, y, loss=getattr(self, "loss", None), sparse_loss_matters=dominant or validates,
                labels_as_given=dominant or validates
                or isinstance(self.targets, teachers_lib.SplitTeachers))

    def _check_training_arrays(self, x, y, kwargs, callbacks):
        """Checks the class ids, and each monitor against the rows trained on."""
        part = training_data.training_part(x, y, kwargs)
        width = _output_width(self.base_model)
        if (width is not None and len(np.shape(y)) <= 2 and self.targets is None
                and not self.allow_any_loss):
            # the in-graph check (E03) would end in TensorFlow's long graph error
            _checks.class_ids(y, width, "E03", "AdaMixupModel.fit")
        for callback in callbacks:  # PrivacyMonitor: its non-members are not these rows
            check = getattr(callback, "check_training_data", None)
            if check is not None:
                check(part[0])

    def _student_dataset(self, dataset, epochs, verbose, kwargs, groups):
        """`(dataset, kwargs)` for the student: each example with its soft label
        (joined by position) and weight, shuffled and batched as the input."""
        kwargs = dict(kwargs)
        if kwargs.get("validation_split"):
            raise ValueError("`validation_split` needs arrays (as in Keras); with a dataset "
                             "pass `validation_data=`.")
        class_weight = kwargs.pop("class_weight", None)
        scanned = _fit_dataset.scan(dataset)
        weights = training_data.example_weights(scanned["y"], scanned["weights"],
                                                class_weight)
        training = dict(epochs=epochs, batch_size=scanned["batch_size"],
                        sample_weight=weights, groups=groups)
        kept = self.teacher_targets
        targets = self._reused_or_trained(
            epochs, lambda e: self.targets.dataset_digest(scanned, **dict(training, epochs=e)),
            lambda: self.targets.fit(self, dataset, None, progress=self.targets.progress
                                     or verbose not in (0, "0"), **training))
        if targets is kept and not scanned["fixed_inputs"]:
            warnings.warn(
                "E70: the teachers' soft labels are reused on trust: this dataset's inputs "
                "change from pass to pass (random augmentation in the pipeline), so only its "
                "labels, their order and number could be checked against the teachers' "
                "training. If its inputs changed since (other images, other preprocessing), "
                "set model.teacher_targets = None before fit to train the teachers again.",
                TeachersWarning, stacklevel=_stack.user_level())
        if targets.row_weights is not None:
            weights = (targets.row_weights if weights is None
                       else weights * targets.row_weights)
        seed = 0 if self.seed is None else self.seed
        soft = self.targets.student_targets(targets.soft_labels, scanned["y"])
        return _fit_dataset.with_targets(dataset, soft, weights, scanned["batch_size"], seed,
                                         labels=scanned["y"]), kwargs

    def _student_data(self, x, y, epochs, batch_size, verbose, kwargs, groups=None,
                         unlabelled=None):
        """`(x, y, kwargs)` for the student: the training part with the teachers'
        soft labels, validation split off first (true labels), class weights as
        sample weights of the true classes, then any `unlabelled` rows with theirs
        (weight 1); with ``student_rows="unlabelled"`` the unlabelled rows alone.
        The soft labels are kept while the training data stay the same
        (`teacher_soft_labels`)."""
        kwargs = dict(kwargs)
        if groups is not None:
            groups = np.asarray(groups).reshape(-1)
            if len(groups) != len(y):
                raise ValueError(f"`groups` has {len(groups)} ids for {len(y)} training rows.")
        (x, y, weights), validation = training_data.split_for_teachers(x, y, kwargs)
        if groups is not None:
            groups = groups[:len(y)]  # validation_split takes the last rows
        if validation is not None:
            kwargs["validation_data"] = validation
        unlabelled = training_data.unlabelled_like(unlabelled, x)  # checked before the digest
        training = dict(epochs=epochs, batch_size=batch_size, sample_weight=weights,
                        groups=groups, unlabelled=unlabelled)
        targets = self._reused_or_trained(
            epochs, lambda e: self.targets.digest(x, y, **dict(training, epochs=e)),
            lambda: self.targets.fit(self, x, y, progress=self.targets.progress
                                     or verbose not in (0, "0"), **training))
        soft = self.targets.student_targets(targets.soft_labels, y)
        row_weights = targets.row_weights
        if self.targets.student_rows == "unlabelled":  # the public rows alone (DMP)
            return unlabelled, soft[len(y):], kwargs
        if row_weights is not None:  # SplitTeachers(weigh_groups=True): a group is one row
            weights = row_weights if weights is None else weights * row_weights
        if unlabelled is not None:  # the public rows after the training rows, weight 1
            extra = len(soft) - len(y)
            x = keras.tree.map_structure(lambda a, b: np.concatenate([a, b]), x, unlabelled)
            if weights is not None:
                weights = np.concatenate([weights, np.ones(extra, dtype="float32")])
        if weights is not None:
            kwargs["sample_weight"] = np.asarray(weights, dtype="float32")
        return x, soft, kwargs

    def _reused_or_trained(self, epochs, digest_of, train):
        """The kept `teacher_targets` when their digest matches this fit's
        (``digest_of(epochs)``), or that of a fit of more epochs on the same data and
        settings (a continued fit of fewer epochs keeps teachers trained for longer),
        else `train()`'s (for a fit of `epochs`)."""
        targets = self.teacher_targets
        if targets is not None and targets.digest == digest_of(epochs):
            self._warn_if_teachers_outgrown(targets)
            return targets
        longer = sorted({e for e in (self._targets_made_for, getattr(
            targets, "planned_epochs", None)) if e is not None and e > epochs})
        if (targets is not None and self.targets.epochs is None
                and any(targets.digest == digest_of(e) for e in longer)):
            _LOG.info("AdaMixupModel: this fit's %d epochs are fewer than those the teachers "
                      "trained for; their soft labels are kept", epochs)
            return targets
        if targets is not None and self._targets_assigned:
            warnings.warn(
                "E71: the TeacherTargets assigned to model.teacher_targets were made for "
                "other training data or teacher settings than this fit's (their digest "
                "differs), so the teachers train again. They are reused only when the "
                "model's targets=SplitTeachers(...) has the settings that made them (the "
                "same seed included) and fit gets the same rows, labels, sample weights, "
                "groups, epochs and batch size.", TeachersWarning,
                stacklevel=_stack.user_level())
        elif targets is not None:
            _LOG.info("AdaMixupModel: the teacher targets belong to other training data "
                      "or settings; training the teachers again")
        targets = train()
        self.teacher_targets = targets
        self._targets_assigned = False  # trained here, not given
        self._targets_made_for = epochs
        return targets

    def _warn_if_teachers_outgrown(self, targets):
        """E57: warns (once) when the model has trained as many epochs on these
        targets as the teachers trained, and goes on (``fit(epochs=1)`` in a loop)."""
        planned = self._targets_made_for
        if (self.targets.epochs is not None or planned is None or self._outgrown_warned
                or self._epochs_on_targets < planned):
            return
        self._outgrown_warned = True
        warnings.warn(
            f"E57: the teachers trained for a fit of {planned} epoch(s), the first, and their "
            f"soft labels are reused while the model trains on ({self._epochs_on_targets} "
            f"epoch{'s' if self._epochs_on_targets != 1 else ''} so far): teachers that short "
            "make weak soft labels. Give "
            "SplitTeachers(epochs=N) the number of epochs you plan in all, or train in one "
            "fit(epochs=N).", TeachersWarning, stacklevel=_stack.user_level())

    @property
    def teacher_targets(self):
        """The `TeacherTargets` the last `fit` trained on (`None` before any).

        A later `fit` on the same training data and settings reuses them
        instead of training the teachers again (their ``digest`` matches);
        saved with the model. Assign targets (e.g. `TeacherTargets.load`) to
        reuse them: `fit` reuses them when the model's
        ``targets=SplitTeachers(...)`` has the settings that made them (seed
        included) and it gets the same rows, labels, weights, groups, epochs
        and batch size; otherwise the teachers train again, with a warning
        (E71). `None` makes the next `fit` train the teachers again.
        """
        return self._teacher_targets

    @teacher_targets.setter
    def teacher_targets(self, targets):
        if targets is not None and not isinstance(targets, TeacherTargets):
            raise TypeError("`teacher_targets` must be a keras_adamixup.TeacherTargets or "
                            f"None, got {type(targets).__name__}.")
        if targets is not None and self.targets is None:
            raise ValueError("`teacher_targets` are the soft labels of SplitTeachers; this "
                             "model has no `targets=SplitTeachers(...)`.")
        self._teacher_targets = targets
        self._targets_assigned = targets is not None
        self._epochs_on_targets, self._outgrown_warned = 0, False
        self._targets_made_for = None  # the epochs of the fit they were made for (E57)

    @property
    def teacher_soft_labels(self):
        """``teacher_targets.soft_labels`` (`None` before the teachers trained)."""
        targets = self._teacher_targets
        return None if targets is None else targets.soft_labels

    def _resolve_features(self, x):
        """``features="auto"``: decided once, from the training arrays (or first batch)."""
        if self.features != "auto" or getattr(self, "_features_used", None):
            return
        if _fit_dataset.is_dataset(x):
            x = _fit_dataset.first_inputs(x)
        if x is None or not all(hasattr(leaf, "shape") for leaf in tf.nest.flatten(x)):
            raise ValueError(
                "features='auto' is decided from the arrays or the first batch of the "
                "dataset given to `fit`; with a generator, choose features='interpolate' "
                "or 'swap'.")
        self._features_used = mixing.detect_features(x)
        logging.getLogger("keras_adamixup").info(
            "AdaMixupModel: features='auto' chose %r (%s)", self._features_used,
            "every input value is 0 or 1" if self._features_used == "swap"
            else "the inputs hold values other than 0 and 1")

    def feature_mode(self):
        """The feature rule mixing uses now: ``features``, or what ``"auto"`` chose
        (``"interpolate"`` before the first `fit`)."""
        if self.features != "auto":
            return self.features
        return getattr(self, "_features_used", None) or "interpolate"

    def reset_schedule(self):
        """Moves the schedule back to step 0 (the next `fit` starts over).

        A feedback schedule's state (`PrivacyTarget`) goes back to its start too,
        and so does a `LossTarget` set from the hold-out loss (``"holdout"``,
        ``"plateau"``: no target until the next fit measures again; do this
        before a `fit` on other validation data).
        """
        self.mixup_step.assign(0)
        if isinstance(self.schedule, schedules_lib.FeedbackSchedule):
            self.schedule.reset_state()
        if self.relax is not None and self.relax.needs_monitor:
            self.loss_target.assign(self.relax.initial_target())
            for name, (initial, _) in self.relax.init_state().items():
                getattr(self, name).assign(initial)

    def observe(self, measurement):
        """Called by a `PrivacyMonitor` after each measurement: moves the focus floor
        and the relax target.

        Args:
            measurement: a `keras_adamixup.schedules.Measurement`.
        """
        if self.focus is not None:
            floor = self.focus.floor_after(measurement)
            if floor is not None:
                self.loss_floor.assign(floor)
        if self.relax is not None:
            target, state = self.relax.update(
                {name: getattr(self, name).numpy().item() for name in self.relax.init_state()},
                measurement)
            for name, value in state.items():
                getattr(self, name).assign(value)
            if target is not None:
                unset = float(self.loss_target.numpy()) == 0.0
                self.loss_target.assign(target)
                if unset and target > 0 and self.relax.target == relax_lib.PLATEAU:
                    self._warn_if_target_unlearns(target=target)

    def current_strength(self):
        """The strength used by the last training step, as a float."""
        return float(self.strength.numpy())

    # -- the training step -------------------------------------------------

    def _output_classes(self, x):
        if self.num_classes is not None:
            return self.num_classes
        try:
            shape = self.base_model.output_shape
        except (AttributeError, ValueError, RuntimeError):
            spec = self.base_model.compute_output_spec(x)
            shape = getattr(spec, "shape", None)
        if isinstance(shape, (list, dict)) or shape is None:
            raise ValueError(
                "AdaMixupModel needs a model with one classification output; "
                f"got output shape {shape!r}. Pass `num_classes` for a "
                "single-output model whose shape cannot be read."
            )
        classes = shape[-1]
        if not isinstance(classes, int):
            raise ValueError(
                f"Cannot read the number of classes from output shape {shape}: "
                "pass `num_classes`."
            )
        return classes

    def _check_inputs(self, x):
        expected = getattr(self.base_model, "inputs", None)
        if not expected:
            return
        leaves = tf.nest.flatten(x)
        if len(leaves) != len(expected):
            names = [getattr(t, "name", "?") for t in expected]
            raise ValueError(
                f"E07: `x` has {len(leaves)} input tensor(s) but the base model "
                f"expects {len(expected)} ({names})."
            )
        if isinstance(x, dict):
            names = {getattr(t, "name", None) for t in expected}
            missing = sorted(n for n in names if n and n not in x)
            if missing and len(expected) > 1:
                raise ValueError(
                    f"E07: `x` is a dict with keys {sorted(x)} but the base model's "
                    f"inputs are named {sorted(n for n in names if n)}; missing "
                    f"{missing}."
                )

    def _mix_training_batch(self, x, y, sample_weight):
        """Updates the strength from the schedule and mixes the batch."""
        raw = tf.cast(
            self.schedule(self.mixup_step.value, self.planned_steps.value),
            "float32",
        )
        # A custom schedule may return anything: count bad values (the
        # training plan raises after the step, as for labels; XLA drops
        # assertions) and never mix with them.
        strength, in_range = mixing.clip_strength(raw, self.coefficient)
        self.bad_strength_steps.assign_add(tf.cast(tf.logical_not(in_range), "int32"))
        self.strength.assign(strength)
        self.mixup_step.assign_add(1)
        if self.mix_in == "none" or y is None:
            return x, y, y, sample_weight
        self._check_inputs(x)
        config = self.mixing_config.for_op(self.feature_mode()).replace(
            num_classes=self._output_classes(x))
        n = tf.shape(tf.nest.flatten(x)[0])[0]
        lam = mixing.sample_mix_coefficients(
            n, strength, config.coefficient, config.jitter, self.seed_generator)
        if self.focus is not None:
            lam = self._focused(x, y, lam)
        partner = mixing.partner_indices(n, self.seed_generator)
        noise = (mixing.swap_noise(x, self.seed_generator, config.feature_groups)
                 if config.features == "swap" else None)
        result = mixing.mix(x, y, sample_weight, lam=lam, partner=partner, config=config,
                            noise=noise)
        self.bad_label_batches.assign_add(
            tf.cast(tf.logical_not(result.labels_valid), "int32")
        )
        self.unmixed_batches.assign_add(tf.cast(n < 2, "int32"))
        return result.x, result.y, result.y_dominant, result.sample_weight

    def _focused(self, x, y, lam):
        """Per-example λ: the partner share scaled by the `LossFloor` of each example."""
        if getattr(self, "_focus_loss", None) is None:
            self._focus_loss = focus_lib.per_example_loss(self.loss)
        clean = tf.stop_gradient(self(x, training=False))
        # the loss above its least possible value: minus the entropy of soft
        # targets (SplitTeachers'), so the floor means the same as for labels
        losses = self._focus_loss(y, clean) - focus_lib.target_entropy(y)
        floor = self.loss_floor.value
        shares = self.focus.shares(losses, floor)
        self.focus_mixed.assign_add(tf.reduce_sum(tf.cast(losses < floor, tf.float32)))
        self.focus_seen.assign_add(tf.cast(tf.size(shares), tf.float32))
        return 1.0 - (1.0 - lam) * shares

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        x, y_loss, y_metric, sample_weight = self._mix_training_batch(
            x, y, sample_weight
        )
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(
                x=x, y=y_loss, y_pred=y_pred, sample_weight=sample_weight,
                training=True,
            )
            # The loss tracker (public: the metric named "loss" in
            # `self.metrics`) gets the per-replica loss unscaled, as in Keras'
            # own train step: `compute_loss` divides by the replica count.
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            self._loss_metric().update_state(
                loss * tf.cast(replicas, loss.dtype),
                sample_weight=tf.shape(tf.nest.flatten(x)[0])[0],
            )
            if self.relax is not None:
                loss = self._relaxed(x, y_loss, y_pred, sample_weight, loss)
            if self.optimizer is not None:
                loss = self.optimizer.scale_loss(loss)
        trainable = self.trainable_weights
        gradients = tape.gradient(loss, trainable)
        self.optimizer.apply_gradients(zip(gradients, trainable))
        logs = self.compute_metrics(x, y_metric, y_pred, sample_weight=sample_weight)
        # a tensor, not the variable's own value (eager `fit` reads logs after the step)
        logs["mixup_strength"] = tf.identity(self.strength.value)
        if self.focus is not None:
            logs["mixup_focus"] = self.focus_mixed.value / tf.maximum(self.focus_seen.value, 1.0)
        if self.relax is not None:
            logs["relax_share"] = self.relax_under.value / tf.maximum(self.relax_seen.value, 1.0)
        return _compat.multi_worker_logs(self, logs)

    def _relaxed(self, x, y, y_pred, sample_weight, loss):
        """The step's loss under `relax`: `loss` while it is above the target (taken
        above the targets' mean entropy), else ascent (on the data term; the
        regularization terms are still descended) and posterior flattening on
        alternate steps."""
        # the data's weighted mean loss, as the hold-out loss is measured: without the
        # regularization terms, weights normalized (`compute_loss` divides Σ w·l by
        # the batch size, and by the replica count)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        penalty = tf.cast(tf.add_n(self.losses), loss.dtype) if self.losses else 0.0
        data_loss = (loss - penalty) * tf.cast(replicas, loss.dtype)
        if sample_weight is not None:
            weights = tf.cast(tf.reshape(sample_weight, [-1]), loss.dtype)
            data_loss = data_loss * tf.cast(tf.size(weights), loss.dtype) / tf.maximum(
                tf.reduce_sum(weights), 1e-12)
        gap = data_loss - tf.reduce_mean(focus_lib.target_entropy(y))
        under = gap <= self.loss_target.value
        self.relax_under.assign_add(tf.cast(under, tf.float32))
        self.relax_seen.assign_add(1.0)

        def relaxed():
            ascend = tf.equal(self.relax_steps % 2, 0)
            self.relax_steps.assign_add(1)
            return tf.cond(ascend, lambda: penalty - (loss - penalty),
                           lambda: self._flattening(x, y, y_pred, sample_weight))
        return tf.cond(under, relaxed, lambda: loss)

    def _flattening(self, x, y, y_pred, sample_weight):
        """The compiled loss against RelaxLoss' flattened targets (`relax.flattened`)."""
        classes = y_pred.shape[-1]
        y = tf.convert_to_tensor(y)
        from_logits = getattr(self.loss, "from_logits", False)
        if classes == 1:  # a sigmoid: Bernoulli flattening (`relax.flattened_binary`)
            probability = tf.sigmoid(y_pred) if from_logits else y_pred
            target = relax_lib.flattened_binary(tf.reshape(y, tf.shape(y_pred)), probability)
            return self.compute_loss(x=x, y=target, y_pred=y_pred,
                                     sample_weight=sample_weight, training=True)
        if y.shape.rank == y_pred.shape.rank - 1 or y.shape[-1] == 1:
            y = tf.one_hot(tf.cast(tf.reshape(y, [-1]), "int32"), classes)
        probabilities = tf.nn.softmax(y_pred) if from_logits else y_pred
        return self.compute_loss(x=x, y=relax_lib.flattened(y, probabilities),
                                 y_pred=y_pred, sample_weight=sample_weight, training=True)

    def _loss_metric(self):
        for metric in self.metrics:
            if metric.name == "loss":
                return metric
        raise ValueError("The model has no loss tracker: call `compile` with a loss first.")

    def test_step(self, data):
        return _compat.multi_worker_logs(self, super().test_step(data))

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # keras-team/keras#20585: see keras_adamixup/_compat.py.
        local = _compat.symbolic_build_batch(self, iterator)
        if local is not None:
            iterator, data_batch = None, local
        return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    # -- serialization -----------------------------------------------------

    def _state_variables(self):
        """The training state by name: the schedule's state (named with its class),
        the strength, the step counters, and `focus`'s and `relax`'s when given."""
        schedule = type(self.schedule).__name__
        state = {f"schedule.{schedule}.{i}.{v.name}": v
                 for i, v in enumerate(self.schedule_state)}
        names = ["strength", "mixup_step", "planned_steps", "bad_label_batches",
                 "unmixed_batches", "bad_strength_steps"]
        if self.focus is not None:
            names += ["loss_floor", "focus_mixed", "focus_seen"]
        if self.relax is not None:
            names += ["loss_target", "relax_steps", "relax_under", "relax_seen"]
            names += list(self.relax.init_state())
        state.update((name, getattr(self, name)) for name in names)
        return state

    def save_own_variables(self, store):
        # Keras does not save SeedGenerator states; the mixing stream must
        # resume where it stopped, so save ours.
        super().save_own_variables(store)
        store[_SEED_KEY] = self.seed_generator.state
        # Keras saves the state by position; by name too, so that weights saved by
        # a model with another state (relax, focus, schedule) never load crosswise
        for name, variable in self._state_variables().items():
            store[_STATE_PREFIX + name] = variable
        if self._teacher_targets is not None:  # a continued fit keeps the teachers
            for key, array in self._teacher_targets.to_store().items():
                store[_TEACHER_PREFIX + key] = array
        held = predictions.held_out_digests(self)  # the audit's E69 check, after loading
        if held:
            store[_HELD_OUT_KEY] = np.frombuffer(b"".join(held), "uint8").reshape(len(held), -1)

    def load_own_variables(self, store):
        keys = list(store.keys())
        if _SEED_KEY in keys:
            self.seed_generator.state.assign(store[_SEED_KEY])
        teacher = {k[len(_TEACHER_PREFIX):]: np.asarray(store[k]) for k in keys
                   if k.startswith(_TEACHER_PREFIX)}
        if teacher:
            self._teacher_targets = TeacherTargets.from_store(teacher)
        if _HELD_OUT_KEY in keys:
            self._keep_held_out(np.asarray(store[_HELD_OUT_KEY], dtype="uint8"))
        named = {k[len(_STATE_PREFIX):]: k for k in keys if k.startswith(_STATE_PREFIX)}
        if named:
            self._load_state_by_name({name: store[key] for name, key in named.items()})
            return
        # saved before the state had names: by position, as Keras does
        own = (_SEED_KEY, _HELD_OUT_KEY) + _OLD_TEACHER_KEYS
        state = {k: store[k] for k in keys if k not in own and not k.startswith(_TEACHER_PREFIX)}
        try:
            super().load_own_variables(state)
        except ValueError as error:
            self._warn_other_state(f"{len(state)} variables against this model's "
                                   f"{len(self._state_variables())}; Keras: "
                                   f"{str(error).splitlines()[0]}")

    def _load_state_by_name(self, saved):
        state = self._state_variables()
        differ = sorted(set(state) ^ set(saved))
        for name, variable in state.items():
            value = np.asarray(saved[name]) if name in saved else None
            if value is not None and value.shape == tuple(variable.shape):
                variable.assign(value)
            elif value is not None:
                differ.append(name)
        if differ:
            self._warn_other_state("not in both: " + ", ".join(differ))

    def _warn_other_state(self, detail):
        # weights saved by a model with another training state (with or without
        # `relax`, `focus`, another schedule): the network's weights, saved with the
        # base model, still load; the state this model has alone is left as it was
        warnings.warn(
            f"E60: the weights loaded into {self.name} were saved by an AdaMixupModel "
            f"with another training state ({detail}; e.g. one with or without `relax=`, "
            "`focus=` or with another schedule). The network's weights were loaded; of "
            "this model's training state (mixing strength, step counters, targets) only "
            "what both share by name was. To move only a network's weights, use "
            "model.base_model.save_weights / load_weights.", UserWarning,
            stacklevel=_stack.user_level())

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "base_model": keras.saving.serialize_keras_object(self.base_model),
            "schedule": keras.saving.serialize_keras_object(self.schedule),
            "label_mode": self.label_mode,
            "coefficient": self.coefficient,
            "jitter": self.jitter,
            "mix_in": self.mix_in,
            "num_classes": self.num_classes,
            "seed": self.seed,
            "allow_any_loss": self.allow_any_loss,
            "features": self.features,
            "feature_groups": self.feature_groups,
            "targets": (None if self.targets is None
                        else keras.saving.serialize_keras_object(self.targets)),
            "focus": (None if self.focus is None
                      else keras.saving.serialize_keras_object(self.focus)),
            "relax": (None if self.relax is None
                      else keras.saving.serialize_keras_object(self.relax)),
            "checkpoint": None if self.checkpoint is None else dict(self.checkpoint),
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["base_model"] = keras.saving.deserialize_keras_object(
            config["base_model"], custom_objects=custom_objects
        )
        config["schedule"] = keras.saving.deserialize_keras_object(
            config["schedule"], custom_objects=custom_objects
        )
        return cls(**config)


# Keras' own batch-mixing augmentation layers: inside the base model they mix
# the batch the train step has mixed already
_MIXING_LAYERS = ("MixUp", "CutMix")


def _warn_if_it_mixes(base_model):
    """Warns when the base model holds a layer that mixes batches itself."""
    found = sorted({type(layer).__name__ for layer in base_model._flatten_layers()
                    if type(layer).__name__ in _MIXING_LAYERS})
    if found:
        warnings.warn(
            f"E66: the base model contains {', '.join(found)}, which mixes the batch again "
            "after AdaMixupModel mixed it: the model mixes twice (stronger than any "
            "schedule says, and the labels of the second mixing are not the targets'). "
            "Remove the layer: inside a model it mixes the inputs only, never the labels, "
            "so it is not mixup there either.",
            UserWarning, stacklevel=_stack.user_level())


def _mixing_settings(mixing, **fields):
    """`AdaMixupModel`'s `MixingConfig`: `mixing` (a config or its dict), or its fields."""
    if mixing is None:
        return mixing_config_lib.MixingConfig(**fields)
    if isinstance(mixing, dict):
        mixing = keras.saving.deserialize_keras_object(mixing)
    if not isinstance(mixing, mixing_config_lib.MixingConfig):
        raise TypeError("`mixing` must be None or a keras_adamixup.MixingConfig, got "
                        f"{type(mixing).__name__}.")
    if mixing_config_lib.MixingConfig(**fields) != mixing_config_lib.MixingConfig():
        raise ValueError("Give the mixing settings either as `mixing=MixingConfig(...)` or "
                         "as arguments (label_mode=, coefficient=, ...), not both.")
    return mixing


def _component(value, kind, name):
    """`value` (or its serialized dict) if it is a `kind` or `None`; else `TypeError`."""
    if isinstance(value, dict):
        value = keras.saving.deserialize_keras_object(value)
    if value is not None and not isinstance(value, kind):
        hint = (f" (e.g. {name}=keras_adamixup.{kind.__name__}({value!r}))"
                if isinstance(value, (str, int, float)) and not isinstance(value, bool) else "")
        raise TypeError(f"`{name}` must be None or a keras_adamixup.{kind.__name__}, "
                        f"got {type(value).__name__}{hint}.")
    return value


_CHECKPOINT_ARGUMENTS = ("target_auc", "patience", "score", "min_delta",
                         "max_accuracy_drop", "restore")


def _checkpoint_settings(checkpoint):
    """`AdaMixupModel(checkpoint=)` as a dict of `PrivacyCheckpoint` arguments, or `None`."""
    if checkpoint is None or checkpoint is False:
        return None
    if checkpoint is True:
        return {}
    if not isinstance(checkpoint, dict):
        raise TypeError("`checkpoint` must be None, True or a dict of PrivacyCheckpoint "
                        f"arguments, got {checkpoint!r}.")
    unknown = sorted(set(checkpoint) - set(_CHECKPOINT_ARGUMENTS))
    if unknown:
        raise ValueError(f"`checkpoint` has unknown PrivacyCheckpoint arguments {unknown}; "
                         f"it takes {list(_CHECKPOINT_ARGUMENTS)}.")
    return dict(checkpoint)


class _TrainingPlan(keras.callbacks.Callback):
    """Tells the model the planned length of `fit` and checks label errors."""

    def __init__(self, model):
        super().__init__()
        self._target = model

    def on_train_begin(self, logs=None):
        model = self._target
        steps, epochs = self.params.get("steps"), self.params.get("epochs")
        planned = int(steps) * int(epochs) if steps and epochs else -1
        if planned < 0 and model.schedule.needs_total_steps():
            raise ValueError(
                f"E09: The schedule {model.schedule!r} decays over the planned "
                "training length, but the number of steps per epoch is unknown "
                "(a dataset of unknown cardinality). Pass `steps_per_epoch` to "
                "fit or give the schedule `decay_steps`."
            )
        model.planned_steps.assign(planned)
        model.bad_label_batches.assign(0)
        model.bad_strength_steps.assign(0)

    def on_epoch_begin(self, epoch, logs=None):
        # Counted per epoch: a single-example remainder at the end of an
        # epoch passes unmixed; only a first batch of one is an error.
        self._target.unmixed_batches.assign(0)
        if self._target.focus is not None:
            self._target.focus_mixed.assign(0.0)
            self._target.focus_seen.assign(0.0)
        if self._target.relax is not None:
            self._target.relax_under.assign(0.0)
            self._target.relax_seen.assign(0.0)

    def _check_counters(self):
        model = self._target
        read = lambda v: int(v.numpy())  # noqa: E731
        bad = read(model.bad_label_batches)
        if bad:
            raise ValueError(
                f"E03: {bad} training batch(es) had sparse labels `y` outside [0, "
                "num_classes) or not integers; mixing them gives wrong targets. "
                "Check the labels and `num_classes`."
            )
        bad = read(model.bad_strength_steps)
        if bad:
            low, high = mixing.strength_range(model.coefficient)
            raise ValueError(
                f"E25: The schedule {type(model.schedule).__name__} returned a strength "
                f"outside [{low}, {high}] (coefficient='{model.coefficient}') or NaN "
                f"in {bad} training step(s); the steps mixed with the value clipped "
                "into range. Fix the schedule's __call__."
            )

    def on_train_batch_end(self, batch, logs=None):
        if batch == 0:
            self._check_counters()
            model = self._target
            if int(model.unmixed_batches.numpy()):
                raise ValueError(E06_FIRST_BATCH)

    def on_epoch_end(self, epoch, logs=None):
        self._check_counters()


def _output_width(model):
    """The last axis of `model`'s single output, or `None` when it is not known yet
    (a subclassed model before its first call) or there are several outputs."""
    try:
        outputs = model.outputs
    except (AttributeError, ValueError):
        return None
    if not outputs or len(outputs) != 1 or outputs[0].shape[-1] is None:
        return None
    return int(outputs[0].shape[-1])
