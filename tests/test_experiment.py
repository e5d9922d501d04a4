"""The train-then-audit loop shared by the demo and the examples."""

import json
import os

import keras
import pytest

import keras_adamixup
from keras_adamixup import audit
from keras_adamixup.experiment import Recipe, train_and_audit
from tests.conftest import compile_adam, small_mlp


def _plain():
    return compile_adam(small_mlp(hidden=16))


def _mixing():  # with split teachers, as the recommended setting
    return compile_adam(keras_adamixup.AdaMixupModel(
        small_mlp(hidden=16), seed=0, targets=keras_adamixup.SplitTeachers(2, 1, seed=0)))


def test_train_and_audit_two_recipes(digits, tmp_path, capsys):
    (x, y), (xt, yt) = digits
    lines, described = [], []
    recipes = [Recipe("plain", _plain, {"epochs": 3, "batch_size": 32}),
               Recipe("mixing", _mixing, lambda xs, ys: {"epochs": 3, "batch_size": 32},
                      describe=lambda m, h, k: described.append(k["epochs"]) or "described")]
    options = audit.AuditOptions(attacks=("threshold",), slices=("entire",),
                                 label_only_noise=None, progress=True)
    reports, table = train_and_audit(recipes, (x[:120], y[:120]), (xt[:120], yt[:120]),
                                     str(tmp_path), lira_shadows=2, options=options,
                                     log=lines.append,
                                     metadata=lambda r, m: {"recipe_name": r.name})
    assert [r.name for r in reports] == ["plain", "mixing"] and described == [3]
    assert "| plain |" in table and "| mixing |" in table
    for name in ("plain.keras", "mixing.keras", "plain/report.md", "mixing/report.json",
                 "comparison.md", "plain/lira_cache/shadow_001.npz",
                 "mixing/lira_cache/shadow_000.npz"):
        assert os.path.exists(tmp_path / name), name
    mixing = json.loads((tmp_path / "mixing" / "report.json").read_text())
    attacks = {r["attack"] for r in mixing["attacks"]}
    assert {"lira_online", "lira_online_plain", "rmia_online_plain"} <= attacks
    assert mixing["metadata"]["recipe_name"] == "mixing"
    assert any(line == "[mixing] described" for line in lines)
    err = capsys.readouterr().err
    assert "training plain" in err and "auditing mixing" in err  # progress bars
    assert "SplitTeachers" in err  # the teachers of the audited model have a bar too
    saved = keras.saving.load_model(tmp_path / "mixing.keras")
    assert saved.targets.progress is False  # switched on for that fit only


def test_train_and_audit_checks_names(digits, tmp_path):
    (x, y), (xt, yt) = digits
    twice = [Recipe("a", _plain, {"epochs": 1}), Recipe("a", _plain, {"epochs": 1})]
    with pytest.raises(ValueError, match="distinct names"):
        train_and_audit(twice, (x[:50], y[:50]), (xt[:50], yt[:50]), str(tmp_path))
    with pytest.raises(ValueError, match="`baseline` 'b'"):
        train_and_audit(twice[:1], (x[:50], y[:50]), (xt[:50], yt[:50]), str(tmp_path),
                        baseline="b")
