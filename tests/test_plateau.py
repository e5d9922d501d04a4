"""`schedules.PlateauDecay`: mixing cut when the monitored hold-out loss plateaus."""

import math

import keras
import numpy as np
import pytest

import keras_adamixup
from keras_adamixup.schedules import Measurement, PlateauDecay
from tests.conftest import SPARSE_CE, small_mlp


def run_rule(schedule, losses):
    """The strengths after each loss, by the pure rule alone."""
    state = {name: value for name, (value, _) in schedule.init_state().items()}
    strengths = []
    for loss in losses:
        state = schedule.update_state(state, Measurement(auc=0.6, loss=loss))
        strengths.append(state["plateau_strength"])
    return strengths, state


def test_full_strength_while_the_loss_falls_then_cut_at_each_plateau():
    schedule = PlateauDecay(start=0.4, factor=0.5, patience=2, min_strength=0.1)
    losses = [1.0, 0.8, 0.7, 0.7, 0.75, 0.69, 0.7, 0.71, 0.72, 0.73, 0.74, 0.75]
    strengths, state = run_rule(schedule, losses)
    # falls to 0.7; two without a new best → 0.2; 0.69 is a new best; two more → 0.1;
    # two more → 0.05 < min_strength → 0; then it stays 0
    assert strengths == pytest.approx(
        [0.4, 0.4, 0.4, 0.4, 0.2, 0.2, 0.2, 0.1, 0.1, 0.0, 0.0, 0.0])
    assert state["plateau_cuts"] == 3
    assert state["plateau_best_loss"] == pytest.approx(0.69)


def test_min_delta_and_factor_zero():
    # a fall of 0.005 is not a new best with min_delta=0.01: cut at once (patience 1)
    strengths, _ = run_rule(PlateauDecay(0.3, factor=0.0, min_delta=0.01), [1.0, 0.995])
    assert strengths == [0.3, 0.0]
    strengths, _ = run_rule(PlateauDecay(0.3, factor=0.0, min_delta=0.0), [1.0, 0.995])
    assert strengths == [0.3, 0.3]


def test_needs_a_hold_out_loss_and_checks_its_arguments():
    schedule = PlateauDecay()
    state = {name: value for name, (value, _) in schedule.init_state().items()}
    with pytest.raises(ValueError, match="hold-out loss"):
        schedule.update_state(state, Measurement(auc=0.6))
    with pytest.raises(ValueError, match="hold-out loss"):
        schedule.update_state(state, Measurement(auc=0.6, loss=math.nan))
    with pytest.raises(ValueError, match="factor"):
        PlateauDecay(factor=1.0)
    with pytest.raises(ValueError, match="start"):
        PlateauDecay(start=-0.1)
    with pytest.raises(TypeError, match="patience"):
        PlateauDecay(patience=1.5)
    with pytest.raises(ValueError, match="patience"):
        PlateauDecay(patience=0)
    config = PlateauDecay(0.3, 0.25, 3, 0.01, 0.05).get_config()
    assert PlateauDecay.from_config(config).get_config() == config
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(PlateauDecay(0.3, 0.25, 3)))
    assert isinstance(restored, PlateauDecay) and restored.get_config()["factor"] == 0.25


def test_follows_the_measured_loss_in_fit_and_is_saved(digits, tmp_path):
    (x, y), (xt, yt) = digits
    schedule = PlateauDecay(start=0.4, factor=0.5, patience=1, min_delta=0.03)
    model = keras_adamixup.AdaMixupModel(small_mlp(), schedule=schedule, seed=0)
    model.compile(keras.optimizers.Adam(1e-2), SPARSE_CE)
    monitor = keras_adamixup.PrivacyMonitor.from_training(x[:300], y[:300], (xt[:200], yt[:200]),
                                                        seed=0)
    # 300 rows, a large learning rate: the hold-out loss stops falling by 0.03 within 12 epochs
    history = model.fit(x[:300], y[:300], epochs=12, batch_size=32, verbose=0,
                        callbacks=[monitor])
    losses = [record["holdout_loss"] for record in monitor.records]
    expected, state = run_rule(schedule, losses)
    np.testing.assert_allclose(history.history["controller_strength"], expected, atol=1e-6)
    # the strength used in epoch k is the rule's output after epoch k − 1
    np.testing.assert_allclose(history.history["mixup_strength"], [0.4] + expected[:-1],
                               atol=1e-6)
    assert state["plateau_cuts"] >= 1 and expected[-1] < 0.4  # it did cut
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.schedule, PlateauDecay)
    assert loaded.schedule.state() == pytest.approx(schedule.state())


def test_fit_refuses_it_without_a_monitor(digits):
    (x, y), _ = digits
    model = keras_adamixup.AdaMixupModel(small_mlp(), schedule=PlateauDecay(), seed=0)
    model.compile("adam", SPARSE_CE)
    with pytest.raises(ValueError, match="PrivacyMonitor|ScheduleDriver|driver"):
        model.fit(x[:64], y[:64], epochs=1, verbose=0)
