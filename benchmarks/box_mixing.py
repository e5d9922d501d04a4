"""A prototype screened on the CIFAR-10 CNN: CutMix-style box mixing in `AdaMixupModel`'s step.

CutMix (Yun et al., ICCV 2019), written here from the paper's description:
instead of blending two images, each example keeps its own image outside a
rectangle of area ``1 − λ`` taken from its partner (the rectangle inside the
image, its position uniform; its sides ``round(√(1 − λ) · H)`` and
``round(√(1 − λ) · W)``), and the labels are mixed with ``λ`` as the
package's soft labels are (rounding moves the box's area by at most a few
pixels at 32 × 32). Inputs that are not images (rank ≠ 4) are blended as
before.

`patch()` replaces the package's input mixing for the rest of the process
(the labels, the schedule, `LossTarget` and everything else unchanged), so
any recipe with mixing (``mixup_relaxat1.0_a0.4``) trains with boxes:

```
python -c "from benchmarks import box_mixing; box_mixing.patch(); \
from benchmarks import recipe_accuracy; recipe_accuracy.main(['--data', 'cifar10', \
'--members', '2000', '--epochs', '60', '--seed', '3', '--recipes', \
'mixup_relaxat1.0_a0.4,mixup_relaxat1.0_a1.0'])"
```

Benchmark code: the package never depends on it; screened and dropped
(docs/BENCHMARKS.md, "CutMix in place of interpolation").
"""

import tensorflow as tf

from keras_adamixup import mixing


def box_leaf(t, lam, partner, uniforms=None):
    """`t` (a batch of images, channels last) with a box of area ≈ ``1 − lam`` per example
    taken from its `partner`; other ranks blended (`mixing._mix_leaf`).

    Args:
        t: `(batch, H, W, C)` inputs.
        lam: `(batch,)` share each example keeps.
        partner: `(batch,)` partner indices.
        uniforms: `(batch, 2)` draws in [0, 1) placing the boxes (`None`: drawn).
    """
    if t.shape.rank != 4:
        return mixing._mix_leaf(t, lam, partner)
    h, w = tf.shape(t)[1], tf.shape(t)[2]
    side = tf.sqrt(tf.clip_by_value(1.0 - tf.cast(lam, tf.float32), 0.0, 1.0))
    box_h = tf.cast(tf.round(side * tf.cast(h, tf.float32)), tf.int32)
    box_w = tf.cast(tf.round(side * tf.cast(w, tf.float32)), tf.int32)
    if uniforms is None:
        uniforms = tf.random.uniform(tf.stack([tf.shape(t)[0], 2]))
    top = tf.cast(tf.floor(uniforms[:, 0] * tf.cast(h - box_h + 1, tf.float32)), tf.int32)
    left = tf.cast(tf.floor(uniforms[:, 1] * tf.cast(w - box_w + 1, tf.float32)), tf.int32)
    rows = tf.range(h)[None, :, None]
    cols = tf.range(w)[None, None, :]
    inside = ((rows >= top[:, None, None]) & (rows < (top + box_h)[:, None, None])
              & (cols >= left[:, None, None]) & (cols < (left + box_w)[:, None, None]))
    return tf.where(inside[..., None], tf.gather(t, partner), t)


def _mix_inputs(x, lam, partner, features, noise):
    return tf.nest.map_structure(lambda t: box_leaf(t, lam, partner), x)


def patch():
    """Makes the package's mixing ops mix images with boxes for the rest of the process."""
    mixing._mix_inputs = _mix_inputs
