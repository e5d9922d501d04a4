"""Privacy-utility benchmark: every defence trained and audited side by side.

For one data set and architecture, over several seeds, each defence trains a
model on the members and the audit (TF Privacy attacks, label-only attacks,
LiRA with shadow models trained by the *same defence's* recipe, and a second
LiRA with undefended shadows, 16 by default, trained together and shared by all
defences of a seed) attacks it
with the non-members. Writes to --out:

    runs.csv, runs.json     one row per (defence, seed)
    summary.md              mean ± std over seeds per defence
    frontier.png            test accuracy vs best attack AUC and vs TPR@0.1%FPR

Defences: none; static mixup (Beta α = 0.2 and 1.0, soft labels); label
smoothing 0.1; early stopping on validation loss (a validation set disjoint
from members and non-members); AdaMixup with the paper's linear decay of the
partner share 0.4 → 0 (dominant and soft labels); AdaMixup with a floor
(0.4 → 0.2, dominant); AdaMixup driven by `PrivacyTarget` at monitored
AUC targets 0.52, 0.55 and 0.60 (dominant); DP-SGD (`dp_sgd.py`: per-example
clipping to norm 1, Gaussian noise multiplier 0.5 or 1.0, DP-Adam 3e-3; ε at
δ = 1e-5 from the RDP accountant is reported). Epoch selection (issue 11):
``checkpoint`` (no mixing; `PrivacyCheckpoint` without a target: early
stopping on the monitor's hold-out loss, patience 5, with an accuracy budget
of 1 point: the least leaky epoch within 1 point of the best hold-out
accuracy when the lowest-loss epoch is further off), and ``<defence>_ckpt``
for the AdaMixup defences (the same checkpoint; with a `PrivacyTarget` the
checkpoint keeps the best epoch within its target, and the controller gets
an accuracy budget of 1 point and backs off after 3 ineffective raises).
``adamixup_swap_*``: the same with ``features="swap"`` (each feature from
the partner with probability 1 − λ; on Adult each one-hot block is swapped
whole). ``adamixup_focus[F]_*``: the same with a per-example strength
(`LossFloor("holdout", factor=F)`, default 1: only examples whose loss is under
F × the monitored hold-out loss are mixed). Every model, shadows included,
trains with a `PrivacyMonitor` (own training subset vs the validation set),
so the monitored AUC is reported next to the audit's. TF Privacy's own DP
optimizers are built on the Keras 2 optimizer API and do not run with Keras 3
models; see docs/BENCHMARKS.md.

    python benchmarks/privacy_utility.py --data digits --seeds 0,1,2 --out bench_out
    python benchmarks/privacy_utility.py --quick --out /tmp/pu   # smoke test

Data: ``digits`` (default, offline), ``mnist`` and ``adult`` from
../shared/data (skipped with a message when absent), ``npz:PATH`` (members
and non-members pooled, then split again), ``tfds:NAME`` (a
tensorflow-datasets name: its train and test splits pooled).
"""

import argparse
import csv
import json
import os
import re
import statistics
import sys
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_adamixup  # noqa: E402
from keras_adamixup import audit, schedules  # noqa: E402
from keras_adamixup import recipes as recipes_table  # noqa: E402
from keras_adamixup import _io  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import dp_sgd  # noqa: E402
import memguard  # noqa: E402
import rows as rows_lib  # noqa: E402

SHARED = os.path.join(HERE, "..", "..", "shared", "data")
DEFENCES = (
    "none",
    "mixup_a0.2",
    "mixup_a1.0",
    "label_smoothing_0.1",
    "early_stopping",
    "adamixup_linear_dominant",
    "adamixup_linear_soft",
    "adamixup_floor_dominant",
    "adamixup_target_0.52",
    "adamixup_target_0.55",
    "adamixup_target_0.60",
    "dp_sgd_0.5",
    "dp_sgd_1.0",
    "checkpoint",
    "adamixup_linear_dominant_ckpt",
    "adamixup_const0.2_ckpt",
    "adamixup_target_0.52_ckpt",
    "adamixup_target_0.55_ckpt",
    "adamixup_swap_const0.2_ckpt",
    "adamixup_swap_target_0.52_ckpt",
    "memguard",
    "adamixup_floor_dominant_ckpt", "adamixup_linear_soft_ckpt", "mixup_a0.2_ckpt",
    "teachers_16_2", "teachers_16_2_ckpt", "teachers_acc_16_2",
    "adamixup_const0.4_ckpt", "adamixup_focus_const0.4_ckpt",
)
# any SplitTeachers variant may be run by name (the list above: the measured ones)
# ("apart": near-duplicates left out independently, as before they were grouped;
# "full": teachers train every epoch, without patience; "unweighed": every row
# weighs 1, as before a group of near-duplicates weighed as one row; "plateau": mixing
# with PlateauDecay(0.4), cut when the hold-out loss plateaus, instead of the paper's schedule)
TEACHERS = re.compile(r"teachers_(mix_|plateau_)?(swap_)?(apart_)?(full_)?(unweighed_)?(acc_|last_)?"
                      r"[0-9]+_[0-9]+(_ckpt|_ckptacc)?(_pub(only)?(near)?[0-9]+)?")
# "_pubN": N public rows without labels for the student (fit(..., unlabelled=)), drawn from
# the pool beside the split (`public_rows`); "_pubonlyN": the student trains on them alone
# (SplitTeachers(student_rows="unlabelled")); "_pub[only]nearN": the teachers that left out
# each public row's nearest member label it (SplitTeachers(unlabelled_teachers="nearest"))
PUBLIC = re.compile(r"_pub(only)?(near)?([0-9]+)$")
# "_ckptacc": a PrivacyCheckpoint that keeps the epoch of best hold-out accuracy instead
CHECKPOINT_ACCURACY = {"score": "accuracy", "patience": 10}
# adamixup_focus[F]_<an AdaMixup defence>: with a LossFloor("holdout", factor=F)
FOCUS = re.compile(r"adamixup_focus([0-9.]+)?_")


def defence_names(text):
    """The comma-separated names in `text`, each a `known_defence` (else exits saying so)."""
    names = text.split(",")
    for name in names:
        if not known_defence(name):
            raise SystemExit(f"unknown defence {name!r}; choose from {', '.join(DEFENCES)}")
    return names


def known_defence(name):
    """A name in `DEFENCES`, any `TEACHERS` variant, or `FOCUS` on a listed defence."""
    focus = FOCUS.match(name)
    return (name in DEFENCES or TEACHERS.fullmatch(name) is not None
            or (focus is not None and "adamixup_" + name[focus.end():] in DEFENCES))
DP_CLIP, DP_LEARNING_RATE, DP_DELTA = 1.0, 3e-3, 1e-5
# columns swapped together by the "swap" defences (one-hot blocks), per data set
FEATURE_GROUPS = {}
SUMMARY_FIELDS = ("test_accuracy", "generalization_gap", "best_auc", "lira_online_auc",
                  "lira_online_plain_auc",
                  "best_tpr_at_0.001_fpr", "best_tpr_at_0.01_fpr", "monitor_auc",
                  "threshold_auc", "strength_final", "dp_epsilon")


# -- data ----------------------------------------------------------------------


def load_pool(name):
    """All examples of a data set as `(x float32, y int64)`, or None if absent."""
    if name == "digits":
        return audit.data.digits_pool()
    if name == "mnist":
        path = os.path.join(SHARED, "mnist.npz")
        if not os.path.exists(path):
            return None
        d = np.load(path)
        return _flat(np.concatenate([d["x_train"], d["x_test"]]),
                     np.concatenate([d["y_train"], d["y_test"]]))
    if name == "adult":
        try:
            x, y, groups = audit.data.adult_pool(SHARED, return_groups=True)
        except FileNotFoundError:
            return None
        FEATURE_GROUPS["adult"] = groups  # one-hot blocks, for features="swap"
        return x, y
    if name.startswith("npz:"):
        (xa, ya), (xb, yb) = audit.data.load_npz(name[4:])
        return _flat(np.concatenate([xa, xb]), np.concatenate([ya, yb]))
    if name.startswith("tfds:"):
        # train + test of a tensorflow-datasets set (needs the package and a
        # download or a prepared TFDS_DATA_DIR)
        return _flat(*audit.data.load_pool(name))
    raise ValueError(f"Unknown data {name!r}: digits, mnist, adult, npz:PATH or tfds:NAME.")


def pool_or_skip(name):
    """`load_pool(name)`, or `None` after printing why the run is skipped."""
    pool = load_pool(name)
    if pool is None:
        print(f"skipped: data {name!r} not found in {SHARED} (it lives in ../shared/data "
              "on the project's machines).")
    return pool


def _flat(x, y):
    """Rows flattened for the MLP, float32; 8-bit images scaled to [0, 1]."""
    scale = 255.0 if np.asarray(x).dtype == np.uint8 else 1.0
    return (np.asarray(x).reshape(len(x), -1).astype("float32") / scale,
            np.asarray(y).astype("int64"))


def _sizes(pool, members):
    members = min(members, len(pool[0]) * 2 // 5)
    return members, max(members // 4, keras_adamixup.monitor.MIN_MONITOR_EXAMPLES + 28)


def split(pool, members, seed):
    """members / non-members (same size) / validation (a quarter, ≥ 128), disjoint."""
    x, y = pool
    members, validation = _sizes(pool, members)
    order = np.random.default_rng(seed).permutation(len(x))
    m, n, v = (order[:members], order[members:2 * members],
               order[2 * members:2 * members + validation])
    return (x[m], y[m]), (x[n], y[n]), (x[v], y[v])


def public_rows(pool, members, seed, count):
    """`count` inputs of the pool that `split(pool, members, seed)` leaves unused (the
    next rows of its order; labels dropped): the public data of the ``_pubN`` recipes."""
    members, validation = _sizes(pool, members)
    order = np.random.default_rng(seed).permutation(len(pool[0]))[2 * members + validation:]
    if count > len(order):
        raise ValueError(f"_pub{count}: the pool has only {len(order)} rows beside the "
                         f"members, non-members and validation rows.")
    return pool[0][order[:count]]


# -- defences -------------------------------------------------------------------


def mlp(inputs, classes, width):
    return keras.Sequential([keras.Input((inputs,)),
                             keras.layers.Dense(width, activation="relu"),
                             keras.layers.Dense(width, activation="relu"),
                             keras.layers.Dense(classes)])


def _compiled(model, loss=None, learning_rate=1e-3):
    """Adam, sparse cross-entropy from logits (or `loss`), accuracy."""
    loss = loss or keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(keras.optimizers.Adam(learning_rate), loss, metrics=["accuracy"])
    return model


# The recipes the package does not ship, added to its table (keras_adamixup.recipes):
# each is the base model's plain-`fit` recipe with another model.
def _label_smoothing(setting, *, smoothing=0.1, name="label_smoothing"):
    loss = keras_adamixup.losses.MixupCrossentropy(from_logits=True, label_smoothing=smoothing)
    return recipes_table.undefended(setting, name=name,
                                    factory=lambda: _compiled(setting.base(), loss))


def _dp_sgd(setting, *, noise_multiplier, name="dp_sgd"):
    return recipes_table.undefended(setting, name=name, factory=lambda: _compiled(
        dp_sgd.DPSGDModel(setting.base(), l2_norm_clip=DP_CLIP,
                          noise_multiplier=noise_multiplier, seed=setting.seed),
        learning_rate=DP_LEARNING_RATE))


def _memguard(setting, *, name="memguard"):
    # the model, then the defender's attack model, then the guard
    return recipes_table.undefended(setting, name=name, factory=lambda: memguard.MemGuardModel(
        setting.plain(), holdout=setting.holdout, seed=setting.seed))


recipes_table.register("label_smoothing", _label_smoothing)
recipes_table.register("dp_sgd", _dp_sgd)
recipes_table.register("memguard", _memguard)


def parse(defence, feature_groups=None):
    """A benchmark name as an entry of the recipe table: ``(table name, options)``.

    The names are a grammar over `keras_adamixup.recipes.RECIPES` (and the
    three recipes this module registers), so every variant measured here is
    the package's recipe with options, not a copy:

    - ``none`` → ``undefended``; ``checkpoint`` (or ``none_ckpt``) → ``checkpoint``;
      ``early_stopping``; ``memguard``; ``label_smoothing_S``; ``dp_sgd_SIGMA``;
    - ``mixup_aA`` → ``adamixup`` with ``Constant(A)``, Beta coefficients, soft labels;
    - ``adamixup_{linear_dominant, linear_soft, floor_dominant, constS, target_T}``
      → ``adamixup`` with ``LinearDecay(0.4, 0)``, the same with soft labels,
      ``LinearDecay(0.4, 0.2)``, ``Constant(S)``, a fresh ``PrivacyTarget(T)``;
    - ``teachers_[mix_|plateau_][swap_][apart_][full_][unweighed_][acc_|last_]K_L``
      → ``split_teachers`` (K teachers, each row left out of L): ``mix`` the
      paper's schedule on top, ``plateau`` PlateauDecay(0.4) with
      ``features="auto"`` (as the recommended setting); ``swap``
      ``features="swap"``; ``apart`` near-duplicates not grouped; ``full``
      teachers without patience; ``unweighed`` a group's rows weigh 1 each;
      ``acc`` / ``last`` the teachers' epoch of best out-of-fold accuracy /
      their last (default: lowest out-of-fold loss);
    - split teachers' suffix ``_pubN``: N public rows without labels, which
      the teachers label and the student trains on too (``unlabelled=``;
      `recipe` draws them with `public_rows`); ``_pubonlyN``: the student
      trains on them alone (``student_rows="unlabelled"``, DMP); ``near``
      after ``pub`` or ``pubonly``: the teachers that left out a public row's
      nearest member label it (``unlabelled_teachers="nearest"``);
    - prefixes ``adamixup_focus[F]_`` (a ``LossFloor("holdout", F)``) and
      ``adamixup_swap_`` (``features="swap"``, one-hot blocks whole), and the
      suffix ``_ckpt`` (the recommended setting's `PrivacyCheckpoint`); split
      teachers also take ``_ckptacc`` (a checkpoint that keeps the epoch of best
      hold-out accuracy, patience 10: `CHECKPOINT_ACCURACY`).
    """
    name = defence
    model_args = {}
    public = PUBLIC.search(defence) if defence.startswith("teachers_") else None
    if public:  # _pubN: a marker that `recipe` replaces by the rows
        model_args["unlabelled"] = PublicRows(int(public.group(3)))
        defence = defence[:public.start()]
    focus = FOCUS.match(defence)
    if focus:  # adamixup_focus[F]_...: LossFloor("holdout", factor=F) on top
        model_args["focus"] = keras_adamixup.LossFloor("holdout", float(focus.group(1) or 1))
        defence = "adamixup_" + defence[focus.end():]
    swap = {"features": "swap", "feature_groups": feature_groups}
    if defence.startswith("adamixup_swap_"):  # features="swap" (one-hot blocks whole)
        model_args.update(swap)
        defence = "adamixup_" + defence[len("adamixup_swap_"):]
    select = defence.endswith("_ckpt") or defence == "checkpoint"
    if defence.endswith("_ckpt"):
        defence = defence[:-len("_ckpt")]
    elif defence.endswith("_ckptacc"):  # the checkpoint on hold-out accuracy, patience 10
        select = dict(CHECKPOINT_ACCURACY)
        defence = defence[:-len("_ckptacc")]
    if defence in ("none", "checkpoint"):
        return ("checkpoint" if select else "undefended"), {}
    if defence in ("memguard", "early_stopping"):
        return defence, {}
    if defence.startswith("label_smoothing_"):
        return "label_smoothing", {"smoothing": float(defence[len("label_smoothing_"):])}
    if defence.startswith("dp_sgd_"):
        return "dp_sgd", {"noise_multiplier": float(defence[len("dp_sgd_"):])}
    if TEACHERS.fullmatch(defence) is not None:
        *options, teachers, exclude = defence[len("teachers_"):].split("_")
        if "swap" in options:
            model_args.update(swap)
        elif "plateau" in options:  # as keras_adamixup.recommended.model
            model_args["features"] = "auto"
        select_epoch = "accuracy" if "acc" in options else None if "last" in options else "loss"
        teacher_args = {
            "select_epoch": select_epoch,
            "near_duplicates": None if "apart" in options else keras_adamixup.duplicates.RADIUS,
            "patience": None if "full" in options else 5,
            "weigh_groups": "unweighed" not in options}
        if public and public.group(1):  # _pubonlyN
            teacher_args["student_rows"] = "unlabelled"
        if public and public.group(2):  # _pub[only]nearN
            teacher_args["unlabelled_teachers"] = "nearest"
        mixing = "paper" if "mix" in options else "plateau" if "plateau" in options else None
        return "split_teachers", {"teachers": int(teachers), "exclude": int(exclude),
                                  "mixing": mixing, "checkpoint": select,
                                  "teacher_args": teacher_args, **model_args}
    mixing = {"checkpoint": select, **model_args}
    if defence.startswith("mixup_a"):
        return "adamixup", {"schedule": schedules.Constant(float(defence[len("mixup_a"):])),
                            "coefficient": "beta", "label_mode": "soft", **mixing}
    fixed = {"adamixup_linear_dominant": (schedules.LinearDecay, (0.4, 0.0), "dominant"),
             "adamixup_linear_soft": (schedules.LinearDecay, (0.4, 0.0), "soft"),
             "adamixup_floor_dominant": (schedules.LinearDecay, (0.4, 0.2), "dominant")}
    if defence in fixed:
        kind, arguments, label_mode = fixed[defence]
        return "adamixup", {"schedule": kind(*arguments), "label_mode": label_mode, **mixing}
    if defence.startswith("adamixup_const"):
        return "adamixup", {"schedule": schedules.Constant(
            float(defence[len("adamixup_const"):])), **mixing}
    if defence.startswith("adamixup_target_"):
        target = float(defence[len("adamixup_target_"):])
        # with a checkpoint, the controller is utility-aware too (issue 11)
        utility = {"max_accuracy_drop": 0.01, "backoff_patience": 3} if select else {}
        return "adamixup", {"schedule": lambda: schedules.PrivacyTarget(target, **utility),
                            **mixing}
    raise ValueError(f"Unknown defence {name!r}; choose from {DEFENCES}.")


class PublicRows(int):
    """`parse`'s placeholder for the ``_pubN`` public rows (N of them)."""


def recipe(defence, inputs, classes, width, seed, validation, epochs, feature_groups=None,
           public=None):
    """`(factory, fit_kwargs_for)` for a defence: `parse`'s entry of the recipe table.

    The factory returns a compiled model; ``fit_kwargs_for(x_train, y_train)``
    the arguments of its `fit` (fresh callbacks for every model, shadows
    included). Every model gets a `PrivacyMonitor` (members drawn from its own
    training data vs the validation set), which only logs unless the schedule
    is a `PrivacyTarget`, so the monitored AUC can be compared with the audit.
    ``public(count)`` returns the public rows of a ``_pubN`` name (`public_rows`).
    """
    setting = recipes_table.Setting(
        base=lambda: mlp(inputs, classes, width), holdout=validation, seed=seed, monitor=True,
        fit_kwargs={"epochs": epochs, "batch_size": 64, "verbose": 0})
    name, options = parse(defence, feature_groups)
    if isinstance(options.get("unlabelled"), PublicRows):
        if public is None:
            raise ValueError(f"{defence}: this benchmark has no public rows to give.")
        options["unlabelled"] = public(options["unlabelled"])
    made = recipes_table.recipe(name, setting, name=defence, **options)
    return made.factory, made.fit_kwargs


# -- one run and the summary --------------------------------------------------


def run_one(defence, data, seed, args, public=None):
    (x_m, y_m), nonmembers, validation = data
    classes = int(max(y_m.max(), nonmembers[1].max())) + 1
    factory, fit_kwargs_for = recipe(defence, x_m.shape[1], classes, args.width, seed,
                                     validation, args.epochs,
                                     feature_groups=FEATURE_GROUPS.get(args.data),
                                     public=public)
    keras.utils.set_random_seed(seed)
    model = factory()
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        train_kwargs = fit_kwargs_for(x_m, y_m)
        history = model.fit(x_m, y_m, **train_kwargs)
    outputs = "probabilities" if defence == "memguard" else None
    train_s = time.perf_counter() - start
    lira = None
    if args.lira_shadows:
        # Shadows of the undefended recipe, trained once per seed and shared:
        # the "none" defence's own LiRA, and every other defence's second
        # LiRA (lira_*_plain), because an attacker may ignore the defence's
        # recipe, and adaptive recipes make their own shadows disagree.
        plain_factory, plain_fit_kwargs_for = recipe("none", x_m.shape[1], classes, args.width,
                                                     seed, validation, args.epochs)
        plain = {"model_factory": plain_factory, "num_shadows": args.plain_shadows,
                 "fit_kwargs": plain_fit_kwargs_for, "progress": False,
                 "cache_dir": os.path.join(args.out, "lira_plain_shadows", f"seed{seed}")}
        lira = {"model_factory": factory, "num_shadows": args.lira_shadows,
                "fit_kwargs": fit_kwargs_for, "progress": False}
        if defence == "none":
            lira = plain
        elif not args.no_plain_lira:
            lira = [lira, {**plain, "name": "plain"}]
    attacks = audit.CHEAP_ATTACKS if args.cheap_attacks else audit.ALL_ATTACKS
    report = audit.run_audit(model, (x_m, y_m), nonmembers, name=defence, attacks=attacks,
                             lira=lira, seed=seed, attack_backend=args.attack_backend,
                             outputs=outputs)
    h = report.headline()
    row = {"data": args.data, "label_noise": args.label_noise, "defence": defence, "seed": seed,
           "epochs_run": len(history.history["loss"]), "train_s": round(train_s, 2),
           "audit_s": round(report.metadata["seconds"], 2)}
    row.update({k: h[k] for k in ("train_accuracy", "test_accuracy", "generalization_gap",
                                  "best_auc", "best_auc_attack", "best_advantage",
                                  "best_tpr_at_0.001_fpr", "best_tpr_at_0.01_fpr")})
    for r in report.rows("entire"):
        row[f"{r['attack']}_auc"] = r["auc"]
    logs = history.history
    if defence == "none" and "lira_online_auc" in row:  # its own shadows are the plain ones
        row["lira_online_plain_auc"] = row["lira_online_auc"]
    row["monitor_auc"] = logs["monitor_auc"][-1] if logs.get("monitor_auc") else None
    row["strength_final"] = logs["mixup_strength"][-1] if "mixup_strength" in logs else None
    row["strength_max"] = max(logs["mixup_strength"]) if "mixup_strength" in logs else None
    row["controller_saturated"] = any(
        issubclass(w.category, keras_adamixup.monitor.SaturationWarning) for w in caught)
    row["dp_epsilon"] = None
    if defence.startswith("dp_sgd_"):
        row["dp_epsilon"] = dp_sgd.epsilon(len(y_m), train_kwargs["batch_size"],
                                           row["epochs_run"], model.noise_multiplier, DP_DELTA)
    return row, report


def summarize(rows):
    """Mean and std over seeds per defence, in the order defences first appear."""
    by_defence = {}
    for row in rows:
        by_defence.setdefault(row["defence"], []).append(row)
    summary = {}
    for defence, group in by_defence.items():
        entry = {"seeds": len(group)}
        for field in SUMMARY_FIELDS:
            values = [g[field] for g in group if g.get(field) is not None]
            if values:
                entry[field] = (statistics.mean(values),
                                statistics.stdev(values) if len(values) > 1 else 0.0)
        summary[defence] = entry
    return summary


def markdown(summary, title):
    head = ("| defence | seeds | test acc | gap | best AUC | LiRA online AUC | "
            "LiRA online, undefended shadows | TPR@0.1%FPR | TPR@1%FPR |")
    lines = [f"## {title}", "", head, "|" + "---|" * 9]
    fmt = lambda e, k: f"{e[k][0]:.4f} ± {e[k][1]:.4f}" if k in e else "n/a"
    for defence, e in summary.items():
        lines.append(f"| {defence} | {e['seeds']} | {fmt(e, 'test_accuracy')} | "
                     f"{fmt(e, 'generalization_gap')} | {fmt(e, 'best_auc')} | "
                     f"{fmt(e, 'lira_online_auc')} | {fmt(e, 'lira_online_plain_auc')} | "
                     f"{fmt(e, 'best_tpr_at_0.001_fpr')} | "
                     f"{fmt(e, 'best_tpr_at_0.01_fpr')} |")
    epsilons = [f"{d} ε = {e['dp_epsilon'][0]:.2f}" for d, e in summary.items()
                if "dp_epsilon" in e]
    if epsilons:
        lines += ["", f"DP-SGD guarantee at δ = {DP_DELTA:g} (RDP accountant, Poisson "
                  "subsampling assumed for shuffled batches): " + "; ".join(epsilons) + "."]
    lines += ["", "Monitor vs audit (the monitor: loss-threshold AUC on a training subset "
              "vs the validation set, last epoch; the audit: TF Privacy's threshold attack "
              "on all members vs non-members):", "",
              "| defence | final strength | monitored AUC | audited threshold AUC | best AUC |",
              "|---|---|---|---|---|"]
    for defence, e in summary.items():
        lines.append(f"| {defence} | {fmt(e, 'strength_final')} | {fmt(e, 'monitor_auc')} | "
                     f"{fmt(e, 'threshold_auc')} | {fmt(e, 'best_auc')} |")
    return "\n".join(lines) + "\n"


def frontier(summary, path, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for ax, key, label in ((axes[0], "best_auc", "best attack AUC"),
                           (axes[1], "best_tpr_at_0.001_fpr", "best TPR at 0.1 % FPR")):
        for i, (defence, e) in enumerate(summary.items()):
            if key not in e or "test_accuracy" not in e:
                continue
            ax.errorbar(e[key][0], e["test_accuracy"][0], xerr=e[key][1],
                        yerr=e["test_accuracy"][1], fmt="osD^v<>"[i % 7], capsize=3,
                        color=plt.cm.tab20(i % 20), label=defence)
        ax.set_xlabel(f"{label} (lower is more private)")
        ax.set_ylabel("test accuracy")
    axes[0].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    with _io.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="digits")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--defences", default=",".join(DEFENCES))
    parser.add_argument("--members", type=int, default=800)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--lira-shadows", type=int, default=4,
                        help="shadows of each defence's own recipe (0: no LiRA / RMIA)")
    parser.add_argument("--plain-shadows", type=int, default=16,
                        help="undefended shadows, trained together and shared by the "
                             "defences of a seed (audit.lira.ENOUGH_SHADOWS)")
    parser.add_argument("--no-plain-lira", action="store_true",
                        help="audit each defence with its own shadow recipe only (by "
                             "default also with undefended shadows: lira_*_plain)")
    parser.add_argument("--cheap-attacks", action="store_true",
                        help="skip TF Privacy's MLP and random-forest attacks (slow)")
    parser.add_argument("--attack-backend", default=None)
    parser.add_argument("--label-noise", type=float, default=0.0,
                        help="replace this fraction of all labels (members, non-members "
                             "and validation alike) by random classes: a stress test in "
                             "which models memorize")
    parser.add_argument("--out", default="privacy_utility_out")
    parser.add_argument("--quick", action="store_true",
                        help="2 defences x 1 seed, 3 epochs, 2 shadows, cheap attacks")
    parser.add_argument("--merge", default=None, metavar="DIR,DIR",
                        help="instead of running: combine the runs.json of earlier outputs "
                             "(e.g. seeds run separately) into --out; a (defence, seed) "
                             "found again in a later folder replaces the earlier run; with --defences, only those are kept")
    args = parser.parse_args(argv)
    if args.merge:
        rows = merge_runs(args.merge.split(","))
        if args.defences != ",".join(DEFENCES):  # --defences with --merge: keep only those
            keep = set(args.defences.split(","))
            rows = [r for r in rows if r["defence"] in keep]
        names = ", ".join(os.path.basename(os.path.normpath(f)) for f in args.merge.split(","))
        write_outputs(rows, args.out, f"{rows[0]['data']}: merged from {names}")
        return 0
    if args.quick:
        args.seeds, args.epochs, args.lira_shadows, args.cheap_attacks = "0", 3, 2, True
        args.plain_shadows = 2
        args.members = min(args.members, 300)
        if args.defences == ",".join(DEFENCES):
            args.defences = "none,adamixup_linear_dominant,adamixup_target_0.55"
    pool = pool_or_skip(args.data)
    if pool is None:
        return 0
    if args.label_noise:
        x, y = pool
        rng = np.random.default_rng(12345)
        flip = rng.random(len(y)) < args.label_noise
        y = y.copy()
        y[flip] = rng.integers(0, int(y.max()) + 1, int(flip.sum()))
        pool = (x, y)
    defences = defence_names(args.defences)
    os.makedirs(args.out, exist_ok=True)
    rows = []
    seeds = [int(s) for s in args.seeds.split(",")]
    total = len(seeds) * len(defences)
    for seed in seeds:
        data = split(pool, args.members, seed)
        for defence in defences:
            row, report = run_one(
                defence, data, seed, args,
                public=lambda count: public_rows(pool, args.members, seed, count))
            rows.append(row)
            report.to_json(os.path.join(args.out, "reports", f"{defence}_seed{seed}.json"))
            print(f"[{len(rows)}/{total}] {defence:<26} seed {seed}: test acc "
                  f"{row['test_accuracy']:.4f}, best AUC {row['best_auc']:.4f} "
                  f"({row['best_auc_attack']}), TPR@0.1%FPR {row['best_tpr_at_0.001_fpr']:.4f}"
                  f" [{row['train_s'] + row['audit_s']:.0f} s]", flush=True)
            _io.write_text(os.path.join(args.out, "runs.json"), json.dumps(rows, indent=1))
    title = (f"{args.data}: {args.members} members, MLP {args.width}, {args.epochs} epochs, "
             f"seeds {args.seeds}, LiRA {args.lira_shadows} own-recipe and "
             f"{args.plain_shadows} undefended shadows"
             + (f", label noise {args.label_noise:g}" if args.label_noise else ""))
    write_outputs(rows, args.out, title)
    return 0


def merge_runs(folders):
    """The runs.json rows of `folders` (`rows.merged_rows`: a later folder's
    (defence, seed) replaces the earlier row), in `DEFENCES` order."""
    order = {d: i for i, d in enumerate(DEFENCES)}
    rows = sorted(rows_lib.merged_rows(folders),
                  key=lambda r: (order.get(r["defence"], len(order)), r["seed"]))
    rows_lib.one_data_set(rows)
    return rows


def write_outputs(rows, out, title):
    """runs.json, runs.csv, summary.md and frontier.png for a list of runs."""
    os.makedirs(out, exist_ok=True)
    _io.write_text(os.path.join(out, "runs.json"), json.dumps(rows, indent=1))
    fields = sorted({k for r in rows for k in r})
    with _io.atomic_path(os.path.join(out, "runs.csv")) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
    summary = summarize(rows)
    text = markdown(summary, title)
    _io.write_text(os.path.join(out, "summary.md"), text)
    frontier(summary, os.path.join(out, "frontier.png"), title)
    print("\n" + text)


if __name__ == "__main__":
    sys.exit(main())
