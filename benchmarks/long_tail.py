"""What split teachers cannot give back: the members their out-of-fold labels get wrong.

The recommended setting trains the released model on the out-of-fold soft
labels of `SplitTeachers` (each member labelled by teachers that never saw
it). A member whose out-of-fold label's arg-max is not its own label is one
that only a model trained on it gets right: the long tail a model memorizes
(Feldman 2020), and exactly what a membership attack finds. This benchmark
measures how much of the undefended model's test accuracy those members carry,
in one run per seed:

- the recommended setting (`benchmarks.labels.RECOMMENDED` in `benchmarks.names`:
  `SplitTeachers(8, 1)`, lowest out-of-fold loss, patience 3, near-duplicates
  grouped; README's numbers were measured with `SplitTeachers(16, 2)`,
  patience 5) trains on all members; its teachers' soft labels
  (`AdaMixupModel.teacher_targets`) give the members whose out-of-fold
  arg-max is wrong, whose share is printed;
- the undefended recipe (the benchmarks' MLP, plain `fit`) trains three
  times on the same members: on all of them; without the members the
  teachers get wrong; without as many members drawn at random (the control);
- the test accuracy (on the non-members) of the four, and the drops.

If dropping the teachers' wrong members costs the undefended model about what
the recommended setting loses against it, while dropping as many random
members costs little, the accuracy the defence gives up is the members only a
model that trains on them learns: no out-of-fold label can carry it back;
more data of the same kind (public rows, `fit(..., unlabelled=)`) can.

Usage:
    python -m benchmarks.long_tail --data mnist --members 4000 --epochs 40 --seeds 0,1,2
    python -m benchmarks.long_tail --quick   # digits, one seed, few epochs
"""

import json
import os
import sys
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

import keras_adamixup  # noqa: E402

from benchmarks import common, names  # noqa: E402
from benchmarks.data import FEATURE_GROUPS, mlp, pool_or_skip, split  # noqa: E402

from benchmarks.labels import RECOMMENDED  # noqa: E402  (the recommended setting's name)
DROPS = ("drop_oof_wrong", "drop_random", "drop_recommended")


def _accuracy(model, x, y):
    return float(np.mean(np.argmax(model.predict(x, batch_size=1024, verbose=0), -1) == y))


def _plain(args, inputs, classes, x, y, x_test, y_test, seed):
    """Test accuracy of the undefended recipe trained on `(x, y)`."""
    keras.utils.set_random_seed(seed)
    model = keras_adamixup.recipes.compile_default(
        mlp(inputs, classes, args.width))
    model.fit(x, y, epochs=args.epochs, batch_size=64, verbose=0)
    return _accuracy(model, x_test, y_test)


def dropped(soft, y, seed):
    """`(wrong, random)` boolean masks over the members: those whose out-of-fold
    label's arg-max is not their label, and as many drawn at random (the control)."""
    wrong = np.argmax(soft, -1) != y
    random = np.zeros(len(y), bool)
    random[np.random.default_rng(seed + 1000).choice(len(y), int(wrong.sum()),
                                                     replace=False)] = True
    return wrong, random


def _recommended(args, inputs, classes, x, y, x_test, y_test, seed, validation):
    """The recommended setting trained on `(x, y)`: `(test accuracy, its teachers'
    out-of-fold soft labels of `x`, the teachers' kept epochs)`."""
    factory, fit_kwargs_for = names.recipe(
        RECOMMENDED, inputs, classes, args.width, seed, validation, args.epochs,
        feature_groups=FEATURE_GROUPS.get(args.data))
    keras.utils.set_random_seed(seed)
    model = factory()
    model.fit(x, y, **fit_kwargs_for(x, y))
    taught = model.teacher_targets  # the members' rows come first
    return _accuracy(model, x_test, y_test), taught.soft_labels[:taught.rows], taught.epochs


def run_seed(args, pool, seed):
    (x_m, y_m), (x_n, y_n), validation = split(pool, args.members, seed)
    inputs, classes = x_m.shape[1], int(pool[1].max()) + 1
    start = time.perf_counter()
    accuracy, soft, kept = _recommended(args, inputs, classes, x_m, y_m, x_n, y_n, seed,
                                        validation)
    recommended_s = time.perf_counter() - start
    wrong, random_drop = dropped(soft, y_m, seed)
    row = {"data": args.data, "seed": seed, "members": len(y_m), "nonmembers": len(y_n),
           "oof_wrong": int(wrong.sum()), "oof_wrong_share": float(wrong.mean()),
           "oof_soft_true_mean": float(np.mean(soft[np.arange(len(y_m)), y_m])),
           "recommended_s": round(recommended_s, 1),
           "teachers_epochs": [int(e) for e in kept], "acc_recommended": accuracy}
    for name, keep in (("all", np.ones(len(y_m), bool)), ("without_oof_wrong", ~wrong),
                       ("without_random", ~random_drop)):
        row[f"acc_{name}"] = _plain(args, inputs, classes, x_m[keep], y_m[keep], x_n, y_n, seed)
    for drop, kept_name in zip(DROPS, ("without_oof_wrong", "without_random", "recommended")):
        row[drop] = row["acc_all"] - row[f"acc_{kept_name}"]
    return row


def table(rows):
    """Markdown: per seed, the test accuracies and what each loses against the first."""
    lines = ["| seed | members | out-of-fold arg-max wrong | undefended, all members | "
             "without the wrong ones | without as many at random | recommended setting | "
             "lost: without wrong / random / recommended |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lost = " / ".join(f"{100 * r[k]:+.2f}" for k in DROPS)
        lines.append(f"| {r['seed']} | {r['members']} | {r['oof_wrong']} "
                     f"({100 * r['oof_wrong_share']:.1f} %) | {r['acc_all']:.4f} | "
                     f"{r['acc_without_oof_wrong']:.4f} | {r['acc_without_random']:.4f} | "
                     f"{r['acc_recommended']:.4f} | {lost} pt |")
    if len(rows) > 1:
        lost = " / ".join(f"{100 * float(np.median([r[k] for r in rows])):+.2f}" for k in DROPS)
        lines.append(f"| median | | | | | | | {lost} pt |")
    return "\n".join(lines)


def main(argv=None):
    parser = common.parser(__doc__, "data", "epochs", "width", "seeds", "out", members=4000,
                           quick="digits, seed 0, 5 epochs")
    args = parser.parse_args(argv)
    if args.quick:
        args.data, args.epochs, args.seeds = "digits", 5, "0"
    pool = pool_or_skip(args.data)
    if pool is None:
        return []
    rows = []
    for seed in common.integers(args.seeds):
        rows.append(run_seed(args, pool, seed))
        print(json.dumps(rows[-1]), flush=True)
    print(table(rows))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"benchmark": "long_tail", "argv": sys.argv[1:], "rows": rows}, f, indent=1)
    return rows


if __name__ == "__main__":
    main()
