"""RMIA and every LiRA variant from one set of shadows (issue 12)."""

import keras
import numpy as np
import pytest

from keras_adamixup import audit
from keras_adamixup import predictions
from keras_adamixup.audit import lira, rmia
from tests.conftest import compile_adam, small_mlp

CLASSES = 10


def _memorizing_outputs(labels, trained, rng):
    """Logits of a model that memorizes its training rows (label prob ≈ 0.99)
    and guesses on the others (label prob ≈ 0.1, noisy)."""
    logits = rng.normal(0.0, 0.5, (len(labels), CLASSES))
    logits[np.arange(len(labels)), labels] += np.where(trained, 7.0, 0.0)
    return logits


def _population(n=400, shadows=8, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, CLASSES, n)
    masks = lira.shadow_masks(shadows, n, seed)
    shadow_outs = [_memorizing_outputs(labels, m, rng) for m in masks]
    members = np.arange(n) < n // 2
    return rng, labels, masks, shadow_outs, members


def _auc(scores, members):
    return predictions.roc_auc(scores[members], scores[~members])


def test_rmia_finds_the_members_of_a_memorizing_model():
    rng, labels, masks, shadow_outs, members = _population()
    target = _memorizing_outputs(labels, members, rng)
    scores = rmia.rmia_scores(target, shadow_outs, labels, masks, outputs="logits")
    assert set(scores) == {"rmia_online", "rmia_offline"}
    for s in scores.values():
        assert _auc(s, members) > 0.98


def test_rmia_is_at_chance_for_a_model_independent_of_membership():
    rng, labels, masks, shadow_outs, members = _population(n=2000)
    target = rng.normal(0.0, 1.0, (len(labels), CLASSES))  # never trained on anything
    scores = rmia.rmia_scores(target, shadow_outs, labels, masks, outputs="logits")
    for s in scores.values():
        assert abs(_auc(s, members) - 0.5) < 0.04  # ~3 standard errors at n = 1000 + 1000


def test_dominance_counts_population_values_beaten_by_more_than_gamma():
    population = np.array([1.0, 2.0, 4.0, 8.0])
    np.testing.assert_allclose(rmia.dominance([4.0, 9.0, 0.5], population, 1.0),
                               [0.5, 1.0, 0.0])
    np.testing.assert_allclose(rmia.dominance([4.0], population, 2.0), [0.25])
    with pytest.raises(ValueError, match="`gamma`"):
        rmia.rmia_scores(np.zeros((2, 2)), [np.zeros((2, 2))] * 2, [0, 1],
                         np.array([[True, False], [False, True]]), gamma=0.0)


def test_every_lira_variant_and_rmia_from_one_cache(digits, tmp_path):
    (x, y), (xt, yt) = digits
    calls = []

    def factory():
        calls.append(1)
        return compile_adam(small_mlp(hidden=32))

    model = factory()
    model.fit(x[:200], y[:200], epochs=20, batch_size=32, verbose=0)
    config = {"model_factory": factory, "num_shadows": 4, "progress": False,
              "fit_kwargs": {"epochs": 20, "batch_size": 32}, "cache_dir": str(tmp_path)}
    kwargs = dict(attacks=("threshold",), slices=("entire",), label_only_noise=None)
    report = audit.run_audit(model, (x[:200], y[:200]), (xt[:200], yt[:200]), lira=config,
                             **kwargs)
    rows = {r["attack"]: r for r in report.attacks}
    names = {"lira_online", "lira_offline", "lira_online_pervar", "lira_offline_pervar",
             "rmia_online", "rmia_offline"}
    assert names <= set(rows)
    assert rows["rmia_online"]["source"] == "rmia" and rows["lira_online"]["source"] == "lira"
    assert rows["rmia_online"]["auc"] > 0.55  # 20 epochs on 200 examples: it leaks
    trained = len(calls)
    again = audit.run_audit(model, (x[:200], y[:200]), (xt[:200], yt[:200]), lira=config,
                            **kwargs)
    assert len(calls) == trained + 1  # only the recipe's fingerprint builds a model: no training
    assert {r["attack"]: r["auc"] for r in again.attacks} == pytest.approx(
        {k: r["auc"] for k, r in rows.items()})


def test_lira_and_rmia_with_flipped_queries(digits, tmp_path):
    (x, y), (xt, yt) = digits
    images = lambda a: a.reshape(-1, 8, 8, 1)  # noqa: E731

    def factory():
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                                  keras.layers.Dense(32, activation="relu"),
                                  keras.layers.Dense(CLASSES)])
        return compile_adam(model)

    model = factory()
    x_m, x_n = images(x[:150]), images(xt[:150])
    model.fit(x_m, y[:150], epochs=15, batch_size=32, verbose=0)
    config = {"model_factory": factory, "num_shadows": 2, "progress": False,
              "fit_kwargs": {"epochs": 15, "batch_size": 32}, "augment": "flip",
              "cache_dir": str(tmp_path)}
    report = audit.run_audit(model, (x_m, y[:150]), (x_n, yt[:150]), lira=config,
                             attacks=("threshold",), slices=("entire",), label_only_noise=None)
    assert report.metadata["lira"]["augment"] == "flip"
    assert {"lira_online", "rmia_online"} <= {r["attack"] for r in report.attacks}
    cached = [np.load(tmp_path / f"shadow_00{i}.npz")["outputs"] for i in range(2)]
    assert cached[0].shape == (2, 300, CLASSES)  # the original and the flipped view
    assert not np.allclose(cached[0][0], cached[0][1])
    # the target's views are the model's outputs on the flipped images
    population = np.concatenate([x_m, x_n])
    views = lira.predict_views(model, population, "flip")
    np.testing.assert_allclose(views[1], lira.predict_views(model, population[:, :, ::-1],
                                                            None), rtol=1e-5, atol=1e-6)
    labels, masks = np.concatenate([y[:150], yt[:150]]), lira.shadow_masks(2, 300, 0)
    two = lira.lira_scores(views, cached, labels, masks)["lira_online"]
    one = lira.lira_scores(views[0], [c[0] for c in cached], labels, masks)["lira_online"]
    assert two.shape == one.shape == (300,) and not np.allclose(two, one)
    with pytest.raises(ValueError, match="augment='flip' flips images"):
        lira.query_views(x[:4], "flip")
    with pytest.raises(ValueError, match="`augment` must be one of"):
        lira.query_views(x[:4], "rotate")


def test_lira_statistic_is_finite_for_saturated_outputs():
    """A confident model (margins of 100 in logits, probabilities of exactly 1)
    still gives finite LiRA scores, equal to TF Privacy's where both are finite."""
    from keras_adamixup.audit import _tfp

    rng, labels, masks, shadow_outs, members = _population(n=200, shadows=4)
    target = _memorizing_outputs(labels, members, rng)
    target[np.arange(20), labels[:20]] += 100.0  # saturated: softmax gives exactly 1
    probs = predictions.to_probabilities(target, "logits")
    assert np.any(probs[np.arange(20), labels[:20]] == 1.0)
    scores = lira.lira_scores(target, shadow_outs, labels, masks, outputs="logits")
    for s in scores.values():
        assert np.all(np.isfinite(s))
    scores_p = lira.lira_scores(probs, [predictions.to_probabilities(o, "logits")
                                        for o in shadow_outs], labels, masks,
                                outputs="probabilities")
    for s in scores_p.values():
        assert np.all(np.isfinite(s))
    tfp = _tfp.load()
    normal = np.arange(20, 200)
    expected = tfp.calculate_statistic(probs[normal], labels[normal], is_logits=False,
                                       option="logit")
    np.testing.assert_allclose(lira.logit_statistic(target[normal], labels[normal]), expected,
                               rtol=1e-6, atol=1e-6)
