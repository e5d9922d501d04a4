"""Regression tests of the third hostile-user round (issue 39) on the audit, the
monitor, the schedules, the argument checks and the command line
(docs/HARDENING.md, third table): each test names its case."""

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import tensorflow as tf

import keras_adamixup
from keras_adamixup import PrivacyMonitor, SplitTeachers, _checks, audit, schedules
from keras_adamixup.monitor import HoldoutWarning, SignalWarning
from tests.conftest import cluster_student, clusters, compile_adam, small_mlp

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# -- case 1: NaN or inf among the unlabelled rows -------------------------------

@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_case1_unlabelled_rows_with_nan_or_inf_are_refused(bad):
    x, y = clusters(60)
    public = clusters(20, seed=1)[0]
    public[4, 2] = bad
    model = cluster_student(SplitTeachers(2, 1, seed=0, near_duplicates=None))
    with pytest.raises(ValueError, match=r"E43: `unlabelled` has NaN or inf in 1 row\(s\) "
                                         r"\(e.g. rows \[4\]\)"):
        model.fit(x, y, epochs=1, batch_size=16, verbose=0, unlabelled=public)


# -- case 2: the audit's inputs ----------------------------------------------------

def _trained(x, y, classes=3):
    model = compile_adam(small_mlp(classes, inputs=x.shape[1], hidden=16), 1e-2)
    model.fit(x, y, epochs=2, verbose=0)
    return model


def test_case2_audit_refuses_inputs_with_a_nan_column():
    x, y = clusters(120)
    model = _trained(x[:60], y[:60])
    members = x[:60].copy()
    members[:, 5] = np.nan  # was: AUC 1.0 on the class slices, no word
    with pytest.raises(ValueError, match=r"E44: the members' inputs have NaN or inf in 60 "
                                         r"row\(s\).*1 column\(s\) \(e.g. columns \[5\]\)"):
        audit.run_audit(model, (members, y[:60]), (x[60:], y[60:]), attacks=("threshold",))
    nonmembers = x[60:].copy()
    nonmembers[3, 0] = np.inf
    stream = tf.data.Dataset.from_tensor_slices((nonmembers, y[60:])).batch(16)
    with pytest.raises(ValueError, match=r"E44: the non-members' inputs have NaN or inf"):
        audit.run_audit(model, (x[:60], y[:60]), stream, attacks=("threshold",))


def test_case2_cli_audit_refuses_an_npz_with_a_nan_column(tmp_path, capsys):
    from keras_adamixup_cli import main

    x, y = clusters(120)
    _trained(x[:60], y[:60]).save(tmp_path / "m.keras")
    members = x[:60].copy()
    members[:, 1] = np.nan
    np.savez(tmp_path / "d.npz", x_train=members, y_train=y[:60], x_test=x[60:],
             y_test=y[60:])
    code = main(["audit", "--model", str(tmp_path / "m.keras"), "--data",
                 f"npz:{tmp_path / 'd.npz'}", "--out", str(tmp_path / "o"),
                 "--attacks", "threshold"])
    assert code == 2
    assert capsys.readouterr().err.startswith("error: E44: the members' inputs have NaN")


# -- case 5: PlateauDecay's floor --------------------------------------------------

def test_case5_plateau_floor_above_the_start_is_refused():
    with pytest.raises(ValueError, match=r"E45: PlateauDecay: `min_strength` \(0.3\) is above "
                                         r"`start` \(0.2\)"):
        schedules.PlateauDecay(0.2, min_strength=0.3)
    # the default floor never exceeds the start: a small start is not refused for it
    assert schedules.PlateauDecay(0.05).min_strength == 0.05
    assert schedules.PlateauDecay().min_strength == 0.1
    assert schedules.PlateauDecay(0.0, min_strength=0.3).start == 0.0  # no mixing at all
    # the first cut of a start at its floor ends mixing, as documented
    schedule = schedules.PlateauDecay(0.3, min_strength=0.3, patience=1)
    state = {k: v for k, (v, _) in schedule.init_state().items()}
    state = schedule.update_state(state, schedules.Measurement(auc=0.6, loss=1.0))
    state = schedule.update_state(state, schedules.Measurement(auc=0.6, loss=1.0))
    assert state["plateau_strength"] == 0.0


# -- case 6: the monitor's epochs and its history -------------------------------------

def _monitor(x, y, **kwargs):
    return PrivacyMonitor((x[:100], y[:100]), (x[200:300], y[200:300]), **kwargs)


def test_case6_monitor_history_has_one_value_per_measured_epoch():
    x, y = clusters(300)
    model = compile_adam(small_mlp(3, inputs=8, hidden=16), 1e-2)
    monitor = _monitor(x, y, every_epochs=2)
    history = model.fit(x[:200], y[:200], epochs=4, verbose=0, callbacks=[monitor])
    assert [r["epoch"] for r in monitor.records] == [1, 3]
    assert history.history["monitor_epoch"] == [2, 4]  # was 3 values for 2 measurements
    assert history.history["monitor_auc"] == [r["auc"] for r in monitor.records]


@pytest.mark.parametrize("checkpoint_first", [False, True])
def test_case6_a_checkpoint_measures_every_epoch_and_every_one_is_logged(checkpoint_first):
    x, y = clusters(300)
    model = compile_adam(small_mlp(3, inputs=8, hidden=16), 1e-2)
    monitor = _monitor(x, y, every_epochs=2)
    checkpoint = keras_adamixup.PrivacyCheckpoint(monitor)
    callbacks = [checkpoint, monitor] if checkpoint_first else [monitor, checkpoint]
    history = model.fit(x[:200], y[:200], epochs=3, verbose=0, callbacks=callbacks)
    assert [r["epoch"] for r in monitor.records] == [0, 1, 2]
    assert history.history["monitor_epoch"] == [1, 2, 3]
    assert history.history["monitor_auc"] == [r["auc"] for r in monitor.records]


def test_case6_a_monitor_that_measures_nothing_says_so():
    x, y = clusters(300)
    model = compile_adam(small_mlp(3, inputs=8, hidden=16), 1e-2)
    with pytest.warns(SignalWarning, match=r"E49: PrivacyMonitor\(every_epochs=5\) measured "
                                           r"nothing in this fit of 2 epoch"):
        history = model.fit(x[:200], y[:200], epochs=2, verbose=0,
                            callbacks=[_monitor(x, y, every_epochs=5)])
    assert "monitor_auc" not in history.history


def test_monitor_measures_in_every_fit_of_a_loop():
    """Ten `fit(epochs=1)` calls: epochs count from 0 in each, and each is measured (the
    second fit's epoch 0 used to return the first fit's record: one stale value)."""
    x, y = clusters(300)
    model = compile_adam(small_mlp(3, inputs=8, hidden=16), 1e-2)
    monitor = _monitor(x, y)
    logged = []
    for _ in range(3):
        history = model.fit(x[:200], y[:200], epochs=1, verbose=0, callbacks=[monitor])
        logged += history.history["monitor_auc"]
    assert len(monitor.records) == 3
    assert logged == [r["auc"] for r in monitor.records]
    assert len({r["step"] for r in monitor.records}) == 3


# -- HoldoutWarning: decided by row digests where the rows are known ---------------------

class BelowChance(PrivacyMonitor):
    """A monitor that always reads an AUC far below 0.5 (an easier hold-out, or a swap)."""

    def measure(self):
        return {"auc": 0.3, "loss_gap": -0.1, "confidence_gap": -0.1,
                "member_accuracy": 0.9, "holdout_accuracy": 0.95, "holdout_loss": 0.2}


def _breast_cancer():
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    x, y = load_breast_cancer(return_X_y=True)
    x = ((x - x.mean(0)) / x.std(0)).astype("float32")
    return train_test_split(x, y, random_state=0)


def _holdout_warnings(model, x, y, monitor, epochs=4):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(x, y, epochs=epochs, verbose=0, callbacks=[monitor])
    return [w for w in caught if issubclass(w.category, HoldoutWarning)]


def test_holdout_warning_is_silent_on_a_disjoint_breast_cancer_holdout():
    x_train, x_test, y_train, y_test = _breast_cancer()
    base = compile_adam(small_mlp(2, inputs=30, hidden=16), 1e-2)
    # from_training compared the non-members with x_train: no evidence of a mix-up
    monitor = BelowChance.from_training(x_train, y_train, (x_test, y_test))
    assert _holdout_warnings(base, x_train, y_train, monitor) == []
    # AdaMixupModel.fit with arrays compares the monitor with its rows (E14)
    plain = BelowChance((x_train[:120], y_train[:120]), (x_test, y_test))
    model = compile_adam(keras_adamixup.AdaMixupModel(small_mlp(2, inputs=30, hidden=16),
                                                      seed=0), 1e-2)
    assert _holdout_warnings(model, x_train, y_train, plain) == []
    # unchecked (a plain model, a monitor made by hand): the AUC alone, and the remedy
    caught = _holdout_warnings(base, x_train, y_train, plain)
    assert len(caught) == 1
    assert "E48:" in str(caught[0].message) and "check_training_data" in str(caught[0].message)
    plain.check_training_data(x_train)  # the same, decided by digests for this fit
    assert _holdout_warnings(base, x_train, y_train, plain) == []


def test_monitor_from_training_names_a_short_holdout():
    x, y = clusters(300)
    with pytest.raises(ValueError, match="`nonmembers` has 5 examples"):
        PrivacyMonitor.from_training(x[:200], y[:200], (x[200:205], y[200:205]))
    stream = tf.data.Dataset.from_tensor_slices((x[200:], y[200:])).batch(32)
    monitor = PrivacyMonitor.from_training(x[:200], y[:200], stream)
    assert len(monitor.members[1]) == 100


def test_monitor_refuses_nan_inputs():
    """Was accepted: the AUC on NaN rows (outputs finite through a ReLU) drove the schedule."""
    x, y = clusters(300)
    bad = x[200:].copy()
    bad[7, 3] = np.nan
    with pytest.raises(ValueError, match=r"E52: the monitor's `nonmembers` have NaN or inf in "
                                         r"their inputs \(e.g. rows \[7\]\)"):
        PrivacyMonitor((x[:100], y[:100]), (bad, y[200:]))
    stream = tf.data.Dataset.from_tensor_slices((bad, y[200:])).batch(4)
    with pytest.raises(ValueError, match=r"E52: .*`members`.*rows \[7\]"):
        PrivacyMonitor(stream, (x[:100], y[:100]))


# -- wrong argument types: what to pass -------------------------------------------------

def test_wrong_argument_types_say_what_to_pass():
    x, y = clusters(64)
    model = cluster_student()
    with pytest.raises(TypeError, match=r"E47: `epochs` must be an int, got '10' \(type str\): "
                                        r"pass epochs=10"):
        model.fit(x, y, epochs="10", verbose=0)
    with pytest.raises(TypeError, match=r"E47: `validation_split` must be a number.*pass "
                                        r"validation_split=0.2"):
        model.fit(x, y, epochs=1, verbose=0, validation_split="0.2")
    with pytest.raises(ValueError, match=r"E46: `validation_split` must be in \[0, 1\)"):
        model.fit(x, y, epochs=1, verbose=0, validation_split=20)
    with pytest.raises(ValueError, match="E46: `fit` got no training rows"):  # was a schedule
        model.fit(x[:0], y[:0], epochs=1, verbose=0)  # error about "unknown cardinality"
    with pytest.raises(TypeError, match=r"E47: `teachers` must be an int.*pass teachers=4"):
        SplitTeachers("4", 1)
    with pytest.raises(TypeError, match=r"E47: `start` must be a number.*pass start=0.4 "):
        schedules.PlateauDecay("0.4")
    with pytest.raises(TypeError, match=r"E47: `patience` must be an int.*pass patience=2 "
                                        r"\(an int\)"):
        schedules.PlateauDecay(patience=2.0)
    assert SplitTeachers(np.int64(4), np.int64(1)).teachers == 4  # NumPy integers are ints


def test_schedule_given_as_a_name_a_string_or_a_function_says_what_to_pass():
    with pytest.raises(TypeError, match=r"E47: .*got 'PlateauDecay': pass an instance, e.g. "
                                        r"schedule=keras_adamixup.schedules.PlateauDecay"):
        keras_adamixup.AdaMixupModel(small_mlp(3, inputs=8), schedule="PlateauDecay")
    with pytest.raises(TypeError, match=r"got '0.2': pass the number, schedule=0.2"):
        schedules.get("0.2")
    with pytest.raises(TypeError, match="a function is not saved with the model"):
        schedules.get(lambda step, total: 0.2)
    assert isinstance(schedules.get(np.float32(0.25)), schedules.Constant)  # was refused


def test_keras_fit_arguments_are_checked_before_keras_reads_them():
    x, y = clusters(64)
    with pytest.raises(TypeError, match=r"E47: `batch_size` must be an int or None, got 32.0 "
                                        r"\(type float\): pass batch_size=32"):
        _checks.fit_arguments(1, 32.0)
    with pytest.raises(ValueError, match=r"E46: `validation_data` must be \(x_val, y_val\).*"
                                         r"inputs without labels"):
        _checks.fit_arguments(1, None, "auto", {"validation_data": x})
    with pytest.raises(ValueError, match=r"E46: `validation_data`.*a tuple of 1 element"):
        _checks.fit_arguments(1, None, "auto", {"validation_data": (x,)})
    with pytest.raises(ValueError, match=r"E46: `verbose` must be one of"):
        _checks.fit_arguments(1, None, "0")
    _checks.fit_arguments(3, 32, 2, {"validation_data": (x, y), "validation_split": 0.0,
                                     "shuffle": "batch", "initial_epoch": 1})


# -- the audit's first five minutes ----------------------------------------------------

def test_fast_knn_attack_on_fewer_rows_than_its_neighbours():
    """12 members: each fold has fewer rows than the 25 neighbours (was a scikit-learn
    ValueError from the default attacks)."""
    rng = np.random.default_rng(0)
    report = audit.audit_predictions(rng.random((12, 3)), np.arange(12) % 3,
                                     rng.random((12, 3)), np.arange(12) % 3,
                                     slices=("entire",))
    assert "knn" in {row["attack"] for row in report.attacks}


def test_audit_mistakes_of_the_first_minutes_say_what_to_pass():
    x, y = clusters(120)
    model = _trained(x[:60], y[:60])
    with pytest.raises(ValueError, match=r"E50: `members` must be a pair \(x, y\).*an array "
                                         r"of shape \(60, 8\)"):
        audit.run_audit(model, x[:60], x[60:])
    with pytest.raises(TypeError, match=r"E50: `lira` must be a ShadowRecipe"):
        audit.run_audit(model, (x[:60], y[:60]), (x[60:], y[60:]), lira=4)
    with pytest.raises(TypeError, match=r"E50: `outputs_members` must be the model's outputs"):
        audit.audit_predictions(model, y[:60], model, y[60:])
    with pytest.raises(ValueError, match=r"E50: `outputs_members` holds integers"):
        audit.audit_predictions(y[:60] + 1, y[:60], y[60:] + 1, y[60:])
    with pytest.raises(ValueError, match="Too few examples for a stable attack: 0 members"):
        audit.run_audit(model, (x[:0], y[:0]), (x[60:], y[60:]))


def test_small_audit_api_mistakes(tmp_path):
    x, y = clusters(120)
    model = _trained(x[:60], y[:60])
    report = audit.run_audit(model, (x[:60], y[:60]), (x[60:], y[60:]), attacks=("threshold",))
    assert "| model |" in audit.compare(report, tmp_path)  # one report: was "not iterable"
    with pytest.raises(ValueError, match=r"`target` must be in \[0.0, 1.0\]"):
        audit.tpr_at_fpr(np.array([0.0, 0.5, 1.0]), np.array([0.0, 0.7, 1.0]), 1.5)  # was 1.0
    with pytest.raises(TypeError, match=r"E47: `thorough` must be a bool"):
        audit.run_audit(model, (x[:60], y[:60]), (x[60:], y[60:]), thorough="yes")
    x, y = clusters(300)
    history = compile_adam(small_mlp(3, inputs=8, hidden=16), 1e-2).fit(
        x[:200], y[:200], epochs=1, verbose=0, callbacks=[_monitor(x, y)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # was matplotlib's "No artists with labels found"
        keras_adamixup.monitor.plot_privacy_trajectory(history)


# -- the command line: checks before TensorFlow -------------------------------------------

def test_cli_usage_errors_answer_before_tensorflow_is_imported(tmp_path):
    """A missing model, unknown data or attack: one line, exit 2, TensorFlow not imported
    (it took ~5 s of start-up before the usage error)."""
    cases = [["--model", str(tmp_path / "none.keras"), "--data", "digits"],
             ["--model", __file__, "--data", "bogus"],
             ["--model", __file__, "--data", "digits", "--attacks", "threshold,nope"],
             ["--model", __file__, "--data", "digits", "--shadow-index", "1"]]
    script = ("import sys, keras_adamixup_cli; code = keras_adamixup_cli.main(sys.argv[1:]); "
              "print('tensorflow' in sys.modules); sys.exit(code)")
    for args in cases:
        done = subprocess.run([sys.executable, "-c", script, "audit", *args, "--out",
                               str(tmp_path / "o")], capture_output=True, text=True,
                              cwd=ROOT, timeout=120)
        assert done.returncode == 2, done.stderr
        assert done.stdout.strip() == "False", args
        assert done.stderr.startswith("error: ") and len(done.stderr.splitlines()) == 1


def test_cli_audit_of_a_model_on_data_of_another_shape_names_both(tmp_path, capsys):
    """Was `error: • kwargs=<class 'inspect._empty'>`: the last line of Keras' message."""
    from keras_adamixup_cli import _one_line, main

    x, y = clusters(120)
    _trained(x[:60], y[:60]).save(tmp_path / "m.keras")  # 8 features; digits have 64
    code = main(["audit", "--model", str(tmp_path / "m.keras"), "--data", "digits", "--out",
                 str(tmp_path / "o"), "--attacks", "threshold"])
    assert code == 2
    assert capsys.readouterr().err.strip() == (
        "error: E51: the model takes rows of shape (8,), but the members' rows have shape "
        "(64,): audit it on data like the data it was trained on (the same features, the "
        "same preprocessing).")
    keras_message = ("in user code:\n  File \"a.py\", line 1\n    ValueError: Exception "
                     "encountered when calling Sequential.call().\n    \x1b[1mInput 0 is "
                     "incompatible\x1b[0m\n    Arguments received:\n      • kwargs=1")
    assert _one_line(ValueError(keras_message)) == "Input 0 is incompatible"


def test_cli_attack_names_are_the_audits():
    import keras_adamixup_cli

    assert keras_adamixup_cli.ATTACKS == audit.ALL_ATTACKS
    args = keras_adamixup_cli.build_parser().parse_args(
        ["audit", "--model", __file__, "--data", "digits", "--out", "o",
         "--attacks", "threshold, knn"])
    args.out = os.path.join(ROOT, "build")
    keras_adamixup_cli.validate(args)
    assert args.attacks == ("threshold", "knn")


def test_package_import_leaves_the_audit_and_tf_privacy_alone():
    script = ("import sys, keras_adamixup; "
              "print(sorted(m for m in sys.modules if m.startswith(('keras_adamixup.audit', "
              "'tensorflow_privacy'))))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


# -- the recount from a fresh clone (228 uses): what it still found ---------------------

def test_recount_near_duplicate_groups_takes_lists_and_refuses_nan():
    from keras_adamixup import duplicates

    x = np.random.default_rng(0).random((30, 5)).astype("float32")
    rows = np.concatenate([x, x + 1e-4])
    listed = duplicates.near_duplicate_groups(rows.tolist())
    assert (listed == duplicates.near_duplicate_groups(rows)).all() and len(set(listed)) == 30
    rows[4, 1] = np.inf
    with pytest.raises(ValueError, match="E53"):  # silently grouped nothing before
        duplicates.near_duplicate_groups(rows)


def test_recount_entry_points():
    assert keras_adamixup.audit.run_audit is not None  # without importing the audit first
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        keras_adamixup.nothing  # noqa: B018
    import keras_adamixup_cli

    with pytest.raises(SystemExit) as ended:
        keras_adamixup_cli.main(["--version"])
    assert ended.value.code == 0
    # python -m keras_adamixup.cli ran nothing and exited 0; now it is the command line
    for module in ("keras_adamixup.cli", "keras_adamixup"):
        done = subprocess.run([sys.executable, "-m", module, "audit"], capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 2 and "--model" in done.stderr, (module, done.stderr[-300:])


def test_recount_clearer_messages(tmp_path):
    x, y = clusters(120)
    with pytest.raises(ValueError, match="got a tuple of 3 .sample weights are not taken"):
        PrivacyMonitor((x[:60], y[:60], np.ones(60)), (x[60:], y[60:]))
    with pytest.raises(TypeError, match="got a model instance"):
        audit.ShadowRecipe(small_mlp(), num_shadows=2)
    report = audit.run_audit(compile_adam(small_mlp(3, inputs=8)), (x[:60], y[:60]),
                             (x[60:], y[60:]),
                             attacks=("threshold",))
    (tmp_path / "taken").write_text("x")
    with pytest.raises(FileExistsError, match="that is a file"):
        report.save(str(tmp_path / "taken"))


def test_recount_e56_names_the_binary_loss_for_one_logit():
    import keras

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 4)).astype("float32"), rng.integers(0, 2, 64)
    base = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model = keras_adamixup.AdaMixupModel(base, schedule=0.0, seed=0)
    model.compile("adam", keras.losses.BinaryCrossentropy())
    with pytest.warns(Warning, match=r"E56.*BinaryCrossentropy\(from_logits=True\)"):
        model.fit(x, y.astype("float32"), epochs=1, verbose=0)


def test_a_fit_reads_its_counters_without_numpy_deprecation_warnings():
    # keras.ops.convert_to_numpy(variable.value) warned on every fit (NumPy 2's copy
    # keyword), which users of pytest or -W error saw from the package's callbacks
    x, y = clusters(64)
    model = keras_adamixup.AdaMixupModel(small_mlp(3, inputs=8), seed=0)
    compile_adam(model)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*__array__ implementation.*")
        model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert 0.0 <= model.current_strength() <= 0.5


def test_labels_as_a_python_list_are_named_not_read_as_a_dataset():
    """`y` as a Python list reached the dataset path: AttributeError 'cardinality'."""
    x, y = clusters(300)
    model = keras_adamixup.recommended.model(small_mlp(3, inputs=8), seed=0)
    compile_adam(model)
    with pytest.raises(TypeError, match=r"got x ndarray and y list: convert with np.asarray"):
        model.fit(x[:200], y[:200].tolist(), validation_data=(x[200:], y[200:]), epochs=1,
                  verbose=0)
