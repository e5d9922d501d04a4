"""A `tf.data.Dataset` given to `AdaMixupModel.fit`: examples by index, in passes.

Split teachers need each training example by its index: which teachers leave
it out, and which soft label it gets back. A dataset has no index, so one is
given by position: the dataset is read as batches of ``(x, y)`` or ``(x, y,
sample_weight)``, unbatched, and example ``i`` is the ``i``-th it yields.
That needs:

- a **finite** dataset (no `repeat()` without a count);
- the **same order at every pass**: shuffle *after* the teachers, not in the
  dataset (the model shuffles the examples it trains on, with a buffer of
  `SHUFFLE_BUFFER`); random augmentation in the pipeline is fine, it changes
  inputs, not the order (labels are compared over two passes to check);
- batches of examples with one label each (what Keras' `fit` takes).

Nothing is held in memory but per-example numbers (labels, weights, soft
labels: a few bytes to a few hundred per example), so a dataset larger than
memory works: the teachers and the model read it in passes. The exception:
`scan` keeps the inputs of a dataset of one input whose inputs are the same
at every pass, so that split teachers can train from them as from arrays
(together, in one compiled step: `whole_inputs`) and search them for
near-duplicates as arrays are. They take at most `SEARCH_BYTES`: images that
would take more are kept at half their sides (each pixel the mean of a
2 × 2 block), again until they fit, down to `MIN_SEARCH_SIDE` pixels a side;
the search then compares them at that resolution, moved in half pixels
(`SplitTeachers`). Other inputs that would take more are not kept, and the
search is skipped with a warning.
"""

import contextlib
import hashlib

import keras
import numpy as np
import tensorflow as tf

from keras_adamixup import _fit_data
from keras_adamixup import _image_ops

# the model's shuffle buffer over the joined examples (examples, not batches)
SHUFFLE_BUFFER = 10_000
# batches compared over two passes to check the order is fixed
_ORDER_BATCHES = 2
# the most bytes of inputs `scan` keeps for the near-duplicate search (as the dataset
# yields them: uint8 images take a quarter of float32 ones)
SEARCH_BYTES = 2**30
# images are kept halved, as often as needed to fit SEARCH_BYTES, down to this many pixels
# on their shorter side (the search's shifts and crops need 8 or more)
MIN_SEARCH_SIDE = 8


def is_dataset(x):
    return isinstance(x, tf.data.Dataset)


# why a `validation_data` dataset must be finite (E30)
_VALIDATION_FINITE = (
    "the monitor this fit makes measures every validation example as a non-member, at "
    "every measurement, so it needs a finite set. Pass the dataset without `repeat()` (and "
    "without `validation_steps`): Keras then validates on all of it.")


def check(dataset, name="x", readers=(_fit_data.TEACHERS_READ,)):
    """Refuses a training (``name="x"``, E72) or ``validation_data`` (E30) dataset the
    package cannot read: infinite, elements not ``(x, y[, w])``, not batched.

    Args:
        dataset: the dataset given to `fit`.
        name: its argument's name.
        readers: what reads the training examples by index, in passes
            (`_fit_data.TEACHERS_READ`, `_fit_data.MONITOR_READS`), for the
            message.
    """
    if dataset.cardinality() == tf.data.INFINITE_CARDINALITY:
        why = _VALIDATION_FINITE if name != "x" else (
            f"{' and '.join(readers)} {'read' if len(readers) > 1 else 'reads'} the "
            "training examples by index, in passes. Give the finite dataset and `epochs` "
            "to `fit` (no `repeat()`, no `steps_per_epoch`).")
        raise ValueError(f"{_code(name)}: `{name}` is an infinite dataset (`repeat()` "
                         f"without a count): " + why)
    check_batched(dataset, name)


def check_batched(dataset, name="x"):
    """Refuses a dataset whose elements are not ``(x, y[, w])``, or whose labels are
    scalars (not batched): any `fit` of the package's models trains on labels (E72
    for the training data, E30 for ``validation_data``)."""
    code = _code(name)
    spec = dataset.element_spec
    if not isinstance(spec, tuple) or len(spec) not in (2, 3):
        hint = (" (a dataset of feature dicts, as TensorFlow Datasets gives: map it to "
                "pairs, e.g. `.map(lambda d: (d['image'], d['label']))`, or load it with "
                "`as_supervised=True`)" if isinstance(spec, dict) else "")
        raise ValueError(
            f"{code}: `{name}` must be a dataset of (x, y) or (x, y, sample_weight) batches, "
            f"got element_spec {spec}{hint}.")
    if spec[1].shape.rank == 0:
        raise ValueError(f"{code}: `{name}` is not batched (its labels are scalars): batch "
                         f"it, e.g. `{name}.batch(64)`, as Keras' `fit` needs.")


def _code(name):
    """The error code of a dataset `check` refuses: E72 training data, E30 the monitor's."""
    return "E72" if name == "x" else "E30"


def indexed_batches(dataset, labels=None):
    """The dataset's batches with their examples' indices: ``(i, (x, y[, w]))``,
    `i` int64 ``(batch,)``. Batch by batch: per-example work in a `tf.data` map
    costs more than the steps of a small model.

    Args:
        dataset: the batched training dataset.
        labels: `scan`'s labels, or `None`: each example's label is then
            checked against the one `scan` read at its position, so that a
            dataset reshuffled at every pass fails instead of joining soft
            labels (and teachers' left-out rows) to the wrong examples.
    """
    def indexed(start, element):
        n = tf.shape(element[1], out_type=tf.int64)[0]
        return start + n, (start + tf.range(n, dtype=tf.int64), element)

    batches = dataset.scan(np.int64(0), indexed)
    if labels is None:
        return batches
    expected = tf.constant(np.asarray(labels))

    def checked(i, element):
        read = tf.reshape(tf.cast(element[1], expected.dtype), [tf.size(i), -1])
        want = tf.reshape(tf.gather(expected, i), [tf.size(i), -1])
        same = tf.reduce_all(tf.equal(read, want))
        with tf.control_dependencies([tf.debugging.Assert(same, [_REORDERED])]):
            return tf.identity(i), element
    return batches.map(checked)


@contextlib.contextmanager
def order_checked():
    """The per-pass order check's failure (`indexed_batches`), which TensorFlow
    raises from inside the pipeline as an `InvalidArgumentError` with a graph
    traceback, turned into the `ValueError` it means."""
    try:
        yield
    except tf.errors.InvalidArgumentError as error:
        if _REORDERED_MARK not in str(error):
            raise
        raise ValueError(_REORDERED) from None


def _kept_rows(keep):
    """A `indexed_batches` map: each batch's examples where `keep` (by index)."""
    keep = tf.constant(np.asarray(keep, dtype=bool))

    def kept(i, element):
        mask = tf.gather(keep, i)
        return tf.boolean_mask(i, mask), tf.nest.map_structure(
            lambda part: tf.boolean_mask(part, mask), element)
    return kept


def without_weights(dataset):
    """A batched dataset of ``(x, y)`` (a third element, sample weights, dropped)."""
    if len(dataset.element_spec) == 3:
        return dataset.map(lambda x, y, w: (x, y))
    return dataset


def count_examples(data):
    """The number of examples of `(x, y)` arrays or of a batched dataset (one pass)."""
    if not is_dataset(data):
        return len(np.asarray(data[1]))
    return int(data.unbatch().reduce(np.int64(0), lambda count, _: count + 1))


def scan(dataset, keep_inputs=False, halve=True):
    """One pass over the training dataset: what the teachers need of it in memory.

    Args:
        dataset: the batched training dataset.
        keep_inputs: keep the inputs too (for the teachers and the
            near-duplicate search), when the dataset has one input, the same
            at every pass, of at most `SEARCH_BYTES`.
        halve: keep images that would take more at half their sides (for the
            search alone); `False` keeps none then.

    Returns:
        a dict: ``n`` (examples), ``y`` (labels, NumPy), ``weights``
        (sample weights of a third element, or `None`), ``batch_size`` (of
        the first batch), ``inputs_digest`` (of every input, in order),
        ``fixed_inputs`` (whether two passes gave the same first inputs:
        `False` with random augmentation in the pipeline), ``inputs`` (NumPy,
        or `None` when not kept), ``inputs_not_kept`` (why, or `None`) and
        ``inputs_halved`` (how many times the kept images were halved to fit
        `SEARCH_BYTES`: 0 for inputs kept whole).
    """
    check(dataset)
    first, second = _first(dataset), _first(dataset)
    if not _same_order(first, second):  # a `.cache()` keeps one order once a pass filled it
        for _ in dataset:
            pass
        first, second = _first(dataset), _first(dataset)
        if not _same_order(first, second):
            raise ValueError(_REORDERED)
    fixed = _same_inputs(first, second)
    kept = _Kept(keep_inputs, fixed, len(keras.tree.flatten(dataset.element_spec[0])), halve)
    labels, weights, digest, batch_size = [], [], hashlib.sha256(), None
    for element in dataset.as_numpy_iterator():
        x, y = element[0], np.asarray(element[1])
        batch_size = batch_size or len(y)
        labels.append(y)
        if len(element) == 3:
            weights.append(np.asarray(element[2], dtype="float32").reshape(-1))
        for leaf in keras.tree.flatten(x):
            digest.update(np.ascontiguousarray(leaf).tobytes())
        kept.add(x)
    if not labels:
        raise ValueError("The training dataset is empty.")
    return {"n": sum(len(part) for part in labels), "y": np.concatenate(labels),
            "weights": np.concatenate(weights) if weights else None,
            "batch_size": batch_size, "inputs_digest": digest.hexdigest(),
            "fixed_inputs": fixed, "inputs": kept.inputs(), "inputs_not_kept": kept.why,
            "inputs_halved": kept.halved}


class _Kept:
    """`scan`'s inputs kept for the near-duplicate search, or why they are not."""

    def __init__(self, wanted, fixed, leaves, halve=True):
        self.parts, self.size, self.why, self.halved, self.halve = [], 0, None, 0, halve
        if not wanted:
            self.why = "not asked"
        elif not fixed:
            self.why = ("its inputs change from pass to pass (random augmentation in the "
                        "pipeline: put it in the model, as augmentation layers)")
        elif leaves != 1:
            self.why = f"it has {leaves} inputs"

    def add(self, x):
        if self.why is not None:
            return
        part = np.asarray(keras.tree.flatten(x)[0])  # one input, maybe in a dict
        for _ in range(self.halved):
            part = _image_ops.halved(part)
        self.parts.append(part)
        self.size += part.nbytes
        while self.size > SEARCH_BYTES:
            if not (self.halve and _halvable(part)):
                self.parts, self.why = [], self._too_large(part)
                return
            self.parts = [_image_ops.halved(kept) for kept in self.parts]
            self.size, self.halved = sum(kept.nbytes for kept in self.parts), self.halved + 1
            part = self.parts[-1]

    def inputs(self):
        return np.concatenate(self.parts) if self.why is None and self.parts else None

    def _too_large(self, part):
        """Why inputs over `SEARCH_BYTES` are not kept (`part`: the last batch kept)."""
        why = f"its inputs take more than {SEARCH_BYTES:,} bytes (`_fit_dataset.SEARCH_BYTES`)"
        if not self.halve:  # kept for the teachers alone: whole or not at all
            return why
        if self.halved:
            return (f"{why} even at {min(part.shape[1:3])} pixels a side, and images are "
                    f"not kept under {MIN_SEARCH_SIDE}")
        return why + _WHY_NOT_HALVED


_WHY_NOT_HALVED = (f", and they are not images of {2 * MIN_SEARCH_SIDE} pixels or more a "
                   "side that could be kept at half their sides")


def whole_inputs(dataset, scanned):
    """`scan`'s kept inputs, kept whole (not halved), in the dataset's structure (an
    array, or a dict / tuple of one), else `None`: the teachers then train from them
    as from arrays."""
    if scanned["inputs"] is None or scanned["inputs_halved"]:
        return None
    return keras.tree.pack_sequence_as(dataset.element_spec[0], [scanned["inputs"]])


def _halvable(part):
    """Whether kept inputs are images ``(n, H, W[, C])`` (at most 4 channels) whose
    halves keep `MIN_SEARCH_SIDE` pixels a side."""
    if part.ndim not in (3, 4) or (part.ndim == 4 and part.shape[-1] > 4):
        return False
    return min(part.shape[1:3]) // 2 >= MIN_SEARCH_SIDE


def _first(dataset):
    return list(dataset.take(_ORDER_BATCHES).as_numpy_iterator())


_REORDERED_MARK = "in another order at each pass"
_REORDERED = (
    "E72: The training dataset yields its examples in another order at each pass "
    "(shuffled): split teachers find each example's soft label by its position. "
    "Give `fit` the dataset without `shuffle` (the model shuffles the examples "
    f"it trains on, {SHUFFLE_BUFFER} at a time), or shuffle once with "
    "`shuffle(..., reshuffle_each_iteration=False)`. "
    "`keras.utils.image_dataset_from_directory` reshuffles at each pass unless given "
    "`shuffle=False`, and then yields its files in class order (its validation_split "
    "then holds the last classes alone): keep `shuffle=True, seed=N` and add `.cache()` "
    "(`.cache(path)` for images larger than memory), which keeps the first pass's order.")


def _same_order(first, second):
    """Whether two passes' first batches hold the same labels (a dataset reshuffled at
    each pass is refused; every later pass is checked example by example:
    `indexed_batches`)."""
    return all(np.array_equal(np.asarray(one[1]), np.asarray(two[1]))
               for one, two in zip(first, second))


def _same_inputs(first, second):
    """Whether two passes' first batches hold the same inputs (no random augmentation)."""
    return all(np.array_equal(np.asarray(a), np.asarray(b))
               for one, two in zip(first, second)
               for a, b in zip(keras.tree.flatten(one[0]), keras.tree.flatten(two[0])))


def select(dataset, keep, weights=None, labels=None):
    """The examples where `keep` (bool per example) is True, as ``(x, y, w)`` elements.

    Args:
        dataset: the batched training dataset.
        keep: NumPy bool ``(n,)``.
        weights: NumPy float ``(n,)`` per-example weights, or `None`.
        labels: `scan`'s labels, checked at every pass (`indexed_batches`), or `None`.
    """
    chosen = indexed_batches(dataset, labels).map(_kept_rows(keep))
    if weights is None:
        return chosen.map(lambda i, element: element).unbatch()
    weights = tf.constant(np.asarray(weights, dtype="float32"))
    return chosen.map(lambda i, element: (element[0], element[1],
                                          tf.gather(weights, i))).unbatch()


def inputs_of(dataset, keep, batch_size=512, labels=None):
    """The inputs of the examples where `keep` is True, batched (for predictions;
    `labels`: `scan`'s, checked at every pass, or `None`)."""
    chosen = indexed_batches(dataset, labels).map(_kept_rows(keep))
    return chosen.map(lambda i, element: element[0]).unbatch().batch(batch_size)


def joint_batches(dataset, batch_size, seed, count, labels=None):
    """Every example as ``(i, x, y)``, shuffled at every pass (a buffer of up to
    `SHUFFLE_BUFFER`) and batched: the batches that models trained together read,
    each stepping on its own rows of them (`_stacked.train_streamed`; `labels`:
    `scan`'s, checked at every pass, or `None`)."""
    examples = indexed_batches(dataset, labels).map(
        lambda i, element: (i, element[0], element[1])).unbatch()
    return shuffled_batches(examples, batch_size, seed, count)


def indexed_inputs(dataset, batch_size=1024, labels=None):
    """Every example's inputs as ``(i, x)`` batches of `batch_size`, in order (for
    predictions by index; `labels`: `scan`'s, checked at every pass, or `None`)."""
    return (indexed_batches(dataset, labels).map(lambda i, element: (i, element[0]))
            .unbatch().batch(batch_size).prefetch(tf.data.AUTOTUNE))


def shuffled_batches(examples_ds, batch_size, seed, count):
    """`examples_ds` (`count` examples) shuffled (a buffer of up to `SHUFFLE_BUFFER`)
    and batched, with its number of batches known to Keras."""
    buffer = max(1, min(int(count), SHUFFLE_BUFFER))
    batches = -(-int(count) // int(batch_size))
    # filtering and unbatching lose the cardinality; Keras needs it to plan
    # the epoch (progress bar, schedules that decay over the planned steps)
    return (examples_ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
            .batch(batch_size)
            .apply(tf.data.experimental.assert_cardinality(batches))
            .prefetch(tf.data.AUTOTUNE))


def with_targets(dataset, soft, weights, batch_size, seed, labels=None):
    """The training dataset with each example's soft label (by index) and weight.

    Args:
        dataset: the batched training dataset (its own weights are replaced
            by `weights`, which must already include them).
        soft: float32 ``(n, classes)`` soft labels, in the examples' order.
        weights: float32 ``(n,)`` per-example weights, or `None`.
        batch_size: the batches of the result.
        seed: the shuffle's seed.
        labels: `scan`'s labels, checked at every pass (`indexed_batches`), or `None`.
    """
    soft = tf.constant(np.asarray(soft, dtype="float32"))
    indexed = indexed_batches(dataset, labels)
    if weights is None:
        joined = indexed.map(lambda i, element: (element[0], tf.gather(soft, i)))
    else:
        weights = tf.constant(np.asarray(weights, dtype="float32"))
        joined = indexed.map(lambda i, element: (element[0], tf.gather(soft, i),
                                                 tf.gather(weights, i)))
    return shuffled_batches(joined.unbatch(), batch_size, seed, len(soft))


def draw_examples(dataset, count, seed):
    """`count` examples drawn without replacement (seeded), as ``(x, y)`` NumPy arrays.

    Two passes: one to count the examples, one to collect those drawn. The
    monitor's members: a fixed set, measured at every epoch.
    """
    check(dataset, readers=(_fit_data.MONITOR_READS,))
    total = count_examples(dataset)
    pick = np.zeros(total, dtype=bool)
    pick[np.random.default_rng(seed).choice(total, min(count, total), replace=False)] = True
    batches = list(select(without_weights(dataset), pick).batch(512).as_numpy_iterator())
    x = keras.tree.map_structure(lambda *parts: np.concatenate(parts),
                                 *[b[0] for b in batches])
    return x, np.concatenate([b[1] for b in batches])


def first_inputs(dataset):
    """The inputs of the first batch (NumPy): what ``features="auto"`` is decided from."""
    check_batched(dataset)
    for element in dataset.take(1).as_numpy_iterator():
        return element[0]
    raise ValueError("The training dataset is empty.")
