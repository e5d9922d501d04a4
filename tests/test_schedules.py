import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_adamixup import schedules


def value(schedule, step, total=-1):
    return float(schedule(tf.constant(step, tf.int64), tf.constant(total, tf.int64)))


def test_constant():
    s = schedules.Constant(0.25)
    assert [value(s, k) for k in (0, 10, 10**6)] == pytest.approx([0.25] * 3)


def test_linear_decay_values():
    s = schedules.LinearDecay(start=0.4, end=0.1, decay_steps=100)
    got = [value(s, k) for k in (0, 25, 50, 100, 500)]
    assert got == pytest.approx([0.4, 0.325, 0.25, 0.1, 0.1], abs=1e-6)
    rising = schedules.LinearDecay(start=0.0, end=0.4, decay_steps=4)
    assert [value(rising, k) for k in range(6)] == pytest.approx([0, 0.1, 0.2, 0.3, 0.4, 0.4], abs=1e-6)


def test_linear_decay_over_planned_length():
    s = schedules.LinearDecay(start=0.4, end=0.0)
    assert s.needs_total_steps()
    assert value(s, 30, total=120) == pytest.approx(0.3)
    assert value(s, 30, total=-1) == pytest.approx(0.4)  # plan unknown: start value


def test_cosine_decay_values():
    s = schedules.CosineDecay(start=0.4, end=0.0, decay_steps=100)
    got = [value(s, k) for k in (0, 50, 100, 200)]
    assert got == pytest.approx([0.4, 0.2, 0.0, 0.0], abs=1e-6)
    assert value(s, 25) == pytest.approx(0.2 * (1 + np.cos(np.pi / 4)), abs=1e-6)


@pytest.mark.parametrize(
    "schedule",
    [schedules.Constant(0.3), schedules.LinearDecay(0.4, 0.05, 77), schedules.CosineDecay(0.5, 0.1)],
)
def test_config_round_trip(schedule):
    config = keras.saving.serialize_keras_object(schedule)
    restored = keras.saving.deserialize_keras_object(config)
    assert type(restored) is type(schedule)
    assert restored.get_config() == schedule.get_config()
    assert value(restored, 40, 200) == pytest.approx(value(schedule, 40, 200))


def test_get():
    assert isinstance(schedules.get(0.2), schedules.Constant)
    s = schedules.LinearDecay(0.3, 0.0)
    assert schedules.get(s) is s
    assert isinstance(schedules.get(keras.saving.serialize_keras_object(s)), schedules.LinearDecay)
    with pytest.raises(TypeError, match="`schedule` must be"):
        schedules.get("linear")


def test_bad_arguments():
    with pytest.raises(ValueError, match="`value` must be"):
        schedules.Constant(float("nan"))
    with pytest.raises(ValueError, match="`start` must be"):
        schedules.LinearDecay(start=-0.1, end=0.0)
    with pytest.raises(ValueError, match="`decay_steps` must be"):
        schedules.LinearDecay(0.4, 0.0, decay_steps=0)
    with pytest.raises(TypeError, match="`end` must be a number"):
        schedules.CosineDecay(0.4, "low")
    with pytest.raises(NotImplementedError):
        schedules.StrengthSchedule()(tf.constant(0), tf.constant(0))


def test_user_schedule_subclass():
    class StepDown(schedules.StrengthSchedule):
        def __call__(self, step, total_steps):
            return tf.where(step < 10, 0.4, 0.1)

        def get_config(self):
            return {}

    s = StepDown()
    assert value(s, 3) == pytest.approx(0.4) and value(s, 30) == pytest.approx(0.1)
    assert "StepDown()" == repr(s)
