"""A prototype measured before it is built: `LossTarget` set from *mixed* hold-out pairs.

`LossTarget("holdout")` is refused with soft labels (E59): the loss of a mixed
example above its label's entropy is not on the scale of a hold-out
cross-entropy, and no one factor carries (docs/BENCHMARKS.md). Like for like,
the hold-out side can be mixed too: at each epoch's end, the validation rows
mixed in fixed pairs with fixed Beta(α, α) coefficients (one seeded draw),
their mean loss above their mixed labels' entropy (the KL divergence)
measured in inference mode, and the model's target set to ``factor`` × that.

Benchmark name word ``relaxmixF`` (`benchmarks.names`): a model of static
mixup whose target is set this way. Not part of the package: it is here to be
audited, and built into `LossTarget` only if it earns it.

Example:

```python
kwargs = MixedTargetFit(fit_kwargs, validation, alpha=0.4, factor=0.8)(x_train, y_train)
```
"""

import keras
import numpy as np

from benchmarks import data


class MixedHoldoutTarget(keras.callbacks.Callback):
    """Sets ``model.loss_target`` to ``factor`` × the mixed hold-out pairs' KL at each
    epoch's end (0 before the first: ordinary steps).

    Args:
        validation: ``(x, y)`` held-out rows (class ids).
        classes: the number of classes.
        alpha: the mixing's Beta parameter.
        factor: the target's multiple of the mixed hold-out KL, > 0.
        seed: the seed of the pairs and coefficients.
    """

    def __init__(self, validation, classes, alpha, factor, seed=0):
        super().__init__()
        x, y = np.asarray(validation[0], dtype="float32"), np.asarray(validation[1])
        rng = np.random.default_rng(seed)
        partner = rng.permutation(len(y))
        lam = rng.beta(alpha, alpha, len(y)).astype("float32")
        self.x = lam.reshape(-1, *[1] * (x.ndim - 1)) * x + (
            1 - lam.reshape(-1, *[1] * (x.ndim - 1))) * x[partner]
        onehot = np.eye(classes, dtype="float32")
        self.y = lam[:, None] * onehot[y] + (1 - lam[:, None]) * onehot[y[partner]]
        self.entropy = -(self.y * np.log(np.clip(self.y, 1e-12, 1.0))).sum(1)
        self.factor = float(factor)
        self.history = []

    def on_train_begin(self, logs=None):
        self.model.loss_target.assign(0.0)

    def on_epoch_end(self, epoch, logs=None):
        z = np.asarray(self.model.predict(self.x, verbose=0, batch_size=512), dtype="float64")
        z = z - z.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        kl = float(np.mean(-(self.y * log_p).sum(axis=1) - self.entropy))
        self.history.append(kl)
        self.model.loss_target.assign(self.factor * kl)


class MixedTargetFit:
    """A recipe's ``fit_kwargs`` with a fresh `MixedHoldoutTarget` last among the
    callbacks (after the batch-norm refresh); picklable, named in LiRA's shadow cache.

    Args:
        fit_kwargs: the recipe's (a dict or ``fit_kwargs(x, y)``).
        validation: the benchmark's validation rows.
        alpha: the mixing's Beta parameter.
        factor: the target's multiple of the mixed hold-out KL.
    """

    def __init__(self, fit_kwargs, validation, alpha, factor):
        self.fit_kwargs, self.validation = fit_kwargs, validation
        self.alpha, self.factor = float(alpha), float(factor)

    def __call__(self, x_train, y_train):
        kwargs = data.fit_kwargs_of(self.fit_kwargs, x_train, y_train)
        classes = int(max(np.max(y_train), np.max(self.validation[1]))) + 1
        target = MixedHoldoutTarget(self.validation, classes, self.alpha, self.factor)
        kwargs["callbacks"] = list(kwargs.get("callbacks") or []) + [target]
        return kwargs

    def fingerprint(self):
        return {"mixed_holdout_target": [self.alpha, self.factor],
                "inner": data.described(self.fit_kwargs)}
