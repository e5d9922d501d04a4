"""The `keras-adamixup` commands, `demo` and `audit` (arguments: `keras_adamixup_cli`).

The parser and the one-line error reporting live in the top-level module
`keras_adamixup_cli`, which imports this module (and with it Keras and
TensorFlow) only when a command runs; `main` and `build_parser` are the
same functions, re-exported here.
"""

import importlib
import importlib.util
import os
import sys
import tempfile
import zipfile

from keras_adamixup_cli import build_parser, main  # noqa: F401 - the same entry point


class _FreshCopy:
    """Makes untrained models with a saved model's architecture and compile settings.

    A class (not a closure) so LiRA can send it to shadow-training processes.

    Args:
        model: the model whose architecture is copied.
        compile_from: the model whose compile settings are used (default
            `model`; for an `AdaMixupModel`'s plain base model, the wrapper).
    """

    def __init__(self, model, compile_from=None):
        import keras

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
        import keras

        import keras_adamixup  # noqa: F401 - registers the package's classes

        fresh = keras.saving.deserialize_keras_object(self.config)
        fresh.compile_from_config(self.compile_config)
        return fresh


class _ShadowFit:
    """Fit arguments of one LiRA shadow, with a fresh `PrivacyMonitor` when the recipe has one.

    A `PrivacyTarget` model cannot be trained without a monitor, whose
    non-members must be held out from *that* model's training data. For a
    shadow they are the pool rows the recorded split left out of the audit
    (the monitor hold-out, as in the demo) when there are enough, else the
    population rows the shadow does not train on.

    Args:
        epochs, batch_size: as in `fit`.
        population: `(x, y)` the shadows are drawn from, or `None` (no monitor).
        holdout: `(x, y)` rows outside the population, or `None`.
        seed: seed of the monitor's member subset.
    """

    def __init__(self, epochs, batch_size, population=None, holdout=None, seed=0):
        self.epochs, self.batch_size, self.seed = epochs, batch_size, seed
        self.population, self.holdout = population, holdout
        self._population_rows = None  # row digests, computed once for every shadow

    def fingerprint(self):
        return {"epochs": self.epochs, "batch_size": self.batch_size,
                "monitor": self.population is not None,
                "holdout": None if self.holdout is None else len(self.holdout[1])}

    def __call__(self, x_train, y_train):
        import numpy as np

        import keras_adamixup
        from keras_adamixup import predictions

        kwargs = {"epochs": self.epochs, "batch_size": self.batch_size, "verbose": 0}
        if self.population is None:
            return kwargs
        from keras_adamixup.monitor import MIN_MONITOR_EXAMPLES

        if self.holdout is not None and len(self.holdout[1]) >= MIN_MONITOR_EXAMPLES:
            nonmembers = self.holdout
        else:
            trained = set(predictions.row_digests(x_train))
            x_pop, y_pop = self.population
            if self._population_rows is None:
                self._population_rows = predictions.row_digests(x_pop)
            out = np.array([d not in trained for d in self._population_rows])
            nonmembers = (x_pop[out], y_pop[out])
        monitor = keras_adamixup.PrivacyMonitor.from_training(
            x_train, y_train, nonmembers, seed=self.seed)
        return {**kwargs, "callbacks": [monitor]}


def _check_writable(folder):
    """Fails now, not after the audit, when `folder` cannot be written."""
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as error:
        raise ValueError(f"--out {folder!r} is not writable: {error.strerror or error}.") from None


def _import_custom_objects(sources):
    """Imports each ``--custom-objects`` file or module (it registers its classes)."""
    for source in sources or []:
        if source.endswith(".py") or os.sep in source:
            if not os.path.isfile(source):
                raise ValueError(f"--custom-objects {source!r} does not exist.")
            name = "keras_adamixup_custom_" + os.path.splitext(os.path.basename(source))[0]
            spec = importlib.util.spec_from_file_location(name, source)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            try:
                spec.loader.exec_module(module)
            except Exception as error:  # noqa: BLE001 - the user's code may raise anything
                raise ValueError(f"--custom-objects {source!r} failed to import "
                                 f"({type(error).__name__}: {error}).") from None
        else:
            try:
                importlib.import_module(source)
            except ImportError as error:
                raise ValueError(f"--custom-objects {source!r}: no such module ({error}); "
                                 "give a module on the Python path or a .py file.") from None


def _load_model(path, custom_objects=None):
    import keras

    import keras_adamixup  # noqa: F401 - registers the package's classes

    _import_custom_objects(custom_objects)
    if not os.path.exists(path):
        raise ValueError(f"--model {path!r} does not exist.")
    if os.path.isdir(path):
        raise ValueError(f"--model {path!r} is a folder; give a .keras file.")
    if path.endswith(".keras") and not zipfile.is_zipfile(path):
        raise ValueError(
            f"--model {path!r} is not a readable .keras archive (truncated, or not "
            "saved by `model.save(...keras)`).")
    if path.endswith((".h5", ".hdf5")) and zipfile.is_zipfile(path):
        raise ValueError(
            f"--model {path!r} is a .keras archive (a zip), not an HDF5 file: rename it "
            "to end in .keras.")
    try:
        return keras.saving.load_model(path)
    except Exception as error:  # noqa: BLE001 - Keras raises many types here
        first = str(error).splitlines()[0] if str(error) else ""
        hint = ""
        if "Could not locate" in str(error) or "Unknown layer" in str(error):
            hint = (" It uses a class this process does not know: give the file or module "
                    "that registers it with --custom-objects.")
        raise ValueError(
            f"--model {path!r} could not be loaded ({type(error).__name__}: "
            f"{first}).{hint}") from None


def _lira_recipes(args, model, population, holdout):
    """LiRA's shadow recipes for the audited model.

    docs/guide/audit.md, "Adaptive defences need a second shadow recipe".
    """
    schedule = getattr(model, "schedule", None)
    from keras_adamixup.schedules import FeedbackSchedule

    adaptive = isinstance(schedule, FeedbackSchedule)
    together = "auto" if args.lira_together else False
    own = {"model_factory": _FreshCopy(model), "num_shadows": args.lira_shadows,
           "jobs": args.lira_jobs, "together": together,
           "fit_kwargs": _ShadowFit(args.lira_epochs, args.lira_batch_size,
                                    population if adaptive else None, holdout, args.seed),
           "cache_dir": os.path.join(args.out, "lira_cache")}
    if not adaptive:
        return own
    # An adaptive defence is also attacked with undefended shadows: its own
    # shadows each adapt differently, which weakens LiRA without protecting.
    plain = {"model_factory": _FreshCopy(model.base_model, compile_from=model),
             "num_shadows": args.lira_shadows, "jobs": args.lira_jobs,
             "together": together,
             "fit_kwargs": _ShadowFit(args.lira_epochs, args.lira_batch_size),
             "cache_dir": os.path.join(args.out, "lira_cache_plain"), "name": "plain"}
    return [own, plain]


def _audit(args):
    import numpy as np

    from keras_adamixup import audit

    _check_writable(args.out)
    model = _load_model(args.model, args.custom_objects)
    holdout = None
    if args.split:
        x, y = audit.data.load_pool(args.data, data_dir=args.data_dir)
        split = audit.data.MembershipSplit.from_json(args.split)
        members, nonmembers = split.apply(x, y)
        rest = np.setdiff1d(np.arange(len(x)), np.concatenate(
            [np.asarray(split.members, int), np.asarray(split.nonmembers, int)]))
        holdout = (x[rest], y[rest]) if len(rest) else None
    else:
        members, nonmembers = audit.data.load(args.data, data_dir=args.data_dir, seed=args.seed)
    lira = None
    if args.lira_shadows:
        population = (np.concatenate([members[0], nonmembers[0]]),
                      np.concatenate([members[1], nonmembers[1]]))
        lira = _lira_recipes(args, model, population, holdout)
    if args.shadow_index is not None:
        if lira is None:
            raise ValueError("--shadow-index trains LiRA shadows: give --lira-shadows too.")
        bad = [i for i in args.shadow_index if i >= args.lira_shadows]
        if bad:
            raise ValueError(f"--shadow-index {bad[0]} is outside 0 … {args.lira_shadows - 1} "
                             f"(--lira-shadows {args.lira_shadows}).")
        count = audit.train_shadows(members, nonmembers, lira, args.shadow_index,
                                    seed=args.seed)
        print(f"shadow(s) {','.join(map(str, args.shadow_index))}: {count} cached in "
              f"{args.out} (run the audit without --shadow-index once every job is done)")
        return
    attacks = tuple(args.attacks.split(",")) if args.attacks else audit.ALL_ATTACKS
    report = audit.run_audit(model, members, nonmembers, attacks=attacks, lira=lira,
                             thorough=args.thorough, seed=args.seed, outputs=args.outputs,
                             progress=True,
                             metadata={"data": args.data, "split_file": args.split})
    paths = report.save(args.out)
    print(report.summary())
    print("\nwritten: " + ", ".join(paths.values()))


def _demo(args):
    from keras_adamixup.demo import run_demo

    _check_writable(args.out)
    if args.quick:
        from keras_adamixup.audit import CHEAP_ATTACKS

        run_demo(args.out, epochs=3, lira_shadows=2, seed=args.seed, attacks=CHEAP_ATTACKS,
                 plain_shadows=2, canaries=10, paper_schedule=args.paper_schedule)
    else:
        run_demo(args.out, epochs=args.epochs, lira_shadows=args.lira_shadows, seed=args.seed,
                 thorough=args.thorough, plain_shadows=args.plain_shadows,
                 canaries=args.canaries, paper_schedule=args.paper_schedule)


COMMANDS = {"demo": _demo, "audit": _audit}
