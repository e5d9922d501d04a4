"""Named recipes: the one table of ways to train a model that get compared.

The demo, the examples and the benchmarks compare the same few ways of
training a model: no defence, early stopping, the paper's schedule, split
teachers, the recommended setting. This module defines each of them once, as
a function of a `Setting` (what every recipe of one comparison shares: the
architecture, how it is compiled, the `fit` arguments, the hold-out, the seed)
that returns a `keras_adamixup.experiment.Recipe`:

| name | what it trains |
|---|---|
| ``undefended`` | the model, plain `fit` |
| ``early_stopping`` | the model, Keras' `EarlyStopping` on the hold-out's loss |
| ``checkpoint`` | the model, the recommended setting's `PrivacyCheckpoint` alone |
| ``adamixup`` | `AdaMixupModel` (by default the paper's schedule, 0.4 → 0, dominant labels) |
| ``split_teachers`` | `AdaMixupModel` on `SplitTeachers` targets, without mixing unless asked |
| ``recommended`` | `keras_adamixup.recommended`: its model and callbacks |

`recipe(key, setting, **options)` builds one; the options are the
builder's keyword arguments (e.g. ``recipe("split_teachers", setting,
mixing="plateau", teachers=8, exclude=1)``). Every callback is made fresh for
each model trained, the audited one and each shadow. `register` adds a
builder (the benchmarks add DP-SGD and MemGuard, which the package does not
ship). What each recipe buys and costs is measured in docs/BENCHMARKS.md.

Example:

```python
setting = keras_adamixup.recipes.Setting(
    base=make_mlp, fit_kwargs={"epochs": 40, "batch_size": 64}, holdout=(x_val, y_val))
recipes = [keras_adamixup.recipes.recipe(name, setting)
           for name in ("undefended", "early_stopping", "recommended")]
reports, table = keras_adamixup.experiment.train_and_audit(
    recipes, (x_members, y_members), (x_nonmembers, y_nonmembers), "compare_out")
```
"""

import dataclasses
import os
from typing import Any, Callable, Mapping, Optional

import keras

from keras_adamixup import _checks
from keras_adamixup import _fit_data
from keras_adamixup import recommended as recommended_setting
from keras_adamixup import schedules
from keras_adamixup.checkpoint import PrivacyCheckpoint
from keras_adamixup.experiment import Recipe
from keras_adamixup.model import AdaMixupModel
from keras_adamixup.monitor import PrivacyMonitor
from keras_adamixup.teachers import SplitTeachers

__all__ = [
    "CHECKPOINT_KEYS",
    "ES_PATIENCE",
    "MIXING",
    "RECIPES",
    "Setting",
    "adamixup",
    "checkpoint",
    "compile_default",
    "early_stopping",
    "recipe",
    "recommended",
    "register",
    "split_teachers",
    "undefended",
]

# Early stopping, the baseline: patience on the hold-out's loss, best weights restored.
ES_PATIENCE = 3
# the mixing on split teachers' targets: none, the paper's schedule, or PlateauDecay (as
# the recommended setting)
MIXING = (None, "paper", "plateau")


def compile_default(model):
    """Compiles `model` as every recipe does by default; returns it.

    Adam (learning rate 1e-3), sparse categorical cross-entropy from logits,
    accuracy.

    Args:
        model: the Keras model to compile.

    Example:

    ```python
    model = keras_adamixup.recipes.compile_default(make_mlp())
    ```
    """
    model.compile(keras.optimizers.Adam(1e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return model


@dataclasses.dataclass(frozen=True)
class Setting:
    """What the recipes of one comparison share.

    Args:
        base: returns a fresh, *uncompiled* Keras classifier (the
            architecture every recipe trains or wraps). May be `None` when
            every recipe gets its own ``factory=``.
        fit_kwargs: the arguments of every `fit` (``epochs``,
            ``batch_size``, ...). The recipes add their own fresh callbacks;
            callbacks given here are shared by every model trained.
        holdout: ``(x, y)`` held out from training and from the audit:
            early stopping's validation data, the monitor's non-members.
        seed: the seed of the mixing, the teachers' draw and the monitor's
            draw of members.
        compile: ``compile(model) -> model``; default Adam(1e-3), sparse
            cross-entropy from logits, accuracy.
        monitor: give every model a `PrivacyMonitor` (members drawn from its
            own training data vs `holdout`) that logs its measured leakage,
            whether or not the recipe uses it (the benchmarks compare it with
            the audit). Recipes that select an epoch have one anyway.

    Example:

    ```python
    setting = keras_adamixup.recipes.Setting(
        base=make_mlp, fit_kwargs={"epochs": 40, "batch_size": 64},
        holdout=(x_val, y_val), seed=0)
    ```
    """

    base: Optional[Callable[[], keras.Model]]
    fit_kwargs: Mapping[str, Any]
    holdout: Any
    seed: int = 0
    compile: Callable[[keras.Model], keras.Model] = compile_default
    monitor: bool = False

    def __post_init__(self):
        if self.base is not None and (not callable(self.base)
                                      or isinstance(self.base, keras.layers.Layer)):
            raise TypeError(f"`base` must be a function returning a fresh model (every "
                            f"model trained, shadows included, needs its own), got "
                            f"{self.base!r}.")
        if not isinstance(self.fit_kwargs, Mapping):
            raise TypeError(f"`fit_kwargs` must be a dict, got {self.fit_kwargs!r}.")
        _checks.seed(self.seed)
        _checks.boolean("monitor", self.monitor)

    def plain(self):
        """A fresh compiled copy of the base model."""
        return self.compile(self.base())


class _FitArguments:
    """A recipe's ``fit_kwargs(x_train, y_train)``, with fresh callbacks for every
    model: the monitor (when `setting.monitor` or `select`), the `PrivacyCheckpoint`
    of the recommended setting (`select`), Keras' `EarlyStopping` on the hold-out
    (`stop_early`). `fingerprint` names them: LiRA's shadow cache checks it (a
    function would be known by its name only, the same for every recipe)."""

    def __init__(self, setting, select, stop_early, patience, monitor, unlabelled=None):
        self.setting, self.select = setting, select
        self.stop_early, self.patience = stop_early, patience
        self.monitor = bool(setting.monitor or monitor or select)
        self.unlabelled = unlabelled

    def __call__(self, x_train, y_train):
        setting = self.setting
        kwargs = dict(setting.fit_kwargs)
        callbacks = list(kwargs.pop("callbacks", None) or [])
        if self.monitor:
            monitor = PrivacyMonitor.from_training(x_train, y_train, setting.holdout,
                                                   seed=setting.seed)
            callbacks.append(monitor)
            if self.select:
                callbacks.append(PrivacyCheckpoint(monitor, **self.select))
        if self.stop_early:
            kwargs["validation_data"] = setting.holdout
            callbacks.append(keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=self.patience, restore_best_weights=True))
        if callbacks:
            kwargs["callbacks"] = callbacks
        if self.unlabelled is not None:
            kwargs["unlabelled"] = self.unlabelled
        return kwargs

    def fingerprint(self):
        """What the arguments depend on, as JSON-able data (the hold-out's size and seed
        stand for the hold-out)."""
        plain = {k: repr(v) for k, v in self.setting.fit_kwargs.items() if k != "callbacks"}
        given = [type(c).__name__ for c in self.setting.fit_kwargs.get("callbacks") or []]
        holdout = self.setting.holdout
        described = {"made_by": "keras_adamixup.recipes", "fit_kwargs": sorted(plain.items()),
                     "callbacks": given, "monitor": self.monitor,
                     "checkpoint": self.select or None,
                     "early_stopping": self.patience if self.stop_early else None,
                     "seed": self.setting.seed, "holdout": _size(holdout)}
        if self.unlabelled is not None:
            described["unlabelled"] = _fit_data.digest(self.unlabelled, [], None)
        return described


def _size(holdout):
    """The number of hold-out examples, or `None` when it cannot be told cheaply."""
    try:
        return len(holdout[1])
    except (TypeError, IndexError, KeyError):
        return None


# what a recipe's ``checkpoint=`` may set (`PrivacyCheckpoint`'s arguments but the monitor)
CHECKPOINT_KEYS = ("target_auc", "patience", "score", "min_delta", "max_accuracy_drop")


def _checkpoint_arguments(checkpoint):
    """``checkpoint=`` as `PrivacyCheckpoint` arguments: `True` the recommended
    setting's, a dict its own, `False` / `None` none (`None` returned)."""
    if checkpoint is None or checkpoint is False:
        return None
    if checkpoint is True:
        return dict(recommended_setting.CHECKPOINT)
    if not isinstance(checkpoint, Mapping):
        raise TypeError(f"`checkpoint` must be True, False or a dict of PrivacyCheckpoint "
                        f"arguments, got {checkpoint!r}.")
    unknown = sorted(set(checkpoint) - set(CHECKPOINT_KEYS))
    if unknown:
        raise TypeError(f"`checkpoint` has {unknown}, not PrivacyCheckpoint arguments; "
                        f"known: {', '.join(CHECKPOINT_KEYS)}.")
    return dict(checkpoint)


def _fit_arguments(setting, *, select=None, stop_early=False, patience=ES_PATIENCE,
                   monitor=False, unlabelled=None):
    """`_FitArguments` (`select`: `PrivacyCheckpoint` arguments, or `None`; `monitor`:
    a `PrivacyMonitor` even without a checkpoint, as a feedback schedule needs;
    `unlabelled`: `fit`'s public rows for `SplitTeachers`), or without any of them the
    plain arguments (a dict: such a recipe's shadows can train together,
    `keras_adamixup.audit.shadow_stack`)."""
    if not (setting.monitor or select or stop_early or monitor or unlabelled is not None):
        return dict(setting.fit_kwargs)
    return _FitArguments(setting, select, stop_early, patience, monitor, unlabelled)


def _describe(trajectory=None):
    """``describe`` of a recipe: with `trajectory`, a PNG of strength and monitored
    AUC per epoch; with a checkpoint, the line naming the epoch it kept."""
    def describe(model, history, kwargs):
        if trajectory is not None:
            from keras_adamixup.monitor import plot_privacy_trajectory

            os.makedirs(os.path.dirname(trajectory) or ".", exist_ok=True)
            plot_privacy_trajectory(history, trajectory)
        kept = next((c for c in kwargs.get("callbacks", [])
                     if isinstance(c, PrivacyCheckpoint)), None)
        if kept is None or kept.best_epoch is None:
            return None
        return (f"checkpoint: kept epoch {kept.best_epoch + 1} of "
                f"{len(history.history['loss'])} (hold-out loss "
                f"{kept.best['holdout_loss']:.4f}, monitored AUC {kept.best['auc']:.4f})")
    return describe


def _schedule(schedule):
    """A fresh schedule per model: `schedule` itself, or its result when it is a
    factory (a feedback schedule's state belongs to one model)."""
    is_factory = callable(schedule) and not isinstance(
        schedule, (schedules.StrengthSchedule, schedules.FeedbackSchedule))
    return schedule() if is_factory else schedule


def _factory(setting, factory, make):
    """`factory` when given, else `make` (which builds on ``setting.base``: it must be set)."""
    if factory is not None:
        return factory
    if setting.base is None:
        raise ValueError("This recipe needs `Setting.base` (a function returning a fresh "
                         "model) or its own `factory=`.")
    return make


def _recipe(name, setting, factory, checkpoint, trajectory=None, monitor=False,
            unlabelled=None):
    select = _checkpoint_arguments(checkpoint)
    return Recipe(name, factory, _fit_arguments(setting, select=select, monitor=monitor,
                                                unlabelled=unlabelled),
                  describe=_describe(trajectory) if select or trajectory else None)


def undefended(setting, *, name="undefended", factory=None):
    """The base model with plain `fit`.

    Args:
        setting: the comparison's `Setting`.
        name: the recipe's name.
        factory: returns the compiled model instead of ``setting.plain()``.

    Example:

    ```python
    plain = keras_adamixup.recipes.undefended(setting)
    ```
    """
    return _recipe(name, setting, _factory(setting, factory, setting.plain), checkpoint=False)


def early_stopping(setting, *, patience=ES_PATIENCE, name="early_stopping", factory=None):
    """The base model with Keras' `EarlyStopping` on the hold-out's loss.

    Args:
        setting: the comparison's `Setting` (its `holdout` is the validation data).
        patience: epochs without a lower hold-out loss before stopping; the
            best weights are restored.
        name: the recipe's name.
        factory: returns the compiled model instead of ``setting.plain()``.

    Example:

    ```python
    baseline = keras_adamixup.recipes.early_stopping(setting, patience=3)
    ```
    """
    _checks.positive_int("patience", patience)
    return Recipe(name, _factory(setting, factory, setting.plain),
                  _fit_arguments(setting, stop_early=True, patience=patience))


def checkpoint(setting, *, name="checkpoint", factory=None):
    """The base model with the recommended setting's `PrivacyCheckpoint` (no target).

    Early stopping on the monitor's hold-out loss (patience 5) that keeps,
    within one point of the best hold-out accuracy, the least leaky epoch.

    Args:
        setting: the comparison's `Setting`.
        name: the recipe's name.
        factory: returns the compiled model instead of ``setting.plain()``.

    Example:

    ```python
    selected = keras_adamixup.recipes.checkpoint(setting)
    ```
    """
    return _recipe(name, setting, _factory(setting, factory, setting.plain), checkpoint=True)


def adamixup(setting, *, schedule=None, label_mode="dominant", checkpoint=False,
             name="adamixup", factory=None, unlabelled=None, **model_args):
    """The base model in an `AdaMixupModel`.

    Args:
        setting: the comparison's `Setting`.
        schedule: the strength schedule (default the paper's
            ``LinearDecay(0.4, 0.0)``), or a function returning a fresh one
            for every model (a feedback schedule such as `PrivacyTarget`).
        label_mode: ``"dominant"`` (the paper) or ``"soft"``.
        checkpoint: `True`: also the recommended setting's `PrivacyCheckpoint`
            (and its monitor); a dict: one with these arguments instead (e.g.
            ``{"score": "accuracy", "patience": 10}``); `False`: none.
        name: the recipe's name.
        factory: returns the compiled model instead (the other model
            arguments are then unused).
        unlabelled: with ``targets=SplitTeachers(...)``, public inputs
            without labels for every `fit` (``fit(..., unlabelled=)``: the
            teachers label them and the model trains on them too), or `None`.
        **model_args: any other `AdaMixupModel` argument (``features``,
            ``coefficient``, ``focus``, ``targets``, ...).

    Example:

    ```python
    paper = keras_adamixup.recipes.adamixup(setting)
    controlled = keras_adamixup.recipes.adamixup(
        setting, schedule=lambda: keras_adamixup.PrivacyTarget(0.55), checkpoint=True)
    ```
    """
    if schedule is None:
        schedule = schedules.LinearDecay(0.4, 0.0)

    def make():
        chosen = _schedule(schedule)
        return setting.compile(AdaMixupModel(setting.base(), schedule=chosen,
                                             label_mode=label_mode, seed=setting.seed,
                                             **model_args))
    # a feedback schedule (PrivacyTarget, PlateauDecay) moves with the monitor's measurements
    feedback = isinstance(_schedule(schedule), schedules.FeedbackSchedule) or any(
        getattr(model_args.get(k), "needs_monitor", False) for k in ("focus", "relax"))
    if unlabelled is not None and not isinstance(model_args.get("targets"), SplitTeachers):
        raise ValueError("`unlabelled` rows are labelled by SplitTeachers: give "
                         "`targets=SplitTeachers(...)` too.")
    return _recipe(name, setting, _factory(setting, factory, make), checkpoint=checkpoint,
                   monitor=feedback, unlabelled=unlabelled)


def split_teachers(setting, *, teachers=16, exclude=2, mixing=None, checkpoint=True,
                   name="split_teachers", teacher_args=None, factory=None, unlabelled=None,
                   **model_args):
    """The base model trained on `SplitTeachers`' out-of-fold soft labels.

    Args:
        setting: the comparison's `Setting`.
        teachers: the number of teachers.
        exclude: how many teachers leave each example (or group of
            near-duplicates) out.
        mixing: `None` (no mixing: split teachers alone), ``"paper"`` (the
            paper's ``LinearDecay(0.4, 0)``) or ``"plateau"``
            (``PlateauDecay(0.4)``, as the recommended setting).
        checkpoint: `True`: also the recommended setting's `PrivacyCheckpoint`
            (and its monitor); a dict: one with these arguments instead (e.g.
            ``{"score": "accuracy", "patience": 10}``); `False`: none.
        name: the recipe's name.
        teacher_args: other `SplitTeachers` arguments (``select_epoch``,
            ``near_duplicates``, ``patience``, ``weigh_groups``, ...).
        factory: returns the compiled model instead.
        unlabelled: public inputs without labels, or `None`: the teachers
            label them (the mean of all teachers) and the model trains on
            them beside the training rows (``fit(..., unlabelled=)``).
        **model_args: other `AdaMixupModel` arguments (``features``, ...).

    Example:

    ```python
    alone = keras_adamixup.recipes.split_teachers(setting)
    smaller = keras_adamixup.recipes.split_teachers(setting, teachers=8, exclude=1,
                                                    mixing="plateau")
    ```
    """
    if mixing not in MIXING:
        raise ValueError(f"`mixing` must be one of {MIXING}, got {mixing!r}.")
    targets = SplitTeachers(teachers, exclude, seed=setting.seed, **(teacher_args or {}))
    schedule = {None: 0.0, "paper": schedules.LinearDecay(0.4, 0.0),
                "plateau": lambda: schedules.PlateauDecay(recommended_setting.START)}[mixing]
    return adamixup(setting, schedule=schedule, label_mode="dominant", checkpoint=checkpoint,
                    name=name, factory=factory, targets=targets, unlabelled=unlabelled,
                    **model_args)


def recommended(setting, *, checkpoint=True, name="recommended", trajectory=None, factory=None,
                unlabelled=None, **overrides):
    """The recommended setting (`keras_adamixup.recommended`): its model and callbacks.

    Args:
        setting: the comparison's `Setting`.
        checkpoint: the student's `PrivacyCheckpoint`, as
            `keras_adamixup.recommended.callbacks` (`False`: the model trains
            every planned epoch; the monitor stays, it drives the mixing;
            the image setting has none).
        name: the recipe's name.
        trajectory: a PNG path for the strength and monitored AUC per epoch
            of the audited model, or `None`.
        factory: returns the compiled model instead of
            ``keras_adamixup.recommended.model(setting.base(), ...)``.
        unlabelled: public inputs without labels, or `None`: the teachers
            label them and the model trains on them too
            (``fit(..., unlabelled=)``; measured in docs/BENCHMARKS.md).
        **overrides: `keras_adamixup.recommended.model` overrides (``name``,
            ``feature_groups``, ...).

    Example:

    ```python
    defended = keras_adamixup.recipes.recommended(setting, trajectory="trajectory.png")
    ```
    """
    def make():
        return setting.compile(recommended_setting.model(setting.base(), seed=setting.seed,
                                                         **overrides))
    if factory is None and recommended_setting.image_setting(setting.base(), **overrides):
        checkpoint = False  # the image setting has none: its monitor sets the target
    return _recipe(name, setting, _factory(setting, factory, make), checkpoint=checkpoint,
                   trajectory=trajectory, monitor=True, unlabelled=unlabelled)


RECIPES = {
    "undefended": undefended,
    "early_stopping": early_stopping,
    "checkpoint": checkpoint,
    "adamixup": adamixup,
    "split_teachers": split_teachers,
    "recommended": recommended,
}
_PACKAGE = dict(RECIPES)


def register(name, builder):
    """Adds ``builder(setting, **options) -> Recipe`` to `RECIPES` under `name`.

    Args:
        name: the table's key; not one of the package's recipes, which stay
            as they are (registering a name again replaces the earlier builder).
        builder: a function of a `Setting` and keyword options returning an
            `keras_adamixup.experiment.Recipe`.

    Example:

    ```python
    keras_adamixup.recipes.register(
        "label_smoothing", lambda setting, name="label_smoothing": keras_adamixup.experiment
        .Recipe(name, make_smoothed, dict(setting.fit_kwargs)))
    ```
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"`name` must be a non-empty string, got {name!r}.")
    if not callable(builder):
        raise TypeError(f"`builder` must be a function of a Setting, got {builder!r}.")
    if name in _PACKAGE and builder is not _PACKAGE[name]:
        raise ValueError(f"{name!r} is one of the package's recipes; register yours under "
                         "another name.")
    RECIPES[name] = builder  # a name registered before (e.g. by a reloaded module) is replaced


def recipe(key, setting, **options):
    """The table's recipe `key` for `setting`.

    Args:
        key: a key of `RECIPES`.
        setting: the comparison's `Setting`.
        **options: the builder's keyword arguments (see each builder),
            ``name=`` among them (default `key`).

    Returns:
        A `keras_adamixup.experiment.Recipe`.

    Example:

    ```python
    teachers = keras_adamixup.recipes.recipe("split_teachers", setting, teachers=8, exclude=1)
    ```
    """
    if not isinstance(setting, Setting):
        raise TypeError(f"`setting` must be a keras_adamixup.recipes.Setting, got {setting!r}.")
    if key not in RECIPES:
        raise ValueError(f"Unknown recipe {key!r}; the table has {', '.join(RECIPES)}.")
    options.setdefault("name", key)
    return RECIPES[key](setting, **options)
