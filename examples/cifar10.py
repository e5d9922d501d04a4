"""CIFAR-10: a small ResNet-style CNN trained undefended and defended, audited.

The defence is the recommended setting, which a CNN gets as its image
setting (`keras_adamixup.recommended.model`: static mixup under a loss target
set when the hold-out loss levels off; its hold-out is 2,000 training images
that are neither members nor non-members). The model has its
augmentation inside (random flips and translations), as image users write it.

Data: tensorflow-datasets ``cifar10`` (needs network access or a prepared
``--tfds-data-dir``), or ``--npz PATH`` with ``x_train, y_train, x_test,
y_test`` (uint8 images (n, 32, 32, 3), class ids). Members and non-members
are two disjoint draws from the training images (seeded); the test images
measure accuracy.

    python examples/cifar10.py                     # 10,000 members, 60 epochs
    python examples/cifar10.py --npz cifar10.npz --quick
"""

import argparse
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# TensorFlow 2.21 on a CPU: a residual network with batch normalization fitted again on
# another number of rows in the same process (the audit's shadows) crashed inside oneDNN
# (segmentation fault, "double free"), plain Keras alike; without oneDNN's custom
# operations it trains (docs/guide/distribution.md, "Crashes on a CPU")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import keras  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _compare import members_and_nonmembers, subsample, train_and_audit  # noqa: E402


def load_cifar10(npz=None, tfds_data_dir=None):
    """`(x_train, y_train), (x_test, y_test)`, float32 images in [0, 1]."""
    if npz is not None:
        with np.load(npz) as d:
            parts = (d["x_train"], d["y_train"]), (d["x_test"], d["y_test"])
    else:
        from keras_adamixup.audit import data

        parts = data.load_tfds("cifar10", data_dir=tfds_data_dir)
    return tuple((x.astype("float32") / 255.0, y.reshape(-1).astype("int64")) for x, y in parts)


def residual_block(x, filters, stride):
    shortcut = x
    x = keras.layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
    x = keras.layers.BatchNormalization()(x)
    if stride != 1 or shortcut.shape[-1] != filters:
        shortcut = keras.layers.Conv2D(filters, 1, strides=stride, use_bias=False)(shortcut)
        shortcut = keras.layers.BatchNormalization()(shortcut)
    return keras.layers.ReLU()(keras.layers.Add()([x, shortcut]))


def small_resnet(width=32):
    """Flips and translations, three stages of one residual block each (width, 2×,
    4×), global pooling."""
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.RandomFlip("horizontal")(inputs)
    x = keras.layers.RandomTranslation(0.1, 0.1)(x)
    x = keras.layers.Conv2D(width, 3, padding="same", use_bias=False)(x)
    x = keras.layers.ReLU()(keras.layers.BatchNormalization()(x))
    for filters, stride in ((width, 1), (2 * width, 2), (4 * width, 2)):
        x = residual_block(x, filters, stride)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(10)(x), name="small_resnet")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=10000)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--lira-shadows", type=int, default=4)
    parser.add_argument("--npz", default=None)
    parser.add_argument("--tfds-data-dir", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="cifar10_out")
    parser.add_argument("--quick", action="store_true",
                        help="200 members, 1 epoch, width 8, no LiRA")
    args = parser.parse_args(argv)
    if args.quick:
        args.members, args.epochs, args.width, args.lira_shadows = 200, 1, 8, 0
    try:
        (x, y), test = load_cifar10(args.npz, args.tfds_data_dir)
    except Exception as error:  # offline and no --npz
        print(f"skipped: CIFAR-10 is not available here ({type(error).__name__}: {error}). "
              "Pass --npz PATH or run where tensorflow-datasets can download.")
        return None
    members, nonmembers, holdout = members_and_nonmembers(x, y, args.members, args.seed,
                                                          holdout=2000)
    n = len(members[0])
    test = subsample(test, 200 if args.quick else len(test[0]), args.seed)
    print(f"CIFAR-10: {n} members, {n} non-members, {len(holdout[0])} hold-out and "
          f"{len(test[0])} test images, {args.epochs} epochs")
    return train_and_audit(
        lambda: small_resnet(args.width), members, nonmembers, test,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        epochs=args.epochs, batch_size=128, out=args.out, seed=args.seed, quick=args.quick,
        lira_shadows=args.lira_shadows, holdout=holdout)


if __name__ == "__main__":
    main()
