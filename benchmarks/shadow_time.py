"""LiRA shadow training: K models together in one compiled step vs one after another.

The demo's recipe on scikit-learn digits (MLP 256-256, Adam 1e-3, 60 epochs,
batch 64; population = the demo's 718 members + 718 non-members). For each K
it times, in one run, one model's training (`fit` on a shadow-sized half),
K shadows trained one after another (`together=False`, the sequential path)
and K shadows trained together (`together=True`), and prints the ratios to
one model's training. For the largest K it also audits the demo's undefended
model with LiRA from each shadow set (and from a second sequential set with
another split seed: the seed noise), so the two paths can be compared.

    python -m benchmarks.shadow_time [--shadows 2,4,8] [--epochs 60] [--repeats 3]
"""

import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_adamixup import demo  # noqa: E402
from keras_adamixup import predictions  # noqa: E402
from keras_adamixup.audit import lira, roc  # noqa: E402
from keras_adamixup.audit._predict import predict_outputs  # noqa: E402

from benchmarks import common  # noqa: E402


def _timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def _lira_numbers(target_out, shadow_outs, y, masks, n_members):
    scores = lira.lira_scores(target_out, shadow_outs, y, masks)["lira_online"]
    m, n = scores[:n_members], scores[n_members:]
    fpr, tpr = roc.roc_from_scores(m, n)[:2]
    return predictions.roc_auc(m, n), roc.tpr_at_fpr(fpr, tpr, 0.01), scores


def _lira_agreement(sets, shadows, factory, fit_kwargs, data, k, seed):
    """Prints LiRA's numbers on one target from the K-shadow sets: sequential, together,
    and sequential with another split seed (`shadows(k, together, seed)` trains one)."""
    x_m, y_m, x, y = data
    keras.utils.set_random_seed(seed)
    target = factory()
    target.fit(x_m, y_m, verbose=0, **fit_kwargs)
    target_out = predict_outputs(target, x)
    other_seed = seed + 1
    sets[(k, "other seed")] = shadows(k, False, seed=other_seed)
    print(f"\nLiRA online on the undefended demo model, {k} shadows "
          "(AUC, TPR@1%FPR, Spearman correlation of the per-example scores with the "
          "sequential set):")
    print("| shadows | AUC | TPR@1%FPR | rank correlation |\n|---|---|---|---|")
    reference = None
    for key, label in (((k, False), f"sequential, split seed {seed}"),
                       ((k, True), f"together, split seed {seed}"),
                       ((k, "other seed"), f"sequential, split seed {other_seed}")):
        masks, outs = sets[key]
        auc, tpr, scores = _lira_numbers(target_out, outs, y, masks, len(x_m))
        ranks = np.argsort(np.argsort(scores))
        reference = ranks if reference is None else reference
        corr = np.corrcoef(ranks, reference)[0, 1]
        print(f"| {label} | {auc:.4f} | {tpr:.4f} | {corr:.3f} |")


def main(argv=None):
    parser = common.parser(__doc__, "epochs", "repeats", "seed", batch_size=64)
    parser.add_argument("--shadows", default="2,4,8", help="comma-separated K")
    args = parser.parse_args(argv)
    ks = common.integers(args.shadows)
    (x_m, y_m), (x_n, y_n), _, _ = demo.split_digits(args.seed)
    x = np.concatenate([x_m, x_n]).astype("float32")
    y = np.concatenate([y_m, y_n]).astype("int64")
    fit_kwargs = {"epochs": args.epochs, "batch_size": args.batch_size}
    factory = demo.undefended_factory
    print(f"digits: population {len(x)} (members {len(x_m)}), MLP 256-256, "
          f"{args.epochs} epochs, batch {args.batch_size}; {keras.__version__=}")

    def one_model():
        masks = lira.shadow_masks(2, len(x), args.seed)
        keras.utils.set_random_seed(args.seed)
        model = factory()
        model.fit(x[masks[0]], y[masks[0]], verbose=0, **fit_kwargs)
        keras.backend.clear_session(free_memory=False)

    def shadows(k, together, seed=args.seed):
        masks = lira.shadow_masks(k, len(x), seed)
        outs = lira.shadow_outputs(factory, x, y, masks, fit_kwargs=fit_kwargs,
                                   progress=False, seed=seed, together=together)
        return masks, outs

    one_model()  # warm-up: TensorFlow's first trace
    rows, sets = [], {}
    for k in ks:
        # interleaved repeats: machine noise hits every path alike
        times = {"one": [], "sequential": [], "together": []}
        for _ in range(args.repeats):
            times["one"].append(_timed(one_model)[0])
            seconds, sets[(k, False)] = _timed(lambda: shadows(k, False))
            times["sequential"].append(seconds)
            seconds, sets[(k, True)] = _timed(lambda: shadows(k, True))
            times["together"].append(seconds)
        med = {key: statistics.median(v) for key, v in times.items()}
        rows.append((k, med))
        print(f"K={k}: one model {med['one']:.1f} s, sequential {med['sequential']:.1f} s "
              f"({med['sequential'] / med['one']:.2f}×), together {med['together']:.1f} s "
              f"({med['together'] / med['one']:.2f}×)", flush=True)

    print("\n| K | one model (s) | K sequential (s) | K together (s) | sequential / one "
          "| together / one | sequential / together |")
    print("|---|---|---|---|---|---|---|")
    for k, med in rows:
        print(f"| {k} | {med['one']:.1f} | {med['sequential']:.1f} | {med['together']:.1f} | "
              f"{med['sequential'] / med['one']:.2f} | {med['together'] / med['one']:.2f} | "
              f"{med['sequential'] / med['together']:.2f} |")

    _lira_agreement(sets, shadows, factory, fit_kwargs, (x_m, y_m, x, y), max(ks), args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
