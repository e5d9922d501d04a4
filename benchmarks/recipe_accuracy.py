"""Each recipe's test accuracy and its teachers' out-of-fold accuracy, one fit each.

For one data set and seed, every recipe of ``--recipes`` (benchmark names,
`benchmarks.names`) is fitted once on the members, as `canary_audit` fits it
(no canaries, no shadows, no attack), and prints its test accuracy on the
non-members, the epochs it trained and, for split teachers, the epochs each
teacher trained and the accuracy of their soft labels on the members
(``argmax`` against the given labels: what the model is taught). The first
recipe's `TeacherTargets` are offered to the later ones: a recipe whose
teachers are the same (the same `SplitTeachers` settings, so the same digest)
reuses them and differs only in the model's training; any other trains its
own. It also prints a quick privacy proxy, with no shadows: the AUC of the
members' against the non-members' log-odds of their true class
(``proxy_auc``, LiRA's statistic without its reference models) and the
share of members above the non-members' 99th percentile of it
(``proxy_tpr_at_1pct``). A quick read of accuracy levers, and a screen of
privacy ones, before an audit; privacy needs `canary_audit`, time
`recipe_cost`.

    python -m benchmarks.recipe_accuracy --data cifar10 --members 2000 --epochs 60 \\
        --recipes teachers_full_acc_plateau_compute1_2_1_ckpt,teachers_full_acc_plateau_compute1_2_1
    python -m benchmarks.recipe_accuracy --quick
"""

import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_adamixup import predictions  # noqa: E402

from benchmarks import common, names  # noqa: E402
from benchmarks.data import IMAGE_SHAPES, pool_or_skip, split  # noqa: E402


def fit_one(name, data, args, offered=None):
    """One fit of recipe `name`: its result row and its `TeacherTargets` (or `None`)."""
    (x_m, y_m), (x_n, y_n), validation = data
    classes = int(max(y_m.max(), y_n.max())) + 1
    keras.utils.set_random_seed(args.seed)
    factory, fit_kwargs_for = names.recipe(name, x_m.shape[1:], classes, args.width, args.seed,
                                           validation, args.epochs,
                                           image_shape=IMAGE_SHAPES.get(args.data))
    model = factory()
    if offered is not None and hasattr(model, "teacher_targets"):
        model.teacher_targets = offered  # kept only while the digest matches
    start = time.perf_counter()
    history = model.fit(x_m, y_m, **fit_kwargs_for(x_m, y_m))
    outputs_m, outputs_n = (model.predict(x, verbose=0, batch_size=512) for x in (x_m, x_n))
    row = {"recipe": name, "seconds": round(time.perf_counter() - start, 1),
           "epochs": len(history.epoch),
           "test_accuracy": float(np.mean(np.argmax(outputs_n, -1) == y_n)),
           **proxy(outputs_m, y_m, outputs_n, y_n)}
    taught = getattr(model, "teacher_targets", None)
    if taught is not None:
        soft = taught.soft_labels[:len(y_m)]
        row["teachers_epochs"] = None if taught.epochs is None else [int(e) for e in
                                                                      taught.epochs]
        row["soft_label_accuracy"] = float(np.mean(soft.argmax(1) == y_m))
        row["teachers_reused"] = taught is offered
    return row, taught


def proxy(outputs_m, y_m, outputs_n, y_n):
    """``{"proxy_auc", "proxy_tpr_at_1pct"}``: the members' against the non-members'
    log-odds of their true class, from the model's outputs (logits or probabilities)."""
    kind = predictions.output_kind(outputs_m)

    def logits(out):  # log-probabilities are logits too
        if kind == "logits" and out.shape[1] > 1:
            return out
        return np.log(np.clip(predictions.to_probabilities(out, kind), 1e-30, None))

    scores = [predictions.log_odds_from_logits(logits(out), labels)
              for out, labels in ((outputs_m, y_m), (outputs_n, y_n))]
    threshold = np.quantile(scores[1], 0.99)
    return {"proxy_auc": round(float(predictions.roc_auc(*scores)), 4),
            "proxy_tpr_at_1pct": round(float(np.mean(scores[0] > threshold)), 4)}


def main(argv=None):
    parser = common.parser(__doc__, "data", "members", "width", "seed", "recipes", "out",
                           epochs=60, quick="digits, 200 members, 3 epochs")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    if args.quick:
        args.data, args.members, args.epochs = "digits", 200, 3
        args.recipes = args.recipes or "none,teachers_plateau_compute1_2_1,teachers_compute1_2_1"
    if not args.recipes:
        parser.error("--recipes is required")
    pool = pool_or_skip(args.data)
    if pool is None:
        return 0
    data = split(pool, args.members, args.seed)
    rows, offered = [], None
    for name in args.recipes.split(","):
        row, taught = fit_one(name, data, args, offered)
        offered = offered if offered is not None else taught
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.out:
        with open(args.out, "w") as handle:
            json.dump({"benchmark": "recipe_accuracy", "data": args.data,
                       "command": "python -m benchmarks.recipe_accuracy " + " ".join(argv),
                       "rows": rows}, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
