"""`TeacherTargets`: what training split teachers produced, as an immutable value.

`SplitTeachers` is the configuration (how many teachers, which rows each
leaves out, when they stop); `SplitTeachers.fit` trains them and returns a
`TeacherTargets`: the out-of-fold soft labels, which rows each teacher left
out, the digest of what they trained on, the epoch each kept, and the
per-row weights of groups. `AdaMixupModel` holds the one its last `fit`
trained on (`model.teacher_targets`), saves it with the model, and reuses it
while the training data are the same; `save` / `load` keep it in a file of
its own, and assigning one to ``model.teacher_targets`` reuses it (a
student trained again without training its teachers again) when the model's
``targets=SplitTeachers(...)`` has the settings that made it, seed included,
and `fit` gets the same data, epochs and batch size; else the teachers train
again and `fit` warns (E71).

Example:

```python
targets = keras_adamixup.SplitTeachers(16, 2, seed=0).fit(
    model, x_train, y_train, epochs=40, batch_size=64)
targets.soft_labels.shape        # (len(x_train), classes)
targets.save("teachers.npz")
# a model with targets=SplitTeachers(16, 2, seed=0), the settings that made them
model.teacher_targets = keras_adamixup.TeacherTargets.load("teachers.npz")
model.fit(x_train, y_train, epochs=40, batch_size=64)   # no teacher trains
```
"""

import dataclasses
import json
import os

import numpy as np

_FORMAT = 1


class TeachersWarning(UserWarning):
    """The teachers' soft labels are weaker than the training asks for (E57, E58)."""


def _frozen(array, dtype=None):
    """A read-only copy of `array` (`None` stays `None`)."""
    if array is None:
        return None
    array = np.array(array, dtype=dtype, copy=True)
    array.setflags(write=False)
    return array


@dataclasses.dataclass(frozen=True, eq=False)
class TeacherTargets:
    """The result of training split teachers (see the module docstring).

    Args:
        soft_labels: float32 ``(rows, classes)``: for each training row, the
            mean probabilities of the teachers that left it out; the
            unlabelled rows' labels follow the training rows' when
            ``fit(..., unlabelled=)`` gave any.
        left_out: bool ``(teachers, training rows)``: True where teacher k
            did not train on row i.
        digest: hex digest of what the teachers trained on (inputs, labels,
            weights, groups, unlabelled rows, settings); `AdaMixupModel.fit`
            reuses the targets while it matches.
        epochs: the epochs each teacher trained (with
            `SplitTeachers.patience`, it stopped that many epochs after its
            best on the rows it left out, whose weights it kept), or `None`
            without epoch selection (every teacher trained every epoch).
        planned_epochs: the epochs the teachers were asked to train.
        row_weights: float32 per-row weights (1/k for a row of a group of k
            near-duplicates or given groups), or `None` when every row is
            alone or groups are not weighed.
        groups_found: the near-duplicate / given groups found
            (`keras_adamixup.duplicates.summary`), or `None`.

    Example:

    ```python
    targets = model.teacher_targets          # after model.fit(...)
    wrong = targets.soft_labels[:targets.rows].argmax(1) != y_train
    ```
    """

    soft_labels: np.ndarray
    left_out: np.ndarray
    digest: str
    epochs: tuple = None
    planned_epochs: int = None
    row_weights: np.ndarray = None
    groups_found: dict = None

    def __post_init__(self):
        soft = _frozen(self.soft_labels, "float32")
        left_out = _frozen(self.left_out, bool)
        if soft.ndim != 2 or left_out.ndim != 2 or len(soft) < left_out.shape[1]:
            raise ValueError(
                f"TeacherTargets: soft labels of shape {soft.shape} do not cover the "
                f"{left_out.shape[-1]} rows of `left_out` (shape {left_out.shape}).")
        object.__setattr__(self, "soft_labels", soft)
        object.__setattr__(self, "left_out", left_out)
        object.__setattr__(self, "row_weights", _frozen(self.row_weights, "float32"))
        if self.epochs is not None:
            object.__setattr__(self, "epochs", tuple(int(e) for e in self.epochs))
        if self.groups_found is not None:
            object.__setattr__(self, "groups_found", dict(self.groups_found))

    @property
    def teachers(self):
        """The number of teachers."""
        return self.left_out.shape[0]

    @property
    def rows(self):
        """The number of training rows (the soft labels of unlabelled rows follow them)."""
        return self.left_out.shape[1]

    @property
    def unlabelled_soft_labels(self):
        """The soft labels of the ``unlabelled=`` rows (empty when none were given)."""
        return self.soft_labels[self.rows:]

    def save(self, path):
        """Writes the targets to `path` (a NumPy ``.npz`` file, no pickle).

        Args:
            path: the file to write.
        """
        with open(os.fspath(path), "wb") as handle:
            np.savez(handle, **self.to_store())

    @classmethod
    def load(cls, path):
        """Reads targets written by `save`.

        Args:
            path: the ``.npz`` file.
        """
        with np.load(os.fspath(path), allow_pickle=False) as data:
            if "meta" not in data or "soft_labels" not in data:
                raise ValueError(f"{os.fspath(path)} is not a file of TeacherTargets.save.")
            return cls.from_store({key: data[key] for key in data.files})

    def to_store(self):
        """The targets as a dict of arrays (`save`, and `AdaMixupModel`'s saving)."""
        meta = {"format": _FORMAT, "digest": self.digest,
                "planned_epochs": self.planned_epochs,
                "epochs": None if self.epochs is None else list(self.epochs),
                "groups_found": self.groups_found}
        arrays = {"soft_labels": self.soft_labels, "left_out": self.left_out,
                  "meta": np.frombuffer(json.dumps(meta).encode(), dtype="uint8")}
        if self.row_weights is not None:
            arrays["row_weights"] = self.row_weights
        return arrays

    @classmethod
    def from_store(cls, arrays):
        """The targets from `to_store`'s arrays (a mapping of names to arrays)."""
        meta = json.loads(bytes(np.asarray(arrays["meta"], dtype="uint8")).decode())
        row_weights = arrays["row_weights"] if "row_weights" in arrays else None
        return cls(np.asarray(arrays["soft_labels"]), np.asarray(arrays["left_out"]),
                   meta["digest"], epochs=meta["epochs"],
                   planned_epochs=meta["planned_epochs"],
                   row_weights=None if row_weights is None else np.asarray(row_weights),
                   groups_found=meta["groups_found"])

    def __repr__(self):
        return (f"TeacherTargets(teachers={self.teachers}, rows={self.rows}, "
                f"unlabelled={len(self.soft_labels) - self.rows}, "
                f"classes={self.soft_labels.shape[1]}, epochs={self.epochs}, "
                f"digest={self.digest[:12]}…)")
