"""`keras_adamixup.recommended`: the recommended setting, defined once."""

import pytest

import keras_adamixup
from keras_adamixup import recommended, schedules
from tests.conftest import compile_adam, small_mlp


def test_the_model_and_its_callbacks(digits):
    (x, y), (xt, yt) = digits
    first, second = recommended.model(small_mlp(), seed=3), recommended.model(small_mlp())
    assert isinstance(first.schedule, schedules.PlateauDecay)
    assert first.schedule.start == recommended.START
    assert first.schedule is not second.schedule  # a feedback schedule drives one model
    teachers = first.targets  # no budget: 8 teachers, each row left out of 1
    assert (teachers.teachers, teachers.exclude, teachers.seed, teachers.compute,
            teachers.patience) == (8, 1, 3, None, 3)
    budgeted = recommended.model(small_mlp(), budget=2.0).targets
    assert (budgeted.teachers, budgeted.exclude, budgeted.compute,
            budgeted.label_weight) == (2, 1, 1.0, 0.0)
    assert first.features == "auto" and first.label_mode == "dominant"
    named = recommended.model(small_mlp(), seed=1, name="defended",
                              targets=keras_adamixup.SplitTeachers(4, 1, seed=1))
    assert named.name == "defended" and named.targets.teachers == 4
    monitor, checkpoint = recommended.callbacks(x[:300], y[:300], (xt[:200], yt[:200]))
    assert isinstance(monitor, keras_adamixup.PrivacyMonitor)
    assert isinstance(checkpoint, keras_adamixup.PrivacyCheckpoint)
    assert checkpoint.monitor is monitor
    assert (checkpoint.patience, checkpoint.max_accuracy_drop) == (5, 0.01)
    # the student not stopped: the monitor alone, which drives PlateauDecay
    alone = recommended.callbacks(x[:300], y[:300], (xt[:200], yt[:200]), checkpoint=False)
    assert [type(c) for c in alone] == [keras_adamixup.PrivacyMonitor]
    # for the teachers' setting, model= keeps the checkpoint; a checkpoint is a bool
    assert len(recommended.callbacks(x[:300], y[:300], (xt[:200], yt[:200]), model=first)) == 2
    with pytest.raises(TypeError, match="AdaMixupModel the callbacks are for"):
        recommended.callbacks(x[:300], y[:300], (xt[:200], yt[:200]), model=small_mlp())
    with pytest.raises(TypeError, match="checkpoint"):
        recommended.callbacks(x[:300], y[:300], (xt[:200], yt[:200]), checkpoint="no")


def test_it_trains_and_the_strength_follows_the_hold_out(digits):
    (x, y), (xt, yt) = digits
    model = recommended.model(small_mlp(), seed=0,
                              targets=keras_adamixup.SplitTeachers(4, 1, seed=0))
    compile_adam(model, metrics=["accuracy"])
    callbacks = recommended.callbacks(x[:400], y[:400], (xt[:200], yt[:200]))
    history = model.fit(x[:400], y[:400], epochs=4, batch_size=64, verbose=0,
                        callbacks=callbacks)
    assert abs(history.history["mixup_strength"][0] - 0.4) < 1e-6
    assert len(history.history["controller_strength"]) == len(history.history["loss"])
    assert callbacks[1].best_epoch is not None


def test_the_budget_picks_the_most_teachers_whose_epochs_fit_it():
    def plan(budget):
        split = recommended.teachers(budget)
        return split.teachers, split.exclude, split.compute

    assert plan(2.0) == (2, 1, 1.0)      # each epoch of 2 teachers on half the rows: 1
    assert plan(3.0) == (3, 1, 2.0)
    assert plan(5.0) == (4, 1, 4.0)
    assert plan(15.0) == (16, 2, 14.0)
    assert plan(1.5) == (2, 1, 0.5)      # under 2: the teachers train half the epochs
    for wrong in (1.0, 0.5, "2"):
        with pytest.raises((ValueError, TypeError), match="budget"):
            recommended.teachers(wrong)
