"""The recommended setting, defined once: the model and the callbacks of its `fit`.

Split teachers' out-of-fold targets (`SplitTeachers(8, 1)`, soft labels
alone; ``budget=2.0`` keeps the whole fit at twice a plain fit's rows x
epochs instead: two teachers on half the rows each; `teachers`), near-duplicates left out together
and weighed as one record, teachers that stop 3 epochs after their best (5
under a budget),
mixing on top that follows training (`PlateauDecay(0.4)`:
full strength while the hold-out loss falls, cut when it stops), inputs
swapped when they are 0/1 and interpolated otherwise (``features="auto"``),
and a `PrivacyCheckpoint` that keeps the epoch of lowest hold-out loss within
one point of the best hold-out accuracy, with the `PrivacyMonitor` that
measures it (and drives the schedule). What it buys and costs is measured in
docs/BENCHMARKS.md; the demo, the examples and the benchmarks build it from
here.

An image classifier (a base with a 2-D or 3-D convolution and no embedding)
without a budget gets the image setting instead (`IMAGES`): static mixup at α 0.4 under
``LossTarget("plateau", 0.8)``, no teachers and no checkpoint, at 1.3
plain fits' time (the monitor it needs). On a CIFAR-10 CNN split teachers are weak CNNs (8 of them
cost about 7 plain fits and the model 16 points of accuracy; two at
``budget=2.0``, 15 to 18 points), where the image setting trains level with
no defence (docs/BENCHMARKS.md, issue 41). `image_setting` says which a base gets.

Example:

```python
model = keras_adamixup.recommended.model(base, seed=0)
model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True),
              metrics=["accuracy"])
# the monitor and the checkpoint are made from validation_data
model.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=60)
```

`callbacks` makes the same monitor and checkpoint for users who want them in
hand (a `fit` that gets a monitor among its callbacks makes none).
"""

import warnings

from keras_adamixup import _stack
from keras_adamixup import _batch_norm
from keras_adamixup import _checks
from keras_adamixup import _holdout_callbacks
from keras_adamixup import schedules
from keras_adamixup.checkpoint import PrivacyCheckpoint
from keras_adamixup.model import AdaMixupModel
from keras_adamixup import relax as relax_lib
from keras_adamixup.relax import LossTarget
from keras_adamixup.teachers import SplitTeachers

__all__ = [
    "CHECKPOINT",
    "BUDGET",
    "IMAGES",
    "PLANS",
    "START",
    "TEACHERS",
    "callbacks",
    "image_setting",
    "model",
    "teachers",
]


# the teachers: each example left out of 1 of 8, each teacher stopped 3 epochs after
# its best (SplitTeachers' default is 5). Each trains on 7/8 of the rows, as 16 that
# leave out 2 do, at half their cost: on MNIST the recommended fit at 1.42x a plain
# fit's time instead of 2.28x, level in accuracy and audits on digits, MNIST (feature
# rows and image arrays) and Adult (docs/BENCHMARKS.md, "Eight teachers")
TEACHERS = {"teachers": 8, "exclude": 1, "patience": 3}
# the whole fit's training compute, in plain fits of the same model and epochs (rows x
# epochs): the model's own fit is 1, its teachers get the rest; None: no limit (8
# teachers). Not 2.0 by default: audited on the CIFAR-10 CNN it cost 15 to 18 points of
# accuracy (docs/BENCHMARKS.md, issue 41)
BUDGET = None
# the teachers by the compute they get (budget - 1): the most teachers whose every
# epoch costs at most that many of the model's epochs (teachers - exclude: each trains
# on 1 - exclude / teachers of the rows), so that they can train all the model's epochs
PLANS = ((16, 2), (8, 1), (4, 1), (3, 1), (2, 1))
# the mixing on top: PlateauDecay's starting strength (the paper's 0.4)
START = 0.4
# the checkpoint: patience on the hold-out loss, and the accuracy budget
CHECKPOINT = {"patience": 5, "max_accuracy_drop": 0.01}
# the image setting (a convolutional base, no budget): static mixup at alpha 0.4 (Beta
# coefficients, soft labels) under LossTarget("plateau", 0.8), no teachers, no
# checkpoint. Audited on the CIFAR-10 CNN with 8 undefended + 4 own-recipe shadows
# (docs/BENCHMARKS.md, "The loss target set at the plateau, audited")
IMAGES = {"schedule": 0.4, "coefficient": "beta", "label_mode": "soft", "checkpoint": None,
          "relax": {"target": "plateau", "factor": relax_lib.PLATEAU_FACTOR}}


def teachers(budget=BUDGET, seed=0):
    """The recommended `SplitTeachers` for a compute `budget`.

    Args:
        budget: the whole `fit`'s training compute, in plain fits of the same
            model and epochs (rows × epochs), > 1; the teachers get
            ``budget − 1`` (``SplitTeachers(compute=...)``): the most teachers
            (`PLANS`) whose every epoch's training costs at most that many of
            the model's epochs, each trained at most as many epochs as that
            compute allows once their measurement of the rows they left out
            is counted too (at 2.0: two teachers, 3/4 of the model's
            epochs), and stopped 5 epochs after their best. Each teacher
            trains at least one epoch: a budget just above 1 spends more
            (E63 warns).
            `None`: no limit, ``TEACHERS`` (8, each row left out of 1, each
            stopped 3 epochs after its best).
        seed: the seed of the exclusion draw.

    Example:

    ```python
    keras_adamixup.recommended.teachers(2.0)   # SplitTeachers(2, 1, compute=1.0)
    keras_adamixup.recommended.teachers(None)  # SplitTeachers(8, 1, patience=3)
    ```
    """
    if budget is None:
        return SplitTeachers(**TEACHERS, seed=seed)
    budget = _checks.number("budget", budget, code="E63")
    if budget <= 1.0:
        raise ValueError(
            f"E63: `budget` is the whole fit's training compute in plain fits, the model's "
            f"own fit included: it must be > 1 (the teachers get budget - 1), got {budget:g}. "
            "budget=2.0 gives two teachers; for no teachers at all, use "
            "AdaMixupModel(base, ...) without `targets`.")
    compute = budget - 1.0
    count, exclude = next(((k, e) for k, e in PLANS if k - e <= compute), PLANS[-1])
    return SplitTeachers(count, exclude, seed=seed, compute=compute)


# the layers that make a base an image classifier for `image_setting`: convolutions over
# two or three spatial axes (Conv1D models read sequences, often token ids)
IMAGE_CONVOLUTIONS = ("Conv2D", "Conv3D", "SeparableConv2D", "DepthwiseConv2D",
                      "Conv2DTranspose", "Conv3DTranspose")


def image_setting(base, budget=BUDGET, **overrides):
    """Whether `model` gives `base` the image setting (`IMAGES`).

    A base with a convolution over two or three spatial axes
    (`IMAGE_CONVOLUTIONS`; nested models and custom layers included) and no
    embedding layer, given no `budget` and no split teachers
    (``targets=None`` counts as none).

    Args:
        base: the Keras classifier.
        budget: `model`'s `budget`.
        **overrides: `model`'s overrides.

    Example:

    ```python
    keras_adamixup.recommended.image_setting(cnn)                # True
    keras_adamixup.recommended.image_setting(cnn, budget=2.0)    # False: 2 teachers
    ```
    """
    return (budget is None and overrides.get("targets") is None
            and _batch_norm.has_layers(base, IMAGE_CONVOLUTIONS)
            and not _batch_norm.has_layers(base, ("Embedding",)))


def model(base, seed=0, budget=BUDGET, **overrides):
    """An `AdaMixupModel` of `base` with the recommended setting (not compiled).

    Its `fit` makes the `PrivacyMonitor` and the `PrivacyCheckpoint` from
    ``validation_data`` (or ``validation_split``) when no monitor is given
    (``checkpoint=CHECKPOINT``; ``checkpoint=None`` keeps the monitor alone,
    and the model trains every planned epoch). An image model (a 2-D or
    3-D convolution, no embedding) without a budget gets the image setting
    (`IMAGES`, `image_setting`): static mixup at α 0.4 under
    ``LossTarget("plateau", 0.8)``, no teachers, the monitor alone (it sets
    the target; ``model.holdout_callbacks`` holds no checkpoint). A
    ``targets=None`` override keeps it; ``targets=SplitTeachers(...)`` or a
    `budget` gives the teachers' setting (E64 warns on an image model).

    Args:
        base: the Keras classifier to defend (logits or probabilities out).
        seed: the seed of the mixing and of the teachers' exclusion draw.
        budget: the whole `fit`'s training compute, in plain fits of the
            same model and epochs (rows × epochs); it sets the teachers
            (`teachers`): 2.0 gives them one plain fit's compute. The
            model's own mixing, refresh and monitor are not counted: on a
            CIFAR-10 CNN the whole fit took 2.33 and 2.57 plain fits' time at 2.0
            (docs/BENCHMARKS.md, "Where budget=2.0's time goes"). `None` (default,
            `BUDGET`): no limit, 8 teachers; on a convolutional base, the
            image setting. A ``targets=`` override wins.
        **overrides: any other `AdaMixupModel` argument (``name``,
            ``feature_groups``, or ``targets=SplitTeachers(...,
            cache_dir=...)`` for teachers trained as a job array).

    Example:

    ```python
    model = keras_adamixup.recommended.model(base, seed=0, name="defended")
    ```
    """
    if image_setting(base, budget, **overrides):
        settings = dict(IMAGES, relax=LossTarget(**IMAGES["relax"]), seed=seed)
    else:
        if overrides.get("targets", True) is not None:  # split teachers on images: E64
            _warn_if_image_model(base)
        settings = {"schedule": schedules.PlateauDecay(start=START), "label_mode": "dominant",
                    "features": "auto", "targets": teachers(budget, seed),
                    "seed": seed, "checkpoint": dict(CHECKPOINT)}
    settings.update(overrides)
    return AdaMixupModel(base, **settings)


def _warn_if_image_model(base):
    """E64: split teachers of an image model (a budget, or ``targets=``) cost its
    accuracy (a warning)."""
    if _batch_norm.has_layers(base, IMAGE_CONVOLUTIONS):
        warnings.warn(
            "E64: recommended.model(base, budget=...) (or targets=SplitTeachers(...)) "
            "trains split teachers before a "
            "convolutional model: on a few thousand images they are weak CNNs, each on "
            "part of the rows (2,000 CIFAR-10 images, 60 epochs: budget=2.0 cost 15 and "
            "18 points of test accuracy on two audited seeds, 8 teachers 16 points in "
            "one fit at about 7 plain fits' time). Without a budget a convolutional base "
            "gets the image setting (static mixup under LossTarget('plateau'), 1.3 "
            "plain fits' time); the 'Images' section of docs/guide/defend.md compares "
            "the settings measured.",
            stacklevel=_stack.user_level())


def callbacks(x_train, y_train, holdout, seed=0, checkpoint=None, model=None):
    """The recommended model's `fit` callbacks: a `PrivacyMonitor` and its `PrivacyCheckpoint`.

    Args:
        x_train: the training inputs (the monitor's members are drawn
            from them), or the training dataset of ``(x, y)`` batches, as
            `fit` gets it.
        y_train: their labels (`None` with a dataset).
        holdout: ``(x, y)`` held out from training, or a dataset of them: the
            monitor's non-members, whose loss drives `PlateauDecay` and the
            checkpoint.
        seed: the seed of the monitor's draw of members.
        checkpoint: `None` (default): as `model`'s own `fit` would make
            them (the image setting has no checkpoint); without `model`, a
            checkpoint. `False`: the monitor alone (it drives `PlateauDecay`,
            or sets the image setting's loss target), and the model trains
            every planned epoch. On all three benchmark data
            sets that lowered the best attack's AUC and TPR at 0.1 % FPR; canaries
            were found more often on digits and no less often on MNIST and
            Adult (docs/BENCHMARKS.md, "The student not stopped"). `True`:
            a checkpoint (`CHECKPOINT`), even for the image setting.
        model: the `AdaMixupModel` they are for, or `None`: its
            ``checkpoint=`` setting decides when `checkpoint` is `None`
            (`recommended.model` gives the image setting none).

    Make them anew for every model trained (the audited one and each shadow).
    Without them, `fit(..., validation_data=(x_val, y_val))` makes the same
    two (`recommended.model`).

    Example:

    ```python
    model.fit(x_train, y_train, epochs=60,
              callbacks=keras_adamixup.recommended.callbacks(
                  x_train, y_train, (x_val, y_val), model=model))
    ```
    """
    if model is not None and not isinstance(model, AdaMixupModel):
        raise TypeError("`model` must be the AdaMixupModel the callbacks are for "
                        f"(recommended.model(...)), got {type(model).__name__}.")
    if checkpoint is None:  # the model's own setting; without a model, a checkpoint
        checkpoint = model is None or model.checkpoint is not None
    _checks.boolean("checkpoint", checkpoint)
    monitor = _holdout_callbacks.monitor_of(x_train, y_train, holdout, seed)
    if not checkpoint:
        return [monitor]
    return [monitor, PrivacyCheckpoint(monitor, **CHECKPOINT)]
