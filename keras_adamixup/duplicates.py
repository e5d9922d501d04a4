"""Groups of near-duplicate rows: what `SplitTeachers` leaves out together.

A split-teacher defence protects an example by giving it the label of
teachers that never trained on it. A record stored twice (the same image
saved twice or lightly edited, repeated visits of one patient, near-identical
transactions) defeats that when its copies are left out of *different*
teachers: each copy's out-of-fold label comes from teachers that trained on
the other copy (Aerni, Zhang, Tramèr 2024, arXiv 2404.17399, on SELENA).
`near_duplicate_groups` finds such copies so that they can be left out
together.

Two rows are near-duplicates when their Euclidean distance is at most
``radius`` × the root-mean-square distance between two rows of the data
(``sqrt(2 · Σ_j var_j)``), so `radius` does not depend on the inputs' scale:
a copy with independent noise of ``s`` × each feature's standard deviation
lies at about ``s / √2`` (0.035 for the audit's duplicate canaries, s =
0.05). Groups are the connected components of the near-duplicate pairs
(and of the `groups` given), so a chain of near-copies is one group. A
group of more than `MAX_GROUP` records (exact copies and a given group
counting as one) is not copies of one record but a chain of chance
neighbours (each row near the next; on all 70,000 MNIST images, 1,935 ones
in one group, which the teachers would have weighed as one record): its
near pairs are kept at a radius shrunk by a fifth at a time until no group
is that large. Exact copies and given groups are never split.

Images are also compared at their best translation: with ``shift=s`` a
pair is near when one image moved by up to ``s`` pixels each way (edges
repeated) lies within the radius of the other, so the same photograph
shifted by a pixel or two is one group (raw distances never find it: a
one-pixel shift of a CIFAR-10 image lies at about 0.5 × the RMS distance).
With ``crop=c`` each image is also compared with every crop of half a pixel
to ``c`` pixels per axis of the other (at every position, in half-pixel steps:
`CROP_STEP`), resized back bilinearly: the same photograph cropped a little and
rescaled. Half pixels matter on thin strokes: MNIST's digits zoomed into a box
between pixels were 43 % found when crops were compared in whole pixels.
`settings_for` gives the defaults `SplitTeachers` uses: for image arrays
``(n, H, W, C)`` a radius of 0.15, shifts up to 2 pixels and crops up to 3,
which on 2,000 CIFAR-10 / MNIST / digits rows found every copy with
independent pixel noise N(0, 0.05), relative noise, a 1-2 pixel shift or a
JPEG re-encoding, on CIFAR-10 and MNIST every crop of the audit's two kinds
(whole pixels, and ``"zoom"``: boxes between pixels resized by TensorFlow's
``crop_and_resize``, of which crops in whole-pixel steps found 96 % and 44 %),
and grouped 0 / 19 / 0 unrelated rows (`benchmarks/near_copy_groups.py`,
docs/BENCHMARKS.md). For other inputs 0.1 and no shift (on UCI Adult, 0.15
grouped 16 % of unrelated rows).

Exact duplicates are found by digest. Near ones by a filter that cannot miss
a pair: the rows are projected on ``≤ 32`` orthonormal directions near
the principal ones (a randomized subspace iteration on at most 2,048 rows; an
orthonormal projection never lengthens a distance), pairs within the threshold there are found by
blockwise distance computations (``n² × 32`` multiply-adds: a few seconds
for 50,000 rows on two cores), and each candidate is then checked on the
full inputs. With translations and crops that search runs once per offset and
crop (163 more times for the image defaults), and it grows with the square of
the rows. On more than `CANDIDATE_ROWS` images each image is compared
translated and cropped only with its `CANDIDATES` nearest images by each of
two descriptors that small translations and crops barely move (the
magnitudes of the lowest 2-D Fourier frequencies, and a 4 × 4-pooled
thumbnail), ``candidates=`` of `near_duplicate_groups`; the untranslated
comparison stays exhaustive. On 21,200 MNIST and 11,200 CIFAR-10 images with
planted copies (relative and absolute noise, shifts, crops, JPEG, crops made
by TensorFlow) that found every copy the exhaustive search found, 5.2× and
2.1× faster (`python -m benchmarks.duplicates_time --as-images`,
docs/BENCHMARKS.md), and on 4,000 images of each the same groups 1.8× faster
(at 2,000 images the two take as long); on 8 × 8 digits 4 candidates were
too few for shifts.

Example:

```python
groups = keras_adamixup.duplicates.near_duplicate_groups(x_train)
len(np.unique(groups))  # groups found; rows of one group share their smallest index
```
"""

import logging

import numpy as np

from keras_adamixup import _checks, _image_ops

_LOG = logging.getLogger("keras_adamixup")

__all__ = [
    "CANDIDATES",
    "CANDIDATE_ROWS",
    "CROP",
    "CROP_STEP",
    "IMAGE_RADIUS",
    "MAX_GROUP",
    "RADIUS",
    "SHIFT",
    "near_duplicate_groups",
    "nearest_rows",
    "settings_for",
]


RADIUS = 0.1
# images: a wider radius and translations (`settings_for`)
IMAGE_RADIUS = 0.15
SHIFT = 2
CROP = 3
# crops are compared in steps of this many pixels, both their size and their place:
# whole pixels miss MNIST's digits cropped in fractional boxes (44 % found, 100 %
# in half pixels; docs/BENCHMARKS.md, issue 40)
CROP_STEP = 0.5
# more images than this: translated and cropped comparisons with each image's
# CANDIDATES nearest by `_descriptors` only (``candidates="auto"``)
CANDIDATE_ROWS = 2000
CANDIDATES = 64
_FREQUENCIES = 10
_POOL = 4
# a group larger than this is split (`_split_chains`), its radius shrunk by _SHRINK
MAX_GROUP = 32
_SHRINK = 0.8
_DIRECTIONS = 32
_SAMPLE = 2048
_BLOCK = 256


def near_duplicate_groups(x, radius=RADIUS, groups=None, shift=0, crop=0,
                          candidates="auto", shift_step=1):
    """Each row's group: the smallest row index among its near-duplicates.

    Args:
        x: the inputs, an array of ``(n, ...)`` (or a dict / list of them,
            concatenated per row).
        radius: the largest distance of two rows of one group, relative to
            the root-mean-square distance between two rows; ``0`` groups
            exact duplicates only.
        groups: optional ``(n,)`` ids (a patient, a person: as scikit-learn's
            `GroupKFold` takes them): rows sharing an id are one group too.
        shift: ``0`` (default), or for images (`x` an array of ``(n, H, W)``
            or ``(n, H, W, C)``; reshape flattened ones) the largest
            translation in pixels, each way, at which two images are
            compared: ``(2 · shift + 1)² − 1`` more passes of the search.
        crop: ``0`` (default), or for images (as `shift`) the most pixels
            cropped off each axis of an image before it is resized back and
            compared with the others: every crop of `CROP_STEP` (half a pixel)
            to `crop` pixels at every position, both in steps of `CROP_STEP`
            (a crop between pixels interpolated), ``Σ_k (k + 1)²`` more passes
            for ``k = 1 … crop / CROP_STEP`` (139 for 3).
        candidates: with `shift` or `crop`, which pairs are compared translated
            and cropped: `None` every pair (exact, but each pass grows with the
            square of the rows: 31 s for 11,200 CIFAR-10 images and 140 s for
            21,200 MNIST ones on two cores, about 25 minutes for 70,000), an
            integer ``k`` each image and
            its ``k`` nearest images by a descriptor that small translations
            and crops barely move (each of two descriptors: ``2k`` at most),
            ``"auto"`` (default) every pair up to `CANDIDATE_ROWS` images and
            `CANDIDATES` nearest above.
        shift_step: the translations' step: 1 pixel (default), or 0.5
            (`CROP_STEP`, interpolated; ``(4 · shift + 1)² − 1`` passes), as
            `SplitTeachers` searches images kept at half their sides.

    Returns:
        int64 ``(n,)``: rows of a group share a value, the smallest index of
        the group's rows (a row with no near-duplicate: its own index).

    Example:

    ```python
    groups = keras_adamixup.duplicates.near_duplicate_groups(x_train)
    print(len(groups) - len(set(groups)), "rows share a group with another")
    ```
    """
    shift, crop, candidates = _arguments(radius, shift, crop, candidates, shift_step)
    images, flat = _inputs(x, shift, crop)
    n = len(flat)
    if n == 0:
        return np.zeros(0, dtype="int64")
    fixed = _fixed_pairs(flat, groups)
    near, d2 = _joined([])
    if radius > 0 and n > 1:
        if candidates == "auto":
            candidates = CANDIDATES if n > CANDIDATE_ROWS else None
        near, d2 = _near_pairs(flat, radius, images, shift, crop, candidates, shift_step)
    return _split_chains(n, fixed, near, d2, radius)


def _arguments(radius, shift, crop, candidates, shift_step):
    """`near_duplicate_groups`' arguments checked: ``(shift, crop, candidates)``."""
    _checks.number("radius", radius, low=0.0)
    if _checks.number("shift_step", shift_step) not in (1.0, CROP_STEP):
        raise ValueError(f"`shift_step` must be 1 or {CROP_STEP} (pixels), got {shift_step!r}.")
    if candidates is not None and candidates != "auto":
        candidates = _checks.integer("candidates", candidates, low=1)
    shift = _checks.integer("shift", shift, low=0)
    if shift_step != 1 and not shift:
        raise ValueError(f"`shift_step` ({shift_step}) steps the translations of `shift`, "
                         "which is 0: give shift=1 or more (pixels).")
    return shift, _checks.integer("crop", crop, low=0), candidates


def _fixed_pairs(flat, groups):
    """The pairs that always hold: each row with its first identical row and with the
    first row of its given group; NaN or inf rows refused (E53)."""
    n = len(flat)
    bad = ~np.isfinite(flat).all(axis=1)
    if bad.any():
        raise ValueError(f"E53: near_duplicate_groups: {int(bad.sum())} of {n} rows have NaN "
                         f"or inf in their inputs (the first: row {int(np.argmax(bad))}); "
                         "their distances are undefined and no pair would be found. Drop or "
                         "impute those rows first.")
    pairs = [_exact_pairs(flat)]
    if groups is not None:
        groups = np.asarray(groups).reshape(-1)
        if len(groups) != n:
            raise ValueError(f"`groups` has {len(groups)} ids for {n} rows.")
        _, first, inverse = np.unique(groups, return_index=True, return_inverse=True)
        pairs.append(np.stack([np.arange(n), first[inverse.reshape(-1)]], axis=1))
    return np.concatenate(pairs)


def _split_chains(n, fixed, near, d2, radius):
    """Components of the `fixed` pairs (exact copies, given groups) and the `near`
    ones; a group of more than `MAX_GROUP` records (an exact copy or a given group
    counting as one) is a chain of chance neighbours (single linkage: each row
    near the next, the ends far apart), not copies of one record, so its near
    pairs are kept at a radius shrunk by `_SHRINK` at a time until no group is
    that large. The `fixed` pairs always hold."""
    fixed_labels = _components(n, fixed)
    record = (fixed_labels == np.arange(n)).astype("float64")  # one row per record
    labels = _components(n, np.concatenate([fixed, near]))
    current = radius
    while len(near) and current > 1e-6 * radius:
        records = np.bincount(labels, weights=record, minlength=n)
        chained = records[labels] > MAX_GROUP
        if not chained.any():
            break
        current *= _SHRINK
        keep = (d2 <= current * current) | ~chained[near[:, 0]]
        near, d2 = near[keep], d2[keep]
        labels = _components(n, np.concatenate([fixed, near]))
        _LOG.info("near_duplicate_groups: a group of %d records is chained neighbours, "
                  "not copies: its pairs kept within %.3g", int(records.max()), current)
    return labels


def settings_for(x):
    """``{"radius", "shift", "crop"}`` of `near_duplicate_groups` for inputs `x`:
    `IMAGE_RADIUS`, `SHIFT` and `CROP` for an array of images ``(n, H, W, C)``
    with at most 4 channels or of square greyscale ones ``(n, H, H)``, H ≥ 8
    (crops for sides over ``4 · CROP``), `RADIUS` and neither otherwise
    (features, sequences ``(n, T, F)``, flattened images: give those
    ``SplitTeachers(image_shape=)``, several inputs). Channels-first images
    ``(n, C, H, W)`` read as features here: `SplitTeachers` moves their channels
    last before it searches.

    Args:
        x: the training inputs.

    Example:

    ```python
    settings = keras_adamixup.duplicates.settings_for(x_train)
    groups = keras_adamixup.duplicates.near_duplicate_groups(x_train, **settings)
    ```
    """
    shape = getattr(x, "shape", None)
    if isinstance(x, dict) or shape is None:
        shape = ()
    greyscale = len(shape) == 3 and shape[1] == shape[2] >= 8  # (n, H, H): MNIST's arrays
    if (len(shape) == 4 and shape[-1] <= 4) or greyscale:
        crop = CROP if min(shape[1:3]) > 4 * CROP else 0
        return {"radius": IMAGE_RADIUS, "shift": SHIFT, "crop": crop}
    return {"radius": RADIUS, "shift": 0, "crop": 0}


def nearest_rows(queries, reference):
    """Each query row's nearest row of `reference` (Euclidean, on the flattened inputs).

    Exact, by blockwise distance computations (``n_queries × n_reference × d``
    multiply-adds: 0.2–0.3 s for 8,000 × 4,000 rows of 784 features on two cores).

    Args:
        queries: inputs, an array of ``(m, ...)`` (or a dict / list of them,
            concatenated per row).
        reference: inputs of the same structure and row shape, ``(n, ...)``,
            ``n ≥ 1``.

    Returns:
        int64 ``(m,)``: the index in `reference` of each query's nearest row
        (the first among equally near ones).

    Example:

    ```python
    nearest = keras_adamixup.duplicates.nearest_rows(x_public, x_train)
    x_train[nearest[0]]  # the training row closest to the first public row
    ```
    """
    queries, reference = _rows(queries), _rows(reference)
    if queries.shape[1] != reference.shape[1] or not len(reference):
        raise ValueError(f"nearest_rows: queries of {queries.shape[1]} features against "
                         f"{len(reference)} reference rows of {reference.shape[1]}.")
    norms = np.sum(reference * reference, axis=1)
    found = np.empty(len(queries), dtype="int64")
    for start in range(0, len(queries), _BLOCK):
        block = queries[start:start + _BLOCK]
        # |q - r|² up to |q|², the same for every r of a query
        found[start:start + _BLOCK] = np.argmin(norms[None, :] - 2.0 * (block @ reference.T),
                                                axis=1)
    return found


def summary(labels):
    """``{"rows", "groups", "grouped_rows", "largest"}`` of `near_duplicate_groups`' result."""
    labels = np.asarray(labels)
    _, sizes = np.unique(labels, return_counts=True)
    return {"rows": int(len(labels)), "groups": int(len(sizes)),
            "grouped_rows": int(sizes[sizes > 1].sum()),
            "largest": int(sizes.max()) if len(sizes) else 0}


def _rows(x):
    if isinstance(x, (list, tuple)) and x and not hasattr(x[0], "shape"):
        x = np.asarray(x, dtype="float32")  # nested lists of numbers: one array
    if isinstance(x, np.ndarray):
        leaves = [x]
    else:
        import keras

        leaves = [np.asarray(leaf) for leaf in keras.tree.flatten(x)]
    return np.concatenate([leaf.reshape(len(leaf), int(np.prod(leaf.shape[1:])))
                           .astype("float32") for leaf in leaves], axis=1)


def _exact_pairs(flat):
    """(row, first identical row) for every row (itself when unique)."""
    view = np.ascontiguousarray(flat).view(np.dtype((np.void, flat.dtype.itemsize
                                                     * flat.shape[1])))
    _, first, inverse = np.unique(view.reshape(-1), return_index=True, return_inverse=True)
    return np.stack([np.arange(len(flat)), first[inverse.reshape(-1)]], axis=1)


def as_images(x, image_shape):
    """Flattened rows `x` as images ``(n, H, W, C)`` of `image_shape`, or a clear error
    (`SplitTeachers(image_shape=)`; not exported)."""
    shape = _checks.image_shape(image_shape)
    flat = np.asarray(x) if isinstance(x, np.ndarray) else None
    size = int(np.prod(shape))
    if flat is None or flat.ndim < 2 or int(np.prod(flat.shape[1:])) != size:
        raise ValueError(f"image_shape={shape} needs rows of {size} values; the inputs are "
                         f"{getattr(x, 'shape', type(x).__name__)}.")
    images = flat.reshape((len(flat),) + shape)
    return images[..., None] if len(shape) == 2 else images


def channels_last(x):
    """`x` as ``(n, H, W, C)`` when it is an array of channels-first images
    ``(n, C, H, W)`` (at most 4 channels, sides over 4 pixels), else `x` as it is:
    `settings_for` reads images channels-last (`SplitTeachers` searches
    channels-first ones this way; not exported)."""
    shape = getattr(x, "shape", None)
    if (isinstance(x, np.ndarray) and len(shape) == 4 and shape[1] <= 4
            and min(shape[2:]) > 4):
        return np.moveaxis(x, 1, -1)
    return x


def _inputs(x, shift, crop):
    """``(images or None, flat rows)`` of `x`: images ``(n, H, W, C)`` for `shift` /
    `crop`, checked against their sizes."""
    if not (shift or crop):
        return None, _rows(x)
    images = _images(x, shift, crop)
    hint = ("; channels first? Images are (n, H, W, C): give np.moveaxis(x, 1, -1)"
            if channels_last(images) is not images else "")
    if crop and 2 * crop >= min(images.shape[1:3]):
        raise ValueError(f"near_duplicate_groups: crop={crop} leaves nothing of images of "
                         f"{images.shape[1]} x {images.shape[2]} pixels{hint}.")
    if shift and shift >= min(images.shape[1:3]):
        raise ValueError(f"near_duplicate_groups: shift={shift} moves images of "
                         f"{images.shape[1]} x {images.shape[2]} pixels off themselves; "
                         f"shift is in pixels (the default {SHIFT}){hint}.")
    return images, images.reshape(len(images), int(np.prod(images.shape[1:])))


def _images(x, shift, crop):
    """`x` as float32 ``(n, H, W, C)`` images (for `shift` / `crop`), or a clear error."""
    shape = getattr(x, "shape", None)
    if isinstance(x, dict) or shape is None or len(shape) not in (3, 4):
        given = ", ".join(f"{k}={v}" for k, v in (("shift", shift), ("crop", crop)) if v)
        raise ValueError(f"near_duplicate_groups({given}) compares images: `x` must be "
                         f"one array of (n, H, W) or (n, H, W, C), got "
                         f"{shape if shape is not None else type(x).__name__}; reshape "
                         f"flattened images first (x.reshape(-1, 28, 28, 1)).")
    images = np.asarray(x, dtype="float32")
    return images[..., None] if images.ndim == 3 else images


def _near_pairs(flat, radius, images=None, shift=0, crop=0, candidates=None, shift_step=1):
    """Pairs within `radius` × the RMS pair distance, exactly: (i < j) untranslated,
    with `shift` (i, j) where image j moved by up to `shift` pixels is near i, and
    with `crop` (i, j) where image j cropped by up to `crop` pixels and resized is;
    translated and cropped among `candidates` nearest pairs only (`None`: all)."""
    n = len(flat)
    mean = flat.mean(axis=0, dtype="float64")
    centred = flat.astype("float64") - mean
    mean_square = 2.0 * float(np.mean(np.sum(centred * centred, axis=1)))
    if mean_square == 0.0:  # all rows equal: the exact pairs have them
        return _joined([])
    limit = radius * radius * mean_square
    directions = _directions(centred)
    projected = (centred @ directions).astype("float32")
    found = [_pairs_within(projected, centred, projected, centred.__getitem__, limit,
                           mean_square, upper=True)]
    near = None if candidates is None or not (shift or crop) else \
        _nearest_pairs(images, candidates)
    if shift or crop:
        basis = directions.T.reshape((-1,) + images.shape[1:])  # the directions as images
        flat32 = flat.astype("float32", copy=False)
        mean_projected = (mean @ directions).astype("float32")  # V(x) − mean, projected
    for rows_matrix, columns_matrix in _variants(images.shape[1:3] if shift or crop else None,
                                                 shift, crop, shift_step):
        # a variant V(x) = R · x · Cᵀ per channel is linear: its projection on the
        # directions is x's on Vᵀ(directions), and no variant image is made but for
        # the rows checked. An orthonormal projection never lengthens a distance: the
        # same exact filter (in float32 here; its rounding is far inside the margin)
        adjoint = np.einsum("ih,kijc,jw->hwck", rows_matrix, basis, columns_matrix,
                            optimize=True).reshape(-1, basis.shape[0])
        moved_projected = flat32 @ adjoint.astype("float32") - mean_projected

        def moved(rows, r=rows_matrix, c=columns_matrix):
            # each distinct row once (a row is a candidate of many), by batched
            # matrix products per image and channel (10x faster than einsum here)
            unique, inverse = np.unique(rows, return_inverse=True)
            out = r @ images[unique].astype("float64").transpose(0, 3, 1, 2) @ c.T
            return out.transpose(0, 2, 3, 1).reshape(len(unique), -1)[inverse] - mean

        if near is None:
            found.append(_pairs_within(projected, centred, moved_projected, moved, limit,
                                       mean_square, upper=False))
        else:
            found.append(_listed_pairs_within(near, projected, centred, moved_projected,
                                              moved, limit, mean_square))
    pairs, d2 = _joined(found)
    return pairs, d2 / mean_square  # distances relative to the RMS pair distance, squared


def _listed_pairs_within(pairs, left, left_full, right, right_rows, limit, mean_square):
    """The pairs (i, j) of `pairs` (two contiguous index arrays) with
    ``|left_full[i] − right_rows(j)|² ≤ limit``, filtered by the projected rows first
    (`_pairs_within` for a list of pairs)."""
    bound = np.float32(limit + 1e-3 * mean_square)
    i, j = pairs
    # the first direction alone already rules out most pairs (a distance is at least
    # its gap along any one direction), before the projected rows are gathered
    keep = np.abs(np.take(left[:, 0], i) - np.take(right[:, 0], j)) <= np.sqrt(bound)
    i, j = i[keep], j[keep]
    found = []
    for start in range(0, len(i), 65536):
        rows, columns = i[start:start + 65536], j[start:start + 65536]
        diff = np.take(left, rows, axis=0)
        diff -= np.take(right, columns, axis=0)
        keep = np.einsum("ij,ij->i", diff, diff) <= bound
        found.append(_checked(rows[keep], columns[keep], left_full, right_rows, limit))
    return _joined(found)


def _descriptors(images):
    """Two views of each image that small translations and crops barely move:
    the magnitudes of the lowest 2-D Fourier frequencies of its grey, windowed,
    mean-free version (a translation changes only their phase), and its mean over
    `_POOL` × `_POOL` pixel blocks."""
    n, h, w = images.shape[:3]
    grey = images.mean(axis=-1, dtype="float64")
    grey -= grey.mean(axis=(1, 2), keepdims=True)
    grey *= np.outer(np.hanning(h), np.hanning(w))[None]
    spectrum = np.abs(np.fft.rfft2(grey))
    k = min(_FREQUENCIES, h // 2, w // 2 + 1)
    low = np.concatenate([spectrum[:, :k, :k], spectrum[:, h - k + 1:, :k]], axis=1)
    pool = _POOL if min(h, w) >= 2 * _POOL else 1
    hh, ww = h // pool * pool, w // pool * pool
    pooled = images[:, :hh, :ww].reshape(n, hh // pool, pool, ww // pool, pool, -1)
    return [low.reshape(n, -1).astype("float32"),
            pooled.mean(axis=(2, 4), dtype="float64").reshape(n, -1).astype("float32")]


def _nearest_pairs(images, k):
    """``(i, j)``, two index arrays: each image i and its `k` nearest images j by each
    of `_descriptors`, in both orders, without repeats."""
    n = len(images)
    k = min(k, n - 1)
    found = []
    for rows in _descriptors(images):
        norms = np.sum(rows * rows, axis=1)
        for start in range(0, n, _BLOCK):
            block = rows[start:start + _BLOCK]
            d2 = norms[None, :] - 2.0 * (block @ rows.T)  # + |row|², the same per row
            d2[np.arange(len(block)), np.arange(start, start + len(block))] = np.inf
            nearest = np.argpartition(d2, k - 1, axis=1)[:, :k]
            found.append(np.stack([np.repeat(np.arange(start, start + len(block)), k),
                                   nearest.reshape(-1)], axis=1))
    pairs = np.concatenate(found)
    keys = np.unique(np.concatenate([pairs[:, 0] * n + pairs[:, 1],
                                     pairs[:, 1] * n + pairs[:, 0]]))
    return keys // n, keys % n


def _variants(size, shift, crop, shift_step=1):
    """Each other form an image of `size` ``(H, W)`` is compared under, as per-axis
    matrices ``(R, C)`` (the form is ``R · image · Cᵀ`` per channel): moved by every
    offset up to `shift` pixels in steps of `shift_step` (not 0, 0; edges repeated),
    then every crop of `CROP_STEP` to `crop` pixels per axis at every position,
    both in steps of `CROP_STEP`, resized back."""
    if size is None:
        return
    height, width = size
    reach = int(round(shift / shift_step))
    for dy in range(-reach, reach + 1):
        for dx in range(-reach, reach + 1):
            if (dy, dx) != (0, 0):
                yield (_image_ops.shift_matrix(height, dy * shift_step),
                       _image_ops.shift_matrix(width, dx * shift_step))
    steps = int(round(crop / CROP_STEP))
    for cut in range(1, steps + 1):
        for top in range(cut + 1):
            for left in range(cut + 1):
                yield (_image_ops.crop_matrix(height, cut * CROP_STEP, top * CROP_STEP),
                       _image_ops.crop_matrix(width, cut * CROP_STEP, left * CROP_STEP))


def _pairs_within(left, left_full, right, right_rows, limit, mean_square, upper):
    """(i, j), i ≠ j, with ``|left_full[i] − right_rows(j)|² ≤ limit``: candidates by the
    projected rows `left` / `right`, checked on the full ones; `upper`: i < j only."""
    norms_left = np.sum(left * left, axis=1)
    norms_right = np.sum(right * right, axis=1)
    # float32 rounding in the filter: keep a little more, then check exactly
    bound = np.float32(limit + 1e-3 * mean_square)
    found = []
    for start in range(0, len(left), _BLOCK):
        block = left[start:start + _BLOCK]
        first = start if upper else 0  # (i < j): the columns from this block on
        d2 = (norms_left[start:start + _BLOCK, None] + norms_right[None, first:]
              - 2.0 * (block @ right[first:].T))
        i, j = np.nonzero(d2 <= bound)
        i, j = i + start, j + first
        keep = i < j if upper else i != j
        found.append(_checked(i[keep], j[keep], left_full, right_rows, limit))
    return _joined(found)


def _checked(rows, columns, left_full, right_rows, limit):
    """The candidate pairs ``(rows, columns)`` within `limit` on the full inputs
    (``|left_full[i] − right_rows(j)|²``), with their squared distances."""
    if not len(rows):
        return _joined([])
    diff = left_full[rows] - right_rows(columns)
    d2 = np.sum(diff * diff, axis=1)
    close = d2 <= limit
    return np.stack([rows[close], columns[close]], axis=1), d2[close]


def _joined(found):
    """``(pairs, squared distances)`` of a list of such tuples."""
    if not found:
        return np.zeros((0, 2), dtype="int64"), np.zeros(0)
    return (np.concatenate([pairs for pairs, _ in found]),
            np.concatenate([d2 for _, d2 in found]))


def _directions(centred):
    """``(d, ≤ 32)`` orthonormal columns near the top principal directions: a
    randomized subspace iteration on a sample of rows (any orthonormal columns
    keep the filter exact; these keep the candidates few)."""
    rng = np.random.default_rng(0)
    sample = centred[rng.permutation(len(centred))[:_SAMPLE]]
    k = min(_DIRECTIONS, *sample.shape)
    basis = sample.T @ (sample @ rng.normal(size=(sample.shape[1], k)))
    for _ in range(2):
        basis, _ = np.linalg.qr(basis)
        basis = sample.T @ (sample @ basis)
    return np.linalg.qr(basis)[0]


def _components(n, pairs):
    """Each row's smallest connected index under `pairs` (label propagation)."""
    labels = np.arange(n, dtype="int64")
    a, b = pairs[:, 0].astype("int64"), pairs[:, 1].astype("int64")
    if not len(a):
        return labels
    while True:
        low = np.minimum(labels[a], labels[b])
        before = labels.copy()
        np.minimum.at(labels, a, low)
        np.minimum.at(labels, b, low)
        labels = labels[labels]  # pointer jumping: every row to its label's label
        if np.array_equal(labels, before):
            return labels
