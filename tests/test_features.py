"""Mixing that respects the input type: features="swap" for binary/categorical inputs."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_adamixup
from keras_adamixup import mixing
from tests.conftest import SPARSE_CE, small_mlp

rng = np.random.default_rng(0)


def test_swap_keeps_binary_values_and_the_expected_share():
    x = (rng.random((64, 2000)) > 0.5).astype("float32")
    y = np.arange(64) % 4
    lam = tf.fill([64], 0.7)
    partner = mixing.partner_indices(64, seed=3)
    noise = mixing.swap_noise(tf.constant(x), seed=4)
    result = mixing.mix(x, y, lam=lam, partner=partner, num_classes=4, features="swap",
                        noise=noise)
    xm = result.x.numpy()
    assert set(np.unique(xm)) <= {0.0, 1.0}
    p = partner.numpy()
    differs = x != x[p]  # where own and partner differ, the value tells the source
    from_partner = (xm == x[p]) & differs
    share = from_partner.sum() / differs.sum()
    assert share == pytest.approx(0.3, abs=0.01)  # 1 − λ
    # the dominant label rule is unchanged (λ = 0.7 ≥ 0.5: own label)
    np.testing.assert_array_equal(result.y.numpy(), y)


def test_interpolation_leaves_the_manifold_swap_does_not():
    x = np.eye(4, dtype="float32")  # one-hot rows
    y = np.arange(4)
    xi, _, _ = mixing.mix_batch(x, y, strength=0.3, num_classes=4, seed=0)
    assert not set(np.unique(xi.numpy())) <= {0.0, 1.0}
    xs, _, _ = mixing.mix_batch(x, y, strength=0.5, num_classes=4, seed=0, features="swap",
                                feature_groups=[[0, 1, 2, 3]])
    # a one-hot group swapped as a whole stays one-hot
    np.testing.assert_array_equal(xs.numpy().sum(axis=1), np.ones(4))
    assert set(np.unique(xs.numpy())) <= {0.0, 1.0}


def test_feature_groups_move_together():
    x = rng.integers(0, 2, (256, 6)).astype("float32")
    x[:, 3] = 1.0 - x[:, 2]  # columns 2, 3: a two-category one-hot block
    y = np.zeros(256, int)
    xs, _, _ = mixing.mix_batch(x, y, strength=0.5, num_classes=2, seed=1, features="swap",
                                feature_groups=[[2, 3]])
    xs = xs.numpy()
    np.testing.assert_array_equal(xs[:, 2] + xs[:, 3], np.ones(256))
    with pytest.raises(ValueError, match="disjoint"):
        mixing.check_feature_groups([[0, 1], [1, 2]])
    with pytest.raises(ValueError, match="names column 9"):
        mixing.mix_batch(x, y, strength=0.5, num_classes=2, features="swap",
                         feature_groups=[[9]])
    with pytest.raises(TypeError, match="`feature_groups` must be a list"):
        mixing.check_feature_groups([3, 4])


def test_detect_features():
    assert mixing.detect_features(np.array([[0, 1], [1, 1]])) == "swap"
    assert mixing.detect_features(np.array([[True, False]])) == "swap"
    assert mixing.detect_features(np.array([[0.5, 1.0]])) == "interpolate"
    assert mixing.detect_features({"a": np.zeros((2, 2)), "b": np.ones((2, 3)) * 2}) == \
        "interpolate"


@pytest.mark.gpu
@pytest.mark.parametrize("jit", [True, False])
def test_model_swaps_in_the_compiled_step(jit):
    x = (rng.random((256, 20)) > 0.5).astype("float32")
    y = (x[:, 0] + x[:, 1] > 1).astype("int64")
    base = small_mlp(2, inputs=20, seed=None, hidden=16)
    model = keras_adamixup.AdaMixupModel(base, schedule=0.3, features="auto", seed=0)
    model.compile("adam", SPARSE_CE, metrics=["accuracy"], jit_compile=jit)
    history = model.fit(x, y, epochs=3, batch_size=32, verbose=0)
    assert model.feature_mode() == "swap"
    assert np.isfinite(history.history["loss"]).all()
    config = model.get_config()
    again = keras_adamixup.AdaMixupModel.from_config(config)
    assert again.features == "auto"
    grouped = keras_adamixup.AdaMixupModel(base, features="swap", feature_groups=[[0, 1]])
    assert keras_adamixup.AdaMixupModel.from_config(grouped.get_config()).feature_groups == [[0, 1]]
    with pytest.raises(ValueError, match="need features='swap'"):
        keras_adamixup.AdaMixupModel(base, feature_groups=[[0, 1]])
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
    from_dataset = keras_adamixup.AdaMixupModel(base, features="auto")
    from_dataset.compile("adam", SPARSE_CE)
    from_dataset.fit(ds, epochs=1, verbose=0)  # decided from the first batch
    assert from_dataset.feature_mode() == "swap"
    batches = ((x[i:i + 32], y[i:i + 32]) for i in range(0, len(x), 32))
    with pytest.raises(ValueError, match="with a generator, choose features="):
        keras_adamixup.AdaMixupModel(base, features="auto").fit(batches, epochs=1, verbose=0)


def test_pipeline_swaps():
    x = (rng.random((64, 10)) > 0.5).astype("float32")
    y = np.arange(64) % 2
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16).apply(
        keras_adamixup.adamixup(0.4, num_classes=2, seed=0, features="swap"))
    for xb, _ in ds:
        assert set(np.unique(xb.numpy())) <= {0.0, 1.0}


def test_auto_logs_its_choice(caplog):
    binary = (rng.random((64, 6)) > 0.5).astype("float32")
    real = rng.random((64, 6)).astype("float32")
    y = (binary[:, 0] > 0).astype("int64")
    for x, chosen in ((binary, "'swap'"), (real, "'interpolate'")):
        base = keras.Sequential([keras.Input((6,)), keras.layers.Dense(2)])
        model = keras_adamixup.AdaMixupModel(base, schedule=0.3, features="auto", seed=0)
        model.compile("adam", SPARSE_CE)
        caplog.clear()
        with caplog.at_level("INFO", logger="keras_adamixup"):
            model.fit(x, y, epochs=1, batch_size=32, verbose=0)
        assert f"features='auto' chose {chosen}" in caplog.text
