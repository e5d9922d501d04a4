"""`adamixup`: the mixing op as a `tf.data` transformation.

Layer-independent: ``dataset.batch(64).apply(keras_adamixup.adamixup(...))``
mixes each batch with the ops of `keras_adamixup.mixing`. The strength can be
a live variable (for example ``model.strength`` of an `AdaMixupModel` built
with ``mix_in="none"``, whose train step writes the schedule's value to it
every step), read when each batch is mixed.

Timing: tf.data reads ahead (an explicit `prefetch`, and the prefetch that
tf.data injects by default), so a batch is mixed with the strength of up to
the read-ahead depth of steps earlier. With a schedule that moves by small
steps this lag is negligible; a change between epochs always applies to the
whole next epoch.
"""

import keras
import tensorflow as tf

from keras_adamixup import _checks
from keras_adamixup import mixing


def _strength_source(strength, coefficient):
    """A number (checked now) or something read on every batch."""
    if _is_mixing_model(strength):
        if strength.mix_in != "none":
            raise ValueError(
                "E27: This AdaMixupModel mixes in its own train step "
                f"(mix_in='{strength.mix_in}'): feeding it from adamixup(...) would "
                "mix every batch twice. Build the model with mix_in='none' when the "
                "tf.data pipeline mixes, or drop adamixup(...) from the pipeline."
            )
        model_coefficient = strength.mixing_config.coefficient
        if model_coefficient != coefficient:
            raise ValueError(
                f"The model mixes with coefficient='{model_coefficient}' but "
                f"the pipeline with coefficient='{coefficient}': they must agree."
            )
        return strength.strength
    if isinstance(strength, (keras.Variable, tf.Variable)):
        return strength
    if isinstance(strength, tf.Tensor):
        raise TypeError(
            "`strength` must be a number, a keras.Variable / tf.Variable (read "
            "on every batch) or an AdaMixupModel; a tensor would be frozen into "
            "the pipeline."
        )
    return mixing.validate_strength(strength, coefficient)


def _is_mixing_model(strength):
    return isinstance(strength, keras.Model) and hasattr(strength, "mixing_config")


def _pipeline_config(strength, config, changes):
    """The `MixingConfig` of the pipeline: the model's when `strength` is one."""
    if config is None and _is_mixing_model(strength):
        config = strength.mixing_config.for_op(strength.feature_mode())
    return mixing.settings(config, **changes).for_op()


def adamixup(strength, *, config=None, seed=None, **changes):
    """Returns a `tf.data` transformation that mixes batched `(x, y[, w])`.

    The dataset must be batched (elements `(x, y)` or `(x, y, sample_weight)`
    with a batch dimension first; `x` may be a nested structure). The
    transformation runs sequentially (no parallel calls) so a seed gives
    the same stream of batches every time the pipeline is built; mixing is
    cheap next to training, and `prefetch` after it hides its cost.

    Args:
        strength: a number, a `keras.Variable` / `tf.Variable` read on every
            batch, or an `AdaMixupModel` built with ``mix_in="none"`` (its
            ``strength`` variable and, unless `config` is given, its
            `MixingConfig`; a model that mixes in its train step is
            refused: it would mix twice).
        config: a `keras_adamixup.MixingConfig` (label rule, coefficient,
            jitter, feature rule and groups, number of classes: needed for
            class-id labels with ``label_mode="soft"``, which become soft
            one-hot targets, and used to check class ids in range).
        seed: int seed for a `keras.random.SeedGenerator` owned by this
            transformation; `None` draws one.
        **changes: `MixingConfig` fields instead of (or over) `config`
            (``num_classes=``, ``label_mode=``, ``coefficient=``, ...).

    Returns:
        A function `dataset -> dataset` for `tf.data.Dataset.apply`.

    Raises:
        ValueError: (when applied) unbatched data, elements that are not
            `(x, y)` or `(x, y, sample_weight)`, labels of the wrong shape,
            a bad strength, mode or jitter.

    Example:

    ```python
    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(1000).batch(64)
    ds = ds.apply(keras_adamixup.adamixup(0.3, num_classes=10, seed=1))
    ds = ds.prefetch(tf.data.AUTOTUNE)
    ```
    """
    _checks.seed(seed)
    config = _pipeline_config(strength, config, changes)
    source = _strength_source(strength, config.coefficient)
    generator = keras.random.SeedGenerator(seed, name="adamixup_pipeline_seed")

    def mix_element(*element):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(element)
        mixed = mixing.mix_batch(x, y, sample_weight, strength=source, config=config,
                                 seed=generator)
        return mixed if sample_weight is not None else mixed[:2]

    def transform(dataset):
        _check_dataset(dataset)
        return dataset.map(mix_element)

    return transform


def _check_dataset(dataset):
    """Refuses what the op cannot mix: not a dataset, odd elements, unbatched data."""
    if not isinstance(dataset, tf.data.Dataset):
        raise TypeError(
            f"adamixup(...) applies to a tf.data.Dataset, got {type(dataset).__name__}."
        )
    spec = dataset.element_spec
    if not isinstance(spec, tuple) or len(spec) not in (2, 3):
        raise ValueError(
            "adamixup needs dataset elements `(x, y)` or `(x, y, "
            f"sample_weight)`, got element_spec {spec}."
        )
    odd = [type(leaf).__name__ for leaf in tf.nest.flatten(spec)
           if isinstance(leaf, (tf.RaggedTensorSpec, tf.SparseTensorSpec))]
    if odd:
        raise ValueError(
            f"E40: adamixup mixes dense batches, but the dataset yields {sorted(set(odd))}: "
            "make them dense first, e.g. `dataset.map(lambda x, y: (x.to_tensor(), y))` "
            "for ragged (padded to the longest row) or `tf.sparse.to_dense(x)` for "
            "sparse tensors, or `dataset.padded_batch(...)` instead of `.batch`.")
    if spec[1].shape.rank == 0:
        raise ValueError(
            "E08: adamixup needs a batched dataset: labels `y` are scalars. "
            "Batch first: `dataset.batch(batch_size).apply(adamixup(...))`."
        )
