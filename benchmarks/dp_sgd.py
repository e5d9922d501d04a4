"""DP-SGD for Keras 3 (TensorFlow backend): the baseline of the privacy-utility benchmark.

TensorFlow Privacy's Keras DP optimizers are Keras 2 optimizer classes and
cannot train a Keras 3 model (docs/BENCHMARKS.md, "DP-SGD"). This is the
DP-SGD step of Abadi et al. (2016), written for Keras 3:

1. per-example gradients of the loss (`tf.vectorized_map` over the batch);
2. each example's gradient clipped to global L2 norm ``l2_norm_clip``;
3. the clipped gradients summed, Gaussian noise of standard deviation
   ``noise_multiplier * l2_norm_clip`` added to every coordinate, and the
   sum divided by the batch size;
4. the noisy mean gradient handed to the compiled optimizer (Adam here:
   DP-Adam; any optimizer is post-processing of the noisy gradient).

The privacy guarantee is computed by Google's ``dp_accounting`` (the
accountant TF Privacy itself uses) with `epsilon`: the RDP accountant of the
Poisson-subsampled Gaussian mechanism with sampling rate
``batch_size / n_train`` composed over all steps. Keras draws shuffled
fixed-size batches, not Poisson samples; reporting the Poisson bound for
shuffled batches is the common practice (TF Privacy's tutorials do the same)
and is stated as such wherever the numbers are quoted.

Benchmark code: the package's training code never depends on it.
"""

import keras
import numpy as np
import tensorflow as tf


class DPSGDModel(keras.Model):
    """Wraps a model so that `fit` trains it with DP-SGD.

    Args:
        model: the Keras model to train (no dropout or other random layers:
            the per-example forward passes run under `tf.vectorized_map`).
        l2_norm_clip: per-example gradient norm bound C.
        noise_multiplier: noise standard deviation in units of C (σ).
        seed: seed of the noise (a `keras.random.SeedGenerator`).

    Compile it with a `keras.losses.Loss` instance (the per-example losses
    are that loss on one example each).

    Example:

    ```python
    dp = DPSGDModel(mlp, l2_norm_clip=1.0, noise_multiplier=1.0, seed=0)
    dp.compile(keras.optimizers.Adam(1e-3),
               keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    dp.fit(x, y, batch_size=64, epochs=40)
    eps = epsilon(len(x), 64, 40, 1.0, delta=1e-5)
    ```
    """

    def __init__(self, model, l2_norm_clip=1.0, noise_multiplier=1.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        if l2_norm_clip <= 0 or noise_multiplier < 0:
            raise ValueError("DP-SGD needs l2_norm_clip > 0 and noise_multiplier >= 0, got "
                             f"{l2_norm_clip} and {noise_multiplier}.")
        self.model = model
        self.l2_norm_clip = float(l2_norm_clip)
        self.noise_multiplier = float(noise_multiplier)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=False):
        return self.model(inputs, training=training)

    def get_config(self):  # what a shadow cache's fingerprint needs; not for loading
        return {"model": keras.saving.serialize_keras_object(self.model),
                "l2_norm_clip": self.l2_norm_clip, "noise_multiplier": self.noise_multiplier}

    def clipped_gradient_sum(self, x, y):
        """`(sum of clipped per-example gradients, predictions, per-example losses)`."""
        if not isinstance(self.loss, keras.losses.Loss):
            raise ValueError("DPSGDModel needs `compile(loss=<a keras.losses.Loss instance>)`, "
                             f"got {self.loss!r}.")
        trainable = self.trainable_variables

        def one_example(example):
            xi, yi = example
            with tf.GradientTape() as tape:
                prediction = self(xi[None], training=True)
                loss = self.loss(yi[None], prediction)
            return tape.gradient(loss, trainable), prediction[0], loss

        gradients, predictions, losses = tf.vectorized_map(one_example, (x, y))
        squared = tf.add_n([tf.reduce_sum(tf.reshape(tf.square(g), [tf.shape(g)[0], -1]), 1)
                            for g in gradients])
        scale = 1.0 / tf.maximum(1.0, tf.sqrt(squared) / self.l2_norm_clip)
        summed = [tf.tensordot(scale, g, axes=1) for g in gradients]
        return summed, predictions, losses

    def noisy_gradient(self, x, y):
        """`(noisy mean of the clipped gradients, predictions, per-example losses)`."""
        summed, y_pred, losses = self.clipped_gradient_sum(x, y)
        batch = tf.cast(tf.shape(y)[0], tf.float32)
        stddev = self.noise_multiplier * self.l2_norm_clip
        noisy = [(g + keras.random.normal(tf.shape(g), stddev=stddev, seed=self.seed_generator))
                 / batch for g in summed]
        return noisy, y_pred, losses

    def train_step(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        noisy, y_pred, losses = self.noisy_gradient(x, y)
        self.optimizer.apply_gradients(zip(noisy, self.trainable_variables))
        self._loss_tracker.update_state(tf.reduce_mean(losses), sample_weight=tf.shape(y)[0])
        return self.compute_metrics(x, y, y_pred)


def group_normed(model, groups=8):
    """`model` with every `BatchNormalization` layer replaced by a `GroupNormalization`.

    Batch normalization mixes the examples of a batch, so a per-example
    gradient under it is not one example's (and its moving statistics are not
    updated one example at a time): DP-SGD on convolutional networks uses group
    normalization instead (De et al. 2022). Other layers are cloned as they are
    (new weights); a model without batch normalization comes back cloned.

    Args:
        model: a Keras `Sequential` or functional model.
        groups: the most groups of each `GroupNormalization`: each layer takes the
            largest number up to it that divides its channels (as the layer needs).

    Example:

    ```python
    private_base = group_normed(data.cnn((32, 32, 3), 10))
    ```
    """
    def clone(layer):
        if isinstance(layer, keras.layers.BatchNormalization):
            channels = int(layer.input.shape[-1]) if hasattr(layer, "input") else groups
            fits = max(g for g in range(1, min(groups, channels) + 1) if channels % g == 0)
            return keras.layers.GroupNormalization(groups=fits, name=layer.name + "_group")
        return layer.__class__.from_config(layer.get_config())

    return keras.models.clone_model(model, clone_function=clone)


def epsilon(n_train, batch_size, epochs, noise_multiplier, delta=1e-5):
    """ε of DP-SGD at `delta` (RDP accountant, Poisson-subsampled Gaussian)."""
    import dp_accounting

    if noise_multiplier == 0:
        return float("inf")
    steps = epochs * int(np.ceil(n_train / batch_size))
    event = dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(
            batch_size / n_train, dp_accounting.GaussianDpEvent(noise_multiplier)), steps)
    accountant = dp_accounting.rdp.RdpAccountant()
    accountant.compose(event)
    return float(accountant.get_epsilon(delta))
