import pathlib
import runpy
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_quickstart_quick(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["quickstart.py", "--quick"])
    namespace = runpy.run_path(str(ROOT / "examples" / "quickstart.py"))
    plain, defended = namespace["main"](["--quick"])
    out = capsys.readouterr().out
    assert "undefended" in out and "AdaMixup" in out
    assert 0.5 < plain["test_acc"] <= 1.0 and 0.5 < defended["test_acc"] <= 1.0
    strengths = defended["history"]["mixup_strength"]
    assert len(strengths) == 5 and strengths[0] > strengths[-1]


def run_example(name, argv):
    namespace = runpy.run_path(str(ROOT / "examples" / f"{name}.py"))
    return namespace["main"](argv)


def check_reports(reports, out, capsys, defence="recommended"):
    text = capsys.readouterr().out
    assert set(reports) == {"undefended", defence}
    for name, report in reports.items():
        h = report.headline()
        assert 0.0 <= h["best_auc"] <= 1.0 and 0.0 <= h["test_accuracy"] <= 1.0
        assert (out / name / "report.json").exists()
    table = [ln for ln in text.splitlines() if ln.startswith("| ")]
    assert len(table) == 3 and table[1].startswith("| undefended |")
    assert (out / "comparison.md").exists()


SHARED = ROOT.parent / "shared" / "data"


@pytest.mark.skipif(not (SHARED / "mnist.npz").exists(),
                    reason="MNIST not found in ../shared/data (the project's machines only)")
def test_mnist_quick(tmp_path, capsys):
    reports = run_example("mnist", ["--quick", "--out", str(tmp_path)])
    check_reports(reports, tmp_path, capsys)


@pytest.mark.skipif(not (SHARED / "adult.data.gz").exists(),
                    reason="UCI Adult not found in ../shared/data (the project's machines only)")
def test_tabular_adult_quick(tmp_path, capsys):
    reports = run_example("tabular_adult", ["--quick", "--out", str(tmp_path)])
    check_reports(reports, tmp_path, capsys)


def test_cifar10_quick_on_a_small_npz(tmp_path, capsys):
    """CIFAR-10 cannot download here: the same code path on random images."""
    rng = np.random.default_rng(0)
    path = tmp_path / "c10.npz"
    np.savez(path, x_train=rng.integers(0, 256, (600, 32, 32, 3), dtype=np.uint8),
             y_train=rng.integers(0, 10, (600, 1)),
             x_test=rng.integers(0, 256, (100, 32, 32, 3), dtype=np.uint8),
             y_test=rng.integers(0, 10, (100, 1)))
    reports = run_example("cifar10", ["--quick", "--npz", str(path), "--out",
                                      str(tmp_path / "out")])
    check_reports(reports, tmp_path / "out", capsys)


def test_examples_skip_without_data(tmp_path, capsys):
    assert run_example("tabular_adult", ["--quick", "--data-dir", str(tmp_path)]) is None
    assert "skipped" in capsys.readouterr().out


def _mock_examples(names, n=540):
    """A `tfds.testing.mock_data` dataset function: `n` random images, labels from
    `names`."""
    import tensorflow as tf

    def as_dataset(self, split, **kwargs):
        rng = np.random.default_rng(len(str(split)))  # train and test differ
        shape = self.info.features["image"].shape
        images = rng.integers(0, 256, (n,) + tuple(shape), dtype=np.uint8)
        labels = names(rng, n)
        return tf.data.Dataset.from_tensor_slices({"image": images, "label": labels})

    return as_dataset


# the whole example on tfds' mock data takes about a minute each: make test-all (LFW's
# loading, names to ids, runs by default below; the example's training on images
# is test_cifar10_quick_on_a_small_npz's)
@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["lfw", "stl10"])
def test_paper_datasets_quick_on_tfds_mock_data(dataset, tmp_path, capsys):
    """LFW and STL-10 cannot download here: tfds' mock data, the same code path."""
    tfds = pytest.importorskip("tensorflow_datasets")
    if dataset == "lfw":  # names: 6 people, 20 photos each (min_per_class 20 keeps all)
        names = lambda rng, n: np.repeat(  # noqa: E731
            np.array([f"person_{i}".encode() for i in range(6)]), n // 6)
    else:
        names = lambda rng, n: rng.integers(0, 10, n)  # noqa: E731
    with tfds.testing.mock_data(as_dataset_fn=_mock_examples(names)):
        reports = run_example("paper_datasets", ["--dataset", dataset, "--quick",
                                                 "--image-size", "16", "--teachers", "4,1",
                                                 "--out", str(tmp_path)])
    assert [*reports] == ["undefended", "early_stopping", "adamixup", "recommended"]
    out = capsys.readouterr().out
    classes = 6 if dataset == "lfw" else 10
    assert f"{classes} classes, images (16, 16, 3)" in out
    assert (tmp_path / "comparison.md").exists()
    attacks = {r["attack"] for r in reports["recommended"].attacks}
    assert {"lira_online", "rmia_online_plain"} <= attacks


def test_lfw_names_become_ids_of_people_with_enough_photos():
    """LFW's labels are names: ids 0 … k−1 for the people with `min_per_class`
    photos or more, the others dropped (tfds' mock data: it cannot download here)."""
    tfds = pytest.importorskip("tensorflow_datasets")
    pool = runpy.run_path(str(ROOT / "examples" / "paper_datasets.py"))["load_pool"]
    people = np.array([b"ann", b"bob", b"cy"])
    counts = {b"ann": 25, b"bob": 21, b"cy": 14}  # cy: too few photos
    with tfds.testing.mock_data(as_dataset_fn=_mock_examples(
            lambda rng, n: np.repeat(people, [counts[p] for p in people]), n=60)):
        x, y = pool("lfw", image_size=8, min_per_class=20)
    assert x.shape == (46, 8, 8, 3) and x.dtype == np.float32
    assert np.bincount(y).tolist() == [25, 21]


def test_paper_datasets_npz_in_either_layout(tmp_path):
    pool = runpy.run_path(str(ROOT / "examples" / "paper_datasets.py"))["load_pool"]
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (12, 8, 8), dtype=np.uint8)
    labels = np.arange(12) % 3
    np.savez(tmp_path / "pool.npz", x=images, y=labels)
    np.savez(tmp_path / "keras.npz", x_train=images[:8], y_train=labels[:8],
             x_test=images[8:], y_test=labels[8:])
    for name in ("pool.npz", "keras.npz"):
        x, y = pool("mnist", npz=str(tmp_path / name), image_size=8)
        assert x.shape == (12, 8, 8, 1) and x.dtype == np.float32 and x.max() <= 1.0
        np.testing.assert_array_equal(y, labels)
