"""The `keras-adamixup` command: `demo` and `audit`."""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class _FreshCopy:
    """Makes untrained models with a saved model's architecture and compile settings.

    A class (not a closure) so LiRA can send it to shadow-training processes.
    """

    def __init__(self, model):
        import keras

        self.config = keras.saving.serialize_keras_object(model)
        self.compile_config = model.get_compile_config() if model.compiled else None
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


def _audit(args):
    import keras

    import keras_adamixup  # noqa: F401 - registers the package's classes
    from keras_adamixup import audit

    if not os.path.exists(args.model):
        raise SystemExit(f"error: --model {args.model!r} does not exist.")
    model = keras.saving.load_model(args.model)
    if args.split:
        x, y = audit.data.load_pool(args.data, data_dir=args.data_dir)
        split = audit.data.MembershipSplit.from_json(args.split)
        members, nonmembers = split.apply(x, y)
    else:
        members, nonmembers = audit.data.load(args.data, data_dir=args.data_dir, seed=args.seed)
    lira = None
    if args.lira_shadows:
        lira = {"model_factory": _FreshCopy(model), "num_shadows": args.lira_shadows,
                "jobs": args.lira_jobs,
                "fit_kwargs": {"epochs": args.lira_epochs, "batch_size": args.lira_batch_size},
                "cache_dir": os.path.join(args.out, "lira_cache")}
    attacks = tuple(args.attacks.split(",")) if args.attacks else audit.ALL_ATTACKS
    report = audit.run_audit(model, members, nonmembers, attacks=attacks, lira=lira,
                             thorough=args.thorough, seed=args.seed,
                             metadata={"data": args.data, "split_file": args.split})
    paths = report.save(args.out)
    print(report.summary())
    print("\nwritten: " + ", ".join(paths.values()))


def _demo(args):
    from keras_adamixup.demo import run_demo

    if args.quick:
        from keras_adamixup.audit import CHEAP_ATTACKS

        run_demo(args.out, epochs=3, lira_shadows=2, seed=args.seed, attacks=CHEAP_ATTACKS)
    else:
        run_demo(args.out, epochs=args.epochs, lira_shadows=args.lira_shadows, seed=args.seed,
                 thorough=args.thorough)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="keras-adamixup",
        description="Scheduled mixup against membership inference, and its audit.")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="train undefended vs AdaMixup (linear schedule, PrivacyTarget) on digits, audit, compare")
    demo.add_argument("--out", default="demo_out")
    demo.add_argument("--epochs", type=int, default=60)
    demo.add_argument("--lira-shadows", type=int, default=4)
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
    aud.add_argument("--thorough", action="store_true")
    aud.add_argument("--lira-shadows", type=int, default=0)
    aud.add_argument("--lira-epochs", type=int, default=20)
    aud.add_argument("--lira-jobs", type=int, default=1,
                     help="train the shadow models in this many processes")
    aud.add_argument("--lira-batch-size", type=int, default=64)
    aud.add_argument("--seed", type=int, default=0)
    aud.set_defaults(run=_audit)

    args = parser.parse_args(argv)
    try:
        args.run(args)
    except (ValueError, ImportError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
