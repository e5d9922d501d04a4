"""Batch normalization mid-training: inference-mode accuracy on stale and re-estimated statistics.

Trains the benchmarks' CNN (`benchmarks.data.cnn`: augmentation layers, conv
blocks with `BatchNormalization`) on half the members, one epoch at a time,
and after each epoch measures its accuracy on the other half in inference
mode three ways: in training mode (the batch's own statistics), in inference
mode on Keras' moving statistics (momentum 0.99), and in inference mode after
`keras_adamixup._batch_norm.refresh` re-estimated them from 512 of its
training rows (the moving statistics are put back afterwards, so training
goes on exactly as in a plain fit). What a teacher's epoch selection or a
hold-out monitor reads mid-training is the second column without the refresh.

    python -m benchmarks.batch_norm_lag --data cifar10 --members 4000 --epochs 8
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_adamixup import _batch_norm  # noqa: E402

from benchmarks import common  # noqa: E402
from benchmarks.data import cnn, pool_or_skip, split  # noqa: E402


def accuracy(model, x, y, training=False):
    """Accuracy of `model` on `(x, y)`, in training or inference mode, in chunks."""
    right = 0
    for i in range(0, len(x), 500):
        out = keras.ops.convert_to_numpy(model(x[i:i + 500], training=training))
        right += int(np.sum(out.argmax(1) == y[i:i + 500]))
    return right / len(x)


def main(argv=None):
    parser = common.parser(__doc__, "data", "seed", members=4000, epochs=8)
    parser.add_argument("--channels", type=int, default=32, help="the CNN's first channels")
    args = parser.parse_args(argv)
    pool = pool_or_skip(args.data)
    if pool is None:
        return 0
    (x, y), _, _ = split(pool, args.members, args.seed)
    if x.ndim != 4:
        print(f"skipped: {args.data} is not images (the CNN needs them).")
        return 0
    half = len(x) // 2
    keras.utils.set_random_seed(args.seed)
    model = cnn(x.shape[1:], int(y.max()) + 1, args.channels)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    layers = _batch_norm.layers_of(model)
    sample = x[:half][_batch_norm.draw(np.ones(half, dtype=bool), args.seed)]
    print(f"{args.data}: CNN {args.channels} channels, {half} training rows, {len(layers)} "
          "batch-normalization layers; accuracy on the other half after each epoch")
    print("| epoch | training mode | inference, moving statistics | inference, re-estimated |")
    print("|---|---|---|---|")
    for epoch in range(1, args.epochs + 1):
        model.fit(x[:half], y[:half], epochs=1, batch_size=64, verbose=0)
        stale = accuracy(model, x[half:], y[half:])
        train_mode = accuracy(model, x[half:], y[half:], training=True)
        kept = [layer.get_weights() for layer in layers]
        _batch_norm.refresh(model, sample)
        fresh = accuracy(model, x[half:], y[half:])
        for layer, weights in zip(layers, kept):
            layer.set_weights(weights)  # training goes on as in a plain fit
        print(f"| {epoch} | {train_mode:.3f} | {stale:.3f} | {fresh:.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
