"""Canaries in and out with probability ½, their kinds, and the audit's canary section (issue 21)."""

import keras
import numpy as np
import pytest

from keras_adamixup import audit
from keras_adamixup.audit import canaries
from keras_adamixup.audit import lira as lira_lib
from tests.conftest import compile_adam, small_mlp


def _data(n=400, features=16, classes=5, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((n, features)).astype("float32"),
            rng.integers(0, classes, n).astype("int64"))


def test_plant_is_reproducible_and_draws_each_unit_in_or_out():
    x, y = _data()
    a = canaries.plant(x, y, count=40, kinds=("mislabelled", "duplicate", "outlier"), seed=3)
    b = canaries.plant(x, y, count=40, kinds=("mislabelled", "duplicate", "outlier"), seed=3)
    c = canaries.plant(x, y, count=40, kinds=("mislabelled", "duplicate", "outlier"), seed=4)
    assert a[2] == b[2] and np.array_equal(a[0], b[0])
    assert not np.array_equal(a[2].included, c[2].included)
    x_rest, y_rest, planted = a
    counts = planted.counts()
    assert {k: v["units"] for k, v in counts.items()} == {
        "mislabelled": 40, "duplicate": 40, "outlier": 40}
    # duplicate units are pairs of rows; the others one row each
    assert len(planted.x) == 40 + 80 + 40
    # about half in (120 units: within 4 standard deviations of 60)
    assert abs(planted.included.sum() - 60) < 22
    drawn = planted.source[planted.source >= 0]
    assert len(x_rest) == len(x) - len(drawn) == 400 - 80
    # the drawn rows left the ordinary data; their labels are wrong
    kinds = np.asarray(planted.kinds)
    real = kinds != "outlier"
    assert np.all(planted.original[real] == y[planted.source[real]])
    first_rows = np.array([np.flatnonzero(planted.unit == u)[0] for u in range(len(planted))])
    assert np.all(planted.y[first_rows][real] != planted.original[real])
    assert np.array_equal(planted.x[first_rows][real], x[planted.source[real]])
    assert not np.isin(np.flatnonzero(np.ones(len(x))), drawn).all()
    with pytest.raises(ValueError, match="fewer ordinary members"):
        canaries.plant(x, y, count=150, kinds=("mislabelled", "duplicate"))
    with pytest.raises(TypeError, match="`count`"):
        canaries.plant(x, y, count=2.5)
    with pytest.raises(ValueError, match="`kinds`"):
        canaries.plant(x, y, count=2, kinds="blank")


def test_duplicates_are_planted_as_near_copies_with_one_label():
    x, y = _data()
    _, _, planted = canaries.plant(x, y, count=20, kinds="duplicate", seed=1)
    for u in range(len(planted)):
        rows = np.flatnonzero(planted.unit == u)
        assert len(rows) == 2
        first, copy = planted.x[rows]
        assert planted.y[rows[0]] == planted.y[rows[1]]
        gap = np.abs(first - copy)
        assert 0 < gap.max() < 0.5 * (x.max() - x.min())  # near, not equal
        assert copy.min() >= x.min() and copy.max() <= x.max()  # clipped to the data range


def test_duplicates_without_noise_are_exact_copies():
    x, y = _data()
    _, _, planted = canaries.plant(x, y, count=5, kinds="duplicate", seed=1, near_copy_noise=0)
    for u in range(len(planted)):
        first, copy = planted.x[planted.unit == u]
        np.testing.assert_array_equal(first, copy)
    with pytest.raises(ValueError, match="near_copy_noise"):
        canaries.plant(x, y, count=5, kinds="duplicate", near_copy_noise=-0.1)


def test_add_to_inserts_exactly_the_units_drawn_in():
    x, y = _data()
    x_rest, y_rest, planted = canaries.plant(x, y, count=30, kinds=("duplicate", "outlier"),
                                             seed=2)
    x_fit, y_fit = planted.add_to(x_rest, y_rest)
    assert len(x_fit) == len(x_rest) + int(planted.rows_included.sum())
    digests = {row.tobytes() for row in x_fit}
    for row, inside in zip(planted.x, planted.rows_included):
        assert (row.tobytes() in digests) == bool(inside)
    # not appended: some inserted row lies in the first half
    inserted = np.array([row.tobytes() in {r.tobytes() for r in planted.x} for row in x_fit])
    assert inserted[: len(x_fit) // 2].any()
    with pytest.raises(ValueError, match="shape"):
        planted.add_to(x_rest[:, :4], y_rest)


def test_shadow_groups_keep_a_pair_together_and_leave_old_masks_alone():
    masks = lira_lib.shadow_masks(8, 50, seed=0)
    assert np.array_equal(masks, lira_lib.shadow_masks(8, 50, seed=0, groups=None))
    groups = np.concatenate([np.arange(40), 40 + np.repeat(np.arange(5), 2)])
    grouped = lira_lib.shadow_masks(8, 50, seed=0, groups=groups)
    assert np.all(grouped.sum(axis=0) == 4)  # every row in half of the shadows
    for g in range(5):
        assert np.array_equal(grouped[:, 40 + 2 * g], grouped[:, 41 + 2 * g])
    # independent of the audited model's draw: other seeds give other masks
    assert not np.array_equal(grouped, lira_lib.shadow_masks(8, 50, seed=1, groups=groups))


def test_unit_rows_compare_in_against_out():
    x, y = _data(n=600)
    _, _, planted = canaries.plant(x, y, count=60, kinds=("mislabelled", "duplicate"), seed=0)
    rows_in = planted.rows_included.astype("float64")
    perfect = rows_in + 0.01 * np.arange(len(rows_in)) / len(rows_in)
    blind = np.random.default_rng(0).random(len(rows_in))
    result = canaries.unit_rows(planted, {"perfect": perfect, "blind": blind})
    for kind in ("mislabelled", "duplicate"):
        entry = result[kind]
        assert entry["in"] + entry["out"] == 60 and entry["measurable"]
        assert entry["attacks"]["perfect"]["auc"] == 1.0
        assert entry["best_attack"] == "perfect"
        assert entry["attacks"]["perfect"]["epsilon_one_run"] > 1.0
        assert entry["attacks"]["blind"]["epsilon_one_run"] < entry["epsilon"]["one_run"]
        assert entry["attacks"]["perfect"]["n_members"] == entry["in"]


@pytest.fixture(scope="module")
def canary_audit(digits):
    """An MLP trained on 300 digits and 20 canaries of each kind drawn in or out, audited
    with 4 shadows."""
    (x, y), (xt, yt) = digits
    x_rest, y_rest, planted = canaries.plant(x[:340], y[:340], count=20, kinds=canaries.KINDS,
                                             seed=0)

    def factory():
        return compile_adam(small_mlp(hidden=64))

    keras.utils.set_random_seed(0)
    model = factory()
    model.fit(*planted.add_to(x_rest, y_rest), epochs=40, batch_size=32, verbose=0)
    lira = {"model_factory": factory, "num_shadows": 4, "progress": False,
            "fit_kwargs": {"epochs": 40, "batch_size": 32}}
    with pytest.warns(lira_lib.FewShadowsWarning, match="fewer than 16"):
        report = audit.run_audit(model, (x_rest, y_rest), (xt[:300], yt[:300]),
                                 canaries=planted, lira=lira, attacks=("threshold",),
                                 slices=("entire",), label_only_noise=0.1,
                                 label_only_queries=2)
    return report, planted, (x_rest, y_rest)


def test_audit_scores_canaries_in_against_out(canary_audit, tmp_path):
    report, planted, (x_rest, _) = canary_audit
    meta = report.metadata["canaries"]
    assert meta["units"] == 60 and meta["seed"] == 0
    for kind in canaries.KINDS:
        entry = meta["kinds_measured"][kind]
        assert {"threshold", "hinge", "label_only_gap", "label_only_noise", "lira_online",
                "lira_online_hinge", "rmia_online"} <= set(entry["attacks"])
        assert entry["attacks"]["lira_online"]["n_members"] == entry["in"]
        assert entry["attacks"]["lira_online"]["n_nonmembers"] == entry["out"]
        # an undefended MLP memorizes its mislabelled canaries, and an input unlike
        # any other with a random label: in vs out is easy
        assert entry["attacks"]["lira_online"]["auc"] > 0.9, kind
    population = {r["attack"]: r for r in report.attacks}
    # the population rows are the ordinary members and non-members only (outliers
    # are made, not drawn from the members)
    assert population["lira_online"]["n_members"] == len(x_rest) == 340 - 40
    assert population["lira_online"]["n_nonmembers"] == 300
    assert {"hinge", "lira_online_hinge"} <= set(population)
    head = report.headline()
    assert head["min_shadows"] == 4 and head["canary_epsilon"] >= 0
    report.save(tmp_path)
    text = (tmp_path / "report.md").read_text()
    assert "## Canaries (60 units, seed 0)" in text and "### duplicate: 20 units" in text
    assert "**warning**: fewer than 16 shadows" in text
    table = audit.compare([report])
    assert "ε (canaries)" in table and "| 4 |" in table


def test_canaries_need_the_members_without_them(canary_audit, digits):
    import tensorflow as tf

    _, planted, (x_rest, y_rest) = canary_audit
    (_, _), (xt, yt) = digits
    x_fit, y_fit = planted.add_to(x_rest, y_rest)
    with pytest.raises(ValueError, match="without the canaries"):
        audit.run_audit(small_mlp(), (x_fit, y_fit), (xt[:64], yt[:64]), canaries=planted,
                        attacks=("threshold",), slices=("entire",), label_only_noise=None)
    with pytest.raises(TypeError, match="CanarySet"):
        audit.run_audit(small_mlp(), (x_rest, y_rest), (xt[:64], yt[:64]),
                        canaries=[1, 2], attacks=("threshold",), slices=("entire",))
    ds = tf.data.Dataset.from_tensor_slices((x_rest[:64], y_rest[:64])).batch(32)
    with pytest.raises(ValueError, match="as arrays"):
        audit.run_audit(small_mlp(), ds, (xt[:64], yt[:64]), canaries=planted)
