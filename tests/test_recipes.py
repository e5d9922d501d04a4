"""The table of recipes (`keras_adamixup.recipes`) shared by the demo, examples and benchmarks."""

import json

import keras
import numpy as np
import pytest

import keras_adamixup
from keras_adamixup import recipes, schedules
from benchmarks import names
from tests.conftest import small_mlp


def _setting(digits, **kwargs):
    (x, y), (xt, yt) = digits
    defaults = {"base": lambda: small_mlp(hidden=16), "holdout": (xt[:128], yt[:128]),
                "fit_kwargs": {"epochs": 2, "batch_size": 32, "verbose": 0}}
    return recipes.Setting(**{**defaults, **kwargs})


def _callbacks(recipe, x, y):
    return [type(c).__name__ for c in recipe.fit_arguments(x, y).get("callbacks", [])]


def test_every_entry_builds_a_compiled_model_with_its_callbacks(digits):
    (x, y), _ = digits
    setting = _setting(digits)
    expected = {"undefended": [], "early_stopping": ["EarlyStopping"],
                "checkpoint": ["PrivacyMonitor", "PrivacyCheckpoint"], "adamixup": [],
                "split_teachers": ["PrivacyMonitor", "PrivacyCheckpoint"],
                "recommended": ["PrivacyMonitor", "PrivacyCheckpoint"]}
    assert set(expected) <= set(recipes.RECIPES)
    for key, callbacks in expected.items():
        recipe = recipes.recipe(key, setting)
        model = recipe.factory()
        assert recipe.name == key and model.compiled, key
        assert _callbacks(recipe, x[:200], y[:200]) == callbacks, key
        assert (recipe.describe is not None) == ("PrivacyCheckpoint" in callbacks), key
    # no callbacks: plain fit arguments, so the recipe's shadows can train together
    assert recipes.undefended(setting).fit_kwargs == setting.fit_kwargs
    stopped = recipes.early_stopping(setting, patience=4).fit_arguments(x, y)
    assert stopped["validation_data"] is setting.holdout
    assert stopped["callbacks"][0].patience == 4
    # with monitor=True every model logs its leakage, first among its callbacks
    watched = _setting(digits, monitor=True)
    assert _callbacks(recipes.undefended(watched), x, y) == ["PrivacyMonitor"]
    assert _callbacks(recipes.early_stopping(watched), x, y) == ["PrivacyMonitor",
                                                                  "EarlyStopping"]


def test_callbacks_are_fresh_for_every_model_and_bound_to_their_monitor(digits):
    (x, y), _ = digits
    recipe = recipes.recipe("recommended", _setting(digits))
    first, second = recipe.fit_arguments(x, y), recipe.fit_arguments(x[:600], y[:600])
    assert first["callbacks"][0] is not second["callbacks"][0]
    for kwargs in (first, second):
        monitor, checkpoint = kwargs["callbacks"]
        assert checkpoint.monitor is monitor
        assert (checkpoint.patience, checkpoint.max_accuracy_drop) == (
            keras_adamixup.recommended.CHECKPOINT["patience"],
            keras_adamixup.recommended.CHECKPOINT["max_accuracy_drop"])


def test_fit_arguments_fingerprint_tells_recipes_apart(digits):
    """LiRA's shadow cache checks the fit arguments' fingerprint: one per recipe kind."""
    from keras_adamixup.audit import lira

    setting = _setting(digits, monitor=True)
    prints = {key: lira.describe_recipe(setting.plain, recipes.recipe(key, setting).fit_kwargs)
              ["fit_kwargs"] for key in ("undefended", "early_stopping", "checkpoint")}
    assert len({json.dumps(p, sort_keys=True) for p in prints.values()}) == 3
    again = recipes.recipe("early_stopping", _setting(digits, monitor=True)).fit_kwargs
    assert lira.describe_recipe(setting.plain, again)["fit_kwargs"] == prints["early_stopping"]
    longer = _setting(digits, monitor=True, fit_kwargs={"epochs": 3, "batch_size": 32})
    assert recipes.undefended(longer).fit_kwargs.fingerprint() != \
        recipes.undefended(setting).fit_kwargs.fingerprint()


def test_public_rows_reach_fit_and_the_fingerprint(digits):
    (x, y), (xt, _) = digits
    setting = _setting(digits)
    public = xt[128:160]
    made = recipes.recipe("recommended", setting, unlabelled=public)
    assert made.fit_arguments(x, y)["unlabelled"] is public
    alone = recipes.recipe("split_teachers", setting, unlabelled=public, checkpoint=False)
    assert alone.fit_arguments(x, y)["unlabelled"] is public
    prints = {json.dumps(r.fit_kwargs.fingerprint(), sort_keys=True) for r in (
        made, recipes.recipe("recommended", setting),
        recipes.recipe("recommended", setting, unlabelled=xt[160:192]))}
    assert len(prints) == 3
    with pytest.raises(ValueError, match="SplitTeachers"):
        recipes.adamixup(setting, unlabelled=public)


def test_options_reach_the_model(digits):
    setting = _setting(digits, seed=3)
    teachers = recipes.recipe("split_teachers", setting, teachers=4, exclude=1, mixing="paper",
                              checkpoint=False, teacher_args={"patience": None},
                              features="swap").factory()
    assert isinstance(teachers.targets, keras_adamixup.SplitTeachers)
    assert (teachers.targets.teachers, teachers.targets.exclude, teachers.targets.patience) == (
        4, 1, None)
    assert isinstance(teachers.schedule, schedules.LinearDecay) and teachers.features == "swap"
    assert teachers.targets.seed == 3
    alone = recipes.split_teachers(setting).factory()
    # split teachers alone: no mixing
    assert isinstance(alone.schedule, schedules.Constant) and alone.schedule.value == 0.0
    # a feedback schedule given as a factory: one per model
    recipe = recipes.adamixup(setting, schedule=lambda: schedules.PrivacyTarget(0.55),
                              label_mode="soft")
    a, b = recipe.factory(), recipe.factory()
    assert isinstance(a.schedule, schedules.PrivacyTarget) and a.schedule is not b.schedule
    assert a.label_mode == "soft"
    with pytest.raises(ValueError, match="mixing"):
        recipes.split_teachers(setting, mixing="cosine")
    # a checkpoint of its own: PrivacyCheckpoint's arguments
    (x, y), _ = digits
    own = recipes.split_teachers(setting, checkpoint={"score": "accuracy", "patience": 10})
    kept = own.fit_arguments(x, y)["callbacks"][1]
    assert (kept.score, kept.patience, kept.max_accuracy_drop) == ("accuracy", 10, None)
    with pytest.raises(TypeError, match="restore_best_weights"):
        recipes.split_teachers(setting, checkpoint={"restore_best_weights": True})
    with pytest.raises(TypeError, match="checkpoint"):
        recipes.adamixup(setting, checkpoint="loss")


def test_recommended_entry_is_split_teachers_with_plateau_mixing(digits):
    """`recommended` and ``split_teachers(mixing="plateau", features="auto")`` build the
    same model: the benchmarks' ``teachers_plateau_pat3_8_1_ckpt`` rows are the
    recommended setting's as long as this holds (``teachers_plateau_16_2_ckpt``, 16
    teachers with patience 5, were until 2026-12-06, then ``teachers_plateau_pat3_16_2_ckpt``
    for a day), and ``teachers_plateau_compute1_2_1_ckpt`` those of ``budget=2.0``."""
    setting = _setting(digits)
    recommended = recipes.recipe("recommended", setting).factory()
    spelled = recipes.recipe("split_teachers", setting, mixing="plateau", teachers=8,
                             exclude=1, features="auto",
                             teacher_args={"patience": 3}).factory()
    unlimited = recipes.recipe("recommended", setting, budget=2.0).factory()
    spelled_unlimited = recipes.recipe("split_teachers", setting, mixing="plateau",
                                       features="auto", teachers=2, exclude=1,
                                       teacher_args={"compute": 1.0}).factory()
    # the wrapper's configuration (schedule, targets, labels, features, ...); both wrap
    # setting.base(). The recommended model also carries its own checkpoint settings, for a
    # fit without a monitor; a recipe gives one (below), which turns them off, so both keep
    # their epoch with the same PrivacyCheckpoint callback.
    config = lambda m: {k: v for k, v in m.get_config().items()
                        if k not in ("name", "base_model", "checkpoint")}
    assert keras.saving.serialize_keras_object(config(recommended)) == \
        keras.saving.serialize_keras_object(config(spelled))
    assert keras.saving.serialize_keras_object(config(unlimited)) == \
        keras.saving.serialize_keras_object(config(spelled_unlimited))
    assert getattr(recommended, "checkpoint", None) in (
        None, keras_adamixup.recommended.CHECKPOINT)
    (x, y), _ = digits
    kept = [recipes.recipe(key, setting, **options).fit_arguments(x, y)["callbacks"]
            for key, options in (("recommended", {}), ("split_teachers", {"mixing": "plateau"}))]
    assert [[type(c).__name__ for c in callbacks] for callbacks in kept] == [
        ["PrivacyMonitor", "PrivacyCheckpoint"]] * 2
    settings = lambda c: [getattr(c, key) for key in recipes.CHECKPOINT_KEYS]
    assert settings(kept[0][1]) == settings(kept[1][1])
    unstopped = recipes.recipe("recommended", setting, checkpoint=False, trajectory="t.png")
    assert _callbacks(unstopped, x, y) == ["PrivacyMonitor"]  # it drives PlateauDecay
    assert unstopped.describe is not None  # the trajectory is still plotted
    # a feedback schedule brings its monitor, with or without a checkpoint
    assert _callbacks(recipes.split_teachers(setting, mixing="plateau", checkpoint=False), x,
                      y) == ["PrivacyMonitor"]
    assert _callbacks(recipes.split_teachers(setting, checkpoint=False), x, y) == []
    assert names.parse("teachers_plateau_16_2_ckpt") == (
        "split_teachers", {"teachers": 16, "exclude": 2, "mixing": "plateau",
                           "checkpoint": True, "features": "auto", "teacher_args": {
                               "select_epoch": "loss",
                               "near_duplicates": "auto",
                               "patience": 5, "weigh_groups": True}})


def test_table_checks_its_arguments(digits):
    setting = _setting(digits)
    with pytest.raises(ValueError, match="Unknown recipe 'mixup'"):
        recipes.recipe("mixup", setting)
    with pytest.raises(TypeError, match="Setting"):
        recipes.recipe("undefended", {"base": small_mlp})
    with pytest.raises(TypeError, match="base"):
        recipes.Setting(base=small_mlp(), fit_kwargs={}, holdout=None)
    with pytest.raises(TypeError, match="fit_kwargs"):
        recipes.Setting(base=small_mlp, fit_kwargs=[("epochs", 1)], holdout=None)
    with pytest.raises(ValueError, match="Setting.base"):
        recipes.adamixup(recipes.Setting(base=None, fit_kwargs={}, holdout=None))
    with pytest.raises(ValueError, match="package's recipes"):
        recipes.register("recommended", lambda setting, name="x": None)
    with pytest.raises(TypeError, match="function"):
        recipes.register("mine", "not a builder")


def test_register_adds_and_replaces_a_recipe(digits):
    def smoothed(setting, *, name="smoothed"):
        return recipes.undefended(setting, name=name, factory=setting.plain)

    try:
        recipes.register("smoothed", smoothed)
        recipes.register("smoothed", smoothed)  # again (a reloaded module): replaced
        assert recipes.recipe("smoothed", _setting(digits)).name == "smoothed"
    finally:
        recipes.RECIPES.pop("smoothed", None)


def test_a_recipe_from_the_table_trains_and_keeps_an_epoch(digits):
    (x, y), _ = digits
    recipe = recipes.recipe("split_teachers", _setting(digits), teachers=2, exclude=1)
    keras.utils.set_random_seed(0)
    model = recipe.factory()
    kwargs = recipe.fit_arguments(x[:300], y[:300])
    history = model.fit(x[:300], y[:300], **kwargs)
    line = recipe.describe(model, history, kwargs)
    assert line.startswith("checkpoint: kept epoch") and np.isfinite(history.history["loss"]).all()

