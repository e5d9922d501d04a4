"""What a defence costs to train: each recipe's whole `fit` against a plain `fit`.

For one data set and the MLP of `privacy_utility.py`, every recipe (its
names, e.g. ``teachers_mix_16_2_ckpt``: the split teachers, the student, the
monitor and the checkpoint, all of it) trains on the same members, and so
does a **plain `fit`** of the same model for the same planned epochs (no
callbacks, no defence): the baseline. Rounds are interleaved (plain, recipe
a, recipe b, plain, recipe a, ...), each run on a fresh model with the same
seed, so machine drift hits every recipe alike (after `--warmup` uncounted plain
fits: a process's first fits are slower); the ratio is taken per round
against that round's plain fit, and the median over rounds is reported.
Wall time covers `fit` only (model building and compiling excluded), so
tracing and the teachers' compilation are counted.

Every recipe gets the benchmarks' logging `PrivacyMonitor` (measured every
epoch, so the monitored AUC can be compared with the audit); ``--monitor
needed`` gives one only to the recipes that follow it (early stopping, the
checkpoint, a feedback schedule or target): what a user of the recipe pays.

Also reported: the epochs the student trained (the checkpoint may stop it
early) and the median epoch at which the teachers stopped (their patience
may stop them early).

    python -m benchmarks.recipe_cost --data digits --rounds 3
    python -m benchmarks.recipe_cost --data mnist --members 4000 --epochs 40 --rounds 3
    python -m benchmarks.recipe_cost --data cifar10 --members 2000 --epochs 20 \
        --recipes none,mixup_relaxat1.0_a0.4 --monitor needed
    python -m benchmarks.recipe_cost --data digits --members 900 --epochs 30 \
        --recipes teachers_plateau_pat3_8_1_ckpt --inputs dataset   # or streamed
    python -m benchmarks.recipe_cost --quick        # smoke test

Writes ``--out`` (JSON, optional): every run and the summary.
"""

import json
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from keras_adamixup import _io  # noqa: E402

from benchmarks import common, names, overhead  # noqa: E402
from benchmarks.data import (FEATURE_GROUPS, IMAGE_SHAPES, fit_kwargs_of,  # noqa: E402
                             model_name, pool_or_skip, public_rows, split)
from benchmarks.labels import RECOMMENDED  # noqa: E402

PLAIN = "plain"
RECIPES = ("early_stopping", "teachers_16_2_ckpt", "teachers_mix_16_2_ckpt", RECOMMENDED)


def time_one(name, data, args, seed, public=None):
    """Seconds of one `fit` of `name` (or the plain fit) and what it trained (`public`:
    the ``_pubN`` rows, as `benchmarks.names.recipe`)."""
    (x_m, y_m), nonmembers, validation = data
    classes = int(max(y_m.max(), nonmembers[1].max())) + 1
    keras.utils.set_random_seed(seed)
    if name == PLAIN:
        model = names.recipe("none", x_m.shape[1:], classes, args.width, seed, validation,
                             args.epochs)[0]()
        kwargs = {"epochs": args.epochs, "batch_size": 64, "verbose": 0}
    else:
        factory, fit_kwargs_for = names.recipe(name, x_m.shape[1:], classes, args.width, seed,
                                               validation, args.epochs,
                                               feature_groups=FEATURE_GROUPS.get(args.data),
                                               image_shape=IMAGE_SHAPES.get(args.data),
                                               public=public,
                                               monitor=args.monitor == "all")
        model = factory()
        # a dict where the recipe needs no callbacks (`--monitor needed`)
        kwargs = fit_kwargs_of(fit_kwargs_for, x_m, y_m)
    x_fit, y_fit = x_m, y_m
    if args.inputs != "arrays":
        x_fit, y_fit, kwargs = as_dataset(x_m, y_m, kwargs, streamed=args.inputs == "streamed")
    start = time.perf_counter()
    history = model.fit(x_fit, y_fit, **kwargs)
    seconds = time.perf_counter() - start
    run = {"recipe": name, "seconds": seconds, "student_epochs": len(history.epoch)}
    taught = getattr(model, "teacher_targets", None)  # the teachers' TeacherTargets
    if taught is not None and taught.epochs:
        run["teachers_epochs_median"] = statistics.median(taught.epochs)
    return run


def as_dataset(x, y, kwargs, streamed=False):
    """`(dataset, None, kwargs)`: the members as a batched `tf.data.Dataset` (in order,
    batches of the recipe's ``batch_size``); `streamed`: with a random change of 0 to 2e-6
    per pass (random augmentation that moves nothing: the inputs differ between
    passes, so split teachers read the dataset one after another)."""
    import tensorflow as tf

    kwargs = dict(kwargs)
    if "sample_weight" in kwargs or "validation_split" in kwargs:
        raise ValueError("--inputs dataset / streamed: a recipe with sample weights or "
                         "validation_split needs arrays here")
    kwargs.pop("shuffle", None)
    dataset = tf.data.Dataset.from_tensor_slices((x, y))
    if streamed:  # a draw per example and pass (a stateful random op would repeat its
        # draws at every pass under keras.utils.set_random_seed)
        draws = tf.data.Dataset.random(seed=1, rerandomize_each_iteration=True)
        dataset = tf.data.Dataset.zip((dataset, draws)).map(
            lambda example, draw: (example[0] + tf.cast(draw % 3, example[0].dtype) * 1e-6,
                                   example[1]))
    return dataset.batch(kwargs.pop("batch_size", 32)), None, kwargs


def summarize(runs, recipes):
    """Per recipe: median seconds and the median of per-round ratios to the plain fit
    (`overhead.paired_ratios`), the student's epochs and the teachers' (median)."""
    rounds = sorted({run["round"] for run in runs})
    by = {(run["recipe"], run["round"]): run for run in runs}
    names = [n for n in (PLAIN,) + tuple(recipes) if all((n, k) in by for k in rounds)]
    ratios = overhead.paired_ratios({n: [by[n, k]["seconds"] for k in rounds] for n in names},
                                    baseline=PLAIN)
    summary = {}
    for name in names:
        mine = [by[name, k] for k in rounds]
        row = {"rounds": len(rounds), "seconds_median": ratios[name]["median_s"],
               "ratio_median": ratios[name]["median_ratio"],
               "ratio_min": min(ratios[name]["ratios"]),
               "ratio_max": max(ratios[name]["ratios"]),
               "student_epochs_median": statistics.median(m["student_epochs"] for m in mine)}
        stopped = [m["teachers_epochs_median"] for m in mine if "teachers_epochs_median" in m]
        if stopped:
            row["teachers_epochs_median"] = statistics.median(stopped)
        summary[name] = row
    return summary


def markdown(summary, title):
    lines = [f"{title}", "",
             "| recipe | rounds | median fit s | × plain fit (median [min, max] of rounds) | "
             "student epochs | teachers' epochs |",
             "|---|---|---|---|---|---|"]
    for name, row in summary.items():
        stopped = row.get("teachers_epochs_median")
        lines.append(
            f"| {name} | {row['rounds']} | {row['seconds_median']:.1f} | "
            f"{row['ratio_median']:.2f} [{row['ratio_min']:.2f}, {row['ratio_max']:.2f}] | "
            f"{row['student_epochs_median']:g} | {'–' if stopped is None else f'{stopped:g}'} |")
    return "\n".join(lines)


def main(argv=None):
    parser = common.parser(__doc__, "data", "members", "epochs", "width", "rounds", "seed",
                           "out", recipes=",".join(RECIPES),
                           quick="300 members, 3 epochs, 1 round, 2 recipes")
    parser.add_argument("--warmup", type=int, default=1,
                        help="plain fits before the rounds, not counted (the first fits of "
                             "a process are slower: MNIST 20 s, then 11-12 s)")
    parser.add_argument("--monitor", choices=("all", "needed"), default="all",
                        help="all: every recipe gets the benchmarks' logging monitor; "
                             "needed: only the recipes that follow one")
    parser.add_argument("--inputs", choices=("arrays", "dataset", "streamed"),
                        default="arrays",
                        help="how every fit (the plain one too) gets the members: NumPy "
                             "arrays; a tf.data.Dataset of them; the same with a random "
                             "change per pass (read in passes: teachers one after another)")
    args = parser.parse_args(argv)
    if args.quick:
        args.members, args.epochs, args.rounds, args.warmup = 300, 3, 1, 0
        if args.recipes == ",".join(RECIPES):
            args.recipes = "early_stopping,teachers_4_1_ckpt"
    recipes = names.checked(args.recipes)
    pool = pool_or_skip(args.data)
    if pool is None:
        return 0
    data = split(pool, args.members, args.seed)
    for _ in range(args.warmup):  # the process's first fits are slower (not counted)
        time_one(PLAIN, data, args, args.seed)

    def public(count):  # the _pubN recipes' rows
        return public_rows(pool, args.members, args.seed, count)

    runs = []
    for k in range(args.rounds):
        for name in [PLAIN] + recipes:
            run = {**time_one(name, data, args, args.seed, public), "round": k}
            runs.append(run)
            print(f"round {k + 1}/{args.rounds} {name:<28} {run['seconds']:7.1f} s "
                  f"({run['student_epochs']} student epochs)", flush=True)
    summary = summarize(runs, recipes)
    title = (f"{args.data}: {len(data[0][1])} members, {model_name(args.data, args.width)}, {args.epochs} epochs "
             f"planned, batch 64, seed {args.seed}, {args.rounds} interleaved rounds"
             + ("" if args.monitor == "all" else ", monitors only where needed")
             + ("" if args.inputs == "arrays" else f", inputs: {args.inputs}"))
    print()
    print(markdown(summary, title))
    if args.out:
        _io.write_text(args.out, json.dumps({"title": title, "runs": runs,
                                             "summary": summary}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
