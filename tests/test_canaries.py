"""Canaries: planted mislabelled members, TPR on them at low FPR (issue 12)."""

import keras
import numpy as np
import pytest

from keras_adamixup import audit
from keras_adamixup.audit import canaries
from tests.conftest import small_mlp


def test_plant_is_reproducible_and_always_mislabels():
    labels = np.random.default_rng(0).integers(0, 10, 500)
    a, set_a = canaries.plant(labels, count=40, seed=3)
    b, set_b = canaries.plant(labels, count=40, seed=3)
    c, set_c = canaries.plant(labels, count=40, seed=4)
    assert set_a == set_b and np.array_equal(a, b)
    assert set_a.indices != set_c.indices
    idx = np.asarray(set_a.indices)
    assert len(set(idx)) == 40 and np.all(a[idx] != labels[idx])
    assert np.array_equal(np.delete(a, idx), np.delete(labels, idx))  # others untouched
    assert np.array_equal(labels[idx], set_a.original) and np.array_equal(a[idx], set_a.planted)
    assert labels is not a  # the input is not modified
    with pytest.raises(ValueError, match="exceeds"):
        canaries.plant(labels, count=501)
    with pytest.raises(TypeError, match="`count`"):
        canaries.plant(labels, count=2.5)


def test_audit_reports_canaries_above_the_population(digits, tmp_path):
    (x, y), (xt, yt) = digits
    x_m, x_n, y_n = x[:300], xt[:300], yt[:300]
    y_m, planted = canaries.plant(y[:300], count=20, seed=0)

    def factory():
        model = small_mlp(hidden=64)
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return model

    model = factory()
    model.fit(x_m, y_m, epochs=40, batch_size=32, verbose=0)
    lira = {"model_factory": factory, "num_shadows": 4, "progress": False,
            "fit_kwargs": {"epochs": 40, "batch_size": 32}}
    with pytest.raises(ValueError, match="do not carry their planted label"):
        audit.run_audit(model, (x_m, y[:300]), (x_n, y_n), canaries=planted,
                        attacks=("threshold",), slices=("entire",), label_only_noise=None)
    report = audit.run_audit(model, (x_m, y_m), (x_n, y_n), canaries=planted, lira=lira,
                             attacks=("threshold",), slices=("entire",),
                             label_only_noise=None)
    meta = report.metadata["canaries"]
    assert meta["count"] == 20 and meta["seed"] == 0
    assert {"threshold", "lira_online", "rmia_online"} <= set(meta["attacks"])
    population = {r["attack"]: r for r in report.attacks}
    # the memorized mislabelled members stand out far more than the average member
    canary = meta["attacks"]["lira_online"]["tpr_at_0.01_fpr"]
    assert canary > 0.5 and canary > 2 * population["lira_online"]["tpr_at_0.01_fpr"]
    # compared with the ordinary non-members only
    assert meta["attacks"]["lira_online"]["n_nonmembers"] == 300
    report.save(tmp_path)
    assert "## Canaries (20 mislabelled members, seed 0)" in (tmp_path / "report.md").read_text()


def test_canaries_need_arrays(digits):
    import tensorflow as tf

    (x, y), (xt, yt) = digits
    y_m, planted = canaries.plant(y[:64], count=4)
    ds = tf.data.Dataset.from_tensor_slices((x[:64], y_m)).batch(32)
    with pytest.raises(ValueError, match="as arrays"):
        audit.run_audit(small_mlp(), ds, (xt[:64], yt[:64]), canaries=planted)
