"""Mixing ops: pure TensorFlow, usable in `tf.data`, in a `train_step` and under XLA.

Everything in this module works on one *batch*. The vocabulary:

- ``lam`` (λ): per-example share an example *keeps* of itself. The mixed
  example is ``λ·x_i + (1 − λ)·x_partner(i)``.
- ``strength``: the scalar a schedule sets. Its meaning depends on the
  coefficient source:

  * ``coefficient="share"`` (the AdaMixup paper's view, the default): strength
    is the partner share ``s ∈ [0, 0.5]``; every example keeps ``λ = 1 − s``
    (optionally jittered per example, see `sample_mix_coefficients`).
  * ``coefficient="beta"`` (standard mixup): strength is ``α ≥ 0`` and
    ``λ ~ Beta(α, α)``; ``α = 0`` means no mixing (``λ = 1``).

- partner: each example is mixed with another example of the same batch. The
  partner of ``i`` is the next element after ``i`` in a random cyclic order of
  the batch, so no example is ever paired with itself when the batch has two or
  more examples (a plain random permutation leaves about one example per batch
  unmixed).

Label rules (`mix_batch`):

- ``label_mode="soft"``: the target is ``λ·y_i + (1 − λ)·y_partner`` on one-hot
  (or already soft) labels; sparse integer labels are one-hot encoded first, so
  ``num_classes`` must be known.
- ``label_mode="dominant"`` (the paper's): the target is the label of the sample
  with the larger share (``λ ≥ 0.5`` → own label; an exact tie keeps the own
  label). Labels keep their format: sparse stay sparse, one-hot stay one-hot.
- Binary / single-output models (``num_classes=1``): labels are mixed as floats
  in ``[0, 1]`` (soft) or picked (dominant).

Sample weights follow the labels: in soft mode ``w = λ·w_i + (1 − λ)·w_partner``
(so the weighted loss is the λ-weighted average of the two examples' weighted
losses for losses linear in the target, such as cross-entropy); in dominant mode
the weight of the dominant sample.

Feature rule (``features``): ``"interpolate"`` (default) blends the inputs,
``λ·x_i + (1 − λ)·x_partner``, right for dense, continuous inputs (pixels,
standardized numbers). Binary, categorical or one-hot features blended that
way leave the data manifold (a feature of 0.6, two half-active categories).
``"swap"`` keeps every value a real one: each feature is taken from the
partner with probability ``1 − λ`` (one uniform draw per example and feature;
with ``feature_groups``, per example and *group* of columns, so a one-hot
block moves as a whole). The expected share of the partner is the same
``1 − λ``, so the label rules above apply unchanged. `detect_features` picks
``"swap"`` for data whose values are all 0 or 1.

Input dtype rule: floating inputs keep their dtype (float16/bfloat16 are mixed
in float32 and cast back); integer and boolean inputs are cast to
``keras.config.floatx()`` and mixed (a model that needs integer ids, such as an
embedding lookup, should not be trained on mixed inputs).

Errors: problems visible from shapes and Python values raise `ValueError` or
`TypeError` when the op is built. Problems only visible in the data (a sparse
label outside ``[0, num_classes)``, a non-integral sparse label, a strength
tensor outside its range or NaN) raise `tf.errors.InvalidArgumentError` when the
batch runs, with a message naming the argument. XLA (``jit_compile=True``)
drops runtime assertions: there, out-of-range labels in soft mode produce NaN
targets (so the loss turns NaN instead of training on garbage), strengths are
clipped into range, and `keras_adamixup.AdaMixupModel` reports bad labels through
its own check after the step (see its docs).
"""

import collections
import math

import keras
import tensorflow as tf

from keras_adamixup import _checks
from keras_adamixup.mixing_config import (COEFFICIENTS, FEATURES, LABEL_MODES, MixingConfig,
                                          check_feature_groups)

__all__ = [
    "COEFFICIENTS",
    "LABEL_MODES",
    "FEATURES",
    "MAX_ALPHA",
    "MixingConfig",
    "MixResult",
    "mix",
    "mix_batch",
    "partner_indices",
    "sample_beta",
    "sample_mix_coefficients",
]


# Largest Beta α accepted. Beta(α, α) with α = 100 already has a standard
# deviation of 0.035 around 0.5; larger values are almost surely a mistake.
MAX_ALPHA = 100.0
# Candidates drawn per gamma sample in the rejection sampler. The acceptance
# probability of Marsaglia-Tsang is above 0.95 for every shape ≥ 1, so the
# chance that all candidates are rejected is below 0.05**16 ≈ 1.5e-21.
_GAMMA_CANDIDATES = 16

MixResult = collections.namedtuple(
    "MixResult",
    ["x", "y", "sample_weight", "y_dominant", "lam", "partner", "labels_valid"],
)
MixResult.__doc__ = """What `mix` returns.

Fields:
    x: mixed inputs, same structure as the inputs.
    y: the training target (soft or dominant, see the module docs).
    sample_weight: mixed sample weights, or `None` when none were given.
    y_dominant: the dominant sample's label in the labels' original format
        (for metrics).
    lam: `(batch,)` float32, the share each example keeps of itself.
    partner: `(batch,)` int32, index of each example's partner.
    labels_valid: bool scalar tensor, False if a sparse label was outside
        `[0, num_classes)` or not an integer (survives XLA, unlike assertions).

Example:

```python
result = keras_adamixup.mixing.mix(x, y, lam=lam, partner=partner, num_classes=10)
x_mixed, y_target = result.x, result.y
```
"""


def strength_range(coefficient):
    """Valid `(low, high)` range of the strength for a coefficient source."""
    _checks.choice("coefficient", coefficient, COEFFICIENTS, code="E10")
    return (0.0, 0.5) if coefficient == "share" else (0.0, MAX_ALPHA)


def validate_strength(strength, coefficient, name="strength"):
    """Checks a Python strength value; returns it as a float.

    Raises:
        TypeError: if the value is not a number.
        ValueError: if the value is NaN, infinite or outside
            `strength_range(coefficient)`.
    """
    low, high = strength_range(coefficient)
    value = _checks.real(name, strength)
    if math.isnan(value) or not low <= value <= high:
        raise ValueError(
            f"E01: `{name}` must be in [{low}, {high}] for coefficient="
            f"'{coefficient}', got {value}."
        )
    return value


def clip_strength(value, coefficient):
    """`(clipped, in_range)` for a float32 strength tensor.

    ``in_range`` is False for values outside `strength_range(coefficient)` and
    for NaN; ``clipped`` maps NaN to 0 (no mixing) and clips into the range,
    so a bad value never produces NaN or out-of-range mixing (XLA drops
    assertions; callers assert or count ``in_range``).
    """
    low, high = strength_range(coefficient)
    in_range = tf.logical_and(value >= low, value <= high)  # False for NaN
    clipped = tf.clip_by_value(
        tf.where(tf.math.is_nan(value), tf.zeros_like(value), value), low, high)
    return clipped, in_range


def _strength_tensor(strength, coefficient):
    """Strength as a float32 scalar tensor, checked (Python) or asserted (tensor)."""
    if isinstance(strength, (int, float)):
        return tf.constant(validate_strength(strength, coefficient), tf.float32)
    low, high = strength_range(coefficient)
    value = tf.cast(tf.convert_to_tensor(_read(strength)), tf.float32)
    if value.shape.rank not in (None, 0):
        raise ValueError(
            f"`strength` must be a scalar, got shape {value.shape}."
        )
    clipped, ok = clip_strength(value, coefficient)
    with tf.control_dependencies(
        [
            tf.debugging.Assert(
                ok,
                [
                    f"E02: `strength` must be in [{low}, {high}] for coefficient="
                    f"'{coefficient}' (and not NaN); got",
                    value,
                ],
            )
        ]
    ):
        # Under XLA the assertion is dropped: the clipped value (NaN → no
        # mixing) never produces NaN inputs.
        return tf.identity(clipped)


class _SeedStream:
    """Hands out the `seed` argument for successive keras.random calls.

    A `SeedGenerator` advances by itself on every draw. An int seed gives
    stateless draws: ``seed, seed + 1, ...`` so that two draws in one call are
    independent, and the same int gives the same batch every call. `None` uses
    Keras' global generator.
    """

    def __init__(self, seed):
        if not isinstance(seed, keras.random.SeedGenerator):
            _checks.seed(seed)
        self._seed = seed
        self._count = 0

    def next(self):
        if isinstance(self._seed, int):
            self._count += 1
            return self._seed + self._count - 1
        return self._seed


def _as_stream(seed):
    return seed if isinstance(seed, _SeedStream) else _SeedStream(seed)


def _read(value):
    """Reads a keras.Variable (or anything with `.value`) as a tensor."""
    if isinstance(value, keras.Variable):
        return value.value
    return value


def _log_gamma(shape, alpha, seed):
    """log of Gamma(alpha, 1) samples, computed in float32 without a gamma op.

    Marsaglia & Tsang (2000) with a fixed number of vectorised candidates
    (XLA-friendly: only normal/uniform draws and element-wise maths). Shapes
    below 1 use the boost ``G(a) = G(a + 1)·U^(1/a)`` in log space, which is what
    keeps tiny α from underflowing to 0 (and Beta draws from collapsing to 0.5).
    """
    boost = alpha < 1.0
    a = tf.where(boost, alpha + 1.0, alpha)
    d = a - 1.0 / 3.0
    c = 1.0 / tf.sqrt(9.0 * d)
    cand_shape = tf.concat([[_GAMMA_CANDIDATES], shape], axis=0)
    z = keras.random.normal(cand_shape, dtype="float32", seed=seed.next())
    u = keras.random.uniform(cand_shape, dtype="float32", seed=seed.next())
    v = (1.0 + c * z) ** 3
    positive = v > 0.0
    log_v = tf.math.log(tf.where(positive, v, tf.ones_like(v)))
    accept = positive & (
        tf.math.log(u) < 0.5 * z * z + d - d * v + d * log_v
    )
    first = tf.argmax(tf.cast(accept, tf.int32), axis=0, output_type=tf.int32)
    chosen = tf.gather(
        tf.transpose(tf.reshape(log_v, [_GAMMA_CANDIDATES, -1])),
        tf.reshape(first, [-1]),
        batch_dims=1,
    )
    chosen = tf.reshape(chosen, shape)
    # If no candidate was accepted (probability < 1e-20) fall back to the mode.
    chosen = tf.where(tf.reduce_any(accept, axis=0), chosen, tf.zeros_like(chosen))
    log_g = tf.math.log(d) + chosen
    u_boost = keras.random.uniform(
        shape, minval=1e-30, maxval=1.0, dtype="float32", seed=seed.next()
    )
    return tf.where(boost, log_g + tf.math.log(u_boost) / alpha, log_g)


def sample_beta(shape, alpha, seed=None):
    """Draws symmetric Beta(α, α) samples as float32, correct for tiny α.

    ``λ = X / (X + Y)`` with ``X, Y ~ Gamma(α)`` is computed as
    ``sigmoid(log X − log Y)``, so tiny α gives draws at 0 or 1 (as it should)
    instead of the 0.5 that float32 underflow gives `keras.random.beta`. No
    gamma op is used, so it runs under XLA on any device.

    Args:
        shape: output shape (list or 1-D int tensor).
        alpha: α > 0, a Python float or a scalar tensor.
        seed: int, `keras.random.SeedGenerator` or `None`.

    Returns:
        A float32 tensor of the given shape with values in [0, 1].

    Example:

    >>> lam = sample_beta([4], 0.2, seed=keras.random.SeedGenerator(1))
    """
    shape = tf.convert_to_tensor(shape, dtype=tf.int32)
    alpha = tf.cast(_read(alpha), tf.float32)
    seed = _as_stream(seed)
    log_x = _log_gamma(shape, alpha, seed)
    log_y = _log_gamma(shape, alpha, seed)
    return tf.math.sigmoid(log_x - log_y)


def sample_mix_coefficients(
    batch_size, strength, coefficient="share", jitter=0.0, seed=None
):
    """Per-example share λ that each example keeps of itself.

    Args:
        batch_size: int or scalar int tensor.
        strength: partner share ``s ∈ [0, 0.5]`` (``coefficient="share"``) or
            Beta ``α ∈ [0, 100]`` (``coefficient="beta"``). Python number,
            tensor or `keras.Variable`.
        coefficient: ``"share"`` or ``"beta"``.
        jitter: only for ``"share"``: relative jitter ``j ∈ [0, 1]``; each
            example gets ``s_i = clip(s·(1 + j·u_i), 0, 0.5)`` with
            ``u_i ~ U(−1, 1)``. ``0`` means every example keeps exactly ``1 − s``.
        seed: int, `keras.random.SeedGenerator` or `None`.

    Returns:
        `(batch_size,)` float32 tensor of λ.

    Example:

    ```python
    lam = keras_adamixup.mixing.sample_mix_coefficients(64, strength=0.3, seed=0)  # all 0.7
    lam = keras_adamixup.mixing.sample_mix_coefficients(64, strength=0.4, coefficient="beta",
                                                        seed=0)                    # Beta(0.4, 0.4)
    ```
    """
    _checks.choice("coefficient", coefficient, COEFFICIENTS, code="E10")
    jitter = _checks.jitter(jitter, coefficient)
    seed = _as_stream(seed)
    s = _strength_tensor(strength, coefficient)
    n = tf.reshape(tf.cast(batch_size, tf.int32), [1])
    if coefficient == "share":
        if jitter > 0.0:
            u = keras.random.uniform(
                n, minval=-1.0, maxval=1.0, dtype="float32", seed=seed.next()
            )
            share = tf.clip_by_value(s * (1.0 + jitter * u), 0.0, 0.5)
        else:
            share = tf.fill(n, s)
        return 1.0 - share
    # Beta: α = 0 means no mixing; guard α away from 0 for the sampler.
    lam = sample_beta(n, tf.maximum(s, 1e-6), seed=seed)
    return tf.where(s > 0.0, lam, tf.ones_like(lam))


def partner_indices(batch_size, seed=None):
    """Index of each example's partner: the next one in a random cyclic order.

    For a batch of two or more examples no example is its own partner. A
    batch of one is its own partner (it passes through unmixed).

    Args:
        batch_size: int or scalar int tensor.
        seed: int, `keras.random.SeedGenerator` or `None`.

    Returns:
        `(batch_size,)` int32 tensor.

    Example:

    ```python
    partner = keras_adamixup.mixing.partner_indices(64, seed=0)   # e.g. [17, 3, ...]
    ```
    """
    n = tf.reshape(tf.cast(batch_size, tf.int32), [1])
    seed = _as_stream(seed).next()
    order = tf.argsort(keras.random.uniform(n, dtype="float32", seed=seed))
    order = tf.cast(order, tf.int32)
    following = tf.roll(order, shift=-1, axis=0)
    position = tf.argsort(order)  # inverse permutation
    return tf.gather(following, position)


def _leading_dim(tensor):
    return tensor.shape[0] if tensor.shape.rank else None


def _batch_size(x, y, sample_weight):
    """Static checks of the batch dimension; returns the dynamic batch size."""
    leaves = tf.nest.flatten(x)
    if not leaves:
        raise ValueError("`x` is empty: there is nothing to mix.")
    for leaf in leaves:
        if leaf.shape.rank == 0:
            raise ValueError(
                "Every input in `x` must have a batch dimension; got a scalar. "
                "Batch the data before mixing (e.g. `dataset.batch(32)`)."
            )
    named = [("x", leaf) for leaf in leaves] + [("y", y)]
    if sample_weight is not None:
        named.append(("sample_weight", sample_weight))
    known = {(name, _leading_dim(t)) for name, t in named if _leading_dim(t) is not None}
    sizes = {size for _, size in known}
    if len(sizes) > 1:
        detail = ", ".join(f"{name}: {size}" for name, size in sorted(known))
        raise ValueError(
            "`x`, `y` and `sample_weight` must share the batch dimension, got "
            f"leading dimensions {detail}. If the data is unbatched, batch it "
            "before mixing (e.g. `dataset.batch(32)`)."
        )
    if sizes == {1}:
        raise ValueError(
            "E06: Cannot mix a batch of size 1 (an example has no partner). Use a "
            "batch size of at least 2."
        )
    return tf.shape(leaves[0])[0]


def label_kind(y, num_classes=None):
    """Classifies labels: returns `(kind, num_classes)`.

    kind is ``"sparse"`` (class ids, shape `(batch,)` or `(batch, 1)`),
    ``"dense"`` (one-hot, soft or multi-hot, shape `(batch, C)`) or ``"binary"``
    (single-output models, ``num_classes=1``).

    Raises:
        ValueError: rank 0 labels (unbatched data), labels of the wrong rank
            or width for `num_classes`, or a non-positive `num_classes`.
    """
    _checks.integer("num_classes", num_classes, low=1, allow_none=True)
    rank = y.shape.rank
    if rank is None:
        raise ValueError("`y` must have a known rank.")
    if rank == 0:
        raise ValueError(
            "E05: `y` must be batched (rank ≥ 1), got a scalar label. Batch the "
            "data before mixing (e.g. `dataset.batch(32)`)."
        )
    last = y.shape[-1] if rank >= 2 else None
    if num_classes == 1:
        if rank > 2 or (rank == 2 and last != 1):
            raise ValueError(
                "E05: With num_classes=1 (single-output model) `y` must have shape "
                f"(batch,) or (batch, 1), got {y.shape}."
            )
        return "binary", 1
    if rank == 1 or (rank == 2 and last == 1):
        return "sparse", num_classes
    if rank == 2 and last is not None:
        if num_classes is not None and last != num_classes:
            raise ValueError(
                f"E05: `y` has {last} columns but num_classes={num_classes}. One-hot "
                "or soft labels must have num_classes columns."
            )
        return "dense", last
    raise ValueError(
        "E05: `y` must be class ids of shape (batch,) or (batch, 1), or one-hot/soft "
        f"labels of shape (batch, num_classes); got shape {y.shape}."
    )


def _check_sparse(y, num_classes):
    """Sparse labels as int32 `(batch,)`, with an in-graph validity flag."""
    y = tf.reshape(y, [-1])
    if y.dtype.is_floating:
        as_int = tf.cast(tf.round(y), tf.int32)
        integral = tf.reduce_all(tf.equal(tf.cast(as_int, y.dtype), y))
    elif y.dtype.is_integer or y.dtype == tf.bool:
        as_int = tf.cast(y, tf.int32)
        integral = tf.constant(True)
    else:
        raise TypeError(f"Sparse labels `y` must be numeric, got dtype {y.dtype}.")
    valid = tf.constant(True) if num_classes is None else tf.reduce_all(
        (as_int >= 0) & (as_int < num_classes)
    )
    return as_int, valid & integral


def detect_features(x):
    """``"swap"`` when every input value is 0 or 1 (binary / one-hot data), else ``"interpolate"``.

    Args:
        x: an array or a nested structure of arrays (NumPy or eager tensors).
    """
    import numpy as np

    for leaf in tf.nest.flatten(x):
        values = np.asarray(leaf)
        if values.dtype == np.bool_:
            continue
        if not np.all((values == 0) | (values == 1)):
            return "interpolate"
    return "swap"


def swap_noise(x, seed=None, feature_groups=None):
    """Uniform draws for ``features="swap"``: one per example and feature (or group).

    Args:
        x: the batch (tensor or nested structure), batch first.
        seed: int, `keras.random.SeedGenerator` or `None`.
        feature_groups: optional groups (see `check_feature_groups`), for a
            single rank-2 input.

    Returns:
        A structure like `x` of float32 uniforms shaped like each leaf.
    """
    seed = _as_stream(seed)
    leaves = tf.nest.flatten(x)
    if feature_groups is not None:
        if len(leaves) != 1 or leaves[0].shape.rank != 2:
            raise ValueError("`feature_groups` needs a single input of shape (batch, "
                             "columns).")
        width = leaves[0].shape[1]
        group_of = check_feature_groups(feature_groups, width)
        n = tf.shape(leaves[0])[0]
        per_group = keras.random.uniform(
            tf.stack([n, max(group_of) + 1]), dtype="float32", seed=seed.next())
        return tf.nest.pack_sequence_as(
            x, [tf.gather(per_group, list(group_of), axis=1)])
    return tf.nest.pack_sequence_as(x, [
        keras.random.uniform(tf.shape(leaf), dtype="float32", seed=seed.next())
        for leaf in leaves])


def _check_numeric(dtype):
    if not (dtype.is_floating or dtype.is_integer or dtype == tf.bool):
        raise TypeError(f"Cannot mix input of dtype {dtype}: `x` must be numeric.")


def _swap_leaf(leaf, lam, partner, noise):
    """Each value from the partner where the noise is at or above λ (probability 1 − λ)."""
    _check_numeric(leaf.dtype)
    take_partner = noise >= _per_example(lam, leaf.shape.rank)
    return tf.where(take_partner, tf.gather(leaf, partner), leaf)


def _mix_leaf(leaf, lam, partner):
    dtype = leaf.dtype
    _check_numeric(dtype)
    if dtype.is_floating:
        work = tf.float32 if dtype in (tf.float16, tf.bfloat16) else dtype
    else:  # integer or boolean
        work = dtype = tf.as_dtype(keras.config.floatx())
    return tf.cast(_lerp(tf.cast(leaf, work), lam, partner), dtype)


def settings(config=None, **changes):
    """The `MixingConfig` of a call: `config` (default: the defaults) with `changes`.

    The ops take either a `MixingConfig` or its fields as keyword arguments
    (or both: the arguments change the config); the config checks them.

    Args:
        config: a `MixingConfig` or `None`.
        **changes: `MixingConfig` fields.
    """
    if config is None:
        return MixingConfig(**changes)
    if not isinstance(config, MixingConfig):
        raise TypeError(f"`config` must be a keras_adamixup.MixingConfig, got {config!r}.")
    return config.replace(**changes) if changes else config


def mix(x, y, sample_weight=None, *, lam, partner, config=None, validate=True, noise=None,
        **changes):
    """Mixes a batch with given coefficients and partners (no randomness).

    This is the exact maths; `mix_batch` draws `lam` and `partner` and calls
    it. See the module docs for the label and sample-weight rules.

    Args:
        x: tensor or nested structure (dict/list/tuple) of tensors, batch first.
        y: labels (see `label_kind`).
        sample_weight: optional `(batch,)` or `(batch, 1)` weights.
        lam: `(batch,)` share each example keeps.
        partner: `(batch,)` int partner indices.
        config: a `MixingConfig` (its ``label_mode``, ``features`` and
            ``num_classes`` apply; ``num_classes`` is needed for sparse
            labels in soft mode).
        validate: add in-graph checks of sparse labels.
        noise: for ``features="swap"``: uniforms shaped like `x` (`swap_noise`).
        **changes: `MixingConfig` fields instead of (or over) `config`
            (``label_mode=``, ``num_classes=``, ``features=``).

    Returns:
        A `MixResult`.

    Example:

    ```python
    lam = tf.constant([0.7, 0.6, 0.9])
    partner = tf.constant([1, 2, 0])
    result = keras_adamixup.mixing.mix(x[:3], y[:3], lam=lam, partner=partner,
                                       label_mode="soft", num_classes=10)
    ```
    """
    config = settings(config, **changes).for_op()
    x, y, sample_weight = _as_tensors(x, y, sample_weight)
    _batch_size(x, y, sample_weight)
    kind, num_classes = label_kind(y, config.num_classes)
    lam = tf.cast(lam, tf.float32)
    partner = tf.cast(partner, tf.int32)
    x_mixed = _mix_inputs(x, lam, partner, config.features, noise)
    target, y_dominant, valid = _mix_labels(y, kind, num_classes, lam, partner,
                                            config.label_mode, validate)
    weight = None
    if sample_weight is not None:
        weight = (_blend(sample_weight, lam, partner) if config.label_mode == "soft"
                  else _pick(sample_weight, lam >= 0.5, partner))
    return MixResult(x_mixed, target, weight, y_dominant, lam, partner, valid)


def _as_tensors(x, y, sample_weight):
    x = tf.nest.map_structure(tf.convert_to_tensor, x)
    y = tf.convert_to_tensor(y)
    if sample_weight is not None:
        sample_weight = tf.convert_to_tensor(sample_weight)
    return x, y, sample_weight


def _mix_inputs(x, lam, partner, features, noise):
    """The inputs blended (``"interpolate"``) or swapped (``"swap"``, with `noise`)."""
    if features == "swap":
        if noise is None:
            raise ValueError("features='swap' needs `noise` (see `swap_noise`).")
        return tf.nest.map_structure(lambda t, u: _swap_leaf(t, lam, partner, u), x, noise)
    return tf.nest.map_structure(lambda t: _mix_leaf(t, lam, partner), x)


def _mix_labels(y, kind, num_classes, lam, partner, label_mode, validate):
    """`(target, dominant label, labels valid)` (see the module's label rules)."""
    checks, valid, ids = [], tf.constant(True), None
    if kind == "sparse":
        if label_mode == "soft" and num_classes is None:
            raise ValueError(
                "E04: label_mode='soft' with sparse (class id) labels needs "
                "`num_classes` to one-hot encode them; pass num_classes or "
                "one-hot labels."
            )
        ids, valid = _check_sparse(y, num_classes)
        if validate:
            checks.append(tf.debugging.Assert(valid, [
                f"E03: Sparse labels `y` must be integers in [0, {num_classes}) "
                "(num_classes); got min/max", tf.reduce_min(y), tf.reduce_max(y)]))
    with tf.control_dependencies(checks):
        y_dominant = _pick(y, lam >= 0.5, partner)
        if label_mode == "dominant":
            target = y_dominant
        elif kind == "sparse":
            onehot = tf.one_hot(ids, num_classes, dtype=tf.float32)
            # XLA drops assertions: poison invalid labels so the loss turns NaN.
            onehot = tf.where(valid, onehot, tf.fill(tf.shape(onehot), math.nan))
            target = _blend(onehot, lam, partner)
        else:
            target = _blend(y, lam, partner)
    return target, y_dominant, valid


def _per_example(vector, rank):
    """A `(batch,)` vector reshaped to broadcast against a rank-`rank` batch."""
    shape = tf.concat([tf.shape(vector), tf.ones([rank - 1], tf.int32)], 0)
    return tf.reshape(vector, shape)


def _lerp(values, lam, partner):
    """λ·values + (1 − λ)·values[partner], in the dtype of `values`."""
    weight = tf.cast(_per_example(lam, values.shape.rank), values.dtype)
    return weight * values + (1.0 - weight) * tf.gather(values, partner)


def _pick(values, own, partner):
    """values[i] where own[i], else values[partner[i]]."""
    return tf.where(_per_example(own, values.shape.rank), values, tf.gather(values, partner))


def _blend(values, lam, partner):
    """`_lerp` for labels and weights, in float32 (or float64)."""
    work = values.dtype if values.dtype in (tf.float64,) else tf.float32
    return _lerp(tf.cast(values, work), lam, partner)


def mix_batch(x, y, sample_weight=None, *, strength, config=None, seed=None, **changes):
    """Mixes one batch: draws partners and coefficients, then calls `mix`.

    Args:
        x: tensor or nested structure of tensors, batch first.
        y: labels: class ids `(batch,)`/`(batch, 1)` or one-hot/soft
            `(batch, num_classes)`; for single-output models `(batch,)` or
            `(batch, 1)` floats in [0, 1] with ``num_classes=1``.
        sample_weight: optional per-example weights.
        strength: partner share (``"share"``) or Beta α (``"beta"``); a Python
            number, a scalar tensor or a `keras.Variable` (read each call).
        config: a `MixingConfig` (label rule, coefficient, jitter, feature
            rule and groups, number of classes); default: its defaults.
        seed: int, `keras.random.SeedGenerator` or `None`. Pass a
            `SeedGenerator` to get a new draw on every call; an int gives the
            same draw for every call.
        **changes: `MixingConfig` fields instead of (or over) `config`
            (``num_classes=``, ``label_mode=``, ``coefficient=``, ``jitter=``,
            ``features=``, ``feature_groups=``).

    Returns:
        `(x, y, sample_weight)` mixed; `sample_weight` is `None` if not given.

    Example:

    >>> x = tf.random.uniform((8, 4)); y = tf.range(8) % 3
    >>> xm, ym, _ = mix_batch(x, y, strength=0.3, num_classes=3,
    ...                       label_mode="soft", seed=1)
    """
    config = settings(config, **changes).for_op()
    seed = _as_stream(seed)
    x, y, sample_weight = _as_tensors(x, y, sample_weight)
    n = _batch_size(x, y, sample_weight)
    lam = sample_mix_coefficients(n, strength, config.coefficient, config.jitter, seed)
    partner = partner_indices(n, seed)
    noise = (swap_noise(x, seed, config.feature_groups) if config.features == "swap"
             else None)
    result = mix(x, y, sample_weight, lam=lam, partner=partner, config=config, noise=noise)
    return result.x, result.y, result.sample_weight
