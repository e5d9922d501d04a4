"""RMIA (Zarifzadeh, Liu, Shokri, ICML 2024), scored from LiRA's shadow models.

RMIA compares the target model's probability of an example's true label with
the reference (shadow) models' probability of it, and calibrates that ratio
against a population of other examples:

- ``Pr(x | θ)``: the target model's probability of ``x``'s label;
- ``Pr(x)``: the average over reference models. *Online*: over all of them
  (half were trained on ``x``). *Offline*: only the models that did not
  train on ``x``, corrected for the missing "in" models with the linear
  approximation of the paper, ``Pr(x) ≈ ½ ((1 + a) · Pr_out(x) + (1 − a))``;
- the likelihood ratio ``LR(x) = Pr(x | θ) / Pr(x)``, and the score
  ``Pr_z[ LR(x) / LR(z) > γ ]``: the fraction of population examples ``z``
  that ``x`` dominates by more than a factor γ.

Parameters (documented defaults): ``a = 0.3`` (``offline_a``; ML Privacy
Meter's default, the paper fits it per data set on reference models),
``γ = 1`` (``gamma``). The population ``z`` is every audited example,
members and non-members alike (the candidates the attacker holds; no
membership labels are used). With one population for every ``x`` the score
is a monotone function of ``LR(x)``, so the ROC is that of the likelihood
ratio up to ties; γ only matters for a decision at one threshold.

Shadows come from `keras_adamixup.audit.lira` (same cache, same models):
RMIA costs no extra training.
"""

import numpy as np

from keras_adamixup import _checks
from keras_adamixup import predictions as preds_lib
from keras_adamixup.audit import registry


def true_label_probabilities(outputs, labels, kind="auto"):
    """Each row's probability of its label, from logits or probabilities
    (averaged over the views of `(views, n, classes)` outputs)."""
    outputs = np.asarray(outputs)
    if outputs.ndim == 3:
        return np.mean([true_label_probabilities(v, labels, kind) for v in outputs], axis=0)
    outputs = preds_lib.as_outputs(outputs, "outputs")
    probs = preds_lib.to_probabilities(outputs, preds_lib.resolve_kind(outputs, kind))
    return probs[np.arange(len(labels)), np.asarray(labels)]


def dominance(ratios, population, gamma):
    """For each ratio ``r``: the fraction of `population` values ``p`` with ``r / p > γ``."""
    population = np.sort(np.asarray(population, dtype="float64"))
    # r / p > γ  ⇔  p < r / γ  (all values > 0)
    return np.searchsorted(population, np.asarray(ratios) / gamma, side="left") / len(population)


def rmia_scores(target_outputs, shadow_outs, labels, masks, *, offline_a=0.3, gamma=1.0,
                outputs="auto"):
    """Membership scores (higher ⇒ member): ``{"rmia_online", "rmia_offline"}``.

    Args:
        target_outputs: the audited model's outputs on the population `(n, classes)`.
        shadow_outs: each shadow's outputs on the population.
        labels: the population's class ids `(n,)`.
        masks: `(shadows, n)` bool, example ``j`` in shadow ``i``'s training set.
        offline_a: ``a`` of the offline approximation, in [0, 1].
        gamma: γ > 0.
        outputs: ``"logits"``, ``"probabilities"`` or ``"auto"``.

    Example:

    ```python
    masks = lira.shadow_masks(4, len(x), seed=0)
    shadow_outs = lira.shadow_outputs(make_model, x, y, masks, fit_kwargs=fit_kwargs)
    scores = rmia_scores(model.predict(x), shadow_outs, y, masks)
    ```
    """
    offline_a = _checks.number("offline_a", offline_a, 0.0, 1.0)
    gamma = _checks.number("gamma", gamma, 0.0, low_open=True)
    labels = np.asarray(labels)
    masks = np.asarray(masks, dtype=bool)
    tiny = 1e-30
    target = np.maximum(true_label_probabilities(target_outputs, labels, outputs), tiny)
    refs = np.stack([true_label_probabilities(o, labels, outputs) for o in shadow_outs])
    online = np.maximum(refs.mean(axis=0), tiny)
    out_count = (~masks).sum(axis=0)
    if out_count.min() == 0:
        raise ValueError("RMIA offline needs at least one shadow that did not train on "
                         "each example.")
    pr_out = np.where(~masks, refs, 0.0).sum(axis=0) / out_count
    offline = np.maximum(0.5 * ((1.0 + offline_a) * pr_out + (1.0 - offline_a)), tiny)
    scores = {}
    for name, pr_x in (("rmia_online", online), ("rmia_offline", offline)):
        ratio = target / pr_x
        scores[name] = dominance(ratio, ratio, gamma)
    return scores


@registry.register_shadow_attack("rmia")
def _rmia_attack(target_outputs, shadow_outs, labels, masks, recipe, outputs):
    return rmia_scores(target_outputs, shadow_outs, labels, masks,
                       offline_a=recipe.rmia_offline_a, gamma=recipe.rmia_gamma, outputs=outputs)
