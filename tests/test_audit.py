import json
import os
import sys

import numpy as np
import pytest

from keras_adamixup import audit
from keras_adamixup import predictions
from keras_adamixup.audit import _tfp, roc
from tests.conftest import compile_adam, small_mlp

FAST = ("threshold", "threshold_entropy", "logistic_regression")


def compiled_mlp(seed=0, hidden=128):
    return compile_adam(small_mlp(seed=seed, hidden=hidden), 3e-3, metrics=["accuracy"])


# -- metrics -----------------------------------------------------------------


def test_tpr_at_fpr_on_hand_made_roc():
    fpr = np.array([0.0, 0.0005, 0.001, 0.004, 0.01, 0.02, 1.0])
    tpr = np.array([0.0, 0.05, 0.08, 0.10, 0.30, 0.40, 1.0])
    assert audit.tpr_at_fpr(fpr, tpr, 0.001) == pytest.approx(0.08)
    assert audit.tpr_at_fpr(fpr, tpr, 0.01) == pytest.approx(0.30)
    assert audit.tpr_at_fpr(fpr, tpr, 0.0001) == pytest.approx(0.0)
    assert audit.tpr_at_fpr(np.array([0.0, 0.5, 1.0]), np.array([0.0, 0.9, 1.0]), 0.01) == 0.0
    with pytest.raises(ValueError):
        audit.tpr_at_fpr(fpr, tpr[:-1], 0.01)


def test_roc_from_scores_matches_definition():
    members = np.array([0.9, 0.8, 0.7, 0.1])
    nonmembers = np.array([0.6, 0.2, 0.05, 0.0])
    fpr, tpr, _ = roc.roc_from_scores(members, nonmembers)
    row = roc.summarize(fpr, tpr, 4, 4, ppv=1.0)
    # 3 of 4 members rank above every non-member except one: AUC = 14/16
    assert row["auc"] == pytest.approx(14 / 16)
    assert row["tpr_at_0.001_fpr"] == pytest.approx(0.75)  # three members above all non-members
    assert row["advantage"] == pytest.approx(0.75)


def test_output_kind_detection():
    probs = np.array([[0.2, 0.8], [0.5, 0.5]])
    assert predictions.output_kind(probs) == "probabilities"
    assert predictions.output_kind(np.array([[2.0, -1.0], [0.1, 0.3]])) == "logits"
    assert predictions.output_kind(np.array([[0.2, 0.3], [0.1, 0.1]])) == "logits"  # rows ≠ 1
    assert predictions.output_kind(np.array([[0.3], [0.9]])) == "probabilities"
    assert predictions.output_kind(np.array([[-3.0], [2.0]])) == "logits"
    logits = np.array([[2.0, 0.0, -1.0]])
    p = predictions.to_probabilities(logits, "logits")
    np.testing.assert_allclose(p.sum(1), 1.0)
    np.testing.assert_allclose(predictions.to_probabilities(np.array([[0.0]]), "logits"), [[0.5, 0.5]])


# -- end to end on models ------------------------------------------------------


def test_overfit_model_is_detected():
    # Deliberate overfitting: 120 members with random labels, memorised.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(240, 64)).astype("float32")
    y = rng.integers(0, 10, size=240)
    xm, ym, xn, yn = x[:120], y[:120], x[120:], y[120:]
    model = compiled_mlp(hidden=256)
    model.fit(xm, ym, epochs=150, batch_size=16, verbose=0)
    report = audit.run_audit(model, (xm, ym), (xn, yn), attacks=FAST, slices=("entire",),
                             label_only_queries=4)
    assert report.metadata["output_kind"] == "logits"
    assert report.utility["train_accuracy"] == pytest.approx(1.0)
    assert report.best("auc")["auc"] > 0.7
    assert report.best("auc")["slice"] == "entire"


def test_untrained_model_gives_chance_auc(digits):
    # Members and non-members from the same distribution, trained on neither:
    # AUC ≈ 0.5. With 600 + 597 examples the AUC's standard error is 0.017;
    # we allow 4 standard errors.
    (x, y), (xt, yt) = digits
    model = small_mlp(seed=3)
    report = audit.run_audit(model, (x[:600], y[:600]), (xt, yt), attacks=FAST,
                             slices=("entire",), label_only_noise=None)
    for row in report.rows("entire"):
        assert abs(row["auc"] - 0.5) < 0.07, row


def test_report_json_round_trip_markdown_and_plots(digits, tmp_path):
    (x, y), (xt, yt) = digits
    model = compiled_mlp()
    model.fit(x[:300], y[:300], epochs=20, batch_size=32, verbose=0)
    report = audit.run_audit(model, (x[:300], y[:300]), (xt[:300], yt[:300]), attacks=FAST,
                             slices=("entire", "class", "correctness"), label_only_queries=2,
                             name="mlp")
    assert {r["slice"] for r in report.attacks} >= {"entire", "class=3", "correctly_classified=True"}
    paths = report.save(tmp_path / "r")
    for p in paths.values():
        assert os.path.getsize(p) > 0
    loaded = audit.AuditReport.from_json(paths["json"])
    assert loaded == report
    assert audit.AuditReport.from_json(report.to_json()) == report
    md = open(paths["markdown"]).read()
    assert "| threshold | entire |" in md and "## Slices" in md
    assert "strongest attack" in report.summary()
    data = json.loads(report.to_json())
    data["schema_version"] = 99
    with pytest.raises(ValueError, match="schema version 99"):
        audit.AuditReport.from_dict(data)
    table = audit.compare([report, paths["json"]], tmp_path / "cmp")
    assert table.count("| mlp |") == 2
    assert os.path.getsize(tmp_path / "cmp" / "comparison_roc.png") > 0


def test_lira_smoke_and_resume(digits, tmp_path):
    (x, y), (xt, yt) = digits
    xm, ym, xn, yn = x[:100], y[:100], xt[:100], yt[:100]
    model = compiled_mlp()
    model.fit(xm, ym, epochs=30, batch_size=16, verbose=0)
    calls = []

    def factory():
        calls.append(1)
        return compiled_mlp(hidden=32)

    lira = {"model_factory": factory, "num_shadows": 2, "fit_kwargs": {"epochs": 3},
            "cache_dir": str(tmp_path / "cache"), "progress": False}
    report = audit.run_audit(model, (xm, ym), (xn, yn), attacks=("threshold",),
                             slices=("entire",), label_only_noise=None, lira=lira)
    names = {r["attack"] for r in report.attacks}
    assert {"lira_online", "lira_offline"} <= names
    exposed = report.metadata["lira"]["most_exposed"]  # per-example vulnerability
    assert len(exposed) == 10 and all(0 <= e["member"] < 100 for e in exposed)
    assert "## Most exposed members (LiRA online)" in report.to_markdown()
    assert len(calls) == 1 + 2  # one model built for the cache fingerprint, two shadows
    assert sorted(os.listdir(tmp_path / "cache")) == ["manifest.d", "manifest.json",
                                                      "shadow_000.npz", "shadow_001.npz"]
    # an interrupted audit resumes: one cached shadow removed, one retrained
    os.remove(tmp_path / "cache" / "shadow_001.npz")
    again = audit.run_audit(model, (xm, ym), (xn, yn), attacks=("threshold",),
                            slices=("entire",), label_only_noise=None, lira=lira)
    assert len(calls) == 3 + 1 + 1  # fingerprint again, one shadow retrained
    assert 0.0 <= again.best("auc")["auc"] <= 1.0
    with pytest.raises(ValueError, match="belongs to a different audit"):
        audit.run_audit(model, (xm, ym), (xn, yn), attacks=("threshold",), slices=("entire",),
                        label_only_noise=None, lira={**lira, "num_shadows": 4})


def test_lira_with_several_shadow_recipes(digits, tmp_path):
    (x, y), (xt, yt) = digits
    xm, ym, xn, yn = x[:100], y[:100], xt[:100], yt[:100]
    model = compiled_mlp()
    model.fit(xm, ym, epochs=30, batch_size=16, verbose=0)
    matched = {"model_factory": compiled_mlp, "num_shadows": 2,
               "fit_kwargs": {"epochs": 30, "batch_size": 16}, "progress": False}
    # shadows whose recipes disagree (here: each trains a random 0-5 epochs)
    # stand for an adaptive defence whose shadows each adapt differently
    epochs = iter([0, 5])
    varied = {"model_factory": compiled_mlp, "num_shadows": 2,
              "fit_kwargs": lambda xs, ys: {"epochs": next(epochs), "batch_size": 16},
              "progress": False}
    report = audit.run_audit(model, (xm, ym), (xn, yn), attacks=("threshold",),
                             slices=("entire",), label_only_noise=None,
                             lira=[varied, {**matched, "name": "plain",
                                            "cache_dir": str(tmp_path / "plain")}])
    aucs = {r["attack"]: r["auc"] for r in report.attacks}
    assert {"lira_online", "lira_offline", "lira_online_plain", "lira_offline_plain"} <= set(aucs)
    assert [m.get("name", "") for m in report.metadata["lira"]] == ["", "plain"]
    # a second recipe can only add to the evidence: the best attack is the maximum
    assert report.best("auc")["auc"] == max(aucs.values())
    alone = audit.run_audit(model, (xm, ym), (xn, yn), attacks=("threshold",),
                            slices=("entire",), label_only_noise=None, lira=matched)
    assert {r["attack"]: r["auc"] for r in alone.attacks}["lira_online"] == pytest.approx(
        aucs["lira_online_plain"])  # same shadows (seeded splits and training)
    for bad in ([matched, matched], [matched, {**matched, "name": ""}], [{"num_shadows": 2}]):
        with pytest.raises(ValueError, match="LiRA|model_factory"):
            audit.run_audit(model, (xm, ym), (xn, yn), attacks=("threshold",),
                            slices=("entire",), label_only_noise=None, lira=bad)


def test_lira_fit_kwargs_function_gets_each_shadows_training_data(digits):
    (x, y), (xt, yt) = digits
    xm, ym, xn, yn = x[:60], y[:60], xt[:60], yt[:60]
    model = compiled_mlp()
    model.fit(xm, ym, epochs=2, verbose=0)
    seen = []

    def fit_kwargs(x_train, y_train):
        seen.append((x_train.copy(), y_train.copy()))
        return {"epochs": 1}

    lira = {"model_factory": lambda: compiled_mlp(hidden=16), "num_shadows": 2,
            "fit_kwargs": fit_kwargs, "progress": False}
    report = audit.run_audit(model, (xm, ym), (xn, yn), attacks=("threshold",),
                             slices=("entire",), label_only_noise=None, lira=lira)
    # with 2 shadows every example trains exactly one of them
    assert len(seen) == 2 and len(seen[0][0]) + len(seen[1][0]) == 120
    population = np.concatenate([xm, xn])
    for xs, ys in seen:  # rows of the population, with their own labels
        rows = {r.tobytes(): label for r, label in zip(population, np.r_[ym, yn])}
        assert all(rows[r.tobytes()] == label for r, label in zip(xs, ys))
    assert not np.array_equal(seen[0][0], seen[1][0])
    assert report.metadata["lira"]["fit_kwargs"]["function"].endswith("fit_kwargs")


def test_shadow_masks_are_balanced():
    from keras_adamixup.audit import lira

    masks = lira.shadow_masks(8, 50, seed=1)
    assert masks.shape == (8, 50)
    np.testing.assert_array_equal(masks.sum(axis=0), 4)
    with pytest.raises(ValueError, match="even number"):
        lira.shadow_masks(3, 10, seed=0)


def test_label_only_scores():
    from keras_adamixup.audit import label_only

    np.testing.assert_array_equal(label_only.gap_scores([1, 2, 3], [1, 0, 3]), [1, 0, 1])
    x = np.linspace(-1, 1, 40, dtype="float32")[:, None]
    labels = (x[:, 0] > 0).astype(int)
    predict = lambda a: (a[:, 0] > 0).astype(int)
    scores = label_only.noise_robustness_scores(predict, x, labels, noise=0.3, queries=20, seed=0)
    # points far from the boundary keep their label under noise
    assert scores[0] == 1.0 and scores[-1] == 1.0
    assert scores[19] < 0.9 and scores[20] < 0.9
    with pytest.raises(ValueError, match="`queries`"):
        label_only.noise_robustness_scores(predict, x, labels, queries=0)


def test_audit_predictions_with_probabilities():
    rng = np.random.default_rng(0)
    logits_m = rng.normal(size=(200, 4)) + 3 * np.eye(4)[np.arange(200) % 4]
    logits_n = rng.normal(size=(200, 4)) + 1 * np.eye(4)[np.arange(200) % 4]
    probs = lambda z: np.exp(z) / np.exp(z).sum(1, keepdims=True)
    y = np.arange(200) % 4
    a = audit.audit_predictions(probs(logits_m), y, probs(logits_n), y, attacks=("threshold",),
                                slices=("entire",))
    b = audit.audit_predictions(logits_m, y, logits_n, y, attacks=("threshold",),
                                slices=("entire",))
    assert a.metadata["output_kind"] == "probabilities" and b.metadata["output_kind"] == "logits"
    assert a.best("auc")["auc"] == pytest.approx(b.best("auc")["auc"], abs=1e-6)
    assert a.best("auc")["auc"] > 0.7


# -- bad input ----------------------------------------------------------------


def test_bad_inputs():
    rng = np.random.default_rng(0)
    out = rng.normal(size=(50, 3))
    y = np.arange(50) % 3
    run = lambda *a, **k: audit.audit_predictions(*a, attacks=("threshold",),
                                                  slices=("entire",), **k)
    with pytest.raises(ValueError, match="has 50 rows but `labels_members` has 49"):
        run(out, y[:49], out, y)
    bad = out.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        run(bad, y, out, y)
    with pytest.raises(ValueError, match="outside the model's classes"):
        run(out, y + 1, out, y)
    with pytest.raises(ValueError, match="Too few examples"):
        run(out[:5], y[:5], out[:5], y[:5])
    with pytest.raises(ValueError, match="3 columns, non-members' 4"):
        run(out, y, rng.normal(size=(50, 4)), y)
    with pytest.raises(ValueError, match="Unknown attack"):
        audit.audit_predictions(out, y, out, y, attacks=("lira",))
    with pytest.raises(ValueError, match="Unknown slice"):
        audit.audit_predictions(out, y, out, y, slices=("age",))


def test_overlap_and_lengths_raise():
    model = small_mlp()
    x = np.random.default_rng(0).random((40, 64)).astype("float32")
    y = np.arange(40) % 10
    with pytest.raises(ValueError, match="5 non-member example"):
        audit.run_audit(model, (x[:30], y[:30]), (x[25:], y[25:]), attacks=("threshold",))
    with pytest.raises(ValueError, match="differ in length"):
        audit.run_audit(model, (x[:20], y[:19]), (x[20:], y[20:]), attacks=("threshold",))
    with pytest.raises(ValueError, match="outside the model's classes"):
        audit.run_audit(model, (x[:20], y[:20] + 5), (x[20:], y[20:]), attacks=("threshold",))


def test_missing_tf_privacy_prints_install_command(monkeypatch):
    monkeypatch.setattr(_tfp, "_MODULE", None)
    blocked = "tensorflow_privacy.privacy.privacy_tests.membership_inference_attack"
    for name in list(sys.modules):
        if name.startswith("tensorflow_privacy"):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, blocked, None)
    with pytest.raises(ImportError, match="pip install --no-deps tensorflow-privacy==0.8.12"):
        _tfp.load()


def test_membership_split_round_trip(tmp_path):
    split = audit.data.MembershipSplit.draw(100, seed=3, source="pool")
    assert len(split.members) == 50 and not set(split.members) & set(split.nonmembers)
    split.to_json(tmp_path / "s.json")
    assert audit.data.MembershipSplit.from_json(tmp_path / "s.json") == split
    with pytest.raises(ValueError, match="both members and non-members"):
        audit.data.MembershipSplit([1, 2], [2, 3])


def test_npz_loader(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x_train=np.zeros((4, 2)), y_train=np.zeros(4), x_test=np.ones((3, 2)),
             y_test=np.ones(3))
    (xm, _), (xn, _) = audit.data.load(f"npz:{path}")
    assert xm.shape == (4, 2) and xn.shape == (3, 2)
    np.savez(path, x_train=np.zeros((4, 2)))
    with pytest.raises(ValueError, match="lacks"):
        audit.data.load_npz(path)
    with pytest.raises(ValueError, match="Unknown data"):
        audit.data.load("mnist")


def test_tfds_loader_with_mock_data():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=12):
        (xm, ym), (xn, yn) = audit.data.load("tfds:mnist")
        pool_x, pool_y = audit.data.load_pool("tfds:mnist")
    assert xm.shape == (12, 28, 28, 1) and ym.shape == (12,) and xn.shape[0] == 12
    assert pool_x.shape[0] == 24 and pool_y.shape == (24,)


def test_lira_shadows_in_parallel_processes_match_sequential(digits, tmp_path):
    from keras_adamixup.audit import lira
    from keras_adamixup.audit.saved_model import FreshCopy

    (x, y), _ = digits
    x, y = x[:120], y[:120]
    factory = FreshCopy(compiled_mlp(hidden=16))  # picklable, unlike a closure
    masks = lira.shadow_masks(2, len(x), seed=0)
    kwargs = {"epochs": 2, "batch_size": 32}
    kwargs_seq = {"fit_kwargs": kwargs, "progress": False, "together": False}
    sequential = lira.shadow_outputs(factory, x, y, masks, **kwargs_seq)
    parallel = lira.shadow_outputs(factory, x, y, masks, **kwargs_seq, jobs=2,
                                   cache_dir=str(tmp_path))
    for a, b in zip(sequential, parallel):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert sorted(os.listdir(tmp_path)) == ["manifest.d", "manifest.json", "shadow_000.npz",
                                        "shadow_001.npz"]
    with pytest.raises(ValueError, match="must be picklable"):
        lira.shadow_outputs(lambda: compiled_mlp(hidden=16), x, y, masks, **kwargs_seq,
                            jobs=2)
    with pytest.raises(ValueError, match="`jobs` must be ≥ 1"):
        lira.shadow_outputs(factory, x, y, masks, jobs=0)


def test_run_audit_streams_datasets(digits):
    import tensorflow as tf

    (x, y), (xt, yt) = digits
    model = compiled_mlp()
    model.fit(x[:300], y[:300], epochs=10, batch_size=32, verbose=0)
    members, nonmembers = (x[:300], y[:300]), (xt[:300], yt[:300])
    as_ds = lambda d: tf.data.Dataset.from_tensor_slices(d).batch(64)
    kwargs = dict(attacks=("threshold",), slices=("entire",), label_only_queries=2)
    arrays = audit.run_audit(model, members, nonmembers, **kwargs)
    streamed = audit.run_audit(model, as_ds(members), as_ds(nonmembers), **kwargs)
    auc = lambda r, a: [row for row in r.rows("entire") if row["attack"] == a][0]["auc"]
    for attack in ("threshold", "label_only_gap"):
        assert auc(streamed, attack) == pytest.approx(auc(arrays, attack), abs=1e-6)
    assert 0.0 <= auc(streamed, "label_only_noise") <= 1.0
    assert streamed.metadata["streamed"] is True
    with pytest.raises(ValueError, match="30 non-member example"):
        audit.run_audit(model, as_ds(members), as_ds((x[270:330], y[270:330])), **kwargs)
    with pytest.raises(ValueError, match="needs them as\\s+arrays"):
        audit.run_audit(model, as_ds(members), nonmembers,
                        lira={"model_factory": compiled_mlp}, **kwargs)
    with pytest.raises(ValueError, match="batched tf.data.Dataset"):
        audit.run_audit(model, tf.data.Dataset.from_tensor_slices(members), nonmembers,
                        **kwargs)


def test_fast_trained_attacks_score_every_example_out_of_sample():
    """Cross-fitted: on outputs that carry no membership signal, no attack beats chance."""
    from keras_adamixup.audit import _tfp, attacks

    tfp = _tfp.load()
    rng = np.random.default_rng(0)
    n = 8000  # more than the sample: both the cross-fitted and the averaged scores
    logits = rng.normal(size=(2 * n, 5))
    labels = rng.integers(0, 5, 2 * n)
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    data = tfp.AttackInputData(logits_train=np.log(probs[:n]), logits_test=np.log(probs[n:]),
                               labels_train=labels[:n], labels_test=labels[n:])
    for attack in attacks.TRAINED_ATTACKS:
        sm, sn = attacks.fast_trained_scores(data, attack, seed=0)
        assert sm.shape == (n,) and sn.shape == (n,)
        assert np.isfinite(sm).all() and np.isfinite(sn).all()
        auc = predictions.roc_auc(sm, sn)
        # standard error ≈ 0.005; a forest that scored examples it trained on
        # (a bug once: 0.544) would be far off
        assert abs(auc - 0.5) < 0.02, (attack, auc)


def test_fast_trained_attacks_find_a_real_signal_and_report_how_they_ran():
    rng = np.random.default_rng(1)
    n = 1500
    # members: confident in the true class; non-members: less so
    labels_m, labels_n = rng.integers(0, 4, n), rng.integers(0, 4, n)
    out_m = rng.normal(size=(n, 4)); out_m[np.arange(n), labels_m] += 3.0
    out_n = rng.normal(size=(n, 4)); out_n[np.arange(n), labels_n] += 1.5
    fast = audit.audit_predictions(out_m, labels_m, out_n, labels_n, slices=("entire",))
    rows = {r["attack"]: r for r in fast.rows("entire")}
    for attack in ("logistic_regression", "mlp", "random_forest", "knn"):
        assert rows[attack]["source"] == "trained_fast"
        assert rows[attack]["auc"] > 0.7, (attack, rows[attack]["auc"])
    assert "fixed hyperparameters" in fast.metadata["trained_attacks"]
    grid = audit.audit_predictions(out_m, labels_m, out_n, labels_n, slices=("entire",),
                                   attacks=("logistic_regression",), fast_attacks=False)
    assert grid.rows("entire")[0]["source"] == "tf_privacy"
    assert grid.rows("entire")[0]["auc"] == pytest.approx(rows["logistic_regression"]["auc"],
                                                          abs=0.02)


def test_intervals_and_measurability_of_the_numbers():
    from keras_adamixup.audit import roc as roc_lib

    # the Hanley–McNeil interval against a bootstrap of the same scores
    rng = np.random.default_rng(0)
    sm, sn = rng.normal(0.35, 1, 719), rng.normal(0, 1, 719)
    auc = predictions.roc_auc(sm, sn)
    low, high = roc_lib.auc_interval(auc, 719, 719)
    boot = [predictions.roc_auc(rng.choice(sm, 719), rng.choice(sn, 719)) for _ in range(300)]
    b_low, b_high = np.percentile(boot, [2.5, 97.5])
    assert (high - low) == pytest.approx(b_high - b_low, rel=0.25)
    assert low < auc < high
    # exact binomial: 0 of 719 → at most 0.51 %
    assert roc_lib.binomial_interval(0, 719) == pytest.approx([0.0, 0.005117], abs=1e-5)
    lo, hi = roc_lib.binomial_interval(12, 719)
    assert lo < 12 / 719 < hi
    # TPR at 0.1 % FPR with 719 non-members: zero false positives, marked
    small = audit.audit_predictions(np.c_[sm, -sm], np.zeros(719, int), np.c_[sn, -sn],
                                    np.zeros(719, int), attacks=("threshold",),
                                    slices=("entire",))
    row = small.best("auc")
    assert row["tpr_at_0.001_fpr_measurable"] is False and row["tpr_at_0.01_fpr_measurable"]
    assert "at 0 false positives: 1/719 > 0.001" in small.summary()
    assert small.headline()["best_tpr_at_0.001_fpr_measurable"] is False


def test_worst_slice_flagged_when_within_the_noise_of_many_slices():
    rng = np.random.default_rng(3)
    labels_m, labels_n = rng.integers(0, 10, 700), rng.integers(0, 10, 700)
    noise_m, noise_n = rng.normal(size=(700, 10)), rng.normal(size=(700, 10))
    report = audit.audit_predictions(noise_m, labels_m, noise_n, labels_n,
                                     attacks=("threshold", "threshold_entropy"))
    h = report.headline()
    assert h["results_tested"] > 20 and h["worst_slice_auc"] > 0.5
    assert h["worst_slice_significant"] is False
    assert "within the noise of testing" in report.summary()
    noise_m[np.arange(700), labels_m] += 4.0  # members now far more confident
    leaky = audit.audit_predictions(noise_m, labels_m, noise_n, labels_n,
                                    attacks=("threshold", "threshold_entropy"))
    assert leaky.headline()["worst_slice_significant"] is True


def test_roc_plot_starts_at_one_over_n(tmp_path):
    from matplotlib.figure import Figure

    rng = np.random.default_rng(0)
    report = audit.audit_predictions(rng.normal(size=(300, 3)), np.arange(300) % 3,
                                     rng.normal(size=(400, 3)), np.arange(400) % 3,
                                     attacks=("threshold",), slices=("entire",))
    ax = Figure().subplots()
    report.plot_roc(ax=ax)
    assert ax.get_xlim()[0] == pytest.approx(1 / 400)


def test_audit_predictions_reuse_one_trace():
    """Padded fixed-size batches: many lengths, one trace (no retracing warnings)."""
    from keras_adamixup.audit import _predict

    model = compiled_mlp(hidden=8)
    rng = np.random.default_rng(0)
    for n in (5, 300, 513, 1200):
        x = rng.random((n, 64)).astype("float32")
        np.testing.assert_allclose(_predict.predict_outputs(model, x, batch_size=256),
                                   model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    assert _predict._forward(model).experimental_get_tracing_count() == 1


def test_exposure_names_the_members_found_at_zero_false_positives():
    from keras_adamixup.audit import run

    members = np.array([0.1, 5.0, 0.3, 2.0, -1.0])
    nonmembers = np.array([0.0, 0.2, 1.0, 3.0])
    result = run.exposure(members, nonmembers, np.array([7, 8, 9, 1, 2]), top=3)
    assert result["zero_fp_members"] == 1  # only 5.0 beats every non-member
    assert [e["member"] for e in result["most_exposed"]] == [1, 3, 2]
    assert [e["nonmembers_above"] for e in result["most_exposed"]] == [0, 1, 2]
    assert result["most_exposed"][0]["label"] == 8


def test_fast_and_thorough_paths_agree_on_a_small_case():
    from keras_adamixup.audit import roc as roc_lib

    """The default (fixed hyperparameters, capped sample) never finds less than
    `thorough=True` (TF Privacy's grid search on every slice) beyond sampling
    error; the threshold attack is the same computation on both paths.

    (Here the fast k-NN finds more: 0.715 vs 0.642; TF Privacy's grid
    searches k over small values on unscaled features, ours uses k = 25 on
    standardized ones. The other attacks agree within an interval.)"""
    rng = np.random.default_rng(2)
    n = 600
    labels_m, labels_n = rng.integers(0, 3, n), rng.integers(0, 3, n)
    out_m = rng.normal(size=(n, 3)); out_m[np.arange(n), labels_m] += 2.5
    out_n = rng.normal(size=(n, 3)); out_n[np.arange(n), labels_n] += 1.5
    kwargs = dict(attacks=("threshold", "logistic_regression", "knn"),
                  slices=("entire", "class"))
    fast = audit.audit_predictions(out_m, labels_m, out_n, labels_n, **kwargs)
    thorough = audit.audit_predictions(out_m, labels_m, out_n, labels_n, thorough=True,
                                       **kwargs)
    auc = lambda report, attack: {r["attack"]: r["auc"]  # noqa: E731
                                  for r in report.rows("entire")}[attack]
    assert auc(fast, "threshold") == pytest.approx(auc(thorough, "threshold"))
    for attack in ("logistic_regression", "knn"):
        a, b = auc(fast, attack), auc(thorough, attack)
        low, high = roc_lib.auc_interval(b, n, n)
        assert a > b - (high - low) / 2, (attack, a, b)  # not weaker beyond the 95 % interval
    assert abs(auc(fast, "logistic_regression") - auc(thorough, "logistic_regression")) < 0.03
    # thorough runs the trained attacks on the class slices too
    sliced = {r["attack"] for r in thorough.attacks if r["slice"].startswith("class")}
    assert {"logistic_regression", "knn"} <= sliced
