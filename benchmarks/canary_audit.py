"""Defended-model check: every defence audited with canaries in and out, and ε.

The full protocol of issue 21, on the defences of `privacy_utility.py`
(its recipes, splits and models: `benchmarks.names`, `benchmarks.data`): canaries of every kind (`mislabelled`,
`duplicate`, `outlier`) are planted from the members, each unit in the
training set with probability ½ (one draw per seed, shared by every defence,
so the defences are compared on the same canaries). Each defence trains on
the ordinary members plus its "in" canaries and is audited by TF Privacy's
cheap attacks, the label-only attacks, the hinge score, and LiRA (log-odds
and hinge) and RMIA from two shadow recipes: `--own-shadows` trained by the
defence's own recipe and `--plain-shadows` undefended ones (trained
together, cached per seed, shared by all defences). Every shadow sees every
canary, each in half of the shadows.

Reported per (defence, seed): test accuracy; population best AUC and TPR at
0.1 % FPR (the strongest attack, with its exact 95 % interval); per canary
kind the best AUC, the best TPR at 0.1 % FPR (at 0 false positives when
there are fewer than 1,000 out-units) with its interval, and the largest
one-run ε and ROC ε (95 % lower bounds at δ = 1e-5, per canary unit); and
DP-SGD's ε from its accountant. `--near-copy KIND[,KIND...]` makes the
duplicated canaries' near-copies of those kinds (`audit.canaries.NearCopy`:
relative, the default, absolute, shift, crop, jpeg, features; flattened MNIST
and digits are images of 28x28 and 8x8 pixels), `count` duplicate units per
kind, each kind also measured on its own (columns ``duplicate:KIND``).
Writes to --out:

    runs.json           one row per (defence, seed), every number above
    summary.md          the tables (mean over seeds when there are several)
    reports/            each audit's full report (JSON)

    python -m benchmarks.canary_audit --data digits --out ca_digits
    python -m benchmarks.canary_audit --data mnist --members 4000 --epochs 40 --out ca_mnist
    python -m benchmarks.canary_audit --quick --out /tmp/ca    # smoke test
    python -m benchmarks.canary_audit --data mnist --near-copy relative,absolute,shift \
        --kinds mislabelled,duplicate --out ca_mnist_near
    python -m benchmarks.canary_audit --merge ca_a,ca_b --out ca   # one table of several runs
"""

import json
import os
import sys
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

import keras_adamixup  # noqa: E402
from keras_adamixup import _io, audit  # noqa: E402

from benchmarks import baselines, common, names  # noqa: E402
from benchmarks.data import IMAGE_SHAPES, model_name, pool_or_skip, public_rows, split  # noqa: E402
from benchmarks.labels import LABELS, RECOMMENDED  # noqa: E402
from benchmarks.rows import mean as _mean, merged_rows, one_data_set  # noqa: E402

# none, early stopping, the recommended setting, split teachers alone, DP-SGD
# at two noise levels, MemGuard
DEFENCES = ("none", "early_stopping", RECOMMENDED, "teachers_16_2_ckpt",
            "dp_sgd_0.5", "dp_sgd_1.0", "memguard")
LOW = "tpr_at_0.001_fpr"


def near_copy(data, x, kinds, noise=0.05):
    """The `audit.canaries.NearCopy` of `kinds` for rows `x` of the data set `data`
    (flattened images get their image shape, `benchmarks.data.IMAGE_SHAPES`).

    Example:

    ```python
    near = near_copy("mnist", x_train, ("relative", "shift"))
    ```
    """
    shape = IMAGE_SHAPES.get(data) if x.ndim == 2 else None  # one channel
    shape = None if shape is None or x.shape[1] != shape[0] * shape[1] else (*shape, 1)
    return audit.canaries.NearCopy(kinds=tuple(kinds), noise=noise, image_shape=shape)


def _kind_order(kind):
    """Canary kinds in `audit.canaries.KINDS` order, a duplicate's near-copy kinds
    (``duplicate:KIND``) after ``duplicate``, in `NEAR_COPY_KINDS` order."""
    base, _, near = kind.partition(":")
    return (audit.canaries.KINDS.index(base),
            audit.canaries.NEAR_COPY_KINDS.index(near) + 1 if near else 0)


def kind_numbers(entry):
    """The strongest attack's numbers on one canary kind (each metric's own best)."""
    attacks = entry.get("attacks") or {}
    if not attacks:
        return None
    by_auc = max(attacks, key=lambda a: attacks[a]["auc"])
    by_tpr = max(attacks, key=lambda a: (attacks[a][LOW], attacks[a]["auc"]))
    eps = entry["epsilon"]
    return {"units": entry["units"], "in": entry["in"], "out": entry["out"],
            "measurable": entry["measurable"],
            "auc": attacks[by_auc]["auc"], "auc_attack": by_auc,
            "tpr": attacks[by_tpr][LOW], "tpr_ci": list(attacks[by_tpr][LOW + "_ci"]),
            "tpr_measurable": attacks[by_tpr][LOW + "_measurable"], "tpr_attack": by_tpr,
            "epsilon_one_run": eps["one_run"], "epsilon_attack": eps["attack"],
            "epsilon_roc": eps["roc"]}


def run_one(defence, data, planted, seed, args, public=None):
    (x_m, y_m), nonmembers, validation = data
    x_fit, y_fit = planted.add_to(x_m, y_m)
    classes = int(max(y_m.max(), nonmembers[1].max())) + 1
    factory, fit_kwargs_for = names.recipe(defence, x_m.shape[1:], classes, args.width, seed,
                                           validation, args.epochs, public=public,
                                           image_shape=IMAGE_SHAPES.get(args.data))
    plain_factory, plain_fit_kwargs_for = names.recipe("none", x_m.shape[1:], classes,
                                                       args.width, seed, validation,
                                                       args.epochs)
    plain = {"model_factory": plain_factory, "num_shadows": args.plain_shadows,
             "fit_kwargs": plain_fit_kwargs_for, "progress": False,
             "cache_dir": os.path.join(args.out, "plain_shadows", f"seed{seed}")}
    own = {"model_factory": factory, "num_shadows": args.own_shadows,
           "fit_kwargs": fit_kwargs_for, "progress": False}
    lira = plain if defence == "none" else [own, {**plain, "name": "plain"}]
    keras.utils.set_random_seed(seed)
    model = factory()
    start = time.perf_counter()
    train_kwargs = fit_kwargs_for(x_fit, y_fit)
    history = model.fit(x_fit, y_fit, **train_kwargs)
    train_s = time.perf_counter() - start
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", audit.lira.FewShadowsWarning)
        report = audit.run_audit(
            model, (x_m, y_m), nonmembers, name=defence, attacks=audit.CHEAP_ATTACKS,
            lira=lira, canaries=planted, seed=seed,
            outputs="probabilities" if defence == "memguard" else None)
    h = report.headline()
    best_low = report.best(LOW)
    row = {"data": args.data, "defence": defence, "seed": seed,
           "members": len(x_m), "nonmembers": len(nonmembers[0]),
           "epochs_run": len(history.history["loss"]), "train_s": round(train_s, 1),
           "audit_s": round(report.metadata["seconds"], 1),
           "own_shadows": 0 if defence == "none" else args.own_shadows,
           "plain_shadows": args.plain_shadows,
           "test_accuracy": h["test_accuracy"], "best_auc": h["best_auc"],
           "best_auc_attack": h["best_auc_attack"], "best_auc_ci": h["best_auc_ci"],
           "best_" + LOW: best_low[LOW], "best_tpr_attack": best_low["attack"],
           "best_tpr_ci": list(best_low[LOW + "_ci"]),
           "kinds": {kind: kind_numbers(entry) for kind, entry in
                     report.metadata["canaries"]["kinds_measured"].items()},
           "dp_epsilon": None}
    checkpoint = next((c for c in train_kwargs.get("callbacks", [])
                       if isinstance(c, keras_adamixup.PrivacyCheckpoint)), None)
    if checkpoint is not None and checkpoint.best_epoch is not None:
        row["kept_epoch"] = checkpoint.best_epoch + 1
    strengths = history.history.get("mixup_strength")
    if strengths is not None:  # the strength each epoch trained at, and at the kept one
        row["strengths"] = [round(float(v), 4) for v in strengths]
        row["strength_kept"] = row["strengths"][row.get("kept_epoch", len(strengths)) - 1]
    if defence.startswith("dp_sgd_"):
        row["dp_epsilon"] = baselines.dp_epsilon(len(y_fit), train_kwargs["batch_size"],
                                                 row["epochs_run"], model.noise_multiplier)
    return row, report


def _kept(group):
    """The checkpoint's kept epoch and the strength it trained at, per seed (or –)."""
    cells = []
    for g in group:
        if "kept_epoch" in g:
            strength = g.get("strength_kept")
            cells.append(str(g["kept_epoch"]) + ("" if strength is None
                                                 else f" ({strength:.2f})"))
    return ", ".join(cells) or "–"


def markdown(rows, title):
    """Two tables: population and per canary kind (means over seeds, intervals for one)."""
    by_defence = {}
    for row in rows:
        by_defence.setdefault(row["defence"], []).append(row)
    kinds = sorted({k for r in rows for k in r["kinds"]}, key=_kind_order)
    one_seed = all(len(g) == 1 for g in by_defence.values())
    lines = [f"## {title}", "",
             "| defence | seeds | test acc | best AUC (population) | TPR@0.1%FPR [95 % CI] | "
             "shadows own / undefended | DP ε (accountant) | train s | kept epoch (strength) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for defence, group in by_defence.items():
        first = group[0]
        ci = (f" [{first['best_tpr_ci'][0]:.3f}, {first['best_tpr_ci'][1]:.3f}]"
              if one_seed else "")
        dp = _mean([g["dp_epsilon"] for g in group])
        lines.append(
            f"| {LABELS.get(defence, defence)} | {len(group)} | "
            f"{_mean([g['test_accuracy'] for g in group]):.4f} | "
            f"{_mean([g['best_auc'] for g in group]):.3f} ({first['best_auc_attack']}) | "
            f"{_mean([g['best_' + LOW] for g in group]):.4f}{ci} ({first['best_tpr_attack']}) | "
            f"{first['own_shadows']} / {first['plain_shadows']} | "
            + ("–" if dp is None else f"{dp:.1f}") + " | "
            f"{_mean([g['train_s'] for g in group]):.0f} | {_kept(group)} |")
    head = "".join(f" {k}: AUC / TPR@0.1%FPR [CI] / ε one-run, ROC |" for k in kinds)
    lines += ["", "Canaries, in vs out (each unit in with probability 1/2; TPR at 0 false "
              "positives when there are fewer than 1,000 out-units; ε: 95 % lower bounds at "
              "δ = 1e-5 per canary unit, the largest over the attacks):", "",
              "| defence |" + head, "|---|" + "---|" * len(kinds)]
    for defence, group in by_defence.items():
        cells = []
        for kind in kinds:
            numbers = [g["kinds"].get(kind) for g in group if g["kinds"].get(kind)]
            if not numbers:
                cells.append("–")
                continue
            n = numbers[0]
            ci = f" [{n['tpr_ci'][0]:.2f}, {n['tpr_ci'][1]:.2f}]" if one_seed else ""
            cells.append(
                f"{_mean([x['auc'] for x in numbers]):.3f} ({n['auc_attack']}) / "
                f"{_mean([x['tpr'] for x in numbers]):.2f}{ci} / "
                f"{_mean([x['epsilon_one_run'] for x in numbers]):.2f}, "
                f"{_mean([x['epsilon_roc'] for x in numbers]):.2f}")
        lines.append(f"| {LABELS.get(defence, defence)} | " + " | ".join(cells) + " |")
    counts = rows[0]["kinds"]
    lines += ["", "Units per kind (seed " + str(rows[0]["seed"]) + "): " + "; ".join(
        f"{k} {v['units']} ({v['in']} in, {v['out']} out)" for k, v in counts.items() if v)
        + "."]
    return "\n".join(lines) + "\n"


def arguments(argv):
    """The command line, with --quick's sizes applied."""
    parser = common.parser(__doc__, "data", "seeds", "members", "epochs", "width", "merge",
                           defences=",".join(DEFENCES), out="canary_audit_out",
                           quick="none and early stopping, 3 epochs, 10 canaries per kind, "
                                 "2 + 2 shadows")
    parser.add_argument("--canaries", type=int, default=50, help="units per kind")
    parser.add_argument("--kinds", default=",".join(audit.canaries.KINDS))
    parser.add_argument("--near-copy-noise", type=float, default=0.05,
                        help="the duplicated canaries' noise, relative to each feature's "
                             "standard deviation (0: exact copies)")
    parser.add_argument("--near-copy", default="relative",
                        help="the duplicated canaries' near-copy kinds, comma-separated: "
                             + ", ".join(audit.canaries.NEAR_COPY_KINDS)
                             + " (each gets --canaries units)")
    parser.add_argument("--own-shadows", type=int, default=8)
    parser.add_argument("--plain-shadows", type=int, default=16)
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.own_shadows, args.plain_shadows, args.canaries = 3, 2, 2, 10
        args.members = min(args.members, 300)
        if args.defences == ",".join(DEFENCES):
            args.defences = "none,early_stopping"
    return args


def main(argv=None):
    args = arguments(argv)
    if args.merge:
        rows = merge_runs(args.merge.split(","),
                          None if args.defences == ",".join(DEFENCES) else
                          args.defences.split(","))
        text = markdown(rows, f"{rows[0]['data']}: merged from {args.merge}")
        _io.write_text(os.path.join(args.out, "summary.md"), text)
        _io.write_text(os.path.join(args.out, "runs.json"), json.dumps(rows, indent=1))
        print(text)
        return 0
    defences = names.checked(args.defences)
    pool = pool_or_skip(args.data)
    if pool is None:
        return 0
    kinds = tuple(args.kinds.split(","))
    near_kinds = tuple(args.near_copy.split(","))
    os.makedirs(args.out, exist_ok=True)
    rows = []
    seeds = common.integers(args.seeds)
    for seed in seeds:
        (x_m, y_m), nonmembers, validation = split(pool, args.members, seed)
        x_rest, y_rest, planted = audit.canaries.plant(
            x_m, y_m, count=args.canaries, kinds=kinds, seed=seed,
            near_copy=near_copy(args.data, x_m, near_kinds, args.near_copy_noise))
        data = ((x_rest, y_rest), nonmembers, validation)
        for defence in defences:
            row, report = run_one(
                defence, data, planted, seed, args,
                public=lambda count: public_rows(pool, args.members, seed, count))
            row["near_copy_noise"] = args.near_copy_noise
            if near_kinds != ("relative",):
                row["near_copy"] = list(near_kinds)
            rows.append(row)
            report.to_json(os.path.join(args.out, "reports", f"{defence}_seed{seed}.json"))
            per_kind = ", ".join(f"{k} {v['auc']:.2f}/{v['tpr']:.2f}"
                                 for k, v in row["kinds"].items() if v)
            print(f"[{len(rows)}/{len(seeds) * len(defences)}] {defence:<24} seed {seed}: "
                  f"acc {row['test_accuracy']:.4f}, best AUC {row['best_auc']:.3f}, "
                  f"TPR@0.1% {row['best_' + LOW]:.4f}; canaries AUC/TPR {per_kind} "
                  f"[{row['train_s'] + row['audit_s']:.0f} s]", flush=True)
            _io.write_text(os.path.join(args.out, "runs.json"), json.dumps(rows, indent=1))
    title = (f"{args.data}: {rows[0]['members']} ordinary members + canaries, "
             f"{model_name(args.data, args.width)}, {args.epochs} epochs, seeds {args.seeds}, "
             f"{args.canaries} canary units per kind"
             + ("" if near_kinds == ("relative",) else
                f" (duplicates' near-copies: {', '.join(near_kinds)})"))
    text = markdown(rows, title)
    _io.write_text(os.path.join(args.out, "summary.md"), text)
    print("\n" + text)
    return 0


def merge_runs(folders, defences=None):
    """The rows of the folders' runs.json (`rows.merged_rows`: later folders replace a
    (defence, seed)); with `defences`, only those, in that order."""
    rows = merged_rows(folders)
    if defences is not None:
        order = {d: i for i, d in enumerate(defences)}
        rows = sorted((r for r in rows if r["defence"] in order),
                      key=lambda r: (order[r["defence"]], r["seed"]))
    one_data_set(rows)
    return rows


if __name__ == "__main__":
    sys.exit(main())
