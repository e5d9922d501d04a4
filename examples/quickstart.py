"""Quickstart: the same small model trained undefended and with AdaMixup.

Runs offline on scikit-learn's bundled digits (1,797 8×8 images): half the
data are the training set ("members"), the other half the test set. Prints
the train and test accuracy of both models and the mixing strength the
schedule used epoch by epoch.

    python examples/quickstart.py [--epochs 60] [--quick]
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

import keras_adamixup  # noqa: E402
from keras_adamixup.demo import digits_mlp  # noqa: E402  (a 64-256-256-10 MLP)


def load_data(seed):
    """Digits as float32 in [0, 1], split in two halves with a recorded seed."""
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    order = np.random.default_rng(seed).permutation(len(x))
    half = len(x) // 2
    train, test = order[:half], order[half:]
    return (x[train], y[train]), (x[test], y[test])


def train(model, data, epochs, batch_size=32):
    (x_train, y_train), (x_test, y_test) = data
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    start = time.perf_counter()
    history = model.fit(
        x_train, y_train, epochs=epochs, batch_size=batch_size, verbose=0,
        validation_data=(x_test, y_test),
    )
    seconds = time.perf_counter() - start
    _, train_acc = model.evaluate(x_train, y_train, verbose=0)
    _, test_acc = model.evaluate(x_test, y_test, verbose=0)
    return {"train_acc": train_acc, "test_acc": test_acc, "seconds": seconds,
            "history": history.history}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="5 epochs (for tests)")
    args = parser.parse_args(argv)
    epochs = 5 if args.quick else args.epochs
    data = load_data(args.seed)
    print(f"digits: {len(data[0][0])} train / {len(data[1][0])} test, {epochs} epochs")

    plain = train(digits_mlp(args.seed), data, epochs)
    defended_model = keras_adamixup.AdaMixupModel(
        digits_mlp(args.seed),
        schedule=keras_adamixup.schedules.LinearDecay(start=0.4, end=0.0),
        label_mode="dominant",
        seed=args.seed,
    )
    defended = train(defended_model, data, epochs)

    print(f"{'model':<12} {'train acc':>9} {'test acc':>9} {'gap':>7} {'fit s':>7}")
    for name, r in (("undefended", plain), ("AdaMixup", defended)):
        gap = r["train_acc"] - r["test_acc"]
        print(f"{name:<12} {r['train_acc']:9.4f} {r['test_acc']:9.4f} "
              f"{gap:7.4f} {r['seconds']:7.1f}")
    strengths = defended["history"]["mixup_strength"]
    shown = ", ".join(f"{s:.3f}" for s in strengths[:: max(1, len(strengths) // 6)])
    print(f"AdaMixup strength (partner share) by epoch: {shown}, ..., "
          f"{strengths[-1]:.3f}")
    return plain, defended


if __name__ == "__main__":
    main()
