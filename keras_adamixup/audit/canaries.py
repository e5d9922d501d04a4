"""Canaries: mislabelled training examples that measure the worst case.

Averages over a population hide the examples a model memorizes most. Aerni,
Zhang and Tramèr (2024, arXiv 2404.17399) audit defences on planted canaries
(mislabelled examples, which a model can only fit by memorizing them) and find
TPRs of 28–74 % at 0.1 % FPR where the population average looks safe.

`plant` picks `count` training examples at random (by seed) and gives each a
different, random label. Train on the planted labels, then pass the
`CanarySet` to `run_audit(..., canaries=...)` together with the same planted
labels: the report adds, for every attack that scores single examples (the
loss threshold, each LiRA and RMIA variant), the TPR on the canaries at a low
FPR measured on the ordinary non-members. Canaries are always members: they
never enter the non-member side, so the FPR is that of real non-members.

Example:

```python
y_planted, canaries = audit.canaries.plant(y_train, count=50, seed=0)
model.fit(x_train, y_planted, epochs=30)
report = audit.run_audit(model, (x_train, y_planted), (x_test, y_test),
                         canaries=canaries, lira=...)
report.metadata["canaries"]["attacks"]["lira_online"]["tpr_at_0.001_fpr"]
```
"""

import dataclasses

import numpy as np

from keras_adamixup import _checks


@dataclasses.dataclass(frozen=True)
class CanarySet:
    """Which training rows were relabelled, and how.

    Attributes:
        indices: row indices in the training (member) arrays.
        original: their true labels.
        planted: the labels they were trained with (each ≠ the original).
        seed: the seed they were drawn with.
    """

    indices: tuple
    original: tuple
    planted: tuple
    seed: int

    def to_dict(self):
        return {"count": len(self.indices), "seed": self.seed,
                "indices": list(self.indices), "original": list(self.original),
                "planted": list(self.planted)}

    def check_labels(self, labels):
        """`ValueError` unless `labels` (the members' labels) carry the planted labels."""
        labels = np.asarray(labels).reshape(len(labels), -1)
        labels = labels.argmax(axis=1) if labels.shape[1] > 1 else labels[:, 0]
        idx = np.asarray(self.indices)
        if len(idx) and idx.max() >= len(labels):
            raise ValueError(f"Canary index {int(idx.max())} is outside the {len(labels)} "
                             "members: pass the training set the canaries were planted in.")
        wrong = int(np.sum(labels[idx].astype("int64") != np.asarray(self.planted)))
        if wrong:
            raise ValueError(
                f"{wrong} of {len(idx)} canaries do not carry their planted label in the "
                "members' labels: train and audit with the labels `plant` returned.")


def plant(labels, count, seed=0, num_classes=None):
    """Relabels `count` random training rows; returns `(planted_labels, CanarySet)`.

    Args:
        labels: the training labels, class ids `(n,)` (not modified).
        count: number of canaries (≥ 1, ≤ n).
        seed: which rows and which wrong labels (reproducible).
        num_classes: default ``max(labels) + 1``.

    Returns:
        A copy of `labels` with the canaries' labels replaced, and the `CanarySet`.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"`labels` must be class ids of shape (n,), got {labels.shape}.")
    _checks.integer("count", count, low=1)
    if count > len(labels):
        raise ValueError(f"`count` ({count}) exceeds the {len(labels)} training rows.")
    classes = int(labels.max()) + 1 if num_classes is None else _checks.integer(
        "num_classes", num_classes, low=2)
    if classes < 2:
        raise ValueError("Canaries need at least two classes to mislabel.")
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(labels), size=count, replace=False))
    original = labels[idx].astype("int64")
    # a uniformly random *other* class: shift by 1 … classes − 1
    planted = (original + rng.integers(1, classes, size=count)) % classes
    out = labels.copy()
    out[idx] = planted.astype(labels.dtype)
    return out, CanarySet(tuple(int(i) for i in idx), tuple(int(v) for v in original),
                          tuple(int(v) for v in planted), int(seed))


def canary_rows(scores_by_attack, canary_indices, n_members):
    """``{attack: {auc, tpr_at_<fpr>_fpr (+ _ci, _measurable)}}`` for the canaries.

    `scores_by_attack`: per-example scores (higher ⇒ member) over members then
    non-members. The canaries are compared with all non-members.
    """
    from keras_adamixup.audit import roc

    idx = np.asarray(canary_indices)
    rows = {}
    for attack, scores in scores_by_attack.items():
        scores = np.asarray(scores, dtype="float64")
        canary, nonmembers = scores[idx], scores[n_members:]
        fpr, tpr, _ = roc.roc_from_scores(canary, nonmembers)
        row = roc.summarize(fpr, tpr, len(canary), len(nonmembers), ppv=0.0)
        rows[attack] = {k: v for k, v in row.items() if k not in ("ppv", "advantage")}
    return rows
