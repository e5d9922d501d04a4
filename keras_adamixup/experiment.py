"""Train several recipes, audit each, compare: the loop of the demo and the examples.

A `Recipe` is how one model is made and trained: a name, a factory returning a
compiled model, and the arguments of `fit` (a dict, or a function of the
training data for callbacks that need it, such as a monitor). `train_and_audit`
trains every recipe on the members, saves the model, audits it
(`keras_adamixup.audit.run_audit`, with LiRA/RMIA shadows trained by the
recipe itself and, for every recipe but the baseline, also by the baseline's
recipe: an attacker may ignore the defence) and writes one comparison. The
recipes that get compared (no defence, early stopping, the paper's schedule,
split teachers, the recommended setting) are defined once, in the table of
`keras_adamixup.recipes`.

It depends on the training API and the audit; neither depends on it.

Example:

```python
recipes = [Recipe("undefended", make_plain, {"epochs": 30, "batch_size": 64}),
           Recipe("adamixup", make_defended, {"epochs": 30, "batch_size": 64})]
reports, table = train_and_audit(recipes, (x_m, y_m), (x_n, y_n), "out", lira_shadows=4)
```
"""

import dataclasses
import os
import time
import warnings
from typing import Any, Callable, Optional

import keras

import keras_adamixup
from keras_adamixup._progress import Bar


__all__ = [
    "Recipe",
    "train_and_audit",
]


@dataclasses.dataclass(frozen=True)
class Recipe:
    """One way to make and train a model.

    Args:
        name: the model's name in reports and file names.
        factory: returns a fresh compiled model.
        fit_kwargs: arguments of `fit`, or a function ``(x_train, y_train) ->
            dict`` called for every model trained (the audited one and each
            shadow), so callbacks are fresh each time.
        describe: optional ``describe(model, history, fit_kwargs) -> str``: a
            line logged after training (e.g. the epoch a checkpoint kept).

    Example:

    ```python
    recipe = keras_adamixup.experiment.Recipe(
        "defended", make_defended, fit_kwargs={"epochs": 60, "batch_size": 64})
    ```
    """

    name: str
    factory: Callable
    fit_kwargs: Any = None
    describe: Optional[Callable] = None

    def fit_arguments(self, x, y):
        kwargs = self.fit_kwargs(x, y) if callable(self.fit_kwargs) else self.fit_kwargs
        return dict(kwargs or {})


class EpochProgress(keras.callbacks.Callback):
    """A progress bar over the epochs of one `fit` (with the last loss)."""

    def __init__(self, desc):
        super().__init__()
        self.desc = desc
        self.bar = None

    def on_train_begin(self, logs=None):
        self.bar = Bar(self.params.get("epochs"), self.desc, "epoch")

    def on_epoch_end(self, epoch, logs=None):
        self.bar.update(f"loss {logs['loss']:.4f}" if logs and "loss" in logs else None)

    def on_train_end(self, logs=None):
        self.bar.close()


def _shadow_warnings(caught, name, log):
    """One line per kind of shadow warning; other warnings shown as usual."""
    counts = {"saturated": 0, "budget": 0}
    for w in caught:
        if issubclass(w.category, keras_adamixup.monitor.SaturationWarning):
            counts["saturated"] += 1
        elif issubclass(w.category, keras_adamixup.checkpoint.CheckpointWarning):
            counts["budget"] += 1
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    if counts["saturated"]:
        log(f"[{name}] {counts['saturated']} shadow model(s) ended with the controller at "
            "its maximum strength (each shadow adapts to its own training data)")
    if counts["budget"]:
        log(f"[{name}] {counts['budget']} shadow model(s) restored the least leaky epoch "
            "within the accuracy budget instead of the lowest hold-out loss "
            "(CheckpointWarning)")


def train_and_audit(recipes, members, nonmembers, out, *, lira_shadows=4, baseline=None,
                    options=None, seed=0, progress=True, log=print, metadata=None,
                    baseline_shadows=None, canaries=None):
    """Trains, saves, audits and compares every recipe; returns `(reports, table)`.

    Args:
        recipes: `Recipe`s, trained in order.
        members: `(x, y)` the models train on.
        nonmembers: `(x, y)` they never see.
        out: folder: ``<name>.keras``, ``<name>/report.*``, ``comparison.*``.
        lira_shadows: shadows per recipe (0: no LiRA/RMIA).
        baseline_shadows: shadows of the baseline recipe (default
            `lira_shadows`): an undefended recipe's shadows train together
            in one step, so 16 or more cost little and sharpen the low-FPR
            numbers (`audit.lira.ENOUGH_SHADOWS`).
        canaries: a `keras_adamixup.audit.canaries.CanarySet` planted from
            `members` (which are then `plant`'s ``x_rest, y_rest``): every
            model trains on ``canaries.add_to(*members)`` and is audited with
            them (in vs out per kind, ε).
        baseline: the recipe whose shadows attack every model as well
            (``*_plain`` attacks; default the first recipe). Its shadows are
            trained once and cached in ``out/<baseline>/lira_cache``.
        options: `keras_adamixup.audit.AuditOptions` (``progress`` follows
            `progress` unless given).
        seed: seed of every model and of the audit.
        progress: progress bars (training epochs, shadows, audit steps).
        log: where the one-line summaries go.
        metadata: extra report metadata, or a function ``(recipe, model) ->
            dict`` (e.g. the test accuracy on a held-out test set).

    Returns:
        `(reports, comparison_table)`.

    Example:

    ```python
    reports, table = keras_adamixup.experiment.train_and_audit(
        recipes, (x_train, y_train), (x_test, y_test), "compare_out", lira_shadows=8)
    print(table)
    ```
    """
    from keras_adamixup import audit

    recipes = list(recipes)
    base = _baseline_recipe(recipes, baseline)
    opts = _audit_options(options, progress, seed)
    os.makedirs(out, exist_ok=True)
    x_m, y_m = members
    x_fit, y_fit = (x_m, y_m) if canaries is None else canaries.add_to(x_m, y_m)
    reports = []
    for recipe in recipes:
        model, history, kwargs = _train_recipe(recipe, x_fit, y_fit, seed, progress, out, log)
        lira = _lira_recipes(recipe, base, lira_shadows, baseline_shadows, progress, out)
        extra = metadata(recipe, model) if callable(metadata) else dict(metadata or {})
        report = _audit_recipe(model, recipe, (x_m, y_m), nonmembers, lira, opts, extra,
                               canaries, out, log)
        _log_report(recipe, report, model, history, kwargs, log)
        reports.append(report)
    table = audit.compare(reports, out)
    return reports, table


def _baseline_recipe(recipes, baseline):
    """The recipe named `baseline` (default the first); checks the names."""
    names = [r.name for r in recipes]
    if len(set(names)) != len(names) or not names:
        raise ValueError(f"`recipes` need distinct names, got {names}.")
    base = recipes[0] if baseline is None else next(
        (r for r in recipes if r.name == baseline), None)
    if base is None:
        raise ValueError(f"`baseline` {baseline!r} is not one of {names}.")
    return base


def _audit_options(options, progress, seed):
    """`options`, or the default `AuditOptions` with `progress` and `seed`."""
    from keras_adamixup import audit

    return audit.AuditOptions.make(options, **({} if options is not None
                                               else {"progress": progress, "seed": seed}))


def _shadow_recipe(recipe, num_shadows, progress, out):
    """The `audit.ShadowRecipe` fields of `recipe`'s shadows, cached under `out`."""
    return {"model_factory": recipe.factory, "num_shadows": num_shadows,
            "fit_kwargs": recipe.fit_kwargs, "progress": progress,
            "cache_dir": os.path.join(out, recipe.name, "lira_cache")}


def _lira_recipes(recipe, base, lira_shadows, baseline_shadows, progress, out):
    """`run_audit`'s `lira`: the baseline's shadows, plus the recipe's own when it is another."""
    if not lira_shadows:
        return None
    plain = _shadow_recipe(base, lira_shadows if baseline_shadows is None else baseline_shadows,
                           progress, out)
    if recipe is base:
        return plain
    return [_shadow_recipe(recipe, lira_shadows, progress, out), {**plain, "name": "plain"}]


def _train_recipe(recipe, x_fit, y_fit, seed, progress, out, log):
    """Trains and saves `recipe`'s model; returns `(model, history, fit kwargs)`."""
    keras.utils.set_random_seed(seed)
    model = recipe.factory()
    kwargs = recipe.fit_arguments(x_fit, y_fit)
    kwargs.setdefault("verbose", 0)
    if progress:
        kwargs["callbacks"] = list(kwargs.get("callbacks") or []) + [
            EpochProgress(f"training {recipe.name}")]
    targets = getattr(model, "targets", None)  # SplitTeachers: a bar over them too
    teachers_bar = bool(progress and targets is not None and not targets.progress)
    if teachers_bar:
        targets.progress = True
    start = time.perf_counter()
    try:
        history = model.fit(x_fit, y_fit, **kwargs)
    finally:
        if teachers_bar:
            targets.progress = False
    log(f"[{recipe.name}] trained in {time.perf_counter() - start:.1f} s "
        f"({len(history.history['loss'])} epochs); auditing ...")
    model.save(os.path.join(out, f"{recipe.name}.keras"))
    return model, history, kwargs


def _audit_recipe(model, recipe, members, nonmembers, lira, opts, extra, canaries, out, log):
    """Audits one trained model and saves its report under ``out/<name>``."""
    from keras_adamixup import audit

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        warnings.simplefilter("ignore", audit.lira.FewShadowsWarning)  # in the report
        report = audit.run_audit(model, members, nonmembers, name=recipe.name,
                                 lira=lira, options=opts, metadata=extra,
                                 canaries=canaries)
    _shadow_warnings(caught, recipe.name, log)
    report.save(os.path.join(out, recipe.name))
    return report


def _log_report(recipe, report, model, history, kwargs, log):
    """Logs the report's one-line summary, and the recipe's own line if it has one."""
    from keras_adamixup import audit

    h = report.headline()
    eps = (f", canary ε ≥ {h['canary_epsilon']:.2f} ({h['canary_epsilon_kind']})"
           if "canary_epsilon" in h else "")
    log(f"[{recipe.name}] test acc {h['test_accuracy']:.4f}, best AUC "
        f"{h['best_auc']:.4f} ({h['best_auc_attack']}), TPR@1%FPR "
        f"{h['best_' + audit.roc.tpr_key(0.01)]:.4f}{eps}, audit "
        f"{report.metadata['seconds']:.1f} s")
    if recipe.describe is not None:
        line = recipe.describe(model, history, kwargs)
        if line:
            log(f"[{recipe.name}] {line}")
