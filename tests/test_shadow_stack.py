"""K LiRA shadows trained together in one compiled step (issue 14)."""

import os

import keras
import numpy as np
import pytest

import keras_adamixup
from keras_adamixup.audit import lira, shadow_stack
from tests.conftest import SPARSE_CE, small_mlp


def _model(seed=0, optimizer="adam", regularized=False):
    if regularized:
        keras.utils.set_random_seed(seed)
        model = keras.Sequential([
            keras.Input((64,)),
            keras.layers.Dense(16, activation="relu",
                               kernel_regularizer=keras.regularizers.L2(1e-2)),
            keras.layers.Dense(10)])
        assert model.losses
    else:
        model = small_mlp(seed=seed, hidden=16)
    model.compile(keras.optimizers.get(optimizer), SPARSE_CE)
    return model


def _weights(model):
    return [np.asarray(w) for w in model.get_weights()]


def test_batch_plan_sees_every_member_once_and_no_one_else():
    rng = np.random.default_rng(0)
    members = np.array([3, 5, 8, 13, 21, 34, 55])
    indices, weights = shadow_stack.batch_plan(members, steps=3, batch_size=4, rng=rng)
    assert indices.shape == weights.shape == (3, 4)
    assert set(indices.ravel()) <= set(members)  # padding repeats own members
    real = indices[weights == 1.0]
    assert sorted(real) == sorted(members)  # each member exactly once
    assert sorted(weights.sum(axis=1)) == [2.0, 2.0, 3.0]  # near-equal batches
    with pytest.raises(ValueError, match="do not fit"):
        shadow_stack.batch_plan(members, steps=1, batch_size=4, rng=rng)


def test_a_stacked_shadow_trains_exactly_like_fit_on_its_own_batches(digits):
    """28 members in 4 batches of 7 padded to 8, in order: the batches
    `fit(batch_size=7, shuffle=False)` makes. Weights after 2 epochs match
    `fit` (padding at weight 0, the loss as a mean over real members,
    regularization, Adam and SGD with momentum), although two other shadows
    train in the same step."""
    (x, y), _ = digits
    x, y = x[:40], y[:40]
    masks = np.zeros((3, 40), bool)
    masks[0, :28] = True
    masks[1, 8:] = True
    masks[2, ::2] = True
    for optimizer, regularized in (("adam", False), ("sgd", True)):
        if optimizer == "sgd":
            optimizer = keras.optimizers.SGD(0.1, momentum=0.9)
            stacked = [_model(seed=k, optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                              regularized=True) for k in range(3)]
        else:
            stacked = [_model(seed=k) for k in range(3)]
        shadow_stack.train_together(stacked, x, y, masks, epochs=2, batch_size=8,
                                    shuffle=False, steps_per_epoch=4)
        alone = _model(seed=0, optimizer=optimizer, regularized=regularized)
        alone.fit(x[masks[0]], y[masks[0]], epochs=2, batch_size=7, shuffle=False, verbose=0)
        for a, b in zip(_weights(stacked[0]), _weights(alone)):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_shadows_do_not_influence_each_other(digits):
    """Shadow 1 trained beside shadows 0 and 2 = shadow 1 trained alone."""
    (x, y), _ = digits
    x, y = x[:200], y[:200]
    masks = lira.shadow_masks(4, len(x), seed=2)
    steps = int(np.ceil(masks.sum(axis=1).max() / 16))
    together = [_model(seed=k) for k in range(3)]
    shadow_stack.train_together(together, x, y, masks[:3], epochs=2, batch_size=16,
                                seed=5, steps_per_epoch=steps)
    alone = [_model(seed=1)]
    shadow_stack.train_together(alone, x, y, masks[1:2], epochs=2, batch_size=16, seed=5,
                                shadow_ids=[1], steps_per_epoch=steps)
    for a, b in zip(_weights(together[1]), _weights(alone[0])):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert not np.allclose(_weights(together[0])[0], _weights(together[1])[0])


def test_stack_reason_names_what_needs_fit(digits):
    (x, _), _ = digits
    plain = [_model(seed=k) for k in range(2)]
    assert shadow_stack.stack_reason(plain, {"epochs": 3, "batch_size": 8}, x) is None
    assert "callbacks" in shadow_stack.stack_reason(plain, {"callbacks": []}, x)
    assert "single array" in shadow_stack.stack_reason(plain, {}, {"a": x})
    mixing = keras_adamixup.AdaMixupModel(small_mlp(hidden=16))
    mixing.compile("adam", SPARSE_CE)
    assert "train_step" in shadow_stack.stack_reason([mixing], {}, x)
    uncompiled = [small_mlp(hidden=16)]
    assert "not compiled" in shadow_stack.stack_reason(uncompiled, {}, x)
    shared = keras.optimizers.Adam()
    twins = [small_mlp(seed=k, hidden=16) for k in range(2)]
    for m in twins:
        m.compile(shared, SPARSE_CE)
    assert "share one optimizer" in shadow_stack.stack_reason(twins, {}, x)


def test_shadow_outputs_stack_when_they_can_and_fall_back_when_not(digits, tmp_path):
    (x, y), _ = digits
    x, y = x[:160], y[:160]
    masks = lira.shadow_masks(4, len(x), seed=0)
    factory = lambda: _model()  # noqa: E731
    kwargs = {"epochs": 30, "batch_size": 16}
    cache = str(tmp_path / "cache")
    stacked = lira.shadow_outputs(factory, x, y, masks, fit_kwargs=kwargs, progress=False,
                                  together=True, cache_dir=cache, fingerprint="f")
    assert sorted(os.listdir(cache)) == ["manifest.d", "manifest.json"] + [
        f"shadow_{i:03d}.npz" for i in range(4)]
    # members fitted better than the rest: every shadow learned its own half
    for out, mask in zip(stacked, masks):
        right = out.argmax(axis=1) == y
        assert right[mask].mean() > right[~mask].mean()
    # resume: the cached shadows are read back, the missing ones trained
    os.remove(os.path.join(cache, "shadow_002.npz"))
    os.remove(os.path.join(cache, "shadow_003.npz"))
    resumed = lira.shadow_outputs(factory, x, y, masks, fit_kwargs=kwargs, progress=False,
                                  cache_dir=cache, fingerprint="f")
    np.testing.assert_array_equal(resumed[0], stacked[0])
    assert len(os.listdir(cache)) == 6  # manifest.json, manifest.d, 4 shadows
    # a recipe with callbacks cannot be stacked: "auto" trains one after
    # another, True says why not
    with_callbacks = {**kwargs, "callbacks": [keras.callbacks.TerminateOnNaN()]}
    outs = lira.shadow_outputs(factory, x, y, masks[:2], fit_kwargs=with_callbacks,
                               progress=False)
    assert len(outs) == 2 and outs[0].shape == (160, 10)
    with pytest.raises(ValueError, match="cannot train together.*callbacks"):
        lira.shadow_outputs(factory, x, y, masks[:2], fit_kwargs=with_callbacks,
                            progress=False, together=True)
    with pytest.raises(ValueError, match="`together` must be"):
        lira.shadow_outputs(factory, x, y, masks, together="yes")


def _normed(seed, optimizer="adam", loss="sparse_categorical_crossentropy", width=16):
    """A model with non-trainable state (batch-normalization statistics), a
    softmax output and a loss given by name."""
    keras.utils.set_random_seed(seed)
    # no bias before the normalization: its gradient is rounding noise, which
    # Adam would scale up to full steps
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(width, use_bias=False),
                              keras.layers.BatchNormalization(), keras.layers.Activation("relu"),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(keras.optimizers.get(optimizer), loss)
    return model


def test_vectorized_stack_trains_as_the_loop_does_and_watches_outputs(digits):
    """The same three models trained vectorized and in the loop: the same
    weights and batch statistics after 2 epochs, and the outputs given to
    `progress` are the models' own on the watched rows."""
    (x, y), _ = digits
    x, y = x[:120], y[:120]
    masks = lira.shadow_masks(4, len(x), seed=1)[:3]
    watch = [np.flatnonzero(~m) for m in masks]
    trained, seen = {}, {}
    for vectorize in (True, False):
        models = [_normed(seed=k) for k in range(3)]
        assert shadow_stack.vector_reason(models) is None
        outputs = []
        shadow_stack.train_together(models, x, y, masks, epochs=2, batch_size=16, seed=3,
                                    vectorize=vectorize, watch=watch,
                                    progress=lambda epoch, out: outputs.append(out))
        trained[vectorize], seen[vectorize] = models, outputs
        assert len(outputs) == 2 and [len(o) for o in outputs[-1]] == [len(w) for w in watch]
        for model, rows, out in zip(models, watch, outputs[-1]):
            np.testing.assert_allclose(out, model(x[rows], training=False), atol=1e-5)
    for a, b in zip(trained[True], trained[False]):
        for wa, wb in zip(_weights(a), _weights(b)):
            np.testing.assert_allclose(wa, wb, rtol=1e-4, atol=1e-5)
    # the loop's outputs as well, epoch by epoch
    for first, second in zip(seen[True], seen[False]):
        for a, b in zip(first, second):
            np.testing.assert_allclose(a, b, atol=1e-4)


def test_vector_reason_names_what_keeps_the_loop(digits):
    (x, y), _ = digits
    same = [_normed(seed=k) for k in range(2)]
    assert shadow_stack.vector_reason(same) is None
    assert "XLA" in shadow_stack.vector_reason(same, jit_compile=True)
    assert "copies of one architecture" in shadow_stack.vector_reason(
        [_normed(0), _normed(1, width=8)])
    assert "optimizers differ" in shadow_stack.vector_reason(
        [_normed(0), _normed(1, optimizer="sgd")])
    clipped = [_normed(k, optimizer=keras.optimizers.Adam(clipnorm=1.0)) for k in range(2)]
    assert "clipnorm" in shadow_stack.vector_reason(clipped)
    decayed = [_normed(k, optimizer=keras.optimizers.AdamW()) for k in range(2)]
    assert "weight_decay" in shadow_stack.vector_reason(decayed)
    assert "compiled differently" in shadow_stack.vector_reason(
        [_normed(0), _normed(1, loss=keras.losses.SparseCategoricalCrossentropy())])
    masks = lira.shadow_masks(2, 40, seed=0)
    with pytest.raises(ValueError, match="cannot train vectorized: .*clipnorm"):
        shadow_stack.train_together(clipped, x[:40], y[:40], masks, vectorize=True)
    # the loop trains what cannot be vectorized
    shadow_stack.train_together(clipped, x[:40], y[:40], masks, epochs=1, batch_size=8)
