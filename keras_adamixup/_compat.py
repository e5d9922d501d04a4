"""The one place where keras-adamixup works around a Keras bug.

keras-team/keras#20585 (https://github.com/keras-team/keras/issues/20585):
under `tf.distribute.MultiWorkerMirroredStrategy`, Keras' TensorFlow trainer

1. reduces per-replica logs with ``strategy.reduce("MEAN", v, axis=0)``, which
   fails on the scalar logs every train/test step returns, and
2. builds the model from the first batch of a distributed dataset with
   ``strategy.reduce("MEAN", batch)``, which fails across workers (the build
   only needs shapes).

`AdaMixupModel` calls `multi_worker_logs` at the end of its train and test
steps and `symbolic_build_batch` from its ``_maybe_symbolic_build`` override
(the only private Keras method the package touches, and only here, for this
bug). Both are no-ops outside `MultiWorkerMirroredStrategy`, and only active
for the Keras versions in `AFFECTED` (every version the package supports,
checked up to 3.15). When a Keras release fixes the bug, narrow `AFFECTED` and
the multi-worker test (`tests/test_distribute.py`) shows whether the plain
Keras path works.
"""

import keras
import tensorflow as tf

ISSUE = "https://github.com/keras-team/keras/issues/20585"


def _version(text):
    parts = []
    for piece in text.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts + [0] * (3 - len(parts)))


KERAS_VERSION = _version(keras.__version__)
# First Keras version without the bug: not known yet (open as of 3.15).
AFFECTED = KERAS_VERSION < (3, 16, 0)


def is_multi_worker(model):
    """True when `model` was built under a `MultiWorkerMirroredStrategy`."""
    return isinstance(model.distribute_strategy, tf.distribute.MultiWorkerMirroredStrategy)


def multi_worker_logs(model, logs):
    """Logs as length-1 tensors under multi-worker (the reduce over axis 0 gives the scalar)."""
    if AFFECTED and is_multi_worker(model):
        return {k: tf.reshape(v, [1]) for k, v in logs.items()}
    return logs


def symbolic_build_batch(model, iterator):
    """This worker's first local shard from Keras' epoch iterator, or `None`.

    Keras' iterator yields ``(begin, end, iterator)`` since 3.11 and
    ``(step, iterator)`` before; the data iterator is the last item in both.
    `None` means: let Keras build as usual.
    """
    if iterator is None or not AFFECTED or not is_multi_worker(model):
        return None
    strategy = model.distribute_strategy
    for item in iterator:
        batch = next(item[-1])
        break
    return tf.nest.map_structure(
        lambda v: strategy.experimental_local_results(v)[0]
        if isinstance(v, tf.distribute.DistributedValues) else v,
        batch,
    )
