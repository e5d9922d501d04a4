"""Every error in the error table (docs/guide/errors.md), triggered by id (E01 ...).

`test_error_table_and_tests_agree` keeps the table and this file in step:
a row without a case here, or a case without a row, fails.
"""

import inspect
import pathlib
import re
import sys
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_adamixup
from keras_adamixup import PrivacyMonitor, PrivacyTarget, audit, duplicates, mixing, schedules
from tests.conftest import SPARSE_CE, compile_adam, small_mlp

ERRORS = pathlib.Path(__file__).resolve().parents[1] / "docs" / "guide" / "errors.md"
rng = np.random.default_rng(0)
X = rng.random((8, 4)).astype("float32")
Y = np.array([0, 1, 2, 0, 1, 2, 0, 1])


def compiled(model, **kwargs):
    return compile_adam(model, 1e-3, **kwargs)


def monitor_data(n=150, offset=0.0):
    return rng.random((n, 64)).astype("float32") + offset, rng.integers(0, 10, n)


def e01():
    with pytest.raises(ValueError, match="E01: `strength` must be in"):
        mixing.mix_batch(X, Y, strength=0.7, num_classes=3)
    with pytest.raises(ValueError, match=r"E01: `schedule value` must be in \[0.0, 0.5\]"):
        keras_adamixup.AdaMixupModel(small_mlp(), schedule=schedules.LinearDecay(0.9, 0.0))
    with pytest.raises(ValueError, match="E01: `strength` must be in"):
        mixing.mix_batch(X, Y, strength=float("nan"), num_classes=3)


def e02():
    with pytest.raises(tf.errors.InvalidArgumentError, match="E02: `strength` must be in"):
        mixing.mix_batch(X, Y, strength=tf.Variable(0.9), num_classes=3)


def e03(digits):
    bad = Y.copy()
    bad[1] = 5
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"E03: Sparse labels `y` must be integers in \[0, 3\)"):
        mixing.mix_batch(X, bad, strength=0.2, num_classes=3)
    (x, y), _ = digits
    y = y[:128].copy()
    y[3] = 12
    model = compiled(keras_adamixup.AdaMixupModel(small_mlp(), seed=0), jit_compile=True)
    # arrays: found before training (it ended in TensorFlow's 30-line graph error)
    with pytest.raises(ValueError, match=r"E03: AdaMixupModel.fit: 1 label\(s\) are not "
                                         r"class ids in \[0, 10\)"):
        model.fit(x[:128], y, epochs=1, batch_size=32, verbose=0)
    # a dataset: in the step, under XLA
    data = tf.data.Dataset.from_tensor_slices((x[:128], y)).batch(32)
    with pytest.raises(ValueError, match="E03: .*outside \\[0, num_classes\\)"):
        model.fit(data, epochs=1, verbose=0)


def e04():
    with pytest.raises(ValueError, match="E04: .*needs `num_classes`"):
        mixing.mix_batch(X, Y, strength=0.2, label_mode="soft")


def e05():
    with pytest.raises(ValueError, match="E05: `y` must be class ids"):
        mixing.mix_batch(X, np.zeros((8, 2, 2)), strength=0.2, num_classes=3)


def e06(digits):
    with pytest.raises(ValueError, match="E06: Cannot mix a batch of size 1"):
        mixing.mix_batch(X[:1], Y[:1], strength=0.2, num_classes=3)
    (x, y), _ = digits
    model = compiled(keras_adamixup.AdaMixupModel(small_mlp(), seed=0))
    with pytest.raises(ValueError, match="(E06: The first training batch has a single example)|"
                                         "(E06: Cannot mix a batch of size 1)"):
        model.fit(x[:4], y[:4], epochs=1, batch_size=1, verbose=0)
    # with teachers: before they train (the stacked teachers failed on batches of one,
    # a dataset's streamed ones only after training)
    for data, size in (((x[:200], y[:200]), 1), ((tf.data.Dataset.from_tensor_slices(
            (x[:200], y[:200])).batch(1),), None)):
        taught = compiled(keras_adamixup.AdaMixupModel(
            small_mlp(), seed=0, targets=keras_adamixup.SplitTeachers(
                2, 1, seed=0, near_duplicates=None)))
        taught.targets.make_teachers = lambda *a, **k: pytest.fail("teachers trained")
        with pytest.raises(ValueError, match="E06: The first training batch has a single"):
            taught.fit(*data, epochs=1, batch_size=size, verbose=0)


def e07():
    a, b = keras.Input((3,), name="a"), keras.Input((2,), name="b")
    two_inputs = keras.Model([a, b], keras.layers.Dense(3)(keras.layers.Concatenate()([a, b])))
    model = compiled(keras_adamixup.AdaMixupModel(two_inputs, seed=0))
    with pytest.raises(ValueError, match="E07: `x` has 1 input tensor\\(s\\) but the base "
                                         "model expects 2"):
        model.fit(X[:, :3], Y, epochs=1, batch_size=4, verbose=0)


def e08():
    ds = tf.data.Dataset.from_tensor_slices((X, Y))
    with pytest.raises(ValueError, match="E08: adamixup needs a batched dataset"):
        ds.apply(keras_adamixup.adamixup(0.2, num_classes=3))


def e09():
    ds = tf.data.Dataset.from_tensor_slices((np.zeros((64, 64), "float32"), np.zeros(64, "int64")))
    ds = ds.batch(16).filter(lambda a, b: True)  # unknown cardinality
    model = compiled(keras_adamixup.AdaMixupModel(small_mlp()))
    with pytest.raises(ValueError, match="E09: .*steps per epoch is unknown"):
        model.fit(ds, epochs=1, verbose=0)


def e10():
    with pytest.raises(TypeError, match="E10: `base_model` must be a keras.Model"):
        keras_adamixup.AdaMixupModel("model")
    for kwargs, name in (({"label_mode": "hard"}, "label_mode"),
                         ({"coefficient": "uniform"}, "coefficient"),
                         ({"mix_in": "layer"}, "mix_in")):
        with pytest.raises(ValueError, match=f"E10: `{name}` must be one of"):
            keras_adamixup.AdaMixupModel(small_mlp(), **kwargs)
    with pytest.raises(TypeError, match="E47: `seed` must be"):
        keras_adamixup.AdaMixupModel(small_mlp(), seed="1")


def e11():
    with pytest.raises(ValueError, match="E11: `target_auc` must be in \\(0.5, 1\\)"):
        PrivacyTarget(target_auc=0.5)
    with pytest.raises(ValueError, match="E11: `ki` must be"):
        PrivacyTarget(ki=-1.0)


def e12(digits):
    (x, y), _ = digits
    model = compiled(keras_adamixup.AdaMixupModel(small_mlp(), schedule=PrivacyTarget()))
    with pytest.raises(ValueError, match="E12: .*no\\s+monitor was given"):
        model.fit(x[:64], y[:64], epochs=1, verbose=0)


def e13():
    with pytest.raises(ValueError, match="E13: .*needs at least 100 per side"):
        PrivacyMonitor(monitor_data(60), monitor_data(150, 2.0))
    with pytest.raises(ValueError, match="E13: PrivacyMonitor needs `members`"):
        PrivacyMonitor(None, monitor_data())
    # datasets are counted like arrays (5 per side was once accepted)
    small = tf.data.Dataset.from_tensor_slices(monitor_data(5)).batch(2)
    with pytest.raises(ValueError, match="E13: `members` has 5 examples"):
        PrivacyMonitor(small, monitor_data(150, 2.0))
    # the monitor `fit` makes names the validation data it was given, from a dataset too
    model = compiled(keras_adamixup.recommended.model(small_mlp(), budget=2.0))
    x, y = monitor_data(300)
    training = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
    with pytest.raises(ValueError, match="E13: `validation_data` holds 50 examples"):
        model.fit(training, validation_data=monitor_data(50, 2.0), epochs=1, verbose=0)
    # too few training rows is said as such, not as too few held-out ones
    with pytest.raises(ValueError, match="E13: the monitor draws its members from the "
                                         "training rows, and there are 40"):
        compiled(keras_adamixup.recommended.model(small_mlp())).fit(
            x[:40], y[:40], validation_data=monitor_data(200, 2.0), epochs=1, verbose=0)


def e14():
    x, y = monitor_data(200)
    with pytest.raises(ValueError, match="E14: .*also appear among the monitor members"):
        PrivacyMonitor((x[:150], y[:150]), (x[50:], y[50:]))
    # also when either side is a dataset (compared by row digest)
    nonmembers = tf.data.Dataset.from_tensor_slices((x[50:], y[50:])).batch(32)
    with pytest.raises(ValueError, match="E14: 100 monitor non-member row\\(s\\) also appear"):
        PrivacyMonitor((x[:150], y[:150]), nonmembers)


def e15():
    schedule = PrivacyTarget()
    keras_adamixup.AdaMixupModel(small_mlp(), schedule=schedule)
    with pytest.raises(ValueError, match="E15: .*already drives a model"):
        keras_adamixup.AdaMixupModel(small_mlp(), schedule=schedule)


LOGITS = rng.normal(size=(40, 3))
LABELS = rng.integers(0, 3, 40)


def e16():
    with pytest.raises(ValueError, match="E16: `outputs_members` has 40 rows but "
                                         "`labels_members` has 39"):
        audit.audit_predictions(LOGITS, LABELS[:39], LOGITS, LABELS, attacks=("threshold",))


def e17():
    bad = LOGITS.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="E17: .*1 NaN or inf value"):
        audit.audit_predictions(bad, LABELS, LOGITS, LABELS, attacks=("threshold",))


def e18():
    with pytest.raises(ValueError, match="E18: .*outside the model's classes"):
        audit.audit_predictions(LOGITS, LABELS + 3, LOGITS, LABELS, attacks=("threshold",))


def e19():
    with pytest.raises(ValueError, match="E19: Too few examples"):
        audit.audit_predictions(LOGITS[:5], LABELS[:5], LOGITS, LABELS, attacks=("threshold",))


def e20(digits):
    (x, y), _ = digits
    model = small_mlp()
    with pytest.raises(ValueError, match="E20: 30 non-member example\\(s\\) also appear"):
        audit.run_audit(model, (x[:60], y[:60]), (x[30:90], y[30:90]), attacks=("threshold",))


def e21():
    with pytest.raises(ValueError, match="E21: Unknown attack 'svm'"):
        audit.audit_predictions(LOGITS, LABELS, LOGITS, LABELS, attacks=("svm",))
    with pytest.raises(ValueError, match="E21: Unknown slice"):
        audit.audit_predictions(LOGITS, LABELS, LOGITS, LABELS, slices=("by_age",))


def e22(monkeypatch):
    from keras_adamixup.audit import _tfp

    monkeypatch.setattr(_tfp, "_MODULE", None)
    for name in list(sys.modules):
        if name.startswith("tensorflow_privacy"):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(
        sys.modules, "tensorflow_privacy.privacy.privacy_tests.membership_inference_attack",
        None)
    with pytest.raises(ImportError,
                       match="(?s)E22: .*pip install --no-deps tensorflow-privacy==0.8.12"):
        audit.audit_predictions(LOGITS, LABELS, LOGITS, LABELS, attacks=("threshold",))


def e23(digits, tmp_path):
    (x, y), (xt, yt) = digits
    model = small_mlp()
    factory = lambda: compiled(small_mlp(hidden=8))
    lira = {"model_factory": factory, "num_shadows": 2, "fit_kwargs": {"epochs": 1},
            "cache_dir": str(tmp_path), "progress": False}
    kwargs = dict(attacks=("threshold",), slices=("entire",), label_only_noise=None)
    audit.run_audit(model, (x[:20], y[:20]), (xt[:20], yt[:20]), lira=lira, **kwargs)
    with pytest.raises(ValueError, match="E23: .*belongs to a different audit"):
        audit.run_audit(model, (x[:20], y[:20]), (xt[20:40], yt[20:40]), lira=lira, **kwargs)
    # same data, another shadow recipe (once silently reused: plain then defended)
    defended = lambda: compiled(keras_adamixup.AdaMixupModel(small_mlp(hidden=8), seed=0))
    with pytest.raises(ValueError, match="E23: .*belongs to a different audit"):
        audit.run_audit(model, (x[:20], y[:20]), (xt[:20], yt[:20]),
                        lira={**lira, "model_factory": defended}, **kwargs)
    # the same recipe built again (new layer names) still matches the cache
    audit.run_audit(model, (x[:20], y[:20]), (xt[:20], yt[:20]),
                    lira={**lira, "model_factory": lambda: compiled(small_mlp(hidden=8))},
                    **kwargs)


def e24():
    model = small_mlp()
    lira = {"model_factory": lambda: compiled(small_mlp(hidden=8)), "num_shadows": 2}
    kwargs = dict(attacks=("threshold",), slices=("entire",), label_only_noise=None)
    members = (rng.random((20, 64)).astype("float32"), rng.integers(0, 10, 20))
    nonmembers = (rng.random((20, 64)).astype("float32") + 2.0, rng.integers(0, 10, 20))
    with pytest.raises(ValueError, match="E24: .*need distinct names"):
        audit.run_audit(model, members, nonmembers, lira=[lira, lira], **kwargs)


def e25(digits):
    (x, y), _ = digits

    @keras.saving.register_keras_serializable(package="test_errors")
    class TooStrong(schedules.StrengthSchedule):
        def __call__(self, step, total_steps):
            return tf.constant(0.9)  # outside [0, 0.5]

        def get_config(self):
            return {}

    for jit in (True, False):
        model = compiled(keras_adamixup.AdaMixupModel(small_mlp(), schedule=TooStrong(),
                                                      seed=0), jit_compile=jit)
        with pytest.raises(ValueError, match=r"E25: .*returned a strength outside \[0.0, 0.5\]"):
            model.fit(x[:64], y[:64], epochs=1, batch_size=32, verbose=0)
        assert model.current_strength() == 0.5  # the step mixed with the clipped value


def e26(digits):
    (x, y), _ = digits
    regression = keras.Sequential([keras.Input((64,)), keras.layers.Dense(1)])
    model = keras_adamixup.AdaMixupModel(regression)
    with pytest.raises(ValueError, match="E26: .*'mse' is not a classification loss"):
        model.compile("adam", "mse")
    with pytest.raises(ValueError, match="E26: .*not a classification loss"):
        model.compile("adam", keras.losses.Huber())
    allowed = keras_adamixup.AdaMixupModel(regression, allow_any_loss=True, seed=0)
    allowed.compile("adam", "mse")
    allowed.fit(x[:64], y[:64].astype("float32"), epochs=1, verbose=0)


def e27():
    model = keras_adamixup.AdaMixupModel(small_mlp())  # mix_in="train_step"
    with pytest.raises(ValueError, match="E27: .*would\s+mix every batch twice"):
        keras_adamixup.adamixup(model, num_classes=10)


def e28():
    with pytest.raises(ValueError, match="E28: .*booleans but the model has 3 classes"):
        audit.audit_predictions(LOGITS, LABELS.astype(bool), LOGITS, LABELS,
                                attacks=("threshold",))


def e29():
    with pytest.raises(ValueError, match="E29: .*values outside \\[0, 1\\]: they are logits"):
        audit.audit_predictions(LOGITS, LABELS, LOGITS, LABELS, attacks=("threshold",),
                                outputs="probabilities")
    with pytest.raises(ValueError, match="E29: `outputs` must be one of"):
        audit.audit_predictions(LOGITS, LABELS, LOGITS, LABELS, outputs="scores")


def e30(digits):
    (x, y), _ = digits
    data = monitor_data(150, 2.0)
    unbatched = tf.data.Dataset.from_tensor_slices(data)
    with pytest.raises(ValueError, match="E30: `nonmembers` is not batched"):
        PrivacyMonitor((x[:150], y[:150]), unbatched)
    with pytest.raises(ValueError, match="E30: .*infinite dataset"):
        PrivacyMonitor((x[:150], y[:150]), unbatched.batch(10).repeat())
    # one-hot labels hide a missing batch dimension until the model is known:
    # caught when fit starts, not after the first epoch
    onehot = tf.data.Dataset.from_tensor_slices((data[0], np.eye(10)[data[1]]))
    monitor = PrivacyMonitor((x[:150], y[:150]), onehot)
    model = compiled(keras_adamixup.AdaMixupModel(small_mlp(), schedule=PrivacyTarget()))
    with pytest.raises(ValueError, match="E30: .*inputs of rank 1 but the model expects rank 2"):
        model.fit(x[:150], y[:150], epochs=1, callbacks=[monitor], verbose=0)


def e31(tmp_path, capsys):
    import keras_adamixup_cli

    code = keras_adamixup_cli.main(["audit", "--model", str(tmp_path / "none.keras"), "--data", "digits",
                     "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: E31: ") and len(err.strip().splitlines()) == 1


def e32(digits):
    (x, y), (xt, yt) = digits
    x_rest, y_rest, planted = audit.canaries.plant(x[:64], y[:64], count=4, seed=0)
    model = small_mlp()
    with pytest.raises(ValueError, match="E32: .*without the canaries"):
        audit.run_audit(model, (np.concatenate([x_rest, planted.x]),
                                np.concatenate([y_rest, planted.y])), (xt[:64], yt[:64]),
                        canaries=planted, attacks=("threshold",), slices=("entire",),
                        label_only_noise=None)
    with pytest.raises(TypeError, match="E32: `canaries` must be a CanarySet"):
        audit.run_audit(model, (x_rest, y_rest), (xt[:32], yt[:32]), canaries=(40,),
                        attacks=("threshold",), slices=("entire",), label_only_noise=None)
    # canaries of another input shape than the members (and the model); members
    # of another shape than the model are E51
    _, _, narrow = audit.canaries.plant(x[:64, :8], y[:64], count=4, seed=0)
    with pytest.raises(ValueError, match="E32: The canaries' inputs have shape"):
        audit.run_audit(model, (x_rest, y_rest), (xt[:32], yt[:32]),
                        canaries=narrow, attacks=("threshold",), slices=("entire",),
                        label_only_noise=None)


def e33(digits):
    from keras_adamixup.audit import lira

    (x, y), _ = digits
    masks = lira.shadow_masks(2, 64, seed=0)
    with pytest.raises(ValueError, match="E33: .*cannot train together.*has its own `train_step`"):
        lira.shadow_outputs(lambda: compiled(keras_adamixup.AdaMixupModel(small_mlp())),
                            x[:64], y[:64], masks, fit_kwargs={"epochs": 1}, progress=False,
                            together=True)


def e34():
    with pytest.raises(ValueError, match="E34: `exclude` must be smaller than `teachers`"):
        keras_adamixup.SplitTeachers(teachers=4, exclude=4)
    model = compiled(keras_adamixup.AdaMixupModel(
        small_mlp(), targets=keras_adamixup.SplitTeachers(2, 1, seed=0)))
    batches = ((X[i:i + 4], Y[i:i + 4]) for i in range(0, len(X), 4))  # a generator
    with pytest.raises(ValueError, match="E34: SplitTeachers .* reads the training data by index"):
        model.fit(batches, epochs=1, verbose=0)
    monitored = compiled(keras_adamixup.AdaMixupModel(small_mlp(), checkpoint=True))
    batches = ((X[i:i + 4], Y[i:i + 4]) for i in range(0, len(X), 4))
    with pytest.raises(ValueError, match="E34: the model's PrivacyMonitor .* not a generator"):
        monitored.fit(batches, validation_data=(X, Y), epochs=1, verbose=0)
    both = compiled(keras_adamixup.AdaMixupModel(
        small_mlp(), targets=keras_adamixup.SplitTeachers(2, 1, seed=0), checkpoint=True))
    batches = ((X[i:i + 4], Y[i:i + 4]) for i in range(0, len(X), 4))
    with pytest.raises(ValueError, match="E34: SplitTeachers .* and the model's PrivacyMonitor"):
        both.fit(batches, validation_data=(X, Y), epochs=1, verbose=0)


def e35():
    with pytest.raises(ValueError, match="E35: `floor` must be 'holdout' or a number > 0"):
        keras_adamixup.LossFloor("median")
    with pytest.raises(ValueError, match="E35: `floor` must be > 0"):
        keras_adamixup.LossFloor(0.0)
    with pytest.raises(ValueError, match="E35: .*it needs mix_in='train_step'"):
        keras_adamixup.AdaMixupModel(small_mlp(), mix_in="none",
                                     focus=keras_adamixup.LossFloor(1.0))
    model = compiled(keras_adamixup.AdaMixupModel(small_mlp(4, inputs=4),
                                                  focus=keras_adamixup.LossFloor()))
    with pytest.raises(ValueError, match="E35: .*no monitor was given"):
        model.fit(X, Y, epochs=1, verbose=0)


def e36():
    (x, y) = (np.random.default_rng(0).random((400, 4)).astype("float32"),
              np.arange(400) % 3)
    with pytest.raises(ValueError, match="E36: `signal` must be one of"):
        keras_adamixup.PrivacyMonitor((x[:200], y[:200]), (x[200:], y[200:]), signal="lira")
    with pytest.raises(ValueError, match="E36: `reference_epoch` must be ≥ 1"):
        keras_adamixup.PrivacyMonitor((x[:200], y[:200]), (x[200:], y[200:]),
                                      signal="trajectory", reference_epoch=0)
    shuffled = tf.data.Dataset.from_tensor_slices((x[200:], y[200:])).shuffle(
        200, seed=1, reshuffle_each_iteration=True).batch(50)
    monitor = keras_adamixup.PrivacyMonitor((x[:200], y[:200]), shuffled,
                                            signal="trajectory", reference_epoch=1)
    model = compiled(small_mlp(3, inputs=4))
    with pytest.raises(ValueError, match="E36: .*datasets without shuffling"):
        model.fit(x[:200], y[:200], epochs=3, verbose=0, callbacks=[monitor])


def e37(digits, tmp_path):
    import json as json_lib
    import os

    (x, y), (xt, yt) = digits

    def factory():
        return compiled(small_mlp())

    args = dict(attacks=("threshold",), slices=("entire",), label_only_noise=None,
                lira={"model_factory": factory, "num_shadows": 2, "cache_dir": tmp_path,
                      "fit_kwargs": {"epochs": 1}})
    target = factory()

    def run():
        return audit.run_audit(target, (x[:64], y[:64]), (xt[:64], yt[:64]), **args)

    run()
    path = tmp_path / "shadow_000.npz"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(ValueError, match="E37: .*shadow_000.npz' does not match the checksum"):
        run()
    os.remove(tmp_path / "manifest.d" / "shadow_000.json")  # no entry
    with pytest.raises(ValueError, match="E37: .*has no checksum in the cache's manifest"):
        run()
    # an object array with a matching entry (as if written by hand): unreadable
    np.save(open(path, "wb"), np.array([{"a": 1}], dtype=object), allow_pickle=True)
    from keras_adamixup._cache import sha256 as _sha256

    (tmp_path / "manifest.d" / "shadow_000.json").write_text(
        json_lib.dumps({"sha256": _sha256(path)}))
    with pytest.raises(ValueError, match="E37: .*is not a readable .npz of arrays"):
        run()
    np.savez(path, outputs=np.zeros((3, 10)), mask=np.zeros(128, bool))  # wrong shape
    (tmp_path / "manifest.d" / "shadow_000.json").write_text(
        json_lib.dumps({"sha256": _sha256(path)}))
    with pytest.raises(ValueError, match=r"E37: .*holds outputs of shape \(3, 10\)"):
        run()
    np.savez(path, mask=np.zeros(128, bool))  # missing key
    (tmp_path / "manifest.d" / "shadow_000.json").write_text(
        json_lib.dumps({"sha256": _sha256(path)}))
    with pytest.raises(ValueError, match=r"E37: .*lacks the array\(s\) \['outputs'\]"):
        run()
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match="E37: .*is not a manifest this package wrote"):
        run()


def e38(digits):
    (x, y), (xt, yt) = digits
    monitor = PrivacyMonitor((x[:150], y[:150]), (xt[:150], yt[:150]))
    model = compiled(small_mlp())
    with pytest.raises(ValueError, match="E38: PrivacyCheckpoint: its monitor is not among "
                                         "this fit's callbacks"):
        model.fit(x[:300], y[:300], epochs=1, verbose=0,
                  callbacks=[keras_adamixup.PrivacyCheckpoint(monitor)])


def e39():
    model = compiled(keras_adamixup.AdaMixupModel(small_mlp(3, inputs=4), seed=0))
    bad = X.copy()
    bad[5, 2] = np.nan
    with pytest.raises(ValueError,
                       match=r"E39: `x` has NaN or inf in 1 row\(s\) \(e.g. rows \[5\]\)"):
        model.fit(bad, Y, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="E39: The labels `y` are strings.*np.unique"):
        model.fit(X, np.array(["a", "b", "c", "a", "b", "c", "a", "b"]), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="E39: .*one-hot rows.*CategoricalCrossentropy"):
        model.fit(X, np.eye(3)[Y], epochs=1, verbose=0)
    with pytest.raises(ValueError, match="E39: `epochs` must be ≥ 1"):
        model.fit(X, Y, epochs=0, verbose=0)
    # class ids for a one-hot loss, where the labels reach it as given: Keras' rank error
    # (through the stacked teachers' graph under recommended.model) before
    one_hot_loss = keras.losses.CategoricalCrossentropy(from_logits=True)
    for made in (keras_adamixup.AdaMixupModel(small_mlp(3, inputs=4), seed=0),
                 keras_adamixup.recommended.model(small_mlp(3, inputs=4), seed=0)):
        made.compile("adam", one_hot_loss)
        with pytest.raises(ValueError, match="E39: The labels `y` are class ids .*"
                                             "SparseCategoricalCrossentropy"):
            made.fit(X, Y, epochs=1, verbose=0)
    soft = keras_adamixup.AdaMixupModel(small_mlp(3, inputs=4), seed=0, label_mode="soft")
    soft.compile("adam", one_hot_loss)  # mixed one-hot targets: the ids are fine
    soft.fit(X, Y, epochs=1, verbose=0)
    # ... until the fit validates: Keras' rank error after a whole epoch before
    with pytest.raises(ValueError, match="E39: The labels `y` are class ids"):
        soft.fit(X, Y, validation_data=(X, Y), epochs=1, verbose=0)


def e40():
    ragged = tf.data.Dataset.from_tensor_slices(
        (tf.ragged.constant([[1.0], [1.0, 2.0]]), [0, 1])).batch(2)
    with pytest.raises(ValueError, match="E40: adamixup mixes dense batches.*RaggedTensorSpec"):
        ragged.apply(keras_adamixup.adamixup(strength=0.2, num_classes=2))


def e41(tmp_path):
    with pytest.raises(ValueError, match="E41: .*needs a fixed `seed`"):
        keras_adamixup.SplitTeachers(4, 1, cache_dir=str(tmp_path))
    folder = str(tmp_path / "teachers")
    teachers = keras_adamixup.SplitTeachers(2, 1, seed=0, cache_dir=folder)
    model = compiled(keras_adamixup.AdaMixupModel(small_mlp(3, inputs=4), targets=teachers,
                                                  seed=0))
    teachers.train(model, X, Y, indices=[0], epochs=1)
    with pytest.raises(ValueError, match="E41: `indices`"):
        teachers.train(model, X, Y, indices=[2], epochs=1)
    with pytest.raises(ValueError, match="E41: .*belongs to another training"):
        keras_adamixup.SplitTeachers(2, 1, seed=0, cache_dir=folder).train(
            model, X + 1.0, Y, indices=[1], epochs=1)
    with pytest.raises(ValueError, match=r"E41: .*give SplitTeachers\(cache_dir=...\) a folder"):
        keras_adamixup.SplitTeachers(2, 1, seed=0).train(model, X, Y, indices=[0])


def e42():
    with pytest.raises(ValueError, match=r"E42: `factor` must be in \[0.0, 1.0\)"):
        schedules.PlateauDecay(factor=1.0)
    schedule = schedules.PlateauDecay()
    state = {name: value for name, (value, _) in schedule.init_state().items()}
    with pytest.raises(ValueError, match="E42: .*follows the hold-out loss, but the "
                                         "measurement has none"):
        schedule.update_state(state, schedules.Measurement(auc=0.6))


def e43():
    x, y = (np.random.default_rng(0).random((40, 4)).astype("float32"), np.arange(40) % 3)
    public = x[:10].copy()
    public[2, 1] = np.inf
    model = compiled(keras_adamixup.AdaMixupModel(
        small_mlp(3, inputs=4), targets=keras_adamixup.SplitTeachers(2, 1, seed=0), seed=0))
    with pytest.raises(ValueError, match=r"E43: `unlabelled` has NaN or inf in 1 row\(s\)"):
        model.fit(x, y, epochs=1, verbose=0, unlabelled=public)


def e44():
    x = np.random.default_rng(0).random((40, 4)).astype("float32")
    y = np.arange(40) % 3
    model = small_mlp(3, inputs=4)
    bad = x[:20].copy()
    bad[:, 2] = np.nan
    with pytest.raises(ValueError, match=r"E44: the members' inputs have NaN or inf in 20 "
                                         r"row\(s\).*columns \[2\]"):
        audit.run_audit(model, (bad, y[:20]), (x[20:], y[20:]), attacks=("threshold",))


def e45():
    with pytest.raises(ValueError, match=r"E45: PlateauDecay: `min_strength` \(0.3\) is above "
                                         r"`start` \(0.2\)"):
        schedules.PlateauDecay(0.2, min_strength=0.3)


def e46():
    from keras_adamixup import _checks

    model = compiled(keras_adamixup.AdaMixupModel(small_mlp(3, inputs=4), seed=0))
    with pytest.raises(ValueError, match=r"E46: `validation_split` must be in \[0, 1\)"):
        model.fit(X, Y, epochs=1, verbose=0, validation_split=1.5)
    with pytest.raises(ValueError, match="E46: `fit` got no training rows"):
        model.fit(X[:0], Y[:0], epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"E46: `validation_data` must be \(x_val, y_val\)"):
        _checks.fit_arguments(1, None, "auto", {"validation_data": X})


def e47():
    model = compiled(keras_adamixup.AdaMixupModel(small_mlp(3, inputs=4), seed=0))
    with pytest.raises(TypeError, match=r"E47: `epochs` must be an int, got '10' \(type str\): "
                                        r"pass epochs=10"):
        model.fit(X, Y, epochs="10", verbose=0)
    with pytest.raises(TypeError, match=r"E47: `teachers` must be an int.*pass teachers=4"):
        keras_adamixup.SplitTeachers("4", 1)
    with pytest.raises(TypeError, match=r"E47: `start` must be a number.*pass start=0.4"):
        schedules.PlateauDecay("0.4")


def e48():
    x, y = monitor_data(300)

    class BelowChance(PrivacyMonitor):
        def measure(self):
            return {"auc": 0.3, "loss_gap": -0.1, "confidence_gap": -0.1}

    model = compiled(small_mlp())
    monitor = BelowChance((x[:100], y[:100]), (x[200:], y[200:]))  # rows never compared
    with pytest.warns(keras_adamixup.monitor.HoldoutWarning,
                      match="E48: .*probably training rows.*check_training_data"):
        model.fit(x[:200], y[:200], epochs=3, verbose=0, callbacks=[monitor])


def e49():
    x, y = monitor_data(300)
    model = compiled(small_mlp())
    monitor = PrivacyMonitor((x[:100], y[:100]), (x[200:], y[200:]), every_epochs=3)
    with pytest.warns(keras_adamixup.monitor.SignalWarning,
                      match=r"E49: PrivacyMonitor\(every_epochs=3\) measured nothing") as caught:
        model.fit(x[:200], y[:200], epochs=2, verbose=0, callbacks=[monitor])
    _points_here(caught, "E49")  # from a callback, through Keras' fit


def e50():
    model = small_mlp(3, inputs=4)
    with pytest.raises(ValueError, match=r"E50: `members` must be a pair \(x, y\)"):
        audit.run_audit(model, X, X)
    with pytest.raises(TypeError, match=r"E50: `lira` must be a ShadowRecipe"):
        audit.run_audit(model, (X, Y), (X + 1.0, Y), lira=4)
    with pytest.raises(TypeError, match=r"E50: `outputs_members` must be the model's outputs"):
        audit.audit_predictions(model, Y, model, Y)


def e51():
    model = small_mlp(3, inputs=4)
    with pytest.raises(ValueError, match=r"E51: the model takes rows of shape \(4,\), but the "
                                         r"members' rows have shape \(64,\)"):
        audit.run_audit(model, monitor_data(20), monitor_data(20, offset=1.0),
                        attacks=("threshold",))
    model = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(3)])
    x = rng.random((60, 6, 6)).astype("float32")
    with pytest.raises(ValueError, match=r"E51: .* give them the channel axis the model has, "
                                         r"x\[\.\.\., None\]"):
        audit.run_audit(model, (x[:30], Y.repeat(4)[:30] % 3), (x[30:], Y.repeat(4)[:30] % 3),
                        attacks=("threshold",))


def e52():
    x, y = monitor_data(200)
    x[150, 0] = np.nan
    with pytest.raises(ValueError, match=r"E52: the monitor's `nonmembers` have NaN or inf"):
        PrivacyMonitor((x[:100], y[:100]), (x[100:], y[100:]))
    # the members drawn by `fit` name the row of the training data, not of their draw
    # (rows 300 to 399 of 400: the draw holds some of them, and their number in the draw
    # is under 300)
    x_train, y_train = monitor_data(400)
    x_train[300:, 1] = np.nan
    with pytest.raises(ValueError, match=r"E52: the training rows .* \(e\.g\. rows \[") as e:
        PrivacyMonitor.from_training(x_train, y_train, monitor_data(200, 2.0))
    named = re.search(r"rows \[([0-9, ]+)\]", str(e.value)).group(1).split(", ")
    assert named and all(300 <= int(row) < 400 for row in named)


def e53():
    x = rng.random((40, 6)).astype("float32")
    x = np.concatenate([x, x + 0.001])
    x[3, 2] = np.nan
    with pytest.raises(ValueError, match=r"E53: near_duplicate_groups: 1 of 80 rows have NaN"):
        duplicates.near_duplicate_groups(x)


def e55():
    from tests.conftest import cluster_student, clusters

    x, y = clusters(60)
    y = y.copy()
    y[7] = -1
    model = cluster_student(keras_adamixup.SplitTeachers(2, 1, seed=0, near_duplicates=None))
    with pytest.raises(ValueError, match=r"E55: SplitTeachers: 1 label\(s\) are not class ids"):
        model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    # before the search and the plan: no E63 warning for a budget the error makes moot
    model = cluster_student(keras_adamixup.SplitTeachers(2, 1, seed=0, compute=0.05))
    with warnings.catch_warnings(record=True) as caught, pytest.raises(ValueError, match="E55"):
        warnings.simplefilter("always")
        model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    assert not [w for w in caught if "E63" in str(w.message)]


def e56():
    from tests.conftest import cluster_mlp, clusters

    x, y = clusters(64)
    model = keras_adamixup.AdaMixupModel(cluster_mlp(seed=0), seed=0)
    model.compile("adam", "sparse_categorical_crossentropy")
    with pytest.warns(keras_adamixup.predictions.OutputKindWarning, match="E56: ") as caught:
        model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    _points_here(caught, "E56")


def e57():
    from keras_adamixup.teacher_targets import TeachersWarning
    from tests.conftest import cluster_student, clusters

    x, y = clusters(90)
    model = cluster_student(keras_adamixup.SplitTeachers(2, 1, seed=0, near_duplicates=None))
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    with pytest.warns(TeachersWarning, match="E57: ") as caught:
        model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    _points_here(caught, "E57")


def e58():
    from keras_adamixup.teacher_targets import TeachersWarning
    from tests.conftest import cluster_student, clusters

    x, y = clusters(120, spread=1.0)
    model = cluster_student(keras_adamixup.SplitTeachers(2, 1, seed=0, near_duplicates=None))
    with pytest.warns(TeachersWarning, match="E58: "):
        model.fit(x, y, epochs=3, batch_size=16, verbose=0)


def e59():
    with pytest.raises(ValueError, match="E59: `target` must be 'holdout' or 'plateau' or"):
        keras_adamixup.LossTarget("Plateau")
    with pytest.raises(ValueError, match="E59: `factor` must be > 0"):
        keras_adamixup.LossTarget(factor=0.0)
    for factor in (0.0, 1.5):  # above 1: a target over the lowest hold-out loss unlearns
        with pytest.raises(ValueError, match="E59: `factor` must be in \\(0.0, 1.0\\]"):
            keras_adamixup.LossTarget("plateau", factor=factor)
    with pytest.raises(ValueError, match="E59: `factor` scales the hold-out loss"):
        keras_adamixup.LossTarget(1.2, factor=0.5)
    model = compiled(keras_adamixup.AdaMixupModel(small_mlp(4, inputs=4), schedule=0.0,
                                                  relax=keras_adamixup.LossTarget()))
    with pytest.raises(ValueError, match="E59: .*no monitor was given"):
        model.fit(X, Y, epochs=1, verbose=0)
    for soft in ({"targets": keras_adamixup.SplitTeachers(2, 1)}, {"label_mode": "soft"}):
        with pytest.raises(ValueError, match="E59: LossTarget\\('holdout'\\) compares"):
            keras_adamixup.AdaMixupModel(small_mlp(4, inputs=4), relax=keras_adamixup.LossTarget(),
                                         **soft)


def e60(tmp_path):
    relaxed = compiled(keras_adamixup.AdaMixupModel(small_mlp(4, inputs=4), schedule=0.0,
                                                    relax=keras_adamixup.LossTarget(1.0)))
    relaxed.fit(X, Y, epochs=1, verbose=0)
    relaxed.save_weights(str(tmp_path / "relaxed.weights.h5"))
    plain = compiled(keras_adamixup.AdaMixupModel(small_mlp(4, inputs=4), schedule=0.0))
    plain.fit(X, Y, epochs=1, verbose=0)
    with pytest.warns(UserWarning, match="E60: the weights loaded into .* another training"):
        plain.load_weights(str(tmp_path / "relaxed.weights.h5"))


def _taught(teachers, exclude):
    """A compiled model of the tests' MLP with `SplitTeachers(teachers, exclude)`."""
    return compiled(keras_adamixup.AdaMixupModel(
        small_mlp(), schedule=0.0, targets=keras_adamixup.SplitTeachers(teachers, exclude,
                                                                        seed=0)))


def _arrays_and_dataset(x, y, batch):
    """`fit`'s positional data both ways: arrays, and a dataset of `batch`-row batches."""
    return (x, y), (tf.data.Dataset.from_tensor_slices((x, y)).batch(batch),)


def e61():
    for data in _arrays_and_dataset(*monitor_data(3), batch=2):
        with pytest.raises(ValueError, match="E61: SplitTeachers\\(4, 1\\) on 3 training"):
            _taught(4, 1).fit(*data, epochs=1, verbose=0)


def e62():
    for data in _arrays_and_dataset(*monitor_data(40), batch=8):
        with pytest.warns(UserWarning,
                          match="E62: steps_per_epoch=2 counts this model's") as caught:
            _taught(2, 1).fit(*data, epochs=1, steps_per_epoch=2, verbose=0)
        _points_here(caught, "E62")


def e63():
    x, y = monitor_data(300)
    model = compiled(keras_adamixup.recommended.model(small_mlp(), budget=1.05))
    with pytest.warns(UserWarning, match="E63: the teachers' compute \\(0.05 of the model's"):
        model.fit(x, y, validation_split=0.5, epochs=2, verbose=0)
    assert model.teacher_targets.epochs == (1, 1)
    for budget in (1, 1.0, 0.5):
        with pytest.raises(ValueError, match="E63: `budget` is the whole fit's training"):
            keras_adamixup.recommended.model(small_mlp(), budget=budget)


def e64():
    def cnn():
        return keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3),
                                 keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)])
    with pytest.warns(UserWarning, match="E64: recommended.model\\(base, budget=...\\) \\(or "
                                         "targets=SplitTeachers") as caught:
        keras_adamixup.recommended.model(cnn(), budget=2.0)
    _points_here(caught, "E64")
    with pytest.warns(UserWarning, match="E64: "):  # teachers given by hand: the same cost
        keras_adamixup.recommended.model(cnn(), targets=keras_adamixup.SplitTeachers(2, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        keras_adamixup.recommended.model(cnn())  # the image setting: no teachers
        keras_adamixup.recommended.model(cnn(), targets=None)
        keras_adamixup.recommended.model(small_mlp(), budget=2.0)
        keras_adamixup.recommended.model(small_mlp())


def e65():
    x, y = monitor_data(200)
    model = keras_adamixup.AdaMixupModel(small_mlp(), schedule=0.2, seed=0,
                                         relax=keras_adamixup.LossTarget(0.3))
    model.compile(keras.optimizers.Adam(1e-3, use_ema=True), SPARSE_CE)
    with pytest.warns(UserWarning, match="E65: the optimizer keeps a moving average"):
        model.fit(x, y, epochs=1, verbose=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.compile(keras.optimizers.Adam(1e-3), SPARSE_CE)
        model.fit(x, y, epochs=1, verbose=0)


def e66():
    if not hasattr(keras.layers, "MixUp"):
        pytest.skip(f"keras {keras.__version__} has no keras.layers.MixUp")
    base = keras.Sequential([keras.Input((8,)), keras.layers.MixUp(), keras.layers.Dense(3)])
    # the user's line, made directly, by recommended.model or by load_model (it once
    # pointed at recommended.py and at model.py)
    for make in (lambda: keras_adamixup.AdaMixupModel(base),
                 lambda: keras_adamixup.recommended.model(base)):
        with pytest.warns(UserWarning, match="E66: the base model contains MixUp") as caught:
            make()
        _points_here(caught, "E66")


def e67():
    x, y = monitor_data(120)
    model = compiled(small_mlp())
    model.fit(x[:60], y[:60], epochs=1, verbose=0)
    before = model.predict(x, verbose=0)
    base = small_mlp()
    for factory, shared in ((lambda: model, "the audited model"),
                            (lambda: compiled(keras_adamixup.AdaMixupModel(base, schedule=0.2)),
                             "the model it returned at the call before")):
        with pytest.raises(ValueError, match=f"E67: .* shares layers with {shared}"):
            audit.run_audit(model, (x[:60], y[:60]), (x[60:], y[60:]), attacks=("threshold",),
                            lira=audit.ShadowRecipe(factory, num_shadows=2,
                                                    fit_kwargs={"epochs": 1, "verbose": 0}))
    np.testing.assert_array_equal(model.predict(x, verbose=0), before)  # not trained
    frozen = small_mlp()  # a pretrained part every model reuses, frozen: allowed
    frozen.trainable = False

    def on_frozen():
        return compiled(keras.Sequential([frozen, keras.layers.Dense(10)]))

    target = on_frozen()
    target.fit(x[:60], y[:60], epochs=1, verbose=0)
    audit.run_audit(target, (x[:60], y[:60]), (x[60:], y[60:]), attacks=("threshold",),
                    lira=audit.ShadowRecipe(on_frozen, num_shadows=2,
                                            fit_kwargs={"epochs": 1, "verbose": 0}))


def e68():
    x, y = monitor_data(400)
    model = compiled(small_mlp())
    with pytest.raises(ValueError, match=r"E68: the members reach .* 2[0-9][0-9] times apart"):
        audit.run_audit(model, (x[:200], y[:200]), (np.round(x[200:] * 255), y[200:]),
                        attacks=("threshold",))
    defended = compiled(keras_adamixup.AdaMixupModel(small_mlp(), schedule=0.2))
    with pytest.raises(ValueError, match=r"E68: the monitor's members \(training rows\)"):
        defended.fit(x[:300], y[:300], validation_data=(x[300:] * 255, y[300:]), epochs=1,
                     verbose=0, callbacks=[PrivacyMonitor.from_training(
                         x[:300], y[:300], (x[300:] * 255, y[300:]))])
    audit.run_audit(model, (x[:200], y[:200]), (x[200:] * 3, y[200:]),  # 3x: alike enough
                    attacks=("threshold",))
    # datasets too: the audit's sides and the monitor's validation dataset, batch by batch
    import tensorflow as tf

    ds = lambda a, b: tf.data.Dataset.from_tensor_slices((a, b)).batch(64)  # noqa: E731
    with pytest.raises(ValueError, match=r"E68: the members reach"):
        audit.run_audit(model, ds(x[:200], y[:200]), ds(x[200:] * 255, y[200:]),
                        attacks=("threshold",))
    with pytest.raises(ValueError, match=r"E68: the monitor's members \(training rows\)"):
        compiled(keras_adamixup.AdaMixupModel(  # a monitor made from the datasets
            small_mlp(), schedule=keras_adamixup.schedules.PlateauDecay(0.4))).fit(
            ds(x[:300], y[:300]), validation_data=ds(x[300:] * 255, y[300:]), epochs=1,
            verbose=0)


def e69(tmp_path_factory):
    x, y = monitor_data(400)
    model = compiled(keras_adamixup.recommended.model(small_mlp(), seed=0))
    model.fit(x[:300], y[:300], validation_split=0.5, epochs=1, verbose=0)  # held: 150-299
    with pytest.raises(ValueError, match="E69: 150 of the members are rows the model's own"):
        audit.run_audit(model, (x[:300], y[:300]), (x[300:], y[300:]), attacks=("threshold",))
    with pytest.warns(UserWarning, match="E69: 100 of the non-members are rows the model's"):
        audit.run_audit(model, (x[:150], y[:150]), (x[200:300], y[200:300]),
                        attacks=("threshold",))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        audit.run_audit(model, (x[:150], y[:150]), (x[300:], y[300:]), attacks=("threshold",))
    import tensorflow as tf  # datasets, streamed: the same checks

    ds = lambda a, b: tf.data.Dataset.from_tensor_slices((a, b)).batch(64)  # noqa: E731
    with pytest.raises(ValueError, match="E69: 150 of the members are rows the model's own"):
        audit.run_audit(model, ds(x[:300], y[:300]), ds(x[300:], y[300:]),
                        attacks=("threshold",))
    # its base model, and the model loaded from its file, keep the rows held out
    path = tmp_path_factory.mktemp("e69") / "model.keras"
    model.save(path)
    for kept in (model.base_model, keras.saving.load_model(path)):
        with pytest.raises(ValueError, match="E69: 150 of the members"):
            audit.run_audit(kept, (x[:300], y[:300]), (x[300:], y[300:]),
                            attacks=("threshold",))


def e70():
    import tensorflow as tf

    from keras_adamixup.teacher_targets import TeachersWarning
    from tests.conftest import cluster_student, clusters

    x, y = clusters(90)
    draws = tf.data.Dataset.random(seed=1, rerandomize_each_iteration=True)

    def augmented(inputs):
        data = tf.data.Dataset.from_tensor_slices((inputs, y))
        return tf.data.Dataset.zip((data, draws)).map(
            lambda element, draw: (element[0] + tf.cast(draw % 3, "float32") * 1e-3,
                                   element[1])).batch(16)

    model = cluster_student(keras_adamixup.SplitTeachers(2, 1, seed=0, near_duplicates=None,
                                                         epochs=2))
    model.fit(augmented(x), epochs=1, verbose=0)
    taught = model.teacher_targets
    with pytest.warns(TeachersWarning, match="E70: ") as caught:
        model.fit(augmented(x[::-1].copy()), epochs=1, verbose=0)  # other inputs, same labels
    _points_here(caught, "E70")
    assert model.teacher_targets is taught


def e71():
    from keras_adamixup.teacher_targets import TeachersWarning
    from tests.conftest import cluster_student, clusters

    x, y = clusters(90)

    def student(seed):
        return cluster_student(keras_adamixup.SplitTeachers(2, 1, seed=seed,
                                                            near_duplicates=None))
    first = student(0)
    first.fit(x, y, epochs=2, batch_size=16, verbose=0)
    made = first.teacher_targets
    same = student(0)
    same.teacher_targets = made
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        same.fit(x, y, epochs=2, batch_size=16, verbose=0)  # the same settings: reused
    assert same.teacher_targets is made and not _said(caught, "E71")
    other = student(1)  # another seed: other folds
    other.teacher_targets = made
    with pytest.warns(TeachersWarning, match="E71: the TeacherTargets assigned") as caught:
        other.fit(x, y, epochs=2, batch_size=16, verbose=0)
    _points_here(caught, "E71")
    assert other.teacher_targets is not made
    with warnings.catch_warnings(record=True) as caught:  # its own targets now
        warnings.simplefilter("always")
        other.fit(x[:60], y[:60], epochs=2, batch_size=16, verbose=0)  # other rows
    assert not _said(caught, "E71")


def e72():
    x, y = monitor_data(64)
    model = compiled(keras_adamixup.AdaMixupModel(small_mlp(), schedule=0.0,
                                                  checkpoint={"patience": 2}))
    endless = tf.data.Dataset.from_tensor_slices((x, y)).batch(16).repeat()
    # no teachers: the reader named is the monitor made from the training data
    with pytest.raises(ValueError, match="E72: `x` is an infinite dataset .*PrivacyMonitor"):
        model.fit(endless, validation_data=monitor_data(150), epochs=1, steps_per_epoch=2,
                  verbose=0)
    with pytest.raises(ValueError, match="E72: `x` is not batched"):
        model.fit(tf.data.Dataset.from_tensor_slices((x, y)), epochs=1, verbose=0)
    taught = _taught(2, 1)
    with pytest.raises(ValueError, match="E72: `x` is an infinite dataset .*SplitTeachers"):
        taught.fit(endless, epochs=1, steps_per_epoch=2, verbose=0)
    shuffled = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(64).batch(16)
    with pytest.raises(ValueError, match="E72: The training dataset yields its examples in "):
        taught.fit(shuffled, epochs=1, verbose=0)


def e73():
    x, y = monitor_data(200)
    model = compiled(keras_adamixup.AdaMixupModel(
        small_mlp(), schedule=0.4, coefficient="beta", label_mode="soft", seed=0,
        relax=keras_adamixup.LossTarget("plateau", patience=5)))
    with pytest.warns(UserWarning, match="E73: LossTarget\\('plateau'\\) set no target in "
                                         "this fit \\(2 epochs\\)") as caught:
        model.fit(x, y, validation_data=monitor_data(150, 0.5), epochs=2, verbose=0)
    _points_here(caught, "E73")
    assert float(model.loss_target.numpy()) == 0.0


def e74():
    x, y = monitor_data(400)
    model = compiled(small_mlp())
    model.fit(x[:200], y[:200], epochs=30, verbose=0)
    with pytest.warns(UserWarning, match=r"E74: the model's mean loss on its members is "
                                         r".* nats, more than three times") as caught:
        audit.run_audit(model, (x[:200] * 255, y[:200]), (x[200:] * 255, y[200:]),
                        attacks=("threshold",))
    _points_here(caught, "E74")
    with warnings.catch_warnings():  # the same members, scaled as in training: no word
        warnings.simplefilter("error", UserWarning)
        audit.run_audit(model, (x[:200], y[:200]), (x[200:], y[200:]), attacks=("threshold",))


def _said(caught, code):
    return [w for w in caught if str(w.message).startswith(code)]


def _points_here(caught, code):
    """The warnings `code` point at the user's line (this file), whatever the path
    inside the package and Keras (`keras_adamixup._stack.user_level`)."""
    assert {w.filename for w in caught if str(w.message).startswith(code)} == {__file__}


CASES = {name.upper(): fn for name, fn in list(globals().items())
         if re.fullmatch(r"e\d\d", name)}


def test_error_table_and_tests_agree():
    ids = re.findall(r"^\| (E\d\d) \|", ERRORS.read_text(encoding="utf-8"), flags=re.M)
    assert len(ids) == len(set(ids))
    assert sorted(ids) == sorted(CASES)
    # each case checks that its error's message starts with (or holds) its id
    for error_id, fn in CASES.items():
        assert f"{error_id}: " in inspect.getsource(fn), error_id


@pytest.mark.parametrize("error_id", sorted(CASES))
def test_documented_error(error_id, request):
    fn = CASES[error_id]
    names = fn.__code__.co_varnames[:fn.__code__.co_argcount]
    fn(*(request.getfixturevalue(n) for n in names))
