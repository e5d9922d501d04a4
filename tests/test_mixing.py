import keras
import numpy as np
import pytest
import scipy.stats as st
import tensorflow as tf

from keras_adamixup import mixing


def batch(n=6, features=4, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype("float32")
    y = (np.arange(n) % classes).astype("int32")
    return x, y


# -- exact maths with fixed coefficients -----------------------------------


def test_mix_exact_maths_soft():
    x, y = batch()
    lam = np.array([0.9, 0.7, 0.5, 0.6, 0.2, 1.0], "float32")
    partner = np.array([1, 2, 3, 4, 5, 0], "int32")
    out = mixing.mix(x, y, lam=lam, partner=partner, num_classes=3, label_mode="soft")
    expected_x = lam[:, None] * x + (1 - lam[:, None]) * x[partner]
    np.testing.assert_allclose(out.x.numpy(), expected_x, rtol=1e-6)
    onehot = np.eye(3, dtype="float32")[y]
    expected_y = lam[:, None] * onehot + (1 - lam[:, None]) * onehot[partner]
    np.testing.assert_allclose(out.y.numpy(), expected_y, rtol=1e-6)


def test_dominant_label_rule_keeps_format():
    x, y = batch()
    lam = np.array([0.9, 0.3, 0.5, 0.49, 0.51, 0.0], "float32")
    partner = np.array([1, 2, 3, 4, 5, 0], "int32")
    out = mixing.mix(x, y, lam=lam, partner=partner, num_classes=3)
    # λ ≥ 0.5 keeps the own label (tie included), otherwise the partner's.
    expected = np.where(lam >= 0.5, y, y[partner])
    np.testing.assert_array_equal(out.y.numpy(), expected)
    assert out.y.dtype == tf.int32 and out.y.shape == (6,)
    onehot = np.eye(3, dtype="float32")[y]
    dense = mixing.mix(x, onehot, lam=lam, partner=partner, label_mode="dominant")
    np.testing.assert_array_equal(dense.y.numpy(), np.eye(3)[expected])


def test_soft_labels_sum_to_one_and_sparse_equals_onehot():
    x, y = batch(n=32, classes=5, seed=3)
    onehot = np.eye(5, dtype="float32")[y]
    a = mixing.mix_batch(x, y, strength=0.35, num_classes=5, label_mode="soft",
                         coefficient="share", jitter=0.5, seed=7)
    b = mixing.mix_batch(x, onehot, strength=0.35, label_mode="soft",
                         coefficient="share", jitter=0.5, seed=7)
    np.testing.assert_allclose(a[1].numpy().sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(a[0].numpy(), b[0].numpy())
    np.testing.assert_allclose(a[1].numpy(), b[1].numpy())
    # (batch, 1) class ids behave like (batch,)
    c = mixing.mix_batch(x, y[:, None], strength=0.35, num_classes=5, label_mode="soft",
                         jitter=0.5, seed=7)
    np.testing.assert_allclose(a[1].numpy(), c[1].numpy())


def test_share_coefficients_and_jitter_bounds():
    lam = mixing.sample_mix_coefficients(1000, 0.3, "share").numpy()
    np.testing.assert_allclose(lam, 0.7, rtol=1e-6)
    lam = mixing.sample_mix_coefficients(
        5000, 0.4, "share", jitter=0.5, seed=keras.random.SeedGenerator(0)).numpy()
    assert lam.min() >= 0.5 - 1e-6 and lam.max() <= 1 - 0.2 + 1e-6
    assert lam.std() > 0.03  # jitter actually varies the share
    assert mixing.sample_mix_coefficients(10, 0.0, "beta").numpy().tolist() == [1.0] * 10


def test_sample_weights_follow_labels():
    x, y = batch()
    w = np.array([1, 2, 3, 4, 5, 6], "float32")
    lam = np.array([0.9, 0.3, 0.5, 0.49, 0.51, 0.0], "float32")
    partner = np.array([1, 2, 3, 4, 5, 0], "int32")
    soft = mixing.mix(x, y, w, lam=lam, partner=partner, num_classes=3, label_mode="soft")
    np.testing.assert_allclose(soft.sample_weight.numpy(), lam * w + (1 - lam) * w[partner],
                               rtol=1e-6)
    dom = mixing.mix(x, y, w, lam=lam, partner=partner, num_classes=3)
    np.testing.assert_array_equal(dom.sample_weight.numpy(), np.where(lam >= 0.5, w, w[partner]))
    assert mixing.mix(x, y, lam=lam, partner=partner).sample_weight is None


def test_nested_inputs_and_dtype_rules():
    x, y = batch()
    ids = np.arange(6 * 2, dtype="int32").reshape(6, 2)
    half = x.astype("float16")
    lam = np.full(6, 0.75, "float32")
    partner = np.array([1, 2, 3, 4, 5, 0], "int32")
    out = mixing.mix({"a": x, "b": (ids, half)}, y, lam=lam, partner=partner)
    assert set(out.x) == {"a", "b"}
    assert out.x["b"][0].dtype == tf.float32  # integer → floatx
    np.testing.assert_allclose(out.x["b"][0].numpy(), 0.75 * ids + 0.25 * ids[partner])
    assert out.x["b"][1].dtype == tf.float16  # float16 mixed in float32, cast back
    np.testing.assert_allclose(out.x["b"][1].numpy().astype("float32"),
                               (0.75 * half.astype("float32")
                                + 0.25 * half[partner].astype("float32")),
                               rtol=1e-3)
    np.testing.assert_allclose(out.x["a"].numpy(), 0.75 * x + 0.25 * x[partner], rtol=1e-6)


def test_binary_labels_mix_as_floats():
    x, _ = batch()
    y = np.array([0, 1, 1, 0, 1, 0], "float32")[:, None]
    lam = np.full(6, 0.75, "float32")
    partner = np.array([1, 2, 3, 4, 5, 0], "int32")
    out = mixing.mix(x, y, lam=lam, partner=partner, num_classes=1, label_mode="soft")
    np.testing.assert_allclose(out.y.numpy(), 0.75 * y + 0.25 * y[partner])


# -- randomness ---------------------------------------------------------------


def test_partners_never_self_and_cover_batch():
    gen = keras.random.SeedGenerator(1)
    for n in (2, 3, 17, 128):
        p = mixing.partner_indices(n, gen).numpy()
        assert sorted(p.tolist()) == list(range(n))
        assert not np.any(p == np.arange(n))
    assert mixing.partner_indices(1, gen).numpy().tolist() == [0]


def test_seed_gives_identical_batches():
    x, y = batch(n=16)
    run = lambda seed: mixing.mix_batch(x, y, strength=0.8, coefficient="beta",
                                        num_classes=3, label_mode="soft", seed=seed)
    a, b, c = run(11), run(11), run(12)
    np.testing.assert_array_equal(a[0].numpy(), b[0].numpy())
    np.testing.assert_array_equal(a[1].numpy(), b[1].numpy())
    assert not np.allclose(a[0].numpy(), c[0].numpy())
    g1, g2 = keras.random.SeedGenerator(5), keras.random.SeedGenerator(5)
    first = [mixing.mix_batch(x, y, strength=0.3, jitter=1.0, seed=g1)[0].numpy() for _ in range(2)]
    second = [mixing.mix_batch(x, y, strength=0.3, jitter=1.0, seed=g2)[0].numpy() for _ in range(2)]
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert not np.allclose(first[0], first[1])  # a generator advances


@pytest.mark.parametrize("alpha", [0.2, 0.5, 1.0, 4.0])
def test_beta_matches_scipy(alpha):
    draws = mixing.sample_beta([20000], alpha, seed=keras.random.SeedGenerator(3)).numpy()
    # float32 rounds draws within ~6e-8 of 1 up to exactly 1: compare on the
    # folded value where both tails are represented alike.
    folded = np.minimum(draws, 1.0 - draws)
    cut = 1e-3
    kept = folded[folded > cut]
    folded_cdf = lambda t: (2 * st.beta(alpha, alpha).cdf(t) - 2 * st.beta(alpha, alpha).cdf(cut)) / (
        1 - 2 * st.beta(alpha, alpha).cdf(cut))
    assert st.kstest(kept, folded_cdf).pvalue > 1e-3
    expected_tail = 2 * st.beta(alpha, alpha).cdf(cut)
    observed_tail = np.mean(folded <= cut)
    assert abs(observed_tail - expected_tail) < 5 * np.sqrt(expected_tail / 20000) + 1e-4


@pytest.mark.parametrize("alpha", [0.01, 0.2, 1.0, 4.0, 30.0])
def test_log_gamma_sampler_matches_scipy(alpha):
    stream = mixing._SeedStream(100)
    draws = mixing._log_gamma(tf.constant([20000]), tf.constant(alpha), stream).numpy()
    assert st.kstest(draws, st.loggamma(alpha).cdf).pvalue > 1e-3


@pytest.mark.gpu
def test_tiny_alpha_does_not_collapse_to_half():
    draws = mixing.sample_beta([20000], 0.01, seed=keras.random.SeedGenerator(0)).numpy()
    # Beta(0.01, 0.01) puts 2·F(0.01) ≈ 0.96 of its mass within 0.01 of 0 or 1.
    expected = 2 * st.beta(0.01, 0.01).cdf(0.01)
    assert abs(np.mean(np.minimum(draws, 1 - draws) < 0.01) - expected) < 0.01
    assert np.mean(np.abs(draws - 0.5) < 0.01) < 0.01
    assert abs(np.mean(draws < 0.5) - 0.5) < 0.02


@pytest.mark.gpu
def test_mix_batch_under_jit_compile():
    x, y = batch(n=8)
    gen = keras.random.SeedGenerator(2)

    @tf.function(jit_compile=True)
    def step(x, y, strength):
        return mixing.mix_batch(x, y, strength=strength, coefficient="beta",
                                num_classes=3, label_mode="soft", seed=gen)

    xs, ys, _ = step(x, y, tf.constant(0.4))
    assert xs.shape == (8, 4)
    np.testing.assert_allclose(ys.numpy().sum(axis=1), 1.0, rtol=1e-5)
    xs2, _, _ = step(x, y, tf.constant(0.4))
    assert not np.allclose(xs.numpy(), xs2.numpy())  # the generator advanced


# -- bad input ----------------------------------------------------------------


def test_errors_python_values():
    x, y = batch()
    with pytest.raises(ValueError, match="`strength` must be in"):
        mixing.mix_batch(x, y, strength=0.7)
    with pytest.raises(ValueError, match="`strength` must be in"):
        mixing.mix_batch(x, y, strength=float("nan"))
    with pytest.raises(ValueError, match="`strength` must be in"):
        mixing.mix_batch(x, y, strength=-1.0, coefficient="beta")
    with pytest.raises(ValueError, match="`label_mode` must be one of"):
        mixing.mix_batch(x, y, strength=0.2, label_mode="hard")
    with pytest.raises(ValueError, match="`coefficient` must be one of"):
        mixing.mix_batch(x, y, strength=0.2, coefficient="gamma")
    with pytest.raises(ValueError, match="`jitter` only applies"):
        mixing.mix_batch(x, y, strength=0.2, coefficient="beta", jitter=0.1)
    with pytest.raises(ValueError, match="`jitter` must be"):
        mixing.mix_batch(x, y, strength=0.2, jitter=2.0)
    with pytest.raises(TypeError, match="`seed` must be"):
        mixing.mix_batch(x, y, strength=0.2, seed="x")


def test_errors_shapes():
    x, y = batch()
    with pytest.raises(ValueError, match="needs `num_classes`"):
        mixing.mix_batch(x, y, strength=0.2, label_mode="soft")
    with pytest.raises(ValueError, match="batch of size 1"):
        mixing.mix_batch(x[:1], y[:1], strength=0.2)
    with pytest.raises(ValueError, match="share the batch dimension"):
        mixing.mix_batch(x, y[:4], strength=0.2)
    with pytest.raises(ValueError, match="share the batch dimension"):
        mixing.mix_batch(x, y, np.ones(5, "float32"), strength=0.2)
    with pytest.raises(ValueError, match="must be batched"):
        mixing.mix_batch(x[0], y[0], strength=0.2)
    with pytest.raises(ValueError, match="`y` must be class ids"):
        mixing.mix_batch(x, np.zeros((6, 2, 3), "float32"), strength=0.2)
    with pytest.raises(ValueError, match="num_classes=4"):
        mixing.mix_batch(x, np.eye(3, dtype="float32")[y], strength=0.2, num_classes=4)
    with pytest.raises(ValueError, match="num_classes=1"):
        mixing.mix_batch(x, np.zeros((6, 2), "float32"), strength=0.2, num_classes=1)
    with pytest.raises(TypeError, match="must be numeric"):
        mixing.mix_batch(tf.constant(["a"] * 6), y, strength=0.2)


def test_errors_label_values():
    x, y = batch()
    bad = y.copy()
    bad[2] = 7
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"Sparse labels `y` must be integers in \[0, 3\)"):
        mixing.mix_batch(x, bad, strength=0.2, num_classes=3, label_mode="soft")
    with pytest.raises(tf.errors.InvalidArgumentError, match="Sparse labels `y`"):
        mixing.mix_batch(x, y.astype("float32") + 0.5, strength=0.2, num_classes=3)
    with pytest.raises(tf.errors.InvalidArgumentError, match="`strength` must be in"):
        mixing.mix_batch(x, y, strength=tf.Variable(0.9), num_classes=3)

    @tf.function(jit_compile=True)
    def under_xla(y):
        return mixing.mix_batch(x, y, strength=0.2, num_classes=3, label_mode="soft", seed=1)[1]

    # XLA drops assertions: the bad example's target is NaN instead of garbage.
    targets = under_xla(tf.constant(bad)).numpy()
    assert np.isnan(targets).any()
    assert not np.isnan(under_xla(tf.constant(y)).numpy()).any()
