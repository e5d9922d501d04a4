"""The teachers' levers on one data set: their plan, the soft labels they make, the model they teach.

Trains a plain fit, then split teachers (``--teachers K_L``, the recommended
setting's, each stopping 5 epochs after its best; ``--compute C`` caps their
rows x epochs), and then the recommended model on their soft labels in
several variants, all from the same teachers (their `TeacherTargets` are
reused, so the variants differ only in the model's training):

- ``recommended``: `PlateauDecay` mixing and the `PrivacyCheckpoint`;
- ``no_checkpoint``: the same trained every planned epoch;
- ``lwW``: the targets mix in W of the given labels (``label_weight``).

It prints the teachers' epochs, the soft labels' accuracy and mean
probability of the given class, and each model's test accuracy (on the
non-members) and epochs. Times are printed but are one run each: compare
costs with `benchmarks.recipe_cost`.

    python -m benchmarks.teacher_levers --data cifar10 --members 4000 --epochs 40 --teachers 2_1 --variants recommended,no_checkpoint,lw0.5
"""

import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_adamixup import SplitTeachers, recommended  # noqa: E402

from benchmarks import common  # noqa: E402
from benchmarks.data import base_model, model_name, pool_or_skip, split  # noqa: E402


def _crossentropy():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _accuracy(model, x, y):
    return float(np.mean(np.argmax(model.predict(x, batch_size=512, verbose=0), -1) == y))


def _variant(name):
    """`(model overrides, label weight)` of a variant name."""
    if name == "recommended":
        return {}, 0.0
    if name == "no_checkpoint":
        return {"checkpoint": None}, 0.0
    if name.startswith("lw"):
        return {}, float(name[2:])
    raise SystemExit(f"unknown variant {name!r}: recommended, no_checkpoint, lwW")


def run(args, data, classes):
    """The plain fit, the teachers and each variant's model: a list of result rows."""
    (x, y), (x_test, y_test), validation = data
    make = lambda: base_model(x.shape[1:], classes, args.width)  # noqa: E731
    rows = []
    keras.utils.set_random_seed(args.seed)
    plain = make()
    plain.compile("adam", _crossentropy())
    start = time.perf_counter()
    plain.fit(x, y, epochs=args.epochs, batch_size=64, verbose=0)
    rows.append({"run": "plain", "seconds": time.perf_counter() - start,
                 "test_accuracy": _accuracy(plain, x_test, y_test)})
    count, exclude = (int(v) for v in args.teachers.split("_"))
    split_args = dict(seed=args.seed, compute=args.compute)
    keras.utils.set_random_seed(args.seed)
    teacher = make()
    teacher.compile("adam", _crossentropy())
    start = time.perf_counter()
    targets = SplitTeachers(count, exclude, **split_args).fit(teacher, x, y, epochs=args.epochs,
                                                              batch_size=64)
    soft = targets.soft_labels
    rows.append({"run": f"teachers {args.teachers}", "seconds": time.perf_counter() - start,
                 "epochs": [int(e) for e in targets.epochs],
                 "soft_label_accuracy": float(np.mean(soft.argmax(1) == y)),
                 "given_class_probability": float(np.mean(soft[np.arange(len(y)), y]))})
    for name in args.variants.split(","):
        overrides, weight = _variant(name)
        keras.utils.set_random_seed(args.seed)
        teachers = SplitTeachers(count, exclude, label_weight=weight, **split_args)
        model = recommended.model(make(), seed=args.seed, targets=teachers, **overrides)
        model.compile("adam", _crossentropy(), metrics=["accuracy"])
        model.teacher_targets = _rehomed(targets, teachers, x, y, args.epochs)
        start = time.perf_counter()
        history = model.fit(x, y, validation_data=validation, epochs=args.epochs,
                            batch_size=64, verbose=0)
        rows.append({"run": name, "seconds": time.perf_counter() - start,
                     "test_accuracy": _accuracy(model, x_test, y_test),
                     "epochs": len(history.history["loss"])})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def _rehomed(targets, teachers, x, y, epochs):
    """`targets` under the digest of `teachers`: the same teachers' labels, reused by a
    model whose `SplitTeachers` differs only in what the model does with them."""
    import dataclasses

    return dataclasses.replace(targets, digest=teachers.digest(x, y, epochs=epochs,
                                                               batch_size=64))


def main(argv=None):
    parser = common.parser(__doc__, "data", "members", "width", "seed", "out", epochs=40)
    parser.add_argument("--teachers", default="2_1", help="K_L: K teachers, each row left out of L")
    parser.add_argument("--compute", type=float, default=None,
                        help="SplitTeachers(compute=): the teachers' rows x epochs cap")
    parser.add_argument("--variants", default="recommended,no_checkpoint,lw0.5",
                        help="the models taught: recommended, no_checkpoint, lwW")
    args = parser.parse_args(argv)
    pool = pool_or_skip(args.data)
    if pool is None:
        return 0
    members, nonmembers, validation = split(pool, args.members, args.seed)
    classes = int(pool[1].max()) + 1
    print(f"{args.data}: {len(members[1])} members, {model_name(args.data, args.width)}, "
          f"{args.epochs} epochs, batch 64, seed {args.seed}")
    rows = run(args, (members, nonmembers, validation), classes)
    print("| run | test accuracy | epochs | soft labels: accuracy / given-class probability | s |")
    print("|---|---|---|---|---|")
    for row in rows:
        soft = (f"{row['soft_label_accuracy']:.3f} / {row['given_class_probability']:.3f}"
                if "soft_label_accuracy" in row else "")
        accuracy = f"{row['test_accuracy']:.4f}" if "test_accuracy" in row else ""
        print(f"| {row['run']} | {accuracy} | "
              f"{row.get('epochs', args.epochs)} | {soft} | {row['seconds']:.0f} |")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            json.dump(rows, handle, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
