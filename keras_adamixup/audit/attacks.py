"""TensorFlow Privacy's attack suite on one member/non-member split.

We call TF Privacy's `run_attacks` with its `AttackInputData` and
`SlicingSpec` and only read off what it returns (ROC arrays, membership
scores); nothing here re-implements its attacks. The trained attacks fit
scikit-learn models with a 3-fold grid search per slice, which is slow
(random forest: ~45 s for 500 + 500 examples on 2 cores), so by default they
run on the entire data set and only the cheap attacks run on every slice;
``thorough=True`` runs every attack on every slice.

Work-around (TF Privacy 0.8.12): with only `probs_train`/`probs_test` given,
its threshold-entropy attack reads `logits_train` and crashes. We always pass
log-probabilities as `logits_*`: softmax maps them back to exactly the same
probabilities, so losses and entropies are those of the model's outputs.
"""

import warnings

import numpy as np

from keras_adamixup.audit import _tfp
from keras_adamixup.audit import roc

ALL_ATTACKS = (
    "threshold",
    "threshold_entropy",
    "logistic_regression",
    "mlp",
    "random_forest",
    "knn",
)
CHEAP_ATTACKS = ("threshold", "threshold_entropy", "logistic_regression", "knn")
SLICES = ("entire", "class", "correctness")
_TYPE_NAMES = {
    "threshold": "THRESHOLD_ATTACK",
    "threshold_entropy": "THRESHOLD_ENTROPY_ATTACK",
    "logistic_regression": "LOGISTIC_REGRESSION",
    "mlp": "MULTI_LAYERED_PERCEPTRON",
    "random_forest": "RANDOM_FOREST",
    "knn": "K_NEAREST_NEIGHBORS",
}
_NAMES = {v: k for k, v in _TYPE_NAMES.items()}


def check_names(attacks, slices):
    for a in attacks:
        if a not in ALL_ATTACKS:
            raise ValueError(f"Unknown attack {a!r}; choose from {ALL_ATTACKS}.")
    for s in slices:
        if s not in SLICES:
            raise ValueError(f"Unknown slice {s!r}; choose from {SLICES}.")
    if not attacks:
        raise ValueError("`attacks` is empty: nothing to run.")


def _slice_name(spec):
    if spec.entire_dataset:
        return "entire"
    feature = spec.feature.name.lower()
    return f"{'class' if feature == 'class' else feature}={spec.value}"


def check_slice_sizes(labels_m, labels_n, slices, min_per_slice):
    """Raises when the whole split is too small; returns the class slices skipped.

    TF Privacy silently drops slices below `min_num_samples`; we raise for the
    entire data set and report which class slices were skipped.
    """
    if min(len(labels_m), len(labels_n)) < min_per_slice:
        raise ValueError(
            f"Too few examples for a stable attack: {len(labels_m)} members and "
            f"{len(labels_n)} non-members (minimum {min_per_slice} of each). Audit "
            "more examples or lower `min_per_slice`."
        )
    skipped = []
    if "class" in slices:
        for c in np.union1d(labels_m, labels_n):
            m, n = int(np.sum(labels_m == c)), int(np.sum(labels_n == c))
            if min(m, n) < min_per_slice:
                skipped.append(f"class={c} ({m} members / {n} non-members)")
    return skipped


def run_tfp_attacks(probs_m, labels_m, probs_n, labels_n, *, attacks=ALL_ATTACKS,
                    slices=SLICES, thorough=False, min_per_slice=10, backend=None):
    """Runs the suite; returns (rows, histograms).

    rows: one dict per (attack, slice) with the metrics of `roc.summarize`,
    plus ``"roc"`` (down-sampled fpr/tpr) for entire-data-set results.
    histograms: membership-score histograms of the entire-data-set threshold
    attacks.
    backend: joblib backend for the trained attacks' grid searches (TF
    Privacy's `backend`; ``None`` is single-threaded, ``"loky"`` uses every
    core).
    """
    tfp = _tfp.load()
    check_names(attacks, slices)
    check_slice_sizes(labels_m, labels_n, slices, min_per_slice)
    log_m = np.log(np.clip(probs_m, 1e-45, None))
    log_n = np.log(np.clip(probs_n, 1e-45, None))
    data = tfp.AttackInputData(
        logits_train=log_m, logits_test=log_n, labels_train=labels_m, labels_test=labels_n
    )
    types = lambda names: [getattr(tfp.AttackType, _TYPE_NAMES[a]) for a in names]
    runs = []
    sliced = [s for s in slices if s != "entire"]
    entire_spec = tfp.SlicingSpec(entire_dataset=True)
    slice_spec = tfp.SlicingSpec(
        entire_dataset=False,
        by_class="class" in sliced,
        by_classification_correctness="correctness" in sliced,
    )
    if thorough:
        runs.append((tfp.SlicingSpec(
            entire_dataset="entire" in slices, by_class="class" in sliced,
            by_classification_correctness="correctness" in sliced), attacks))
    else:
        if "entire" in slices:
            runs.append((entire_spec, attacks))
        cheap = [a for a in attacks if a in CHEAP_ATTACKS]
        if sliced and cheap:
            runs.append((slice_spec, cheap))
    rows, histograms = [], {}
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        # TF Privacy's epsilon lower bound divides by zero on perfect curves,
        # and its grid searches stop lbfgs early by design. Neither changes a
        # metric.
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.filterwarnings("ignore", message="One or more of the test scores are non-finite")
        for spec, names in runs:
            results = tfp.run_attacks(data, spec, attack_types=types(names),
                                      min_num_samples=min_per_slice, backend=backend)
            for r in results.single_attack_results:
                rows.append(_row(r, tfp))
                if r.slice_spec.entire_dataset and r.membership_scores_train is not None:
                    histograms[rows[-1]["attack"]] = roc.histogram(
                        np.asarray(r.membership_scores_train), np.asarray(r.membership_scores_test))
    return rows, histograms


def _row(result, tfp):
    curve = result.roc_curve
    row = {"attack": _NAMES[result.attack_type.name], "slice": _slice_name(result.slice_spec),
           "source": "tf_privacy"}
    row.update(roc.summarize(curve.fpr, curve.tpr, result.data_size.ntrain,
                             result.data_size.ntest, result.get_ppv()))
    if result.slice_spec.entire_dataset:
        fpr, tpr = roc.downsample(curve.fpr, curve.tpr)
        row["roc"] = {"fpr": fpr, "tpr": tpr}
    return row


def rows_from_scores(attack, member_scores, nonmember_scores, source):
    """A report row (entire data set) for an attack of ours that yields scores."""
    tfp = _tfp.load()
    member_scores = np.asarray(member_scores, dtype="float64")
    nonmember_scores = np.asarray(nonmember_scores, dtype="float64")
    fpr, tpr, thresholds = roc.roc_from_scores(member_scores, nonmember_scores)
    curve = tfp.RocCurve(thresholds=thresholds, tpr=tpr, fpr=fpr,
                         test_train_ratio=len(nonmember_scores) / len(member_scores))
    row = {"attack": attack, "slice": "entire", "source": source}
    row.update(roc.summarize(fpr, tpr, len(member_scores), len(nonmember_scores),
                             curve.get_ppv()))
    small_fpr, small_tpr = roc.downsample(fpr, tpr)
    row["roc"] = {"fpr": small_fpr, "tpr": small_tpr}
    return row, roc.histogram(member_scores, nonmember_scores)
