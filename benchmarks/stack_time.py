"""K stacked models, vectorized vs the loop: what one trace instead of K buys.

`keras_adamixup._stacked.train_together` trains K copies of one model in one
compiled step, either vectorized (one trace of the model, run on K stacked
weight sets) or as a loop over the K models inside the step (K traces). For
each K, in one run with interleaved repeats, this times both on the
benchmarks' model (`benchmarks.data.base_model`: the MLP, two hidden layers,
for feature rows; the CNN for CIFAR-10's images; Adam 1e-3) with
the teachers' masks (each row left out of 2 of K, as `SplitTeachers(K, 2)`),
and prints the first epoch (tracing included), the later epochs and the
whole training, with the loop / vectorized ratios. It also checks that the
two give the same weights, within float rounding.

    python -m benchmarks.stack_time --data digits --teachers 4,16
    python -m benchmarks.stack_time --data mnist --members 4000 --epochs 20
    python -m benchmarks.stack_time --data cifar10 --members 2000 --epochs 3 --teachers 4,8 --repeats 1

On the CNN the loop won (docs/BENCHMARKS.md): ``vectorize="auto"`` keeps it for
convolutional models where no GPU is visible.
"""

import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_adamixup import SplitTeachers, _stacked  # noqa: E402

from benchmarks import common  # noqa: E402
from benchmarks.data import base_model, pool_or_skip, split  # noqa: E402


def train(x, y, masks, k, vectorize, args):
    """`(first epoch s, later epochs s, models)` of one stacked training."""
    classes = int(y.max()) + 1
    models = []
    for i in range(k):
        keras.utils.set_random_seed(args.seed + i)
        model = base_model(x.shape[1:], classes, args.width)
        model.compile(keras.optimizers.Adam(1e-3),
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        models.append(model)
    marks = []
    start = time.perf_counter()
    _stacked.train_together(models, x, y, masks, epochs=args.epochs, batch_size=64,
                            seed=args.seed, vectorize=vectorize,
                            progress=lambda epoch: marks.append(time.perf_counter()))
    return marks[0] - start, marks[-1] - marks[0], models


def main(argv=None):
    parser = common.parser(__doc__, "data", "members", "width", "repeats", "seed", epochs=40)
    parser.add_argument("--teachers", default="4,16", help="the K to time")
    args = parser.parse_args(argv)
    pool = pool_or_skip(args.data)
    if pool is None:
        return 0
    (x, y), _, _ = split(pool, args.members, args.seed)
    kind = "CNN" if x.ndim == 4 else f"MLP {args.width}-{args.width}"
    print(f"{args.data}: {len(x)} rows, {kind}, {args.epochs} epochs, "
          f"batch 64, {args.repeats} interleaved repeats (medians)")
    lines = ["| K | path | first epoch s | later epochs s | total s | loop / vectorized |",
             "|---|---|---|---|---|---|"]
    for k in common.integers(args.teachers):
        masks = ~SplitTeachers(k, 2, seed=args.seed).left_out(len(y))
        times = {True: [], False: []}
        for _ in range(args.repeats):
            weights = {}
            for vectorize in (True, False):
                first, later, models = train(x, y, masks, k, vectorize, args)
                times[vectorize].append((first, later, first + later))
                weights[vectorize] = [w for m in models for w in m.get_weights()]
                keras.backend.clear_session(free_memory=False)
            gap = max(float(np.max(np.abs(a - b)))
                      for a, b in zip(weights[True], weights[False]))
        med = {v: [statistics.median(t[i] for t in times[v]) for i in range(3)]
               for v in times}
        for vectorize, name in ((True, "vectorized"), (False, "loop")):
            first, later, total = med[vectorize]
            ratio = "" if vectorize else f"{total / med[True][2]:.2f}"
            lines.append(f"| {k} | {name} | {first:.2f} | {later:.2f} | {total:.2f} | {ratio} |")
        print(f"K={k}: loop / vectorized {med[False][2] / med[True][2]:.2f}×; largest weight "
              f"difference after training {gap:.1e}", flush=True)
    print("\n" + "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
