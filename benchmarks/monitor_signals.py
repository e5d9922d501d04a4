"""Cheap in-training membership signals vs the audit's attacks, on one model.

Trains the undefended MLP of `benchmarks.data` on one split and compares,
on all members vs all non-members, the AUC of signals computable from the
trained model alone (what a `PrivacyMonitor` could use) with TF Privacy's
threshold attack and LiRA (online and offline, shadow models):

- loss threshold (the monitor's signal);
- loss normalized per class by the non-members' mean and std;
- change of the logit-scaled confidence since epoch 1 and since epoch 5
  (a training-trajectory reference);
- the package's `PrivacyMonitor(signal="trajectory", reference_epoch=5)` on
  the same members and non-members (its last measurement), which should
  equal the row above it.

    python -m benchmarks.monitor_signals [--data digits] [--label-noise 0] [--shadows 4]
    python -m benchmarks.monitor_signals --quick
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

import keras_adamixup  # noqa: E402
from keras_adamixup import audit, predictions  # noqa: E402

from benchmarks import common  # noqa: E402
from benchmarks.data import mlp, pool_or_skip, split  # noqa: E402


def logit_confidence(model, x, y):
    """log(p_y / (1 − p_y)) of the true class (LiRA's statistic)."""
    return predictions.log_odds(keras.ops.convert_to_numpy(model(x)), y, "logits")


def class_normalized(score_m, y_m, score_n, y_n):
    """Scores standardized per class by the non-members' mean and std."""
    zm, zn = score_m.astype("float64"), score_n.astype("float64")
    for c in np.union1d(y_m, y_n):
        ref = score_n[y_n == c]
        mu, sd = (ref.mean(), ref.std() + 1e-9) if ref.size else (0.0, 1.0)
        zm[y_m == c] = (score_m[y_m == c] - mu) / sd
        zn[y_n == c] = (score_n[y_n == c] - mu) / sd
    return zm, zn


def main(argv=None):
    parser = common.parser(__doc__, "data", "members", "epochs", "seed",
                           quick="200 members, 6 epochs, 2 shadows")
    parser.add_argument("--shadows", type=int, default=4)
    args = parser.parse_args(argv)
    if args.quick:
        args.members, args.epochs, args.shadows = 200, 6, 2
    pool = pool_or_skip(args.data)
    if pool is None:
        return None
    (xm, ym), (xn, yn), _ = split(pool, args.members, args.seed)
    classes = int(pool[1].max()) + 1

    def factory():
        model = mlp(xm.shape[1], classes, 256)
        model.compile(keras.optimizers.Adam(1e-3),
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return model

    keras.utils.set_random_seed(args.seed)
    model, snapshots = factory(), {}
    marks = {0, min(4, args.epochs - 1)}
    record = keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: snapshots.update(
        {e: (logit_confidence(model, xm, ym), logit_confidence(model, xn, yn))}
        if e in marks else {}))
    monitor = keras_adamixup.PrivacyMonitor((xm, ym), (xn, yn), signal="trajectory",
                                            reference_epoch=min(5, args.epochs))
    model.fit(xm, ym, epochs=args.epochs, batch_size=64, verbose=0,
              callbacks=[record, monitor])
    fm, fn = logit_confidence(model, xm, ym), logit_confidence(model, xn, yn)
    truth = np.r_[np.ones(len(fm)), np.zeros(len(fn))]
    auc = lambda a, b: float(roc_auc_score(truth, np.r_[a, b]))
    results = {"loss threshold (monitor)": auc(fm, fn),
               "loss normalized per class": auc(*class_normalized(fm, ym, fn, yn))}
    for epoch in sorted(snapshots):
        am, an = snapshots[epoch]
        results[f"confidence change since epoch {epoch + 1}"] = auc(fm - am, fn - an)
    last = monitor.records[-1]
    results["PrivacyMonitor, signal='trajectory'"] = last.get("trajectory_auc", float("nan"))
    results["PrivacyMonitor, its loss AUC"] = last["loss_auc"]
    report = audit.run_audit(
        model, (xm, ym), (xn, yn), attacks=("threshold",), slices=("entire",),
        label_only_noise=None, seed=args.seed,
        lira={"model_factory": factory, "num_shadows": args.shadows, "progress": False,
              "fit_kwargs": {"epochs": args.epochs, "batch_size": 64}})
    for row in report.rows("entire"):
        results[f"audit: {row['attack']}"] = row["auc"]
    print(f"{args.data}: {len(xm)} members vs {len(xn)} non-members, {args.epochs} epochs, "
          f"LiRA {args.shadows} shadows")
    for name, value in results.items():
        print(f"{name:<36} AUC {value:.4f}")
    return results


if __name__ == "__main__":
    main()
