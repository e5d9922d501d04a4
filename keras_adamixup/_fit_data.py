"""The arrays `AdaMixupModel.fit` is given: checks, the training part, digests.

Used when `fit` gets NumPy arrays (a dataset: `keras_adamixup._fit_dataset`). Every check is one vectorized pass over the data:

- non-finite inputs are refused (mixing would spread a NaN to its partner's
  row), naming the rows;
- labels must be numbers: strings get a one-line recipe to encode them;
- one-hot labels with a *sparse* categorical cross-entropy get the loss to
  use (Keras' own message is a rank error deep in the step);
- the training part is what Keras trains on after ``validation_split``:
  the first ``floor(n · (1 − split))`` rows, the rest being the validation
  rows, as Keras splits arrays.
"""

import collections.abc
import hashlib
import json
import math

import keras
import numpy as np

from keras_adamixup import _checks

SPARSE_LOSS_NAMES = ("sparse_categorical_crossentropy",)
ONE_HOT_LOSS_NAMES = ("categorical_crossentropy",)


def are_arrays(x, y):
    """Whether `fit` got arrays: `x` an array or a dict / list / tuple of arrays, `y` an array."""
    if x is None or y is None or not hasattr(y, "shape") or _is_stream(x):
        return False
    leaves = keras.tree.flatten(x)
    return bool(leaves) and all(hasattr(leaf, "shape") and not _is_stream(leaf)
                                for leaf in leaves)


def _is_stream(x):
    import tensorflow as tf

    return isinstance(x, (tf.data.Dataset, keras.utils.PyDataset)) or hasattr(x, "__next__")


def check_arrays(x, y, *, loss=None, sparse_loss_matters=True, labels_as_given=True):
    """Refuses empty data (E46), non-finite inputs, string labels, one-hot labels for a
    sparse loss, and class ids for a one-hot loss.

    Args:
        x, y: the arrays given to `fit`.
        loss: the compiled loss (a name, a function or a `keras.losses.Loss`).
        sparse_loss_matters: whether the compiled loss sees these labels as
            they are (``label_mode="dominant"``, no teachers).
        labels_as_given: whether some model trained with the compiled loss sees
            these labels as they are (the model with ``label_mode="dominant"``,
            or split teachers).
    """
    if not len(np.asarray(y)):
        raise ValueError("E46: `fit` got no training rows (`x` and `y` are empty): give it "
                         "the examples to train on.")
    for name, leaf in _named_leaves(x):
        rows = non_finite_rows(leaf)
        if len(rows):
            raise ValueError(
                f"E39: `{name}` has NaN or inf in {len(rows)} row(s) (e.g. rows "
                f"{rows[:10].tolist()}): training on them gives NaN losses, and mixing "
                "would spread them to each partner's row. Remove or impute those rows "
                "before `fit`.")
    y = np.asarray(y)
    if y.dtype.kind in "USO" and (y.dtype.kind != "O" or any(
            isinstance(v, (str, bytes)) for v in y.reshape(-1)[:100])):
        raise ValueError(
            f"E39: The labels `y` are strings (dtype {y.dtype}): AdaMixupModel needs class ids "
            "0 … k−1 (or one-hot rows). Encode them first, e.g. `classes, y = "
            "np.unique(y, return_inverse=True)` (keep `classes` to decode predictions).")
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        rows = np.flatnonzero(~np.isfinite(y).reshape(len(y), -1).all(axis=1))
        raise ValueError(f"E39: The labels `y` have NaN or inf in {len(rows)} row(s) (e.g. rows "
                         f"{rows[:10].tolist()}).")
    if sparse_loss_matters and y.ndim == 2 and y.shape[1] > 1 and _is_sparse_loss(loss):
        raise ValueError(
            f"E39: The labels `y` are one-hot rows (shape {y.shape}) but the compiled loss is a "
            "sparse categorical cross-entropy, which takes class ids: compile with "
            "`keras.losses.CategoricalCrossentropy` (from_logits as before), or pass "
            "`y.argmax(axis=1)`.")
    if labels_as_given and (y.ndim == 1 or y.shape[1:] == (1,)) and y.dtype.kind in "iu" \
            and _is_one_hot_loss(loss):
        raise ValueError(
            f"E39: The labels `y` are class ids (shape {y.shape}) but the compiled loss is a "
            "categorical cross-entropy, which takes one-hot rows: compile with "
            "`keras.losses.SparseCategoricalCrossentropy` (from_logits as before), or pass "
            "`keras.utils.to_categorical(y)`.")


def non_finite_rows(array):
    """The indices of the rows of `array` holding a NaN or an inf (none for
    arrays that are not floating point or complex).

    Args:
        array: an array (rows first).
    """
    array = np.asarray(array)
    if array.dtype.kind not in "fc" or not len(array):
        return np.zeros(0, dtype="int64")
    return np.flatnonzero(~np.isfinite(array).reshape(len(array), -1).all(axis=1))


def _is_loss(loss, names, loss_class, exact=False):
    """Whether `loss` (a name, a loss object or a function) is `loss_class` or one of
    `names`; with `exact`, not a subclass of it (a user's subclass may take other labels)."""
    if isinstance(loss, str):
        return loss in names
    if type(loss) is loss_class or (not exact and isinstance(loss, loss_class)):
        return True
    return getattr(loss, "__name__", None) in names


def _is_sparse_loss(loss):
    return _is_loss(loss, SPARSE_LOSS_NAMES, keras.losses.SparseCategoricalCrossentropy)


def _is_one_hot_loss(loss):
    return _is_loss(loss, ONE_HOT_LOSS_NAMES, keras.losses.CategoricalCrossentropy, exact=True)


def _named_leaves(x):
    if isinstance(x, dict):
        return [(f"x[{key!r}]", x[key]) for key in sorted(x, key=str)]
    leaves = keras.tree.flatten(x)
    return [("x", leaves[0])] if len(leaves) == 1 else [
        (f"x[{i}]", leaf) for i, leaf in enumerate(leaves)]


def rows(x, index):
    """Rows `index` of an array, or of every array of a dict / list / tuple of them."""
    return keras.tree.map_structure(lambda a: np.asarray(a)[index], x)


def split_index(x, validation_split):
    """Where Keras splits `x` for ``validation_split`` (a number in [0, 1): E46).

    Args:
        x: the training inputs (an array or a structure of them).
        validation_split: `fit`'s ``validation_split``.
    """
    validation_split = _checks.validation_split(validation_split)
    n = len(keras.tree.flatten(x)[0])
    at = int(math.floor(n * (1.0 - validation_split)))
    if at == 0 or at == n:
        raise ValueError(f"`validation_split={validation_split}` leaves no training or no "
                         f"validation rows of {n}.")
    return at


def training_part(x, y, kwargs):
    """`(x, y, sample_weight)` that Keras trains on: without the validation rows
    of ``validation_split`` (ignored, as by Keras, when ``validation_data`` is given)."""
    split = kwargs.get("validation_split") or 0.0
    weights = kwargs.get("sample_weight")
    if not split or kwargs.get("validation_data") is not None:
        return x, y, weights
    at = split_index(x, split)
    keep = slice(0, at)
    return rows(x, keep), np.asarray(y)[keep], None if weights is None else np.asarray(
        weights)[keep]


def split_for_teachers(x, y, kwargs):
    """Takes ``validation_split``, ``sample_weight`` and ``class_weight`` out of `kwargs`.

    Returns:
        ``((x, y, weights), validation)``: the training part with per-example
        weights (the sample weights, or the class weights of the true
        classes; `None` without either), and the validation data to pass as
        ``validation_data`` (true labels), or `None`.
    """
    split = kwargs.pop("validation_split", None) or 0.0
    weights = kwargs.pop("sample_weight", None)
    class_weight = kwargs.pop("class_weight", None)
    y = np.asarray(y)
    weights = example_weights(y, weights, class_weight)
    validation = None
    if split and kwargs.get("validation_data") is None:
        at = split_index(x, split)
        validation = (rows(x, slice(at, None)), y[at:]) + (
            () if weights is None else (np.asarray(weights)[at:],))
        x, y = rows(x, slice(0, at)), y[:at]
        weights = None if weights is None else np.asarray(weights)[:at]
    return (x, y, None if weights is None else np.asarray(weights, dtype="float32")), validation


def example_weights(y, sample_weight, class_weight):
    """Per-example float32 weights: `sample_weight`, or the class weights of the true
    classes of `y` (class ids or one-hot rows), or `None` without either."""
    if sample_weight is not None and class_weight is not None:
        raise ValueError("E34: You cannot use `class_weight` and `sample_weight` at the "
                         "same time (as in Keras): fold the class weights into the sample "
                         "weights.")
    if class_weight is None:
        return None if sample_weight is None else np.asarray(sample_weight, dtype="float32")
    y = np.asarray(y)
    ids = y.argmax(axis=1) if y.ndim == 2 and y.shape[1] > 1 else y.reshape(len(y))
    ids = np.round(ids).astype("int64")
    return np.array([class_weight.get(int(c), 1.0) for c in ids], dtype="float32")


def digest(x, y, weights, *settings, more=None):
    """A hex digest of the training arrays, the weights, any JSON-able settings and
    the arrays `more` (a structure of arrays, or `None`)."""
    h = hashlib.sha256()
    leaves = keras.tree.flatten(x) + [y] + ([] if weights is None else [weights])
    for leaf in leaves + ([] if more is None else keras.tree.flatten(more)):
        a = np.ascontiguousarray(np.asarray(leaf))
        h.update(f"{a.shape}{a.dtype}".encode())
        h.update(a.tobytes())
    h.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return h.hexdigest()


# what each reader by index is called in E34
TEACHERS_READ = "SplitTeachers (each teacher trains on its own rows)"
MONITOR_READS = "the model's PrivacyMonitor (it draws the members it measures)"


def _unindexable(readers, got):
    """E34's message: `readers` read the training data by index, `got` (a type name) cannot."""
    return (f"E34: {' and '.join(readers)} {'read' if len(readers) > 1 else 'reads'} the "
            "training data by index: `fit` takes NumPy arrays (x may be a dict or list of "
            "arrays) or a finite tf.data.Dataset of (x, y) batches, not a generator or "
            f"PyDataset{f' (got {got})' if got else ''}: wrap a generator with "
            "`tf.data.Dataset.from_generator`.")


def require_arrays_or_dataset(x, y, readers=(MONITOR_READS,)):
    """Refuses inputs that `readers` cannot read by index: a generator or `PyDataset`
    (E34, one message naming every reader), labels as a Python list and the like
    (named by type: read as a dataset they failed inside its path,
    ``AttributeError: cardinality``).

    Args:
        x, y: the training inputs and labels given to `fit`.
        readers: what reads the training data by index (`TEACHERS_READ`,
            `MONITOR_READS`).
    """
    import tensorflow as tf

    if isinstance(x, (keras.utils.PyDataset, collections.abc.Iterator)):
        raise ValueError(_unindexable(readers, type(x).__name__))
    if not isinstance(x, tf.data.Dataset) and not are_arrays(x, y):
        raise TypeError(
            "`fit` takes NumPy arrays (x may be a dict or list of arrays for several "
            "inputs, y an array) or a tf.data.Dataset of (x, y) batches; got x "
            f"{type(x).__name__} and y {type(y).__name__}: convert with np.asarray.")


def require_arrays_for_teachers():
    """E34 for SplitTeachers given what they cannot read by index."""
    raise ValueError(_unindexable((TEACHERS_READ,), None))


def unlabelled_like(unlabelled, x):
    """`unlabelled` (`soft_labels`' argument) as NumPy arrays shaped as the inputs `x`
    but for their number of rows, or `None`; rows with NaN or inf are refused (E43).

    Args:
        unlabelled: public inputs without labels (the same structure as `x`), or `None`.
        x: the training inputs.
    """
    if unlabelled is None:
        return None
    try:
        unlabelled = keras.tree.map_structure(np.asarray, unlabelled)
        keras.tree.assert_same_structure(unlabelled, x)
    except (TypeError, ValueError):
        raise ValueError("SplitTeachers: `unlabelled` must be inputs of the same structure "
                         "as the training inputs (an array, or the same dict / list of "
                         "arrays).") from None
    sizes = set()
    for leaf, like in zip(keras.tree.flatten(unlabelled), keras.tree.flatten(x)):
        if leaf.shape[1:] != like.shape[1:]:
            raise ValueError(f"SplitTeachers: `unlabelled` rows have shape {leaf.shape[1:]}, "
                             f"the training inputs {like.shape[1:]}.")
        sizes.add(len(leaf))
    if len(sizes) != 1 or 0 in sizes:
        raise ValueError(f"SplitTeachers: `unlabelled` must hold at least one row, as many "
                         f"in every input; got {sorted(sizes)}.")
    for name, leaf in _named_leaves(unlabelled):
        rows = non_finite_rows(leaf)
        if len(rows):
            raise ValueError(
                f"E43: `unlabelled{name[1:]}` has NaN or inf in {len(rows)} row(s) (e.g. "
                f"rows {rows[:10].tolist()}): the teachers would label them NaN and the "
                "model's weights would become NaN. Remove or impute those rows before "
                "`fit`, e.g. keep the rows where "
                "`np.isfinite(u).reshape(len(u), -1).all(axis=1)`.")
    return unlabelled
