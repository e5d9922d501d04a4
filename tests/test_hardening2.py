"""Regression tests of the second hostile-user round (docs/HARDENING.md, second table).

Each test names its row (#1 ...). Cases that end in a documented error are
rows of the error table (docs/guide/errors.md) and live in tests/test_errors.py; the
command line's are in tests/test_cli.py.
"""

import os
import subprocess
import sys
import warnings

import keras
import numpy as np
import pytest

import keras_adamixup
from keras_adamixup import PrivacyCheckpoint, PrivacyMonitor, SplitTeachers, audit, predictions
from tests.conftest import SPARSE_CE, cluster_mlp, cluster_student, clusters, small_mlp


def _student(teachers, base=None, schedule=0.0, **kwargs):
    return cluster_student(teachers, base, schedule, metrics=["accuracy"], **kwargs)


def _count_teacher_runs(monkeypatch, teachers):
    runs = []
    original = teachers.fit

    def counted(*args, **kwargs):
        runs.append(len(args[2]))
        return original(*args, **kwargs)

    monkeypatch.setattr(teachers, "fit", counted)
    return runs


def test_1_teachers_never_see_the_validation_rows(monkeypatch):
    x, y = clusters(200)
    teachers = SplitTeachers(4, 1, seed=0)
    runs = _count_teacher_runs(monkeypatch, teachers)
    model = _student(teachers)
    history = model.fit(x, y, validation_split=0.25, epochs=3, batch_size=32, verbose=0)
    assert runs == [150]  # the first 150 rows, as Keras splits: the last 50 validate
    assert model.teacher_soft_labels.shape == (150, 3)
    # validation is measured on the held-out rows with their true labels
    _, accuracy = model.evaluate(x[150:], y[150:], verbose=0)
    assert history.history["val_accuracy"][-1] == pytest.approx(accuracy, abs=1e-6)


@pytest.mark.parametrize("how, together", [
    ("class_weight", "auto"), ("sample_weight", "auto"),
    pytest.param("class_weight", False, marks=pytest.mark.slow)])  # teachers one by one
def test_2_teachers_train_with_the_students_weights(how, together):
    """Class 0 weighted 0: the teachers never learn it, so its soft labels lose it."""
    keras.utils.set_random_seed(0)
    x, y = clusters(240)
    weights = {"class_weight": {0: 0.0, 1: 1.0, 2: 1.0}} if how == "class_weight" else {
        "sample_weight": (y != 0).astype("float32")}
    plain = _student(SplitTeachers(4, 1, seed=0, together=together))
    plain.fit(x, y, epochs=6, batch_size=32, verbose=0)
    weighted = _student(SplitTeachers(4, 1, seed=0, together=together))
    weighted.fit(x, y, epochs=6, batch_size=32, verbose=0, **weights)
    zero = y == 0
    kept, lost = (m.teacher_soft_labels[zero, 0].mean() for m in (plain, weighted))
    assert kept > 0.6 and lost < kept - 0.3, (kept, lost)


def test_2_class_and_sample_weight_together_are_refused():
    x, y = clusters(60)
    model = _student(SplitTeachers(2, 1, seed=0))
    with pytest.raises(ValueError, match="cannot use `class_weight` and `sample_weight`"):
        model.fit(x, y, class_weight={0: 1.0}, sample_weight=np.ones(60), verbose=0)


def test_3_continued_fits_keep_the_teachers(monkeypatch, tmp_path):
    x, y = clusters(240, seed=2)
    xt, yt = (part[200:] for part in clusters(300, seed=2))  # more of the same clusters
    teachers = SplitTeachers(4, 1, seed=0, epochs=10)
    runs = _count_teacher_runs(monkeypatch, teachers)
    loop = _student(teachers)
    for _ in range(10):
        loop.fit(x, y, epochs=1, batch_size=32, verbose=0)
    assert runs == [240]  # trained once, reused by the nine later calls
    once = _student(SplitTeachers(4, 1, seed=0))
    once.fit(x, y, epochs=10, batch_size=32, verbose=0)
    acc_loop = loop.evaluate(xt, yt, verbose=0)[1]
    acc_once = once.evaluate(xt, yt, verbose=0)[1]
    assert acc_loop > 0.85 and acc_loop > acc_once - 0.05, (acc_loop, acc_once)
    # other data: the teachers train again
    loop.fit(x[:200], y[:200], epochs=1, batch_size=32, verbose=0)
    assert runs == [240, 200]
    # the soft labels are saved with the model and reused after loading
    loop.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded.teacher_soft_labels, loop.teacher_soft_labels)
    loaded_runs = _count_teacher_runs(monkeypatch, loaded.targets)
    loaded.fit(x[:200], y[:200], epochs=1, batch_size=32, verbose=0)
    assert loaded_runs == []


def _functional_softmax_op():
    inputs = keras.Input((8,))
    logits = keras.layers.Dense(3)(keras.layers.Dense(16, activation="relu")(inputs))
    return keras.Model(inputs, keras.ops.softmax(logits))


@keras.saving.register_keras_serializable(package="tests")
class SoftmaxInCall(keras.Model):
    """A subclassed model whose softmax is inside `call`; a sigmoid sublayer is created last."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.hidden = keras.layers.Dense(16, activation="relu")
        self.head = keras.layers.Dense(3)
        self.unused = keras.layers.Dense(1, activation="sigmoid")

    def call(self, x):
        return keras.ops.softmax(self.head(self.hidden(x)))


@keras.saving.register_keras_serializable(package="tests")
class LogitsWithSigmoidSublayer(SoftmaxInCall):
    def call(self, x):
        return self.head(self.hidden(x))


def _trained(model, x, y):
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=20, batch_size=32, verbose=0)
    return model


class SoftmaxDense(keras.layers.Dense):
    """A Dense whose `activation` attribute says linear but whose `call` ends in a softmax."""

    def call(self, x):
        return keras.ops.softmax(super().call(x))


def _sequential_with_a_disguised_softmax():
    return keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                             SoftmaxDense(3)])


@pytest.mark.parametrize("make", [_functional_softmax_op, SoftmaxInCall,
                                  _sequential_with_a_disguised_softmax])
def test_4_probabilities_made_after_the_last_layer_are_read_as_probabilities(make):
    x, y = clusters(300, seed=1)
    model = _trained(make(), x[:200], y[:200])
    probs = keras.ops.convert_to_numpy(model(x[:200]))
    expected_loss = float(np.mean(-np.log(probs[np.arange(200), y[:200]])))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = audit.run_audit(model, (x[:200], y[:200]), (x[200:], y[200:]),
                                 attacks=("threshold",), slices=("entire",),
                                 label_only_noise=None)
    assert report.metadata["output_kind"] == "probabilities"
    assert report.utility["train_loss"] == pytest.approx(expected_loss, rel=1e-4)
    conflicts = [w for w in caught if issubclass(w.category, predictions.OutputKindWarning)]
    if make is _sequential_with_a_disguised_softmax:  # the layer says logits: warned, values win
        assert conflicts and report.metadata["output_kind_evidence"] == (
            "values (the last layer says logits)")
    else:  # an op after the last layer, or a subclassed model: the layers are no evidence
        assert not conflicts and report.metadata["output_kind_evidence"] == "values"
    # the monitor's hold-out loss is read the same way
    monitor = PrivacyMonitor((x[:150], y[:150]), (x[200:], y[200:]))
    monitor.set_model(model)
    holdout = keras.ops.convert_to_numpy(model(x[200:]))
    assert monitor.measure()["holdout_loss"] == pytest.approx(
        float(np.mean(-np.log(holdout[np.arange(100), y[200:]]))), rel=1e-4)


def test_12_subclassed_logits_with_a_sigmoid_sublayer_created_last_are_logits():
    x, y = clusters(300, seed=1)
    model = LogitsWithSigmoidSublayer()
    model.compile(keras.optimizers.Adam(1e-2), SPARSE_CE)
    model.fit(x[:200], y[:200], epochs=5, batch_size=32, verbose=0)
    assert predictions.model_output_kind(model) == "auto"
    report = audit.run_audit(model, (x[:200], y[:200]), (x[200:], y[200:]),
                             attacks=("threshold",), slices=("entire",), label_only_noise=None)
    assert report.metadata["output_kind"] == "logits"


def _monitor_fit_data():
    x, y = clusters(600, seed=3)
    return (x[:400], y[:400]), (x[400:], y[400:])


def test_5_checkpoint_refuses_a_monitor_outside_this_fit():
    (x, y), (xv, yv) = _monitor_fit_data()
    model = keras_adamixup.AdaMixupModel(cluster_mlp(), schedule=0.1, seed=0)
    model.compile("adam", SPARSE_CE)
    monitor = PrivacyMonitor((x[:150], y[:150]), (xv[:150], yv[:150]))
    with pytest.raises(ValueError, match="is not among this fit's callbacks"):
        model.fit(x, y, epochs=2, verbose=0, callbacks=[PrivacyCheckpoint(monitor)])
    other = keras_adamixup.AdaMixupModel(cluster_mlp(), schedule=0.1, seed=0, name="other")
    other.compile("adam", SPARSE_CE)
    other.fit(x, y, epochs=1, verbose=0, callbacks=[monitor])
    with pytest.raises(ValueError, match="measures another model \\('other'"):
        model.fit(x, y, epochs=2, verbose=0, callbacks=[PrivacyCheckpoint(monitor)])
    # in the same fit it works, in any order
    checkpoint = PrivacyCheckpoint(monitor)
    model.fit(x, y, epochs=2, verbose=0, callbacks=[checkpoint, monitor])
    assert checkpoint.best_epoch is not None


def test_6_monitor_sides_are_checked_against_the_training_rows():
    (x, y), (xv, yv) = _monitor_fit_data()
    model = keras_adamixup.AdaMixupModel(cluster_mlp(), schedule=0.1, seed=0)
    model.compile("adam", SPARSE_CE)
    drawn_from_training = PrivacyMonitor((x[:150], y[:150]), (x[200:350], y[200:350]))
    with pytest.raises(ValueError, match="150 of the monitor's 150 non-members are rows"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[drawn_from_training])
    # float64 copies of the rows are the same rows
    as_float64 = PrivacyMonitor((x[:150], y[:150]), (x[200:350].astype("float64"),
                                                     y[200:350]))
    with pytest.raises(ValueError, match="non-members are rows"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[as_float64])
    # members in the validation part of `validation_split` were never trained on
    late = PrivacyMonitor((x[250:], y[250:]), (xv, yv))
    with pytest.raises(ValueError, match="100 of the monitor's 150 members are not rows"):
        model.fit(x, y, validation_split=0.25, epochs=1, verbose=0, callbacks=[late])
    proper = PrivacyMonitor((x[:150], y[:150]), (xv, yv))
    model.fit(x, y, validation_split=0.25, epochs=1, verbose=0, callbacks=[proper])
    assert len(proper.records) == 1


def test_7_reference_epoch_beyond_the_fit_warns():
    (x, y), (xv, yv) = _monitor_fit_data()
    model = cluster_mlp()
    model.compile("adam", SPARSE_CE)
    monitor = PrivacyMonitor((x[:150], y[:150]), (xv, yv), signal="trajectory",
                             reference_epoch=20)
    with pytest.warns(keras_adamixup.monitor.SignalWarning, match="reference_epoch=20"):
        model.fit(x, y, epochs=3, verbose=0, callbacks=[monitor])
    fine = PrivacyMonitor((x[:150], y[:150]), (xv, yv), signal="trajectory", reference_epoch=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", keras_adamixup.monitor.SignalWarning)
        model.fit(x, y, epochs=3, verbose=0, callbacks=[fine])
    assert "trajectory_auc" in fine.records[-1]


@pytest.mark.parametrize("floor", [0.3, "holdout"])
def test_8_loss_floor_mixes_with_split_teachers(floor):
    (x, y), (xv, yv) = _monitor_fit_data()
    model = _student(SplitTeachers(4, 1, seed=0), schedule=0.3,
                     focus=keras_adamixup.LossFloor(floor))
    monitor = PrivacyMonitor((x[:150], y[:150]), (xv, yv))
    history = model.fit(x, y, epochs=5, batch_size=32, verbose=0, callbacks=[monitor])
    assert max(history.history["mixup_focus"]) > 0.2, history.history["mixup_focus"]


def test_8_target_entropy_is_zero_for_labels_and_the_entropy_of_soft_targets():
    from keras_adamixup.focus import target_entropy

    np.testing.assert_allclose(target_entropy(np.array([0, 2, 1])), 0.0)
    np.testing.assert_allclose(target_entropy(np.eye(3, dtype="float32")), 0.0, atol=1e-7)
    soft = np.array([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]], dtype="float32")
    expected = -np.sum(np.where(soft > 0, soft * np.log(np.maximum(soft, 1e-30)), 0), axis=1)
    np.testing.assert_allclose(target_entropy(soft), expected, rtol=1e-6)
    np.testing.assert_allclose(target_entropy(np.array([[0.5]], "float32")), [np.log(2)],
                               rtol=1e-6)


def test_9_a_shadow_cache_with_replaced_outputs_is_refused(digits, tmp_path):
    (x, y), (xt, yt) = digits

    def factory():
        model = small_mlp()
        model.compile("adam", SPARSE_CE)
        return model

    args = dict(attacks=("threshold",), slices=("entire",), label_only_noise=None,
                lira={"model_factory": factory, "num_shadows": 2, "cache_dir": tmp_path,
                      "fit_kwargs": {"epochs": 2}})
    target = factory()
    target.fit(x[:100], y[:100], epochs=2, verbose=0)
    first = audit.run_audit(target, (x[:100], y[:100]), (xt[:100], yt[:100]), **args)
    shadow = tmp_path / "shadow_001.npz"
    with np.load(shadow) as data:
        outputs, mask = data["outputs"], data["mask"]
    random = np.random.default_rng(0).normal(size=outputs.shape)
    np.savez(shadow, outputs=random, mask=mask)  # same shape and keys, other numbers
    with pytest.raises(ValueError, match="shadow_001.npz' does not match the checksum"):
        audit.run_audit(target, (x[:100], y[:100]), (xt[:100], yt[:100]), **args)
    os.remove(shadow)  # what the message says to do: that shadow is trained again
    again = audit.run_audit(target, (x[:100], y[:100]), (xt[:100], yt[:100]), **args)
    assert again.best()["auc"] == pytest.approx(first.best()["auc"], abs=0.05)


def test_11_split_teachers_train_a_model_of_two_inputs_from_dict_arrays():
    x, y = clusters(240)
    a, b = keras.Input((5,), name="a"), keras.Input((3,), name="b")
    hidden = keras.layers.Dense(16, activation="relu")(keras.layers.Concatenate()([a, b]))
    base = keras.Model({"a": a, "b": b}, keras.layers.Dense(3)(hidden))
    model = _student(SplitTeachers(4, 1, seed=0), base=base)
    inputs = {"a": x[:, :5], "b": x[:, 5:]}
    model.fit(inputs, y, epochs=8, batch_size=32, verbose=0)
    soft = model.teacher_soft_labels
    assert soft.shape == (240, 3)
    assert np.mean(soft.argmax(axis=1) == y) > 0.8  # the teachers learned from both inputs
    # a list of arrays for a list-input model works the same way
    listed = keras.Model([a, b], keras.layers.Dense(3)(hidden))
    _student(SplitTeachers(2, 1, seed=0), base=listed).fit(
        [x[:, :5], x[:, 5:]], y, epochs=1, verbose=0)


def test_13_a_single_attack_name_is_one_attack(digits):
    (x, y), (xt, yt) = digits
    model = small_mlp()
    model.compile("adam", SPARSE_CE)
    report = audit.run_audit(model, (x[:100], y[:100]), (xt[:100], yt[:100]),
                             attacks="threshold", slices="entire", label_only_noise=None)
    assert report.metadata["attacks"] == ["threshold"]
    assert audit.AuditOptions(attacks="threshold").attacks == ("threshold",)


def test_14_help_does_not_import_tensorflow():
    code = ("import sys, keras_adamixup_cli\n"
            "for argv in (['--help'], ['audit', '--help'], ['demo', '--help']):\n"
            "    try:\n        keras_adamixup_cli.main(argv)\n"
            "    except SystemExit:\n        pass\n"
            "print('TF', 'tensorflow' in sys.modules, 'keras' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "TF False False"
    assert "recommended setting" in proc.stdout  # demo --help describes today's demo
    for option in ("--out", "--lira-epochs", "--lira-batch-size", "--seed",
                   "--custom-objects"):
        assert option in proc.stdout
    assert "(default: 20)" in proc.stdout and "(default: 0)" in proc.stdout
    assert proc.stderr == ""  # no TensorFlow start-up lines
