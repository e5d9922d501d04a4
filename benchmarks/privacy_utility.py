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

    python -m benchmarks.privacy_utility --data digits --seeds 0,1,2 --out bench_out
    python -m benchmarks.privacy_utility --quick --out /tmp/pu   # smoke test

Data: ``digits`` (default, offline), ``mnist`` and ``adult`` from
../shared/data (skipped with a message when absent), ``npz:PATH`` (members
and non-members pooled, then split again), ``tfds:NAME`` (a
tensorflow-datasets name: its train and test splits pooled): `benchmarks.data`.
``--defences`` takes any recipe name of `benchmarks.names` (``DEFENCES``: the
ones measured here).
"""

import csv
import json
import os
import statistics
import sys
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_adamixup  # noqa: E402
from keras_adamixup import _io, audit  # noqa: E402

from benchmarks import baselines, common, names  # noqa: E402
from benchmarks import rows as rows_lib  # noqa: E402
from benchmarks.data import (FEATURE_GROUPS, IMAGE_SHAPES, load_pool,  # noqa: E402,F401
                             model_name, pool_or_skip, public_rows, split)
from benchmarks.names import parse, recipe  # noqa: E402,F401

# the defences measured (any other name of benchmarks.names runs too)
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
SUMMARY_FIELDS = ("test_accuracy", "generalization_gap", "best_auc", "lira_online_auc",
                  "lira_online_plain_auc",
                  "best_tpr_at_0.001_fpr", "best_tpr_at_0.01_fpr", "monitor_auc",
                  "threshold_auc", "strength_final", "dp_epsilon")


# -- one run and the summary --------------------------------------------------


def run_one(defence, data, seed, args, public=None):
    (x_m, y_m), nonmembers, validation = data
    classes = int(max(y_m.max(), nonmembers[1].max())) + 1
    factory, fit_kwargs_for = recipe(defence, x_m.shape[1:], classes, args.width, seed,
                                     validation, args.epochs,
                                     feature_groups=FEATURE_GROUPS.get(args.data),
                                     public=public, image_shape=IMAGE_SHAPES.get(args.data))
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
        plain_factory, plain_fit_kwargs_for = recipe("none", x_m.shape[1:], classes, args.width,
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
        row["dp_epsilon"] = baselines.dp_epsilon(len(y_m), train_kwargs["batch_size"],
                                                 row["epochs_run"], model.noise_multiplier)
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
        lines += ["", f"DP-SGD guarantee at δ = {baselines.DP_DELTA:g} (RDP accountant, Poisson "
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


def arguments(argv):
    """The command line, with --quick's sizes applied."""
    parser = common.parser(__doc__, "data", "members", "epochs", "width", "merge",
                           seeds="0,1,2", defences=",".join(DEFENCES),
                           out="privacy_utility_out",
                           quick="2 defences x 1 seed, 3 epochs, 2 shadows, cheap attacks")
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
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.epochs, args.lira_shadows, args.cheap_attacks = "0", 3, 2, True
        args.plain_shadows = 2
        args.members = min(args.members, 300)
        if args.defences == ",".join(DEFENCES):
            args.defences = "none,adamixup_linear_dominant,adamixup_target_0.55"
    return args


def _noisy(pool, share):
    """`pool` with `share` of its labels replaced by random classes (a fixed draw)."""
    x, y = pool
    rng = np.random.default_rng(12345)
    flip = rng.random(len(y)) < share
    y = y.copy()
    y[flip] = rng.integers(0, int(y.max()) + 1, int(flip.sum()))
    return x, y


def main(argv=None):
    args = arguments(argv)
    if args.merge:
        rows = merge_runs(args.merge.split(","))
        if args.defences != ",".join(DEFENCES):  # --defences with --merge: keep only those
            keep = set(args.defences.split(","))
            rows = [r for r in rows if r["defence"] in keep]
        merged = ", ".join(os.path.basename(os.path.normpath(f)) for f in args.merge.split(","))
        write_outputs(rows, args.out, f"{rows[0]['data']}: merged from {merged}")
        return 0
    pool = pool_or_skip(args.data)
    if pool is None:
        return 0
    if args.label_noise:
        pool = _noisy(pool, args.label_noise)
    defences = names.checked(args.defences)
    os.makedirs(args.out, exist_ok=True)
    rows = []
    seeds = common.integers(args.seeds)
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
    title = (f"{args.data}: {args.members} members, {model_name(args.data, args.width)}, {args.epochs} epochs, "
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
