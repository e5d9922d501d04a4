"""MemGuard (Jia et al., CCS 2019) for Keras 3: the paper's test-time baseline.

MemGuard leaves training alone and perturbs the confidence vector a model
returns, so that the defender's own membership classifier can no longer tell
members from non-members, while the predicted label stays the same:

1. the defender trains an attack classifier ``g`` on its model's outputs
   (sorted probability vectors) for some members vs held-out non-members;
2. for every query, starting from the model's logits ``z``, it looks for
   logits ``z'`` (gradient descent, ``steps`` Adam steps on the whole batch)
   minimizing

       |g(sort(softmax(z'))) − ½|  +  c_label · max(0, max_{j≠ŷ} z'_j − z'_ŷ + margin)
                                   +  c_dist · ‖softmax(z') − softmax(z)‖₁

   where ŷ is the model's label; the answer is ``softmax(z')`` when the label
   is kept, else the unperturbed ``softmax(z)``.

Simplification, stated: the paper's second phase (noise added only with a
probability that meets an expected-distortion budget) is left out; every
query is perturbed (`mean_distortion` reports the L1 change). Label-only
attacks are MemGuard's known weakness: the labels are those of the model.

Audited like every defence with two shadow recipes: plain shadows, and
shadows trained the defender's way (`MemGuardModel.fit`: the model, then its
own attack classifier, then guarded outputs), since an attacker who knows
the defence can apply it to its shadows.

Benchmark code: the package never depends on it.
"""

import keras
import numpy as np
import tensorflow as tf


def _sorted_probs(logits):
    """Probabilities in descending order (`top_k`: differentiable, unlike `tf.sort`)."""
    probs = tf.nn.softmax(logits, axis=-1)
    return tf.math.top_k(probs, k=tf.shape(probs)[-1]).values


class MemGuardModel(keras.Model):
    """A trained classifier whose outputs (probabilities) MemGuard perturbs.

    Build with `MemGuardModel.fit_defence`; `predict` and calls return
    probabilities.

    Args:
        model: the trained classifier (logits).
        attack: the defender's attack classifier on sorted probabilities.
        steps, learning_rate, c_label, c_dist, margin: the search (module docstring).
    """

    def __init__(self, model, attack=None, steps=100, learning_rate=0.1, c_label=10.0,
                 c_dist=0.1, margin=0.1, holdout=None, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.model_, self.attack = model, attack
        self.steps, self.learning_rate = steps, learning_rate
        self.c_label, self.c_dist, self.margin = c_label, c_dist, margin
        self.holdout, self.seed = holdout, seed

    @staticmethod
    def train_attack(model, members, nonmembers, seed=0, epochs=100):
        """The defender's attack classifier on sorted probability vectors."""
        keras.utils.set_random_seed(seed)
        n = min(len(members[0]), len(nonmembers[0]))
        feats = [_sorted_probs(model.predict(x[:n], verbose=0)).numpy()
                 for x in (members[0], nonmembers[0])]
        x = np.concatenate(feats)
        y = np.r_[np.ones(n), np.zeros(n)].astype("float32")
        attack = keras.Sequential([keras.Input((x.shape[1],)),
                                   keras.layers.Dense(64, activation="relu"),
                                   keras.layers.Dense(1, activation="sigmoid")])
        attack.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy")
        attack.fit(x, y, epochs=epochs, batch_size=64, verbose=0)
        return attack

    @classmethod
    def fit_defence(cls, model, members, nonmembers, seed=0, epochs=100, **kwargs):
        """Trains the defender's attack classifier for a trained `model`; returns the guard."""
        return cls(model, cls.train_attack(model, members, nonmembers, seed, epochs), **kwargs)

    def fit(self, x, y, **kwargs):
        """The whole recipe (also for shadows trained the defender's way): trains
        the model, then the attack classifier on its members vs `holdout`."""
        if self.holdout is None:
            raise ValueError("MemGuardModel.fit needs `holdout` (the defender's non-members).")
        history = self.model_.fit(x, y, **kwargs)
        n = min(len(self.holdout[1]), len(y))
        self.attack = self.train_attack(self.model_, (x[:n], y[:n]), self.holdout, self.seed)
        return history

    def call(self, x, training=False):
        logits = tf.cast(self.model_(x, training=False), tf.float32)
        label = tf.argmax(logits, axis=-1)
        onehot = tf.one_hot(label, tf.shape(logits)[-1])
        p0 = tf.nn.softmax(logits, axis=-1)
        b1, b2, eps = 0.9, 0.999, 1e-8

        def body(t, z, m, v):
            with tf.GradientTape() as tape:
                tape.watch(z)
                p = tf.nn.softmax(z, axis=-1)
                score = tf.squeeze(self.attack(_sorted_probs(z)), -1)
                own = tf.reduce_sum(z * onehot, -1)
                other = tf.reduce_max(z - 1e9 * onehot, -1)
                loss = (tf.abs(score - 0.5)
                        + self.c_label * tf.nn.relu(other - own + self.margin)
                        + self.c_dist * tf.reduce_sum(tf.abs(p - p0), -1))
                total = tf.reduce_sum(loss)
            g = tape.gradient(total, z)
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            t_f = tf.cast(t, tf.float32)
            step = self.learning_rate * (m / (1 - b1 ** t_f)) / (
                tf.sqrt(v / (1 - b2 ** t_f)) + eps)
            return t + 1, z - step, m, v

        _, z, _, _ = tf.while_loop(
            lambda t, *_: t <= self.steps, body,
            (tf.constant(1), logits, tf.zeros_like(logits), tf.zeros_like(logits)))
        kept = tf.equal(tf.argmax(z, -1), label)
        return tf.where(kept[:, None], tf.nn.softmax(z, -1), p0)

    def mean_distortion(self, x):
        """Mean L1 distance between guarded and original probabilities on `x`."""
        guarded = self.predict(x, verbose=0)
        original = tf.nn.softmax(self.model_.predict(x, verbose=0), -1).numpy()
        return float(np.mean(np.abs(guarded - original).sum(axis=1)))

    def get_config(self):  # not saved; a benchmark wrapper
        return {}
