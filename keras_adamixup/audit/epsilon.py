"""Empirical ε lower bounds: what privacy a trained model *shows* an attacker.

A differentially private training run bounds every attacker from above; an
audit bounds the privacy from below: "this model is not (ε, δ)-DP for any ε
below this value, with 95 % confidence". Two bounds, both from an attack's
membership scores:

- `one_run_epsilon`, from canaries (Steinke, Nasr, Jagielski 2023, arXiv
  2305.08846, "Privacy auditing with one (1) training run"). Each of ``m``
  canaries was included in training with probability ½, independently. The
  auditor guesses "in" for the ``k+`` highest-scoring canaries and "out" for
  the ``k−`` lowest, abstaining on the rest; under (ε, δ)-DP the number of
  correct guesses among the ``r = k+ + k−`` made is at most a
  Binomial(r, e^ε / (1 + e^ε)) up to a δ term (their Theorem for δ > 0:
  ``P[correct ≥ v] ≤ P[Bin ≥ v] + 2mδ · max_i P[v − i ≤ Bin < v] / i``).
  The bound is the largest ε that this test rejects at level β. Several
  ``(k+, k−)`` are tried and β is divided among them (Bonferroni), so the
  best of them is still a 1 − β bound.
- `roc_epsilon`, from any attack's ROC (the classic hypothesis-testing
  bound, Jagielski et al. 2020; TF Privacy's
  `privacy_tests.epsilon_lower_bound` with Clopper–Pearson intervals):
  (ε, δ)-DP implies ``TPR ≤ e^ε FPR + δ`` and ``TNR ≤ e^ε FNR + δ`` at every
  threshold, so ``ε ≥ log((TPR_low − δ) / FPR_high)`` with exact intervals
  at confidence 1 − α/2 each. The maximum over all thresholds is what TF
  Privacy reports; it is optimistic for the attacker when the threshold is
  chosen on the same scores (`split=True` chooses it on one half and
  measures on the other).

Both are *lower* bounds of the privacy an attack proves lost. They say
nothing about attacks not tried, and a bound of 0 means "not measurable
with these examples", not "private". A canary that is a group of rows (the
``duplicate`` kind: two rows in or out together) is audited as one unit: a
per-record ε is at least half of a unit's.

Example:

```python
eps = audit.epsilon.one_run_epsilon(scores, included, delta=1e-5)
eps["epsilon"], eps["guesses"], eps["correct"]
```
"""

import math

import numpy as np

from keras_adamixup import _checks

__all__ = [
    "one_run_epsilon",
    "roc_epsilon",
]


CONFIDENCE = 0.95


def _binomial_tail(r, q):
    """``P[Bin(r, q) ≥ v]`` for v = 0 … r + 1 (float64 array)."""
    from scipy import stats

    v = np.arange(r + 2)
    return stats.binom.sf(v - 1, r, q)


def one_run_p_value(m, r, v, epsilon, delta=0.0):
    """p-value of ``v`` correct guesses out of ``r`` under (ε, δ)-DP, ``m`` canaries.

    Args:
        m: canaries, each included with probability ½ independently.
        r: guesses made (abstentions excluded), ``0 ≤ r ≤ m``.
        v: correct guesses, ``0 ≤ v ≤ r``.
        epsilon: ε of the null hypothesis' guarantee.
        delta: δ of the null hypothesis' guarantee.

    Returns:
        An upper bound of ``P[correct ≥ v]`` for any (ε, δ)-DP training run,
        clipped to 1.
    """
    m, r, v = int(m), int(r), int(v)
    if not 0 <= v <= r <= m:
        raise ValueError(f"Need 0 ≤ correct ({v}) ≤ guesses ({r}) ≤ canaries ({m}).")
    q = 1.0 / (1.0 + math.exp(-float(epsilon)))
    tail = _binomial_tail(r, q)  # tail[j] = P[Bin ≥ j]
    p = float(tail[v])
    if delta > 0 and v > 0:
        i = np.arange(1, v + 1)
        between = tail[v - i] - tail[v]  # P[v − i ≤ Bin < v]
        p += 2.0 * m * float(delta) * float(np.max(between / i))
    return min(p, 1.0)


def _largest_rejected(p_value, level):
    """Largest ε ≥ 0 with ``p_value(ε) ≤ level`` (p-values grow with ε); 0 if none."""
    if p_value(0.0) > level:
        return 0.0
    high = 1.0
    while p_value(high) <= level:
        high *= 2.0
        if high > 1e3:
            return float("inf")
    low = 0.0
    for _ in range(60):
        middle = 0.5 * (low + high)
        if p_value(middle) <= level:
            low = middle
        else:
            high = middle
    return low


def guess_grid(m):
    """The ``(k+, k−)`` guesses `one_run_epsilon` tries for ``m`` canaries.

    Symmetric guesses ``k+ = k− = k`` and "in" guesses only (``k− = 0``: a
    defence may hide the absent canaries better than the present ones), for
    ``k`` on a doubling grid 1, 2, 4, … up to ``m // 2`` (and ``m // 2``).
    """
    ks = sorted({min(2 ** j, m // 2) for j in range(max(int(math.log2(max(m, 2))), 1))}
                | {m // 2})
    return [(k, k) for k in ks if k >= 1] + [(k, 0) for k in ks if k >= 1]


def one_run_epsilon(scores, included, delta=1e-5, confidence=CONFIDENCE, guesses=None):
    """ε lower bound from canaries' scores and whether each was trained on.

    Args:
        scores: one membership score per canary (higher ⇒ "in").
        included: bool per canary, drawn with probability ½ independently
            *before* training (the audit's `CanarySet.included`).
        delta: δ of the hypothesis tested (≥ 0, < 1).
        confidence: 1 − β, shared (Bonferroni) by the guesses tried.
        guesses: ``[(k+, k−), ...]`` to try; default `guess_grid(m)`.

    Returns:
        ``{"epsilon", "delta", "confidence", "canaries", "guesses",
        "correct", "k_in", "k_out", "tried", "measurable"}``: the best bound,
        the guesses that gave it, and whether any was above 0.

    Example:

    ```python
    result = audit.epsilon.one_run_epsilon(scores, planted.included, delta=1e-5)
    ```
    """
    scores = np.asarray(scores, dtype="float64").ravel()
    included = np.asarray(included, dtype=bool).ravel()
    if scores.shape != included.shape:
        raise ValueError(f"`scores` ({scores.size}) and `included` ({included.size}) differ "
                         "in length.")
    if not np.all(np.isfinite(scores)):
        raise ValueError("`scores` must be finite.")
    _checks.number("delta", delta, 0.0, 1.0, high_open=True)
    _checks.number("confidence", confidence, 0.0, 1.0, low_open=True, high_open=True)
    m = scores.size
    grid = guess_grid(m) if guesses is None else [(int(a), int(b)) for a, b in guesses]
    grid = [(a, b) for a, b in grid if a >= 0 and b >= 0 and 0 < a + b <= m]
    best = {"epsilon": 0.0, "guesses": 0, "correct": 0, "k_in": 0, "k_out": 0}
    if grid:
        level = (1.0 - confidence) / len(grid)
        # stable order: ties keep the canaries' order, so results are reproducible
        order = np.argsort(-scores, kind="stable")
        for k_in, k_out in grid:
            guessed_in = order[:k_in]
            guessed_out = order[m - k_out:] if k_out else order[:0]
            correct = int(included[guessed_in].sum() + (~included[guessed_out]).sum())
            r = k_in + k_out
            eps = _largest_rejected(lambda e: one_run_p_value(m, r, correct, e, delta), level)
            if eps > best["epsilon"]:
                best = {"epsilon": eps, "guesses": r, "correct": correct, "k_in": k_in,
                        "k_out": k_out}
    return {**best, "delta": float(delta), "confidence": float(confidence), "canaries": m,
            "tried": len(grid), "measurable": bool(best["epsilon"] > 0)}


def _ratio_bounds(tp, fp, positives, negatives, delta, alpha):
    """``log((TPR_low − δ) / FPR_high)`` per threshold (−inf where undefined)."""
    from scipy import stats

    tp, fp = np.asarray(tp, dtype="float64"), np.asarray(fp, dtype="float64")
    # one-sided α/2 each: the two-sided (1 − α) Clopper–Pearson limits
    tpr_low = np.where(tp > 0, stats.beta.ppf(alpha / 2, tp, positives - tp + 1), 0.0)
    fpr_high = np.where(fp < negatives, stats.beta.ppf(1 - alpha / 2, fp + 1, negatives - fp),
                        1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (tpr_low - delta) / fpr_high
        return np.where((ratio > 0) & (fpr_high < 1), np.log(ratio), -np.inf)


def _counts(member_scores, nonmember_scores):
    """True and false positives of "score ≥ t ⇒ member" at every distinct threshold."""
    scores = np.concatenate([member_scores, nonmember_scores])
    truth = np.concatenate([np.ones(len(member_scores)), np.zeros(len(nonmember_scores))])
    order = np.argsort(-scores, kind="stable")
    scores, truth = scores[order], truth[order]
    last = np.r_[np.nonzero(np.diff(scores))[0], scores.size - 1]  # end of each tie block
    tp = np.cumsum(truth)[last]
    fp = np.cumsum(1 - truth)[last]
    return tp, fp, scores[last]


def roc_epsilon(member_scores, nonmember_scores, delta=0.0, confidence=CONFIDENCE,
                split=False, seed=0):
    """ε lower bound from an attack's scores on members and non-members.

    Args:
        member_scores: the attack's scores of members (higher ⇒ member).
        nonmember_scores: its scores of non-members.
        delta: δ of the hypothesis tested (≥ 0).
        confidence: 1 − α of each threshold's bound.
        split: ``False``: the maximum over every threshold (TF Privacy's
            `EpsilonLowerBound` with `BoundMethod.CLOPPER_PEARSON`, one-sided
            thresholds; optimistic: the threshold is chosen on the scores it
            is measured on). ``True``: choose the threshold on a random half
            (by `seed`) and bound on the other half (honest, wider).
        seed: the split's seed.

    Returns:
        ``{"epsilon", "delta", "confidence", "threshold", "split",
        "measurable"}``.

    Example:

    ```python
    result = audit.epsilon.roc_epsilon(scores_members, scores_nonmembers, delta=1e-5)
    ```
    """
    m = np.asarray(member_scores, dtype="float64").ravel()
    n = np.asarray(nonmember_scores, dtype="float64").ravel()
    if m.size == 0 or n.size == 0:
        raise ValueError("Need at least one member and one non-member score.")
    _checks.number("delta", delta, 0.0, 1.0, high_open=True)
    _checks.number("confidence", confidence, 0.0, 1.0, low_open=True, high_open=True)
    alpha = 1.0 - confidence

    def bounds(ms, ns):
        tp, fp, thresholds = _counts(ms, ns)
        # members-above (TPR / FPR) and non-members-below (TNR / FNR) readings
        upper = _ratio_bounds(tp, fp, ms.size, ns.size, delta, alpha)
        lower = _ratio_bounds(ns.size - fp, ms.size - tp, ns.size, ms.size, delta, alpha)
        return np.maximum(upper, lower), thresholds

    if split:
        rng = np.random.default_rng(seed)
        pick_m, pick_n = rng.random(m.size) < 0.5, rng.random(n.size) < 0.5
        if min(pick_m.sum(), (~pick_m).sum(), pick_n.sum(), (~pick_n).sum()) == 0:
            raise ValueError("Too few scores to split into a threshold half and a bound half.")
        found, thresholds = bounds(m[pick_m], n[pick_n])
        threshold = float(thresholds[int(np.argmax(found))])
        held_m, held_n = m[~pick_m], n[~pick_n]
        tp, fp = np.sum(held_m >= threshold), np.sum(held_n >= threshold)
        eps = max(float(_ratio_bounds([tp], [fp], held_m.size, held_n.size, delta, alpha)[0]),
                  float(_ratio_bounds([held_n.size - fp], [held_m.size - tp], held_n.size,
                                      held_m.size, delta, alpha)[0]))
    else:
        found, thresholds = bounds(m, n)
        best = int(np.argmax(found))
        eps, threshold = float(found[best]), float(thresholds[best])
    eps = max(eps, 0.0)
    return {"epsilon": eps, "delta": float(delta), "confidence": float(confidence),
            "threshold": threshold, "split": bool(split), "measurable": bool(eps > 0)}
