"""The defences the benchmarks compare with that the package does not ship.

Importing this module registers them in the package's recipe table
(`keras_adamixup.recipes.register`), beside its own recipes:

| name | what it trains |
|---|---|
| ``label_smoothing`` | the base model, plain `fit`, cross-entropy with label smoothing (``smoothing``) |
| ``dp_sgd`` | the base model under DP-SGD (`benchmarks.dp_sgd`: clipping to norm 1, ``noise_multiplier``, DP-Adam 3e-3) |
| ``memguard`` | the base model, then MemGuard's attack model and guard (`benchmarks.memguard`) |
| ``relaxloss`` | the base model trained with RelaxLoss (`benchmarks.relaxloss`: target training loss ``alpha``) |
| ``self_adaptive`` | the base model trained on self-adaptive targets (`benchmarks.self_adaptive`: from epoch ``start``, ``momentum``, mixup ``alpha``) |

Each is the package's plain-`fit` recipe (`keras_adamixup.recipes.undefended`)
with another model, so every benchmark trains it (and its LiRA shadows) the
way it trains the package's recipes:

```python
from benchmarks import baselines  # noqa: F401  (registers them)
recipe = keras_adamixup.recipes.recipe("dp_sgd", setting, noise_multiplier=1.0)
```
"""

import keras

from keras_adamixup import losses, recipes

from benchmarks import dp_sgd as dp_sgd_model
from benchmarks import memguard as memguard_model
from benchmarks import relaxloss as relaxloss_model
from benchmarks import self_adaptive as self_adaptive_model

# DP-SGD's clipping norm and learning rate, and the δ at which its ε is reported
DP_CLIP, DP_LEARNING_RATE, DP_DELTA = 1.0, 3e-3, 1e-5
BASELINES = ("label_smoothing", "dp_sgd", "memguard", "relaxloss", "self_adaptive")


def compiled(model, loss=None, learning_rate=1e-3, ema_momentum=None):
    """Compiles `model` with Adam, sparse cross-entropy from logits (or `loss`), accuracy.

    Args:
        model: a Keras model.
        loss: the loss, or `None` for sparse categorical cross-entropy from logits.
        learning_rate: Adam's learning rate.
        ema_momentum: `None`, or Adam keeps a moving average of the weights with
            this momentum (``use_ema=True``), which `fit` swaps in when it ends.

    Example:

    ```python
    model = baselines.compiled(data.mlp(64, 10, 256))
    ```
    """
    loss = loss or keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    average = {} if ema_momentum is None else {"use_ema": True, "ema_momentum": ema_momentum}
    model.compile(keras.optimizers.Adam(learning_rate, **average), loss, metrics=["accuracy"])
    return model


def label_smoothing(setting, *, smoothing=0.1, name="label_smoothing"):
    """The base model trained on labels smoothed by `smoothing`.

    Args:
        setting: the comparison's `keras_adamixup.recipes.Setting`.
        smoothing: the share of each label spread over the other classes.
        name: the recipe's name.

    Example:

    ```python
    smoothed = keras_adamixup.recipes.recipe("label_smoothing", setting, smoothing=0.1)
    ```
    """
    loss = losses.MixupCrossentropy(from_logits=True, label_smoothing=smoothing)
    return recipes.undefended(setting, name=name,
                              factory=lambda: compiled(setting.base(), loss))


def dp_sgd(setting, *, noise_multiplier, name="dp_sgd"):
    """The base model trained with DP-SGD (per-example clipping to `DP_CLIP`, DP-Adam).

    Batch normalization in the base model is replaced by group normalization
    (`benchmarks.dp_sgd.group_normed`): per-example gradients need layers that
    see one example at a time.

    Args:
        setting: the comparison's `keras_adamixup.recipes.Setting`.
        noise_multiplier: the Gaussian noise's standard deviation over the clipping norm.
        name: the recipe's name.

    Example:

    ```python
    private = keras_adamixup.recipes.recipe("dp_sgd", setting, noise_multiplier=1.0)
    ```
    """
    return recipes.undefended(setting, name=name, factory=lambda: compiled(
        dp_sgd_model.DPSGDModel(dp_sgd_model.group_normed(setting.base()), l2_norm_clip=DP_CLIP,
                                noise_multiplier=noise_multiplier, seed=setting.seed),
        learning_rate=DP_LEARNING_RATE))


def memguard(setting, *, name="memguard"):
    """The base model, then the defender's attack model on it, then MemGuard's guard.

    Args:
        setting: the comparison's `keras_adamixup.recipes.Setting` (its
            hold-out trains the defender's attack model).
        name: the recipe's name.

    Example:

    ```python
    guarded = keras_adamixup.recipes.recipe("memguard", setting)
    ```
    """
    return recipes.undefended(setting, name=name, factory=lambda: memguard_model.MemGuardModel(
        setting.plain(), holdout=setting.holdout, seed=setting.seed))


def relaxloss(setting, *, alpha, name="relaxloss"):
    """The base model trained with RelaxLoss, its mean training loss aimed at `alpha`.

    Args:
        setting: the comparison's `keras_adamixup.recipes.Setting`.
        alpha: the target mean training loss (nats).
        name: the recipe's name.

    Example:

    ```python
    relaxed = keras_adamixup.recipes.recipe("relaxloss", setting, alpha=1.0)
    ```
    """
    return recipes.undefended(setting, name=name, factory=lambda: compiled(
        relaxloss_model.RelaxLossModel(setting.base(), alpha=alpha)))


def self_adaptive(setting, *, start, momentum, alpha=0.0, flood=0.0, name="self_adaptive"):
    """The base model trained on self-adaptive targets (`benchmarks.self_adaptive`).

    Args:
        setting: the comparison's `keras_adamixup.recipes.Setting`.
        start: the epoch from which each row's target moves towards the model's prediction.
        momentum: how much of its target a row keeps at each visit.
        alpha: mixup's Beta coefficient (0: no mixing).
        flood: the mean training loss held from below (0: none).
        name: the recipe's name.

    Example:

    ```python
    sat = keras_adamixup.recipes.recipe("self_adaptive", setting, start=40, momentum=0.9)
    ```
    """
    return recipes.undefended(setting, name=name, factory=lambda: compiled(
        self_adaptive_model.SelfAdaptiveModel(setting.base(), start=start, momentum=momentum,
                                              alpha=alpha, seed=setting.seed, flood=flood)))


def dp_epsilon(members, batch_size, epochs, noise_multiplier):
    """DP-SGD's ε at `DP_DELTA` for a run (RDP accountant, `benchmarks.dp_sgd.epsilon`).

    Args:
        members: the training rows.
        batch_size: the batch size.
        epochs: the epochs trained.
        noise_multiplier: the model's noise multiplier.

    Example:

    ```python
    eps = baselines.dp_epsilon(4000, 64, 40, 1.0)
    ```
    """
    return dp_sgd_model.epsilon(members, batch_size, epochs, noise_multiplier, DP_DELTA)


for _name in BASELINES:  # once per import; registering again replaces the builder
    recipes.register(_name, globals()[_name])
