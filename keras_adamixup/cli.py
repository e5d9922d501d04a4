"""The `keras-adamixup` command: `demo` and `audit`.

Every user mistake ends in one line on stderr (``error: ...``) and exit
status 2; ``--traceback`` shows the Python traceback instead.
"""

import argparse
import json
import os
import sys
import tempfile
import zipfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


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


def _load_model(path):
    import keras

    import keras_adamixup  # noqa: F401 - registers the package's classes

    if not os.path.exists(path):
        raise ValueError(f"--model {path!r} does not exist.")
    if os.path.isdir(path):
        raise ValueError(f"--model {path!r} is a folder; give a .keras file.")
    if path.endswith(".keras") and not zipfile.is_zipfile(path):
        raise ValueError(
            f"--model {path!r} is not a readable .keras archive (truncated, or not "
            "saved by `model.save(...keras)`).")
    try:
        return keras.saving.load_model(path)
    except Exception as error:  # noqa: BLE001 - Keras raises many types here
        raise ValueError(
            f"--model {path!r} could not be loaded ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''}).") from None


def _positive(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _indices(text):
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        values = None
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(
            f"must be shadow indices ≥ 0, comma-separated, got {text!r}")
    return values


def _shadows(text):
    value = int(text)
    if value < 0 or value % 2:
        raise argparse.ArgumentTypeError(f"must be 0 (no LiRA) or an even number ≥ 2, got {text}")
    return value


def _lira_recipes(args, model, population, holdout):
    """LiRA's shadow recipes for the audited model (README, "Adaptive defences")."""
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
    model = _load_model(args.model)
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

        run_demo(args.out, epochs=3, lira_shadows=2, seed=args.seed, attacks=CHEAP_ATTACKS)
    else:
        run_demo(args.out, epochs=args.epochs, lira_shadows=args.lira_shadows, seed=args.seed,
                 thorough=args.thorough)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-adamixup",
        description="Scheduled mixup against membership inference, and its audit.")
    parser.add_argument("--traceback", action="store_true",
                        help="show the Python traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="train undefended vs AdaMixup (linear schedule, PrivacyTarget) on digits, audit, compare")
    demo.add_argument("--out", default="demo_out")
    demo.add_argument("--epochs", type=_positive, default=60)
    demo.add_argument("--lira-shadows", type=_shadows, default=4)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--thorough", action="store_true", help="every attack on every slice")
    demo.add_argument("--quick", action="store_true", help="3 epochs, 2 shadows, no slow trained attacks (smoke test)")
    demo.set_defaults(run=_demo)

    aud = sub.add_parser("audit", help="audit a saved model on member/non-member data")
    aud.add_argument("--model", required=True, help="a .keras file")
    aud.add_argument("--data", required=True, help="digits | npz:PATH | tfds:NAME")
    aud.add_argument("--data-dir", default=None, help="tensorflow-datasets data_dir")
    aud.add_argument("--split", default=None, help="split.json recorded at training time")
    aud.add_argument("--out", required=True)
    aud.add_argument("--attacks", default=None,
                     help="comma-separated subset of: threshold, threshold_entropy, "
                          "logistic_regression, mlp, random_forest, knn")
    aud.add_argument("--outputs", choices=("auto", "logits", "probabilities"), default=None,
                     help="what the model outputs (default: read from its last activation, "
                          "else detected from the values)")
    aud.add_argument("--thorough", action="store_true")
    aud.add_argument("--lira-shadows", type=_shadows, default=0)
    aud.add_argument("--lira-epochs", type=_positive, default=20)
    aud.add_argument("--lira-jobs", type=_positive, default=1,
                     help="train the shadow models in this many processes")
    aud.add_argument("--lira-batch-size", type=_positive, default=64)
    aud.add_argument("--shadow-index", type=_indices, default=None,
                     help="only train these LiRA shadows (comma-separated) into --out's "
                          "cache and stop: one job of a job array")
    aud.add_argument("--lira-sequential", dest="lira_together", action="store_false",
                     help="train shadow models one after another, never together in "
                          "one compiled step")
    aud.add_argument("--seed", type=int, default=0)
    aud.set_defaults(run=_audit)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - one line for every mistake
        if args.traceback:
            raise
        known = (ValueError, ImportError, OSError, json.JSONDecodeError)
        message = str(error).strip().splitlines()[0] if str(error).strip() else ""
        if not isinstance(error, known):
            message = (f"unexpected {type(error).__name__}: {message} (run with "
                       "--traceback for details)")
        elif isinstance(error, OSError) and error.filename and error.strerror:
            message = f"{error.filename}: {error.strerror}"
        print(f"error: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
