"""Cross-entropy that accepts class ids *and* soft targets.

Soft mixup trains on soft targets, but users compile with
``"sparse_categorical_crossentropy"`` and evaluate on class ids. Keras' sparse
loss rejects soft targets and its categorical loss rejects class ids, so
`AdaMixupModel.compile` swaps a sparse categorical cross-entropy for this loss
when ``label_mode="soft"``: one loss for mixed training batches and clean
evaluation batches.
"""

import keras
from keras import ops


__all__ = [
    "MixupCrossentropy",
]


@keras.saving.register_keras_serializable(package="keras_adamixup")
class MixupCrossentropy(keras.losses.Loss):
    """Categorical cross-entropy for class ids or one-hot/soft targets.

    The target format is chosen per call from the static shapes: targets with
    one dimension fewer than the predictions, or a last dimension of 1 when the
    predictions have more than one class, are class ids; otherwise they are
    one-hot or soft targets.

    Args:
        from_logits: whether predictions are logits.
        label_smoothing: as in `keras.losses.CategoricalCrossentropy`.
        axis: the class axis.
        reduction: as in `keras.losses.Loss`.
        name: loss name.
        dtype: loss dtype.

    Example:

    >>> loss = MixupCrossentropy(from_logits=True)
    >>> logits = ops.array([[2.0, 0.0, -1.0]])
    >>> sparse = loss(ops.array([0]), logits)
    >>> dense = loss(ops.array([[1.0, 0.0, 0.0]]), logits)  # same value
    """

    def __init__(
        self,
        from_logits=False,
        label_smoothing=0.0,
        axis=-1,
        reduction="sum_over_batch_size",
        name="mixup_crossentropy",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing
        self.axis = axis

    def call(self, y_true, y_pred):
        y_pred = ops.convert_to_tensor(y_pred)
        y_true = dense_targets(y_true, y_pred, self.axis)
        return keras.losses.categorical_crossentropy(
            y_true,
            y_pred,
            from_logits=self.from_logits,
            label_smoothing=self.label_smoothing,
            axis=self.axis,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing,
                "axis": self.axis,
            }
        )
        return config


def dense_targets(y_true, y_pred, axis=-1):
    """`y_true` as one-hot or soft rows in `y_pred`'s dtype, from class ids or as given.

    The target format is read from the static shapes: targets with one
    dimension fewer than the predictions, or a last dimension of 1 when the
    predictions have more than one class, are class ids (one-hot encoded
    here); otherwise they are one-hot or soft targets (cast only).

    Args:
        y_true: class ids, or one-hot / soft targets.
        y_pred: the predictions (logits or probabilities), for their shape and dtype.
        axis: the class axis.

    Example:

    >>> ops.convert_to_numpy(dense_targets(ops.array([2]), ops.zeros((1, 3)))).tolist()
    [[0.0, 0.0, 1.0]]
    """
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.convert_to_tensor(y_true)
    classes = y_pred.shape[axis]
    sparse = len(y_true.shape) == len(y_pred.shape) - 1 or (
        len(y_true.shape) == len(y_pred.shape)
        and y_true.shape[axis] == 1
        and classes != 1
    )
    if sparse:
        if len(y_true.shape) == len(y_pred.shape):
            y_true = ops.squeeze(y_true, axis=axis)
        y_true = ops.one_hot(ops.cast(y_true, "int32"), classes, axis=axis)
    return ops.cast(y_true, y_pred.dtype)


def _is_sparse_crossentropy(loss):
    if isinstance(loss, str):
        return loss in ("sparse_categorical_crossentropy",)
    if isinstance(loss, keras.losses.SparseCategoricalCrossentropy):
        return True
    return loss is keras.losses.sparse_categorical_crossentropy


def soft_compatible(loss):
    """Swaps a sparse categorical cross-entropy for `MixupCrossentropy`.

    Other losses are returned unchanged (they receive one-hot/soft targets in
    soft mode). Dicts and lists of losses (multi-output models) are not
    supported by mixing and are returned unchanged.

    Raises:
        ValueError: for a sparse cross-entropy with ``ignore_class`` set, which
            has no meaning for mixed targets.
    """
    if not _is_sparse_crossentropy(loss):
        return loss
    if isinstance(loss, keras.losses.SparseCategoricalCrossentropy):
        config = loss.get_config()
        if config.get("ignore_class") is not None:
            raise ValueError(
                "SparseCategoricalCrossentropy(ignore_class=...) cannot be used "
                "with label_mode='soft': mixed targets have no single class to "
                "ignore. Use label_mode='dominant' or drop ignore_class."
            )
        return MixupCrossentropy(
            from_logits=config.get("from_logits", False),
            reduction=config.get("reduction", "sum_over_batch_size"),
            name=config.get("name", "mixup_crossentropy"),
        )
    return MixupCrossentropy()


# Keras' classification losses, by the names Keras resolves strings and
# functions with; a Loss subclass counts by its class name.
_CLASSIFICATION_NAMES = frozenset({
    "sparse_categorical_crossentropy", "categorical_crossentropy",
    "binary_crossentropy", "binary_focal_crossentropy",
    "categorical_focal_crossentropy", "categorical_generalized_cross_entropy",
    "categorical_hinge", "hinge", "squared_hinge", "kl_divergence", "kld",
    "kullback_leibler_divergence", "mixup_crossentropy", "dice", "tversky",
})
_CLASSIFICATION_WORDS = ("crossentropy", "cross_entropy", "hinge", "focal",
                         "kldivergence", "kl_divergence")


def _loss_name(loss):
    if isinstance(loss, str):
        return loss.lower()
    if isinstance(loss, keras.losses.Loss):
        name = type(loss).__name__
    else:
        name = getattr(loss, "__name__", type(loss).__name__)
    # CamelCase → snake_case: BinaryCrossentropy → binary_crossentropy
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


def is_classification_loss(loss):
    """True for Keras' classification losses and losses named like one."""
    name = _loss_name(loss)
    return name in _CLASSIFICATION_NAMES or any(
        word in name.replace("_", "") or word in name for word in _CLASSIFICATION_WORDS)


def check_classification_loss(loss):
    """Raises `ValueError` unless every given loss is a classification loss.

    Mixing treats targets as class labels (a single output is a binary
    classifier), so a regression loss such as mean squared error would train
    on targets mixed by the wrong rule without a word. `None` (no loss yet)
    passes. ``AdaMixupModel(..., allow_any_loss=True)`` skips this check.
    """
    if loss is None:
        return
    if isinstance(loss, dict):
        items = list(loss.values())
    elif isinstance(loss, (list, tuple)):
        items = list(loss)
    else:
        items = [loss]
    for item in items:
        if item is not None and not is_classification_loss(item):
            raise ValueError(
                f"E26: AdaMixupModel mixes classification examples, but the loss "
                f"{_loss_name(item)!r} is not a classification loss (cross-entropy, "
                "focal, hinge or KL divergence): a one-output regression model "
                "would be mixed as a binary classifier. Pass "
                "`allow_any_loss=True` to AdaMixupModel if the loss is a custom "
                "classification loss, or if you want numeric targets mixed as numbers."
            )


# Keras' cross-entropies whose string or function form reads probabilities
_PROBABILITY_NAMES = frozenset({"sparse_categorical_crossentropy", "categorical_crossentropy",
                                "binary_crossentropy"})


def reads_logits(loss):
    """Whether a cross-entropy `loss` reads logits (`True`), probabilities (`False`),
    or cannot be told (`None`: other losses, several losses).

    A `keras.losses.Loss` says it with ``from_logits``; the string and
    function forms of Keras' cross-entropies read probabilities.

    Args:
        loss: what `compile` got (or the loss it made of it).

    Example:

    ```python
    losses.reads_logits("sparse_categorical_crossentropy")  # False
    ```
    """
    if isinstance(loss, (dict, list, tuple)) or loss is None:
        return None
    flag = getattr(loss, "from_logits", None)
    if flag is None and isinstance(loss, keras.losses.Loss):
        flag = (getattr(loss, "_fn_kwargs", None) or {}).get("from_logits")
    if isinstance(flag, bool):
        return flag
    if isinstance(loss, str) or callable(loss):
        return False if _loss_name(loss) in _PROBABILITY_NAMES else None
    return None
