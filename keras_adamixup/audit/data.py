"""Data for audits: loaders and recorded member/non-member splits.

Loaders return `(x_train, y_train), (x_test, y_test)` (the keras.datasets
convention):

- ``"digits"``: scikit-learn's bundled digits (offline), float32 in [0, 1],
  shape `(n, 64)`, split in two halves with a seed.
- ``"npz:PATH"``: an `.npz` holding members as `x_train`/`y_train` and
  non-members as `x_test`/`y_test`.
- ``"tfds:NAME"``: a tensorflow-datasets name (its `train` and `test`
  splits); needs `tensorflow-datasets` and either network access or a
  prepared `data_dir`.

A `MembershipSplit` records which indices of a pool were members and which
non-members, with the seed that drew them, so an audit can be reproduced.
"""

import dataclasses
import json
import os

import zipfile

import numpy as np

from keras_adamixup import _io


__all__ = [
    "MembershipSplit",
    "adult_pool",
    "digits_pool",
    "load",
    "load_pool",
]


@dataclasses.dataclass
class MembershipSplit:
    """Indices of members and non-members in a pool of examples.

    Args:
        members: indices of the training members.
        nonmembers: indices of held-out non-members.
        seed: seed that drew the split (`None` if given by hand).
        source: what the pool is (e.g. ``"digits"``).

    Example:

    >>> split = MembershipSplit.draw(1797, seed=0, source="digits")
    >>> _ = split.to_json("split.json")
    >>> MembershipSplit.from_json("split.json") == split
    True
    """

    members: list
    nonmembers: list
    seed: int = None
    source: str = ""

    def __post_init__(self):
        self.members = [int(i) for i in self.members]
        self.nonmembers = [int(i) for i in self.nonmembers]
        overlap = set(self.members) & set(self.nonmembers)
        if overlap:
            raise ValueError(
                f"{len(overlap)} index(es) are both members and non-members, e.g. "
                f"{sorted(overlap)[:5]}."
            )

    @classmethod
    def draw(cls, pool_size, seed=0, member_fraction=0.5, nonmember_size=None, source=""):
        """Random disjoint split of `range(pool_size)`."""
        if not 0 < member_fraction < 1:
            raise ValueError(f"`member_fraction` must be in (0, 1), got {member_fraction}.")
        order = np.random.default_rng(seed).permutation(pool_size)
        cut = int(round(pool_size * member_fraction))
        rest = order[cut:] if nonmember_size is None else order[cut:cut + nonmember_size]
        return cls(order[:cut].tolist(), rest.tolist(), seed, source)

    def apply(self, x, y):
        """`(x, y)` → `((x_members, y_members), (x_nonmembers, y_nonmembers))`.

        Raises:
            ValueError: an index outside the pool (the split was recorded
                on other data).
        """
        m, n = np.asarray(self.members, int), np.asarray(self.nonmembers, int)
        both = np.concatenate([m, n])
        bad = both[(both < 0) | (both >= len(x))]
        if len(bad):
            raise ValueError(
                f"The split indexes rows up to {int(both.max())} but the pool "
                f"{self.source or ''} has {len(x)} rows ({len(bad)} index(es) out of "
                f"range, e.g. {bad[:3].tolist()}): it was recorded on other data.")
        return (x[m], y[m]), (x[n], y[n])

    def to_json(self, path=None):
        text = json.dumps(dataclasses.asdict(self))
        if path is not None:
            _io.write_text(path, text)
        return text

    @classmethod
    def from_json(cls, path):
        """Reads a split written by `to_json`.

        Raises:
            FileNotFoundError: no such file.
            ValueError: not a split file (not JSON, or without the lists).
        """
        if not os.path.exists(path):
            raise FileNotFoundError(f"Split file {path!r} does not exist.")
        try:
            with open(path, encoding="utf-8") as f:
                content = json.load(f)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"Split file {path!r} is not JSON ({error}).") from None
        fields = {f.name for f in dataclasses.fields(cls)}
        if (not isinstance(content, dict) or not {"members", "nonmembers"} <= set(content)
                or not set(content) <= fields):
            raise ValueError(
                f"Split file {path!r} is not a membership split: expected the keys "
                f"{sorted(fields)} (written by MembershipSplit.to_json).")
        try:
            return cls(**content)
        except (TypeError, ValueError) as error:
            raise ValueError(f"Split file {path!r}: {error}") from None


def digits_pool():
    """All of scikit-learn's digits, in their original order: `(x, y)`.

    Example:

    ```python
    x, y = audit.data.digits_pool()    # 1,797 rows of 64 features in [0, 1]
    ```
    """
    from sklearn.datasets import load_digits as sk_digits

    x, y = sk_digits(return_X_y=True)
    return (x / 16.0).astype("float32"), y.astype("int64")


ADULT_COLUMNS = ("age", "workclass", "fnlwgt", "education", "education_num",
                 "marital_status", "occupation", "relationship", "race", "sex",
                 "capital_gain", "capital_loss", "hours_per_week", "native_country",
                 "income")


def adult_pool(folder, return_groups=False):
    """UCI Adult from `folder` (adult.data[.gz], adult.test[.gz]) as `(x, y)`.

    Both files are pooled; rows with a missing value ('?') and exact duplicate
    rows are dropped. Numeric columns are standardized, categorical ones one-hot
    encoded (104 features, float32); ``y`` is 1 for income > 50K. The test
    file's first line (a comment) and the '.' after its labels are handled.
    Raises FileNotFoundError when the files are absent. With `return_groups`,
    also the column indices of each categorical variable's one-hot block
    (`feature_groups` for ``features="swap"``): `(x, y, groups)`.

    Args:
        folder: the folder that holds ``adult.data`` and ``adult.test``
            (optionally gzipped).
        return_groups: also return the one-hot blocks' column indices.

    Example:

    ```python
    x, y, groups = audit.data.adult_pool("../shared/data", return_groups=True)
    ```
    """
    import os

    import pandas as pd

    def path(name):
        for candidate in (name + ".gz", name):
            if os.path.exists(os.path.join(folder, candidate)):
                return os.path.join(folder, candidate)
        raise FileNotFoundError(f"UCI Adult: {name}[.gz] not found in {folder}.")

    frames = [pd.read_csv(path(name), names=list(ADULT_COLUMNS), skipinitialspace=True,
                          na_values="?", comment="|")
              for name in ("adult.data", "adult.test")]
    # Identical records (about 50 in Adult, some with both labels) would be
    # members and non-members at once: keep the first of each.
    features = [c for c in ADULT_COLUMNS if c != "income"]
    frame = pd.concat(frames).dropna().drop_duplicates(subset=features)
    y = frame.pop("income").str.rstrip(".").eq(">50K").astype("int64").to_numpy()
    numeric = frame.select_dtypes("number")
    numeric = (numeric - numeric.mean()) / numeric.std()
    categorical = frame.select_dtypes("object")
    x = pd.concat([numeric, pd.get_dummies(categorical)], axis=1)
    if not return_groups:
        return x.to_numpy("float32"), y
    columns = list(x.columns)
    first = numeric.shape[1]  # the one-hot columns follow the numeric ones
    groups = [[i for i, c in enumerate(columns) if i >= first and str(c).startswith(name + "_")]
              for name in categorical.columns]
    return x.to_numpy("float32"), y, [g for g in groups if g]


def load_digits(seed=0):
    """scikit-learn digits, two halves: `((x_train, y_train), (x_test, y_test)), split`."""
    x, y = digits_pool()
    split = MembershipSplit.draw(len(x), seed=seed, source="digits")
    return split.apply(x, y), split


def load_pool(spec, data_dir=None):
    """The pool a recorded `MembershipSplit` indexes: digits, or a tfds data set's train + test.

    Args:
        spec: ``"digits"`` or ``"tfds:NAME"``.
        data_dir: tensorflow-datasets' data folder, for ``tfds:``.

    Example:

    ```python
    split = audit.data.MembershipSplit.from_json("split.json")
    x, y = audit.data.load_pool(split.source)
    ```
    """
    if spec == "digits":
        return digits_pool()
    if spec.startswith("tfds:"):
        (xa, ya), (xb, yb) = load_tfds(spec[5:], data_dir=data_dir)
        return np.concatenate([xa, xb]), np.concatenate([ya, yb])
    raise ValueError(
        f"A split file indexes a pool ('digits' or 'tfds:NAME'); {spec!r} already "
        "holds its members and non-members."
    )


def load_npz(path):
    """An `.npz` with `x_train`, `y_train` (members), `x_test`, `y_test` (non-members)."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"npz file {path!r} does not exist.")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path!r} is not a readable .npz file (truncated or another format).")
    with np.load(path, allow_pickle=False) as data:
        missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in data]
        if missing:
            raise ValueError(
                f"{path} lacks {missing}: an audit .npz holds members as x_train/y_train "
                "and non-members as x_test/y_test."
            )
        return (data["x_train"], data["y_train"]), (data["x_test"], data["y_test"])


def load_tfds(name, data_dir=None, limit=None):
    """train/test splits of a tensorflow-datasets data set as numpy arrays."""
    try:
        import tensorflow_datasets as tfds
    except Exception as error:  # noqa: BLE001 - also a broken install (protobuf clashes)
        raise ImportError(
            "Loading 'tfds:' data needs a working tensorflow-datasets: pip install "
            f"'keras-adamixup[datasets]' ({type(error).__name__}: "
            f"{str(error).strip().splitlines()[0] if str(error).strip() else ''})."
        ) from error
    out = []
    try:
        for split in ("train", "test"):
            ds = tfds.load(name, split=split if limit is None else f"{split}[:{limit}]",
                           as_supervised=True, data_dir=data_dir)
            x, y = zip(*tfds.as_numpy(ds))
            out.append((np.stack(x), np.asarray(y)))
    except Exception as error:  # noqa: BLE001 - tfds raises many types when offline
        detail = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise ValueError(
            f"tensorflow-datasets could not load {name!r} ({type(error).__name__}: "
            f"{detail}). It is not prepared in data_dir={data_dir!r} and cannot be "
            "downloaded here (no network, or a missing tfds dependency). Prepare it "
            f"on a machine with network (`tfds build {name} --data_dir DIR`), copy DIR "
            "here and pass it as data_dir / --data-dir; or save the arrays as an .npz "
            "(x_train, y_train, x_test, y_test) and use 'npz:PATH'."
        ) from None
    return tuple(out)


def load(spec, data_dir=None, seed=0):
    """Loads ``digits``, ``npz:PATH`` or ``tfds:NAME``; returns `(members, nonmembers)`.

    Args:
        spec: ``"digits"``, ``"npz:PATH"`` (members as ``x_train`` /
            ``y_train``, non-members as ``x_test`` / ``y_test``) or
            ``"tfds:NAME"``.
        data_dir: tensorflow-datasets' data folder, for ``tfds:``.
        seed: the seed of the digits' split into members and non-members.

    Example:

    ```python
    members, nonmembers = audit.data.load("npz:data.npz")
    ```
    """
    if spec == "digits":
        return load_digits(seed)[0]
    if spec.startswith("npz:"):
        return load_npz(spec[4:])
    if spec.startswith("tfds:"):
        return load_tfds(spec[5:], data_dir=data_dir)
    raise ValueError(f"Unknown data {spec!r}: use 'digits', 'npz:PATH' or 'tfds:NAME'.")
