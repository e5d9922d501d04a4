import ast
import json
import os
import pathlib
import subprocess
import sys

import pytest

from keras_adamixup_cli import build_parser, main
from keras_adamixup import cli

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_demo_quick_then_audit_saved_model(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--paper-schedule", "--out", str(out)]) == 0
    for name in ("comparison.md", "comparison.json", "comparison_roc.png", "split.json",
                 "undefended.keras", "adamixup.keras", "adamixup/report.json",
                 "undefended/roc.png", "adamixup/histograms.png", "recommended.keras",
                 "recommended/report.json", "recommended/trajectory.png",
                 "early_stopping.keras", "early_stopping/report.md"):
        assert os.path.getsize(out / name) > 0, name
    comparison = json.loads((out / "comparison.json").read_text())
    assert [m["name"] for m in comparison["models"]] == [
        "undefended", "early_stopping", "adamixup", "recommended"]
    text = (out / "comparison.md").read_text()
    assert "| undefended |" in text and "| adamixup |" in text
    assert "| recommended |" in text and "| early_stopping |" in text
    import keras

    import keras_adamixup

    recommended = keras.saving.load_model(out / "recommended.keras")  # teachers' targets
    assert isinstance(recommended.targets, keras_adamixup.SplitTeachers)
    plan = keras_adamixup.recommended.teachers(keras_adamixup.recommended.BUDGET)
    assert (recommended.targets.teachers, recommended.targets.exclude) == (plan.teachers,
                                                                           plan.exclude)
    split = json.loads((out / "split.json").read_text())
    # 40 % / 40 % of 1,797; the quick demo's 10 + 10 canaries were drawn from the members
    assert len(split["nonmembers"]) == 719 and len(split["members"]) == 719 - 20
    demo_report = json.loads((out / "adamixup" / "report.json").read_text())
    assert {"lira_online", "lira_offline", "label_only_gap", "threshold",
            "lira_online_plain", "lira_offline_plain"} <= {
        r["attack"] for r in demo_report["attacks"]}  # defended: undefended shadows too

    # the CLI audit of the saved model on the recorded split reproduces the
    # members/non-members, hence the same utility numbers
    again = tmp_path / "again"
    code = main(["audit", "--model", str(out / "adamixup.keras"), "--data", "digits",
                     "--split", str(out / "split.json"), "--out", str(again),
                     "--attacks", "threshold"])
    assert code == 0
    report = json.loads((again / "report.json").read_text())
    assert report["utility"]["train_accuracy"] == pytest.approx(
        demo_report["utility"]["train_accuracy"])
    assert report["metadata"]["n_members"] == 699
    assert "strongest attack" in capsys.readouterr().out


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A small saved model, an npz, a split file and a truncated model."""
    import keras
    import numpy as np

    from keras_adamixup import audit

    folder = tmp_path_factory.mktemp("cli")
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(10)])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.save(folder / "m.keras")
    data = (folder / "m.keras").read_bytes()
    (folder / "truncated.keras").write_bytes(data[: len(data) // 2])
    (folder / "renamed.h5").write_bytes(data)  # a .keras zip under an HDF5 name
    (folder / "not.npz").write_text("hello")
    (folder / "bad.json").write_text("{not json")
    (folder / "other.json").write_text(json.dumps({"a": 1}))
    audit.data.MembershipSplit([0, 5000], [1, 2]).to_json(folder / "far.json")
    (folder / "file").write_text("")
    np.savez(folder / "ok.npz", x_train=np.zeros((4, 64)), y_train=np.zeros(4))
    return folder


MODEL = ["--model", "{d}/m.keras"]


def with_split(name):
    return MODEL + ["--data", "digits", "--split", "{d}/" + name]


# (arguments with {d} for the fixture's folder, expected text of the one error line)
MISTAKES = {
    "missing model": (["--model", "{d}/missing.keras", "--data", "digits"], "does not exist"),
    "truncated model": (["--model", "{d}/truncated.keras", "--data", "digits"],
                        "not a readable .keras archive"),
    "missing npz": (MODEL + ["--data", "npz:{d}/none.npz"],
                    "npz file '{d}/none.npz' does not exist"),
    "not an npz": (MODEL + ["--data", "npz:{d}/not.npz"], "not a readable .npz file"),
    "npz lacks arrays": (MODEL + ["--data", "npz:{d}/ok.npz"], "lacks ['x_test', 'y_test']"),
    "npz with a split": (MODEL + ["--data", "npz:{d}/ok.npz", "--split", "{d}/far.json"],
                         "already holds its members"),
    "missing split": (with_split("none.json"), "Split file '{d}/none.json' does not exist"),
    "split not json": (with_split("bad.json"), "is not JSON"),
    "split not a split": (with_split("other.json"), "is not a membership split"),
    "split index out of range": (with_split("far.json"), "index(es) out of range"),
    "tfds offline": (["--model", "{d}/m.keras", "--data", "tfds:mnist", "--data-dir",
                      "{d}/tfds"], "TFDS"),
    "unwritable out": (["--model", "{d}/m.keras", "--data", "digits", "--out", "{d}/file/o"],
                       "is not writable"),
    "keras zip named .h5": (["--model", "{d}/renamed.h5", "--data", "digits"],
                            "is a .keras archive (a zip), not an HDF5 file: rename it"),
    "missing custom objects file": (MODEL + ["--data", "digits", "--custom-objects",
                                             "{d}/none.py"],
                                    "Custom objects file '{d}/none.py' does not exist"),
    "unknown custom objects module": (MODEL + ["--data", "digits", "--custom-objects",
                                               "no_such_module_here"], "no such module"),
    "unknown attack": (["--model", "{d}/m.keras", "--data", "digits", "--attacks", "nonsense"],
                       "Unknown attack"),
}


@pytest.mark.parametrize("case", sorted(MISTAKES))
def test_audit_mistakes_end_in_one_line(case, saved, capsys):
    args, expected = MISTAKES[case]
    args = [a.replace("{d}", str(saved)) for a in args]
    if "--out" not in args:
        args += ["--out", str(saved / "out")]
    assert main(["audit", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: ")
    if expected == "TFDS":  # offline, or tensorflow-datasets not installed (.ci/lowest.txt)
        try:
            import tensorflow_datasets  # noqa: F401
            expected = "cannot be downloaded here"
        except Exception:  # noqa: BLE001 - any broken install counts as absent
            expected = "needs a working tensorflow-datasets"
    assert expected.replace("{d}", str(saved)) in err


@pytest.mark.parametrize("args", [["demo", "--epochs", "0"],
                                  ["demo", "--lira-shadows", "3"],
                                  ["audit", "--model", "m", "--data", "digits", "--out", "o",
                                   "--lira-epochs", "0"]])
def test_bad_numbers_are_usage_errors(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "must be" in err


def test_cli_audits_a_privacy_target_model_with_lira(tmp_path, capsys):
    """E12 no longer: shadows get monitors built from the recorded split, plus plain shadows."""
    import keras

    import keras_adamixup
    from keras_adamixup import demo

    (x_m, y_m), _, holdout, split = demo.split_digits(0)
    split.to_json(tmp_path / "split.json")
    model = demo.adamixup_target_factory(0)
    monitor = keras_adamixup.PrivacyMonitor.from_training(x_m, y_m, holdout)
    model.fit(x_m, y_m, epochs=2, batch_size=64, callbacks=[monitor], verbose=0)
    model.save(tmp_path / "target.keras")
    code = main(["audit", "--model", str(tmp_path / "target.keras"), "--data", "digits",
                     "--split", str(tmp_path / "split.json"), "--out", str(tmp_path / "o"),
                     "--attacks", "threshold", "--lira-shadows", "2", "--lira-epochs", "2"])
    assert code == 0, capsys.readouterr().err
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    attacks = {r["attack"] for r in report["attacks"]}
    assert {"lira_online", "lira_online_plain", "lira_offline_plain"} <= attacks
    assert isinstance(keras.saving.load_model(tmp_path / "target.keras").schedule,
                      keras_adamixup.schedules.FeedbackSchedule)


def test_lira_sequential_flag_reaches_the_shadow_recipes(tmp_path):
    from keras_adamixup import demo

    model = demo.undefended_factory()
    base = ["audit", "--model", "m.keras", "--data", "digits", "--out", str(tmp_path),
            "--lira-shadows", "2"]
    parser = build_parser()
    default = cli._lira_recipes(parser.parse_args(base), model, None, None)
    sequential = cli._lira_recipes(parser.parse_args(base + ["--lira-sequential"]), model,
                                   None, None)
    assert default.together == "auto" and sequential.together is False


def test_shadows_as_separate_jobs_then_one_audit(tmp_path, capsys):
    """A job array: each job trains one shadow into the shared cache; the audit trains none."""
    from keras_adamixup import demo

    (x_m, y_m), _, _, split = demo.split_digits(0)
    split.to_json(tmp_path / "split.json")
    model = demo.undefended_factory()
    model.fit(x_m, y_m, epochs=2, batch_size=64, verbose=0)
    model.save(tmp_path / "m.keras")
    base = ["audit", "--model", str(tmp_path / "m.keras"), "--data", "digits",
            "--split", str(tmp_path / "split.json"), "--out", str(tmp_path / "o"),
            "--attacks", "threshold", "--lira-shadows", "2", "--lira-epochs", "2"]
    cache = tmp_path / "o" / "lira_cache"
    for index in ("0", "1"):
        assert main(base + ["--shadow-index", index]) == 0, capsys.readouterr().err
        assert (cache / f"shadow_00{index}.npz").exists()
    assert not (tmp_path / "o" / "report.json").exists()  # jobs only train
    assert f"shadow(s) 1: 1 cached" in capsys.readouterr().out
    stamps = {p.name: p.stat().st_mtime_ns for p in cache.glob("shadow_*.npz")}
    assert main(base) == 0
    assert {p.name: p.stat().st_mtime_ns for p in cache.glob("shadow_*.npz")} == stamps
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert "lira_online" in {r["attack"] for r in report["attacks"]}
    capsys.readouterr()
    assert main(base + ["--shadow-index", "2"]) == 2  # outside 0 … 1: one line
    err = capsys.readouterr().err
    assert "--shadow-index 2 is outside" in err and len(err.strip().splitlines()) == 1, err


CUSTOM_LAYER = """
import keras


@keras.saving.register_keras_serializable(package="user")
class Doubling(keras.layers.Layer):
    def call(self, x):
        return 2.0 * x
"""


def test_custom_objects_let_a_model_with_a_custom_layer_be_audited(tmp_path):
    """A fresh process knows the layer only through --custom-objects."""
    import importlib.util

    import keras

    (tmp_path / "user_layers.py").write_text(CUSTOM_LAYER)
    spec = importlib.util.spec_from_file_location("user_layers", tmp_path / "user_layers.py")
    user_layers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(user_layers)  # saved here; the audits below are fresh processes
    model = keras.Sequential([keras.Input((64,)), user_layers.Doubling(), keras.layers.Dense(10)])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.save(tmp_path / "custom.keras")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    base = [sys.executable, "-m", "keras_adamixup_cli", "audit", "--model",
            str(tmp_path / "custom.keras"), "--data", "digits", "--attacks", "threshold",
            "--out", str(tmp_path / "out")]
    without = subprocess.run(base, capture_output=True, text=True, env=env, timeout=300)
    assert without.returncode == 2 and "--custom-objects" in without.stderr.strip().splitlines()[-1]
    found = subprocess.run(base + ["--custom-objects", str(tmp_path / "user_layers.py")],
                           capture_output=True, text=True, env=env, timeout=300)
    assert found.returncode == 0, found.stderr[-2000:]
    assert (tmp_path / "out" / "report.json").exists()


def test_the_package_never_imports_the_command_line():
    """The imports go one way: keras_adamixup_cli → keras_adamixup.cli, never back. Only
    the ``python -m`` entry points run it (`keras_adamixup/__main__.py`, and the
    ``if __name__ == "__main__":`` block of `keras_adamixup/cli.py`)."""
    def entry_point_block(node):
        return (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
                and getattr(node.test.left, "id", None) == "__name__")

    offenders = []
    for path in sorted((ROOT / "keras_adamixup").rglob("*.py")):
        if path.name == "__main__.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        run_as_main = {id(inner) for node in ast.walk(tree) if entry_point_block(node)
                       for inner in ast.walk(node)}
        for node in ast.walk(tree):
            if id(node) in run_as_main:
                continue
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            if any(n.split(".")[0] == "keras_adamixup_cli" for n in names):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == [], f"keras_adamixup imports keras_adamixup_cli: {offenders}"


@pytest.mark.parametrize("argv,expected", [
    (["audit", "--model", "m", "--data", "digits", "--out", "o"], False),
    (["--traceback", "audit", "--model", "m", "--data", "digits", "--out", "o"], True),
    (["audit", "--model", "m", "--data", "digits", "--out", "o", "--traceback"], True),
    (["demo", "--traceback"], True),
])
def test_traceback_before_or_after_the_command(argv, expected):
    assert build_parser().parse_args(argv).traceback is expected


def test_traceback_after_the_command_shows_the_error(tmp_path):
    argv = ["audit", "--model", str(tmp_path / "none.keras"), "--data", "digits",
            "--out", str(tmp_path / "o"), "--traceback"]
    with pytest.raises(ValueError, match="does not exist"):
        main(argv)


def _traced_failure(args):
    import tensorflow as tf

    def check(x):
        if x.shape[0] != 3:
            raise ValueError("the real cause: 3 rows expected")
        return x

    @tf.function
    def step(x):
        return check(x) + 1.0

    step(tf.zeros((4,)))


def test_error_in_a_traced_function_prints_its_cause(tmp_path, capsys, monkeypatch):
    """Not TensorFlow's first line (``in user code:``) but the last: the cause."""
    monkeypatch.setitem(cli.COMMANDS, "demo", _traced_failure)
    assert main(["demo", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: E31: the real cause: 3 rows expected", err
