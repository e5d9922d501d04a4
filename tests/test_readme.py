"""Every ```python snippet of the README runs, as a user would copy it.

The snippets are run in order in one namespace that holds what the README
presumes the reader has (`GIVEN`: data, factories, reports), in a temporary
folder. Snippets that train are checked for a useful result, so that a snippet
that runs but trains to chance accuracy (as the tf.data one once did) fails.
The audit snippets run LiRA and TF Privacy's trained attacks: marked slow.
"""

import pathlib
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", README.read_text(encoding="utf-8"),
                    flags=re.M | re.S)


def _is_audit(block):
    return "audit." in block


def _fresh_base():
    return keras.Sequential([keras.Input((64,)), keras.layers.Dense(256, activation="relu"),
                             keras.layers.Dense(10)])


def _given(digits):
    """What the README presumes: digits as train/validation/test, members, factories."""
    from keras_adamixup import audit

    (x, y), (xt, yt) = digits
    ns = {"keras": keras, "tf": tf, "np": np,
          "x_train": x[:900], "y_train": y[:900], "x_val": xt[:300], "y_val": yt[:300],
          "x_test": xt[300:], "y_test": yt[300:], "x": x[:900], "y": y[:900]}

    def make_compiled_model():
        model = _fresh_base()
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return model

    def make_defended():
        import keras_adamixup

        model = keras_adamixup.AdaMixupModel(_fresh_base(), seed=0)
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return model

    members, nonmembers = (x[:300], y[:300]), (xt[:300], yt[:300])
    plain = make_compiled_model()
    plain.fit(*members, epochs=5, verbose=0)
    logits_m, logits_n = plain.predict(members[0], verbose=0), plain.predict(nonmembers[0], verbose=0)
    cheap = dict(attacks=("threshold",), slices=("entire",), label_only_noise=None)
    ns.update(
        x_members=members[0], y_members=members[1], x_nonmembers=nonmembers[0],
        y_nonmembers=nonmembers[1], members=members, nonmembers=nonmembers,
        make_compiled_model=make_compiled_model, make_plain=make_compiled_model,
        make_defended=make_defended,
        defended_fit_kwargs={"epochs": 5, "batch_size": 64},
        plain_fit_kwargs={"epochs": 5, "batch_size": 64},
        logits_members=logits_m, logits_nonmembers=logits_n,
        report_plain=audit.run_audit(plain, members, nonmembers, name="plain", **cheap),
        report_defended=audit.run_audit(plain, members, nonmembers, name="defended", **cheap),
    )
    return ns


def _run(blocks, digits, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ns = _given(digits)
    for block in blocks:
        if "AdaMixupModel(base" in block and "base = " not in block:
            ns["base"] = _fresh_base()  # the reader's own, untrained model
        exec(compile(block, "README.md", "exec"), ns)  # noqa: S102 - the README's own code
        if "model.fit(" in block:
            accuracy = np.mean(np.argmax(ns["model"].predict(ns["x_val"], verbose=0), 1)
                               == ns["y_val"])
            assert accuracy > 0.8, f"the snippet trains to accuracy {accuracy:.2f}:\n{block}"
    return ns


def test_readme_training_snippets_run_and_learn(digits, tmp_path, monkeypatch):
    blocks = [b for b in BLOCKS if not _is_audit(b)]
    assert len(blocks) >= 3
    ns = _run(blocks, digits, tmp_path, monkeypatch)
    assert (tmp_path / "serving.keras").exists() and (tmp_path / "trajectory.png").exists()
    assert "monitor_auc" in ns["history"].history


@pytest.mark.slow
def test_readme_audit_snippets_run(digits, tmp_path, monkeypatch):
    blocks = BLOCKS[:1] + [b for b in BLOCKS if _is_audit(b)]
    ns = _run(blocks, digits, tmp_path, monkeypatch)
    attacks = {r["attack"] for r in ns["report"].attacks}
    assert {"lira_online", "lira_online_plain"} <= attacks
    assert (tmp_path / "audit_out" / "report.md").exists()
