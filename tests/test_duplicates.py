"""Near-duplicate groups, and SplitTeachers leaving a group out of the same teachers."""

import keras
import numpy as np
import pytest

import keras_adamixup
from keras_adamixup import SplitTeachers, duplicates
from tests.conftest import SPARSE_CE, compile_adam, small_mlp


def _brute_force(x, radius):
    """Connected components of pairs within radius × the RMS pair distance, all pairs."""
    c = x.astype("float64") - x.mean(axis=0)
    limit = radius ** 2 * 2.0 * np.mean(np.sum(c * c, axis=1))
    d2 = np.sum((c[:, None, :] - c[None, :, :]) ** 2, axis=-1)
    i, j = np.nonzero(np.triu(d2 <= limit, 1))
    return duplicates._components(len(x), np.stack([i, j], axis=1))


def test_groups_hold_exact_and_noisy_copies_and_nothing_else(digits):
    (x, _), _ = digits
    x = x[:400]
    rng = np.random.default_rng(0)
    copies = x[:30] + rng.normal(0, 0.05, (30, 64)).astype("float32") * x.std(axis=0)
    data = np.concatenate([x, copies, x[30:35]])  # 30 noisy copies, 5 exact ones
    groups = duplicates.near_duplicate_groups(data)
    assert (groups[400:430] == np.arange(30)).all()  # each copy with its original
    assert (groups[430:] == np.arange(30, 35)).all()
    assert (groups[:400] == np.arange(400)).all()    # distinct digits stay apart
    assert duplicates.summary(groups) == {"rows": 435, "groups": 400, "grouped_rows": 70,
                                          "largest": 2}
    # radius 0: exact copies only
    exact = duplicates.near_duplicate_groups(data, radius=0.0)
    assert (exact[430:] == np.arange(30, 35)).all() and (exact[400:430] == np.arange(400, 430)).all()


@pytest.mark.parametrize("radius", [0.05, 0.2, 0.35])
def test_the_projection_filter_misses_no_pair(radius):
    # clustered data in 40 dimensions: many pairs near the threshold
    rng = np.random.default_rng(1)
    centres = rng.normal(0, 1, (30, 40))
    x = (centres[rng.integers(0, 30, 700)] + rng.normal(0, 0.3, (700, 40))).astype("float32")
    found = duplicates.near_duplicate_groups(x, radius=radius)
    assert (found == _brute_force(x, radius)).all()
    assert len(np.unique(found)) < 700 or radius == 0.05


def test_nearest_rows_is_the_brute_force_nearest():
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(300, 3, 4)).astype("float32")
    queries = rng.normal(size=(600, 3, 4)).astype("float32")  # several blocks
    brute = ((queries.reshape(600, 1, 12) - reference.reshape(1, 300, 12)) ** 2).sum(2)
    np.testing.assert_array_equal(duplicates.nearest_rows(queries, reference),
                                  brute.argmin(axis=1))
    both = duplicates.nearest_rows({"a": queries[:5], "b": queries[:5, 0]},
                                   {"a": reference, "b": reference[:, 0]})
    assert both.shape == (5,) and both.dtype == np.int64
    with pytest.raises(ValueError, match="features"):
        duplicates.nearest_rows(queries[:, 0], reference)


def test_given_groups_join_the_near_duplicates():
    x = np.random.default_rng(2).normal(size=(10, 3)).astype("float32")
    x[7] = x[2]  # an exact copy
    ids = np.array(["a", "b", "c", "a", "d", "e", "f", "g", "h", "d"])
    groups = duplicates.near_duplicate_groups(x, groups=ids)
    assert groups.tolist() == [0, 1, 2, 0, 4, 5, 6, 2, 8, 4]
    with pytest.raises(ValueError, match="3 ids for 10 rows"):
        duplicates.near_duplicate_groups(x, groups=ids[:3])
    with pytest.raises(ValueError, match="radius"):
        duplicates.near_duplicate_groups(x, radius=-1.0)


def test_a_group_is_left_out_of_the_same_teachers():
    teachers = SplitTeachers(teachers=8, exclude=2, seed=5)
    groups = np.arange(300)
    groups[[10, 200, 299]] = 10
    groups[[50, 51]] = 50
    plain, grouped = teachers.left_out(300), teachers.left_out(300, groups)
    assert (grouped.sum(axis=0) == 2).all()
    for row in (200, 299):
        assert (grouped[:, row] == plain[:, 10]).all()
    assert (grouped[:, 51] == plain[:, 50]).all()
    alone = np.setdiff1d(np.arange(300), [200, 299, 51])
    assert (grouped[:, alone] == plain[:, alone]).all()  # singletons: the old draw
    with pytest.raises(ValueError, match="smallest row index"):
        teachers.left_out(300, np.full(300, 299))


def _fit_soft_labels(teachers, x, y, groups=None, epochs=30):
    base = small_mlp(hidden=64, seed=0)
    model = keras_adamixup.AdaMixupModel(base, schedule=0.0, targets=teachers, seed=0)
    compile_adam(model, 3e-3)
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0, groups=groups)
    return model.teacher_targets


def test_duplicated_mislabelled_examples_no_longer_carry_their_label_back(digits):
    """The attack on split teachers (Aerni et al. 2024): a mislabelled example planted
    with a near-copy. Left out of different teachers, each copy's out-of-fold label
    comes from teachers that learnt the other; left out together, it does not."""
    (x, y), _ = digits
    x, y = x[:500], y[:500].copy()
    rng = np.random.default_rng(3)
    wrong = (y[:20] + rng.integers(1, 10, 20)) % 10
    y[:20] = wrong
    copies = np.clip(x[:20] + rng.normal(0, 0.05, (20, 64)).astype("float32")
                     * x.std(axis=0), 0, 1)
    x_fit, y_fit = np.concatenate([x, copies]), np.concatenate([y, wrong])
    apart = _fit_soft_labels(SplitTeachers(8, 2, seed=0, near_duplicates=None), x_fit,
                             y_fit).soft_labels
    targets = _fit_soft_labels(SplitTeachers(8, 2, seed=0), x_fit, y_fit)
    together = targets.soft_labels
    assert targets.groups_found == {"rows": 520, "groups": 500, "grouped_rows": 40,
                                    "largest": 2}
    rows = np.r_[0:20, 500:520]
    carried_apart = apart[rows, y_fit[rows]].mean()
    carried_together = together[rows, y_fit[rows]].mean()
    # measured: 0.19 apart, 0.034 together
    assert carried_apart > 0.12 and carried_together < carried_apart / 3, (
        carried_apart, carried_together)


def test_fit_groups_are_checked(digits):
    (x, y), _ = digits
    plain = keras_adamixup.AdaMixupModel(small_mlp(), schedule=0.0)
    compile_adam(plain)
    with pytest.raises(ValueError, match="no `targets=SplitTeachers"):
        plain.fit(x[:64], y[:64], groups=np.arange(64), verbose=0)
    model = keras_adamixup.AdaMixupModel(small_mlp(), schedule=0.0,
                                         targets=SplitTeachers(4, 1, seed=0))
    compile_adam(model)
    with pytest.raises(ValueError, match="10 ids for 64 training rows"):
        model.fit(x[:64], y[:64], groups=np.arange(10), verbose=0)
    # ids given to fit (a patient, a person) are kept together; validation_split's
    # rows (the last ones) are not the teachers'
    teachers = SplitTeachers(4, 1, seed=0, near_duplicates=None)
    ids = np.arange(80) // 2
    targets = _fit_soft_labels(teachers, x[:80], y[:80], groups=ids, epochs=1)
    assert targets.groups_found == {"rows": 80, "groups": 40, "grouped_rows": 80,
                                    "largest": 2}
    model = keras_adamixup.AdaMixupModel(small_mlp(), schedule=0.0, targets=teachers)
    compile_adam(model)
    model.fit(x[:80], y[:80], groups=ids, epochs=1, validation_split=0.25, verbose=0)
    found = model.teacher_targets.groups_found
    assert found["rows"] == 60 and found["groups"] == 30


def test_near_duplicates_round_trip_in_the_config():
    teachers = SplitTeachers(4, 1, seed=0, near_duplicates=0.2)
    again = SplitTeachers.from_config(teachers.get_config())
    assert again.near_duplicates == 0.2
    assert SplitTeachers.from_config({**teachers.get_config(),
                                      "near_duplicates": None}).near_duplicates is None
    with pytest.raises(ValueError, match="near_duplicates"):
        SplitTeachers(4, 1, near_duplicates=-0.1)


def test_a_group_weighs_as_one_row():
    teachers = SplitTeachers(4, 1, seed=0)
    labels = np.array([0, 1, 0, 3, 0, 1, 6])
    np.testing.assert_allclose(teachers.weights_of(labels),
                               [1 / 3, 1 / 2, 1 / 3, 1, 1 / 3, 1 / 2, 1])
    assert teachers.weights_of(np.arange(5)) is None  # every row alone
    assert teachers.weights_of(None) is None
    assert SplitTeachers(4, 1, seed=0, weigh_groups=False).weights_of(labels) is None
    with pytest.raises(TypeError, match="`weigh_groups` must be a bool"):
        SplitTeachers(4, 1, weigh_groups="yes")
    assert SplitTeachers.from_config(
        SplitTeachers(4, 1, seed=0, weigh_groups=False).get_config()).weigh_groups is False


def _trained(teachers, x, y, groups, sample_weight=None):
    keras.utils.set_random_seed(0)
    model = keras_adamixup.AdaMixupModel(small_mlp(hidden=16, seed=0), schedule=0.0,
                                         targets=teachers, seed=0)
    model.compile(keras.optimizers.SGD(0.1), SPARSE_CE)
    model.fit(x, y, epochs=2, batch_size=16, verbose=0, groups=groups,
              sample_weight=sample_weight)
    return model


def test_group_weights_reach_the_teachers_and_the_model_times_sample_weights(digits,
                                                                              tmp_path):
    """weigh_groups=True trains exactly as weigh_groups=False given the weights 1/k
    by hand (teachers and model), and differs from leaving them out."""
    (x, y), _ = digits
    x, y = x[:96], y[:96]
    ids = np.arange(96) // 3 * (np.arange(96) < 30) + np.arange(96) * (np.arange(96) >= 30)
    user = np.linspace(0.5, 1.5, 96).astype("float32")
    sizes = np.bincount(ids)[ids]
    by_hand = _trained(SplitTeachers(4, 1, seed=0, near_duplicates=None, weigh_groups=False),
                       x, y, ids, user / sizes)
    weighed_teachers = SplitTeachers(4, 1, seed=0, near_duplicates=None)
    weighed = _trained(weighed_teachers, x, y, ids, user)
    unweighed = _trained(SplitTeachers(4, 1, seed=0, near_duplicates=None,
                                       weigh_groups=False), x, y, ids, user)
    np.testing.assert_allclose(weighed.teacher_targets.row_weights, 1 / sizes)
    np.testing.assert_allclose(weighed.teacher_soft_labels, by_hand.teacher_soft_labels,
                               atol=1e-6)
    for a, b in zip(weighed.get_weights(), by_hand.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert not all(np.allclose(a, b, atol=1e-4)
                   for a, b in zip(weighed.get_weights(), unweighed.get_weights()))
    # the row weights are kept with the soft labels (a later fit on the same
    # data reuses both), also by saving and loading
    weighed.save(tmp_path / "weighed.keras")
    loaded = keras.models.load_model(tmp_path / "weighed.keras")
    np.testing.assert_allclose(loaded.teacher_targets.row_weights, 1 / sizes)
    assert loaded.teacher_targets.digest == weighed.teacher_targets.digest
    np.testing.assert_array_equal(loaded.teacher_targets.left_out,
                                  weighed.teacher_targets.left_out)


def _brute_force_shifted(images, radius, shift):
    """Components of pairs within radius at their best translation (edges repeated)."""
    n, h, w = images.shape[:3]
    flat = images.reshape(n, -1).astype("float64")
    c = flat - flat.mean(axis=0)
    limit = radius ** 2 * 2.0 * np.mean(np.sum(c * c, axis=1))
    padded = np.pad(images, ((0, 0), (shift, shift), (shift, shift), (0, 0)), mode="edge")
    close = np.zeros((n, n), dtype=bool)
    for dy in range(-shift, shift + 1):
        for dx in range(-shift, shift + 1):
            moved = padded[:, shift - dy:shift - dy + h, shift - dx:shift - dx + w]
            d2 = np.sum((flat[:, None, :] - moved.reshape(1, n, -1)) ** 2, axis=-1)
            close |= d2 <= limit
    i, j = np.nonzero(close & ~np.eye(n, dtype=bool))
    return duplicates._components(n, np.stack([i, j], axis=1))


def _shifted(images, rng, still):
    """Each image translated by a random offset of up to 2 pixels each way (edges
    repeated); `still`: the offset of those drawn as (dy, dx) summing to 0."""
    size_y, size_x = images.shape[1:3]
    padded = np.pad(images, ((0, 0), (2, 2), (2, 2), (0, 0)), mode="edge")
    moves = rng.integers(-2, 3, (len(images), 2))
    moves[moves.sum(axis=1) == 0] = still
    return np.stack([padded[k, 2 - dy:2 - dy + size_y, 2 - dx:2 - dx + size_x]
                     for k, (dy, dx) in enumerate(moves)])


def test_shifted_copies_are_grouped_exactly_as_by_brute_force(digits):
    (x, _), _ = digits
    images = x[:150].reshape(-1, 8, 8, 1)
    # copies translated by one or two pixels (edges repeated), with a little noise
    rng = np.random.default_rng(0)
    copies = _shifted(images[:20], rng, still=(1, 0))
    copies = copies + rng.normal(0, 0.01, copies.shape).astype("float32")
    data = np.concatenate([images, copies]).astype("float32")
    raw = duplicates.near_duplicate_groups(data, radius=0.15)
    assert (raw[150:] == np.arange(150, 170)).mean() > 0.5  # most shifts missed raw
    shifted = duplicates.near_duplicate_groups(data, radius=0.15, shift=2)
    assert (shifted == _brute_force_shifted(data, 0.15, 2)).all()
    assert (shifted[150:] == np.arange(20)).all()  # every copy with its original
    # (n, H, W) works as (n, H, W, 1); flattened images are refused with the remedy
    assert (duplicates.near_duplicate_groups(data[..., 0], 0.15, shift=2) == shifted).all()
    with pytest.raises(ValueError, match="reshape"):
        duplicates.near_duplicate_groups(data.reshape(len(data), -1), shift=1)
    with pytest.raises(ValueError, match="shift"):
        duplicates.near_duplicate_groups(data, shift=-1)


def test_teachers_group_translated_images_by_default(digits):
    (x, y), _ = digits
    images = x[:120].reshape(-1, 8, 8, 1)
    moved = np.roll(images[:10], 1, axis=2)  # the first ten, one pixel to the right
    moved[:, :, 0] = images[:10, :, 0]        # the column pushed in repeats the edge
    data = np.concatenate([images, moved])
    # 8 x 8 digits are too small for crops of 3 pixels
    assert duplicates.settings_for(data) == {"radius": duplicates.IMAGE_RADIUS,
                                             "shift": duplicates.SHIFT, "crop": 0}
    assert duplicates.settings_for(data.reshape(len(data), -1)) == {
        "radius": duplicates.RADIUS, "shift": 0, "crop": 0}
    groups = SplitTeachers(4, 1, seed=0).groups(data)
    assert (groups[120:] == np.arange(10)).all()
    # a radius given keeps the translations; None finds none
    assert (SplitTeachers(4, 1, near_duplicates=0.15).groups(data)[120:] == np.arange(10)).all()
    assert SplitTeachers(4, 1, near_duplicates=None).groups(data) is None
    with pytest.raises(TypeError, match="near_duplicates"):
        SplitTeachers(4, 1, near_duplicates="big")


def test_teachers_search_flattened_images_given_their_shape(digits):
    (x, _), _ = digits
    images = x[:120].reshape(-1, 8, 8, 1)
    moved = np.roll(images[:10], 1, axis=2)
    moved[:, :, 0] = images[:10, :, 0]
    flat = np.concatenate([images, moved]).reshape(130, 64)
    assert (SplitTeachers(4, 1).groups(flat)[120:] != np.arange(10)).any()  # raw: missed
    teachers = SplitTeachers(4, 1, image_shape=(8, 8))
    assert (teachers.groups(flat)[120:] == np.arange(10)).all()
    again = SplitTeachers.from_config(teachers.get_config())
    assert again.image_shape == (8, 8) and (again.groups(flat)[120:] == np.arange(10)).all()
    with pytest.raises(ValueError, match="64 values"):
        SplitTeachers(4, 1, image_shape=(8, 8)).groups(flat[:, :32])
    with pytest.raises(ValueError, match="image_shape"):
        SplitTeachers(4, 1, image_shape=(8, -8))


def _smooth_images(n, size=32, seed=0):
    """Random smooth colour images: 8 x 8 noise upsampled bilinearly."""
    import tensorflow as tf

    coarse = np.random.default_rng(seed).uniform(size=(n, 8, 8, 3)).astype("float32")
    return tf.image.resize(coarse, (size, size)).numpy()


def _zoomed(images):
    """`images` cropped by 2 to 12 % in fractional boxes at random places, resized back
    by TensorFlow's crop_and_resize (not the package's crops)."""
    import tensorflow as tf

    rng = np.random.default_rng(1)
    scale = rng.uniform(1 / 1.12, 1 / 1.02, size=len(images))
    top, left = rng.uniform(0, 1 - scale), rng.uniform(0, 1 - scale)
    boxes = np.stack([top, left, top + scale, left + scale], axis=1).astype("float32")
    return tf.image.crop_and_resize(images, boxes, np.arange(len(images)),
                                    images.shape[1:3]).numpy()


def test_crops_resized_another_way_are_grouped_with_crop():
    """Copies cropped by 2 to 12 % in fractional boxes (TensorFlow's crop_and_resize,
    not the package's integer crops) are found with crop=3 and not without."""
    images = _smooth_images(200)
    data = np.concatenate([images, _zoomed(images[:40])])
    settings = duplicates.settings_for(data)
    assert settings["crop"] == duplicates.CROP
    found = duplicates.near_duplicate_groups(data, **settings)
    assert np.mean(found[200:] == np.arange(40)) >= 0.9
    assert len(np.unique(found[:200])) == 200  # no two originals grouped
    without = duplicates.near_duplicate_groups(data, settings["radius"], shift=2)
    assert np.mean(without[200:] == np.arange(40)) < 0.5
    with pytest.raises(ValueError, match="crop=16"):
        duplicates.near_duplicate_groups(data, crop=16)


def test_candidates_find_what_every_pair_finds_and_auto_switches(monkeypatch):
    """Translated and cropped comparisons among each image's nearest by the descriptors
    group as the exhaustive search does; "auto" uses them above CANDIDATE_ROWS images;
    a list too short misses copies (the knob restricts the search)."""
    images = _smooth_images(300, size=16, seed=2)
    shifted = _shifted(images[:30], np.random.default_rng(3), still=(2, 1))
    cropped = keras_adamixup._image_ops.crop_resized(images[30:60], 3, 1, 2, axes=(1, 2))
    data = np.concatenate([images, shifted, cropped]).astype("float32")
    settings = duplicates.settings_for(data)
    exact = duplicates.near_duplicate_groups(data, candidates=None, **settings)
    assert (exact[300:] == np.arange(60)).all()
    assert (duplicates.near_duplicate_groups(data, candidates=8, **settings) == exact).all()
    seen = []
    listed = duplicates._nearest_pairs
    monkeypatch.setattr(duplicates, "_nearest_pairs",
                        lambda *a: seen.append(a[1]) or listed(*a))
    assert (duplicates.near_duplicate_groups(data, **settings) == exact).all() and not seen
    monkeypatch.setattr(duplicates, "CANDIDATE_ROWS", 100)
    assert (duplicates.near_duplicate_groups(data, **settings) == exact).all()
    assert seen == [duplicates.CANDIDATES]
    # no pair listed: the translated and cropped copies are missed
    monkeypatch.setattr(duplicates, "_nearest_pairs",
                        lambda images, k: (np.zeros(0, "int64"), np.zeros(0, "int64")))
    none = duplicates.near_duplicate_groups(data, candidates=4, **settings)
    assert (none[300:] != np.arange(60)).mean() > 0.5
    with pytest.raises(TypeError, match="candidates"):
        duplicates.near_duplicate_groups(data, candidates="all", **settings)


def test_square_greyscale_arrays_are_images_and_odd_inputs_are_answered():
    images = _smooth_images(60, size=16, seed=4)[..., :1]
    moved = np.roll(images[:6], 1, axis=2)
    moved[:, :, 0] = images[:6, :, 0]
    grey = np.concatenate([images, moved])[..., 0]  # (n, 16, 16), as MNIST's arrays
    assert duplicates.settings_for(grey) == {"radius": duplicates.IMAGE_RADIUS,
                                             "shift": duplicates.SHIFT, "crop": duplicates.CROP}
    assert duplicates.settings_for(np.zeros((5, 50, 3)))["shift"] == 0  # a sequence
    assert (SplitTeachers(2, 1).groups(grey)[60:] == np.arange(6)).all()
    assert duplicates.near_duplicate_groups(np.zeros((0, 16, 16)), shift=2).shape == (0,)
    assert duplicates.near_duplicate_groups(np.zeros((0, 5))).shape == (0,)
    with pytest.raises(ValueError, match="shift=10 moves images of 3 x 3"):
        duplicates.near_duplicate_groups(np.random.rand(30, 3, 3), shift=10)
    with pytest.raises(ValueError, match=r"near_duplicate_groups\(crop=2\) compares images"):
        duplicates.near_duplicate_groups(grey.reshape(66, -1), crop=2)


def _strokes(n, size=28, seed=0):
    """Images of three thin (one-pixel) straight strokes each, as digits are drawn."""
    rng = np.random.default_rng(seed)
    out = np.zeros((n, size, size, 1), "float32")
    t = np.linspace(0, 1, 4 * size)
    for i in range(n):
        for _ in range(3):
            (y0, x0), (y1, x1) = rng.uniform(4, size - 4, (2, 2))
            out[i, np.round(y0 + t * (y1 - y0)).astype(int),
                np.round(x0 + t * (x1 - x0)).astype(int), 0] = 1.0
    return out


def test_thin_strokes_cropped_between_pixels_are_grouped_in_half_pixel_steps(monkeypatch):
    """A fractional crop moves a one-pixel stroke by part of a pixel: crops compared
    in whole pixels miss most such copies (MNIST: 44 % found), half pixels find them."""
    images = _strokes(200)
    data = np.concatenate([images, _zoomed(images[:40])])
    found = duplicates.near_duplicate_groups(data, **duplicates.settings_for(data))
    assert np.mean(found[200:] == np.arange(40)) >= 0.9
    assert len(np.unique(found[:200])) == 200  # no two originals grouped
    monkeypatch.setattr(duplicates, "CROP_STEP", 1.0)
    whole = duplicates.near_duplicate_groups(data, **duplicates.settings_for(data))
    assert np.mean(whole[200:] == np.arange(40)) < 0.5


def test_the_search_compares_crops_and_shifts_as_the_image_operations_make_them():
    from keras_adamixup import _image_ops

    image = np.random.default_rng(5).uniform(size=(12, 10, 2))
    for cut, top, left in ((1, 0, 1), (3, 2, 0)):
        by_matrices = np.einsum("ih,hwc,jw->ijc", _image_ops.crop_matrix(12, cut, top), image,
                                _image_ops.crop_matrix(10, cut, left))
        np.testing.assert_allclose(by_matrices, _image_ops.crop_resized(image, cut, top, left))
    # half a pixel cropped off the start of 4: the 3.5 pixels kept, resized to 4 (the
    # sample points inside the kept centres, 0.5 to 3), read between pixels
    half = _image_ops.crop_matrix(4, 0.5, 0.5) @ np.arange(4.0)
    np.testing.assert_allclose(half, [0.5, 1.3125, 2.1875, 3.0])
    padded = np.pad(image, ((2, 2), (2, 2), (0, 0)), mode="edge")
    moved = np.einsum("ih,hwc,jw->ijc", _image_ops.shift_matrix(12, 1), image,
                      _image_ops.shift_matrix(10, -2))
    np.testing.assert_array_equal(moved, padded[1:13, 4:14])


def test_a_chain_of_chance_neighbours_is_split_and_copies_stay_together(monkeypatch):
    """Single linkage chains rows each near the next (as MNIST's ones at full size):
    a group larger than MAX_GROUP is re-split at a smaller radius; copies much
    closer than the chain's steps, and exact copies, stay grouped."""
    rng = np.random.default_rng(6)
    far = rng.normal(size=(200, 6)) * 10.0
    step = np.zeros(6)
    step[0] = 0.6  # ~0.07 of the RMS pair distance (about 8.5 here): each row near the next
    chain = far[0] + np.arange(40)[:, None] * step
    copies = chain[[3, 20]] + rng.normal(size=(2, 6)) * 0.01
    x = np.concatenate([far, chain, copies, far[5:6]])
    monkeypatch.setattr(duplicates, "MAX_GROUP", 100)
    assert duplicates.summary(duplicates.near_duplicate_groups(x))["largest"] == 43
    monkeypatch.setattr(duplicates, "MAX_GROUP", 8)
    groups = duplicates.near_duplicate_groups(x)
    assert duplicates.summary(groups)["largest"] <= 8
    assert groups[240] == groups[203] and groups[241] == groups[220]  # the close copies
    assert groups[242] == groups[5]  # an exact copy
    assert groups[210] != groups[230]  # the chain's far ends are no longer one record
    # a given group larger than MAX_GROUP (one patient's records) counts as one
    # record: it is kept whole, and the chain beside it is still split
    ids = np.arange(len(x))
    ids[:20] = -1
    given = duplicates.near_duplicate_groups(x, groups=ids)
    assert (given[:20] == 0).all() and given[240] == given[203]
    assert given[210] != given[230] and given[242] == given[5] == 0


def test_half_pixel_shifts_find_an_image_moved_by_half_a_pixel():
    from keras_adamixup import _image_ops

    smooth = _smooth_images(40, size=16, seed=5)
    # the first image moved right by half a pixel (each pixel the mean of two neighbours)
    half = (smooth[:1] + np.concatenate([smooth[:1, :, :1], smooth[:1, :, :-1]], axis=2)) / 2
    x = np.concatenate([smooth, half])
    whole = duplicates.near_duplicate_groups(x, radius=0.03, shift=1)
    halves = duplicates.near_duplicate_groups(x, radius=0.03, shift=1, shift_step=0.5)
    assert whole[-1] != whole[0] and halves[-1] == halves[0]
    assert len(np.unique(halves)) == 40
    np.testing.assert_allclose(_image_ops.shift_matrix(5, 0.5)[2], [0, 0.5, 0.5, 0, 0])
    with pytest.raises(ValueError, match="shift_step"):
        duplicates.near_duplicate_groups(x, shift=1, shift_step=0.25)
    with pytest.raises(ValueError, match="give shift=1"):
        duplicates.near_duplicate_groups(x, shift_step=0.5)  # no translations to step
