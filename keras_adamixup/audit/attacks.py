"""TensorFlow Privacy's attack suite on one member/non-member split.

We call TF Privacy's `run_attacks` with its `AttackInputData` and
`SlicingSpec` and only read off what it returns (ROC arrays, membership
scores); nothing here re-implements its attacks. The trained attacks fit
scikit-learn models with a 3-fold grid search per slice, which is slow
(random forest: ~45 s for 500 + 500 examples on 2 cores), so by default they
run on the entire data set and only the cheap attacks run on every slice;
``thorough=True`` runs every attack on every slice.

Fast trained attacks (the default). TF Privacy's trained attacks grid-search
their hyperparameters with 3-fold cross-validation inside 2-fold
cross-fitting, on every example: 673 s for 10,000 + 10,000 MNIST examples on
2 cores (docs/BENCHMARKS.md). By default the four trained attacks instead
learn from the same features TF Privacy gives them (its `AttackInputData`:
the model's log-probabilities and loss per example) with fixed
hyperparameters (`describe_fast_estimators`, standardized features), on a balanced
random sample of at most `FAST_SAMPLE` members and as many non-members.
Every example gets a membership score from a model that did not train on it:
the sampled ones by 2-fold cross-fitting (as TF Privacy does), the others by
the mean of the two fold models. Training cost is capped; scoring is linear
in the number of examples. The random forest and k-NN use every core.
``thorough=True`` runs TF Privacy's own attacks with its grid search on every
slice; ``fast=False`` runs TF Privacy's grid-searched attacks on the entire
data set (the default before).

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
TRAINED_ATTACKS = ("logistic_regression", "mlp", "random_forest", "knn")
# Members (and as many non-members) the fast trained attacks learn from.
FAST_SAMPLE = 5000


# Neighbours of the k-nearest-neighbour attack (fewer when a fold has fewer rows).
KNN_NEIGHBOURS = 25


def _fast_estimator(attack, seed, rows=None):
    """The fixed-hyperparameter scikit-learn model of a fast trained attack.

    Args:
        attack: one of `TRAINED_ATTACKS`.
        seed: the seed of the models that draw.
        rows: the rows it will learn from (caps the k-nearest-neighbour
            attack's neighbours), or `None`.
    """
    from sklearn import ensemble, linear_model, neighbors, neural_network, pipeline
    from sklearn import preprocessing

    models = {
        "logistic_regression": lambda: linear_model.LogisticRegression(C=1.0, max_iter=1000),
        "mlp": lambda: neural_network.MLPClassifier(
            hidden_layer_sizes=(64,), alpha=1e-3, max_iter=200, random_state=seed),
        "random_forest": lambda: ensemble.RandomForestClassifier(
            n_estimators=100, min_samples_leaf=3, n_jobs=-1, random_state=seed),
        "knn": lambda: neighbors.KNeighborsClassifier(
            n_neighbors=KNN_NEIGHBOURS if rows is None else max(1, min(KNN_NEIGHBOURS, rows)),
            n_jobs=-1),
    }
    return pipeline.make_pipeline(preprocessing.StandardScaler(), models[attack]())


def describe_fast_estimators():
    """The fast trained attacks' models as scikit-learn prints them (report metadata).

    Read off the estimators themselves, so the description cannot drift from
    what runs; features are standardized first (`StandardScaler`).
    """
    return {attack: repr(_fast_estimator(attack, seed=0)[-1]) for attack in TRAINED_ATTACKS}


def fast_trained_scores(data, attack, sample=FAST_SAMPLE, seed=0):
    """Membership scores of one fast trained attack: `(scores_members, scores_nonmembers)`.

    Args:
        data: TF Privacy's `AttackInputData` (its features are used).
        attack: one of `TRAINED_ATTACKS`.
        sample: members (and as many non-members) to learn from.
        seed: seed of the sample, the folds and the models.
    """
    features_m = np.column_stack([data.logits_or_probs_train, data.get_loss_train()])
    features_n = np.column_stack([data.logits_or_probs_test, data.get_loss_test()])
    rng = np.random.default_rng(seed)
    k = min(sample, len(features_m), len(features_n))
    pick_m = rng.choice(len(features_m), k, replace=False)
    pick_n = rng.choice(len(features_n), k, replace=False)
    x = np.concatenate([features_m[pick_m], features_n[pick_n]])
    y = np.concatenate([np.ones(k), np.zeros(k)])
    fold = np.concatenate([rng.permutation(k) % 2, rng.permutation(k) % 2])  # balanced
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():  # the MLP's fixed 200 iterations end by design
        warnings.simplefilter("ignore", ConvergenceWarning)
        models = [_fast_estimator(attack, seed, rows=int(np.sum(fold != f))).fit(
            x[fold != f], y[fold != f]) for f in (0, 1)]
    # examples outside the sample: the mean of both fold models (neither saw them)
    scores = {side: np.mean([m.predict_proba(features)[:, 1] for m in models], axis=0)
              for side, features in (("m", features_m), ("n", features_n))}
    # sampled examples: only the model of the other fold (cross-fitting); set
    # after the means, so that no sampled example keeps a share of the score
    # of the model that trained on it
    for f, model in enumerate(models):
        held = np.flatnonzero(fold == f)
        held_scores = model.predict_proba(x[held])[:, 1]
        members = held < k
        scores["m"][pick_m[held[members]]] = held_scores[members]
        scores["n"][pick_n[held[~members] - k]] = held_scores[~members]
    return scores["m"], scores["n"]
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
            raise ValueError(f"E21: Unknown attack {a!r}; choose from {ALL_ATTACKS}.")
    for s in slices:
        if s not in SLICES:
            raise ValueError(f"E21: Unknown slice {s!r}; choose from {SLICES}.")
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
            f"E19: Too few examples for a stable attack: {len(labels_m)} members and "
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
                    slices=SLICES, thorough=False, min_per_slice=10, backend=None,
                    fast=True, seed=0, tick=None):
    """Runs the suite; returns (rows, histograms).

    rows: one dict per (attack, slice) with the metrics of `roc.summarize`,
    plus ``"roc"`` (down-sampled fpr/tpr) for entire-data-set results.
    histograms: membership-score histograms of the entire-data-set threshold
    attacks.
    backend: joblib backend for the trained attacks' grid searches (TF
    Privacy's `backend`; ``None`` is single-threaded, ``"loky"`` uses every
    core).
    fast: (without `thorough`) the trained attacks with fixed hyperparameters
    on a capped sample (module docstring), and only the threshold attacks on
    slices; ``False``: TF Privacy's grid-searched attacks on the entire data
    set and the cheap ones (logistic regression and k-NN included) on slices.
    tick: called with a label after each of the `count_steps` steps (progress).
    """
    tfp = _tfp.load()
    tick = tick or (lambda label: None)
    check_names(attacks, slices)
    check_slice_sizes(labels_m, labels_n, slices, min_per_slice)
    log_m = np.log(np.clip(probs_m, 1e-45, None))
    log_n = np.log(np.clip(probs_n, 1e-45, None))
    data = tfp.AttackInputData(
        logits_train=log_m, logits_test=log_n, labels_train=labels_m, labels_test=labels_n
    )
    runs = _planned_runs(tfp, attacks, slices, thorough, fast)
    rows, histograms = [], {}
    if fast and not thorough and "entire" in slices:
        _run_fast_trained(data, attacks, seed, tick, rows, histograms)
    _run_tfp(tfp, data, runs, min_per_slice, backend, tick, rows, histograms)
    return rows, histograms


def _planned_runs(tfp, attacks, slices, thorough, fast):
    """The ``(slicing spec, attack names)`` pairs given to TF Privacy."""
    sliced = [s for s in slices if s != "entire"]
    if thorough:
        return [(tfp.SlicingSpec(
            entire_dataset="entire" in slices, by_class="class" in sliced,
            by_classification_correctness="correctness" in sliced), attacks)]
    runs = []
    untrained = [a for a in attacks if a not in TRAINED_ATTACKS]
    on_entire = untrained if fast else list(attacks)
    if "entire" in slices and on_entire:
        runs.append((tfp.SlicingSpec(entire_dataset=True), on_entire))
    cheap = [a for a in (untrained if fast else attacks) if a in CHEAP_ATTACKS]
    if sliced and cheap:
        runs.append((tfp.SlicingSpec(
            entire_dataset=False,
            by_class="class" in sliced,
            by_classification_correctness="correctness" in sliced,
        ), cheap))
    return runs


def _run_fast_trained(data, attacks, seed, tick, rows, histograms):
    """The trained attacks with fixed hyperparameters; appends to `rows`, `histograms`."""
    for attack in (a for a in attacks if a in TRAINED_ATTACKS):
        row, hist = rows_from_scores(
            attack, *fast_trained_scores(data, attack, seed=seed), "trained_fast")
        rows.append(row)
        histograms[attack] = hist
        tick(attack)


def _run_tfp(tfp, data, runs, min_per_slice, backend, tick, rows, histograms):
    """Runs TF Privacy's attacks of `runs`; appends to `rows`, `histograms`."""
    from sklearn.exceptions import ConvergenceWarning

    types = lambda names: [getattr(tfp.AttackType, _TYPE_NAMES[a]) for a in names]
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
            tick(", ".join(names))


def count_steps(attacks, slices, thorough=False, fast=True):
    """How many times `run_tfp_attacks` ticks: one per fast trained attack and
    one per TF Privacy run (entire data set, slices)."""
    sliced = any(s != "entire" for s in slices)
    if thorough:
        return 1
    untrained = [a for a in attacks if a not in TRAINED_ATTACKS]
    on_entire = untrained if fast else list(attacks)
    cheap = [a for a in (untrained if fast else attacks) if a in CHEAP_ATTACKS]
    trained = sum(a in TRAINED_ATTACKS for a in attacks) if fast and "entire" in slices else 0
    return trained + int("entire" in slices and bool(on_entire)) + int(sliced and bool(cheap))


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
