"""Label-only membership attacks: the attacker sees predicted labels only.

- **gap** (Yeom et al. 2018): "member if the model classifies it correctly".
  Its AUC is ``0.5 + (train accuracy − test accuracy) / 2``.
- **noise robustness** (Choquette-Choo et al. 2021, the augmentation/noise
  variant): members tend to keep their correct label under small input
  perturbations. The score is the fraction of ``queries`` Gaussian-noised
  copies (σ = ``noise`` × the inputs' standard deviation) plus the clean input
  that the model labels correctly.
"""

import numpy as np


def gap_scores(predicted, labels):
    """1.0 where the predicted label is right, else 0.0."""
    return (np.asarray(predicted) == np.asarray(labels)).astype("float64")


def noise_robustness_scores(predict_labels, x, labels, *, noise=0.1, queries=16,
                            seed=0, scale=None):
    """Fraction of clean + noisy queries labelled correctly, per example.

    Args:
        predict_labels: callable `x -> predicted class ids`.
        x: inputs (float array, batch first).
        labels: true class ids.
        noise: noise standard deviation relative to `scale`.
        queries: noisy copies per example.
        seed: numpy seed for the noise.
        scale: data scale; default the standard deviation of `x`.
    """
    if queries < 1:
        raise ValueError(f"`queries` must be ≥ 1, got {queries}.")
    if not noise > 0:
        raise ValueError(f"`noise` must be > 0, got {noise}.")
    x = np.asarray(x, dtype="float32")
    labels = np.asarray(labels)
    scale = float(np.std(x)) if scale is None else float(scale)
    rng = np.random.default_rng(seed)
    correct = (np.asarray(predict_labels(x)) == labels).astype("float64")
    for _ in range(queries):
        noisy = x + rng.normal(0.0, noise * scale, size=x.shape).astype("float32")
        correct += np.asarray(predict_labels(noisy)) == labels
    return correct / (queries + 1)
