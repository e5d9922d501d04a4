"""Why a canary is found: the teachers' soft labels and the model's outputs on it.

For split-teacher defences, a mislabelled canary leaks when its out-of-fold
soft label carries the planted (wrong) label back, or when the model fits a
soft label that differs from what it predicts for a non-member. This plants
canaries of every kind as `canary_audit.py` does (all of them in), trains the
recommended recipe with near-duplicates left out apart and together, and
prints per kind: the soft labels' mean mass on the planted label, and the
trained model's median probability of the planted label on the canaries that
were in and on those that were out (a separate draw: each unit in with
probability ½).

    python -m benchmarks.canary_targets --data mnist --members 4000 --epochs 40
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_adamixup import audit  # noqa: E402

from benchmarks import common, names  # noqa: E402
from benchmarks.data import pool_or_skip, split  # noqa: E402


def main(argv=None):
    parser = common.parser(__doc__, "data", "members", "epochs", "width", "seed",
                           recipes="teachers_mix_apart_16_2_ckpt,teachers_mix_16_2_ckpt")
    parser.add_argument("--canaries", type=int, default=50)
    args = parser.parse_args(argv)
    pool = pool_or_skip(args.data)
    if pool is None:
        return 0
    (x, y), nonmembers, validation = split(pool, args.members, args.seed)
    x_rest, y_rest, planted = audit.canaries.plant(x, y, count=args.canaries,
                                                   kinds=audit.canaries.KINDS, seed=args.seed)
    x_fit, y_fit = planted.add_to(x_rest, y_rest)
    kinds = np.asarray(planted.kinds)[planted.unit]
    inside = planted.included[planted.unit]
    row_of = {row.tobytes(): i for i, row in enumerate(planted.x)}
    canary = np.array([row_of.get(row.tobytes(), -1) for row in x_fit])
    classes = int(y.max()) + 1
    print("| recipe | kind | soft-label mass on the planted label (in rows) | "
          "model's median p(planted), in | out | in / out |")
    print("|---|---|---|---|---|---|")
    for name in names.checked(args.recipes):
        factory, fit_kwargs_for = names.recipe(name, x.shape[1], classes, args.width,
                                               args.seed, validation, args.epochs)
        keras.utils.set_random_seed(args.seed)
        model = factory()
        model.fit(x_fit, y_fit, **fit_kwargs_for(x_fit, y_fit))
        soft = model.teacher_targets.soft_labels
        probs = keras.ops.convert_to_numpy(keras.ops.softmax(model.predict(planted.x,
                                                                           verbose=0)))
        for kind in audit.canaries.KINDS:
            rows = np.flatnonzero(canary >= 0)
            rows = rows[kinds[canary[rows]] == kind]
            mass = float(soft[rows, y_fit[rows]].mean())
            p_in = np.median(probs[(kinds == kind) & inside, planted.y[(kinds == kind) & inside]])
            p_out = np.median(probs[(kinds == kind) & ~inside,
                                    planted.y[(kinds == kind) & ~inside]])
            print(f"| {name} | {kind} | {mass:.3g} | {p_in:.3g} | {p_out:.3g} | "
                  f"{p_in / max(p_out, 1e-12):.3g} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
