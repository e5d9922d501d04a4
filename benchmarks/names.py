"""Benchmark recipe names: each one an entry of `keras_adamixup.recipes.RECIPES` with options.

The benchmarks, their result files (`benchmarks/results/`) and
docs/BENCHMARKS.md name every recipe they measure by one word-string, e.g.
``teachers_plateau_16_2_ckpt_pub8000``. `parse` reads it as a table entry
and its options, so every variant measured is the package's recipe (or one of
`benchmarks.baselines`), not a copy. A name is words joined by ``_``: a
family, its words, then optional suffixes.

Families:

| name | table entry and options |
|---|---|
| ``none`` / ``checkpoint`` | ``undefended`` / ``checkpoint`` (``none_ckpt`` = ``checkpoint``) |
| ``early_stopping``, ``memguard`` | the entry of that name |
| ``label_smoothing_S``, ``dp_sgd_SIGMA``, ``relaxloss_A`` | ``label_smoothing`` (smoothing S), ``dp_sgd`` (noise multiplier SIGMA), ``relaxloss`` (target loss A) |
| ``sat_S_M[_aA][_fB]`` | ``self_adaptive``: targets move from epoch S with momentum M, mixup α A, the loss flooded at B (`benchmarks.self_adaptive`) |
| ``mixup_[WORDS_]aA`` | ``adamixup``: ``Constant(A)``, Beta coefficients, soft labels; `ADAMIXUP_WORDS` before it (``relaxmixF``: the `benchmarks.mixed_target` prototype) |
| ``adamixup_[WORDS_]SCHEDULE`` | ``adamixup`` with a `SCHEDULES` entry; `ADAMIXUP_WORDS` before it |
| ``teachers_[WORDS_]K_L`` | ``split_teachers``: K teachers, each row left out of L; `TEACHER_WORDS` (``images``: `recipe`'s ``image_shape``), ``computeC`` for ``SplitTeachers(compute=C)``, ``lwW`` for ``label_weight=W``, ``patP`` for ``patience=P`` |

Suffixes (the last words):

- ``_emaM`` (last of all, any family): the model's Adam keeps a moving average of
  its weights (``use_ema=True, ema_momentum=M``), which `fit` swaps in when it ends
  (`benchmarks.baselines.compiled`);
- ``_gceQ`` (before ``_emaM``, the package's recipes): the model trains on
  generalized cross-entropy with ``q = Q`` (`benchmarks.robust_loss`) instead
  of cross-entropy;
- ``_ckpt``: the recommended setting's `PrivacyCheckpoint`; ``_ckptacc``: one that
  keeps the epoch of best hold-out accuracy (patience 10, `CHECKPOINT_ACCURACY`);
  with ``adamixup_target_T`` a checkpoint also makes the controller
  utility-aware (accuracy budget 1 point, backing off after 3 ineffective raises);
- ``teachers_...`` only, after the checkpoint: ``_pubN`` N public rows without
  labels that the teachers label and the student trains on too (``unlabelled=``;
  `recipe` draws them with ``public(N)``); ``_pubonlyN`` the student trains on
  them alone (``student_rows="unlabelled"``); ``_pubnearN`` / ``_pubonlynearN``
  the same, each public row labelled by the teachers that left out its nearest
  member (``unlabelled_teachers="nearest"``): `PUBLIC_WORDS`.

Example:

```python
from benchmarks import names
key, options = names.parse("teachers_plateau_8_1_ckpt")
# ("split_teachers", {"teachers": 8, "exclude": 1, "mixing": "plateau", ...})
```
"""

import dataclasses

import keras_adamixup
from keras_adamixup import recipes, schedules
from benchmarks import mixed_target, robust_loss

from benchmarks import baselines  # noqa: F401  (registers DP-SGD, MemGuard, label smoothing)
from benchmarks import data

# "_ckptacc": a PrivacyCheckpoint that keeps the epoch of best hold-out accuracy instead
CHECKPOINT_ACCURACY = {"score": "accuracy", "patience": 10}
CHECKPOINTS = {"ckpt": True, "ckptacc": CHECKPOINT_ACCURACY}
PUBLIC_WORDS = {"pub": {}, "pubonly": {"student_rows": "unlabelled"},
                "pubnear": {"unlabelled_teachers": "nearest"},
                "pubonlynear": {"student_rows": "unlabelled", "unlabelled_teachers": "nearest"}}
# the teachers' words: (model options, SplitTeachers options); "swap" takes the
# data's one-hot blocks; a later word overrides an earlier one
TEACHER_WORDS = {
    "mix": ({"mixing": "paper"}, {}),  # the paper's LinearDecay(0.4, 0) on top
    "plateau": ({"mixing": "plateau", "features": "auto"}, {}),  # as the recommended setting
    "swap": ({"features": "swap"}, {}),  # each feature from the partner (blocks whole)
    "apart": ({}, {"near_duplicates": None}),  # near-duplicates left out independently
    "full": ({}, {"patience": None}),  # teachers train every epoch
    "unweighed": ({}, {"weigh_groups": False}),  # a group's rows weigh 1 each
    "acc": ({}, {"select_epoch": "accuracy"}),  # teachers' epoch of best out-of-fold accuracy
    "last": ({}, {"select_epoch": None}),  # the teachers' last epoch
    # flattened images: near-duplicates searched as images (translated), the data's shape
    "images": ({}, {"image_shape": "data"}),
}
# what the teachers do without words: lowest out-of-fold loss, patience 5, near-duplicates
# grouped and weighed as one row (images: also compared translated and cropped,
# duplicates.settings_for)
TEACHER_DEFAULTS = {"select_epoch": "loss", "near_duplicates": "auto",
                    "patience": 5, "weigh_groups": True}
# adamixup_ schedules: the words after the modifiers; "const" and "target" take a number
SCHEDULES = {
    "linear_dominant": lambda: {"schedule": schedules.LinearDecay(0.4, 0.0),
                                "label_mode": "dominant"},
    "linear_soft": lambda: {"schedule": schedules.LinearDecay(0.4, 0.0), "label_mode": "soft"},
    "floor_dominant": lambda: {"schedule": schedules.LinearDecay(0.4, 0.2),
                               "label_mode": "dominant"},
}
# adamixup_ and mixup_ modifiers, before the schedule: "focus[F]" a LossFloor("holdout",
# factor=F) (default 1), "relax[F]" a LossTarget("holdout", factor=F) (default 1),
# "relaxatT" a fixed LossTarget(T) (RelaxLoss' alpha), "relaxplateauF" a
# LossTarget("plateau", factor=F) (default 0.8), "swap" features="swap"
ADAMIXUP_WORDS = ("focus", "relax", "relaxat", "relaxmix", "relaxplateau", "swap")
# "relaxmixF" (mixup_ names): `benchmarks.mixed_target`, a prototype set from mixed
# hold-out pairs; `parse` gives its factor under this key, `recipe` its callback
MIXED_TARGET = "mixed_holdout_factor"
# "_emaM" (any name, last): `parse` gives the average's momentum M under this key
EMA = "ema_momentum"
# "_gceQ" (before "_emaM"): `parse` gives generalized cross-entropy's q under this key
GCE = "generalized_q"
# the loss suffixes, last first: word, `parse`'s key, the name's form, what the number must be
LOSS_SUFFIXES = (("ema", EMA, "_emaM", "a momentum in (0, 1)", lambda m: 0.0 < m < 1.0),
                 ("gce", GCE, "_gceQ", "a q in (0, 1]", lambda q: 0.0 < q <= 1.0))


class PublicRows(int):
    """`parse`'s placeholder for the ``_pubN`` public rows (N of them), drawn by `recipe`."""


def _number(text, name):
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{name}: {text!r} is not a number.") from None


def _split_number(word):
    """``"pubonly8000"`` → ``("pubonly", "8000")``; ``"focus"`` → ``("focus", "")``."""
    letters = word.rstrip("0123456789.")
    return letters, word[len(letters):]


def _suffixes(name):
    """`(the name's other words, checkpoint option, public options or None, loss
    options)`: the loss options hold `EMA` and `GCE` where the name has them."""
    words = name.split("_")
    public, extra = None, {}
    for word, key, form, what, valid in LOSS_SUFFIXES:
        letters, number = _split_number(words[-1])
        if letters == word and number and len(words) > 1:
            extra[key] = _number(number, name)
            if not valid(extra[key]):
                raise ValueError(f"{name}: {form} takes {what}.")
            words.pop()
    letters, count = _split_number(words[-1])
    if letters in PUBLIC_WORDS and count.isdigit() and len(words) > 1:
        public = {"unlabelled": PublicRows(int(count)), **PUBLIC_WORDS[letters]}
        words.pop()
    checkpoint = CHECKPOINTS[words.pop()] if len(words) > 1 and words[-1] in CHECKPOINTS \
        else False
    return words, checkpoint, public, extra


def _teachers(words, checkpoint, public, name):
    """``teachers_[WORDS_]K_L``: `split_teachers` options."""
    if len(words) < 2 or not (words[-2].isdigit() and words[-1].isdigit()):
        raise ValueError(f"{name}: split teachers' names end in _K_L (teachers, left out).")
    model_args, teacher_args = {"mixing": None}, dict(TEACHER_DEFAULTS)
    for word in words[:-2]:
        letters, number = _split_number(word)
        if letters in ("compute", "lw") and number:  # SplitTeachers(compute=C, label_weight=W)
            teacher_args[{"lw": "label_weight"}.get(letters, letters)] = _number(number, name)
            continue
        if letters == "pat" and number.isdigit():  # SplitTeachers(patience=P)
            teacher_args["patience"] = int(number)
            continue
        if word not in TEACHER_WORDS:
            raise ValueError(f"{name}: {word!r} is not a teachers' word "
                             f"({', '.join(TEACHER_WORDS)}).")
        model_args.update(TEACHER_WORDS[word][0])
        teacher_args.update(TEACHER_WORDS[word][1])
    if public is not None:
        model_args["unlabelled"] = public["unlabelled"]
        teacher_args.update({k: v for k, v in public.items() if k != "unlabelled"})
    return {"teachers": int(words[-2]), "exclude": int(words[-1]), "checkpoint": checkpoint,
            "teacher_args": teacher_args, **model_args}


def _modifiers(words, name):
    """The leading `ADAMIXUP_WORDS` of `words` (removed) as model options."""
    model_args = {}
    while words and _split_number(words[0])[0] in ADAMIXUP_WORDS:
        word, number = _split_number(words.pop(0))
        if word == "focus":  # only examples under F x the monitored hold-out loss are mixed
            model_args["focus"] = keras_adamixup.LossFloor("holdout", _number(number or 1, name))
        elif word == "relax":  # the mean loss held at F x the monitored hold-out loss
            model_args["relax"] = keras_adamixup.LossTarget("holdout", _number(number or 1, name))
        elif word == "relaxplateau":  # F x the hold-out loss's low, from its plateau on
            model_args["relax"] = keras_adamixup.LossTarget("plateau", _number(number or 0.8,
                                                                               name))
        elif word == "relaxat":  # the mean loss held at a fixed target (RelaxLoss)
            model_args["relax"] = keras_adamixup.LossTarget(_number(number, name))
        elif word == "relaxmix":  # a prototype: F x the mixed hold-out pairs' KL
            model_args["relax"] = keras_adamixup.LossTarget(1.0)  # set by the callback
            model_args[MIXED_TARGET] = _number(number or 1, name)
        else:
            model_args["features"] = "swap"
    return model_args


def _adamixup(words, checkpoint, name):
    """``adamixup_[focus[F]_][relax[F]_|relaxatT_][swap_]SCHEDULE``: `adamixup` options."""
    model_args = _modifiers(words, name)
    rest = "_".join(words)
    if rest in SCHEDULES:
        options = SCHEDULES[rest]()
    elif rest.startswith("const"):
        options = {"schedule": schedules.Constant(_number(rest[len("const"):], name))}
    elif len(words) == 2 and words[0] == "target":
        target = _number(words[1], name)
        # with a checkpoint, the controller is utility-aware too
        utility = {"max_accuracy_drop": 0.01, "backoff_patience": 3} if checkpoint else {}
        options = {"schedule": lambda: schedules.PrivacyTarget(target, **utility)}
    else:
        raise ValueError(f"{name}: unknown AdaMixup schedule {rest!r}; "
                         f"{', '.join(SCHEDULES)}, constS or target_T.")
    return {**options, "checkpoint": checkpoint, **model_args}


def parse(name, feature_groups=None):
    """A benchmark recipe name as an entry of the recipe table: ``(key, options)``.

    Args:
        name: a benchmark recipe name (this module's docstring has the words).
        feature_groups: the data's one-hot column blocks, swapped whole by the
            ``swap`` names (`benchmarks.data.FEATURE_GROUPS`), or `None`.

    Returns:
        ``(key, options)`` for ``keras_adamixup.recipes.recipe(key, setting,
        **options)``; a ``_pubN`` name's ``unlabelled`` option is a
        `PublicRows` count that `recipe` replaces by the rows.

    Example:

    ```python
    key, options = names.parse("adamixup_target_0.55_ckpt")
    ```
    """
    words, checkpoint, public, extra = _suffixes(name)
    key, options = _entry(name, words, checkpoint, public, feature_groups)
    return key, {**options, **extra}


def _entry(name, words, checkpoint, public, feature_groups):
    """`parse` without the ``_emaM`` suffix."""
    family, last = "_".join(words), words[-1]
    if public is not None and words[0] != "teachers":
        raise ValueError(f"{name}: only split teachers (teachers_...) take public rows.")
    if words[0] == "teachers":
        key, options = "split_teachers", _teachers(words[1:], checkpoint, public, name)
    elif words[0] == "adamixup":
        key, options = "adamixup", _adamixup(words[1:], checkpoint, name)
    elif len(words) >= 2 and words[0] == "mixup" and last.startswith("a"):
        middle = words[1:-1]
        modifiers = _modifiers(middle, name)
        if middle:  # a word that is not a modifier
            raise ValueError(f"{name}: static mixup's words are mixup_[WORDS_]aA "
                             f"({', '.join(ADAMIXUP_WORDS)}).")
        key, options = "adamixup", {
            "schedule": schedules.Constant(_number(last[1:], name)), "coefficient": "beta",
            "label_mode": "soft", "checkpoint": checkpoint, **modifiers}
    elif family in ("none", "checkpoint"):
        return ("checkpoint" if checkpoint or family == "checkpoint" else "undefended"), {}
    elif checkpoint:
        raise ValueError(f"{name}: _ckpt is for none, mixup_, adamixup_ and teachers_ names.")
    elif family in ("early_stopping", "memguard"):
        return family, {}
    elif words[0] == "sat" and len(words) in (3, 4, 5):  # sat_START_M[_aA][_fB]
        options = {"start": int(_number(words[1], name)), "momentum": _number(words[2], name)}
        for word in words[3:]:  # mixup's alpha, the flooding level
            key = {"a": "alpha", "f": "flood"}.get(word[:1])
            if key is None or key in options:
                raise ValueError(f"{name}: self-adaptive names are sat_START_M[_aA][_fB].")
            options[key] = _number(word[1:], name)
        return "self_adaptive", options
    elif "_".join(words[:-1]) in ("label_smoothing", "dp_sgd", "relaxloss"):
        option = {"label": "smoothing", "dp": "noise_multiplier", "relaxloss": "alpha"}[words[0]]
        return "_".join(words[:-1]), {option: _number(last, name)}
    else:
        raise ValueError(f"Unknown defence {name!r}: see benchmarks/names.py for the names.")
    if options.get("features") == "swap":
        options["feature_groups"] = feature_groups
    return key, options


def known(name):
    """Whether `name` is a benchmark recipe name (`parse` reads it).

    Args:
        name: a string.

    Example:

    ```python
    assert names.known("teachers_mix_16_2_ckpt") and not names.known("teachers_x")
    ```
    """
    try:
        parse(name)
    except ValueError:
        return False
    return True


def checked(text):
    """The comma-separated names of `text` (``--defences``), each `known` (else exits).

    Args:
        text: e.g. ``"none,early_stopping"``.

    Example:

    ```python
    defences = names.checked(args.defences)
    ```
    """
    listed = text.split(",")
    for name in listed:
        try:
            parse(name)
        except ValueError as error:
            raise SystemExit(f"unknown defence {name!r}: {error}") from None
    return listed


def recipe(name, inputs, classes, width, seed, validation, epochs, feature_groups=None,
           public=None, image_shape=None, monitor=True):
    """`(factory, fit_kwargs_for)` of a benchmark recipe name on the benchmarks' MLP or CNN.

    The factory returns a compiled model; ``fit_kwargs_for(x_train, y_train)``
    the arguments of its `fit` (fresh callbacks for every model, shadows
    included). Every model gets a `PrivacyMonitor` (members drawn from its own
    training data vs the validation rows), which only logs unless the recipe
    follows it, so the monitored AUC can be compared with the audit
    (``monitor=False``: only the recipes that follow one get it). A CNN's
    ``fit_kwargs_for`` puts `data.BatchNormRefresh` first among its callbacks.

    Args:
        name: a benchmark recipe name (`parse`).
        inputs, classes, width: the model's (`benchmarks.data.base_model`:
            features per row or the shape of a row; images get the CNN).
        seed: the recipe's seed.
        validation: `(x, y)` held out: the monitor's non-members, early
            stopping's validation data.
        epochs: planned epochs (batch 64).
        feature_groups: as `parse`.
        public: ``public(count)`` returns the public rows of a ``_pubN`` name
            (`benchmarks.data.public_rows`), or `None`.
        image_shape: the flattened rows' image shape, for the ``images`` word
            (`benchmarks.data.IMAGE_SHAPES`), or `None`.
        monitor: give every model a logging monitor (`True`), or only the
            recipes that need one (what a user of the recipe pays; an MLP
            recipe that needs no callbacks then has a dict of ``fit_kwargs``).

    Example:

    ```python
    factory, fit_kwargs_for = names.recipe("teachers_plateau_16_2_ckpt", 64, 10, 256, 0,
                                           validation, 60)
    ```
    """
    setting = recipes.Setting(
        base=lambda: data.base_model(inputs, classes, width), holdout=validation, seed=seed,
        monitor=monitor, fit_kwargs={"epochs": epochs, "batch_size": 64, "verbose": 0})
    key, options = parse(name, feature_groups)
    mixed = options.pop(MIXED_TARGET, None)
    if EMA in options or GCE in options:
        if key in baselines.BASELINES:
            raise ValueError(f"{name}: _emaM and _gceQ are for the package's recipes; {key} "
                             f"compiles its own optimizer and loss.")
        momentum, q = options.pop(EMA, None), options.pop(GCE, None)
        loss = None if q is None else robust_loss.GeneralizedCrossentropy(q)
        setting = dataclasses.replace(setting, compile=lambda model: baselines.compiled(
            model, loss=loss, ema_momentum=momentum))
    if isinstance(options.get("unlabelled"), PublicRows):
        if public is None:
            raise ValueError(f"{name}: this benchmark has no public rows to give.")
        options["unlabelled"] = public(options["unlabelled"])
    teacher_args = options.get("teacher_args") or {}
    if teacher_args.get("image_shape") == "data":
        if image_shape is None:
            raise ValueError(f"{name}: 'images' needs the data's image shape (flattened "
                             f"images: {', '.join(data.IMAGE_SHAPES)}).")
        options["teacher_args"] = {**teacher_args, "image_shape": tuple(image_shape)}
    made = recipes.recipe(key, setting, name=name, **options)
    fit_kwargs = made.fit_kwargs
    if len(inputs if isinstance(inputs, tuple) else (inputs,)) == 3:
        # every CNN (baselines and shadows too) ends each epoch with its
        # batch-normalization statistics re-estimated, as the defended ones do
        fit_kwargs = data.RefreshedFit(fit_kwargs)
    if mixed is not None:
        if not isinstance(options.get("schedule"), schedules.Constant):
            raise ValueError(f"{name}: relaxmix is for static mixup: mixup_relaxmixF_aA.")
        fit_kwargs = mixed_target.MixedTargetFit(fit_kwargs, validation,
                                                 options["schedule"].value, mixed)
    return made.factory, fit_kwargs
