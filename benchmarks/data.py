"""The benchmarks' data sets, their splits and their model.

Every benchmark that trains on a data set takes the same split (members,
non-members as many, validation rows a quarter as many) and the same MLP, so
their numbers can be compared across scripts.

Data: ``digits`` (offline), ``mnist``, ``adult`` and ``cifar10`` (its test
split: 10,000 images, kept as 32x32x3 images for the CNN, `cnn`) from
../shared/data (`pool_or_skip` says so and the run is skipped when absent),
``npz:PATH``
(members and non-members pooled, then split again), ``tfds:NAME`` (a
tensorflow-datasets name: its train and test splits pooled).
"""

import os

import keras
import numpy as np

import keras_adamixup
from keras_adamixup import _batch_norm, audit

from benchmarks.common import SHARED

# columns swapped together by the "swap" recipes (one-hot blocks), per data set
FEATURE_GROUPS = {}
# the image shape of the data sets the benchmarks flatten for the MLP (the
# ``images`` teachers' word: near-duplicates searched as images)
IMAGE_SHAPES = {"digits": (8, 8), "mnist": (28, 28)}


def load_pool(name):
    """All examples of a data set as `(x float32, y int64)`, or `None` if absent.

    Args:
        name: ``digits``, ``mnist``, ``adult``, ``npz:PATH`` or ``tfds:NAME``.

    Example:

    ```python
    x, y = data.load_pool("digits")
    ```
    """
    if name == "digits":
        return audit.data.digits_pool()
    if name == "mnist":
        path = os.path.join(SHARED, "mnist.npz")
        if not os.path.exists(path):
            return None
        d = np.load(path)
        return _flat(np.concatenate([d["x_train"], d["x_test"]]),
                     np.concatenate([d["y_train"], d["y_test"]]))
    if name == "cifar10":
        path = os.path.join(SHARED, "cifar10_test.npz")
        if not os.path.exists(path):
            return None
        d = np.load(path)
        return (d["x_test"].astype("float32") / 255.0, d["y_test"].astype("int64"))
    if name == "adult":
        try:
            x, y, groups = audit.data.adult_pool(SHARED, return_groups=True)
        except FileNotFoundError:
            return None
        FEATURE_GROUPS["adult"] = groups  # one-hot blocks, for features="swap"
        return x, y
    if name.startswith("npz:"):
        (xa, ya), (xb, yb) = audit.data.load_npz(name[4:])
        return _flat(np.concatenate([xa, xb]), np.concatenate([ya, yb]))
    if name.startswith("tfds:"):
        # train + test of a tensorflow-datasets set (needs the package and a
        # download or a prepared TFDS_DATA_DIR)
        return _flat(*audit.data.load_pool(name))
    raise ValueError(f"Unknown data {name!r}: digits, mnist, adult, cifar10, npz:PATH or "
                     "tfds:NAME.")


def pool_or_skip(name):
    """`load_pool(name)`, or `None` after printing why the run is skipped.

    Args:
        name: as `load_pool`.

    Example:

    ```python
    pool = data.pool_or_skip(args.data)
    if pool is None:
        return 0
    ```
    """
    pool = load_pool(name)
    if pool is None:
        print(f"skipped: data {name!r} not found in {SHARED} (it lives in ../shared/data "
              "on the project's machines).")
    return pool


def _flat(x, y):
    """Rows flattened for the MLP, float32; 8-bit images scaled to [0, 1]."""
    scale = 255.0 if np.asarray(x).dtype == np.uint8 else 1.0
    return (np.asarray(x).reshape(len(x), -1).astype("float32") / scale,
            np.asarray(y).astype("int64"))


def _sizes(pool, members):
    members = min(members, len(pool[0]) * 2 // 5)
    return members, max(members // 4, keras_adamixup.monitor.MIN_MONITOR_EXAMPLES + 28)


def split(pool, members, seed):
    """Members, non-members (as many) and validation rows (a quarter, ≥ 128), disjoint.

    Args:
        pool: `(x, y)` of a whole data set (`load_pool`).
        members: how many members (at most two fifths of the pool).
        seed: the seed of the draw.

    Example:

    ```python
    (x_m, y_m), nonmembers, validation = data.split(pool, 800, seed=0)
    ```
    """
    x, y = pool
    members, validation = _sizes(pool, members)
    order = np.random.default_rng(seed).permutation(len(x))
    m, n, v = (order[:members], order[members:2 * members],
               order[2 * members:2 * members + validation])
    return (x[m], y[m]), (x[n], y[n]), (x[v], y[v])


def public_rows(pool, members, seed, count):
    """`count` inputs of the pool that `split(pool, members, seed)` leaves unused.

    The next rows of its order, labels dropped: the public rows of the
    ``_pubN`` recipe names (`benchmarks.names`).

    Args:
        pool, members, seed: as `split`.
        count: how many rows.

    Example:

    ```python
    unlabelled = data.public_rows(pool, 800, 0, 8000)
    ```
    """
    members, validation = _sizes(pool, members)
    order = np.random.default_rng(seed).permutation(len(pool[0]))[2 * members + validation:]
    if count > len(order):
        raise ValueError(f"_pub{count}: the pool has only {len(order)} rows beside the "
                         f"members, non-members and validation rows.")
    return pool[0][order[:count]]


def mlp(inputs, classes, width):
    """The benchmarks' model: two ReLU layers of `width` units, logits out (uncompiled).

    Args:
        inputs: features per row.
        classes: output logits.
        width: units per hidden layer.

    Example:

    ```python
    model = data.mlp(64, 10, 256)
    ```
    """
    return keras.Sequential([keras.Input((inputs,)),
                             keras.layers.Dense(width, activation="relu"),
                             keras.layers.Dense(width, activation="relu"),
                             keras.layers.Dense(classes)])


# the CNN's channels when the shared --width is the MLP's default
CNN_WIDTH = 32


def cnn(shape, classes, width=CNN_WIDTH):
    """The benchmarks' image classifier, as a Keras user writes one for CIFAR-10.

    Augmentation layers in the model (a horizontal flip and a translation of
    up to 4 pixels, active in training only), two blocks of two 3x3
    convolutions with batch normalization and ReLU, max pooling after each,
    global average pooling, logits out (uncompiled). `width` channels in the
    first block, twice as many in the second.

    Args:
        shape: the images' shape, ``(height, width, channels)``.
        classes: output logits.
        width: channels of the first block.

    Example:

    ```python
    model = data.cnn((32, 32, 3), 10, 32)
    ```
    """
    layers = [keras.Input(tuple(shape)), keras.layers.RandomFlip("horizontal"),
              keras.layers.RandomTranslation(0.125, 0.125, fill_mode="reflect")]
    for channels in (width, 2 * width):
        for _ in range(2):
            layers += [keras.layers.Conv2D(channels, 3, padding="same", use_bias=False),
                       keras.layers.BatchNormalization(), keras.layers.ReLU()]
        layers.append(keras.layers.MaxPooling2D())
    layers += [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(classes)]
    return keras.Sequential(layers)


def base_model(inputs, classes, width):
    """The benchmarks' model for rows of `inputs`: the MLP for features (an int or
    a 1-tuple), the CNN for images (a 3-tuple; an MLP-sized `width` of 256 or more
    becomes `CNN_WIDTH` channels).

    Args:
        inputs: features per row, or the shape of one row.
        classes: output logits.
        width: the MLP's units per layer, or the CNN's channels.

    Example:

    ```python
    model = data.base_model(x_train.shape[1:], 10, 256)
    ```
    """
    shape = (inputs,) if isinstance(inputs, int) else tuple(inputs)
    if len(shape) == 3:
        return cnn(shape, classes, CNN_WIDTH if width >= 256 else width)
    return mlp(shape[0], classes, width)


def model_name(data_name, width):
    """How the titles name the model `base_model` makes for data `data_name`: ``"CNN 32"``
    for images (cifar10), ``"MLP 256"`` otherwise.

    Args:
        data_name: as `load_pool`.
        width: the shared ``--width``.

    Example:

    ```python
    data.model_name("cifar10", 256)  # "CNN 32"
    ```
    """
    if data_name == "cifar10":
        return f"CNN {CNN_WIDTH if width >= 256 else width}"
    return f"MLP {width}"


class BatchNormRefresh(_batch_norm.Refresh):
    """`keras_adamixup._batch_norm.Refresh` from 512 rows drawn from the model's
    training inputs: its batch-normalization statistics re-estimated before `fit`'s
    own validation and at each epoch's end.

    The defended models do this themselves (`AdaMixupModel`, the teachers), and
    an `AdaMixupModel` drops it from its callbacks; the benchmarks give it to every CNN they train, baselines and shadows
    included, so that no baseline is handicapped by Keras' lagging moving
    averages (the undefended CNN's inference-mode accuracy swings between 0.45
    and 0.58 from one epoch to the next without it, at 4,000 images).

    Args:
        x_train: the model's training inputs.
        seed: the draw of the rows.

    Example:

    ```python
    model.fit(x, y, epochs=40, callbacks=[data.BatchNormRefresh(x)])
    ```
    """

    def __init__(self, x_train, seed=0):
        super().__init__(np.asarray(x_train)[_batch_norm.draw(np.ones(len(x_train), bool),
                                                               seed)])
        self._own = False

    def on_train_begin(self, logs=None):
        # a defended model refreshes its statistics itself: not twice
        self._own = isinstance(self.model, keras_adamixup.AdaMixupModel)

    def _refresh(self):
        if not self._own:
            super()._refresh()


def fit_kwargs_of(fit_kwargs, x_train, y_train):
    """A recipe's ``fit`` arguments for one model (a copy): `fit_kwargs` is a dict, or
    ``fit_kwargs(x_train, y_train)`` makes them (fresh callbacks)."""
    return dict(fit_kwargs(x_train, y_train) if callable(fit_kwargs) else fit_kwargs)


def described(fit_kwargs):
    """`fit_kwargs` as LiRA's shadow cache names it: its own ``fingerprint()``, or its
    items."""
    if hasattr(fit_kwargs, "fingerprint"):
        return fit_kwargs.fingerprint()
    return sorted((k, repr(v)) for k, v in dict(fit_kwargs).items())


class RefreshedFit:
    """A recipe's ``fit_kwargs`` (a dict or ``fit_kwargs(x, y)``) with a fresh
    `BatchNormRefresh` first among every model's callbacks; picklable, and
    named in LiRA's shadow cache (`fingerprint`).

    Args:
        fit_kwargs: the recipe's (`keras_adamixup.recipes.Recipe.fit_kwargs`).

    Example:

    ```python
    fit_kwargs_for = data.RefreshedFit(made.fit_kwargs)
    ```
    """

    def __init__(self, fit_kwargs):
        self.fit_kwargs = fit_kwargs

    def __call__(self, x_train, y_train):
        kwargs = fit_kwargs_of(self.fit_kwargs, x_train, y_train)
        kwargs["callbacks"] = [BatchNormRefresh(x_train)] + list(kwargs.get("callbacks") or [])
        return kwargs

    def fingerprint(self):
        return {"batch_norm_refresh": 512, "inner": described(self.fit_kwargs)}
