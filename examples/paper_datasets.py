"""The AdaMixup paper's data sets: the recommended setting against the baselines.

MNIST, CIFAR-10, LFW and STL-10 (arXiv 2501.02182 evaluates on these), loaded
through tensorflow-datasets (network access or a prepared ``--tfds-data-dir``)
or from ``--npz PATH`` (``x``, ``y``: the whole pool; or ``x_train``,
``y_train``, ``x_test``, ``y_test`` as keras.datasets saves them, pooled). Images are scaled to
[0, 1] and resized to ``--image-size``; LFW keeps the people with at least
``--min-per-class`` photos (20: 62 people), its labels are their names.

From the pool (seeded): members, as many non-members, and a hold-out for
early stopping and the monitor. A small CNN (three conv–BN–ReLU stages,
global pooling) is trained four ways and audited with
`keras_adamixup.experiment.train_and_audit` (the demo's loop):

- ``undefended``;
- ``early_stopping`` on the hold-out's loss (patience 3, best weights);
- ``adamixup``: the paper's schedule (partner share 0.4 → 0, dominant labels);
- ``recommended``: the recommended setting (`keras_adamixup.recommended`):
  out-of-fold soft labels of K teachers, each member left out of L of them
  (`keras_adamixup.SplitTeachers`; ``--teachers K,L``, default 16,2), with
  `PlateauDecay` mixing on top, a `PrivacyMonitor` and a `PrivacyCheckpoint`
  (patience 5, budget 1 point).
  Its shadows train their own teachers: it takes several times as long as
  the others.

    python examples/paper_datasets.py --dataset stl10 --members 2500 --epochs 40
    python examples/paper_datasets.py --dataset lfw --image-size 64
    python examples/paper_datasets.py --dataset cifar10 --npz cifar_pool.npz --quick
    python examples/paper_datasets.py --dataset mnist --npz mnist_pool.npz --teachers 8,1
"""

import argparse
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_adamixup  # noqa: E402
from keras_adamixup import audit  # noqa: E402
from keras_adamixup import recipes as recipes_table  # noqa: E402
from keras_adamixup.experiment import train_and_audit  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

DATASETS = ("mnist", "cifar10", "lfw", "stl10")


def _resize(x, size):
    import tensorflow as tf

    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., None]
    x = x.astype("float32") / (255.0 if x.max() > 1.0 else 1.0)
    if x.shape[1:3] != (size, size):
        x = np.concatenate([tf.image.resize(x[i:i + 512], (size, size)).numpy()
                            for i in range(0, len(x), 512)])
    return x


def load_pool(dataset, tfds_data_dir=None, npz=None, image_size=32, min_per_class=20):
    """All examples of `dataset` as `(x float32 (n, size, size, c), y int64)`."""
    if npz is not None:
        with np.load(npz) as d:
            if "x" in d:
                x, y = d["x"], d["y"]
            else:  # keras.datasets' convention: the pool is train and test together
                x = np.concatenate([d["x_train"], d["x_test"]])
                y = np.concatenate([d["y_train"], d["y_test"]])
    else:
        import tensorflow_datasets as tfds

        splits = ("train",) if dataset == "lfw" else ("train", "test")
        xs, ys = [], []
        for split in splits:
            ds = tfds.load(dataset, split=split, data_dir=tfds_data_dir)
            for example in tfds.as_numpy(ds):
                xs.append(example["image"])
                ys.append(example["label"])
        x, y = np.stack(xs), np.asarray(ys)
    if y.dtype.kind in "OSU":  # LFW: names → ids, people with enough photos
        names, y = np.unique(y, return_inverse=True)
        counts = np.bincount(y)
        keep = counts[y] >= min_per_class
        x, y = x[keep], y[keep]
        _, y = np.unique(y, return_inverse=True)
    return _resize(x, image_size), np.asarray(y).reshape(-1).astype("int64")


def small_cnn(input_shape, classes, width=32):
    """Three conv–BN–ReLU stages. BN momentum 0.9, not Keras' 0.99: with a few
    thousand members an epoch is a few dozen steps, and the slower moving
    statistics leave the inference-mode model near chance for the first
    epochs, which early stopping on the hold-out loss would then keep."""
    inputs = keras.Input(input_shape)
    h = inputs
    for filters in (width, 2 * width, 4 * width):
        h = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(h)
        h = keras.layers.ReLU()(keras.layers.BatchNormalization(momentum=0.9)(h))
        h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    return keras.Model(inputs, keras.layers.Dense(classes)(h), name="small_cnn")


def split(x, y, members, seed):
    """Members, as many non-members, and a hold-out (a quarter of the members, ≥ 128)."""
    order = np.random.default_rng(seed).permutation(len(x))
    n = min(members, len(x) * 2 // 5)
    h = max(n // 4, 128)
    parts = order[:n], order[n:2 * n], order[2 * n:2 * n + h]
    return [(x[p], y[p]) for p in parts]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=DATASETS, default="stl10")
    parser.add_argument("--members", type=int, default=2500)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--min-per-class", type=int, default=20, help="LFW only")
    parser.add_argument("--lira-shadows", type=int, default=4)
    parser.add_argument("--npz", default=None, help="the pool as x, y arrays")
    parser.add_argument("--tfds-data-dir", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--teachers", default="16,2", metavar="K,L",
                        help="the recommended setting's SplitTeachers: K teachers, each "
                             "member left out of L (default 16,2; --quick: 4,1)")
    parser.add_argument("--out", default=None)
    parser.add_argument("--quick", action="store_true",
                        help="200 members, 2 epochs, width 8, 2 shadows, cheap attacks")
    args = parser.parse_args(argv)
    if args.quick:
        args.members, args.epochs, args.width, args.lira_shadows = 200, 2, 8, 2
        args.teachers = "4,1"
    out = args.out or f"{args.dataset}_out"
    try:
        x, y = load_pool(args.dataset, args.tfds_data_dir, args.npz, args.image_size,
                         args.min_per_class)
    except Exception as error:  # noqa: BLE001 - offline tfds raises many types
        print(f"skipped: {args.dataset} is not available here ({type(error).__name__}: "
              f"{str(error).splitlines()[0] if str(error) else ''}). Pass --npz PATH or a "
              "prepared --tfds-data-dir.")
        return None
    classes = int(y.max()) + 1
    members, nonmembers, holdout = split(x, y, args.members, args.seed)
    print(f"{args.dataset}: {len(members[0])} members, {len(nonmembers[0])} non-members, "
          f"{len(holdout[0])} hold-out, {classes} classes, images {x.shape[1:]}, "
          f"{args.epochs} epochs")
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def compile_model(model):
        model.compile(keras.optimizers.Adam(1e-3), loss, metrics=["accuracy"])
        return model

    teachers, exclude = (int(v) for v in args.teachers.split(","))
    # the package's table of recipes: no defence, early stopping, the paper's
    # schedule, the recommended setting (here with --teachers)
    setting = recipes_table.Setting(
        base=lambda: small_cnn(x.shape[1:], classes, args.width),
        fit_kwargs={"epochs": args.epochs, "batch_size": args.batch_size, "verbose": 0},
        holdout=holdout, seed=args.seed, compile=compile_model)
    recipes = [recipes_table.undefended(setting), recipes_table.early_stopping(setting),
               recipes_table.adamixup(setting),
               recipes_table.recommended(setting, targets=keras_adamixup.SplitTeachers(
                   teachers, exclude, seed=args.seed))]
    options = audit.AuditOptions(
        attacks=audit.CHEAP_ATTACKS if args.quick else audit.ALL_ATTACKS,
        label_only_queries=2 if args.quick else 16, seed=args.seed, progress=not args.quick)
    reports, table = train_and_audit(
        recipes, members, nonmembers, out, lira_shadows=args.lira_shadows, options=options,
        seed=args.seed, progress=not args.quick,
        metadata={"dataset": args.dataset, "image_size": args.image_size})
    print("\n" + table + f"\n\nReports and plots: {out}/")
    return {r.name: r for r in reports}


if __name__ == "__main__":
    main()
