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
(and of the `groups` given), so a chain of near-copies is one group.

Exact duplicates are found by digest. Near ones by a filter that cannot miss
a pair: the rows are projected on ``≤ 32`` orthonormal directions near
the principal ones (a randomized subspace iteration on at most 2,048 rows; an
orthonormal projection never lengthens a distance), pairs within the threshold there are found by
blockwise distance computations (``n² × 32`` multiply-adds: a few seconds
for 50,000 rows on two cores), and each candidate is then checked on the
full inputs.

Example:

```python
groups = keras_adamixup.duplicates.near_duplicate_groups(x_train)
len(np.unique(groups))  # groups found; rows of one group share their smallest index
```
"""

import numpy as np

from keras_adamixup import _checks

__all__ = [
    "RADIUS",
    "near_duplicate_groups",
    "nearest_rows",
]


RADIUS = 0.1
_DIRECTIONS = 32
_SAMPLE = 2048
_BLOCK = 256


def near_duplicate_groups(x, radius=RADIUS, groups=None):
    """Each row's group: the smallest row index among its near-duplicates.

    Args:
        x: the inputs, an array of ``(n, ...)`` (or a dict / list of them,
            concatenated per row).
        radius: the largest distance of two rows of one group, relative to
            the root-mean-square distance between two rows; ``0`` groups
            exact duplicates only.
        groups: optional ``(n,)`` ids (a patient, a person: as scikit-learn's
            `GroupKFold` takes them): rows sharing an id are one group too.

    Returns:
        int64 ``(n,)``: rows of a group share a value, the smallest index of
        the group's rows (a row with no near-duplicate: its own index).

    Example:

    ```python
    groups = keras_adamixup.duplicates.near_duplicate_groups(x_train)
    print(len(groups) - len(set(groups)), "rows share a group with another")
    ```
    """
    _checks.number("radius", radius, low=0.0)
    flat = _rows(x)
    n = len(flat)
    pairs = [_exact_pairs(flat)]
    if groups is not None:
        groups = np.asarray(groups).reshape(-1)
        if len(groups) != n:
            raise ValueError(f"`groups` has {len(groups)} ids for {n} rows.")
        _, first, inverse = np.unique(groups, return_index=True, return_inverse=True)
        pairs.append(np.stack([np.arange(n), first[inverse.reshape(-1)]], axis=1))
    if radius > 0 and n > 1:
        pairs.append(_near_pairs(flat, radius))
    return _components(n, np.concatenate(pairs))


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
    if isinstance(x, np.ndarray):
        leaves = [x]
    else:
        import keras

        leaves = [np.asarray(leaf) for leaf in keras.tree.flatten(x)]
    return np.concatenate([leaf.reshape(len(leaf), -1).astype("float32") for leaf in leaves],
                          axis=1)


def _exact_pairs(flat):
    """(row, first identical row) for every row (itself when unique)."""
    view = np.ascontiguousarray(flat).view(np.dtype((np.void, flat.dtype.itemsize
                                                     * flat.shape[1])))
    _, first, inverse = np.unique(view.reshape(-1), return_index=True, return_inverse=True)
    return np.stack([np.arange(len(flat)), first[inverse.reshape(-1)]], axis=1)


def _near_pairs(flat, radius):
    """Pairs (i < j) within `radius` × the RMS pair distance, exactly."""
    n = len(flat)
    centred = flat.astype("float64") - flat.mean(axis=0, dtype="float64")
    mean_square = 2.0 * float(np.mean(np.sum(centred * centred, axis=1)))
    if mean_square == 0.0:  # all rows equal: the exact pairs have them
        return np.zeros((0, 2), dtype="int64")
    limit = radius * radius * mean_square
    projected = (centred @ _directions(centred)).astype("float32")
    norms = np.sum(projected * projected, axis=1)
    found = []
    # float32 rounding in the filter: keep a little more, then check exactly
    bound = np.float32(limit + 1e-3 * mean_square)
    for start in range(0, n, _BLOCK):
        block = projected[start:start + _BLOCK]
        rest = projected[start:]  # pairs (i < j) only: the columns from this block on
        d2 = norms[start:start + _BLOCK, None] + norms[None, start:] - 2.0 * (block @ rest.T)
        i, j = np.nonzero(d2 <= bound)
        i, j = i + start, j + start
        keep = i < j
        i, j = i[keep], j[keep]
        if len(i):
            diff = centred[i] - centred[j]
            close = np.sum(diff * diff, axis=1) <= limit
            found.append(np.stack([i[close], j[close]], axis=1))
    return np.concatenate(found) if found else np.zeros((0, 2), dtype="int64")


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
