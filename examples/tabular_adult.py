"""UCI Adult (census income): an MLP trained undefended and with the recommended setting, audited.

Data: ``adult.data[.gz]`` and ``adult.test[.gz]`` from ``--data-dir``
(default ``../shared/data``). Both files are pooled, rows with missing values
dropped, numeric columns standardized and categorical ones one-hot encoded
(`keras_adamixup.audit.data.adult_pool`). Members, non-members, a test set
and the defence's hold-out (its monitor) are disjoint seeded draws.

    python examples/tabular_adult.py                # 5,000 members, 60 epochs
    python examples/tabular_adult.py --quick        # 512 members, 2 epochs (tests)
"""

import argparse
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _compare import train_and_audit  # noqa: E402
from keras_adamixup.audit import data  # noqa: E402

SHARED = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"


def mlp(features, width=256):
    return keras.Sequential([
        keras.Input((features,)),
        keras.layers.Dense(width, activation="relu"),
        keras.layers.Dense(width, activation="relu"),
        keras.layers.Dense(2),
    ], name="adult_mlp")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(SHARED))
    parser.add_argument("--members", type=int, default=5000)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--lira-shadows", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="adult_out")
    parser.add_argument("--quick", action="store_true", help="512 members, 2 epochs, no LiRA")
    args = parser.parse_args(argv)
    if args.quick:
        args.members, args.epochs, args.lira_shadows = 512, 2, 0
    try:
        x, y = data.adult_pool(args.data_dir)
    except FileNotFoundError as error:
        print(f"skipped: {error} Download adult.data and adult.test from the UCI Machine "
              "Learning Repository and pass --data-dir.")
        return None
    order = np.random.default_rng(args.seed).permutation(len(x))
    n = min(args.members, len(x) // 4)
    parts = [order[i * n:(i + 1) * n] for i in range(4)]
    members, nonmembers, test, holdout = ((x[p], y[p]) for p in parts)
    print(f"Adult: {n} members, {n} non-members, {n} test and {n} hold-out rows, "
          f"{x.shape[1]} features, {args.epochs} epochs; positive rate {y.mean():.3f}")
    return train_and_audit(
        lambda: mlp(x.shape[1]), members, nonmembers, test,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        epochs=args.epochs, batch_size=64, out=args.out, seed=args.seed, quick=args.quick,
        lira_shadows=args.lira_shadows, holdout=holdout)


if __name__ == "__main__":
    main()
