"""SplitTeachers(cache_dir=): teachers as jobs of a job array, read back by `fit`."""

import json
import os

import numpy as np
import pytest

import keras_adamixup
from keras_adamixup import SplitTeachers
from tests.conftest import cluster_student, clusters


def _model(cache_dir, seed=0, **teacher_kwargs):
    """A fresh compiled AdaMixupModel, built as a job of the array would build it."""
    return cluster_student(SplitTeachers(4, 1, seed=seed, cache_dir=cache_dir,
                                         **teacher_kwargs))


def _refuse_training(monkeypatch, teachers):
    def refuse(*args, **kwargs):
        raise AssertionError("a teacher was trained although the cache has it")

    monkeypatch.setattr(teachers, "make_teachers", refuse)


def test_jobs_fill_the_folder_and_fit_reads_it(tmp_path, monkeypatch):
    x, y = clusters(n=200)
    folder = tmp_path / "teachers"
    # two jobs of an array, each with its own model (other auto-generated layer names)
    for job in ([0, 1], [2, 3]):
        model = _model(folder)
        stopped = model.targets.train(model, x, y, indices=job, epochs=3, batch_size=32)
        assert len(stopped) == 2 and all(1 <= e <= 3 for e in stopped)
    files = sorted(f for f in os.listdir(folder) if f.endswith(".npz"))
    assert files == [f"teacher_{k:03d}.npz" for k in range(4)]
    # the model's job: every teacher is read, none trained
    model = _model(folder)
    _refuse_training(monkeypatch, model.targets)
    model.fit(x, y, epochs=3, batch_size=32, verbose=0)
    soft = model.teacher_soft_labels
    left_out = model.targets.left_out(len(y), model.targets.groups(x))
    expected = np.zeros_like(soft)
    for k in range(4):
        with np.load(folder / f"teacher_{k:03d}.npz") as data:
            np.testing.assert_array_equal(data["left_out"], left_out[k])
            expected[left_out[k]] = data["probs"]
    np.testing.assert_allclose(soft, expected, rtol=1e-6)
    np.testing.assert_allclose(soft.sum(axis=1), 1.0, rtol=1e-5)
    assert len(model.teacher_targets.epochs) == 4


def test_a_missing_teacher_is_trained_and_written(tmp_path):
    x, y = clusters(n=160)
    folder = tmp_path / "t"
    model = _model(folder)
    model.targets.train(model, x, y, indices=[1], epochs=2, batch_size=32)
    trained = []
    model = _model(folder)
    original = model.targets.make_teachers
    model.targets.make_teachers = lambda m, count=None: trained.append(count) or original(m, count)
    soft = model.targets.soft_labels(model, x, y, epochs=2, batch_size=32)
    assert trained == [3]  # teachers 0, 2 and 3; teacher 1 was read
    assert sorted(f for f in os.listdir(folder) if f.endswith(".npz")) == [
        f"teacher_{k:03d}.npz" for k in range(4)]
    again = _model(folder)
    _refuse = lambda *a, **k: pytest.fail("trained again")  # noqa: E731
    again.targets.make_teachers = _refuse
    np.testing.assert_allclose(again.targets.soft_labels(again, x, y, epochs=2, batch_size=32),
                               soft, rtol=1e-6)


def test_other_training_or_a_changed_file_is_refused(tmp_path):
    x, y = clusters(n=160)
    folder = tmp_path / "t"
    model = _model(folder)
    model.targets.train(model, x, y, indices=[0], epochs=2, batch_size=32)
    for changed in (dict(x=x + 1.0), dict(y=(y + 1) % 3), dict(epochs=3), dict(batch_size=16)):
        kwargs = {"x": x, "y": y, "epochs": 2, "batch_size": 32, **changed}
        other = _model(folder)
        with pytest.raises(ValueError, match="belongs to another training"):
            other.targets.train(other, kwargs["x"], kwargs["y"], indices=[1],
                                epochs=kwargs["epochs"], batch_size=kwargs["batch_size"])
    other = _model(folder, patience=2)  # other teacher settings
    with pytest.raises(ValueError, match="belongs to another training"):
        other.targets.train(other, x, y, indices=[1], epochs=2, batch_size=32)
    # a file changed after it was written
    path = folder / "teacher_000.npz"
    with np.load(path) as data:
        arrays = dict(data)
    arrays["probs"] = arrays["probs"][::-1].copy()
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    model = _model(folder)
    with pytest.raises(ValueError, match="teacher_000.npz' does not match the checksum"):
        model.targets.soft_labels(model, x, y, epochs=2, batch_size=32)
    # a file whose checksum is right but whose rows are not this teacher's
    arrays["left_out"] = ~arrays["left_out"]
    keras_adamixup.teachers._TeacherCache.save(str(path), **arrays)
    with pytest.raises(ValueError, match="left out other rows"):
        model.targets.soft_labels(model, x, y, epochs=2, batch_size=32)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert set(manifest) == {"fingerprint"}


def test_arguments_are_checked(tmp_path):
    x, y = clusters(n=64)
    with pytest.raises(ValueError, match="needs a fixed `seed`"):
        SplitTeachers(4, 1, cache_dir=str(tmp_path))
    with pytest.raises(TypeError, match="cache_dir"):
        SplitTeachers(4, 1, seed=0, cache_dir=3)
    model = _model(None)
    with pytest.raises(ValueError, match="give SplitTeachers\\(cache_dir=...\\) a folder"):
        model.targets.train(model, x, y, indices=[0])
    model = _model(tmp_path)
    for bad in ([], [4], [-1]):
        with pytest.raises(ValueError, match="indices"):
            model.targets.train(model, x, y, indices=bad)
    config = model.targets.get_config()
    assert config["cache_dir"] == str(tmp_path)
    assert SplitTeachers.from_config(config).get_config() == config
