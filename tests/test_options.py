"""Typed audit configuration and the shadow-attack registry (issue 12)."""

import dataclasses

import numpy as np
import pytest

from keras_adamixup import audit
from keras_adamixup.audit import options, registry
from tests.conftest import compile_adam, small_mlp

CHEAP = dict(attacks=("threshold",), slices=("entire",), label_only_noise=None)


def _factory():
    return compile_adam(small_mlp(hidden=16))


def test_audit_options_check_and_override():
    opts = audit.AuditOptions(attacks=["threshold"], seed=3)
    assert opts.attacks == ("threshold",) and opts.seed == 3
    changed = audit.AuditOptions.make(opts, seed=4)
    assert changed.seed == 4 and changed.attacks == ("threshold",) and opts.seed == 3
    with pytest.raises(TypeError, match=r"Unknown audit option\(s\) \['sead'\]"):
        audit.AuditOptions.make(sead=1)
    with pytest.raises(ValueError, match="Unknown attack"):
        audit.AuditOptions(attacks=("lira",))
    with pytest.raises(TypeError, match="`thorough` must be a bool"):
        audit.AuditOptions(thorough="yes")
    with pytest.raises(ValueError, match="`label_only_noise`"):
        audit.AuditOptions(label_only_noise=0.0)
    with pytest.raises(TypeError, match="must be an AuditOptions"):
        audit.AuditOptions.make({"seed": 1})
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.seed = 5


def test_shadow_recipe_from_dicts_and_checks():
    recipe = audit.ShadowRecipe.coerce({"model_factory": _factory, "num_shadows": 4})
    assert recipe.num_shadows == 4 and recipe.together == "auto"
    assert audit.ShadowRecipe.coerce(recipe) is recipe
    with pytest.raises(TypeError, match=r"Unknown LiRA recipe key\(s\) \['shadows'\]"):
        audit.ShadowRecipe.coerce({"model_factory": _factory, "shadows": 4})
    with pytest.raises(ValueError, match="needs a `model_factory`"):
        audit.ShadowRecipe.coerce({"num_shadows": 4})
    with pytest.raises(ValueError, match="even number"):
        audit.ShadowRecipe(_factory, num_shadows=3)
    with pytest.raises(TypeError, match="`fit_kwargs` must be a dict or a function"):
        audit.ShadowRecipe(_factory, fit_kwargs=[("epochs", 2)])
    with pytest.raises(ValueError, match="`augment`"):
        audit.ShadowRecipe(_factory, augment="rotate")
    with pytest.raises(ValueError, match="`rmia_offline_a`"):
        audit.ShadowRecipe(_factory, rmia_offline_a=1.5)
    named = options.shadow_recipes([{"model_factory": _factory},
                                    audit.ShadowRecipe(_factory, name="plain")])
    assert [r.name for r in named] == ["", "plain"]


def test_run_audit_takes_an_options_object_and_keywords_alike(digits):
    (x, y), (xt, yt) = digits
    model = _factory()
    model.fit(x[:200], y[:200], epochs=5, verbose=0)
    members, nonmembers = (x[:200], y[:200]), (xt[:200], yt[:200])
    by_object = audit.run_audit(model, members, nonmembers,
                                options=audit.AuditOptions(**CHEAP))
    by_keyword = audit.run_audit(model, members, nonmembers, **CHEAP)
    assert [(r["attack"], r["auc"]) for r in by_object.attacks] == [
        (r["attack"], r["auc"]) for r in by_keyword.attacks]
    with pytest.raises(TypeError, match="Unknown audit option"):
        audit.run_audit(model, members, nonmembers, attack=("threshold",))


def test_one_registration_adds_a_shadow_attack(digits):
    (x, y), (xt, yt) = digits
    model = _factory()
    model.fit(x[:100], y[:100], epochs=5, verbose=0)
    seen = {}

    @audit.register_shadow_attack("mean_margin")
    def mean_margin(target, shadows, labels, masks, recipe, outputs):
        seen["recipe"] = recipe
        mean_out = np.mean([s[np.arange(len(labels)), labels] for s in shadows], axis=0)
        return {"mean_margin": target[np.arange(len(labels)), labels] - mean_out}

    try:
        report = audit.run_audit(
            model, (x[:100], y[:100]), (xt[:100], yt[:100]), **CHEAP,
            lira=audit.ShadowRecipe(_factory, num_shadows=2, progress=False,
                                    fit_kwargs={"epochs": 5}))
    finally:
        registry.SHADOW_ATTACKS.pop("mean_margin")
    row = {r["attack"]: r for r in report.attacks}["mean_margin"]
    assert row["source"] == "mean_margin" and 0.0 <= row["auc"] <= 1.0
    assert seen["recipe"].num_shadows == 2
    with pytest.raises(ValueError, match="already registered"):
        audit.register_shadow_attack("lira")(lambda *a: {})


def test_progress_bar_counts_every_audit_step(digits, capsys):
    (x, y), (xt, yt) = digits
    model = _factory()
    model.fit(x[:100], y[:100], epochs=3, verbose=0)
    audit.run_audit(model, (x[:100], y[:100]), (xt[:100], yt[:100]), progress=True,
                    attacks=("threshold", "logistic_regression"), slices=("entire", "class"),
                    lira={"model_factory": _factory, "num_shadows": 2, "progress": False,
                          "fit_kwargs": {"epochs": 2}}, name="m")
    err = capsys.readouterr().err
    # outputs, label-only noise, one shadow recipe, logistic regression (fast),
    # threshold on the entire set, threshold on the class slices
    assert "auditing m" in err and "6/6" in err
    audit.run_audit(model, (x[:100], y[:100]), (xt[:100], yt[:100]), **CHEAP)
    assert "auditing" not in capsys.readouterr().err  # off by default
