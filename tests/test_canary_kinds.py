"""The duplicate canaries' near-copy kinds (issue 40): each kind's copies, the refusals,
the per-kind breakdown, the canary benchmark's option and the grouping benchmark."""

import importlib
import json

import numpy as np
import pytest

from keras_adamixup import duplicates
from keras_adamixup.audit import canaries
from keras_adamixup.audit import report as report_lib


def load(name):
    """A benchmark script, imported as `python -m benchmarks.NAME` runs it."""
    return importlib.import_module(f"benchmarks.{name}")


def _images(n=120, size=16, channels=1, seed=0):
    """Smooth random images in [0, 1] (blobs on a dark background), ``(n, size, size, c)``."""
    rng = np.random.default_rng(seed)
    grid = np.arange(size)[:, None]
    centres = rng.uniform(3, size - 3, size=(n, 2, channels))
    width = rng.uniform(1.5, 3.5, size=(n, 1, channels))
    rows = np.exp(-((grid[None] - centres[:, :1]) ** 2) / (2 * width ** 2))  # (n, size, c)
    cols = np.exp(-((grid[None] - centres[:, 1:]) ** 2) / (2 * width ** 2))
    return (rows[:, :, None, :] * cols[:, None, :, :]).astype("float32")


def _tabular(n=200, features=12, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, features)).astype("float32")


def _copies(x, kind, seed=0, **options):
    rows = np.arange(0, len(x), 3)
    near = canaries.NearCopy(kinds=kind, **options)
    return rows, canaries.near_copies(x, rows, near, seed=seed)


def _typical_gap(x, rows):
    """Mean absolute difference between each of `rows` and another row of `x`."""
    flat = x.reshape(len(x), -1)
    return np.mean(np.abs(flat[rows] - flat[(rows + 1) % len(x)]))


CASES = [("relative", "tabular", {}), ("absolute", "tabular", {}),
         ("features", "tabular", {}), ("relative", "images", {}),
         ("absolute", "images", {}), ("shift", "images", {}), ("crop", "images", {}),
         ("jpeg", "images", {}), ("jpeg", "rgb", {}), ("shift", "flat", {"image_shape": (16, 16)}),
         ("crop", "flat", {"image_shape": (16, 16, 1)}), ("features", "images", {}),
         ("zoom", "images", {}), ("zoom", "flat", {"image_shape": (16, 16)})]


@pytest.mark.parametrize("kind,data,options", CASES, ids=[f"{k}-{d}" for k, d, _ in CASES])
def test_each_kind_copies_close_in_range_and_per_seed(kind, data, options):
    x = {"tabular": _tabular(), "images": _images(), "rgb": _images(channels=3),
         "flat": _images().reshape(120, -1)}[data]
    rows, made = _copies(x, kind, **options)
    assert made.shape == (len(rows),) + x.shape[1:] and made.dtype == x.dtype
    assert made.min() >= x.min() and made.max() <= x.max()  # clipped to the data's range
    flat, source = made.reshape(len(rows), -1), x[rows].reshape(len(rows), -1)
    assert np.all(np.any(flat != source, axis=1))  # every copy differs from its source
    gap = np.mean(np.abs(flat - source))
    assert gap < 0.5 * _typical_gap(x, rows), (gap, _typical_gap(x, rows))  # closer than others
    again = _copies(x, kind, **options)[1]
    np.testing.assert_array_equal(made, again)  # deterministic per seed
    if kind != "jpeg":  # a re-encoding draws nothing
        assert not np.array_equal(made, _copies(x, kind, seed=1, **options)[1])


def test_kinds_make_what_they_say():
    x = _images()
    rows, shifted = _copies(x, "shift")
    for source, copy in zip(x[rows], shifted):  # some translation by 1-2 pixels matches
        matches = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                   if np.allclose(copy[2:-2, 2:-2], np.roll(source, (dy, dx), (0, 1))[2:-2, 2:-2])]
        assert matches and max(abs(matches[0][0]), abs(matches[0][1])) in (1, 2)
    rows, zoomed = _copies(x, "zoom")  # between pixels: no whole-pixel crop makes it
    from keras_adamixup import _image_ops
    for source, copy in zip(x[rows], zoomed):
        crops = [_image_ops.crop_resized(source, c, t, l) for c in range(1, 4)
                 for t in range(c + 1) for l in range(c + 1)]
        assert min(np.abs(copy - crop).max() for crop in crops) > 1e-3
    tab = _tabular()
    rows, noisy = _copies(tab, "absolute", sigma=0.1)
    assert 0.08 < np.std(noisy - tab[rows]) < 0.12  # absolute σ, not relative to the spread
    rows, changed = _copies(tab, "features", features=2)
    differ = np.sum(changed != tab[rows], axis=1)
    assert np.all((differ >= 1) & (differ <= 2))
    for copy, source in zip(changed, rows):  # the changed values are another row's
        cols = np.flatnonzero(copy != tab[source])
        donors = np.flatnonzero(np.all(tab[:, cols] == copy[cols], axis=1))
        assert len(donors) and source not in donors
    # one-hot blocks change whole: a copy stays one-hot
    onehot = np.eye(4, dtype="float32")[np.random.default_rng(0).integers(0, 4, 60)]
    data = np.concatenate([onehot, _tabular(60, 3)], axis=1)
    rows, made = _copies(data, "features", features=1, feature_groups=[[0, 1, 2, 3]])
    assert np.all(made[:, :4].sum(axis=1) == 1)
    rows, zero = _copies(tab, "relative", noise=0.0)
    np.testing.assert_array_equal(zero, tab[rows])  # noise 0: the record stored twice


def test_refusals():
    tab = _tabular()
    for kind in canaries.IMAGE_NEAR_COPIES:
        with pytest.raises(ValueError, match="need images"):
            canaries.near_copies(tab, [0], kind)
        with pytest.raises(ValueError, match="need images"):
            canaries.plant(tab, np.arange(len(tab)) % 3, count=5, kinds="duplicate",
                           near_copy=("relative", kind))
    with pytest.raises(ValueError, match="1 or 3 channels"):
        canaries.near_copies(_images(n=20, channels=4), [0], "jpeg")
    with pytest.raises(ValueError, match="holds 512 values"):
        canaries.near_copies(_images().reshape(120, -1), [0],
                             canaries.NearCopy("shift", image_shape=(8, 32, 2)))
    with pytest.raises(ValueError, match="too small"):
        canaries.near_copies(np.zeros((10, 5, 5, 1)), [0], "crop")
    with pytest.raises(ValueError, match="one kind"):
        canaries.near_copies(tab, [0], ("relative", "absolute"))
    with pytest.raises(ValueError, match="`rows`"):
        canaries.near_copies(tab, [len(tab)], "relative")
    for wrong, error in ((dict(kinds="blur"), ValueError), (dict(kinds=()), ValueError),
                         (dict(kinds=("shift", "shift")), ValueError),
                         (dict(kinds=3), TypeError), (dict(sigma=-1.0), ValueError),
                         (dict(sigma="a"), TypeError), (dict(jpeg_quality=101), ValueError),
                         (dict(max_shift=0), ValueError), (dict(features=1.5), TypeError),
                         (dict(max_zoom=0.02), ValueError), (dict(max_zoom=0.6), ValueError),
                         (dict(image_shape=(28,)), ValueError),
                         (dict(feature_groups=[[0, -1]]), ValueError)):
        with pytest.raises(error):
            canaries.NearCopy(**wrong)
    y = np.arange(len(tab)) % 3
    with pytest.raises(ValueError, match="give the noise once"):
        canaries.plant(tab, y, count=5, kinds="duplicate", near_copy_noise=0.1,
                       near_copy=canaries.NearCopy(noise=0.2))
    with pytest.raises(TypeError, match="`near_copy`"):
        canaries.plant(tab, y, count=5, kinds="duplicate", near_copy=0.1)
    with pytest.raises(TypeError, match="seed"):  # NumPy's error named no argument
        canaries.plant(tab, y, count=5, kinds="duplicate", seed="0")
    with pytest.raises(TypeError, match="seed"):
        canaries.near_copies(tab, [0], "absolute", seed=1.5)
    with pytest.raises(ValueError, match="makes none"):  # it would be ignored
        canaries.plant(tab, y, count=5, kinds="duplicate", near_copy_noise=0.1,
                       near_copy="absolute")
    with pytest.raises(ValueError, match="fewer ordinary members"):  # 3 kinds x 40 units
        canaries.plant(tab, y, count=40, kinds="duplicate",
                       near_copy=("relative", "absolute", "features"))


def test_careless_inputs_to_near_copies():
    """Found by a careless-user pass: NaN data, a boolean mask for `rows`, integer
    images (rounded, not floored), small images for the kinds that need no margin."""
    x = _images()
    x[5, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"NaN or inf in rows \[5\]"):
        canaries.near_copies(x, [0], "zoom")  # the copies were all NaN
    with pytest.raises(ValueError, match="NaN or inf"):
        canaries.plant(x, np.arange(len(x)) % 3, count=5, kinds="duplicate")
    mask = np.zeros(len(x), bool)
    mask[[3, 7]] = True
    with pytest.raises(ValueError, match="flatnonzero"):
        canaries.near_copies(_images(), mask, "crop")
    with pytest.raises(ValueError, match="row indices"):
        canaries.near_copies(_images(), [1.5], "crop")
    grey = np.round(_images(channels=3) * 255).astype("uint8")
    for kind in ("zoom", "crop"):  # the same copies as of the float data, rounded
        made = canaries.near_copies(grey, [0, 1, 2], kind, seed=3)
        exact = canaries.near_copies(grey.astype("float64"), [0, 1, 2], kind, seed=3)
        np.testing.assert_array_equal(made, np.rint(exact).astype("uint8"))
        assert not np.array_equal(made, exact.astype("uint8"))  # a cast alone floors
    tiny = np.random.default_rng(0).random((10, 5, 5, 1))
    assert canaries.near_copies(tiny, [0], "zoom").shape == (1, 5, 5, 1)
    with pytest.raises(ValueError, match=r"too small to crop 3 pixels \(`max_shift`"):
        canaries.near_copies(tiny, [0], "crop")
    first = np.random.default_rng(0).random((10, 3, 32, 32))  # channels first
    with pytest.raises(ValueError, match=r"channels first\? .*np.moveaxis\(x, 1, -1\)"):
        canaries.near_copies(first, [0], "zoom")
    with pytest.raises(ValueError, match=r"channels first\? .*np.moveaxis\(x, 1, -1\)"):
        duplicates.near_duplicate_groups(first, shift=2, crop=3)
    with pytest.raises(ValueError) as plain:  # no hint for images that are not that
        canaries.near_copies(tiny, [0], "crop")
    assert "channels first" not in str(plain.value)


def test_careless_canary_options():
    """A third careless-user pass: options that were ignored or did nothing refused."""
    grey = np.round(_images() * 255).astype("uint8")
    y = np.arange(len(grey)) % 3
    for data in (grey, grey.astype("float32")):  # raw 0..255 pixels, sigma meant for [0, 1]
        with pytest.raises(ValueError, match=r"data range over 255.*sigma=12\.75"):
            canaries.plant(data, y, count=5, kinds="duplicate", near_copy="absolute")
    with pytest.raises(ValueError, match="integer data: every copy rounds back"):
        canaries.near_copies(grey, [0], "absolute")
    made = canaries.near_copies(grey, [0, 1], canaries.NearCopy("absolute", sigma=12.75))
    assert not np.array_equal(made, grey[:2])  # in the data's units it is noise
    assert canaries.near_copies(grey, [0], canaries.NearCopy("absolute", sigma=0)).shape == \
        (1, 16, 16, 1)  # no noise asked: the record stored twice
    with pytest.raises(ValueError, match="has no 'duplicate'"):  # no duplicates were made
        canaries.plant(grey, y, count=5, kinds="mislabelled", near_copy=("zoom", "crop"))
    with pytest.raises(ValueError, match="is a near-copy kind, give plant\\(kinds='duplicate'"):
        canaries.plant(grey, y, count=5, kinds="zoom")
    with pytest.raises(ValueError, match="near-copy kind 'Zoom' .*'zoom'\\?"):
        canaries.plant(grey, y, count=5, kinds="duplicate", near_copy="Zoom")
    square = grey[..., 0]  # (n, 16, 16): greyscale as the duplicate search reads it
    _, _, planted = canaries.plant(square, y, count=5, kinds="duplicate",
                                   near_copy=("zoom", "crop"), seed=1)
    made = canaries.near_copies(grey, [0, 1], "crop", seed=4)
    np.testing.assert_array_equal(canaries.near_copies(square, [0, 1], "crop", seed=4),
                                  made[..., 0])
    assert planted.x.shape[1:] == (16, 16)


def test_plant_tags_each_duplicate_with_its_kind_and_breaks_the_results_down():
    x = _images(n=400).reshape(400, -1)
    y = np.arange(400) % 4
    near = canaries.NearCopy(kinds=("relative", "absolute", "shift"), image_shape=(16, 16))
    x_rest, _, planted = canaries.plant(x, y, count=12, kinds=("mislabelled", "duplicate"),
                                        near_copy=near, seed=2)
    assert len(x_rest) == 400 - 12 - 36
    kinds, tags = np.asarray(planted.kinds), np.asarray(planted.near_copy_kinds)
    assert np.sum(kinds == "duplicate") == 36 and set(tags[kinds == "mislabelled"]) == {""}
    assert [np.sum(tags == k) for k in near.kinds] == [12, 12, 12]
    meta = planted.to_dict()
    assert meta["near_copy"]["kinds"] == ["relative", "absolute", "shift"] \
        or tuple(meta["near_copy"]["kinds"]) == near.kinds
    assert meta["near_copy_kinds"] == list(planted.near_copy_kinds)
    json.dumps(meta)
    same = canaries.plant(x, y, count=12, kinds=("mislabelled", "duplicate"), near_copy=near,
                          seed=2)[2]
    assert same == planted
    rows_in = planted.rows_included.astype("float64")
    perfect = rows_in + 0.01 * np.arange(len(rows_in)) / len(rows_in)
    result = canaries.unit_rows(planted, {"perfect": perfect})
    assert list(result) == ["mislabelled", "duplicate", "duplicate:relative",
                            "duplicate:absolute", "duplicate:shift"]
    assert result["duplicate"]["units"] == 36
    for key in ("duplicate:relative", "duplicate:absolute", "duplicate:shift"):
        entry = result[key]
        assert entry["units"] == 12 and entry["in"] + entry["out"] == 12
        assert entry["measurable"] == (min(entry["in"], entry["out"]) >= 5)
        assert entry["attacks"]["perfect"]["auc"] == 1.0
    text = "\n".join(report_lib._canary_lines({"canaries": {**meta, "kinds_measured": result}}))
    assert "### duplicate:shift: 12 units" in text


def test_one_kind_keeps_the_old_outputs():
    x, y = _tabular(), np.arange(200) % 3
    planted = canaries.plant(x, y, count=10, kinds="duplicate", seed=0)[2]
    assert "near_copy" not in planted.to_dict()
    assert set(planted.near_copy_kinds) == {"relative"}
    one = canaries.plant(x, y, count=10, kinds="duplicate", seed=0, near_copy="absolute")[2]
    assert one.to_dict()["near_copy"]["sigma"] == 0.05
    scores = {"s": np.random.default_rng(0).random(len(one.x))}
    assert list(canaries.unit_rows(one, scores)) == ["duplicate"]  # no breakdown of one kind
    # the same draws as the default, another copy
    assert np.array_equal(one.included, planted.included)
    assert not np.array_equal(one.x, planted.x)


def test_canary_audit_takes_near_copy_kinds():
    ca = load("canary_audit")
    args = ca.arguments(["--near-copy", "relative,shift", "--data", "mnist"])
    assert args.near_copy == "relative,shift"
    near = ca.near_copy("mnist", np.zeros((4, 784), "float32"), ("relative", "shift"))
    assert near.image_shape == (28, 28, 1) and near.kinds == ("relative", "shift")
    assert ca.near_copy("adult", np.zeros((4, 104)), ("features",)).image_shape is None
    numbers = {"units": 20, "in": 9, "out": 11, "measurable": True, "auc": 0.9,
               "auc_attack": "lira_online", "tpr": 0.4, "tpr_ci": [0.2, 0.7],
               "tpr_measurable": False, "tpr_attack": "rmia_online", "epsilon_one_run": 0.7,
               "epsilon_attack": "rmia_online", "epsilon_roc": 0.6}
    row = {"defence": "none", "seed": 0, "test_accuracy": 0.95, "best_auc": 0.6,
           "best_auc_attack": "rmia_online", "best_tpr_at_0.001_fpr": 0.01,
           "best_tpr_ci": [0.005, 0.02], "best_tpr_attack": "lira_online", "own_shadows": 0,
           "plain_shadows": 16, "dp_epsilon": None, "train_s": 12.0,
           "kinds": {"duplicate:shift": numbers, "outlier": numbers, "duplicate": numbers,
                     "duplicate:relative": numbers, "mislabelled": numbers}}
    text = ca.markdown([row], "t")
    order = [text.index(f" {k}: AUC") for k in ("mislabelled", "duplicate", "duplicate:relative",
                                                  "duplicate:shift", "outlier")]
    assert order == sorted(order)


def test_near_copy_groups_measures_recall_and_false_rows(tmp_path):
    ncg = load("near_copy_groups")
    # three rows and two copies: the copy of row 0 found, that of row 2 not, row 1 falsely
    # grouped with row 0
    labels, family = np.array([0, 0, 2, 0, 4]), np.array([0, 1, 2, 0, 2])
    m = ncg.measure(labels, family, 3)
    assert (m["found"], m["copies"], m["false_rows"], m["largest"]) == (1, 2, 3, 3)
    bits = np.array([[0, 0, 0, 0], [0, 0, 0, 1], [1, 1, 1, 1]], dtype=bool)
    groups = ncg.hash_groups(bits, 1)
    assert groups[0] == groups[1] != groups[2]
    joined = ncg.union_groups(np.array([0, 0, 2, 3]), np.array([0, 1, 2, 2]))
    assert joined[0] == joined[1] and joined[2] == joined[3] and joined[0] != joined[2]
    images = _images(n=40)
    shifted = np.roll(images[:1], 1, axis=1)
    aligned = duplicates.near_duplicate_groups(np.concatenate([images, shifted]), 0.1, shift=2)
    assert aligned[0] == aligned[-1]
    assert ncg.image_hashes(images, "dhash").shape == (40, 64)
    out = tmp_path / "ncg.json"
    assert ncg.main(["--quick", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert {"benchmark", "data", "commands", "commit", "date"} <= set(result)
    assert not {"rows", "summary"} & set(result)  # not read as recipe names by the results page
    assert set(result["kinds"]) == set(canaries.NEAR_COPY_KINDS)
    shift = result["kinds"]["shift"]["methods"]
    assert shift["aligned"]["recall"] == 1.0 and shift["raw"]["recall"] < 0.5
    assert result["kinds"]["relative"]["methods"]["raw"]["recall"] == 1.0
