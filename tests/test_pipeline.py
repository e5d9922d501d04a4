import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_adamixup


def dataset(n=64, batch=16, weights=False):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 5)).astype("float32")
    y = (np.arange(n) % 4).astype("int64")
    parts = (x, y, np.linspace(0.5, 2, n).astype("float32")) if weights else (x, y)
    return tf.data.Dataset.from_tensor_slices(parts).batch(batch), parts


def test_mixes_batches_soft_and_weights():
    ds, (x, y, w) = dataset(weights=True)
    mixed = ds.apply(keras_adamixup.adamixup(0.3, num_classes=4, label_mode="soft", seed=0))
    assert len(mixed.element_spec) == 3
    xs, ys, ws = next(iter(mixed))
    np.testing.assert_allclose(ys.numpy().sum(axis=1), 1.0, rtol=1e-6)
    # with a fixed share of 0.3 every label keeps 0.7 of its own class, plus
    # 0.3 when the partner has the same class
    own = ys.numpy()[np.arange(16), y[:16]]
    assert np.all(np.isclose(own, 0.7, atol=1e-6) | np.isclose(own, 1.0, atol=1e-6))
    assert np.sum(np.isclose(own, 0.7, atol=1e-6)) >= 8
    assert not np.allclose(xs.numpy(), x[:16])
    assert ws.shape == (16,)


def test_live_strength_change_between_epochs():
    ds, (x, _) = dataset()
    strength = keras.Variable(0.0, dtype="float32", trainable=False)
    mixed = ds.apply(keras_adamixup.adamixup(strength, seed=1)).prefetch(2)
    for epoch_strength in (0.0, 0.3, 0.0):
        strength.assign(epoch_strength)
        batches = np.concatenate([b[0].numpy() for b in mixed])
        assert np.allclose(batches, x) == (epoch_strength == 0.0)


def test_live_strength_change_within_an_epoch():
    ds, (x, _) = dataset()
    options = tf.data.Options()
    options.experimental_optimization.inject_prefetch = False  # no read-ahead
    strength = keras.Variable(0.0, dtype="float32", trainable=False)
    mixed = ds.apply(keras_adamixup.adamixup(strength, label_mode="dominant", seed=1))
    it = iter(mixed.with_options(options))
    first, _ = next(it)
    np.testing.assert_allclose(first.numpy(), x[:16])  # strength 0: unmixed
    strength.assign(0.5)
    second, _ = next(it)
    assert not np.allclose(second.numpy(), x[16:32])
    # share 0.5: every example is the average of itself and its partner
    rows = second.numpy()
    src = x[16:32]
    for i in range(16):
        assert any(np.allclose(rows[i], (src[i] + src[j]) / 2, atol=1e-6) for j in range(16) if j != i)


def test_reads_model_strength():
    model = keras_adamixup.AdaMixupModel(
        keras.Sequential([keras.Input((5,)), keras.layers.Dense(4)]),
        schedule=keras_adamixup.schedules.Constant(0.2), mix_in="none")
    ds, _ = dataset()
    mixed = ds.apply(keras_adamixup.adamixup(model, num_classes=4, seed=2))
    assert next(iter(mixed))[0].shape == (16, 5)
    with pytest.raises(ValueError, match="must agree"):
        keras_adamixup.adamixup(model, coefficient="beta")


def test_seed_is_deterministic_across_pipelines():
    ds, _ = dataset()
    run = lambda seed: [b[0].numpy() for b in ds.apply(
        keras_adamixup.adamixup(0.8, coefficient="beta", seed=seed))]
    a, b, c = run(3), run(3), run(4)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert not np.allclose(a[0], c[0])
    assert not np.allclose(a[0], a[1])


def test_errors():
    x = np.zeros((8, 3), "float32")
    y = np.zeros(8, "int64")
    unbatched = tf.data.Dataset.from_tensor_slices((x, y))
    with pytest.raises(ValueError, match="needs a batched dataset"):
        unbatched.apply(keras_adamixup.adamixup(0.2))
    unbatched_onehot = tf.data.Dataset.from_tensor_slices((x, np.eye(4, dtype="float32")[y]))
    with pytest.raises(ValueError, match="share the batch dimension"):
        unbatched_onehot.apply(keras_adamixup.adamixup(0.2))
    only_x = tf.data.Dataset.from_tensor_slices(x).batch(4)
    with pytest.raises(ValueError, match=r"\(x, y\)"):
        only_x.apply(keras_adamixup.adamixup(0.2))
    with pytest.raises(ValueError, match="`strength` must be in"):
        keras_adamixup.adamixup(0.9)
    with pytest.raises(TypeError, match="frozen"):
        keras_adamixup.adamixup(tf.constant(0.2))
    with pytest.raises(TypeError, match="tf.data.Dataset"):
        keras_adamixup.adamixup(0.2)([1, 2])
    batched = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
    with pytest.raises(ValueError, match="needs `num_classes`"):
        batched.apply(keras_adamixup.adamixup(0.2, label_mode="soft"))
    bad = tf.data.Dataset.from_tensor_slices((x, y + 5)).batch(4)
    with pytest.raises(tf.errors.InvalidArgumentError, match="Sparse labels `y`"):
        next(iter(bad.apply(keras_adamixup.adamixup(0.2, num_classes=4))))
