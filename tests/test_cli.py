import json
import os

import pytest

from keras_adamixup import cli


def test_demo_quick_then_audit_saved_model(tmp_path, capsys):
    out = tmp_path / "demo"
    assert cli.main(["demo", "--quick", "--out", str(out)]) == 0
    for name in ("comparison.md", "comparison.json", "comparison_roc.png", "split.json",
                 "undefended.keras", "adamixup.keras", "adamixup/report.json",
                 "undefended/roc.png", "adamixup/histograms.png", "adamixup_target.keras",
                 "adamixup_target/report.json", "adamixup_target/trajectory.png"):
        assert os.path.getsize(out / name) > 0, name
    comparison = json.loads((out / "comparison.json").read_text())
    assert [m["name"] for m in comparison["models"]] == [
        "undefended", "adamixup", "adamixup_target"]
    text = (out / "comparison.md").read_text()
    assert "| undefended |" in text and "| adamixup |" in text
    assert "| adamixup_target |" in text
    split = json.loads((out / "split.json").read_text())
    assert len(split["members"]) == len(split["nonmembers"]) == 719  # 40 % / 40 % of 1,797
    demo_report = json.loads((out / "adamixup" / "report.json").read_text())
    assert {"lira_online", "lira_offline", "label_only_gap", "threshold",
            "lira_online_plain", "lira_offline_plain"} <= {
        r["attack"] for r in demo_report["attacks"]}  # defended: undefended shadows too

    # the CLI audit of the saved model on the recorded split reproduces the
    # members/non-members, hence the same utility numbers
    again = tmp_path / "again"
    code = cli.main(["audit", "--model", str(out / "adamixup.keras"), "--data", "digits",
                     "--split", str(out / "split.json"), "--out", str(again),
                     "--attacks", "threshold"])
    assert code == 0
    report = json.loads((again / "report.json").read_text())
    assert report["utility"]["train_accuracy"] == pytest.approx(
        demo_report["utility"]["train_accuracy"])
    assert report["metadata"]["n_members"] == 719
    assert "strongest attack" in capsys.readouterr().out


def test_audit_errors(tmp_path, capsys):
    with pytest.raises(SystemExit, match="does not exist"):
        cli.main(["audit", "--model", str(tmp_path / "missing.keras"), "--data", "digits",
                  "--out", str(tmp_path)])
    import keras

    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(10)])
    path = tmp_path / "m.keras"
    model.save(path)
    code = cli.main(["audit", "--model", str(path), "--data", "npz:x.npz", "--split", "s.json",
                     "--out", str(tmp_path / "o")])
    assert code == 2
    assert "already holds its members" in capsys.readouterr().err
    code = cli.main(["audit", "--model", str(path), "--data", "digits", "--out",
                     str(tmp_path / "o"), "--attacks", "nonsense"])
    assert code == 2
    assert "Unknown attack" in capsys.readouterr().err
