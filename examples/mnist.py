"""MNIST: a small CNN trained undefended and with the recommended setting, both audited.

Data: ``../shared/data/mnist.npz`` (keras.datasets layout) when present,
``--npz PATH`` for another copy, or tensorflow-datasets ``mnist`` (needs
network access or a prepared ``--tfds-data-dir``). Members and non-members
are two disjoint draws from the 60k training images (seeded), the defence's
hold-out (its monitor) 2,000 more; the 10k test images measure accuracy.

    python examples/mnist.py                  # 5,000 members, 30 epochs, LiRA 4 shadows
    python examples/mnist.py --quick          # 256 members, 1 epoch, no LiRA (tests)
"""

import argparse
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _compare import members_and_nonmembers, subsample, train_and_audit  # noqa: E402

SHARED = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist.npz"


def load_mnist(npz=None, tfds_data_dir=None):
    """`(x_train, y_train), (x_test, y_test)`, images float32 in [0, 1], (n, 28, 28, 1)."""
    path = npz or (SHARED if SHARED.exists() else None)
    if path is not None:
        with np.load(path) as d:
            parts = (d["x_train"], d["y_train"]), (d["x_test"], d["y_test"])
    else:
        from keras_adamixup.audit import data

        parts = data.load_tfds("mnist", data_dir=tfds_data_dir)
    return tuple((x.reshape(-1, 28, 28, 1).astype("float32") / 255.0, y.astype("int64"))
                 for x, y in parts)


def cnn():
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(32, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(64, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Flatten(),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.Dense(10),
    ], name="mnist_cnn")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=5000)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--lira-shadows", type=int, default=4)
    parser.add_argument("--npz", default=None)
    parser.add_argument("--tfds-data-dir", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="mnist_out")
    parser.add_argument("--quick", action="store_true", help="256 members, 1 epoch, no LiRA")
    args = parser.parse_args(argv)
    if args.quick:
        args.members, args.epochs, args.lira_shadows = 256, 1, 0
    try:
        (x, y), test = load_mnist(args.npz, args.tfds_data_dir)
    except Exception as error:  # no local copy and no download possible
        print(f"skipped: MNIST is not available here ({type(error).__name__}: {error}). "
              "Pass --npz PATH or run where tensorflow-datasets can download.")
        return None
    members, nonmembers, holdout = members_and_nonmembers(x, y, args.members, args.seed,
                                                          holdout=2000)
    n = len(members[0])
    test = subsample(test, 500 if args.quick else len(test[0]), args.seed)
    print(f"MNIST: {n} members, {n} non-members, {len(holdout[0])} hold-out and "
          f"{len(test[0])} test images, {args.epochs} epochs")
    return train_and_audit(
        cnn, members, nonmembers, test,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        epochs=args.epochs, batch_size=64, out=args.out, seed=args.seed, quick=args.quick,
        lira_shadows=args.lira_shadows, holdout=holdout)


if __name__ == "__main__":
    main()
