"""`MixingConfig`: how a batch is mixed, written and checked once.

One frozen, serializable value holds the mixing settings that the model's
train step (`AdaMixupModel`), the op (`keras_adamixup.mixing.mix_batch`) and
the `tf.data` transformation (`keras_adamixup.adamixup`) share: the label
rule, the coefficient source, the jitter, the feature rule and its groups,
the number of classes. Its checks run when it is made, nowhere else; the
strength is not part of it (a schedule sets that, step by step).

Example:

```python
config = keras_adamixup.MixingConfig(label_mode="soft", num_classes=10)
model = keras_adamixup.AdaMixupModel(base, mixing=config, mix_in="none")
ds = ds.batch(64).apply(keras_adamixup.adamixup(model))   # the model's config
x_mixed, y_mixed, _ = keras_adamixup.mix_batch(x, y, strength=0.3, config=config)
```
"""

import dataclasses

import keras

from keras_adamixup import _checks

COEFFICIENTS = ("share", "beta")
LABEL_MODES = ("soft", "dominant")
FEATURES = ("interpolate", "swap")


@keras.saving.register_keras_serializable(package="keras_adamixup")
@dataclasses.dataclass(frozen=True)
class MixingConfig:
    """The mixing settings (see `keras_adamixup.mixing` for what each rule does).

    Args:
        label_mode: ``"dominant"`` (the label of the sample with the larger
            share, in the labels' own format) or ``"soft"`` (λ-weighted).
        coefficient: ``"share"`` (strength = partner share in [0, 0.5]) or
            ``"beta"`` (strength = Beta α in [0, 100]).
        jitter: relative per-example jitter of the share, in [0, 1]
            (``"share"`` only).
        features: ``"interpolate"`` (blend inputs), ``"swap"`` (each
            feature from the partner with probability 1 − λ) or ``"auto"``
            (the model decides from its training data; the ops need one of
            the other two).
        feature_groups: with ``"swap"`` (or ``"auto"``), lists of column
            indices swapped as a whole (a one-hot category); a single rank-2
            input.
        num_classes: the number of classes, or `None` (the model reads its
            output; the ops need it for class ids in soft mode).

    Example:

    ```python
    config = keras_adamixup.MixingConfig(label_mode="soft", coefficient="beta")
    config.replace(jitter=0.0)   # a changed copy (checked again)
    ```
    """

    label_mode: str = "dominant"
    coefficient: str = "share"
    jitter: float = 0.0
    features: str = "interpolate"
    feature_groups: tuple = None
    num_classes: int = None

    def __post_init__(self):
        _checks.choice("label_mode", self.label_mode, LABEL_MODES, code="E10")
        _checks.choice("coefficient", self.coefficient, COEFFICIENTS, code="E10")
        object.__setattr__(self, "jitter", _checks.jitter(self.jitter, self.coefficient))
        _checks.choice("features", self.features, FEATURES + ("auto",))
        _checks.integer("num_classes", self.num_classes, low=1, allow_none=True)
        groups = self.feature_groups
        if groups is not None:
            check_feature_groups(groups)
            if self.features == "interpolate":
                raise ValueError("`feature_groups` are swapped together: they need "
                                 "features='swap' (or 'auto').")
            object.__setattr__(self, "feature_groups", tuple(tuple(g) for g in groups))

    def replace(self, **changes):
        """A copy with `changes` (checked as a new config).

        Args:
            **changes: fields to change.
        """
        return dataclasses.replace(self, **changes)

    def for_op(self, features=None):
        """This config with a concrete feature rule (``"auto"`` resolved to `features`)."""
        if self.features != "auto":
            return self
        if features is None:
            raise ValueError("features='auto' is decided by AdaMixupModel from its training "
                             "data; the mixing ops need features='interpolate' or 'swap'.")
        return self.replace(features=features)

    def get_config(self):
        config = dataclasses.asdict(self)
        if self.feature_groups is not None:
            config["feature_groups"] = [list(g) for g in self.feature_groups]
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def check_feature_groups(feature_groups, width=None):
    """`feature_groups` as a column → group-id vector (`None` stays `None`).

    Args:
        feature_groups: a list of lists of column indices (each a group that
            is swapped as a whole, e.g. the columns of one one-hot category);
            columns in no group are groups of their own.
        width: the number of columns, when known (checked).

    Returns:
        A tuple of group ids, one per column up to the largest index given
        (or `width`), or `None`.
    """
    if feature_groups is None:
        return None
    if not isinstance(feature_groups, (list, tuple)) or not all(
            isinstance(g, (list, tuple)) and g for g in feature_groups):
        raise TypeError("`feature_groups` must be a list of non-empty lists of column "
                        f"indices, got {feature_groups!r}.")
    columns = [c for g in feature_groups for c in g]
    for c in columns:
        _checks.integer("feature_groups index", c, low=0)
    if len(set(columns)) != len(columns):
        raise ValueError("`feature_groups` must be disjoint: a column is in two groups.")
    size = max(columns) + 1 if width is None else width
    if width is not None and max(columns) >= width:
        raise ValueError(f"`feature_groups` names column {max(columns)} but the inputs have "
                         f"{width} columns.")
    group_of = list(range(len(feature_groups), len(feature_groups) + size))
    for gid, group in enumerate(feature_groups):
        for c in group:
            group_of[c] = gid
    # renumber 0..G-1 in column order of first appearance
    ids = {}
    return tuple(ids.setdefault(g, len(ids)) for g in group_of)
