"""Audit run time on 10k members + 10k non-members of MNIST (../shared/data).

Trains a small MLP on 10,000 MNIST training images (members), audits it
against 10,000 test images (non-members) with the six TF Privacy attack types
and the label-only attacks (LiRA optional: --lira-shadows), once with the
default fast trained attacks and once with TF Privacy's grid-searched ones
(the default before; --modes), and prints the times side by side with their
ratio and each mode's best AUC. Skips with a message when
../shared/data/mnist.npz is absent.

    python -m benchmarks.audit_time [--members 10000] [--modes fast,grid] [--backend loky]
"""

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_adamixup import audit  # noqa: E402

from benchmarks import common  # noqa: E402

MNIST = os.path.join(common.SHARED, "mnist.npz")


def mlp():
    model = keras.Sequential([
        keras.Input((784,)),
        keras.layers.Dense(256, activation="relu"),
        keras.layers.Dense(10),
    ])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return model


def main(argv=None):
    parser = common.parser(__doc__, members=10000, epochs=20)
    parser.add_argument("--lira-shadows", type=int, default=0)
    parser.add_argument("--backend", default=None, help="joblib backend for TF Privacy's trained attacks")
    parser.add_argument("--mnist", default=MNIST)
    parser.add_argument("--modes", default="fast,grid",
                        help="fast (the default audit) and/or grid (TF Privacy's grid search)")
    args = parser.parse_args(argv)
    if not os.path.exists(args.mnist):
        print(f"skipped: {args.mnist} not found (MNIST lives in ../shared/data on the "
              "project's machines).")
        return 0
    data = np.load(args.mnist)
    n = args.members
    xm = data["x_train"][:n].reshape(n, -1).astype("float32") / 255.0
    ym = data["y_train"][:n]
    xn = data["x_test"][:n].reshape(-1, 784).astype("float32") / 255.0
    yn = data["y_test"][:n]
    keras.utils.set_random_seed(0)
    model = mlp()
    start = time.perf_counter()
    model.fit(xm, ym, epochs=args.epochs, batch_size=128, verbose=0)
    train_s = time.perf_counter() - start
    lira = None
    if args.lira_shadows:
        lira = {"model_factory": mlp, "num_shadows": args.lira_shadows,
                "fit_kwargs": {"epochs": args.epochs, "batch_size": 128}}
    results = {}
    for mode in args.modes.split(","):
        start = time.perf_counter()
        report = audit.run_audit(model, (xm, ym), (xn, yn), lira=lira,
                                 attack_backend=args.backend, fast_attacks=(mode == "fast"))
        results[mode] = (time.perf_counter() - start, report)
        print(f"[{mode}] audit {results[mode][0]:.1f} s")
    for mode, (seconds, report) in results.items():
        best = report.best("auc")
        trained = {r["attack"]: r["auc"] for r in report.rows("entire")
                   if r["attack"] in audit.attacks.TRAINED_ATTACKS}
        print(f"{mode}: {seconds:.1f} s; best AUC {best['auc']:.4f} ({best['attack']}); "
              "trained attacks' AUC " + ", ".join(f"{k} {v:.4f}" for k, v in trained.items()))
    if {"fast", "grid"} <= set(results):
        print(f"grid / fast time: {results['grid'][0] / results['fast'][0]:.1f}x")
    print(f"\nmembers {len(xm)}, non-members {len(xn)}; training {train_s:.1f} s "
          f"(LiRA shadows: {args.lira_shadows}, backend: {args.backend})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
