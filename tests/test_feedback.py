"""The feedback-schedule protocol (`schedules/feedback.py`) and saved models of 0.1."""

import json
import math
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf
from packaging.version import Version

import keras_adamixup
from keras_adamixup import schedules
from keras_adamixup.schedules import FeedbackSchedule, Measurement
from tests.conftest import SPARSE_CE, small_mlp

DATA = pathlib.Path(__file__).parent / "data"


@keras.saving.register_keras_serializable(package="keras_adamixup_tests")
class StepUp(FeedbackSchedule):
    """Up by `step` while the monitored AUC is above `target`, down otherwise."""

    strength_key = "strength"

    def __init__(self, target=0.55, step=0.1):
        self.target, self.step = target, step

    def init_state(self):
        return {"strength": (0.0, "float32"), "measurements": (0, "int64")}

    def update_state(self, state, measurement):
        move = self.step if measurement.auc > self.target else -self.step
        return {"strength": float(np.clip(state["strength"] + move, 0.0, 0.5)),
                "measurements": state["measurements"] + 1}

    def value_bounds(self):
        return (0.0, 0.5)

    def get_config(self):
        return {"target": self.target, "step": self.step}


def test_update_state_is_pure_and_update_writes_the_state():
    schedule = StepUp()
    state = {"strength": 0.2, "measurements": 3}
    assert schedule.update_state(state, Measurement(auc=0.6)) == {
        "strength": pytest.approx(0.3), "measurements": 4}
    assert state == {"strength": 0.2, "measurements": 3}  # not modified
    with pytest.raises(ValueError, match="has no state"):
        schedule.update(Measurement(auc=0.6))
    keras_adamixup.AdaMixupModel(small_mlp(), schedule=schedule)  # the model owns the state
    assert schedule.update(Measurement(auc=0.6)) == pytest.approx(0.1)
    assert schedule.state() == {"strength": pytest.approx(0.1), "measurements": 1}
    assert float(schedule(tf.constant(0, tf.int64), tf.constant(-1, tf.int64))) == \
        pytest.approx(0.1)
    schedule.reset_state()
    assert schedule.state() == {"strength": 0.0, "measurements": 0}
    with pytest.raises(TypeError, match="must be a Measurement"):
        schedule.update(0.6)
    with pytest.raises(ValueError, match="NaN"):
        Measurement(auc=math.nan)


def test_a_custom_feedback_schedule_is_driven_by_the_monitor_and_saved(digits, tmp_path):
    (x, y), (xt, yt) = digits
    model = keras_adamixup.AdaMixupModel(small_mlp(), schedule=StepUp(target=0.5), seed=0)
    model.compile("adam", SPARSE_CE)
    with pytest.raises(ValueError, match="no monitor was given"):
        model.fit(x[:256], y[:256], epochs=1, verbose=0)
    monitor = keras_adamixup.PrivacyMonitor.from_training(x[:600], y[:600], (xt, yt))
    assert isinstance(monitor, schedules.ScheduleDriver)
    history = model.fit(x[:600], y[:600], epochs=3, batch_size=64, callbacks=[monitor],
                        verbose=0)
    assert model.schedule.state()["measurements"] == 3
    assert history.history["controller_strength"][-1] == pytest.approx(
        model.schedule.state()["strength"])
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert isinstance(loaded.schedule, StepUp)
    assert loaded.schedule.state() == model.schedule.state()


SAVED_WITH_KERAS = "3.15"  # the fixtures' Keras: older Keras cannot read its Dense configs


@pytest.mark.skipif(
    Version(keras.__version__) < Version(SAVED_WITH_KERAS),
    reason=f"the fixtures were saved with Keras {SAVED_WITH_KERAS}; older Keras cannot read "
           "newer layer configs (Dense's `quantization_config`), whatever the package version")
def test_models_saved_by_version_0_1_keep_loading(digits):
    """Saved before the schedules package (keras_adamixup/privacy_target.py,
    keras_adamixup/schedules.py): same class, state and predictions."""
    (x, _), _ = digits
    from sklearn.datasets import load_digits

    data = (load_digits().data / 16.0).astype("float32")[:20]
    expected = np.load(DATA / "saved_0.1_predictions.npy")
    target = keras.saving.load_model(DATA / "privacy_target_0.1.keras")
    linear = keras.saving.load_model(DATA / "linear_decay_0.1.keras")
    assert isinstance(target.schedule, schedules.PrivacyTarget)
    assert isinstance(linear.schedule, schedules.LinearDecay)
    assert target.schedule.max_accuracy_drop == 0.01 and target.schedule.backoff_patience == 3
    saved_state = json.loads((DATA / "privacy_target_0.1_state.json").read_text())
    for name, value in target.schedule.state().items():
        assert (value is None or math.isnan(value)) if saved_state[name] is None else \
            value == pytest.approx(saved_state[name]), name
    assert int(target.mixup_step.value) == 39 and int(linear.mixup_step.value) == 26
    np.testing.assert_allclose(target.predict(data, verbose=0), expected[0], rtol=1e-5,
                               atol=1e-5)
    np.testing.assert_allclose(linear.predict(data, verbose=0), expected[1], rtol=1e-5,
                               atol=1e-5)


def test_schedule_modules_import_without_a_cycle():
    import subprocess
    import sys

    # one interpreter (TensorFlow imported once); each module imported first
    # with no keras_adamixup module loaded, as a fresh process would
    script = (
        "import importlib, sys, tensorflow, keras\n"
        "for module in ('keras_adamixup.schedules.privacy_target',\n"
        "               'keras_adamixup.schedules.base', 'keras_adamixup.schedules.feedback',\n"
        "               'keras_adamixup.monitor'):\n"
        "    for name in [n for n in sys.modules if n.startswith('keras_adamixup')]:\n"
        "        del sys.modules[name]\n"
        "    importlib.import_module(module)\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
