"""Out-of-fold soft labels from split teachers: a member's target is a non-member's output.

The idea of SELENA's Split-AI (Tang et al., USENIX Security 2022), written
here for Keras from the paper's description:

1. ``teachers`` copies of the model (fresh weights, the same loss and
   optimizer) train on overlapping subsets of the training data: every
   example is left out of exactly ``exclude`` of them, drawn at random;
2. each example's *soft label* is the mean probability vector of the
   teachers that did not train on it, i.e. what the model family predicts
   for the example when it is *not* a member;
3. the released model trains on those soft labels instead of the true ones
   (with `AdaMixupModel`'s mixing on top, which mixes soft labels as it mixes
   class ids).

An example the model could only fit by memorizing (an outlier, a mislabeled
or rare example) gets the label its neighbours imply, so training on it
leaves little trace to find; a typical example gets a confident label it
would have got anyway. The price is accuracy: the teachers see
``(teachers − exclude) / teachers`` of the data, and the model learns what
they know. Measured in docs/BENCHMARKS.md ("Split teachers").

The teachers train together in one compiled step when the model allows it
(a Sequential or functional model with one input and one output;
`keras_adamixup._stacked`), else one after another (a model of several
inputs, given a dict or list of arrays). A
`tf.data.Dataset` too large or random to hold in memory (augmentation in
its pipeline) trains them from one pass per epoch, each on its own rows of
every batch (`_stacked.train_streamed`; `keras_adamixup._fit_dataset`).

What the teachers see, when `AdaMixupModel.fit` trains them:

- only the training part: with ``validation_split`` the validation rows
  (the last ones, as Keras splits) are set aside first, and validation uses
  their true labels;
- the student's ``sample_weight``, or its ``class_weight`` as per-example
  weights of the true classes (the student gets the same weights: Keras
  would read a class weight from the arg-max of a soft label);
- near-duplicates together: rows closer than ``near_duplicates`` × the
  root-mean-square distance between two rows (exact copies, lightly edited
  copies; images also at their best translation by up to 2 pixels;
  `keras_adamixup.duplicates`), and rows sharing an id of the
  ``groups=`` given to `fit` (a patient, a person), are one group, and a
  group is left out of the same teachers. Otherwise a teacher that leaves
  one copy out trains on the other, and the out-of-fold label carries what
  the copies share back (Aerni, Zhang, Tramèr 2024, on SELENA). With
  ``weigh_groups`` (the default) a group of k rows also weighs as one row in
  the loss (each row 1/k, teachers and model): a record stored twice is
  fitted once, not twice;
- with ``fit(..., unlabelled=x_public)``, public rows without labels
  (membership not protected): every teacher labels them at its kept epoch,
  their soft label is the mean of all the teachers (or, with
  ``unlabelled_teachers="nearest"``, of those that left out the nearest
  training row), and the model trains on them beside the training rows (or,
  with ``student_rows="unlabelled"``, on them alone): DMP's reference set;
  they must not hold copies of members' records;
- once per training set: the soft labels are kept with a digest of the
  inputs, labels, weights and teacher settings, and a later `fit` on the
  same data (continuing training) reuses them; other data retrain the
  teachers. The soft labels are saved with the model;
- with ``cache_dir``, each teacher's out-of-fold outputs are also written
  to a folder (one checksummed file per teacher, named by a fingerprint of
  the data, the model, its compile settings and the teacher settings), and
  a later training of the same teachers reads them instead of training:
  teachers can then train as separate jobs of a cluster job array
  (`SplitTeachers.train(..., indices=[k])`), and the student's `fit` reads
  what the jobs wrote.

Example:

```python
model = keras_adamixup.AdaMixupModel(
    make_model(), targets=keras_adamixup.SplitTeachers(teachers=16, exclude=2))
model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x_train, y_train, epochs=40)  # trains the teachers first
```

As a job array (job ``k`` of 16, e.g. ``SLURM_ARRAY_TASK_ID``), then one
more job for the model:

```python
def make():
    teachers = keras_adamixup.SplitTeachers(16, 2, seed=0, cache_dir="teachers/")
    model = keras_adamixup.AdaMixupModel(make_model(), targets=teachers)
    model.compile("adam", "sparse_categorical_crossentropy")
    return model

model = make()  # in job k: teacher k only, written to teachers/
model.targets.train(model, x_train, y_train, indices=[k], epochs=40, batch_size=64)

model = make()  # afterwards: reads the 16 teachers, trains the model
model.fit(x_train, y_train, epochs=40, batch_size=64)
```
"""

import dataclasses
import hashlib
import json
import logging
import os
import warnings

import keras
import numpy as np

from keras_adamixup import _stack
from keras_adamixup import (_batch_norm, _cache, _checks, _fit_data, _fit_dataset, _progress,
                            _stacked,
                            duplicates, predictions)
from keras_adamixup.teacher_targets import TeacherTargets, TeachersWarning

_LOG = logging.getLogger("keras_adamixup")


SELECT_EPOCH = ("loss", "accuracy")
STUDENT_ROWS = ("all", "unlabelled")
UNLABELLED_TEACHERS = ("all", "nearest")
# a row's forward pass (inference) costs about this share of a training step on it
# (forward and backward): what `compute` counts for the rows a teacher measures
FORWARD = 1.0 / 3.0


@keras.saving.register_keras_serializable(package="keras_adamixup")
class SplitTeachers:
    """Out-of-fold soft labels (see the module docstring); give to `AdaMixupModel(targets=)`.

    The defaults (16 teachers, each row left out of 2, patience 5) are not the
    recommended setting's: ``recommended.teachers(None, seed)`` gives that
    (`recommended.TEACHERS`: 8, 1, patience 3), at about two thirds of the cost.

    Args:
        teachers: number of teacher models, ≥ 2.
        exclude: how many teachers leave each example out, in
            ``[1, teachers)``. Each teacher trains on about
            ``1 − exclude / teachers`` of the data, and each soft label
            averages `exclude` teachers.
        seed: int seed of the exclusion draw; `None` draws one.
        together: ``"auto"`` (train the teachers in one compiled step when
            the model allows it), ``True`` (require it: `ValueError` says
            why not) or ``False`` (one after another with `fit`).
        progress: show a progress bar over the teachers' epochs.
        select_epoch: each teacher keeps the weights of its best epoch on
            the examples it left out (its own hold-out; the teachers' early
            stopping, so that an overfitting recipe does not make
            overconfident, less accurate soft labels): ``"loss"`` (lowest
            cross-entropy), ``"accuracy"`` (highest accuracy, ties to the
            lower loss) or `None` (the last epoch).
        epochs: the teachers' number of epochs; `None` (default): the
            ``epochs`` of the `fit` call that trains them. Set it when the
            student trains in several short `fit` calls (``fit(epochs=1)`` in
            a loop): the teachers train once, at the first call, and their
            soft labels are kept while the training data stay the same
            (`AdaMixupModel.fit`).
        near_duplicates: rows within this distance of each other, relative
            to the root-mean-square distance between two rows, are left out
            of the same teachers (`keras_adamixup.duplicates`). ``"auto"``
            (default): 0.1 for features (exact copies and copies with noise
            up to about 0.14 × each feature's standard deviation); for image
            arrays ``(n, H, W, C)`` 0.15, with each image also compared
            translated by up to 2 pixels and cropped by up to 3 pixels per
            axis, resized back (`duplicates.settings_for`: copies shifted,
            cropped a little, re-encoded or with pixel noise). A
            number: that radius (images are still compared translated and
            cropped);
            `None`: only the ``groups`` given to `fit` are kept together. The
            groups found are in the returned `TeacherTargets`
            (``groups_found``).
        image_shape: `None` (default), or ``(H, W)`` / ``(H, W, C)`` when the
            training rows are flattened images (an MLP on 784 MNIST pixels):
            the near-duplicates are then searched as on image arrays
            (translated, radius 0.15 with ``"auto"``). Image arrays
            ``(n, H, W, C)`` need none.
        patience: with `select_epoch`, a teacher stops after this many
            epochs without a better epoch on the examples it left out (its
            kept epoch is then final), and the teachers' training ends when
            all have stopped: teachers cost what their early epochs cost,
            not the student's whole plan (2,000 MNIST rows, 40 epochs: 71 s
            instead of 147 s, out-of-fold cross-entropy 0.287 vs 0.288).
            `None`, or ``select_epoch=None``: every teacher trains every
            epoch. The epoch each teacher kept: `TeacherTargets.epochs`.
        weigh_groups: a group of k rows (near-duplicates, or rows sharing
            an id of ``groups``) weighs 1/k per row in the teachers' and the
            model's loss, as one record (times any sample or class weights).
            A duplicated record is then fitted as much as a single one: in
            the model, the soft label of a record stored twice otherwise
            leaves twice the trace (docs/BENCHMARKS.md, canary targets).
            `False`: every row weighs 1. The weights are in the returned
            `TeacherTargets` (``row_weights``; `None` when every row is alone).
            The ``loss`` that `fit` reports is then the weighted mean per row:
            lower than ``val_loss`` (unweighted) by about the share of rows in
            groups, not a sign of overfitting (a dataset repeated twice: half).
        cache_dir: `None`, or a folder where each teacher's out-of-fold
            outputs are written once trained and read instead of training
            (one checksummed file per teacher, `keras_adamixup._cache`): the
            teachers of a job array (`train`), or of an interrupted run. The
            folder belongs to one training (data, weights, groups, model,
            compile settings, epochs, batch size, these settings): another
            one is refused with a message. Needs a fixed `seed`.
        student_rows: what the model (the student) trains on, in
            `AdaMixupModel.fit`: ``"all"`` (default) the training rows with
            their out-of-fold soft labels, and the ``unlabelled=`` rows if
            given; ``"unlabelled"`` the ``unlabelled=`` rows alone (required
            then), so that the training rows teach only the teachers and the
            model never trains on a member (DMP's distillation on a
            reference set, Shejwalkar & Houmansadr 2021); `fit`'s sample and
            class weights then weigh the teachers' training only. The
            teachers are the same either way (their cache is shared).
        unlabelled_teachers: which teachers label an ``unlabelled=`` row:
            ``"all"`` (default) the mean of every teacher; ``"nearest"`` the
            mean of the teachers that left out the training row nearest to it
            (Euclidean on the flattened inputs,
            `keras_adamixup.duplicates.nearest_rows`), so that a public row
            next to a member never takes its label from teachers that trained
            on that member: what they memorized of it (a mislabelled record)
            does not reach the model through its public neighbours. Each
            public label then averages `exclude` teachers, not all.

        label_weight: in ``[0, 1)``: the share of each training row's given
            label in the model's target, the rest its soft label
            (`student_targets`; knowledge distillation's mix of the hard and
            the soft loss). 0 (default): the soft label alone. The teachers
            do not depend on it.
        compute: `None` (default): the teachers train up to the model's
            epochs (or ``epochs``), stopping early with ``patience``. A
            number > 0: the teachers' training compute at most this multiple
            of the model's own fit, counted in rows × epochs (each teacher
            trains on ``1 − exclude / teachers`` of the rows, and measures
            the rows it left out after every epoch, a forward pass counted
            as a third of a training row): with 4 teachers leaving each row
            out of 1, ``compute=1.0`` lets each train 3/10 of the model's
            epochs, with 2 teachers 3/4 of them (`teacher_epochs`).
            ``recommended.model(base, budget=...)`` sets it.

    Example:

    ```python
    teachers = keras_adamixup.SplitTeachers(teachers=16, exclude=2, seed=0)
    targets = teachers.fit(model, x_train, y_train, epochs=40, batch_size=64)
    targets.soft_labels.shape  # (len(x_train), classes), rows sum to 1
    ```
    """

    def __init__(self, teachers=16, exclude=2, seed=None, together="auto", progress=False,
                 select_epoch="loss", epochs=None, near_duplicates="auto",
                 patience=5, weigh_groups=True, cache_dir=None, student_rows="all",
                 unlabelled_teachers="all", compute=None, label_weight=0.0,
                 image_shape=None):
        _checks.integer("teachers", teachers, low=2)
        _checks.integer("exclude", exclude, low=1)
        if exclude >= teachers:
            raise ValueError(f"E34: `exclude` must be smaller than `teachers` ({teachers}), "
                             f"got {exclude}: every teacher must train on something.")
        _checks.seed(seed)
        _checks.together(together)
        _checks.boolean("progress", progress)
        if select_epoch is not None:
            _checks.choice("select_epoch", select_epoch, SELECT_EPOCH)
        self.select_epoch = select_epoch
        self.epochs = _checks.positive_int("epochs", epochs, allow_none=True)
        if near_duplicates is not None and near_duplicates != "auto":
            near_duplicates = _checks.number("near_duplicates", near_duplicates, low=0.0)
        self.near_duplicates = near_duplicates
        self.image_shape = _checks.image_shape(image_shape)
        self.patience = _checks.positive_int("patience", patience, allow_none=True)
        _checks.boolean("weigh_groups", weigh_groups)
        self.weigh_groups = weigh_groups
        if cache_dir is not None:
            if not isinstance(cache_dir, (str, bytes)) and not hasattr(cache_dir, "__fspath__"):
                raise TypeError(f"E41: `cache_dir` must be a path or None, got {cache_dir!r}.")
            if seed is None:
                raise ValueError("E41: SplitTeachers(cache_dir=) needs a fixed `seed`: every job "
                                 "that writes to the folder must leave the same examples "
                                 "out of each teacher.")
            cache_dir = os.fsdecode(cache_dir)
        self.cache_dir = cache_dir
        self.student_rows = _checks.choice("student_rows", student_rows, STUDENT_ROWS)
        self.unlabelled_teachers = _checks.choice("unlabelled_teachers", unlabelled_teachers,
                                                  UNLABELLED_TEACHERS)
        self.teachers, self.exclude, self.together = teachers, exclude, together
        if compute is not None:
            compute = _checks.number("compute", compute, low=0.0, low_open=True)
        self.compute = compute
        self.label_weight = _checks.number("label_weight", label_weight, low=0.0, high=1.0,
                                           high_open=True)
        self.seed = int(np.random.default_rng().integers(2**31)) if seed is None else seed
        self.progress = progress

    def left_out(self, n, groups=None):
        """`(teachers, n)` bool: True where teacher k does *not* train on example i.

        Every example is left out of exactly `exclude` teachers; with
        `groups` (each row's group as `duplicates.near_duplicate_groups` gives
        it: the group's smallest row index), every row of a group is left
        out of the teachers its first row is left out of. Rows in groups of
        their own get the same draw as without `groups`.
        """
        rng = np.random.default_rng([self.seed, n])
        ranks = np.argsort(rng.random((n, self.teachers)), axis=1)
        mask = np.zeros((n, self.teachers), dtype=bool)
        np.put_along_axis(mask, ranks[:, :self.exclude], True, axis=1)
        if groups is not None:
            groups = np.asarray(groups, dtype="int64").reshape(-1)
            if len(groups) != n or (groups < 0).any() or (groups > np.arange(n)).any():
                raise ValueError("`groups` must give each of the n rows the smallest row "
                                 "index of its group (duplicates.near_duplicate_groups).")
            mask = mask[groups]
        _check_every_teacher(mask.T, self.teachers, self.exclude, n)
        return mask.T

    def groups(self, x, groups=None, shift_step=1):
        """Each row's group for `left_out` (`None`: every row alone), and logs what was found.

        Args:
            x: the teachers' training inputs.
            groups: `None` or one id per row (rows sharing one are kept together).
            shift_step: `near_duplicate_groups`' step of translations (0.5 for
                images kept at half their sides).
        """
        if self.near_duplicates is None and groups is None:
            return None
        if self.image_shape is not None:
            x = duplicates.as_images(x, self.image_shape)
        x = duplicates.channels_last(x)  # (n, C, H, W) images searched as images
        settings = duplicates.settings_for(x)
        if self.near_duplicates != "auto":
            settings["radius"] = self.near_duplicates or 0.0
        if not settings["radius"]:
            settings.update(shift=0, crop=0)
        else:  # before the search, which takes seconds to minutes on images
            _LOG.info("SplitTeachers: searching %d rows for near-duplicates%s", len(x),
                      f" (images: shifted up to {settings['shift']} and cropped up to "
                      f"{settings['crop']} pixels, in half pixels)" if settings["shift"] or settings["crop"]
                      else "")
        if settings["shift"]:
            settings["shift_step"] = shift_step
        return _logged(duplicates.near_duplicate_groups(x, groups=groups, **settings))

    def student_targets(self, soft, y):
        """The model's targets: each training row's soft label with ``label_weight``
        of its given label mixed in (the rows after ``len(y)``, unlabelled, as they are).

        Args:
            soft: `TeacherTargets.soft_labels`, ``(n [+ unlabelled], classes)``.
            y: the `n` training rows' labels (class ids, or rows as wide as `soft`).
        """
        if not self.label_weight:
            return soft
        y = np.asarray(y)
        n, width = len(y), soft.shape[1]
        if y.ndim == 2 and y.shape[1] == width:
            given = y.astype("float32")
        elif width == 1:  # a one-output model: the probability of class 1
            given = y.reshape(n, 1).astype("float32")
        else:
            given = np.eye(width, dtype="float32")[y.reshape(-1).astype("int64")]
        w = self.label_weight
        return np.concatenate([(1.0 - w) * soft[:n] + w * given, soft[n:]]).astype("float32")

    def teacher_epochs(self, epochs, left_out):
        """The most epochs each teacher trains, for a model's fit of `epochs`.

        `epochs` (this object's ``epochs`` when set); with ``compute``, at
        most as many as keep the teachers' rows × epochs within ``compute``
        times the model's (``n × epochs``), and at least 1. With epoch
        selection the rows each teacher measures after every epoch count
        too, at `FORWARD` of a training row (a forward pass alone).

        Args:
            epochs: the epochs of the model's `fit`.
            left_out: `left_out`'s mask, ``(teachers, n)``.
        """
        epochs = self.epochs or epochs
        if self.compute is None:
            return epochs
        rows = float(np.size(left_out) - np.count_nonzero(left_out))  # teachers' rows
        # each epoch, every teacher measures the rows it left out (epoch selection)
        measured = float(np.count_nonzero(left_out)) if self.select_epoch else 0.0
        per_epoch = max(rows + FORWARD * measured, 1.0)
        affordable = int(self.compute * epochs * left_out.shape[1] / per_epoch)
        if affordable < 1:
            spent = per_epoch / (epochs * left_out.shape[1])
            warnings.warn(
                f"E63: the teachers' compute ({self.compute:g} of the model's own fit: "
                f"recommended.model(budget={1 + self.compute:g}) or SplitTeachers(compute="
                f"{self.compute:g})) affords them less than one epoch each on a fit of "
                f"{epochs} epoch(s): they train one epoch each, {spent:.2f} times the "
                f"model's training compute. Give budget={1 + spent:.2f} or more "
                f"(compute={spent:.2f}), more epochs, or fewer teachers.",
                TeachersWarning, stacklevel=_stack.user_level())
        return max(1, min(epochs, affordable))

    def weights_of(self, labels):
        """Per-row weights 1/k for rows of a group of k (`groups`' result), or `None`.

        `None` when `weigh_groups` is off, there are no groups, or every row
        is alone (nothing to weigh).
        """
        if not self.weigh_groups or labels is None:
            return None
        labels = np.asarray(labels).reshape(-1)
        _, inverse, sizes = np.unique(labels, return_inverse=True, return_counts=True)
        if sizes.max(initial=1) <= 1:
            return None
        return (1.0 / sizes[inverse.reshape(-1)]).astype("float32")

    def make_teachers(self, model, count=None):
        """`count` (default `teachers`) fresh copies of a compiled `model` (its
        base model for an `AdaMixupModel`: teachers train without mixing),
        compiled with the same loss and optimizer settings; their
        batch-normalization averages follow the last steps (`_batch_norm.follow`)."""
        base = getattr(model, "base_model", model)
        loss = getattr(model, "loss", None)
        if getattr(model, "optimizer", None) is None or loss is None:
            raise ValueError("SplitTeachers needs a compiled model (optimizer and loss).")
        copies = []
        for _ in range(self.teachers if count is None else count):
            try:
                teacher = keras.models.clone_model(base)
            except (ValueError, TypeError, NotImplementedError) as error:
                raise ValueError(
                    "E34: SplitTeachers copies the model with keras.models.clone_model, "
                    f"which failed for {type(base).__name__} ({error}); use a "
                    "Sequential or functional model.") from error
            # measured after every epoch, never released: batch-normalization
            # averages that follow the last steps instead of a refresh each time
            _batch_norm.follow(teacher)
            teacher.compile(optimizer=_without_average(model.optimizer), loss=loss)
            copies.append(teacher)
        return copies

    def fit(self, model, x, y, *, epochs=1, batch_size=None, sample_weight=None,
            progress=None, groups=None, unlabelled=None):
        """Trains the teachers on `(x, y)`; returns their `TeacherTargets`.

        This object is not changed: what the training produced (soft labels,
        exclusions, kept epochs, group weights) is in the returned value.

        Args:
            model: the compiled model whose copies are the teachers (logits or
                probabilities out; see `keras_adamixup.predictions`).
            x: the training inputs: a NumPy array, a dict / list of arrays
                (a model of several inputs), or a `tf.data.Dataset` of
                ``(x, y[, w])`` batches (`keras_adamixup._fit_dataset`).
            y: NumPy class ids or one-hot rows (`None` with a dataset).
            epochs: the teachers' epochs (as in `fit`); this object's
                `epochs`, when set, wins.
            batch_size: the teachers' batch size (as in `fit`).
            sample_weight: `None` or `(len(y),)` per-example weights: every
                teacher trains with them (as `fit`'s ``sample_weight``), and
                epoch selection weighs its loss by them.
            progress: show a progress bar; `None`: this object's `progress`.
            groups: `None` or ``(len(y),)`` ids: rows sharing an id are left
                out of the same teachers (with the near-duplicates found).
            unlabelled: `None`, or public inputs without labels shaped as
                `x`: every teacher labels them at its kept epoch (mean of all,
                or ``unlabelled_teachers="nearest"``); none trains on them.

        Returns:
            a `keras_adamixup.TeacherTargets`: ``soft_labels`` float32
            ``(len(y) [+ unlabelled rows], classes)``, the mean probabilities
            of the teachers that left each example out.

        Example:

        ```python
        targets = keras_adamixup.SplitTeachers(16, 2, seed=0).fit(
            model, x_train, y_train, epochs=40, batch_size=64)
        ```
        """
        if _fit_dataset.is_dataset(x):
            if unlabelled is not None:
                raise ValueError("SplitTeachers: `unlabelled` rows need training arrays, not "
                                 "a dataset.")
            with _fit_dataset.order_checked():
                return self._fit_dataset(model, x, epochs, batch_size, sample_weight,
                                         progress, groups)
        run = self._prepare(model, x, y, epochs, batch_size, sample_weight, progress, groups,
                            unlabelled)
        probs, kept, public = self._teacher_outputs(run, range(self.teachers))
        soft = self._soft_labels(run, probs, public)
        digest = self.digest(x, y, epochs=epochs, batch_size=batch_size,
                             sample_weight=sample_weight, groups=groups, unlabelled=unlabelled)
        self._warn_if_cut_short(kept if self.select_epoch else None, run.epochs)
        return TeacherTargets(soft, run.left_out, digest,
                              epochs=kept if self.select_epoch else None,
                              planned_epochs=run.epochs, row_weights=run.row_weights,
                              groups_found=run.groups_found)

    def _soft_labels(self, run, probs, public):
        """Each row's mean over the teachers that left it out (each answers only for
        those rows: with epoch selection, its kept epoch's probabilities), then the
        unlabelled rows'."""
        soft = sum(_scatter(probs[k], run.left_out[k])
                   for k in range(self.teachers)) / self.exclude
        if run.unlabelled is None:
            return soft
        return np.concatenate([soft, self._unlabelled_soft(run, public)])

    def _warn_if_cut_short(self, kept, planned):
        """E58: warns when most teachers were still improving when their epochs ran
        out (none stopped on its plateau): their soft labels are weaker than they
        could be."""
        if kept is None or self.patience is None or planned <= 1:
            return
        running = sum(int(epoch) >= planned for epoch in kept)
        if 2 * running <= len(kept):
            return
        cap = ("the epochs the compute they were given allows: SplitTeachers(compute=...), "
               "recommended.model(budget=...)" if self.compute is not None
               else "the epochs of the fit")
        warnings.warn(
            f"E58: {running} of {len(kept)} teachers were still improving on the rows they "
            f"left out when their {planned} epoch(s) ran out ({cap}): their soft labels are "
            "weaker than they could be, and a model trained on them less accurate. Give "
            "them more: fit(epochs=N) with a larger N, SplitTeachers(epochs=N), or a larger "
            "budget.", TeachersWarning, stacklevel=_stack.user_level())

    def soft_labels(self, model, x, y, **kwargs):
        """`fit(model, x, y, **kwargs).soft_labels`: the soft labels alone.

        Args:
            model: as for `fit`.
            x: as for `fit`.
            y: as for `fit`.
            **kwargs: `fit`'s keyword arguments.
        """
        return self.fit(model, x, y, **kwargs).soft_labels

    def digest(self, x, y, *, epochs=1, batch_size=None, sample_weight=None, groups=None,
               unlabelled=None):
        """A hex digest of a training of these teachers (`TeacherTargets.digest`).

        Two trainings of the same digest give the same targets (with a
        fixed `seed`): `AdaMixupModel.fit` reuses its targets while the
        digest of its training data matches. The arguments are `fit`'s.
        """
        return _fit_data.digest(
            x, y, sample_weight, keras.saving.serialize_keras_object(self),
            self.epochs or epochs, batch_size,
            None if groups is None else np.asarray(groups).reshape(-1).tolist(),
            more=None if unlabelled is None else _fit_data.unlabelled_like(unlabelled, x))

    def dataset_digest(self, scanned, *, epochs=1, batch_size=None, sample_weight=None,
                       groups=None):
        """`digest` of a training from a dataset, from `_fit_dataset.scan`'s pass.

        The inputs count by their digest when two passes give the same; with
        random augmentation in the pipeline, by the labels, their order and
        number alone.
        """
        inputs = scanned["inputs_digest"] if scanned["fixed_inputs"] else "augmented"
        return _fit_data.digest(
            np.frombuffer(inputs.encode(), dtype="uint8"), scanned["y"], sample_weight,
            keras.saving.serialize_keras_object(self), self.epochs or epochs, batch_size,
            None if groups is None else np.asarray(groups).reshape(-1).tolist())

    def _fit_dataset(self, model, dataset, epochs, batch_size, sample_weight, progress,
                     groups):
        """`fit` from a dataset. A dataset whose inputs fit in `SEARCH_BYTES` and are the
        same at every pass trains its teachers from them as from arrays (together when
        they can); others from one pass of the dataset per epoch, together when they can
        (`_stacked.train_streamed`), else one teacher after another, each reading the
        examples it keeps by position (`keras_adamixup._fit_dataset`)."""
        if self.cache_dir is not None:
            raise ValueError("SplitTeachers(cache_dir=) needs training arrays, not a dataset: "
                             "give `fit` the arrays.")
        scanned = _fit_dataset.scan(dataset, keep_inputs=True,
                                    halve=self.near_duplicates is not None)
        _check_labels(model, scanned["y"])
        x = _fit_dataset.whole_inputs(dataset, scanned)
        if x is not None:
            targets = self.fit(model, x, scanned["y"], epochs=epochs,
                               batch_size=batch_size or scanned["batch_size"],
                               sample_weight=scanned["weights"] if sample_weight is None
                               else sample_weight, progress=progress, groups=groups)
            return dataclasses.replace(targets, digest=self.dataset_digest(
                scanned, epochs=epochs, batch_size=batch_size, sample_weight=sample_weight,
                groups=groups))
        labels = self._dataset_groups(scanned, groups)
        left_out = self.left_out(scanned["n"], labels)
        row_weights = self.weights_of(labels)
        weights = scanned["weights"] if sample_weight is None else sample_weight
        if row_weights is not None:
            weights = row_weights if weights is None else weights * row_weights
        plan = dict(epochs=self.teacher_epochs(epochs, left_out),
                    batch_size=batch_size or scanned["batch_size"], weights=weights)
        probs, kept = self._streamed_teachers(model, dataset, scanned["y"], left_out, plan,
                                              self.progress if progress is None else progress)
        digest = self.dataset_digest(scanned, epochs=epochs, batch_size=batch_size,
                                     sample_weight=sample_weight, groups=groups)
        self._warn_if_cut_short(kept if self.select_epoch else None, plan["epochs"])
        total = sum(_scatter(p, out) for p, out in zip(probs, left_out))
        return TeacherTargets(total / self.exclude, left_out, digest,
                              epochs=kept if self.select_epoch else None,
                              planned_epochs=plan["epochs"], row_weights=row_weights,
                              groups_found=None if labels is None else duplicates.summary(labels))

    def _streamed_teachers(self, model, dataset, y, left_out, plan, show):
        """The teachers trained from a dataset not held in memory: `(each teacher's
        soft labels of the rows it left out, epochs kept)`; together when they can."""
        teachers = self.make_teachers(model)
        first_x = _fit_dataset.first_inputs(dataset)
        first = _outputs(teachers[0], first_x)
        _checks.class_ids(y, first.shape[1], "E55", "SplitTeachers")
        kind, _ = predictions.decide_kind(model, first)
        stacked = self._trains_together(_stacked.stack_reason(teachers, {}, first_x))
        with _progress.Bar(plan["epochs"] if stacked else len(teachers),
                           self._plan(len(teachers), plan["epochs"]),
                           "epoch" if stacked else "teacher", enabled=show) as bar:
            if stacked:
                return self._streamed_together(teachers, dataset, y, left_out, kind, bar,
                                               first_x, **plan)
            probs, kept = [], []
            for k, teacher in enumerate(teachers):
                out, epoch = self._teacher_from_dataset(teacher, k, dataset, left_out[k], y,
                                                        kind, **plan)
                probs.append(out)
                kept.append(epoch)
                bar.update(f"teacher {k + 1}")
            return probs, kept

    def _streamed_together(self, teachers, dataset, y, left_out, kind, bar, first_x, *,
                           epochs, batch_size, weights):
        """Teachers trained together from one pass of the dataset per epoch, each on its
        own rows of every batch (the batches hold ``teachers / (teachers − exclude)``
        times `batch_size` examples, so that each teacher's share is about
        `batch_size`); `(soft labels of each teacher's left-out rows, epochs kept)`."""
        keepers = self._keepers(teachers, None, y, left_out, weights, kind)

        def after_epoch(epoch, outputs=None):
            for keeper, seen in zip(keepers, outputs or ()):
                keeper.update(seen)
            bar.update()
            return bool(keepers) and all(keeper.stopped for keeper in keepers)

        joint = -(-int(batch_size) * self.teachers // (self.teachers - self.exclude))
        stream = _fit_dataset.joint_batches(dataset, joint, self.seed, len(y), labels=y)
        inputs = _fit_dataset.indexed_inputs(dataset, labels=y)
        _stacked.train_streamed(teachers, stream, ~left_out, epochs=epochs,
                                progress=after_epoch, sample_weight=weights,
                                watch=(left_out, inputs) if keepers else None,
                                first=(first_x, y[:len(first_x)]))
        if not keepers:
            outputs = _stacked.outputs_streamed(teachers, left_out, inputs)
            probs = [_probabilities(t, None, kind, o)[1] for t, o in zip(teachers, outputs)]
            return probs, [epochs] * len(teachers)
        for keeper in keepers:
            keeper.restore()
        return [keeper.probs for keeper in keepers], [keeper.epoch for keeper in keepers]

    def _dataset_groups(self, scanned, groups):
        """`groups` of a dataset's examples: near-duplicates searched in its inputs when
        `_fit_dataset.scan` kept them, else only the given groups (and why, logged)."""
        if self.near_duplicates is not None:
            if scanned["inputs"] is not None:
                if scanned["inputs_halved"]:
                    _LOG.info("SplitTeachers: the dataset's images are searched at 1/%d of "
                              "their sides (%s pixels, moved in half pixels), to fit in "
                              "_fit_dataset.SEARCH_BYTES", 2 ** scanned["inputs_halved"],
                              " x ".join(map(str, scanned["inputs"].shape[1:3])))
                return self.groups(scanned["inputs"], groups,
                                   shift_step=duplicates.CROP_STEP if scanned["inputs_halved"]
                                   else 1)
            _LOG.warning("SplitTeachers: near-duplicates are not searched in this dataset: "
                         "%s; %s", scanned["inputs_not_kept"],
                         "only the given `groups` are left out together" if groups is not None
                         else "pass fit(..., groups=ids) to leave known copies out together")
        labels = _group_labels(groups, scanned["n"])
        return labels if labels is None else _logged(labels)

    def _teacher_from_dataset(self, teacher, k, dataset, out, y, kind, *, epochs, batch_size,
                              weights):
        """Trains teacher `k` on the examples it keeps; `(soft labels of those it left
        out, epochs trained)`."""
        keep = ~out
        data = _fit_dataset.shuffled_batches(_fit_dataset.select(dataset, keep, weights, y),
                                             batch_size, self.seed + k, keep.sum())
        x_out = _fit_dataset.inputs_of(dataset, out, labels=y)
        if not self.select_epoch:
            teacher.fit(data, epochs=epochs, verbose=0, shuffle=False)
            return _probabilities(teacher, x_out, kind)[1], epochs
        keeper = _BestEpoch(teacher, x_out, y[out], kind, self.select_epoch, self.patience,
                            None if weights is None else weights[out])
        teacher.fit(data, epochs=epochs, verbose=0, shuffle=False,
                    callbacks=[keeper.callback()])
        keeper.restore()
        return keeper.probs, keeper.epoch

    def _unlabelled_soft(self, run, public):
        """The unlabelled rows' soft labels from each teacher's outputs on them."""
        if self.unlabelled_teachers == "all":  # every teacher answers
            return np.mean([public[k] for k in range(self.teachers)], axis=0)
        # the teachers that left out each row's nearest training row
        answers = run.left_out[:, duplicates.nearest_rows(run.unlabelled, run.x)]
        total = sum(answers[k][:, None] * public[k] for k in range(self.teachers))
        return total / answers.sum(axis=0)[:, None]  # `exclude` teachers each

    def train(self, model, x, y, *, indices, epochs=1, batch_size=None, sample_weight=None,
              progress=None, groups=None, unlabelled=None):
        """Trains the teachers `indices` into `cache_dir`: one job of a job array.

        The arguments are those the model's `fit` gives `soft_labels`: the
        same training rows (without the rows `validation_split` would take),
        ``epochs``, ``batch_size`` (`None`: 32, as `fit`), ``sample_weight``,
        ``groups`` and ``unlabelled``; a teacher already in the folder is not trained again.
        When every teacher is there, `fit` reads them and trains the model
        alone (module docstring, "As a job array").

        Args:
            model: the compiled model (an `AdaMixupModel`, or its base model
                compiled the same way).
            x: the training inputs, as for `soft_labels`.
            y: their labels, as for `soft_labels`.
            indices: the teachers to train, in ``[0, teachers)``.

        Returns:
            the epoch each of them stopped at (a list).
        """
        if self.cache_dir is None:
            raise ValueError("E41: SplitTeachers.train writes teachers for a later fit to read: "
                             "give SplitTeachers(cache_dir=...) a folder.")
        indices = [_checks.integer("indices", k, low=0, code="E41") for k in np.atleast_1d(
            np.asarray(indices, dtype=object)).tolist()]
        if not indices or max(indices) >= self.teachers:
            raise ValueError(f"E41: `indices` must name teachers in [0, {self.teachers}), got "
                             f"{indices}.")
        run = self._prepare(model, x, y, epochs, batch_size, sample_weight, progress, groups,
                            unlabelled)
        return self._teacher_outputs(run, sorted(set(indices)))[1]

    def _prepare(self, model, x, y, epochs, batch_size, sample_weight, progress, groups,
                 unlabelled=None):
        """What training the teachers needs: the data, their exclusions and weights, the cache."""
        x, y, sample_weight = _arrays(x, y, sample_weight)
        unlabelled = _fit_data.unlabelled_like(unlabelled, x)
        batch_size = batch_size or 32
        _check_labels(model, y)
        labels = self.groups(x, groups)
        found = None if labels is None else duplicates.summary(labels)
        left_out = self.left_out(len(y), labels)
        epochs = self.teacher_epochs(epochs, left_out)
        row_weights = self.weights_of(labels)
        cache = None
        if self.cache_dir is not None:
            cache = _TeacherCache(self.cache_dir, self._fingerprint(
                model, x, y, sample_weight, labels, epochs, batch_size, unlabelled))
        if row_weights is not None:
            sample_weight = (row_weights if sample_weight is None
                             else (sample_weight * row_weights).astype("float32"))
        show = self.progress if progress is None else progress
        if show and found and found["grouped_rows"]:
            print("SplitTeachers: {grouped_rows} of {rows} rows are near-duplicates or share "
                  "a group ({groups} groups, the largest {largest} rows); each group is left "
                  "out of the same teachers".format(**found))
        return _Run(model, x, y, sample_weight, left_out, epochs, batch_size, show, cache,
                    unlabelled, row_weights=row_weights, groups_found=found)

    def _fingerprint(self, model, x, y, sample_weight, labels, epochs, batch_size,
                     unlabelled=None):
        """Hash of what the teachers' outputs depend on (`cache_dir`'s manifest)."""
        h = hashlib.sha256()
        for name, array in (("x", x), ("y", y), ("sample_weight", sample_weight),
                            ("groups", labels), ("unlabelled", unlabelled)):
            for leaf in ([] if array is None else keras.tree.flatten(array)):
                leaf = np.ascontiguousarray(leaf)
                h.update(f"{name}{leaf.shape}{leaf.dtype}".encode())
                h.update(leaf.tobytes())
        base = getattr(model, "base_model", model)
        settings = {k: v for k, v in self.get_config().items()
                    if k not in ("progress", "together", "cache_dir", "student_rows",
                                 "unlabelled_teachers", "label_weight")}
        described = _cache.canonical({
            "teachers": settings, "epochs": epochs, "batch_size": batch_size,
            "model": keras.saving.serialize_keras_object(base),
            "optimizer": keras.saving.serialize_keras_object(getattr(model, "optimizer", None)),
            "loss": keras.saving.serialize_keras_object(getattr(model, "loss", None))})
        h.update(json.dumps(described, default=str, sort_keys=True).encode())
        return h.hexdigest()

    def _teacher_outputs(self, run, indices):
        """`({k: out-of-fold probabilities}, [stop epoch per k], {k: probabilities on
        the unlabelled rows, or None})` of teachers `indices`: read from the cache, or
        trained (together when possible) and written to it."""
        probs, kept, public, missing = {}, {}, {}, []
        for k in indices:
            if run.cache is not None and run.cache.has(k):
                probs[k], kept[k], public[k] = run.cache.load(k, run.left_out[k],
                                                              run.unlabelled)
            else:
                missing.append(k)
        if missing:
            for k, (out, epoch, on_public) in self._train_teachers(run, missing).items():
                probs[k], kept[k], public[k] = out, epoch, on_public
                if run.cache is not None:
                    extra = {} if on_public is None else {"unlabelled": on_public}
                    _TeacherCache.save(run.cache.path(k), probs=out, left_out=run.left_out[k],
                                       epoch=np.int64(epoch), **extra)
        return probs, [kept[k] for k in indices], public

    def _train_teachers(self, run, indices):
        """Trains teachers `indices`; `{k: (probabilities on its left-out rows, epoch)}`."""
        x, y, sample_weight, epochs = run.x, run.y, run.sample_weight, run.epochs
        left_out = run.left_out[indices]
        teachers = self.make_teachers(run.model, len(indices))
        kwargs = {"epochs": epochs, "batch_size": run.batch_size}
        stacked = self._trains_together(_stacked.stack_reason(teachers, kwargs, x)
                                        or _stacked.steps_reason(~left_out, run.batch_size))
        # the kind from the model's last layer and an untrained copy's values
        first = _outputs(teachers[0], _fit_data.rows(x, slice(0, 256)))
        _checks.class_ids(y, first.shape[1], "E55", "SplitTeachers")
        kind, _ = predictions.decide_kind(run.model, first)
        keepers = self._keepers(teachers, x, y, left_out, sample_weight, kind)
        with _progress.Bar(epochs if stacked else len(teachers), self._plan(len(teachers), epochs),
                           "epoch" if stacked else "teacher",
                           enabled=run.show) as bar:
            if stacked:
                def after_epoch(epoch, outputs=None):
                    for j, keeper in enumerate(keepers):
                        keeper.update(None if outputs is None else outputs[j])
                    bar.update()
                    return bool(keepers) and all(keeper.stopped for keeper in keepers)

                # the keepers' outputs on the rows each teacher left out come
                # from the stacked models, in one call (not 16 eager ones)
                watch = list(left_out) if keepers and isinstance(x, np.ndarray) else None
                _stacked.train_together(teachers, x, y, ~left_out, epochs=epochs,
                                        batch_size=run.batch_size, seed=self.seed,
                                        progress=after_epoch, sample_weight=sample_weight,
                                        watch=watch)
            else:
                for j, teacher in enumerate(teachers):
                    keep = ~left_out[j]
                    callbacks = [keepers[j].callback()] if keepers else []
                    weights = None if sample_weight is None else sample_weight[keep]
                    teacher.fit(_fit_data.rows(x, keep), y[keep], sample_weight=weights,
                                verbose=0, callbacks=callbacks, **kwargs)
                    bar.update(f"teacher {indices[j] + 1}")
        for keeper in keepers:
            keeper.restore()
        result = {}
        for j, (k, teacher) in enumerate(zip(indices, teachers)):
            # the kept epoch's weights (restored above) label the unlabelled rows
            public = (None if run.unlabelled is None
                      else _probabilities(teacher, run.unlabelled, kind)[1])
            if keepers:
                result[k] = (keepers[j].probs, keepers[j].epoch, public)
            else:
                result[k] = (_probabilities(teacher, _fit_data.rows(x, left_out[j]), kind)[1],
                             epochs, public)
        return result

    def _trains_together(self, reason):
        """Whether the teachers train together, given why they cannot (`reason`, or
        `None`); ``together=True`` with a reason raises."""
        if self.together is True and reason is not None:
            raise ValueError(f"SplitTeachers(together=True): the teachers cannot train "
                             f"together: {reason}. Leave together='auto' to train them one "
                             "after another.")
        return self.together is not False and reason is None

    def _plan(self, count, epochs):
        """The progress bar's title: how many teachers train, for how many epochs at most."""
        return (f"SplitTeachers: {count} of {self.teachers} teachers, each row left out of "
                f"{self.exclude}, at most {epochs} epochs")

    def _keepers(self, teachers, x, y, left_out, sample_weight, kind):
        """Each teacher's `_BestEpoch` (none without `select_epoch`; `x` `None`: each
        gets its outputs from the stacked training)."""
        if not self.select_epoch:
            return []
        return [_BestEpoch(t, None if x is None else _fit_data.rows(x, out), y[out], kind,
                           self.select_epoch, self.patience,
                           None if sample_weight is None else sample_weight[out])
                for t, out in zip(teachers, left_out)]

    def get_config(self):
        return {"teachers": self.teachers, "exclude": self.exclude, "seed": self.seed,
                "together": self.together, "progress": self.progress,
                "select_epoch": self.select_epoch, "epochs": self.epochs,
                "near_duplicates": self.near_duplicates, "patience": self.patience,
                "weigh_groups": self.weigh_groups, "cache_dir": self.cache_dir,
                "student_rows": self.student_rows,
                "unlabelled_teachers": self.unlabelled_teachers, "compute": self.compute,
                "label_weight": self.label_weight,
                "image_shape": None if self.image_shape is None else list(self.image_shape)}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class _Run:
    """One training of the teachers: its data, exclusions, weights and cache."""

    def __init__(self, model, x, y, sample_weight, left_out, epochs, batch_size, show, cache,
                 unlabelled=None, row_weights=None, groups_found=None):
        self.model, self.x, self.y, self.sample_weight = model, x, y, sample_weight
        self.left_out, self.epochs, self.batch_size = left_out, epochs, batch_size
        self.show, self.cache, self.unlabelled = show, cache, unlabelled
        self.row_weights, self.groups_found = row_weights, groups_found


class _TeacherCache(_cache.CheckedFolder):
    """`SplitTeachers(cache_dir=)`: ``teacher_NNN.npz`` per teacher (its kept epoch's
    probabilities on the rows it left out, those rows, the epoch), checksummed."""

    stem = "teacher"
    label = "SplitTeachers cache"
    items = "teachers"
    belongs_elsewhere = ("another training (other data, labels, sample weights, groups, "
                         "unlabelled rows, model, compile settings, epochs, batch size or "
                         "teacher settings)")
    needs = "this training"
    redo = "that teacher trains again"
    error_id = "E41"
    elsewhere_id = "E41"

    def load(self, k, left_out, unlabelled=None):
        """Teacher `k`'s `(probabilities, epoch, probabilities on the unlabelled rows or
        None)`, verified against its left-out rows."""
        names = ("probs", "left_out", "epoch") + (() if unlabelled is None else ("unlabelled",))
        data = self.read(k, names)
        probs, stored = data["probs"], data["left_out"]
        if stored.shape != left_out.shape or not np.array_equal(stored, left_out):
            raise self.refuse(k, f"left out other rows than teacher {k} leaves out now")
        expected = [("probs", probs, int(left_out.sum()))]
        if unlabelled is not None:
            expected.append(("unlabelled", data["unlabelled"], _length(unlabelled)))
        for name, array, rows in expected:
            if array.ndim != 2 or len(array) != rows or array.dtype.kind != "f":
                raise self.refuse(k, f"holds {name} outputs of shape {array.shape} "
                                     f"({array.dtype}), not ({rows}, classes) floats")
        return probs, int(data["epoch"]), None if unlabelled is None else data["unlabelled"]


class _BestEpoch:
    """One teacher's best epoch on the examples it left out (`SplitTeachers.select_epoch`)."""

    def __init__(self, teacher, x_out, y_out, kind, by, patience=None, weights=None):
        self.teacher, self.x_out, self.kind, self.by = teacher, x_out, kind, by
        self.patience, self.stopped = patience, False
        self.y_out = predictions.as_labels(y_out, "y")
        # per-example weights of the selection (the student's sample weights), or None
        self.sample_weight = (None if weights is None or not np.sum(weights) > 0
                              else np.asarray(weights, dtype="float64"))
        self.best, self.weights, self.epoch, self.best_epoch = None, None, 0, None
        self.probs = None  # the kept epoch's soft labels on `x_out`

    def update(self, outputs=None):
        """After an epoch: `outputs` are the teacher's on `x_out` (`None`: computed here)."""
        if self.stopped:  # trained on beside the others, but its epoch is final
            return
        self.epoch += 1
        probs, soft = _probabilities(self.teacher, self.x_out, self.kind, outputs)
        w = self.sample_weight
        loss = float(np.average(predictions.cross_entropy(probs, self.y_out), weights=w))
        accuracy = float(np.average(np.argmax(probs, axis=1) == self.y_out, weights=w))
        # a key to minimize: the loss, or (−accuracy, loss)
        key = (loss,) if self.by == "loss" else (-accuracy, loss)
        if self.best is None or key < self.best:
            self.best, self.best_epoch = key, self.epoch
            self.weights = self.teacher.get_weights()
            self.probs = soft
        elif self.patience is not None and self.epoch - self.best_epoch >= self.patience:
            self.stopped = True

    def callback(self):
        keeper = self

        class _Each(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                keeper.update()
                if keeper.stopped:
                    self.model.stop_training = True

        return _Each()

    def restore(self):
        if self.weights is not None:
            self.teacher.set_weights(self.weights)


def _probabilities(model, x, kind, outputs=None):
    """`(probs, soft)`: `model`'s probabilities on `x`, ``(n, classes)`` (a
    one-output sigmoid model's as two columns ``[1 − p, p]``), and the soft
    labels they give (the same, or ``p`` alone for a one-output model);
    `outputs`: the model's outputs on `x` when already computed."""
    outputs = (_outputs(model, x) if outputs is None
               else np.asarray(outputs, dtype="float64"))
    probs = predictions.to_probabilities(outputs, predictions.resolve_kind(outputs, kind))
    return probs, (probs[:, 1:] if outputs.shape[1] == 1 else probs)


def _check_labels(model, y):
    """E55 before the near-duplicate search and the plan, where the model's
    output width is known without running it (a built model); the teachers'
    first outputs check it again in any case."""
    try:
        width = getattr(model, "base_model", model).outputs[0].shape[-1]
    except (AttributeError, IndexError, TypeError, ValueError):
        return
    if width is not None:
        _checks.class_ids(y, int(width), "E55", "SplitTeachers")


def _outputs(model, x, chunk=2048):
    """`model`'s outputs on `x` as float64, by direct calls in chunks: `predict`
    would build one tf.function per teacher, which costs more than the
    forward pass on small data and triggers TensorFlow's retracing warnings."""
    if _fit_dataset.is_dataset(x):  # batches of inputs
        parts = [keras.ops.convert_to_numpy(model(batch, training=False)) for batch in x]
        return np.concatenate(parts).astype("float64")
    n = _length(x)
    parts = [keras.ops.convert_to_numpy(
                 model(_fit_data.rows(x, slice(i, i + chunk)), training=False))
             for i in range(0, n, chunk)]
    return np.concatenate(parts).astype("float64")


def _scatter(probs, rows):
    """`probs` of the rows where `rows` is True, placed in an ``(len(rows), classes)`` array."""
    full = np.zeros((len(rows), probs.shape[1]))
    full[rows] = probs
    return full


def _logged(labels):
    """`labels` (each row's group), after logging how many rows are grouped."""
    _LOG.info("SplitTeachers: %(grouped_rows)d of %(rows)d rows in groups of "
              "near-duplicates or given groups (%(groups)d groups, the largest "
              "%(largest)d rows); each group is left out of the same teachers",
              duplicates.summary(labels))
    return labels


def _check_every_teacher(left_out, teachers, exclude, n):
    """E61: every teacher must leave out some rows (its soft labels) and keep some."""
    idle = [k + 1 for k in range(teachers) if not left_out[k].any() or left_out[k].all()]
    if idle:
        raise ValueError(
            f"E61: SplitTeachers({teachers}, {exclude}) on {n} training example(s): teacher(s) "
            f"{idle[:5]} leave out no example or keep none (too few examples or groups for "
            f"{teachers} teachers). Give more examples, or fewer teachers "
            f"(SplitTeachers(2, 1) needs 2 examples in separate groups).")


def _group_labels(groups, n):
    """Each row's group (the smallest index sharing its id) from ids, or `None`."""
    if groups is None:
        return None
    groups = np.asarray(groups).reshape(-1)
    if len(groups) != n:
        raise ValueError(f"`groups` has {len(groups)} ids for {n} training examples.")
    _, first, inverse = np.unique(groups, return_index=True, return_inverse=True)
    return first[inverse.reshape(-1)].astype("int64")


def _length(x):
    return len(keras.tree.flatten(x)[0])


def _arrays(x, y, sample_weight):
    """The teachers' training data as NumPy arrays (inputs may be a structure of
    them), checked to be arrays of one length."""
    if not _fit_data.are_arrays(x, y):
        _fit_data.require_arrays_for_teachers()
    x = keras.tree.map_structure(np.asarray, x)
    y = np.asarray(y)
    sizes = {len(leaf) for leaf in keras.tree.flatten(x)} | {len(y)}
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight, dtype="float32").reshape(-1)
        sizes.add(len(sample_weight))
    if len(sizes) != 1:
        raise ValueError(f"SplitTeachers: the inputs, labels and sample weights have "
                         f"different numbers of rows {sorted(sizes)}.")
    return x, y, sample_weight


def _without_average(optimizer):
    """A fresh copy of `optimizer` that keeps no moving average of the weights
    (``use_ema``, also inside a loss-scale wrapper): a teacher keeps the weights of
    an epoch it measured itself and is never released, and the vectorized teachers
    could not swap an average in, so one by one they would teach otherwise."""
    def plain(config):
        if isinstance(config, dict):
            return {key: (False if key == "use_ema" else plain(value))
                    for key, value in config.items()}
        return config
    return type(optimizer).from_config(plain(optimizer.get_config()))
