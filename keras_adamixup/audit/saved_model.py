"""Auditing a saved model: loading it, its data, and shadows retrained like it.

What `keras-adamixup audit` does, as functions a script can call:

- `load_model(path, custom_objects)`: a `.keras` file, with one clear error
  for each way it can fail to load;
- `load_members(data, split)`: members, non-members and the rows left out of
  both (a recorded `split.json`, or a seeded split);
- `recipes_from_model(model, num_shadows, cache_dir)`: LiRA's shadow recipes
  that retrain the model's architecture with its compile settings (`FreshCopy`,
  `ShadowFit`), plus undefended shadows for an adaptive defence.

Example:

```python
from keras_adamixup.audit import run_audit, saved_model

model = saved_model.load_model("demo_out/recommended.keras")
members, nonmembers, holdout = saved_model.load_members(
    "digits", split="demo_out/split.json")
lira = saved_model.recipes_from_model(
    model, num_shadows=16, cache_dir="audit_out/lira_cache",
    population=saved_model.shadow_population(members, nonmembers), holdout=holdout)
report = run_audit(model, members, nonmembers, lira=lira)
```
"""

import importlib
import importlib.util
import os
import sys
import zipfile

import keras
import numpy as np

import keras_adamixup  # noqa: F401 - registers the package's classes (loading, shadows)
from keras_adamixup import predictions
from keras_adamixup.audit import data as data_lib
from keras_adamixup.audit.options import ShadowRecipe

__all__ = [
    "FreshCopy",
    "ShadowFit",
    "import_custom_objects",
    "load_members",
    "load_model",
    "needs_monitor",
    "recipes_from_model",
    "shadow_population",
]


class FreshCopy:
    """Makes untrained models with a model's architecture and compile settings.

    A class, not a closure, so that LiRA can send it to shadow-training
    processes (``jobs > 1``).

    Args:
        model: the model whose architecture is copied.
        compile_from: the model whose compile settings are used (default
            `model`; for an `AdaMixupModel`'s plain base model, the wrapper).

    Example:

    ```python
    factory = FreshCopy(keras.saving.load_model("model.keras"))
    shadow = factory()  # untrained, compiled like the saved model
    ```
    """

    def __init__(self, model, compile_from=None):
        compile_from = model if compile_from is None else compile_from
        self.config = keras.saving.serialize_keras_object(model)
        self.compile_config = (compile_from.get_compile_config()
                               if compile_from.compiled else None)
        if self.compile_config is None:
            raise ValueError(
                "LiRA needs the training recipe: the saved model was not compiled, so "
                "its loss and optimizer are unknown."
            )

    def __call__(self):
        fresh = keras.saving.deserialize_keras_object(self.config)
        fresh.compile_from_config(self.compile_config)
        return fresh


class ShadowFit:
    """Fit arguments of one LiRA shadow, with a fresh `PrivacyMonitor` when asked.

    A `PrivacyTarget` model cannot be trained without a monitor, whose
    non-members must be held out from *that* shadow's training data. They
    are the `holdout` rows (outside the population, as in the demo) when
    there are enough, else the population rows the shadow does not train on.
    Picklable, like `FreshCopy`.

    Args:
        epochs: epochs of every shadow.
        batch_size: batch size of the shadows' training.
        population: `(x, y)` the shadows are drawn from, or `None`: no monitor
            (a model whose schedule needs none).
        holdout: `(x, y)` rows outside the population, or `None`.
        seed: seed of the monitor's member subset.

    Example:

    ```python
    fit = ShadowFit(20, 64, population=(x_pop, y_pop), holdout=(x_out, y_out))
    recipe = audit.ShadowRecipe(FreshCopy(model), num_shadows=16, fit_kwargs=fit)
    ```
    """

    def __init__(self, epochs, batch_size, population=None, holdout=None, seed=0):
        self.epochs, self.batch_size, self.seed = epochs, batch_size, seed
        self.population, self.holdout = population, holdout
        self._population_rows = None  # row digests, computed once for every shadow

    def fingerprint(self):
        """What the shadow cache compares: a change retrains the shadows."""
        return {"epochs": self.epochs, "batch_size": self.batch_size,
                "monitor": self.population is not None,
                "holdout": None if self.holdout is None else len(self.holdout[1])}

    def __call__(self, x_train, y_train):
        kwargs = {"epochs": self.epochs, "batch_size": self.batch_size, "verbose": 0}
        if self.population is None:
            return kwargs
        from keras_adamixup.monitor import MIN_MONITOR_EXAMPLES, PrivacyMonitor

        if self.holdout is not None and len(self.holdout[1]) >= MIN_MONITOR_EXAMPLES:
            nonmembers = self.holdout
        else:
            trained = set(predictions.row_digests(x_train))
            x_pop, y_pop = self.population
            if self._population_rows is None:
                self._population_rows = predictions.row_digests(x_pop)
            out = np.array([d not in trained for d in self._population_rows])
            nonmembers = (x_pop[out], y_pop[out])
        monitor = PrivacyMonitor.from_training(x_train, y_train, nonmembers, seed=self.seed)
        return {**kwargs, "callbacks": [monitor]}


def shadow_population(members, nonmembers):
    """The `(x, y)` rows shadows are drawn from: members and non-members together.

    Args:
        members: `(x, y)`.
        nonmembers: `(x, y)`.

    Example:

    ```python
    x_pop, y_pop = shadow_population(members, nonmembers)
    ```
    """
    return (np.concatenate([members[0], nonmembers[0]]),
            np.concatenate([members[1], nonmembers[1]]))


def needs_monitor(model):
    """Why `model`'s own `fit` needs a `PrivacyMonitor` (a phrase), or `None`: a
    feedback schedule (`PrivacyTarget`, `PlateauDecay`), a loss target or floor set
    from the hold-out loss (the image setting's ``LossTarget("plateau")``), or
    ``checkpoint=`` settings.

    Args:
        model: the audited model (any Keras model: a plain one needs none).

    Example:

    ```python
    saved_model.needs_monitor(keras_adamixup.recommended.model(cnn))
    ```
    """
    from keras_adamixup import _holdout_callbacks
    from keras_adamixup.model import AdaMixupModel

    return _holdout_callbacks.needs(model) if isinstance(model, AdaMixupModel) else None


def recipes_from_model(model, num_shadows, cache_dir, *, epochs=20, batch_size=64, jobs=1,
                       together="auto", population=None, holdout=None, seed=0):
    """LiRA's shadow recipes that retrain `model`'s architecture and compile settings.

    A model whose `fit` needs a monitor (`needs_monitor`: a feedback schedule
    such as `PlateauDecay`, the image setting's ``LossTarget("plateau")``)
    gets two recipes: its own, whose shadows each get a fresh monitor, and
    undefended shadows (its base model, ``name="plain"``, cached in
    ``cache_dir + "_plain"``): each adaptive shadow adapts differently, which
    weakens LiRA without protecting (docs/guide/audit.md).

    Args:
        model: the audited model (e.g. from `load_model`).
        num_shadows: shadows per recipe (even, ≥ 2).
        cache_dir: the folder of the shadows' cache (resume; job arrays).
        epochs: epochs of every shadow.
        batch_size: batch size of the shadows' training.
        jobs: train the shadows in this many processes.
        together: ``"auto"``/``True``/``False``: train them in one compiled step.
        population: `(x, y)` the shadows are drawn from (`shadow_population`); needed
            for an adaptive model's monitors.
        holdout: `(x, y)` rows outside the population for those monitors, or
            `None`.
        seed: seed of the monitors' member subsets.

    Returns:
        A `ShadowRecipe`, or a list of two for an adaptive model.

    Example:

    ```python
    lira = recipes_from_model(model, 16, "audit_out/lira_cache",
                              population=shadow_population(members, nonmembers))
    report = audit.run_audit(model, members, nonmembers, lira=lira)
    ```
    """
    adaptive = needs_monitor(model)
    if adaptive and population is None:
        raise ValueError(f"{adaptive}: the shadows of this model need monitors too: pass "
                         "`population` (the rows the shadows are drawn from).")
    common = {"num_shadows": num_shadows, "jobs": jobs, "together": together}
    own = ShadowRecipe(FreshCopy(model), cache_dir=cache_dir, **common,
                       fit_kwargs=ShadowFit(epochs, batch_size,
                                            population if adaptive else None, holdout, seed))
    if not adaptive:
        return own
    plain = ShadowRecipe(FreshCopy(model.base_model, compile_from=model), name="plain",
                         cache_dir=cache_dir + "_plain", **common,
                         fit_kwargs=ShadowFit(epochs, batch_size))
    return [own, plain]


def load_members(data, split=None, *, data_dir=None, seed=0):
    """Members, non-members and the rows left out of both.

    Args:
        data: ``"digits"``, ``"npz:PATH"`` or ``"tfds:NAME"`` (`data.load`).
        split: a `split.json` recorded at training time, or `None`: a seeded
            split of `data` (an ``npz:`` file holds its own).
        data_dir: tensorflow-datasets' ``data_dir``.
        seed: the seed of the split without `split`.

    Returns:
        `(members, nonmembers, holdout)`, each `(x, y)`; `holdout` (the pool
        rows `split` leaves out, e.g. a monitor's hold-out) is `None` when
        there are none or without `split`.

    Example:

    ```python
    members, nonmembers, holdout = load_members("digits", "demo_out/split.json")
    ```
    """
    if not split:
        members, nonmembers = data_lib.load(data, data_dir=data_dir, seed=seed)
        return members, nonmembers, None
    x, y = data_lib.load_pool(data, data_dir=data_dir)
    recorded = data_lib.MembershipSplit.from_json(split)
    members, nonmembers = recorded.apply(x, y)
    used = np.concatenate([np.asarray(recorded.members, int),
                           np.asarray(recorded.nonmembers, int)])
    rest = np.setdiff1d(np.arange(len(x)), used)
    return members, nonmembers, ((x[rest], y[rest]) if len(rest) else None)


def import_custom_objects(sources):
    """Imports each file or module that registers a saved model's custom classes.

    Args:
        sources: paths of Python files (``path/to/layers.py``) or module
            names (``pkg.layers``); `None` for none.

    Example:

    ```python
    import_custom_objects(["my_layers.py"])
    model = keras.saving.load_model("custom.keras")
    ```
    """
    for source in sources or []:
        if source.endswith(".py") or os.sep in source:
            _import_file(source)
            continue
        try:
            importlib.import_module(source)
        except ImportError as error:
            raise ValueError(f"Custom objects module {source!r}: no such module ({error}); "
                             "give a module on the Python path or a .py file.") from None


def _import_file(source):
    if not os.path.isfile(source):
        raise ValueError(f"Custom objects file {source!r} does not exist.")
    name = "keras_adamixup_custom_" + os.path.splitext(os.path.basename(source))[0]
    spec = importlib.util.spec_from_file_location(name, source)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:  # noqa: BLE001 - the user's code may raise anything
        raise ValueError(f"Custom objects file {source!r} failed to import "
                         f"({type(error).__name__}: {error}).") from None


def load_model(path, custom_objects=None):
    """Loads a `.keras` model, with one clear `ValueError` for each way it can fail.

    Args:
        path: a `.keras` file.
        custom_objects: files or modules to import first
            (`import_custom_objects`): those that register its custom classes.

    Example:

    ```python
    model = load_model("demo_out/recommended.keras")
    model = load_model("custom.keras", custom_objects=["my_layers.py"])
    ```
    """
    import_custom_objects(custom_objects)
    _check_model_file(path)
    try:
        return keras.saving.load_model(path)
    except Exception as error:  # noqa: BLE001 - Keras raises many types here
        first = str(error).splitlines()[0] if str(error) else ""
        hint = ""
        if "Could not locate" in str(error) or "Unknown layer" in str(error):
            hint = (" It uses a class this process does not know: import the file or module "
                    "that registers it first (`custom_objects`; on the command line "
                    "--custom-objects).")
        raise ValueError(
            f"Model {path!r} could not be loaded ({type(error).__name__}: "
            f"{first}).{hint}") from None


def _check_model_file(path):
    if not os.path.exists(path):
        raise ValueError(f"Model {path!r} does not exist.")
    if os.path.isdir(path):
        raise ValueError(f"Model {path!r} is a folder; give a .keras file.")
    if path.endswith(".keras") and not zipfile.is_zipfile(path):
        raise ValueError(
            f"Model {path!r} is not a readable .keras archive (truncated, or not "
            "saved by `model.save(...keras)`).")
    if path.endswith((".h5", ".hdf5")) and zipfile.is_zipfile(path):
        raise ValueError(
            f"Model {path!r} is a .keras archive (a zip), not an HDF5 file: rename it "
            "to end in .keras.")
