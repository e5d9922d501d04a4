"""Canaries: planted examples, each trained on with probability ½, that measure the worst case.

Averages over a population hide the examples a model memorizes most. The
field audits defences on planted canaries (Aerni, Zhang, Tramèr 2024, arXiv
2404.17399; Steinke, Nasr, Jagielski 2023, arXiv 2305.08846): each canary is
*in* the audited model's training set with probability ½ (seeded, recorded)
and out otherwise, and the attacks score canaries that were in against
canaries that were out. The false-positive rate then belongs to the same
kind of example as the true-positive rate, and the in/out draws support an
ε lower bound (`keras_adamixup.audit.epsilon`). The shadows of LiRA and
RMIA see every canary too, each in half of them (drawn independently of the
audited model's draw), as they see every other example.

Kinds (each documented with what it tests):

- ``"mislabelled"``: a real example with a different, random label. A model
  fits it only by memorizing it: the worst case for a defence that averages
  over the population.
- ``"duplicate"``: a mislabelled example *and* a near-copy of it (Gaussian
  noise of `near_copy_noise` × each feature's standard deviation, clipped to
  the data's range), both with the same wrong label, in or out together: the
  adaptive canary for split-teacher defences (SELENA, `SplitTeachers`). A
  teacher that leaves one copy out still trains on the other, so the
  out-of-fold label can carry the wrong label back. Scored as one unit (the
  mean of its two rows' scores).
- ``"outlier"``: an input far from the data, each feature copied from a
  different random row (for images a noise image of the data's pixel
  values, for tabular data a combination of values that does not occur),
  with a random label: what a model does with an example unlike any other.

Example:

```python
x_rest, y_rest, planted = audit.canaries.plant(
    x_train, y_train, count=50, kinds=("mislabelled", "duplicate"), seed=0)
x_fit, y_fit = planted.add_to(x_rest, y_rest)   # the canaries drawn "in"
model.fit(x_fit, y_fit, epochs=30)
report = audit.run_audit(model, (x_rest, y_rest), (x_test, y_test),
                         canaries=planted, lira=...)
report.metadata["canaries"]["kinds"]["duplicate"]["attacks"]["lira_online"]
```
"""

import numpy as np

from keras_adamixup import _checks

__all__ = [
    "KINDS",
    "CanarySet",
    "plant",
]


KINDS = ("mislabelled", "duplicate", "outlier")

# A canary set smaller than this (per kind) measures no TPR at a low FPR and
# no ε: the report says so instead of printing a number.
MIN_UNITS = 10


class CanarySet:
    """Planted canaries: their inputs, labels, kinds and in/out draws.

    Made by `plant`; pass it to `run_audit(..., canaries=)` with the members
    *without* the canaries (`plant`'s first two results).

    Attributes:
        x: every canary row's input, in and out alike (`(rows, ...)`).
        y: their planted labels (class ids).
        unit: the canary unit of each row (a duplicate pair shares one).
        kinds: the kind of each unit.
        included: bool per unit, trained on by the audited model.
        original: each unit's true label (-1 for outliers).
        source: each unit's row in the data `plant` drew from (-1 for outliers).
        seed: the seed of every draw.
        near_copy_noise: the duplicates' noise, relative to each feature's
            standard deviation.

    Example:

    ```python
    x_rest, y_rest, planted = audit.canaries.plant(x_train, y_train, count=50,
                                                   kinds=("mislabelled", "duplicate"), seed=0)
    planted.included.mean()      # about 1/2
    x_fit, y_fit = planted.add_to(x_rest, y_rest)
    ```
    """

    def __init__(self, x, y, unit, kinds, included, original, source, seed,
                 near_copy_noise=0.05):
        self.x = np.asarray(x)
        self.y = np.asarray(y, dtype="int64")
        self.unit = np.asarray(unit, dtype="int64")
        self.kinds = tuple(kinds)
        self.included = np.asarray(included, dtype=bool)
        self.original = np.asarray(original, dtype="int64")
        self.source = np.asarray(source, dtype="int64")
        self.seed = int(seed)
        self.near_copy_noise = float(near_copy_noise)
        if not (len(self.x) == len(self.y) == len(self.unit)
                and len(self.kinds) == len(self.included) == len(self.original)
                == len(self.source)):
            raise ValueError("A CanarySet's arrays differ in length.")
        if len(self.unit) and (self.unit.min() < 0 or self.unit.max() >= len(self.kinds)):
            raise ValueError("A CanarySet's `unit` must index its units.")

    def __len__(self):
        return len(self.kinds)

    def __eq__(self, other):
        if not isinstance(other, CanarySet):
            return NotImplemented
        return (self.kinds == other.kinds and self.seed == other.seed
                and all(np.array_equal(getattr(self, a), getattr(other, a))
                        for a in ("x", "y", "unit", "included", "original", "source")))

    __hash__ = None

    @property
    def rows_included(self):
        """Bool per row: the row's unit is in the audited model's training set."""
        return self.included[self.unit]

    def training_rows(self):
        """`(x, y)` of the canary rows drawn "in" (what `add_to` inserts)."""
        keep = self.rows_included
        return self.x[keep], self.y[keep]

    def add_to(self, x, y):
        """`(x, y)` with the "in" canaries inserted at random (seeded) positions.

        Args:
            x: the training inputs without canaries (`plant`'s first
                result, or any data of the same shape).
            y: their class ids (`plant`'s second result).

        Returns:
            New arrays: train the audited model on them. Inserting at random
            positions (not appending) keeps the canaries out of a
            ``validation_split``'s last rows.
        """
        x, y = np.asarray(x), np.asarray(y)
        if x.shape[1:] != self.x.shape[1:]:
            raise ValueError(f"The canaries' inputs have shape {self.x.shape[1:]} per row, "
                             f"the data {x.shape[1:]}: add them to the data they were "
                             "planted from.")
        if y.ndim != 1:
            raise ValueError(f"`y` must be class ids of shape (n,), got {y.shape}.")
        cx, cy = self.training_rows()
        rng = np.random.default_rng([self.seed, 1])
        total = len(x) + len(cx)
        at = np.sort(rng.choice(total, size=len(cx), replace=False))
        rest = np.setdiff1d(np.arange(total), at, assume_unique=True)
        out_x = np.empty((total,) + x.shape[1:], dtype=x.dtype)
        out_y = np.empty(total, dtype=y.dtype)
        out_x[rest], out_y[rest] = x, y
        out_x[at], out_y[at] = cx.astype(x.dtype), cy.astype(y.dtype)
        return out_x, out_y

    def counts(self):
        """``{kind: {"units", "in", "out"}}``."""
        kinds = np.asarray(self.kinds)
        return {kind: {"units": int(np.sum(kinds == kind)),
                       "in": int(np.sum(self.included[kinds == kind])),
                       "out": int(np.sum(~self.included[kinds == kind]))}
                for kind in KINDS if np.any(kinds == kind)}

    def to_dict(self):
        """JSON-able description (no inputs): seed, counts, draws."""
        return {"protocol": "each canary in the audited model's training set with "
                            "probability 1/2; scored in vs out",
                "seed": self.seed, "units": len(self), "rows": int(len(self.x)),
                "near_copy_noise": self.near_copy_noise, "counts": self.counts(),
                "kinds": list(self.kinds), "included": self.included.astype(int).tolist(),
                "original": self.original.tolist(), "source": self.source.tolist()}

    def unit_scores(self, row_scores):
        """The mean of each unit's row scores (`(units,)`)."""
        row_scores = np.asarray(row_scores, dtype="float64")
        if row_scores.shape != (len(self.x),):
            raise ValueError(f"Expected one score per canary row ({len(self.x)}), got "
                             f"{row_scores.shape}.")
        sums = np.bincount(self.unit, weights=row_scores, minlength=len(self))
        return sums / np.bincount(self.unit, minlength=len(self))


def _kinds(kinds):
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    if not kinds:
        raise ValueError(f"`kinds` is empty: give one or more of {KINDS}.")
    for kind in kinds:
        _checks.choice("kinds", kind, KINDS)
    if len(set(kinds)) != len(kinds):
        raise ValueError(f"`kinds` repeats a kind: {kinds}.")
    return kinds


def plant(x, y, count, kinds="mislabelled", seed=0, num_classes=None, inclusion=0.5,
          near_copy_noise=0.05):
    """Draws canaries from training data; returns `(x_rest, y_rest, CanarySet)`.

    Args:
        x: the training inputs; not modified.
        y: their class ids, shape `(n,)`; not modified.
        count: canary units per kind (≥ 1).
        kinds: one of `KINDS` or several (each gets `count` units).
        seed: every draw (rows, wrong labels, noise, in/out).
        num_classes: default ``max(y) + 1``.
        inclusion: probability that a unit is in the audited model's
            training set (½ for the in/out comparison and the ε bound).
        near_copy_noise: the duplicates' noise (relative to each feature's
            standard deviation; ≥ 0, 0: the same record stored twice).

    Returns:
        `x_rest`, `y_rest`: the data without the rows the mislabelled and
        duplicate canaries were drawn from (they are canaries now, in or
        out: they must not also be ordinary members); and the `CanarySet`.
        Train on ``canary_set.add_to(x_rest, y_rest)``.

    Example:

    ```python
    x_rest, y_rest, planted = audit.canaries.plant(x_train, y_train, count=50,
                                                   kinds=audit.canaries.KINDS, seed=0)
    model.fit(*planted.add_to(x_rest, y_rest), epochs=60)
    report = audit.run_audit(model, (x_rest, y_rest), (x_test, y_test), canaries=planted)
    ```
    """
    x, y = np.asarray(x), np.asarray(y)
    kinds, inclusion, near_copy_noise, classes, drawn = _checked_plant(
        x, y, count, kinds, num_classes, inclusion, near_copy_noise)
    rng = np.random.default_rng(seed)
    sources = iter(rng.choice(len(y), size=drawn, replace=False))
    rows_x, rows_y, unit, unit_kinds, original, source = _draw_units(
        x, y, kinds, count, rng, sources, classes, near_copy_noise)
    included = rng.random(len(unit_kinds)) < inclusion
    canary_x = np.asarray(rows_x).reshape((len(rows_x),) + x.shape[1:]).astype(x.dtype)
    used = np.asarray([s for s in source if s >= 0], dtype="int64")
    keep = np.ones(len(y), dtype=bool)
    keep[used] = False
    planted = CanarySet(canary_x, rows_y, unit, unit_kinds, included, original, source,
                        seed, near_copy_noise)
    return x[keep], y[keep], planted


def _checked_plant(x, y, count, kinds, num_classes, inclusion, near_copy_noise):
    """Checks `plant`'s arguments.

    Returns:
        ``(kinds, inclusion, near_copy_noise, classes, drawn)``: the checked
        values, the number of classes and the number of rows drawn from `x`.
    """
    if y.ndim != 1:
        raise ValueError(f"`y` must be class ids of shape (n,), got {y.shape}.")
    if len(x) != len(y):
        raise ValueError(f"`x` ({len(x)}) and `y` ({len(y)}) differ in length.")
    _checks.integer("count", count, low=1)
    kinds = _kinds(kinds)
    inclusion = _checks.number("inclusion", inclusion, 0.0, 1.0, low_open=True,
                               high_open=True)
    near_copy_noise = _checks.number("near_copy_noise", near_copy_noise, 0.0)
    classes = int(y.max()) + 1 if num_classes is None else _checks.integer(
        "num_classes", num_classes, low=2)
    if classes < 2:
        raise ValueError("Canaries need at least two classes to mislabel.")
    drawn = count * sum(kind != "outlier" for kind in kinds)
    if drawn > len(y) // 2:
        raise ValueError(f"{drawn} canaries drawn from {len(y)} training rows would leave "
                         "fewer ordinary members than canaries: lower `count`.")
    return kinds, inclusion, near_copy_noise, classes, drawn


def _draw_units(x, y, kinds, count, rng, sources, classes, near_copy_noise):
    """Draws `count` units of each kind, in order (the draws follow `rng`).

    Returns:
        ``(rows_x, rows_y, unit, unit_kinds, original, source)``: the
        canaries' flat rows, their labels and unit numbers, then per unit its
        kind, true class (-1 for outliers) and source row (-1 for outliers).
    """
    flat = x.reshape(len(x), -1).astype("float64")
    bounds = flat.min(), flat.max()
    spread = flat.std(axis=0)
    rows_x, rows_y, unit, unit_kinds, original, source = [], [], [], [], [], []
    for kind in kinds:
        for _ in range(count):
            u = len(unit_kinds)
            if kind == "outlier":
                rows, label, true, src = _outlier(flat, rng, classes)
            else:
                rows, label, true, src = _relabelled(flat, y, kind, rng, next(sources), classes,
                                                     (near_copy_noise, spread, bounds))
            for row in rows:
                rows_x.append(row)
                rows_y.append(label)
                unit.append(u)
            unit_kinds.append(kind)
            original.append(true)
            source.append(src)
    return rows_x, rows_y, unit, unit_kinds, original, source


def _outlier(flat, rng, classes):
    """One outlier unit: each feature from a random row, a random label."""
    picks = rng.integers(0, len(flat), size=flat.shape[1])
    new = flat[picks, np.arange(flat.shape[1])]
    label = int(rng.integers(0, classes))
    return [new], label, -1, -1


def _relabelled(flat, y, kind, rng, src, classes, noise):
    """One mislabelled unit (row `src`, a wrong label), or a duplicate one (plus a near copy).

    `noise` is ``(near_copy_noise, spread, (low, high))``: the near copy's
    noise, each feature's standard deviation and the data's range.
    """
    src = int(src)
    true = int(y[src])
    label = int((true + rng.integers(1, classes)) % classes)
    rows = [flat[src]]
    if kind == "duplicate":
        scale, spread, (low, high) = noise
        jitter = rng.normal(0.0, scale, size=flat.shape[1]) * spread
        rows.append(np.clip(flat[src] + jitter, low, high))
    return rows, label, true, src


def unit_rows(planted, scores_by_attack, delta=1e-5):
    """Per kind: every attack's in-vs-out metrics on the canary units, and ε.

    Args:
        planted: the `CanarySet`.
        scores_by_attack: ``{attack: one score per canary row}`` (higher ⇒ in).
        delta: δ of the ε lower bounds.

    Returns:
        ``{kind: {"units", "in", "out", "attacks": {attack: row}, "best_attack",
        "epsilon": {...}}}``. A row has the AUC, TPR at the low FPRs (with
        exact intervals and ``_measurable``), the one-run ε (Steinke et al.)
        and the Clopper–Pearson ε of the ROC (TF Privacy's method) of that
        attack. ``best_attack`` has the highest AUC; ``epsilon`` is the
        largest one-run ε over the attacks (the choice of attack is not
        corrected for: with many attacks it flatters the attacker a little).
    """
    from keras_adamixup.audit import epsilon as epsilon_lib
    from keras_adamixup.audit import roc

    kinds = np.asarray(planted.kinds)
    result = {}
    for kind, count in planted.counts().items():
        pick = kinds == kind
        inside = planted.included[pick]
        entry = {**count, "attacks": {}, "measurable": bool(
            min(count["in"], count["out"]) >= MIN_UNITS // 2 and count["units"] >= MIN_UNITS)}
        for attack, row_scores in scores_by_attack.items():
            scores = planted.unit_scores(row_scores)[pick]
            if inside.all() or not inside.any():
                continue
            fpr, tpr, _ = roc.roc_from_scores(scores[inside], scores[~inside])
            row = roc.summarize(fpr, tpr, int(inside.sum()), int((~inside).sum()), ppv=0.0)
            row = {k: v for k, v in row.items() if k not in ("ppv", "advantage")}
            one_run = epsilon_lib.one_run_epsilon(scores, inside, delta=delta)
            row["epsilon_one_run"] = one_run["epsilon"]
            row["epsilon_one_run_guesses"] = [one_run["correct"], one_run["guesses"]]
            row["epsilon_roc"] = epsilon_lib.roc_epsilon(scores[inside], scores[~inside],
                                                         delta=delta)["epsilon"]
            entry["attacks"][attack] = row
        if entry["attacks"]:
            attacks = entry["attacks"]
            entry["best_attack"] = max(attacks, key=lambda a: attacks[a]["auc"])
            top = max(attacks, key=lambda a: attacks[a]["epsilon_one_run"])
            entry["epsilon"] = {"one_run": attacks[top]["epsilon_one_run"], "attack": top,
                                "roc": max(r["epsilon_roc"] for r in attacks.values()),
                                "delta": float(delta), "confidence": epsilon_lib.CONFIDENCE,
                                "per": "canary unit (a duplicate pair is one unit)"}
        result[kind] = entry
    return result
