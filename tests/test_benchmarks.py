import ast
import importlib
import json
import os
import pathlib

import keras
import keras_adamixup
import numpy as np
import pytest

from tests.conftest import clusters

ROOT = pathlib.Path(__file__).resolve().parents[1]


def load(name):
    """A benchmark script, imported as `python -m benchmarks.NAME` runs it."""
    return importlib.import_module(f"benchmarks.{name}")


def test_overhead_summary_on_synthetic_timings():
    overhead = load("overhead")
    table = overhead.summarize({
        "plain": [2.0, 2.2, 1.9, 2.1, 5.0],          # one noisy outlier: the median ignores it
        "adamixup_model": [2.1, 2.05, 2.15],
        "keras_mixup": [1.8, 1.9, 2.0, 2.2],
    })
    assert table["plain"]["median_s"] == pytest.approx(2.1)
    assert table["plain"]["ratio"] == pytest.approx(1.0)
    assert table["adamixup_model"]["ratio"] == pytest.approx(2.1 / 2.1)
    assert table["keras_mixup"]["ratio"] == pytest.approx(1.95 / 2.1)
    assert table["plain"]["max_s"] == 5.0 and table["keras_mixup"]["epochs"] == 4
    steps = overhead.summarize({"plain": [1.0], "adamixup_model": [1.0]},
                               step_times={"plain": [0.01, 0.01, 0.5], "adamixup_model": [0.0105] * 3},
                               steps_per_epoch=100)
    assert steps["plain"]["step_epoch_s"] == pytest.approx(1.0)  # the 0.5 s stall is ignored
    assert steps["adamixup_model"]["step_ratio"] == pytest.approx(1.05)
    with pytest.raises(ValueError, match="baseline"):
        overhead.summarize({"adamixup_model": [1.0]})
    with pytest.raises(ValueError, match="No timings for 'x'"):
        overhead.summarize({"plain": [1.0], "x": []})


def test_overhead_paired_ratios():
    overhead = load("overhead")
    table = overhead.paired_ratios({"plain": [1.0, 2.0, 1.0], "x": [1.05, 2.2, 1.0]})
    assert table["x"]["ratios"] == pytest.approx([1.05, 1.1, 1.0])
    assert table["x"]["median_ratio"] == pytest.approx(1.05)
    assert table["plain"]["median_ratio"] == 1.0
    with pytest.raises(ValueError, match="rounds"):
        overhead.paired_ratios({"plain": [1.0], "x": [1.0, 2.0]})


@pytest.mark.slow  # about 23 s; `make test-all` runs it
def test_overhead_interleaved_quick(tmp_path, capsys):
    overhead = load("overhead")
    out = tmp_path / "inter.json"
    assert overhead.main(["--interleaved", "2", "--steps", "2", "--images", "512",
                          "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert set(result["interleaved"]) == set(overhead.VARIANTS)
    assert all(len(v) == 2 for v in result["round_s"].values())


@pytest.mark.slow  # five subprocesses; the interleaved mode above runs by default
def test_overhead_quick_run(tmp_path, capsys):
    overhead = load("overhead")
    out = tmp_path / "overhead.json"
    assert overhead.main(["--quick", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert set(result["summary"]) == set(overhead.VARIANTS)
    for row in result["summary"].values():
        assert row["median_s"] > 0 and row["ratio"] > 0
    assert "ratio" in capsys.readouterr().out


def test_recipe_cost_summary_and_quick_run(tmp_path, capsys):
    cost = load("recipe_cost")
    runs = [{"recipe": name, "round": k, "seconds": seconds, "student_epochs": 5}
            for k, times in enumerate([(1.0, 3.0), (2.0, 5.0), (1.0, 4.0)])
            for name, seconds in zip(("plain", "teachers_4_1_ckpt"), times)]
    runs[1]["teachers_epochs_median"] = 3
    summary = cost.summarize(runs, ["teachers_4_1_ckpt", "missing"])
    assert set(summary) == {"plain", "teachers_4_1_ckpt"}
    row = summary["teachers_4_1_ckpt"]
    assert row["ratio_median"] == pytest.approx(3.0)  # per round: 3, 2.5, 4
    assert (row["ratio_min"], row["ratio_max"]) == pytest.approx((2.5, 4.0))
    assert row["seconds_median"] == 4.0 and row["teachers_epochs_median"] == 3
    assert summary["plain"]["ratio_median"] == 1.0
    out = tmp_path / "cost.json"
    assert cost.main(["--quick", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert set(result["summary"]) == {"plain", "early_stopping", "teachers_4_1_ckpt"}
    assert result["summary"]["teachers_4_1_ckpt"]["teachers_epochs_median"] >= 1
    assert "× plain fit" in capsys.readouterr().out


def test_images_get_the_cnn_with_augmentation_and_batch_norm(monkeypatch, capsys):
    data = importlib.import_module("benchmarks.data")
    model = data.base_model((32, 32, 3), 10, 256)  # the MLP's width: the CNN's channels
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds[:2] == ["RandomFlip", "RandomTranslation"] and "BatchNormalization" in kinds
    assert model.layers[2].filters == data.CNN_WIDTH and model.output_shape == (None, 10)
    assert type(data.base_model(64, 10, 256).layers[0]).__name__ == "Dense"
    monkeypatch.setattr(data, "SHARED", "/nonexistent")
    assert data.pool_or_skip("cifar10") is None
    assert "skipped: data 'cifar10' not found" in capsys.readouterr().out


def test_audit_time_skips_without_mnist(tmp_path, capsys):
    audit_time = load("audit_time")
    assert audit_time.main(["--mnist", str(tmp_path / "none.npz")]) == 0
    assert "skipped" in capsys.readouterr().out


def test_privacy_utility_summary_and_markdown():
    pu = load("privacy_utility")
    rows = [{"defence": "none", "seed": s, "test_accuracy": a, "generalization_gap": 0.1,
             "best_auc": b, "best_tpr_at_0.001_fpr": 0.01, "best_tpr_at_0.01_fpr": 0.02}
            for s, a, b in ((0, 0.9, 0.6), (1, 0.8, 0.7))]
    summary = pu.summarize(rows)
    assert summary["none"]["seeds"] == 2
    assert summary["none"]["test_accuracy"][0] == pytest.approx(0.85)
    assert summary["none"]["best_auc"][1] == pytest.approx(0.0707, abs=1e-4)
    text = pu.markdown(summary, "t")
    assert "| none | 2 | 0.8500 ± 0.0707 |" in text and "n/a" in text  # no LiRA column data


def _canary_attack(auc, tpr, eps):
    return {"auc": auc, "tpr_at_0.001_fpr": tpr, "tpr_at_0.001_fpr_ci": [tpr / 2, 1.0],
            "tpr_at_0.001_fpr_measurable": False, "epsilon_one_run": eps, "epsilon_roc": eps}


def test_canary_audit_kind_numbers_and_markdown():
    ca = load("canary_audit")
    # each metric's own strongest attack: AUC from one, TPR at low FPR from another
    entry = {"units": 20, "in": 9, "out": 11, "measurable": True,
             "attacks": {"lira_online": _canary_attack(0.9, 0.2, 0.5),
                         "rmia_online": _canary_attack(0.8, 0.4, 0.7)},
             "epsilon": {"one_run": 0.7, "attack": "rmia_online", "roc": 0.6}}
    n = ca.kind_numbers(entry)
    assert (n["auc"], n["auc_attack"], n["tpr"], n["tpr_attack"]) == (
        0.9, "lira_online", 0.4, "rmia_online")
    assert n["tpr_ci"] == [0.2, 1.0] and n["epsilon_one_run"] == 0.7 and n["epsilon_roc"] == 0.6
    assert ca.kind_numbers({**entry, "attacks": {}}) is None  # all units on one side
    row = {"defence": "teachers_plateau_pat3_8_1_ckpt", "seed": 0, "test_accuracy": 0.95,
           "best_auc": 0.6, "best_auc_attack": "rmia_online", "best_tpr_at_0.001_fpr": 0.01,
           "best_tpr_ci": [0.005, 0.02], "best_tpr_attack": "lira_online", "own_shadows": 8,
           "plain_shadows": 16, "dp_epsilon": None, "train_s": 12.0,
           "kinds": {"mislabelled": n, "duplicate": n}}
    text = ca.markdown([row], "t")
    assert "| recommended | 1 | 0.9500 | 0.600 (rmia_online) | 0.0100 [0.005, 0.020]" in text
    assert "| 8 / 16 | – | 12 | – |" in text  # no checkpoint: no kept epoch
    kept = ca.markdown([{**row, "kept_epoch": 7, "strength_kept": 0.05},
                        {**row, "seed": 1, "kept_epoch": 9}], "t")
    assert "| 12 | 7 (0.05), 9 |" in kept
    assert "0.900 (lira_online) / 0.40 [0.20, 1.00] / 0.70, 0.60" in text
    assert text.index("mislabelled: AUC") < text.index("duplicate: AUC")  # KINDS order
    # several seeds: means, no single-run intervals
    text = ca.markdown([row, {**row, "seed": 1, "test_accuracy": 0.93}], "t")
    assert "| recommended | 2 | 0.9400 |" in text and "[0.005" not in text


@pytest.mark.slow  # two defences trained and audited with canaries (about 30 s)
def test_canary_audit_quick_run(tmp_path):
    ca = load("canary_audit")
    out = tmp_path / "ca"
    assert ca.main(["--quick", "--out", str(out)]) == 0
    rows = json.loads((out / "runs.json").read_text())
    assert [r["defence"] for r in rows] == ["none", "early_stopping"]
    for r in rows:
        assert set(r["kinds"]) == {"mislabelled", "duplicate", "outlier"}
        for n in r["kinds"].values():
            assert n["units"] == 10 and n["in"] + n["out"] == 10 and 0 <= n["auc"] <= 1
            assert n["epsilon_one_run"] >= 0
    # the same canary draw for both defences
    assert rows[0]["kinds"]["duplicate"]["in"] == rows[1]["kinds"]["duplicate"]["in"]
    assert (out / "summary.md").exists()
    # merged: a later folder's (defence, seed) replaces the earlier; --defences orders
    again = tmp_path / "again"
    again.mkdir()
    (again / "runs.json").write_text(json.dumps([{**rows[0], "test_accuracy": 0.5}]))
    merged = tmp_path / "merged"
    assert ca.main(["--merge", f"{out},{again}", "--defences", "early_stopping,none",
                    "--out", str(merged)]) == 0
    pooled = json.loads((merged / "runs.json").read_text())
    assert [r["defence"] for r in pooled] == ["early_stopping", "none"]
    assert pooled[1]["test_accuracy"] == 0.5


def test_privacy_utility_quick_run(tmp_path, capsys):
    pu = load("privacy_utility")
    out = tmp_path / "pu"
    assert pu.main(["--quick", "--out", str(out)]) == 0
    rows = json.loads((out / "runs.json").read_text())
    assert [r["defence"] for r in rows] == ["none", "adamixup_linear_dominant",
                                            "adamixup_target_0.55"]
    for r in rows:
        assert 0 <= r["best_auc"] <= 1 and "lira_online_auc" in r
        assert 0 <= r["monitor_auc"] <= 1
        assert 0 <= r["lira_online_plain_auc"] <= 1  # the defended models: undefended shadows too
        assert r["best_auc"] >= max(r["lira_online_auc"], r["lira_online_plain_auc"])
    assert rows[0]["lira_online_plain_auc"] == rows[0]["lira_online_auc"]
    # the undefended shadows were trained once (for "none") and reused
    assert sorted(os.listdir(out / "lira_plain_shadows" / "seed0")) == [
        "manifest.d", "manifest.json", "shadow_000.npz", "shadow_001.npz"]
    assert rows[0]["strength_final"] is None and rows[2]["strength_final"] is not None
    summary = (out / "summary.md").read_text()
    table = [ln for ln in summary.splitlines() if ln.startswith("| ")]
    assert len(table) == 8  # two tables: header + 3 defences each
    assert all(ln.count("|") == 10 for ln in table[:4])
    assert all(ln.count("|") == 6 for ln in table[4:])
    assert (out / "frontier.png").stat().st_size > 0
    assert (out / "runs.csv").read_text().count("\n") == 4
    with pytest.raises(SystemExit, match="unknown defence 'dp'"):
        pu.main(["--quick", "--defences", "dp", "--out", str(out)])
    # merging pools the runs of several outputs; a (defence, seed) run again
    # in a later folder replaces the earlier one
    other, again = tmp_path / "other", tmp_path / "again"
    other.mkdir()
    again.mkdir()
    (other / "runs.json").write_text(json.dumps([{**r, "seed": 1} for r in rows]))
    (again / "runs.json").write_text(json.dumps([{**rows[0], "best_auc": 0.99}]))
    merged = tmp_path / "merged"
    assert pu.main(["--merge", f"{out},{other},{again}", "--out", str(merged)]) == 0
    pooled = json.loads((merged / "runs.json").read_text())
    assert len(pooled) == 6 and "| none | 2 |" in (merged / "summary.md").read_text()
    assert [r["best_auc"] for r in pooled if r["defence"] == "none" and r["seed"] == 0] == [0.99]
    (again / "runs.json").write_text(json.dumps([{**rows[0], "data": "mnist"}]))
    with pytest.raises(ValueError, match="different data sets"):
        pu.merge_runs([str(out), str(again)])


def test_privacy_utility_recipes_build():
    pu, names, data = load("privacy_utility"), load("names"), load("data")
    rng = np.random.default_rng(0)
    val = (rng.normal(size=(128, 4)).astype("float32"), rng.integers(0, 3, 128))
    for defence in pu.DEFENCES:
        factory, fit_kwargs_for = names.recipe(defence, 4, 3, 8, 0, val, 1)
        model = factory()
        fit_kwargs = fit_kwargs_for(val[0] + 10.0, val[1])
        trained = getattr(model, "model_", model)  # MemGuard guards a compiled model
        assert trained.compiled and fit_kwargs["epochs"] == 1
        assert isinstance(fit_kwargs["callbacks"][0], keras_adamixup.PrivacyMonitor)
        checkpoints = [c for c in fit_kwargs["callbacks"]
                       if isinstance(c, keras_adamixup.PrivacyCheckpoint)]
        if defence.startswith("teachers_"):  # the package's SplitTeachers, own shadows alike
            assert isinstance(model.targets, keras_adamixup.SplitTeachers), defence
        selects = defence == "checkpoint" or defence.endswith("_ckpt")
        assert len(checkpoints) == int(selects), defence
        if selects:  # bound to this model's own fresh monitor
            assert checkpoints[0].monitor is fit_kwargs["callbacks"][0]
    # recipe_cost --monitor needed: a monitor only where the recipe follows one
    for defence, follows in (("none", False), ("mixup_relaxat1.0_a0.4", False),
                             ("adamixup_relax0.9_const0", True), ("teachers_4_1_ckpt", True)):
        _, fit_kwargs_for = names.recipe(defence, 4, 3, 8, 0, val, 1, monitor=False)
        kwargs = data.fit_kwargs_of(fit_kwargs_for, val[0] + 10.0, val[1])
        given = kwargs.get("callbacks") or []
        monitors = [c for c in given if isinstance(c, keras_adamixup.PrivacyMonitor)]
        assert len(monitors) == int(follows), defence
    with pytest.raises(ValueError, match="Unknown defence"):
        names.recipe("dpsgd", 4, 3, 8, 0, val, 1)
    # modifiers combine: the per-example focus survives the swap
    model = names.recipe("adamixup_focus0.5_swap_const0.2_ckpt", 4, 3, 8, 0, val, 1)[0]()
    assert model.features == "swap" and model.focus.factor == 0.5
    assert names.known("adamixup_focus0.5_swap_const0.2_ckpt")
    assert names.known("teachers_mix_swap_32_1_ckpt") and not names.known("teachers_x")
    # the teachers as they were before near-duplicate groups, patience and weights
    old = names.recipe("teachers_mix_apart_full_unweighed_16_2_ckpt", 4, 3, 8, 0, val, 1)[0]()
    new = names.recipe("teachers_mix_16_2_ckpt", 4, 3, 8, 0, val, 1)[0]().targets
    old = old.targets
    assert (old.near_duplicates, old.patience, old.weigh_groups) == (None, None, False)
    assert (new.near_duplicates, new.patience, new.weigh_groups) == ("auto", 5, True)
    # mixing that follows the hold-out loss instead of the paper's plan
    for name, kind in (("teachers_plateau_16_2_ckpt", keras_adamixup.schedules.PlateauDecay),
                       ("teachers_mix_16_2_ckpt", keras_adamixup.schedules.LinearDecay)):
        factory = names.recipe(name, 4, 3, 8, 0, val, 1)[0]
        assert isinstance(factory().schedule, kind), name
        factory()  # the audited model and every shadow: one schedule each
    # _pubN: N public rows, drawn beside the split, reach every fit (shadows alike)
    assert names.parse("teachers_plateau_16_2_ckpt_pub8")[1]["unlabelled"] == 8
    with pytest.raises(ValueError, match="no public rows"):
        names.recipe("teachers_plateau_16_2_ckpt_pub8", 4, 3, 8, 0, val, 1)
    pool = (np.arange(2000, dtype="float32").reshape(500, 4), np.arange(500) % 3)
    public = data.public_rows(pool, 100, 0, 8)
    used = np.concatenate([part[0] for part in data.split(pool, 100, 0)])
    assert public.shape == (8, 4) and not set(public[:, 0]) & set(used[:, 0])
    _, fit_kwargs_for = names.recipe("teachers_plateau_16_2_ckpt_pub8", 4, 3, 8, 0, val, 1,
                                     public=lambda count: data.public_rows(pool, 100, 0, count))
    np.testing.assert_array_equal(fit_kwargs_for(val[0] + 10.0, val[1])["unlabelled"], public)
    with pytest.raises(ValueError, match="only"):
        data.public_rows(pool, 100, 0, 500)
    # _pubonlyN: the student trains on them alone (DMP)
    options = names.parse("teachers_plateau_16_2_ckpt_pubonly8")[1]
    assert options["unlabelled"] == 8 and options["teacher_args"]["student_rows"] == "unlabelled"
    assert "student_rows" not in names.parse("teachers_plateau_16_2_ckpt_pub8")[1]["teacher_args"]
    near = names.parse("teachers_plateau_16_2_ckpt_pubonlynear8")[1]["teacher_args"]
    assert near["unlabelled_teachers"] == "nearest" and near["student_rows"] == "unlabelled"
    assert names.known("teachers_plateau_16_2_ckpt_pubonly8")


def _result_names():
    """Every recipe name of benchmarks/results/ (rows, summaries, the commands' lists)."""
    found = set()
    for path in (ROOT / "benchmarks" / "results").glob("*.json"):
        result = json.loads(path.read_text(encoding="utf-8"))
        found |= {row["defence"] for row in result.get("rows", [])}
        found |= set(result.get("summary", {})) - {"plain"}  # recipe_cost's baseline
        for command in result["commands"]:
            words = command.split()
            found |= {name for flag in ("--defences", "--recipes") if flag in words
                      for name in words[words.index(flag) + 1].split(",")}
    return found


def test_every_result_name_resolves_to_a_recipe_of_the_table():
    names = load("names")
    found = _result_names()
    assert "teachers_plateau_8_1_ckpt_pubonlynear8000" in found and len(found) > 15
    for name in found:
        key, _ = names.parse(name)
        assert key in keras_adamixup.recipes.RECIPES, name


def test_names_read_each_word_as_the_same_settings():
    names = load("names")
    key, options = names.parse("teachers_plateau_8_1_ckpt_pubonlynear8000")
    assert key == "split_teachers" and (options["teachers"], options["exclude"]) == (8, 1)
    assert (options["mixing"], options["features"], options["checkpoint"]) == (
        "plateau", "auto", True)
    assert isinstance(options["unlabelled"], names.PublicRows) and options["unlabelled"] == 8000
    assert options["teacher_args"] == {**names.TEACHER_DEFAULTS, "student_rows": "unlabelled",
                                       "unlabelled_teachers": "nearest"}
    assert names.parse("teachers_acc_16_2_ckptacc")[1]["checkpoint"] == \
        names.CHECKPOINT_ACCURACY
    assert names.parse("teachers_last_16_2")[1]["teacher_args"]["select_epoch"] is None
    swap = names.parse("teachers_mix_swap_16_2", feature_groups=[[0, 1]])[1]
    assert (swap["mixing"], swap["features"], swap["feature_groups"]) == (
        "paper", "swap", [[0, 1]])
    assert names.parse("none") == ("undefended", {})
    assert names.parse("none_ckpt") == names.parse("checkpoint") == ("checkpoint", {})
    assert names.parse("dp_sgd_0.5") == ("dp_sgd", {"noise_multiplier": 0.5})
    assert names.parse("label_smoothing_0.1") == ("label_smoothing", {"smoothing": 0.1})
    assert names.parse("relaxloss_0.8") == ("relaxloss", {"alpha": 0.8})
    assert names.parse("sat_40_0.9") == ("self_adaptive", {"start": 40, "momentum": 0.9})
    assert names.parse("sat_30_0.9_a0.4")[1]["alpha"] == 0.4
    assert names.parse("sat_30_0.9_a0.4_f1.0")[1]["flood"] == 1.0
    with pytest.raises(ValueError, match="sat_START_M"):
        names.parse("sat_30_0.9_x0.4")
    budgeted = names.parse("teachers_plateau_compute1_lw0.5_2_1_ckpt")[1]["teacher_args"]
    assert (budgeted["compute"], budgeted["label_weight"]) == (1.0, 0.5)
    mixup = names.parse("mixup_a0.2")[1]
    assert (mixup["coefficient"], mixup["label_mode"], mixup["schedule"].value) == (
        "beta", "soft", 0.2)
    # a target with a checkpoint: a utility-aware controller, fresh for every model
    target = names.parse("adamixup_target_0.55_ckpt")[1]["schedule"]
    assert target() is not target() and target().max_accuracy_drop == 0.01
    assert names.parse("adamixup_target_0.55")[1]["schedule"]().max_accuracy_drop is None
    assert names.parse("adamixup_focus_linear_soft")[1]["focus"].factor == 1.0
    relaxed = names.parse("adamixup_relax0.9_const0_ckpt")[1]
    assert repr(relaxed["relax"]) == "LossTarget(target='holdout', factor=0.9)"
    assert relaxed["schedule"].value_bounds() == (0.0, 0.0) and relaxed["checkpoint"]
    for wrong, why in (("teachers_mix_16", "_K_L"), ("teachers_fast_16_2", "teachers' word"),
                       ("adamixup_cosine", "schedule"), ("memguard_ckpt", "_ckpt is for"),
                       ("none_pub8", "public rows"), ("dp_sgd_x", "not a number")):
        with pytest.raises(ValueError, match=why):
            names.parse(wrong)
    with pytest.raises(SystemExit, match="unknown defence 'teachers_x'"):
        names.checked("none,teachers_x")


def test_an_ema_suffix_compiles_the_recipe_with_averaged_weights():
    names, labels = load("names"), load("labels")
    val = (np.zeros((8, 4), "float32"), np.zeros(8, "int64"))
    for name in ("mixup_relaxat1.0_a0.4_ema0.99", "none_ema0.9"):
        optimizer = names.recipe(name, 4, 3, 8, 0, val, 1)[0]().optimizer
        assert optimizer.use_ema and optimizer.ema_momentum == float(name.rsplit("ema")[1])
    assert not names.recipe("mixup_a0.4", 4, 3, 8, 0, val, 1)[0]().optimizer.use_ema
    assert names.parse("none_ema0.99") == ("undefended", {names.EMA: 0.99})
    assert labels.label("mixup_relaxat1.0_a0.4_ema0.99") == (
        "static mixup (α 0.4) + LossTarget(1.0), weights averaged (EMA 0.99)")
    with pytest.raises(ValueError, match="momentum in"):
        names.parse("none_ema1.5")
    with pytest.raises(ValueError, match="compiles its own"):
        names.recipe("relaxloss_1.2_ema0.99", 4, 3, 8, 0, val, 1)


def test_a_gce_suffix_trains_on_generalized_cross_entropy():
    names, labels, robust = load("names"), load("labels"), load("robust_loss")
    val = (np.zeros((8, 4), "float32"), np.zeros(8, "int64"))
    model = names.recipe("mixup_a0.4_gce0.7_ema0.99", 4, 3, 8, 0, val, 1)[0]()
    assert isinstance(model.loss, robust.GeneralizedCrossentropy) and model.loss.q == 0.7
    assert model.optimizer.use_ema
    assert not isinstance(names.recipe("mixup_a0.4", 4, 3, 8, 0, val, 1)[0]().loss,
                          robust.GeneralizedCrossentropy)
    assert labels.label("none_gce0.5") == "none, generalized cross-entropy (q 0.5)"
    with pytest.raises(ValueError, match="q in"):
        names.parse("none_gce1.5")
    logits = np.array([[2.0, 0.0, -1.0], [0.5, 1.0, -2.0]], "float32")
    ids, soft = np.array([0, 2]), np.array([[0.7, 0.3, 0.0], [0.0, 0.0, 1.0]], "float32")
    loss = robust.GeneralizedCrossentropy(0.7)
    probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(logits))
    by_hand = (1 - probabilities[[0, 1], ids] ** 0.7) / 0.7
    np.testing.assert_allclose(float(loss(ids, logits)), by_hand.mean(), rtol=1e-5)
    np.testing.assert_allclose(float(loss(np.eye(3)[ids], logits)), by_hand.mean(), rtol=1e-5)
    first = probabilities[0] ** 0.7
    mixed = (0.7 * (1 - first[0]) + 0.3 * (1 - first[1])) / 0.7
    np.testing.assert_allclose(float(loss(soft, logits)),
                               (mixed + by_hand[1]) / 2, rtol=1e-5)
    # q -> 0 is cross-entropy
    np.testing.assert_allclose(
        float(robust.GeneralizedCrossentropy(1e-4)(ids, logits)),
        float(keras.losses.SparseCategoricalCrossentropy(from_logits=True)(ids, logits)),
        rtol=1e-3)


def test_baselines_are_registered_in_the_package_table():
    baselines = load("baselines")
    for key in baselines.BASELINES:
        assert keras_adamixup.recipes.RECIPES[key] is getattr(baselines, key)
    assert baselines.dp_epsilon(4000, 64, 40, 1.0) < baselines.dp_epsilon(4000, 64, 40, 0.5)


BENCHMARKS = ROOT / "benchmarks"


def test_no_benchmark_edits_the_import_path():
    """The benchmarks are a package run with ``python -m benchmarks.NAME``: none of them
    reaches its neighbours by editing `sys.path`."""
    edits = [f"{path.name}:{node.lineno}" for path in sorted(BENCHMARKS.rglob("*.py"))
             for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
             if isinstance(node, ast.Attribute) and node.attr == "path"
             and isinstance(node.value, ast.Name) and node.value.id == "sys"]
    assert edits == [], f"sys.path used in benchmarks/: {edits}"
    assert (BENCHMARKS / "__init__.py").exists()


def test_every_script_parses_its_arguments_with_the_shared_module():
    libraries = {"__init__", "common", "data", "names", "baselines", "dp_sgd", "memguard",
                 "labels", "rows", "relaxloss", "mixed_target", "robust_loss",
                 "self_adaptive", "wrapped_model", "box_mixing"}
    for path in sorted(BENCHMARKS.glob("*.py")):
        text = path.read_text(encoding="utf-8")
        if path.stem in libraries:
            assert "def main(" not in text, path.name
            continue
        assert "common.parser(__doc__" in text, path.name
        assert "argparse.ArgumentParser(" not in text, path.name
        assert f"python -m benchmarks.{path.stem}" in text or path.stem == "device_check" \
            and "benchmarks/device_check.sh" in text, path.name


def test_shared_arguments_take_each_scripts_defaults():
    common = load("common")
    parser = common.parser("t\n", "data", "seed", members=4000, quick="tiny")
    args = parser.parse_args([])
    assert (args.data, args.seed, args.members, args.quick) == ("digits", 0, 4000, False)
    assert parser.parse_args(["--quick", "--members", "10"]).members == 10
    assert "tiny" in parser.format_help()
    with pytest.raises(ValueError, match="not a shared argument"):
        common.parser("t", "widht")
    assert common.integers("0,1,2") == [0, 1, 2]
    assert common.module_command("overhead", "--quick")[1:] == [
        "-m", "benchmarks.overhead", "--quick"]


def test_distributed_throughput_summary():
    bench = load("distributed_throughput")
    rows = bench.summarize([
        {"devices": 1, "policy": "float32", "replicas": 1, "images_per_round": 100,
         "times": {"plain": [1.0, 2.0, 1.0], "adamixup_model": [1.1, 2.0, 1.05]}},
        {"devices": 2, "policy": "float32", "replicas": 2, "images_per_round": 100,
         "times": {"plain": [2.0, 2.0, 2.0], "adamixup_model": [2.0, 2.2, 2.0]}},
    ])
    assert rows[0]["plain_images_s"] == pytest.approx(100.0)
    assert rows[0]["ratio"] == pytest.approx(1.05)
    assert rows[1]["ratio"] == pytest.approx(1.0) and rows[1]["plain_vs_first"] == 0.5


@pytest.mark.slow  # two subprocesses with TensorFlow
def test_distributed_throughput_quick_run(tmp_path):
    bench = load("distributed_throughput")
    out = tmp_path / "t.json"
    assert bench.main(["--quick", "--configs", "1:float32,2:float32", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert [r["replicas"] for r in result["results"]] == [1, 2]
    assert all(r["ratio"] > 0 for r in result["rows"])


def test_monitor_signals_quick():
    bench = load("monitor_signals")
    results = bench.main(["--quick"])
    assert results["loss threshold (monitor)"] == pytest.approx(results["audit: threshold"],
                                                                abs=1e-6)
    assert {"audit: lira_online", "audit: lira_offline", "loss normalized per class"} <= set(
        results)
    # the package's monitor computes the benchmark's trajectory signal (up to float noise)
    assert results["PrivacyMonitor, signal='trajectory'"] == pytest.approx(
        results["confidence change since epoch 5"], abs=5e-3)
    assert results["PrivacyMonitor, its loss AUC"] == pytest.approx(
        results["loss threshold (monitor)"], abs=5e-3)
    assert all(0.0 <= v <= 1.0 for v in results.values())
    zm, zn = bench.class_normalized(np.array([1.0, 3.0]), np.array([0, 1]),
                                    np.array([0.0, 2.0, 2.0, 4.0]), np.array([0, 0, 1, 1]))
    np.testing.assert_allclose(zm, [0.0, 0.0])
    np.testing.assert_allclose(zn, [-1.0, 1.0, -1.0, 1.0])


# -- DP-SGD (the benchmark's baseline) -------------------------------------------


def _dp_model(noise_multiplier, l2_norm_clip, seed=0):
    import keras

    dp_sgd = load("dp_sgd")
    keras.utils.set_random_seed(seed)
    inner = keras.Sequential([keras.Input((64,)), keras.layers.Dense(32, activation="relu"),
                              keras.layers.Dense(10)])
    model = dp_sgd.DPSGDModel(inner, l2_norm_clip=l2_norm_clip,
                              noise_multiplier=noise_multiplier, seed=seed)
    model.compile(keras.optimizers.Adam(3e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.build((None, 64))
    return model, inner


@pytest.mark.parametrize("clip", [1e6, 0.05])
def test_dp_sgd_clips_each_example_gradient(digits, clip):
    import tensorflow as tf

    (x, y), _ = digits
    model, inner = _dp_model(0.0, clip)
    summed, _, losses = model.clipped_gradient_sum(tf.constant(x[:16]), tf.constant(y[:16]))
    reference = None
    for i in range(16):  # one example at a time, clipped by hand
        with tf.GradientTape() as tape:
            loss = model.loss(y[i:i + 1], inner(x[i:i + 1]))
        grads = tape.gradient(loss, inner.trainable_variables)
        norm = np.sqrt(sum(float(tf.reduce_sum(g ** 2)) for g in grads))
        grads = [g.numpy() * min(1.0, clip / norm) for g in grads]
        reference = grads if reference is None else [a + b for a, b in zip(reference, grads)]
        assert float(losses[i]) == pytest.approx(float(loss), rel=1e-5)
    for got, want in zip(summed, reference):
        np.testing.assert_allclose(got.numpy(), want, atol=1e-5 * max(1.0, np.abs(want).max()))


def test_dp_sgd_adds_noise_of_the_stated_scale(digits):
    import tensorflow as tf

    (x, y), _ = digits
    model, _ = _dp_model(2.0, 0.5)
    xb, yb = tf.constant(x[:8]), tf.constant(y[:8])
    summed, _, _ = model.clipped_gradient_sum(xb, yb)
    noisy, _, _ = model.noisy_gradient(xb, yb)
    noise = np.concatenate([(n - s / 8).numpy().ravel() for n, s in zip(noisy, summed)])
    assert noise.size > 2000
    assert noise.std() == pytest.approx(2.0 * 0.5 / 8, rel=0.05)  # σ·C / batch
    assert abs(noise.mean()) < 0.01


def test_dp_sgd_trains_and_reports_epsilon(digits):
    from scipy import stats
    from scipy.optimize import brentq

    dp_sgd = load("dp_sgd")
    (x, y), (xt, yt) = digits
    model, _ = _dp_model(0.5, 1.0)
    history = model.fit(x, y, batch_size=64, epochs=4, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert model.evaluate(xt, yt, verbose=0)[1] > 0.3  # above chance (0.1) despite the noise
    # one full-batch step is the Gaussian mechanism: the RDP bound lies above
    # its exact ε (Balle & Wang 2018) and below the classic RDP conversion
    sigma, delta = 1.0, 1e-5
    exact = brentq(lambda e: stats.norm.cdf(0.5 / sigma - e * sigma) - np.exp(e)
                   * stats.norm.cdf(-0.5 / sigma - e * sigma) - delta, 1e-6, 50)
    classic = min(a / (2 * sigma ** 2) + np.log(1 / delta) / (a - 1) for a in range(2, 200))
    got = dp_sgd.epsilon(100, 100, 1, sigma, delta)
    assert exact <= got <= classic
    assert dp_sgd.epsilon(4000, 64, 40, 1.0) < dp_sgd.epsilon(4000, 64, 40, 0.5)
    assert dp_sgd.epsilon(4000, 64, 20, 1.0) < dp_sgd.epsilon(4000, 64, 40, 1.0)
    assert dp_sgd.epsilon(4000, 64, 40, 0.0) == float("inf")
    with pytest.raises(ValueError, match="l2_norm_clip"):
        dp_sgd.DPSGDModel(model, l2_norm_clip=0.0)


def test_privacy_utility_reads_tfds_and_npz(tmp_path, monkeypatch):
    pu = load("privacy_utility")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(30, 4, 4, 3), dtype=np.uint8)
    labels = rng.integers(0, 5, 30)

    def fake_tfds(name, data_dir=None, limit=None):  # what tensorflow-datasets would give
        assert name == "cifar10"
        return (images[:20], labels[:20]), (images[20:], labels[20:])

    monkeypatch.setattr(pu.audit.data, "load_tfds", fake_tfds)
    x, y = pu.load_pool("tfds:cifar10")
    assert x.shape == (30, 48) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    np.testing.assert_allclose(x[3], images[3].reshape(-1) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, labels)
    path = tmp_path / "d.npz"
    np.savez(path, x_train=images[:20], y_train=labels[:20], x_test=images[20:],
             y_test=labels[20:])
    x2, y2 = pu.load_pool(f"npz:{path}")
    np.testing.assert_array_equal(x2, x)
    np.testing.assert_array_equal(y2, y)
    with pytest.raises(ValueError, match="tfds:NAME"):
        pu.load_pool("cifar")


@pytest.mark.slow  # a minute; what it times is tested elsewhere, this checks the script
def test_device_check_dry_run(tmp_path):
    """The prepared GPU check's dry run: every code path at tiny sizes, one table."""
    import subprocess
    import sys

    env = {**os.environ, "OUT": str(tmp_path), "PYTHON": sys.executable}
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "device_check.sh"), "--dry-run"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = [line for line in proc.stdout.splitlines() if line.startswith("| ")]
    # header, 2 variants × 2 policies, shadows ×2, audit, the recommended setting's fit
    assert len(table) == 1 + 4 + 3 + 1
    assert "mixed_bfloat16" in proc.stdout and "2 shadows together" in proc.stdout
    result = json.loads((tmp_path / "device_check.json").read_text())
    assert result["dry_run"] and set(result["training"]) == {"float32", "mixed_bfloat16"}
    for ratios in result["training"].values():
        assert ratios["plain"]["ratio"] == 1.0 and ratios["adamixup_model"]["ratio"] > 0
    assert result["shadows"]["together_s"] > 0 and result["audit"]["audit_s"] > 0
    assert result["recipe"]["ratio"] > 0 and result["recipe"]["teachers"] == 2


def test_shadow_time_quick(capsys):
    shadow_time = load("shadow_time")
    assert shadow_time.main(["--shadows", "2", "--epochs", "1", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert "| 2 |" in out and "together, split seed 0" in out


def test_stack_time_quick(capsys):
    stack_time = load("stack_time")
    assert stack_time.main(["--teachers", "3", "--epochs", "2", "--repeats", "1",
                            "--members", "200", "--width", "16"]) == 0
    out = capsys.readouterr().out
    assert "| 3 | vectorized |" in out and "| 3 | loop |" in out
    gap = float(out.split("largest weight difference after training ")[1].split()[0])
    assert gap < 1e-3  # the two paths train the same models


def test_rmia_vs_lira_quick(capsys):
    rmia_vs_lira = load("rmia_vs_lira")
    assert rmia_vs_lira.main(["--data", "digits", "--shadows", "2", "--epochs", "2",
                              "--targets", "none"]) == 0
    out = capsys.readouterr().out
    for attack in rmia_vs_lira.ATTACKS:
        assert f"| none | " in out and f"| 2 | {attack} |" in out


def test_memguard_keeps_labels_and_blunts_its_own_attack(digits):
    """MemGuard's guarantees: labels kept, probabilities returned, the defender's
    attack classifier pushed towards 0.5 on the guarded outputs."""
    import keras

    memguard = load("memguard")
    (x, y), (xt, yt) = digits
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(128, activation="relu"),
                              keras.layers.Dense(10)])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x[:300], y[:300], epochs=60, batch_size=32, verbose=0)
    guarded = memguard.MemGuardModel.fit_defence(model, (x[:300], y[:300]),
                                                 (xt[:300], yt[:300]), epochs=50)
    probs = guarded.predict(xt[:200], verbose=0)
    logits = model.predict(xt[:200], verbose=0)
    np.testing.assert_array_equal(probs.argmax(1), logits.argmax(1))
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    assert 0.0 < guarded.mean_distortion(xt[:200]) < 0.5

    before = [guarded.attack.predict(memguard._sorted_probs(model.predict(a, verbose=0)),
                                     verbose=0) for a in (x[:300], xt[:300])]
    after = [guarded.attack.predict(memguard.tf.math.top_k(guarded.predict(a, verbose=0),
                                                           k=10).values, verbose=0)
             for a in (x[:300], xt[:300])]
    gap = lambda s: abs(float(np.mean(s[0])) - float(np.mean(s[1])))  # noqa: E731
    assert gap(after) < gap(before) / 2  # members and non-members look alike to it


def test_memguard_recipe_trains_the_model_then_its_guard(digits):
    """The defender's way of training (shadows too): fit = the model, then its attack model."""
    import keras

    memguard = load("memguard")
    (x, y), (xt, yt) = digits
    inner = keras.Sequential([keras.Input((64,)), keras.layers.Dense(10)])
    inner.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    guarded = memguard.MemGuardModel(inner, holdout=(xt[:100], yt[:100]), steps=5)
    with pytest.raises(ValueError, match="needs `holdout`"):
        memguard.MemGuardModel(inner).fit(x[:10], y[:10])
    history = guarded.fit(x[:200], y[:200], epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and guarded.attack is not None
    probs = guarded.predict(x[:50], verbose=0)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)


@pytest.mark.slow  # trains two split-teacher recipes
def test_canary_targets_quick(capsys):
    targets = load("canary_targets")
    assert targets.main(["--members", "300", "--epochs", "2", "--canaries", "10"]) == 0
    table = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("| teachers")]
    assert len(table) == 6  # two recipes × three kinds
    cells = [ln.strip("| ").split(" | ") for ln in table]
    assert all(0.0 <= float(c) <= 1.0 for row in cells for c in row[2:5])
    # the last column is in / out of the two before it
    assert all(abs(float(r[5]) - float(r[3]) / max(float(r[4]), 1e-12))
               <= 0.01 * float(r[5]) + 1e-9 for r in cells if float(r[4]) > 1e-3)


def test_long_tail_masks_and_quick_run(capsys):
    long_tail = load("long_tail")
    soft = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.7, 0.3], [0.5, 0.5]])
    y = np.array([0, 0, 1, 1, 1])
    wrong, random = long_tail.dropped(soft, y, seed=3)
    assert wrong.tolist() == [False, True, False, True, True]  # a tie's arg-max is class 0
    assert random.sum() == wrong.sum() == 3
    rows = long_tail.main(["--quick"])
    r = rows[0]
    assert 0 < r["oof_wrong"] < r["members"] == 718
    for kept in ("without_oof_wrong", "without_random", "recommended"):
        assert 0.0 < r[f"acc_{kept}"] <= 1.0
    assert r["drop_oof_wrong"] == pytest.approx(r["acc_all"] - r["acc_without_oof_wrong"])
    assert r["drop_recommended"] == pytest.approx(r["acc_all"] - r["acc_recommended"])
    assert "| 0 | 718 |" in capsys.readouterr().out


# -- RelaxLoss (the image benchmarks' baseline) ------------------------------------


def test_relaxloss_holds_the_training_loss_at_its_target():
    import keras

    relaxloss = load("relaxloss")
    x, y = clusters(512, classes=10, spread=1.5, features=32)

    def trained(alpha):
        keras.utils.set_random_seed(0)
        inner = keras.Sequential([keras.Input((32,)), keras.layers.Dense(64, activation="relu"),
                                  keras.layers.Dense(10)])
        model = relaxloss.RelaxLossModel(inner, alpha=alpha)
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        history = model.fit(x, y, epochs=25, batch_size=64, verbose=0)
        return np.mean(history.history["loss"][-5:]), int(model.steps_below.numpy())

    relaxed, below = trained(0.5)
    plain, _ = trained(1e-6)  # a target never reached: ordinary training
    assert below > 0 and 0.3 < relaxed < 0.8 and plain < 0.1
    with pytest.raises(ValueError, match="alpha > 0"):
        relaxloss.RelaxLossModel(keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)]),
                                 alpha=0)


def test_self_adaptive_targets_move_to_the_predictions_from_their_start_only():
    import keras

    sat = load("self_adaptive")
    x, y = clusters(96, classes=4, spread=2.0, features=16)
    y_given = y.copy()
    y_given[:8] = (y[:8] + 1) % 4  # mislabelled rows

    def trained(start, alpha=0.0, flood=0.0):
        keras.utils.set_random_seed(0)
        inner = keras.Sequential([keras.Input((16,)), keras.layers.Dense(4)])
        model = sat.SelfAdaptiveModel(inner, start=start, momentum=0.5, alpha=alpha, flood=flood)
        model.compile(keras.optimizers.Adam(0.02),
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
        history = model.fit(x, y_given, epochs=6, batch_size=32, verbose=0)
        return model._state["targets"].numpy(), history

    never, history = trained(start=6)  # the targets never move: the given labels
    np.testing.assert_array_equal(never, np.eye(4)[y_given])
    assert {"loss", "accuracy"} <= set(history.history)
    moved, _ = trained(start=2)
    assert np.allclose(moved.sum(1), 1.0, atol=1e-5) and (moved.max(1) < 1.0).all()
    # 4 visits at momentum 0.5: at most 1/16 of the given label is left unless predicted
    assert (moved[:8].argmax(1) == y[:8]).mean() > (never[:8].argmax(1) == y[:8]).mean()
    mixed, _ = trained(start=2, alpha=0.4)
    assert (mixed.max(1) < 1.0).all()
    _, flooded = trained(start=6, flood=0.8)  # the loss held near 0.8 from below
    assert min(flooded.history["loss"][-3:]) > 0.6 > history.history["loss"][-1]
    restored = sat.SelfAdaptiveModel.from_config(
        sat.SelfAdaptiveModel(keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)]),
                              start=3, momentum=0.8, alpha=0.2).get_config())
    assert (restored.start, restored.momentum, restored.alpha) == (3, 0.8, 0.2)
    with pytest.raises(ValueError, match="momentum in"):
        sat.SelfAdaptiveModel(inner_model(), momentum=1.0)


def inner_model():
    import keras

    return keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])


def test_batch_norm_lag_skips_data_that_is_not_images(capsys):
    assert load("batch_norm_lag").main(["--data", "digits", "--epochs", "1"]) == 0
    assert "not images" in capsys.readouterr().out


def test_teacher_levers_quick_run(tmp_path, capsys):
    out = tmp_path / "levers.json"
    assert load("teacher_levers").main(["--data", "digits", "--members", "300", "--epochs", "1",
                                        "--variants", "recommended,lw0.5",
                                        "--out", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [row["run"] for row in rows] == ["plain", "teachers 2_1", "recommended", "lw0.5"]
    assert 0.0 <= rows[1]["soft_label_accuracy"] <= 1.0 and "| lw0.5 |" in capsys.readouterr().out


def test_the_images_word_searches_flattened_images_for_near_copies():
    from benchmarks import names

    rng = np.random.default_rng(0)
    val = (rng.random((8, 64)).astype("float32"), rng.integers(0, 3, 8))
    model = names.recipe("teachers_plateau_images_4_1_ckpt", 64, 3, 8, 0, val, 1,
                         image_shape=(8, 8))[0]()
    assert model.targets.image_shape == (8, 8)
    assert names.recipe("teachers_plateau_4_1_ckpt", 64, 3, 8, 0, val, 1,
                        image_shape=(8, 8))[0]().targets.image_shape is None
    with pytest.raises(ValueError, match="image shape"):
        names.recipe("teachers_plateau_images_4_1_ckpt", 64, 3, 8, 0, val, 1)


def test_recipe_accuracy_quick_run_reuses_the_same_teachers(tmp_path):
    from benchmarks import recipe_accuracy

    out = tmp_path / "acc.json"
    assert recipe_accuracy.main(["--quick", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["recipe"] for r in rows] == ["none", "teachers_plateau_compute1_2_1",
                                           "teachers_compute1_2_1"]
    assert "soft_label_accuracy" not in rows[0]
    # the same SplitTeachers: the second taught model reuses the first one's labels
    assert rows[1]["teachers_reused"] is False and rows[2]["teachers_reused"] is True
    assert 0.0 <= rows[2]["soft_label_accuracy"] <= 1.0 and rows[2]["epochs"] == 3
    assert all(0.0 <= r["proxy_auc"] <= 1.0 and 0.0 <= r["proxy_tpr_at_1pct"] <= 1.0
               for r in rows)


def test_the_privacy_proxy_reads_logits_and_probabilities():
    from benchmarks.recipe_accuracy import proxy

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 400)
    logits = rng.normal(size=(400, 3))
    logits[np.arange(200), labels[:200]] += 3.0  # the members: confident in their label
    members, nonmembers = (logits[:200], labels[:200]), (logits[200:], labels[200:])
    from_logits = proxy(*members, *nonmembers)
    assert from_logits["proxy_auc"] > 0.9 and from_logits["proxy_tpr_at_1pct"] > 0.3
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    from_probabilities = proxy(probabilities[:200], labels[:200], probabilities[200:],
                               labels[200:])
    assert from_probabilities["proxy_auc"] == pytest.approx(from_logits["proxy_auc"], abs=1e-3)
    assert proxy(*nonmembers, *nonmembers)["proxy_auc"] == 0.5


def test_duplicates_time_images_compares_candidate_settings(capsys):
    from benchmarks import duplicates_time

    assert duplicates_time.main(["--as-images", "--data", "digits", "--sizes", "300",
                                 "--copies", "5", "--candidates", "none,4",
                                 "--repeats", "1"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| 3")]
    assert [row.split(" | ")[1] for row in rows] == ["none", "4"]
    assert all("relative 100%" in row for row in rows) and "shift 100%" in rows[0]
    assert rows[0].endswith("| yes |")  # 8 x 8 digits: 4 candidates are too few for shifts
    assert "shift 100%" not in rows[1] and "rows differ" in rows[1]


def test_collect_adds_audit_rows_to_a_results_file(tmp_path, monkeypatch):
    render = load("render_results")
    monkeypatch.setattr(render, "RESULTS", tmp_path / "results")

    def run(folder, rows):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "runs.json").write_text(json.dumps(
            [{"data": "adult", "defence": d, "seed": s, "best_auc": a} for d, s, a in rows]))
        return str(tmp_path / folder)

    first = run("one", [("none", 0, 0.6), ("early_stopping", 0, 0.55)])
    path = render.collect("canary_audit", "adult", [first], ["cmd one"])
    again = run("two", [("none", 0, 0.61), ("mixup_a0.4", 0, 0.68)])
    render.collect("canary_audit", "adult", [again], ["cmd two"], add=True)
    result = json.loads(path.read_text())
    assert result["commands"] == ["cmd one", "cmd two"]
    assert {(r["defence"], r["best_auc"]) for r in result["rows"]} == {
        ("none", 0.61), ("early_stopping", 0.55), ("mixup_a0.4", 0.68)}
    with pytest.raises(ValueError, match="--add"):
        render.collect("recipe_cost", "adult", [first], ["cmd"], add=True)
    # an audit with more shadows: its own file, loaded beside the main one
    strong = render.collect("canary_audit", "adult", [again], ["cmd three"], variant="strong")
    assert strong.name == "canary_audit_adult_strong.json"
    loaded = render.load(tmp_path / "results")
    assert loaded["canary_audit", "adult"]["commands"] == ["cmd one", "cmd two"]
    assert loaded["canary_audit:strong", "adult"]["commands"] == ["cmd three"]
    # the frontier plot: the stronger audit in a panel of its own, beside the main one
    def shadowed(content):
        for row in content["rows"]:
            row.update({"plain_shadows": 8, "own_shadows": 4, "best_" + render.LOW: 0.01,
                        "test_accuracy": 0.8})
        return content
    panels = render._panels({key: shadowed(content) for key, content in loaded.items()})
    assert [title for title, _ in panels] == ["UCI Adult", "UCI Adult, 8 + 4 shadows"]
    render.plot({key: shadowed(content) for key, content in loaded.items()},
                tmp_path / "frontier.png")
    assert (tmp_path / "frontier.png").stat().st_size > 0
    with pytest.raises(ValueError, match="--variant"):
        render.collect("recipe_cost", "adult", [first], ["cmd"], variant="strong")


def test_the_mixed_hold_out_target_prototype_sets_the_target_each_epoch():
    names = load("names")
    rng = np.random.default_rng(0)
    val = (rng.normal(size=(128, 4)).astype("float32"), rng.integers(0, 3, 128))
    factory, fit_kwargs_for = names.recipe("mixup_relaxmix0.8_a0.4", 4, 3, 8, 0, val, 2)
    model = factory()
    x, y = rng.normal(size=(200, 4)).astype("float32") + 5.0, rng.integers(0, 3, 200)
    kwargs = fit_kwargs_for(x, y)
    target = kwargs["callbacks"][-1]
    assert target.factor == 0.8 and target.x.shape == (128, 4)
    assert np.allclose(target.y.sum(1), 1.0) and (target.entropy >= 0).all()
    model.fit(x, y, **kwargs)
    assert len(target.history) == 2 and all(kl > 0 for kl in target.history)
    assert float(model.loss_target.numpy()) == pytest.approx(0.8 * target.history[-1])
    assert "mixed_holdout_target" in str(fit_kwargs_for.fingerprint())
    with pytest.raises(ValueError, match="static mixup"):
        names.recipe("adamixup_relaxmix0.8_linear_soft", 4, 3, 8, 0, val, 2)


def test_dp_sgd_on_a_cnn_uses_group_norm_and_one_example_gradients():
    import keras
    import tensorflow as tf

    dp_sgd, data = load("dp_sgd"), load("data")
    keras.utils.set_random_seed(0)
    kinds = [type(layer).__name__ for layer in dp_sgd.group_normed(
        data.cnn((8, 8, 3), 4, width=4)).layers]
    assert "BatchNormalization" not in kinds and kinds.count("GroupNormalization") == 4
    assert kinds[:2] == ["RandomFlip", "RandomTranslation"]  # augmentation kept
    twelve = dp_sgd.group_normed(keras.Sequential([  # 8 groups cannot split 12 channels
        keras.Input((8, 8, 3)), keras.layers.Conv2D(12, 3), keras.layers.BatchNormalization()]))
    assert twelve.layers[-1].groups == 6
    # without augmentation (so that both sides see the same inputs): the sum of
    # the per-example gradients of three examples is the sum of three
    # one-example batches' gradients, which batch normalization would not give
    normed = dp_sgd.group_normed(keras.Sequential([
        keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3), keras.layers.BatchNormalization(),
        keras.layers.ReLU(), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)]))
    model = dp_sgd.DPSGDModel(normed, l2_norm_clip=1e6, noise_multiplier=0.0, seed=0)
    model.compile(keras.optimizers.Adam(1e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = tf.random.uniform((3, 8, 8, 3), seed=1)
    y = tf.constant([0, 1, 2])
    summed, _, _ = model.clipped_gradient_sum(x, y)
    reference = None
    for i in range(3):
        with tf.GradientTape() as tape:
            loss = model.loss(y[i:i + 1], normed(x[i:i + 1], training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        reference = grads if reference is None else [a + b for a, b in zip(reference, grads)]
    whole = None
    with tf.GradientTape() as tape:  # batch norm would make the batch's gradient differ
        loss = model.loss(y, normed(x, training=True)) * 3
    whole = tape.gradient(loss, model.trainable_variables)
    for got, want, batch in zip(summed, reference, whole):
        np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-4)
        np.testing.assert_allclose(batch.numpy(), want.numpy(), atol=1e-4)


def test_box_mixing_takes_a_box_of_the_partners_area_and_keeps_the_rest():
    import tensorflow as tf

    box = load("box_mixing")
    x = tf.reshape(tf.range(3 * 8 * 8 * 2, dtype=tf.float32), [3, 8, 8, 2])
    lam = tf.constant([0.75, 1.0, 0.4375])  # boxes of 4 x 4, none, 6 x 6
    partner = tf.constant([1, 2, 0])
    mixed = box.box_leaf(x, lam, partner, uniforms=tf.constant([[0.0, 0.0], [0.5, 0.5],
                                                                 [0.99, 0.99]])).numpy()
    taken = (mixed != x.numpy()).all(axis=-1)  # every channel of a pixel moves together
    assert taken.reshape(3, -1).sum(axis=1).tolist() == [16, 0, 36]
    assert taken[0, :4, :4].all() and taken[2, 2:, 2:].all()  # at the draws' corners
    partner_x = tf.gather(x, partner).numpy()
    np.testing.assert_array_equal(mixed[taken], partner_x[taken])
    np.testing.assert_array_equal(mixed[~taken], x.numpy()[~taken])
    flat = tf.ones([2, 5])  # not images: blended as before
    np.testing.assert_allclose(box.box_leaf(flat, tf.constant([0.5, 0.5]),
                                            tf.constant([1, 0])).numpy(), np.ones([2, 5]))


def test_the_summary_reads_the_image_setting_against_none_on_its_own_seeds():
    """CIFAR-10's recommended setting is the image setting, audited with more shadows on
    fewer seeds than none: the summary compares the two on the seeds both have."""
    render = load("render_results")

    def row(defence, seed, accuracy, tpr):
        return {"defence": defence, "seed": seed, "test_accuracy": accuracy,
                "best_" + render.LOW: tpr, "plain_shadows": 8, "own_shadows": 4}
    strong = {"rows": [row("none", 0, 0.50, 0.02), row("none", 1, 0.60, 0.10),
                       row(render.RECOMMENDED_IMAGES, 0, 0.51, 0.01)]}
    text = render.render_readme_summary({("canary_audit:strong", "cifar10"): strong})
    assert "CIFAR-10 (the image setting, 1 seed, 8 + 4 shadows) ÷2.0, +1.0 points" in text


def test_readme_reads_the_image_setting_from_the_stronger_audit_and_pools_copy_kinds():
    """README's CIFAR-10 rows come from the audit that has the image setting, and
    duplicated canaries of several near-copy kinds count each kind against its own
    out-units (not the pooled 'duplicate' entry, whose bar is higher)."""
    render = load("render_results")

    def row(defence, seed, plain, own, kinds):
        return {"defence": defence, "seed": seed, "test_accuracy": 0.5, "best_auc": 0.6,
                "best_" + render.LOW: 0.01, "plain_shadows": plain, "own_shadows": own,
                "kinds": kinds}
    entry = lambda tpr, units: {"tpr": tpr, "in": units, "units": 25}  # noqa: E731
    kinds = {"mislabelled": entry(0.5, 12), "duplicate": entry(0.1, 20),
             "duplicate:shift": entry(0.5, 10), "duplicate:crop": entry(0.2, 10)}
    main = {"rows": [row("none", 0, 2, 2, {"mislabelled": entry(0.9, 10)})]}
    strong = {"rows": [row(render.RECOMMENDED_IMAGES, 0, 8, 4, kinds)]}
    block = render.render_readme_block({("canary_audit", "cifar10"): main,
                                        ("canary_audit:strong", "cifar10"): strong})
    assert "4 own + 8 undefended shadows" in block and "near-copy kinds" in block
    assert "| 50% / 35% |" in block  # (5 + 2) / 20 found, not the pooled entry's 10 %
    assert "| none |" not in block  # the main audit's rows are not mixed in
