"""Runs the ```python blocks of a Markdown page as a user would copy them.

Shared by `test_readme.py` (README) and `test_docs.py` (the guide pages).
The blocks of one page run in order in one namespace that holds what the
docs presume the reader has (`given`: digits as train / validation / test,
members, model factories, two reports), in a temporary folder. Blocks that
train are checked for a useful result, so that a block that runs but trains
to chance accuracy (as the tf.data one once did) fails.
"""

import re

import keras
import numpy as np
import tensorflow as tf

from tests.conftest import compile_adam, small_mlp

MAX_EPOCHS = 8


def blocks(path):
    """The ```python blocks of a Markdown file, in order."""
    return re.findall(r"^```python\n(.*?)^```", path.read_text(encoding="utf-8"),
                      flags=re.M | re.S)


def is_audit(block):
    return "audit." in block


def fresh_base():
    return small_mlp(hidden=256, seed=None)


def given(digits):
    """What the docs presume: digits as train/validation/test, members, factories."""
    from keras_adamixup import audit

    (x, y), (xt, yt) = digits
    ns = {"keras": keras, "tf": tf, "np": np,
          "x_train": x[:900], "y_train": y[:900], "x_val": xt[:300], "y_val": yt[:300],
          "x_test": xt[300:], "y_test": yt[300:], "x": x[:900], "y": y[:900],
          "x_public": x[900:]}  # rows without labels, disjoint from the rest

    def make_compiled_model():
        return compile_adam(fresh_base())

    def make_defended():
        import keras_adamixup

        return compile_adam(keras_adamixup.AdaMixupModel(fresh_base(), seed=0))

    members, nonmembers = (x[:300], y[:300]), (xt[:300], yt[:300])
    plain = make_compiled_model()
    plain.fit(*members, epochs=5, verbose=0)
    logits_m, logits_n = plain.predict(members[0], verbose=0), plain.predict(nonmembers[0], verbose=0)
    cheap = dict(attacks=("threshold",), slices=("entire",), label_only_noise=None)
    ns.update(
        x_members=members[0], y_members=members[1], x_nonmembers=nonmembers[0],
        y_nonmembers=nonmembers[1], members=members, nonmembers=nonmembers,
        model=plain,  # "the model you trained", for pages that start by auditing it
        make_compiled_model=make_compiled_model, make_plain=make_compiled_model,
        make_base=fresh_base,  # the reader's architecture, uncompiled
        x_holdout=xt[300:], y_holdout=yt[300:],  # disjoint from members and non-members
        make_defended=make_defended,
        defended_fit_kwargs={"epochs": 5, "batch_size": 64},
        plain_fit_kwargs={"epochs": 5, "batch_size": 64},
        logits_members=logits_m, logits_nonmembers=logits_n,
        report_plain=audit.run_audit(plain, members, nonmembers, name="plain", **cheap),
        report_defended=audit.run_audit(plain, members, nonmembers, name="defended", **cheap),
    )
    return ns


def run(page_blocks, digits, tmp_path, monkeypatch, source="README.md"):
    """Runs the blocks in order in one namespace; returns the namespace."""
    monkeypatch.chdir(tmp_path)
    import keras_adamixup

    for owner, name in ((keras.Model, "fit"), (keras_adamixup.AdaMixupModel, "fit"),
                        (keras_adamixup.SplitTeachers, "train")):
        original = getattr(owner, name)

        def capped(*args, __original=original, **kwargs):
            if kwargs.get("epochs") is not None:
                kwargs["epochs"] = min(kwargs["epochs"], MAX_EPOCHS)
            return __original(*args, **kwargs)

        monkeypatch.setattr(owner, name, capped)
    ns = given(digits)
    for block in page_blocks:
        if "AdaMixupModel(base" in block and "base = " not in block:
            ns["base"] = fresh_base()  # the reader's own, untrained model
        exec(compile(block, source, "exec"), ns)  # noqa: S102 - the docs' own code
        if "model.fit(" in block:
            accuracy = np.mean(np.argmax(ns["model"].predict(ns["x_val"], verbose=0), 1)
                               == ns["y_val"])
            assert accuracy > 0.8, f"the block trains to accuracy {accuracy:.2f}:\n{block}"
    return ns
