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


SPARSE_CE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def small_mlp(num_classes=10, inputs=64, seed=0, hidden=64, activation=None):
    """The tests' small model: Input((inputs,)) -> Dense(hidden, relu) ->
    Dense(num_classes, activation). Sets Keras's random seed to `seed` first;
    `seed=None` leaves the random state as it is."""
    if seed is not None:
        keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((inputs,)),
            keras.layers.Dense(hidden, activation="relu"),
            keras.layers.Dense(num_classes, activation=activation),
        ]
    )


def cluster_mlp(classes=3, activation=None, seed=None, features=8):
    """`small_mlp` sized for `clusters()`: 8 features, 16 hidden units, 3 classes, and
    the random state left as it is unless `seed` is given."""
    return small_mlp(classes, features, seed, hidden=16, activation=activation)


def compile_adam(model, learning_rate=None, loss=SPARSE_CE, **kwargs):
    """`model` compiled with Adam at `learning_rate` (Keras's "adam" when None) and
    `loss` (`SPARSE_CE`); `kwargs` (metrics=, jit_compile=, ...) go to `compile`.
    Returns the model."""
    optimizer = "adam" if learning_rate is None else keras.optimizers.Adam(learning_rate)
    model.compile(optimizer, loss, **kwargs)
    return model


def cluster_student(targets=None, base=None, schedule=0.0, metrics=None, **kwargs):
    """An `AdaMixupModel` (seed 1) over `base` (a fresh `cluster_mlp()` when None) with
    `targets`, compiled with Adam(1e-2) and `SPARSE_CE`: the teacher tests' student."""
    import keras_adamixup

    base = cluster_mlp() if base is None else base
    model = keras_adamixup.AdaMixupModel(base, schedule=schedule, seed=1, targets=targets,
                                         **kwargs)
    return compile_adam(model, 1e-2, metrics=metrics)


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
