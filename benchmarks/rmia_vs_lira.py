"""RMIA vs LiRA from the same shadow models, with 2, 4 and 8 shadows.

For one data set (digits, MNIST or Adult; `benchmarks.data`'s split and
MLP) it trains three target models: undefended (``none``), early stopping and
the paper's schedule with `PrivacyCheckpoint` (``adamixup_linear_dominant_ckpt``).
Each is attacked with undefended shadows (the plain recipe, trained together
in one compiled step) for every K: LiRA online/offline (global variance, the
default under 64 shadows) and RMIA online/offline (a = 0.3, γ = 1), all from
the same shadows. Prints AUC and TPR at 0.1 % and 1 % FPR with 95 % intervals
(Hanley–McNeil; exact binomial).

    python -m benchmarks.rmia_vs_lira --data digits [--shadows 2,4,8] [--seed 0]
    python -m benchmarks.rmia_vs_lira --data mnist --members 4000 --epochs 40
"""

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_adamixup.audit import lira, rmia, roc  # noqa: E402
from keras_adamixup.audit._predict import predict_outputs  # noqa: E402

from benchmarks import common, names  # noqa: E402
from benchmarks.data import pool_or_skip, split  # noqa: E402

TARGETS = ("none", "early_stopping", "adamixup_linear_dominant_ckpt")
ATTACKS = ("lira_online", "lira_offline", "rmia_online", "rmia_offline")


def summary(scores, n_members):
    m, n = scores[:n_members], scores[n_members:]
    fpr, tpr, _ = roc.roc_from_scores(m, n)
    return roc.summarize(fpr, tpr, len(m), len(n), ppv=0.0)


def fmt(row, key):
    low, high = row[key + "_ci"]
    mark = "" if row.get(key + "_measurable", True) else "†"
    return f"{row[key]:.4f}{mark} [{low:.4f}, {high:.4f}]"


def main(argv=None):
    parser = common.parser(__doc__, "data", "members", "epochs", "width", "seed")
    parser.add_argument("--shadows", default="2,4,8", help="comma-separated K")
    parser.add_argument("--targets", default=",".join(TARGETS),
                        help="comma-separated recipe names (benchmarks.names)")
    args = parser.parse_args(argv)
    pool = pool_or_skip(args.data)
    if pool is None:
        return 0
    (x_m, y_m), (x_n, y_n), validation = split(pool, args.members, args.seed)
    classes = int(pool[1].max()) + 1
    x = np.concatenate([x_m, x_n])
    y = np.concatenate([y_m, y_n])
    print(f"{args.data}: {len(x_m)} members / {len(x_n)} non-members, MLP {args.width}, "
          f"{args.epochs} epochs, seed {args.seed}", flush=True)
    plain_factory, _ = names.recipe("none", x.shape[1], classes, args.width, args.seed,
                                    validation, args.epochs)
    plain_fit = {"epochs": args.epochs, "batch_size": 64}
    ks = common.integers(args.shadows)
    shadow_sets = {}
    for k in ks:
        start = time.perf_counter()
        masks = lira.shadow_masks(k, len(x), args.seed)
        shadow_sets[k] = (masks, lira.shadow_outputs(
            plain_factory, x, y, masks, fit_kwargs=plain_fit, progress=False, seed=args.seed))
        print(f"{k} shadows: {time.perf_counter() - start:.1f} s", flush=True)
    lines = ["| target | test acc | shadows | attack | AUC [95 % CI] | TPR@0.1%FPR [CI] "
             "| TPR@1%FPR [CI] |", "|---|---|---|---|---|---|---|"]
    for target in names.checked(args.targets):
        factory, fit_kwargs_for = names.recipe(target, x.shape[1], classes, args.width,
                                               args.seed, validation, args.epochs)
        keras.utils.set_random_seed(args.seed)
        model = factory()
        model.fit(x_m, y_m, **fit_kwargs_for(x_m, y_m))
        out = predict_outputs(model, x)
        acc = float(np.mean(predict_outputs(model, x_n).argmax(axis=1) == y_n))
        for k in ks:
            masks, outs = shadow_sets[k]
            scores = lira.lira_scores(out, outs, y, masks, outputs="logits")
            scores.update(rmia.rmia_scores(out, outs, y, masks, outputs="logits"))
            for attack in ATTACKS:
                row = summary(scores[attack], len(x_m))
                low, high = row["auc_ci"]
                lines.append(f"| {target} | {acc:.4f} | {k} | {attack} | {row['auc']:.4f} "
                             f"[{low:.4f}, {high:.4f}] | {fmt(row, 'tpr_at_0.001_fpr')} | "
                             f"{fmt(row, 'tpr_at_0.01_fpr')} |")
        print(f"{target}: done", flush=True)
    print("\n" + "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
