"""Batch-normalization statistics re-estimated before a model is measured mid-training.

Keras' `BatchNormalization` keeps moving averages of its inputs' mean and
variance with ``momentum=0.99``: each step moves them 1 % of the way. On the
small training sets of this package's users (a few thousand rows, tens of
steps per epoch) they lag the weights for hundreds of steps: a CIFAR-10 CNN
trained on 2,000 images predicts at 0.12 accuracy in inference mode after six
epochs while it is at 0.43 in training mode, and at 0.39 once the statistics
are re-estimated (docs/BENCHMARKS.md, "Batch normalization mid-training").
Every decision taken on a model's inference-mode outputs during training
(each teacher's best epoch, the hold-out monitor that drives `PlateauDecay`
and the checkpoint) would read those stale statistics.

`refresh` sets each layer's statistics to those of one batch of the model's
own training rows, in training mode (augmentation layers active, as in
training): one forward pass, no weight changes. The statistics are only
ever used in inference mode, so training goes on as before. The model's
`fit` does this before each measurement (`Refresh`).

The split teachers, copies that are never released, are measured after every
epoch; instead of a refresh each (a forward pass of `ROWS` rows per teacher
and epoch: 0.28 s of a 2.5 s epoch on the CIFAR-10 CNN), their layers get
``momentum=FOLLOW`` (`follow`): the moving averages then follow the last ten
or so steps, at no cost. Training mode never reads them, so the teachers
train exactly as before.
"""

import keras
import numpy as np

from keras_adamixup import _fit_data

# rows of the forward pass that re-estimates the statistics
ROWS = 512
# the split teachers' momentum (`follow`): each step moves the averages 10 % of the
# way, so the last 10 steps (640 rows at batch 64) weigh about two thirds
FOLLOW = 0.9


def _sublayers(layer):
    """The layers `layer` holds: a model's ``layers``, and the layers a custom layer
    or wrapper (``TimeDistributed``) keeps as attributes, alone or in lists and dicts
    (what Keras tracks as its sublayers)."""
    held = list(getattr(layer, "layers", None) or [])
    for value in vars(layer).values():
        if isinstance(value, dict):
            value = list(value.values())
        items = value if isinstance(value, (list, tuple)) else (value,)
        held.extend(item for item in items if isinstance(item, keras.layers.Layer))
    return held


def layers_of(model, kind=keras.layers.BatchNormalization):
    """The layers of `model` of class `kind`, nested models and layers included
    (layers inside a custom layer's attributes, or a wrapper's).

    Args:
        model: a Keras model or layer.
        kind: a layer class, or a tuple of them (default: `BatchNormalization`).
    """
    found, seen, pending = [], {id(model)}, _sublayers(model)
    while pending:
        layer = pending.pop(0)
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        if isinstance(layer, kind):
            found.append(layer)
        pending.extend(_sublayers(layer))
    return found


def has_layers(model, names):
    """Whether `model` (nested models and layers included, as `layers_of`) holds a
    layer of one of the `keras.layers` classes `names` (those this Keras lacks are
    skipped).

    Args:
        model: a Keras model or layer.
        names: class names in `keras.layers` (``("Conv2D", ...)``).
    """
    kinds = tuple(getattr(keras.layers, name) for name in names if hasattr(keras.layers, name))
    return bool(layers_of(model, kinds))


def draw(rows, seed=0, size=ROWS):
    """A bool mask of at most `size` rows drawn (seeded) among the True ones of `rows`.

    Args:
        rows: a bool mask of the rows to draw from (a model's training rows).
        seed: the draw's seed.
        size: how many rows at most.
    """
    rows = np.asarray(rows, dtype=bool)
    index = np.flatnonzero(rows)
    if len(index) > size:
        index = np.random.default_rng(seed).choice(index, size, replace=False)
    mask = np.zeros(len(rows), dtype=bool)
    mask[index] = True
    return mask


def follow(model, momentum=FOLLOW):
    """Gives `model`'s batch-normalization layers ``momentum`` (`FOLLOW`): their
    moving averages follow the last steps' statistics instead of lagging them.

    For models only measured, never released (the split teachers): it changes
    what they predict in inference mode, not how they train.

    Args:
        model: a Keras model.
        momentum: the layers' new momentum, in ``[0, 1)``.

    Example:

    ```python
    follow(teacher)  # before its fit
    ```
    """
    for layer in layers_of(model):
        layer.momentum = momentum


def averages_weights(optimizer):
    """Whether `optimizer` (or the one a loss-scale wrapper holds) keeps a moving
    average of the weights that `fit` swaps in when it ends (``use_ema=True``).

    Args:
        optimizer: a Keras optimizer, or `None`.
    """
    inner = getattr(optimizer, "inner_optimizer", None)
    return bool(getattr(optimizer, "use_ema", False) or getattr(inner, "use_ema", False))


def refresh(model, inputs):
    """Sets `model`'s batch-normalization statistics to those of `inputs`.

    Args:
        model: a Keras model; nothing happens when it has no
            `BatchNormalization` layer (or `inputs` is `None`).
        inputs: a batch of its training inputs (`sample`).

    Example:

    ```python
    refresh(teacher, x_train[draw(kept, seed=0)])
    ```
    """
    layers = layers_of(model)
    if not layers or inputs is None:
        return
    momenta = [layer.momentum for layer in layers]
    try:
        for layer in layers:
            layer.momentum = 0.0  # the moving averages become this batch's statistics
        model(inputs, training=True)
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum


class Refresh(keras.callbacks.Callback):
    """A callback that re-estimates a model's statistics (`refresh`) before it is
    measured: before `fit`'s own validation (Keras validates before the epoch-end
    callbacks, so ``val_accuracy`` reads fresh statistics too), at each epoch's
    end before the monitors when something reads the model there
    (``every_epoch``), and at the end of `fit`: the model ends its `fit` with
    fresh statistics. An epoch whose validation already refreshed them (no step
    has run since) is not refreshed again.

    Args:
        inputs: a batch of the model's training inputs (`draw`).
        model: the model to refresh; `None`: the model being fitted.
        every_epoch: refresh at each epoch's end (other callbacks read or save
            the model there); `False`: only before validation and once when
            `fit` ends (a forward pass of `ROWS` rows saved per epoch: a fifth
            of an epoch of the CIFAR-10 CNN on 2,000 rows).
        swapped_back: a callback puts other weights back after each validation
            (Keras' `SwapEMAWeights` without ``swap_on_epoch``: the averaged
            weights are validated, the raw ones trained): the statistics of the
            validated weights are then stale at the epoch's end.

    Example:

    ```python
    model.fit(x, y, callbacks=[Refresh(x[draw(np.ones(len(x), bool))])])
    ```
    """

    def __init__(self, inputs, model=None, every_epoch=True, swapped_back=False):
        super().__init__()
        self._inputs, self._target = inputs, model
        self._every_epoch = bool(every_epoch)
        self._swapped_back = bool(swapped_back)
        self._fresh = False

    def _refresh(self):
        refresh(self._target if self._target is not None else self.model, self._inputs)
        self._fresh = True

    def on_epoch_begin(self, epoch, logs=None):
        self._fresh = False

    def on_test_begin(self, logs=None):
        self._refresh()

    def on_test_end(self, logs=None):
        if self._swapped_back:
            self._fresh = False

    def on_epoch_end(self, epoch, logs=None):
        if self._every_epoch and not self._fresh:
            self._refresh()

    def on_train_end(self, logs=None):
        # `fit` has just swapped in the optimizer's moving average of the weights
        # (``use_ema=True``): statistics of the last step's weights no longer fit
        if not self._fresh or averages_weights(getattr(self.model, "optimizer", None)):
            self._refresh()
