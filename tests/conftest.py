import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(scope="session")
def digits():
    """scikit-learn digits as float32 in [0, 1]: (x_train, y_train), (x_test, y_test)."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    return (x[:1200], y[:1200]), (x[1200:], y[1200:])


def small_mlp(num_classes=10, inputs=64, seed=0, hidden=64):
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((inputs,)),
            keras.layers.Dense(hidden, activation="relu"),
            keras.layers.Dense(num_classes),
        ]
    )


def clusters(n=240, classes=3, seed=0, spread=3.0, features=8):
    """Gaussian clusters: `(x float32 (n, features), y int64)`, one centre per class."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(classes, features)) * spread
    y = rng.integers(0, classes, n)
    x = (centers[y] + rng.normal(size=(n, features))).astype("float32")
    return x, y.astype("int64")


def record_teachers(teachers, monkeypatch):
    """The teacher models a `SplitTeachers` makes, recorded as it makes them (a list
    that fills when it trains)."""
    made = []
    original = teachers.make_teachers

    def spy(model, count=None):
        made[:] = original(model, count)
        return made

    monkeypatch.setattr(teachers, "make_teachers", spy)
    return made


def subprocess_result(proc):
    """The JSON of a helper script's "RESULT " line; fails with its stderr otherwise."""
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT "):])
