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
- ``"duplicate"``: a mislabelled example *and* a near-copy of it, both with
  the same wrong label, in or out together: the adaptive canary for
  split-teacher defences (SELENA, `SplitTeachers`). A teacher that leaves one
  copy out still trains on the other, so the out-of-fold label can carry the
  wrong label back. Scored as one unit (the mean of its two rows' scores).
  The near-copy is made as `NearCopy` says (`NEAR_COPY_KINDS`): by default
  Gaussian noise of `near_copy_noise` × each feature's standard deviation,
  clipped to the data's range (``"relative"``); also independent noise on the
  raw values (``"absolute"``), a translation by one or two pixels
  (``"shift"``), a crop resized back (``"crop"``), a JPEG re-encoding
  (``"jpeg"``), a few features taken from another row (``"features"``), or a
  zoom into a box between pixels resized by TensorFlow (``"zoom"``: made
  otherwise than ``"crop"``, which the duplicate search compares exactly).
  With several near-copy kinds each gets `count` duplicate units, tagged with
  their kind, and `unit_rows` measures each kind on its own as well
  (``"duplicate:shift"``, ...).
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
report.metadata["canaries"]["kinds_measured"]["duplicate"]["attacks"]["lira_online"]
```
"""

import dataclasses
import math
from typing import Optional

import numpy as np

from keras_adamixup import _checks, _image_ops

__all__ = [
    "IMAGE_NEAR_COPIES",
    "KINDS",
    "NEAR_COPY_KINDS",
    "CanarySet",
    "NearCopy",
    "near_copies",
    "plant",
]


KINDS = ("mislabelled", "duplicate", "outlier")

# How a duplicate canary's near-copy is made (`NearCopy`); the image kinds need
# rows shaped (H, W, C), or `NearCopy(image_shape=)` for flattened images.
NEAR_COPY_KINDS = ("relative", "absolute", "shift", "crop", "jpeg", "features", "zoom")
IMAGE_NEAR_COPIES = ("shift", "crop", "jpeg", "zoom")

# A canary set smaller than this (per kind) measures no TPR at a low FPR and
# no ε: the report says so instead of printing a number.
MIN_UNITS = 10


@dataclasses.dataclass(frozen=True)
class NearCopy:
    """How the duplicate canaries' near-copies are made: one kind or several.

    Checked when made (a wrong type: `TypeError`; a wrong value:
    `ValueError`); `plant` checks it against the data (the image kinds refuse
    rows that are not images). Every draw follows `plant`'s seed.

    Args:
        kinds: one of `NEAR_COPY_KINDS` or several (a tuple; each gets
            `plant`'s `count` duplicate units):
            ``"relative"`` (the default, the audit's first near-copy):
            Gaussian noise of `noise` × each feature's standard deviation;
            ``"absolute"``: independent Gaussian noise of `sigma` on the raw
            values (a re-scanned or re-encoded record); ``"shift"``: the
            image translated by 1 to `max_shift` pixels (edges repeated);
            ``"crop"``: 1 to `max_crop` pixels cropped off each axis, resized
            back (bilinear); ``"jpeg"``: re-encoded as a JPEG of quality
            `jpeg_quality` (TensorFlow; one or three channels); ``"features"``:
            `features` features (or one-hot blocks of `feature_groups`)
            taken from another random row; ``"zoom"``: a box of
            ``1 / (1 + z)`` of each side, ``z`` uniform in [0.02, `max_zoom`], at a
            random place (edges between pixels), resized back by TensorFlow's
            ``crop_and_resize`` (a crop made otherwise than ``"crop"``, whose
            whole-pixel crops `keras_adamixup.duplicates` compares exactly).
            Every copy is clipped to the data's range.
        noise: ``"relative"``'s σ, relative to each feature's standard
            deviation (≥ 0; 0: the same record stored twice).
        sigma: ``"absolute"``'s σ on the raw values (≥ 0; 0.05 is 5 % of a
            [0, 1] pixel range).
        image_shape: ``(H, W)`` or ``(H, W, C)`` of one row when the rows are
            flattened images (MNIST's 784 pixels: ``(28, 28)``); `None`: the
            rows' own shape, which must then be ``(H, W, C)`` or ``(H, W)``
            (greyscale) for the image kinds.
        max_shift: ``"shift"``'s largest translation in pixels (≥ 1).
        max_crop: ``"crop"``'s most pixels cropped off each axis (≥ 1).
        max_zoom: ``"zoom"``'s largest zoom, in (0.02, 0.5] (0.12: a box of 89 %
            of each side).
        jpeg_quality: ``"jpeg"``'s quality, 1 to 100.
        features: ``"features"``' number of features (or blocks) changed (≥ 1).
        feature_groups: column indices that change together (one-hot blocks of
            a categorical variable) for ``"features"``; other columns change alone.

    Example:

    ```python
    near = audit.canaries.NearCopy(kinds=("relative", "absolute", "shift"),
                                   image_shape=(8, 8))
    x_rest, y_rest, planted = audit.canaries.plant(
        x_train, y_train, count=20, kinds=("mislabelled", "duplicate"), near_copy=near)
    ```
    """

    kinds: tuple = ("relative",)
    noise: float = 0.05
    sigma: float = 0.05
    image_shape: Optional[tuple] = None
    max_shift: int = 2
    max_crop: int = 3
    max_zoom: float = 0.12
    jpeg_quality: int = 75
    features: int = 3
    feature_groups: Optional[tuple] = None

    def __post_init__(self):
        object.__setattr__(self, "kinds", _kinds(self.kinds, NEAR_COPY_KINDS, "near-copy kind"))
        object.__setattr__(self, "noise", _checks.number("noise", self.noise, 0.0))
        object.__setattr__(self, "sigma", _checks.number("sigma", self.sigma, 0.0))
        for name in ("max_shift", "max_crop", "features"):
            _checks.positive_int(name, getattr(self, name))
        object.__setattr__(self, "max_zoom", _checks.number("max_zoom", self.max_zoom, 0.02,
                                                            0.5, low_open=True))
        _checks.integer("jpeg_quality", self.jpeg_quality, low=1)
        if self.jpeg_quality > 100:
            raise ValueError(f"`jpeg_quality` must be in [1, 100], got {self.jpeg_quality}.")
        object.__setattr__(self, "image_shape", _checks.image_shape(self.image_shape))
        if self.feature_groups is not None:
            groups = tuple(tuple(_checks.integer("feature_groups", int(c) if isinstance(
                c, np.integer) else c, low=0) for c in group) for group in self.feature_groups)
            object.__setattr__(self, "feature_groups", groups)

    def image_of(self, row_shape):
        """One row's image shape ``(H, W, C)`` for the image kinds (`None` without them).

        Args:
            row_shape: the shape of one row of the data (``x.shape[1:]``).

        Returns:
            ``(H, W, C)``, or `None` when no kind of `kinds` needs an image.
            Raises `ValueError` naming the kinds when the rows are not images
            (nor flattened images of `image_shape`), or are too small.

        Example:

        ```python
        audit.canaries.NearCopy("shift", image_shape=(28, 28)).image_of((784,))  # (28, 28, 1)
        ```
        """
        needs = [k for k in self.kinds if k in IMAGE_NEAR_COPIES]
        if not needs:
            return None
        row_shape = tuple(int(s) for s in row_shape)
        if self.image_shape is not None:
            shape = self.image_shape + ((1,) if len(self.image_shape) == 2 else ())
            if math.prod(shape) != math.prod(row_shape):
                raise ValueError(f"`image_shape` {self.image_shape} holds {math.prod(shape)} "
                                 f"values, a row of the data {math.prod(row_shape)} "
                                 f"(shape {row_shape}).")
        elif len(row_shape) in (2, 3):  # (H, W): greyscale, as the duplicate search reads it
            shape = row_shape + ((1,) if len(row_shape) == 2 else ())
        else:
            raise ValueError(
                f"Near-copy kind(s) {needs} need images: rows shaped (H, W, C), or flattened "
                f"images with NearCopy(image_shape=(H, W) or (H, W, C)); these rows have "
                f"shape {row_shape}. For tabular data use 'relative', 'absolute' or "
                "'features'.")
        if shape[0] <= 4 < min(shape[1:]):  # (C, H, W) read as (H, W, C)
            raise ValueError(f"Near-copy kind(s) {needs} read rows of shape {shape} as "
                             f"images of {shape[0]}x{shape[1]} pixels and {shape[2]} "
                             "channels: channels first? Images are rows (H, W, C): give "
                             "np.moveaxis(x, 1, -1).")
        moves = {"shift": ("shift by", self.max_shift), "crop": ("crop", self.max_crop)}
        limits = [moves[k] for k in needs if k in moves]
        if limits and min(shape[:2]) <= 2 * max(pixels for _, pixels in limits):
            raise ValueError(f"Images of {shape[0]}x{shape[1]} pixels are too small to "
                             + " or ".join(f"{what} {pixels}" for what, pixels in limits)
                             + " pixels (`max_shift`, `max_crop`).")
        if min(shape[:2]) < 2:
            raise ValueError(f"Images of {shape[0]}x{shape[1]} pixels are too small for "
                             f"near-copy kind(s) {needs}.")
        if "jpeg" in needs and shape[2] not in (1, 3):
            raise ValueError(f"'jpeg' encodes images of 1 or 3 channels, these have {shape[2]}.")
        return shape


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
            standard deviation (``near_copy.noise``).
        near_copy: the `NearCopy` that made the duplicates' near-copies.
        near_copy_kinds: per unit, its near-copy's kind (``""`` for units
            that are not duplicates).

    Example:

    ```python
    x_rest, y_rest, planted = audit.canaries.plant(x_train, y_train, count=50,
                                                   kinds=("mislabelled", "duplicate"), seed=0)
    planted.included.mean()      # about 1/2
    x_fit, y_fit = planted.add_to(x_rest, y_rest)
    ```
    """

    def __init__(self, x, y, unit, kinds, included, original, source, seed,
                 near_copy_noise=0.05, near_copy=None, near_copy_kinds=None):
        self.x = np.asarray(x)
        self.y = np.asarray(y, dtype="int64")
        self.unit = np.asarray(unit, dtype="int64")
        self.kinds = tuple(kinds)
        self.included = np.asarray(included, dtype=bool)
        self.original = np.asarray(original, dtype="int64")
        self.source = np.asarray(source, dtype="int64")
        self.seed = int(seed)
        self.near_copy = NearCopy(noise=near_copy_noise) if near_copy is None else near_copy
        self.near_copy_noise = float(self.near_copy.noise)
        if near_copy_kinds is None:  # one near-copy kind: every duplicate has it
            near_copy_kinds = [self.near_copy.kinds[0] if k == "duplicate" else ""
                               for k in self.kinds]
        self.near_copy_kinds = tuple(near_copy_kinds)
        if not (len(self.x) == len(self.y) == len(self.unit)
                and len(self.kinds) == len(self.included) == len(self.original)
                == len(self.source) == len(self.near_copy_kinds)):
            raise ValueError("A CanarySet's arrays differ in length.")
        if len(self.unit) and (self.unit.min() < 0 or self.unit.max() >= len(self.kinds)):
            raise ValueError("A CanarySet's `unit` must index its units.")

    def __len__(self):
        return len(self.kinds)

    def __eq__(self, other):
        if not isinstance(other, CanarySet):
            return NotImplemented
        return (self.kinds == other.kinds and self.seed == other.seed
                and self.near_copy_kinds == other.near_copy_kinds
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

    def near_copy_groups(self):
        """``{key: bool per unit}`` of the duplicates of each near-copy kind.

        Empty with one near-copy kind (``"duplicate"`` is then all of them);
        with several, ``"duplicate:<kind>"`` for each kind that has units.
        """
        tags = np.asarray(self.near_copy_kinds)
        present = [k for k in self.near_copy.kinds if np.any(tags == k)]
        if len(present) < 2:
            return {}
        return {f"duplicate:{k}": tags == k for k in present}

    def to_dict(self):
        """JSON-able description (no inputs): seed, counts, draws; with another
        near-copy than the default, the `NearCopy` and each unit's near-copy kind."""
        out = {"protocol": "each canary in the audited model's training set with "
                           "probability 1/2; scored in vs out",
               "seed": self.seed, "units": len(self), "rows": int(len(self.x)),
               "near_copy_noise": self.near_copy_noise, "counts": self.counts(),
               "kinds": list(self.kinds), "included": self.included.astype(int).tolist(),
               "original": self.original.tolist(), "source": self.source.tolist()}
        if self.near_copy.kinds != ("relative",):
            out["near_copy"] = dataclasses.asdict(self.near_copy)
            out["near_copy_kinds"] = list(self.near_copy_kinds)
        return out

    def unit_scores(self, row_scores):
        """The mean of each unit's row scores (`(units,)`)."""
        row_scores = np.asarray(row_scores, dtype="float64")
        if row_scores.shape != (len(self.x),):
            raise ValueError(f"Expected one score per canary row ({len(self.x)}), got "
                             f"{row_scores.shape}.")
        sums = np.bincount(self.unit, weights=row_scores, minlength=len(self))
        return sums / np.bincount(self.unit, minlength=len(self))


def _kinds(kinds, choices=None, what="kind"):
    """`kinds` (one name or several) as a tuple of distinct names among `choices`
    (default `KINDS`); `what` names one in the messages."""
    choices = KINDS if choices is None else choices
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    if not kinds:
        raise ValueError(f"`kinds` is empty: give one or more of {choices}.")
    for kind in kinds:
        if isinstance(kind, str) and kind not in choices:
            hint = (f": '{kind}' is a near-copy kind, give plant(kinds='duplicate', "
                    f"near_copy='{kind}')" if what == "kind" and kind in NEAR_COPY_KINDS
                    else f": '{kind.lower()}'?" if kind.lower() in choices else "")
            where = "`kinds`" if what == "kind" else "`near_copy` / NearCopy(kinds=)"
            raise ValueError(f"{where}: {what} {kind!r} is not one of {choices}{hint}.")
        _checks.choice("kinds", kind, choices)
    if len(set(kinds)) != len(kinds):
        raise ValueError(f"`kinds` repeats a {what}: {kinds}.")
    return kinds


def plant(x, y, count, kinds="mislabelled", seed=0, num_classes=None, inclusion=0.5,
          near_copy_noise=None, near_copy=None):
    """Draws canaries from training data; returns `(x_rest, y_rest, CanarySet)`.

    Args:
        x: the training inputs; not modified.
        y: their class ids, shape `(n,)`; not modified.
        count: canary units per kind (≥ 1); with several near-copy kinds,
            `count` duplicate units per near-copy kind.
        kinds: one of `KINDS` or several (each gets `count` units).
        seed: every draw (rows, wrong labels, noise, in/out).
        num_classes: default ``max(y) + 1``.
        inclusion: probability that a unit is in the audited model's
            training set (½ for the in/out comparison and the ε bound).
        near_copy_noise: the ``"relative"`` near-copies' noise (relative to
            each feature's standard deviation; ≥ 0, 0: the same record stored
            twice); `None`: 0.05 (or `near_copy`'s own ``noise``).
        near_copy: how the duplicates' near-copies are made: a `NearCopy`,
            or one of `NEAR_COPY_KINDS` or several (a tuple: each tags its
            `count` duplicate units, and the report measures each kind);
            `None`: ``"relative"``. It (and `near_copy_noise`) needs
            ``"duplicate"`` among `kinds`.

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
    kinds, inclusion, near, classes, drawn = _checked_plant(
        x, y, count, kinds, num_classes, inclusion, (near_copy_noise, near_copy))
    rng = np.random.default_rng(_checks.seed(seed))
    sources = iter(rng.choice(len(y), size=drawn, replace=False))
    maker = _Maker(x, near)
    rows_x, rows_y, unit, unit_kinds, original, source, tags = _draw_units(
        y, kinds, count, rng, sources, classes, maker)
    included = rng.random(len(unit_kinds)) < inclusion
    canary_x = _as_dtype(np.asarray(rows_x).reshape((len(rows_x),) + x.shape[1:]), x.dtype)
    used = np.asarray([s for s in source if s >= 0], dtype="int64")
    keep = np.ones(len(y), dtype=bool)
    keep[used] = False
    planted = CanarySet(canary_x, rows_y, unit, unit_kinds, included, original, source,
                        seed, near.noise, near, tags)
    return x[keep], y[keep], planted


def _near_copy_option(near_copy_noise, near_copy):
    """`plant`'s `near_copy` (and `near_copy_noise`) as a `NearCopy`."""
    if near_copy_noise is not None:
        near_copy_noise = _checks.number("near_copy_noise", near_copy_noise, 0.0)
    if isinstance(near_copy, NearCopy):
        if near_copy_noise is not None and near_copy_noise != near_copy.noise:
            raise ValueError(f"`near_copy_noise`={near_copy_noise} and NearCopy(noise="
                             f"{near_copy.noise}) differ: give the noise once.")
        return near_copy
    if near_copy is None:
        near_copy = "relative"
    if not isinstance(near_copy, (str, tuple, list)):
        raise TypeError("`near_copy` must be a NearCopy, one of "
                        f"{NEAR_COPY_KINDS} or a tuple of them, got {near_copy!r}.")
    made = NearCopy(kinds=near_copy, noise=0.05 if near_copy_noise is None
                    else near_copy_noise)
    if near_copy_noise is not None and "relative" not in made.kinds:
        # it would be ignored: the copies of these kinds have no relative noise
        raise ValueError(f"`near_copy_noise` is the 'relative' near-copies' noise, and "
                         f"near_copy={made.kinds} makes none: drop it, or add 'relative' "
                         "(the 'absolute' copies' noise is NearCopy(sigma=)).")
    return made


def _checked_plant(x, y, count, kinds, num_classes, inclusion, near_copy):
    """Checks `plant`'s arguments (`near_copy`: ``(near_copy_noise, near_copy)``).

    Returns:
        ``(kinds, inclusion, near_copy, classes, drawn)``: the checked
        values (`near_copy` a `NearCopy` that fits the data), the number of
        classes and the number of rows drawn from `x`.
    """
    if y.ndim != 1:
        raise ValueError(f"`y` must be class ids of shape (n,), got {y.shape}.")
    if len(x) != len(y):
        raise ValueError(f"`x` ({len(x)}) and `y` ({len(y)}) differ in length.")
    _checks.integer("count", count, low=1)
    kinds = _kinds(kinds)
    inclusion = _checks.number("inclusion", inclusion, 0.0, 1.0, low_open=True,
                               high_open=True)
    given = [name for name, value in zip(("near_copy_noise", "near_copy"), near_copy)
             if value is not None]
    if given and "duplicate" not in kinds:  # they would be ignored
        raise ValueError(f"{' and '.join(f'`{name}`' for name in given)} make the "
                         f"duplicates' near-copies, and kinds={kinds} has no 'duplicate': "
                         "add it, or leave them out.")
    near_copy = _near_copy_option(*near_copy)
    near_copy.image_of(x.shape[1:])  # the image kinds refuse rows that are not images
    classes = int(y.max()) + 1 if num_classes is None else _checks.integer(
        "num_classes", num_classes, low=2)
    if classes < 2:
        raise ValueError("Canaries need at least two classes to mislabel.")
    drawn = count * sum(len(near_copy.kinds) if kind == "duplicate" else kind != "outlier"
                        for kind in kinds)
    if drawn > len(y) // 2:
        raise ValueError(f"{drawn} canaries drawn from {len(y)} training rows would leave "
                         "fewer ordinary members than canaries: lower `count`.")
    return kinds, inclusion, near_copy, classes, drawn


def _draw_units(y, kinds, count, rng, sources, classes, maker):
    """Draws `count` units of each kind (of each near-copy kind for the
    duplicates), in order (the draws follow `rng`).

    Returns:
        ``(rows_x, rows_y, unit, unit_kinds, original, source, tags)``: the
        canaries' flat rows, their labels and unit numbers, then per unit its
        kind, true class (-1 for outliers), source row (-1 for outliers) and
        near-copy kind (``""`` but for duplicates).
    """
    rows_x, rows_y, unit, unit_kinds, original, source, tags = [], [], [], [], [], [], []
    for kind in kinds:
        for near in (maker.near.kinds if kind == "duplicate" else ("",)):
            for _ in range(count):
                u = len(unit_kinds)
                if kind == "outlier":
                    rows, label, true, src = _outlier(maker.flat, rng, classes)
                else:
                    rows, label, true, src = _relabelled(maker, y, near, rng, next(sources),
                                                         classes)
                for row in rows:
                    rows_x.append(row)
                    rows_y.append(label)
                    unit.append(u)
                unit_kinds.append(kind)
                original.append(true)
                source.append(src)
                tags.append(near)
    return rows_x, rows_y, unit, unit_kinds, original, source, tags


def _outlier(flat, rng, classes):
    """One outlier unit: each feature from a random row, a random label."""
    picks = rng.integers(0, len(flat), size=flat.shape[1])
    new = flat[picks, np.arange(flat.shape[1])]
    label = int(rng.integers(0, classes))
    return [new], label, -1, -1


def _relabelled(maker, y, near, rng, src, classes):
    """One mislabelled unit (row `src`, a wrong label), or a duplicate one (`near`
    names its near-copy's kind: plus a near-copy made by `maker`)."""
    src = int(src)
    true = int(y[src])
    label = int((true + rng.integers(1, classes)) % classes)
    rows = [maker.flat[src]]
    if near:
        rows.append(maker.copy(near, src, rng))
    return rows, label, true, src


def near_copies(x, rows, near_copy="relative", seed=0):
    """Near-copies of some rows of `x`, made as the duplicate canaries' are.

    For measuring how a grouping finds copies (`keras_adamixup.duplicates`),
    or planting copies by hand. The copy's statistics (each feature's
    standard deviation, the data's range, the donors of ``"features"``) come
    from all of `x`.

    Args:
        x: the data, ``(n, ...)``; not modified.
        rows: the indices of the rows to copy (repeats allowed).
        near_copy: one of `NEAR_COPY_KINDS`, or a `NearCopy` of one kind.
        seed: the seed of every draw.

    Returns:
        ``(len(rows),) + x.shape[1:]``, `x`'s dtype: one near-copy per index.

    Example:

    ```python
    copies = audit.canaries.near_copies(x_train, [0, 5], "absolute", seed=1)
    ```
    """
    x = np.asarray(x)
    near = _near_copy_option(None, near_copy)
    if len(near.kinds) != 1:
        raise ValueError(f"`near_copies` makes one kind of near-copy at a time, got "
                         f"{near.kinds}.")
    given = np.asarray(rows)
    if given.size and given.dtype.kind not in "iu":
        raise ValueError(f"`rows` must be row indices (integers), got {given.dtype} values"
                         + (": for a boolean mask give `np.flatnonzero(mask)`"
                            if given.dtype == bool else "") + ".")
    rows = given.astype("int64").reshape(-1)
    if len(rows) and (rows.min() < -len(x) or rows.max() >= len(x)):
        raise ValueError(f"`rows` index {len(x)} rows, got {rows.min()}..{rows.max()}.")
    maker = _Maker(x, near)
    rng = np.random.default_rng(_checks.seed(seed))
    made = [maker.copy(near.kinds[0], int(r) % len(x), rng) for r in rows]
    return _as_dtype(np.asarray(made).reshape((len(rows),) + x.shape[1:]), x.dtype)


def _as_dtype(values, dtype):
    """Made copies (float64) in the data's `dtype`: rounded for integer data (a cast
    alone floors: uint8 copies came out half a grey level darker)."""
    if np.dtype(dtype).kind in "iub":
        values = np.rint(values)
    return values.astype(dtype)


class _Maker:
    """Makes near-copies of a data set's rows (flat, float64), as a `NearCopy` says.

    Holds the data's statistics: its range, each feature's standard
    deviation, the image shape of a row, the feature blocks.
    """

    def __init__(self, x, near):
        self.near = near
        self.flat = x.reshape(len(x), -1).astype("float64")
        bad = np.flatnonzero(~np.all(np.isfinite(self.flat), axis=1))
        if len(bad):  # the copies are clipped to the data's range, which would be NaN
            raise ValueError(f"Canaries: `x` has NaN or inf in rows {bad[:10].tolist()}: "
                             "every near-copy would be NaN. Remove or impute those rows.")
        self.bounds = self.flat.min(), self.flat.max()
        self.spread = self.flat.std(axis=0)
        _check_sigma(near, self.bounds, x.dtype)
        self.image = near.image_of(x.shape[1:])
        if "features" in near.kinds:
            self.blocks = _feature_blocks(near.feature_groups, self.flat.shape[1])

    def copy(self, kind, src, rng):
        """A near-copy of row `src` of kind `kind` (a flat row in the data's range)."""
        row = self.flat[src]
        low, high = self.bounds
        if kind == "relative":
            new = row + rng.normal(0.0, self.near.noise, size=row.shape) * self.spread
        elif kind == "absolute":
            new = row + rng.normal(0.0, self.near.sigma, size=row.shape)
        elif kind == "features":
            new = _features_copy(self.flat, src, self.blocks, self.near.features, rng)
        else:
            image = row.reshape(self.image)
            if kind == "shift":
                new = _shifted(image, self.near.max_shift, rng)
            elif kind == "crop":
                new = _cropped(image, self.near.max_crop, rng)
            elif kind == "zoom":
                new = _zoomed(image, self.near.max_zoom, rng)
            else:
                new = _jpeg(image, self.bounds, self.near.jpeg_quality)
        return np.clip(np.reshape(new, -1), low, high)


def _check_sigma(near, bounds, dtype):
    """``"absolute"`` noise far under the data's range (raw units: 0.05 on 0..255 pixels)
    makes copies equal to their originals (integers round back) or nearly: refused."""
    width = bounds[1] - bounds[0]
    if "absolute" not in near.kinds or not 0.0 < near.sigma < 0.005 * width:
        return
    rounded = " (integer data: every copy rounds back to its original)" \
        if np.issubdtype(dtype, np.integer) else ""
    raise ValueError(
        f"NearCopy(sigma={near.sigma:g}) is the 'absolute' copies' noise in the data's own "
        f"units, and these data range over {width:g}: {100 * near.sigma / width:.2g} % of "
        f"it{rounded}. Give sigma in those units (5 % of the range: sigma="
        f"{0.05 * width:.4g}), or scale the data to [0, 1].")


def _feature_blocks(groups, width):
    """The blocks of columns that change together: `groups` and every other column alone."""
    blocks = [np.asarray(g, dtype="int64") for g in (groups or ()) if len(g)]
    covered = np.concatenate(blocks) if blocks else np.zeros(0, dtype="int64")
    if len(covered) and covered.max() >= width:
        raise ValueError(f"`feature_groups` name column {covered.max()}, the rows have "
                         f"{width} features.")
    alone = np.setdiff1d(np.arange(width), covered)
    return blocks + [np.asarray([c]) for c in alone]


def _features_copy(flat, src, blocks, count, rng):
    """Row `src` with `count` blocks of columns taken from another random row
    (blocks where that row differs; a few donors are tried)."""
    row = flat[src].copy()
    if len(flat) < 2:
        return row
    for _ in range(8):
        donor = int(rng.integers(0, len(flat) - 1))
        donor += donor >= src  # any row but `src`
        differ = [b for b in blocks if np.any(flat[donor, b] != row[b])]
        if differ:
            picks = rng.choice(len(differ), size=min(count, len(differ)), replace=False)
            for p in picks:
                row[differ[p]] = flat[donor, differ[p]]
            return row
    return row


def _shifted(image, max_shift, rng):
    """`image` (H, W, C) translated by 1 to `max_shift` pixels (edges repeated)."""
    while True:
        dy, dx = rng.integers(-max_shift, max_shift + 1, size=2)
        if dy or dx:
            break
    h, w = image.shape[:2]
    pad = max_shift
    padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    return padded[pad - dy:pad - dy + h, pad - dx:pad - dx + w]


def _cropped(image, max_crop, rng):
    """`image` with 1 to `max_crop` pixels cropped off each axis (split at random
    between the two sides), resized back bilinearly."""
    cut = int(rng.integers(1, max_crop + 1))
    top, left = rng.integers(0, cut + 1, size=2)
    return _image_ops.crop_resized(image, cut, int(top), int(left))


def _zoomed(image, max_zoom, rng):
    """`image` zoomed into a random box of ``1 / (1 + z)`` of each side (``z`` in
    [0.02, `max_zoom`], the box's place between pixels), resized back by TensorFlow."""
    import tensorflow as tf

    side = 1.0 / (1.0 + rng.uniform(0.02, max_zoom))
    top, left = rng.uniform(0.0, 1.0 - side, size=2)
    box = np.array([[top, left, top + side, left + side]], dtype="float32")
    zoomed = tf.image.crop_and_resize(image[None].astype("float32"), box, [0],
                                      image.shape[:2])
    return zoomed.numpy()[0].astype("float64")


def _jpeg(image, bounds, quality):
    """`image` re-encoded as a JPEG (8 bits over the data's range) and decoded back."""
    import tensorflow as tf

    low, high = bounds
    scale = (high - low) or 1.0
    pixels = np.round((image - low) / scale * 255.0).clip(0, 255).astype("uint8")
    encoded = tf.io.encode_jpeg(pixels, quality=int(quality))
    decoded = tf.io.decode_jpeg(encoded, channels=image.shape[2]).numpy()
    return decoded.astype("float64") / 255.0 * scale + low


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
        With several near-copy kinds, ``"duplicate"`` (all of them) is
        followed by ``"duplicate:<kind>"`` for each (`CanarySet.near_copy_groups`).

    Example:

    ```python
    measured = audit.canaries.unit_rows(planted, {"threshold": scores})
    measured["duplicate"]["attacks"]["threshold"]["auc"]
    ```
    """
    kinds = np.asarray(planted.kinds)
    result = {}
    for kind in planted.counts():
        result[kind] = _unit_entry(planted, kinds == kind, scores_by_attack, delta)
        if kind == "duplicate":
            for key, pick in planted.near_copy_groups().items():
                result[key] = _unit_entry(planted, pick, scores_by_attack, delta)
    return result


def _unit_entry(planted, pick, scores_by_attack, delta):
    """`unit_rows`' entry for the units `pick` (bool per unit)."""
    from keras_adamixup.audit import epsilon as epsilon_lib
    from keras_adamixup.audit import roc

    inside = planted.included[pick]
    count = {"units": int(pick.sum()), "in": int(inside.sum()), "out": int((~inside).sum())}
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
    return entry
