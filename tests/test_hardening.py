"""Regression tests of the hostile-user findings (docs/HARDENING.md lists each case).

Cases that raise a documented error are rows of the error table (docs/guide/errors.md) and
live in tests/test_errors.py; the CLI's one-line errors are in
tests/test_cli.py. Here: the behaviours that are not errors.
"""

import os
import subprocess
import sys
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_adamixup
from keras_adamixup import PrivacyMonitor, audit, predictions
from tests.conftest import SPARSE_CE, small_mlp


def test_single_example_remainder_passes_unmixed_in_every_epoch(digits):
    """65 = 2 × 32 + 1: the remainder of one example, in epoch 2 as in epoch 1."""
    (x, y), _ = digits
    model = keras_adamixup.AdaMixupModel(small_mlp(), seed=0)
    model.compile("adam", SPARSE_CE)
    history = model.fit(x[:65], y[:65], batch_size=32, epochs=3, verbose=0)
    assert len(history.history["loss"]) == 3
    # a first batch of one is still an error (E06)
    with pytest.raises(ValueError, match="first training batch has a single example"):
        model.fit(x[:1], y[:1], batch_size=32, epochs=1, verbose=0)


def test_model_output_kind_from_the_last_activation():
    def net(activation, units=1):
        return keras.Sequential([keras.Input((4,)), keras.layers.Dense(units, activation=activation)])

    assert predictions.model_output_kind(net(None)) == "logits"
    assert predictions.model_output_kind(net("sigmoid")) == "probabilities"
    assert predictions.model_output_kind(net("softmax", 3)) == "probabilities"
    softmax_layer = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3),
                                      keras.layers.Softmax()])
    assert predictions.model_output_kind(softmax_layer) == "probabilities"
    wrapped = keras_adamixup.AdaMixupModel(net(None, 3))
    assert predictions.model_output_kind(wrapped) == "logits"
    assert predictions.model_output_kind(net("relu")) == "auto"


def test_one_column_logits_inside_0_1_are_read_as_logits():
    """Logits in [0, 1] look like probabilities; the model (or `outputs=`) says otherwise."""
    rng = np.random.default_rng(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.set_weights([np.zeros((3, 1)), np.array([0.3])])  # every logit is 0.3
    x = rng.random((60, 3)).astype("float32")
    x2 = rng.random((60, 3)).astype("float32") + 5.0
    y = np.ones(60, int)
    report = audit.run_audit(model, (x, y), (x2, y), attacks=("threshold",),
                             slices=("entire",), label_only_noise=None)
    assert report.metadata["output_kind"] == "logits"
    # σ(0.3) = 0.574 > 0.5: class 1 predicted for every row → accuracy 1
    assert report.utility["train_accuracy"] == 1.0
    expected_loss = -np.log(1.0 / (1.0 + np.exp(-0.3)))
    assert report.utility["train_loss"] == pytest.approx(expected_loss, rel=1e-5)
    # detected from the values alone, the same outputs pass for probabilities
    outputs = np.full((60, 1), 0.3)
    detected = audit.audit_predictions(outputs, y, outputs, y, attacks=("threshold",),
                                       slices=("entire",))
    assert detected.metadata["output_kind"] == "probabilities"
    assert detected.utility["train_accuracy"] == 0.0  # 0.3 < 0.5: the wrong answer
    given = audit.audit_predictions(outputs, y, outputs, y, attacks=("threshold",),
                                    slices=("entire",), outputs="logits")
    assert given.utility["train_accuracy"] == 1.0


def test_monitor_warns_when_nonmembers_are_not_held_out():
    """Swapped sides (training rows given as non-members): AUC far below 0.5 → HoldoutWarning."""
    rng = np.random.default_rng(0)
    x = rng.random((300, 64)).astype("float32")
    y = rng.integers(0, 10, 300)  # random labels: a model can only memorize them
    model = keras_adamixup.AdaMixupModel(
        small_mlp(hidden=256), schedule=keras_adamixup.PrivacyTarget(target_auc=0.55), seed=0)
    model.compile(keras.optimizers.Adam(3e-3), SPARSE_CE)
    monitor = PrivacyMonitor(members=(x[150:], y[150:]), nonmembers=(x[:150], y[:150]))
    # with arrays `fit` sees the swap by digest before training (E14) ...
    with pytest.raises(ValueError, match="150 of the monitor's 150 non-members are rows"):
        model.fit(x[:150], y[:150], epochs=1, callbacks=[monitor], verbose=0)
    # ... with a dataset it cannot: the monitor warns from the AUC
    train = tf.data.Dataset.from_tensor_slices((x[:150], y[:150])).batch(32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(train, epochs=15, callbacks=[monitor], verbose=0)
    aucs = [r["auc"] for r in monitor.records]
    assert max(aucs[-3:]) < 0.4, aucs
    holdout = [w for w in caught if issubclass(w.category, keras_adamixup.monitor.HoldoutWarning)]
    assert len(holdout) == 1 and "probably training rows" in str(holdout[0].message)
    # the controller read it as "no leakage" and switched mixing off: why it warns
    assert monitor.records[-1]["controller_strength"] == 0.0


def test_monitor_is_silent_on_a_proper_holdout(digits):
    (x, y), (xt, yt) = digits
    model = keras_adamixup.AdaMixupModel(small_mlp(), seed=0)
    model.compile("adam", SPARSE_CE)
    monitor = PrivacyMonitor(members=(x[:200], y[:200]), nonmembers=(xt[:200], yt[:200]))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(x[:400], y[:400], epochs=4, batch_size=32, callbacks=[monitor], verbose=0)
    assert not [w for w in caught if issubclass(w.category, keras_adamixup.monitor.HoldoutWarning)]


def test_monitor_accepts_batched_datasets(digits):
    (x, y), (xt, yt) = digits
    members = tf.data.Dataset.from_tensor_slices((x[:150], y[:150])).batch(64)
    nonmembers = tf.data.Dataset.from_tensor_slices((xt[:150], yt[:150])).batch(64)
    model = keras_adamixup.AdaMixupModel(small_mlp(), seed=0)
    model.compile("adam", SPARSE_CE)
    monitor = PrivacyMonitor(members, nonmembers)
    model.fit(x[:300], y[:300], epochs=1, callbacks=[monitor], verbose=0)
    assert len(monitor.records) == 1 and 0.0 <= monitor.records[0]["auc"] <= 1.0


def test_plots_leave_the_callers_matplotlib_backend_alone(digits, tmp_path):
    import matplotlib

    matplotlib.use("svg")  # a caller's choice (a notebook would have its own)
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    history = {"monitor_auc": [0.6, 0.55], "mixup_strength": [0.1, 0.2],
               "controller_strength": [0.1, 0.2]}
    fig = keras_adamixup.monitor.plot_privacy_trajectory(history, tmp_path / "t.png")
    outputs = np.random.default_rng(0).normal(size=(40, 3))
    labels = np.arange(40) % 3
    report = audit.audit_predictions(outputs, labels, outputs + 1.0, labels,
                                     attacks=("threshold",), slices=("entire",))
    report.save(tmp_path / "report")
    audit.compare([report, report], tmp_path / "compare")
    assert matplotlib.get_backend().lower() == "svg"
    assert plt.get_fignums() == before  # no pyplot figures left open (or created)
    assert fig.axes and os.path.getsize(tmp_path / "t.png") > 0
    assert os.path.getsize(tmp_path / "report" / "roc.png") > 0


def test_import_without_scikit_learn_or_the_audit():
    """`pip install .` without [audit]: the core imports and trains with a monitor."""
    code = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('sklearn', 'tensorflow_privacy', 'pandas', 'matplotlib'):
            raise ImportError('blocked ' + name)
sys.meta_path.insert(0, Block())
import numpy as np, keras, keras_adamixup
assert 'keras_adamixup.audit' not in sys.modules
rng = np.random.default_rng(0)
x = rng.random((300, 8)).astype('float32'); y = rng.integers(0, 3, 300)
model = keras_adamixup.AdaMixupModel(
    keras.Sequential([keras.Input((8,)), keras.layers.Dense(3)]),
    schedule=keras_adamixup.PrivacyTarget(), seed=0)
model.compile('adam', keras.losses.SparseCategoricalCrossentropy(from_logits=True))
monitor = keras_adamixup.PrivacyMonitor((x[:100], y[:100]), (x[200:], y[200:]))
model.fit(x[:200], y[:200], epochs=1, callbacks=[monitor], verbose=0)
assert not any(m.split('.')[0] in ('sklearn', 'keras_adamixup.audit') for m in sys.modules)
print('OK', monitor.records[0]['auc'])
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert proc.returncode == 0 and "OK" in proc.stdout, proc.stderr[-3000:]


def test_training_core_does_not_reach_into_keras_internals():
    """Public Keras APIs only, but for the one compatibility module (keras#20585)."""
    import pathlib

    root = pathlib.Path(keras_adamixup.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for needle in ("keras.src", "_compute_loss", "_loss_tracker", "_distribute_strategy",
                       "_maybe_symbolic_build"):
            if needle in text and not (path.name in ("_compat.py", "model.py")
                                       and needle == "_maybe_symbolic_build"):
                offenders.append(f"{path.relative_to(root)}: {needle}")
    assert not offenders


def test_roc_auc_matches_scikit_learn():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    for _ in range(5):
        m, n = rng.integers(0, 7, 90).astype(float), rng.normal(2, 2, 70).round()
        truth = np.r_[np.ones(len(m)), np.zeros(len(n))]
        assert predictions.roc_auc(m, n) == pytest.approx(roc_auc_score(truth, np.r_[m, n]))


def test_argument_checks_follow_one_rule():
    """Wrong type → TypeError; right type, wrong value → ValueError; the argument is named."""
    from keras_adamixup import _checks

    for bad_type in ("0.3", True, None, [0.3]):
        with pytest.raises(TypeError, match="`x` must be a number"):
            _checks.number("x", bad_type, 0.0, 1.0)
    for bad_value in (float("nan"), float("inf"), -0.1, 1.5):
        with pytest.raises(ValueError, match="`x` must be"):
            _checks.number("x", bad_value, 0.0, 1.0)
    with pytest.raises(TypeError, match="`n` must be an int"):
        _checks.positive_int("n", 2.0)
    with pytest.raises(TypeError, match="`n` must be an int"):
        _checks.positive_int("n", True)
    with pytest.raises(ValueError, match="`n` must be ≥ 1"):
        _checks.positive_int("n", 0)
    with pytest.raises(TypeError, match="`mode` must be one of"):
        _checks.choice("mode", 3, ("a", "b"))
    with pytest.raises(ValueError, match="`mode` must be one of"):
        _checks.choice("mode", "c", ("a", "b"))
    # the same rule through the public API
    with pytest.raises(TypeError, match="`every_epochs` must be an int"):
        PrivacyMonitor((np.zeros((100, 2)), np.zeros(100)), (np.ones((100, 2)), np.zeros(100)),
                       every_epochs="1")
    with pytest.raises(ValueError, match="`every_epochs` must be ≥ 1"):
        PrivacyMonitor((np.zeros((100, 2)), np.zeros(100)), (np.ones((100, 2)), np.zeros(100)),
                       every_epochs=0)
