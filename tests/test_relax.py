"""LossTarget: the training loss held at the (monitored hold-out) target, RelaxLoss-style."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_adamixup
from keras_adamixup import LossTarget, PrivacyMonitor
from keras_adamixup.relax import flattened, flattened_binary
from tests.conftest import SPARSE_CE, cluster_mlp, clusters, compile_adam


def _model(relax, loss=None, activation=None, schedule=0.0, **kwargs):
    model = keras_adamixup.AdaMixupModel(cluster_mlp(activation=activation, seed=0),
                                         schedule=schedule, relax=relax, seed=3, **kwargs)
    return compile_adam(model, 1e-2, loss or SPARSE_CE, metrics=["accuracy"])


def test_flattened_keeps_the_probability_of_the_label_and_spreads_the_rest():
    y = tf.one_hot([0, 1, 2], 4)
    p = tf.constant([[0.7, 0.1, 0.1, 0.1],     # right: 0.7 kept, 0.1 each
                     [0.6, 0.3, 0.05, 0.05],   # wrong: keeps its one-hot target
                     [0.1, 0.1, 0.5, 0.3]])    # right: 0.5 kept, the rest even
    got = flattened(y, p).numpy()
    np.testing.assert_allclose(got[0], [0.7, 0.1, 0.1, 0.1], atol=1e-6)
    np.testing.assert_allclose(got[1], [0, 1, 0, 0], atol=1e-6)
    np.testing.assert_allclose(got[2], [1 / 6, 1 / 6, 0.5, 1 / 6], atol=1e-6)
    # a mixed target keeps the model's probability of the mixture, in its proportions,
    # and spreads the rest in proportion to 1 - y
    mixed = flattened(tf.constant([[0.75, 0.25, 0.0, 0.0]]),
                      tf.constant([[0.6, 0.2, 0.1, 0.1]])).numpy()[0]
    kept = 0.75 * 0.6 + 0.25 * 0.2
    spread = np.array([0.25, 0.75, 1.0, 1.0]) / 3.0
    np.testing.assert_allclose(mixed, kept * np.array([0.75, 0.25, 0, 0])
                               + (1 - kept) * spread, atol=1e-6)
    np.testing.assert_allclose(mixed.sum(), 1.0, atol=1e-6)


def test_target_follows_the_monitored_holdout_loss():
    x, y = clusters(320, 3, 0, spread=2.0)
    model = _model(LossTarget("holdout", factor=0.8))
    assert float(model.loss_target.numpy()) == 0.0  # ordinary steps before a measurement
    history = model.fit(x[:192], y[:192], validation_data=(x[192:], y[192:]), epochs=3,
                        batch_size=32, verbose=0)
    monitor = model.holdout_callbacks[0]
    assert isinstance(monitor, PrivacyMonitor)
    last = monitor.records[-1]
    np.testing.assert_allclose(float(model.loss_target.numpy()), 0.8 * last["holdout_loss"],
                               rtol=1e-5)
    assert last["loss_target"] == pytest.approx(0.8 * last["holdout_loss"], rel=1e-5)
    assert history.history["monitor_loss_target"][-1] == pytest.approx(last["loss_target"])
    shares = history.history["relax_share"]
    assert len(shares) == 3 and all(0.0 <= s <= 1.0 for s in shares)
    assert shares[0] == 0.0  # the first epoch runs before any measurement


@pytest.mark.parametrize("loss", [None, "sparse_categorical_crossentropy"])
def test_a_target_above_the_loss_stops_the_fitting(loss):
    """Every step under the target ascends or flattens: the members are not fitted
    as a plain fit fits them (this fails if the relaxed branch is never taken or
    still lowers the loss)."""
    x, y = clusters(192, 3, 0, spread=2.0)
    activation = "softmax" if loss else None
    fitted = []
    for relax in (None, LossTarget(0.9)):
        model = _model(relax, loss=loss, activation=activation)
        history = model.fit(x, y, epochs=6, batch_size=32, verbose=0)
        fitted.append(history.history["loss"][-1])
        if relax is not None:
            assert history.history["relax_share"][-1] > 0.5
    plain, relaxed = fitted
    assert plain < 0.5 < relaxed


def test_config_round_trip_and_saving_keep_the_target(tmp_path):
    x, y = clusters(320, 3, 0, spread=2.0)
    model = _model(LossTarget("holdout", factor=0.7))
    model.fit(x[:192], y[:192], validation_data=(x[192:], y[192:]), epochs=2,
              batch_size=32, verbose=0)
    again = keras_adamixup.AdaMixupModel.from_config(model.get_config())
    assert repr(again.relax) == repr(model.relax) == "LossTarget(target='holdout', factor=0.7)"
    path = tmp_path / "relaxed.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert float(loaded.loss_target.numpy()) == pytest.approx(float(model.loss_target.numpy()))
    assert float(loaded.loss_target.numpy()) > 0


def test_weights_move_between_models_with_and_without_relax(tmp_path, monkeypatch):
    """E60: another training state warns; the network's weights load, and of the state
    only what both have by name (never crosswise by position, as Keras would)."""
    x, y = clusters(128, 3, 0, spread=2.0)
    relaxed, plain = _model(LossTarget(1.0)), _model(None)
    relaxed.fit(x, y, epochs=2, batch_size=32, verbose=0)
    plain.fit(x, y, epochs=1, batch_size=32, verbose=0)
    for source, target in ((relaxed, plain), (plain, relaxed)):
        path = str(tmp_path / f"{source.name}.weights.h5")
        source.save_weights(path)
        with pytest.warns(UserWarning, match="E60: .*not in both: loss_target, relax_seen"):
            target.load_weights(path)
        np.testing.assert_allclose(target.predict(x, verbose=0), source.predict(x, verbose=0))
        assert int(target.mixup_step.numpy()) == int(source.mixup_step.numpy())
    assert float(relaxed.loss_target.numpy()) == 1.0
    # a schedule's state and relax's are as many variables: by position they would load
    # crosswise (the loss target from the schedule's state)
    plateau = _model(None, schedule=keras_adamixup.schedules.PlateauDecay(0.3))
    more, labels = clusters(320, 3, 0, spread=2.0)
    plateau.fit(more[:192], labels[:192], validation_data=(more[192:], labels[192:]),
                epochs=1, batch_size=64, verbose=0)
    assert len(plateau.non_trainable_variables) == len(_model(LossTarget(0.5))
                                                       .non_trainable_variables)
    path = str(tmp_path / "plateau.weights.h5")
    plateau.save_weights(path)
    held = _model(LossTarget(0.5))
    with pytest.warns(UserWarning, match="E60: .*schedule.PlateauDecay"):
        held.load_weights(path)
    assert float(held.loss_target.numpy()) == 0.5
    # files saved before the state had names load by position, as Keras does
    monkeypatch.setattr(keras_adamixup.AdaMixupModel, "_state_variables",
                        lambda self: {})
    relaxed.save_weights(path)
    monkeypatch.undo()
    again = _model(LossTarget(1.0))
    again.load_weights(path)
    assert int(again.relax_steps.numpy()) == int(relaxed.relax_steps.numpy())
    with pytest.warns(UserWarning, match="E60: .*10 variables against this model's 6"):
        plain.load_weights(path)


def test_soft_teacher_targets_are_relaxed_above_their_entropy():
    x, y = clusters(192, 3, 0, spread=2.0)
    teachers = keras_adamixup.SplitTeachers(2, 1, seed=0, near_duplicates=None)
    model = _model(LossTarget(0.05), targets=teachers)
    history = model.fit(x, y, epochs=3, batch_size=32, verbose=0)
    # the soft labels' entropy is well above 0.05 nats; taken above it, the loss is
    # not under the target at the start, and the relaxed steps do run later
    assert history.history["relax_share"][0] < 1.0
    assert np.isfinite(history.history["loss"]).all()


def test_a_dataset_fit_relaxes_as_arrays_do():
    x, y = clusters(320, 3, 0, spread=2.0)
    train = tf.data.Dataset.from_tensor_slices((x[:192], y[:192])).batch(32)
    held = tf.data.Dataset.from_tensor_slices((x[192:], y[192:])).batch(64)
    model = _model(LossTarget("holdout"))
    history = model.fit(train, validation_data=held, epochs=3, verbose=0)
    assert float(model.loss_target.numpy()) == pytest.approx(
        model.holdout_callbacks[0].records[-1]["holdout_loss"], rel=1e-5)
    assert max(history.history["relax_share"][1:]) > 0


def test_a_fixed_target_trains_as_the_benchmarks_relaxloss():
    """`LossTarget(alpha)` without mixing is RelaxLoss: the same weights, step for step,
    as the benchmarks' own RelaxLoss baseline (`benchmarks/relaxloss.py`), which is
    written from the paper separately."""
    from benchmarks.relaxloss import RelaxLossModel

    x, y = clusters(192, 3, 0, spread=2.0)
    weights = []
    for make in (lambda base: RelaxLossModel(base, alpha=0.6),
                 lambda base: keras_adamixup.AdaMixupModel(base, schedule=0.0, seed=3,
                                                           relax=LossTarget(0.6))):
        model = make(cluster_mlp(seed=0))
        compile_adam(model, 1e-2, SPARSE_CE)
        history = model.fit(x, y, epochs=4, batch_size=32, shuffle=False, verbose=0)
        weights.append([w.numpy() for w in model.trainable_weights])
    shares = history.history["relax_share"]
    assert min(shares) < 1 and max(shares) > 0  # both kinds of steps were taken
    for ours, theirs in zip(weights[1], weights[0]):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)


def test_binary_flattening_keeps_the_right_side_and_teaches_the_wrong_one():
    got = flattened_binary(tf.constant([[1.0], [1.0], [0.0], [0.0]]),
                           tf.constant([[0.8], [0.3], [0.1], [0.6]])).numpy().ravel()
    np.testing.assert_allclose(got, [0.8, 1.0, 0.1, 0.0], atol=1e-6)


def test_weights_do_not_move_the_comparison():
    """Σ w·l / n is not the weighted mean: with every weight 5 the steps must be
    relaxed exactly as without weights (they are not if the batch sum is compared)."""
    x, y = clusters(192, 3, 0, spread=2.0)
    shares = []
    for weight in (None, np.full(len(y), 5.0, "float32")):
        model = _model(LossTarget(0.6))
        history = model.fit(x, y, sample_weight=weight, epochs=4, batch_size=32,
                            shuffle=False, verbose=0)
        shares.append(history.history["relax_share"])
    assert max(shares[0]) > 0
    np.testing.assert_allclose(shares[1], shares[0])


def test_an_eager_fit_runs():
    x, y = clusters(192, 3, 0, spread=2.0)
    model = keras_adamixup.AdaMixupModel(cluster_mlp(seed=0), schedule=0.2, seed=3,
                                         relax=LossTarget(0.6))
    model.compile("adam", SPARSE_CE, run_eagerly=True)
    history = model.fit(x, y, epochs=2, batch_size=64, verbose=0)
    assert history.history["mixup_strength"] == [pytest.approx(0.2)] * 2


def test_a_target_above_a_uniform_prediction_warns_and_a_bare_value_is_explained():
    x, y = clusters(96, 3, 0, spread=2.0)
    with pytest.warns(UserWarning, match=r"at or above ln\(3\)"):
        _model(LossTarget(1.2)).fit(x, y, epochs=1, verbose=0)
    with pytest.raises(TypeError, match=r"relax=keras_adamixup.LossTarget\('holdout'\)"):
        keras_adamixup.AdaMixupModel(cluster_mlp(seed=0), relax="holdout")


def test_a_target_above_what_a_uniform_prediction_scores_on_mixed_labels_warns():
    """Soft mixed labels: the relaxed loss is taken above their entropy, so a
    uniform prediction scores under ln(classes) (1.0 unlearned 3 classes unwarned)."""
    x, y = clusters(96, 3, 0, spread=2.0)
    soft = dict(schedule=0.4, coefficient="beta", label_mode="soft")
    with pytest.warns(UserWarning, match="entropy of the mixed labels"):
        _model(LossTarget(1.0), **soft).fit(x, y, epochs=1, verbose=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _model(LossTarget(1.0), schedule=0.4).fit(x, y, epochs=1, verbose=0)  # dominant
        ten = keras.Sequential([keras.Input((8,)), keras.layers.Dense(10)])
        model = keras_adamixup.AdaMixupModel(ten, relax=LossTarget(1.0), seed=0, **soft)
        compile_adam(model, 1e-2, SPARSE_CE).fit(x, y, epochs=1, verbose=0)  # 10 classes


def test_the_target_warnings_point_at_the_users_fit_and_count_the_teachers_labels():
    x, y = clusters(96, 3, 0, spread=2.0)
    model = keras_adamixup.AdaMixupModel(cluster_mlp(seed=0), schedule=0.0, seed=3,
                                         relax=LossTarget(1.2))
    model.compile(keras.optimizers.Adam(1e-2, use_ema=True), SPARSE_CE)
    with pytest.warns(UserWarning) as record:
        model.fit(x, y, epochs=1, verbose=0)
    assert {w.filename for w in record} == {__file__} and len(record) == 2  # ln(3), E65
    taught = keras_adamixup.AdaMixupModel(
        cluster_mlp(seed=0), schedule=0.0, seed=3, relax=LossTarget(1.05),
        targets=keras_adamixup.SplitTeachers(2, 1, seed=0, near_duplicates=None))
    compile_adam(taught, 1e-2, SPARSE_CE)
    with pytest.warns(UserWarning, match="entropy of the teachers' soft labels") as record:
        taught.fit(x, y, epochs=3, verbose=0)
    assert [w.filename for w in record if "LossTarget" in str(w.message)] == [__file__]


def test_any_loss_with_a_target_warns():
    model = keras_adamixup.AdaMixupModel(cluster_mlp(seed=0), relax=LossTarget(0.3),
                                         allow_any_loss=True)
    with pytest.warns(UserWarning, match="not a classification loss"):
        model.compile("adam", "mse")


def test_a_dataset_with_validation_split_is_told_to_give_validation_data():
    x, y = clusters(96, 3, 0, spread=2.0)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
    with pytest.raises(ValueError, match="E59: .*`validation_split` splits arrays only"):
        _model(LossTarget()).fit(data, validation_split=0.2, epochs=1, verbose=0)


def test_a_regularized_model_compares_its_data_loss():
    """An L2 penalty of the size of the target would keep every step above it if it
    were compared; the data loss alone falls under the target and is relaxed."""
    x, y = clusters(192, 3, 0, spread=2.0)
    keras.utils.set_random_seed(0)
    base = keras.Sequential([keras.Input((8,)),
                             keras.layers.Dense(16, activation="relu",
                                                kernel_regularizer=keras.regularizers.L2(0.05)),
                             keras.layers.Dense(3)])
    model = keras_adamixup.AdaMixupModel(base, schedule=0.0, seed=3, relax=LossTarget(0.6))
    compile_adam(model, 1e-2, SPARSE_CE)
    history = model.fit(x, y, epochs=4, batch_size=32, verbose=0)
    assert history.history["loss"][-1] > 0.6  # the penalty alone keeps the total above
    assert max(history.history["relax_share"]) > 0.5


def test_too_few_held_out_rows_name_the_hold_out_loss():
    x, y = clusters(200, 3, 0, spread=2.0)
    model = _model(LossTarget("holdout"))
    with pytest.raises(ValueError, match="E13: .*hold-out loss.*larger `validation_split`"):
        model.fit(x, y, validation_split=0.1, epochs=1, batch_size=32, verbose=0)


def test_the_plateau_target_waits_for_the_hold_out_losss_plateau_then_follows_its_low():
    relax = LossTarget("plateau", factor=0.8, patience=2)
    state, targets = (float("inf"), 0), []
    for loss in (2.0, 1.5, 1.6, 1.7, 1.2, 1.3):
        *state, target = relax.plateau_step(*state, loss)
        targets.append(target)
    # two measurements without a new low switch it on; a later low moves it, and it stays on
    np.testing.assert_allclose(targets, [0, 0, 0, 1.2, 0.96, 0.96])
    with pytest.raises(ValueError, match="E59: `patience` belongs to LossTarget"):
        LossTarget(1.0, patience=2)
    with pytest.raises(ValueError, match="E59: `factor` scales"):
        LossTarget(1.0, factor=0.8)


def test_the_plateau_target_runs_under_mixings_soft_labels_and_is_saved(tmp_path):
    x, y = clusters(320, 3, 0, spread=2.0)
    model = _model(LossTarget("plateau", factor=0.8, patience=1), schedule=0.4,
                   coefficient="beta", label_mode="soft")  # E59 refuses 'holdout' here
    model.fit(x[:192], y[:192], validation_data=(x[192:], y[192:]), epochs=8,
              batch_size=32, verbose=0)
    records = model.holdout_callbacks[0].records
    losses = [r["holdout_loss"] for r in records]
    lowest, waited, expected = float("inf"), 0, 0.0
    for loss in losses:  # the model's target is the rule's, measurement by measurement
        lowest, waited, expected = model.relax.plateau_step(lowest, waited, loss)
    assert expected > 0  # the hold-out loss stopped making new lows: the target is on
    assert float(model.loss_target.numpy()) == pytest.approx(expected, rel=1e-5)
    assert float(model.relax_lowest.numpy()) == pytest.approx(min(losses), rel=1e-5)
    again = keras_adamixup.AdaMixupModel.from_config(model.get_config())
    assert repr(again.relax) == "LossTarget(target='plateau', factor=0.8, patience=1)"
    model.save(tmp_path / "plateau.keras")
    loaded = keras.saving.load_model(tmp_path / "plateau.keras")
    assert float(loaded.relax_lowest.numpy()) == pytest.approx(min(losses), rel=1e-5)
    with pytest.raises(ValueError, match="E59: LossTarget\\('plateau'\\) was measured"):
        keras_adamixup.AdaMixupModel(cluster_mlp(seed=0), relax=LossTarget("plateau"),
                                     targets=keras_adamixup.SplitTeachers(2, 1))
    loaded.reset_schedule()  # before a fit on other validation data: the plateau anew
    assert float(loaded.loss_target.numpy()) == 0.0
    assert np.isinf(loaded.relax_lowest.numpy()) and int(loaded.relax_waited.numpy()) == 0


def test_the_plateau_target_defaults_to_the_screened_factor_and_warns_when_it_unlearns():
    """A careless user's LossTarget('plateau') took factor 1.0 and set its target above
    what a uniform prediction scores on mixed labels; factor=3.0 was accepted and the
    model unlearnt (test accuracy 0.08), both without a word."""
    assert LossTarget("plateau").factor == 0.8 and LossTarget().factor == 1.0
    assert LossTarget("plateau", factor=1.0).factor == 1.0  # up to 1 is allowed
    model = _model(LossTarget("plateau", factor=1.0, patience=1), schedule=0.4,
                   coefficient="beta", label_mode="soft")
    measured = keras_adamixup.schedules.Measurement(auc=0.5, loss=1.5)  # ln 3 = 1.10
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.observe(measured)  # the first low: no target yet
    with pytest.warns(UserWarning, match="The target LossTarget\\('plateau'\\) set, 1.500 "
                                         "\\(1 x the lowest hold-out loss\\), is at or above"):
        model.observe(measured)
    assert float(model.loss_target.numpy()) == pytest.approx(1.5)
    with warnings.catch_warnings():  # once set, it does not warn at every measurement
        warnings.simplefilter("error")
        model.observe(measured)


def test_fit_before_compile_with_a_target_gets_keras_own_message():
    """It raised AttributeError: 'AdaMixupModel' object has no attribute 'optimizer'."""
    x, y = clusters(150)
    model = keras_adamixup.AdaMixupModel(cluster_mlp(seed=0), schedule=0.4, coefficient="beta",
                                         label_mode="soft", relax=LossTarget("plateau"))
    with pytest.raises(ValueError, match="compile"):
        model.fit(x, y, validation_data=clusters(150, seed=1), epochs=1, verbose=0)
