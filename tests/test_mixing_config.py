"""One mixing configuration: checked once, shared by the model, the op and the tf.data op."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_adamixup
from keras_adamixup import MixingConfig
from tests.conftest import small_mlp


def test_the_config_checks_its_fields_once_and_is_frozen():
    with pytest.raises(ValueError, match="`label_mode` must be one of"):
        MixingConfig(label_mode="mean")
    with pytest.raises(ValueError, match="jitter"):
        MixingConfig(coefficient="beta", jitter=0.2)
    with pytest.raises(ValueError, match="need features='swap'"):
        MixingConfig(feature_groups=[[0, 1]])
    config = MixingConfig(features="swap", feature_groups=[[0, 1], [3]], num_classes=4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.jitter = 0.5
    assert config.feature_groups == ((0, 1), (3,))
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(config))
    assert again == config
    with pytest.raises(ValueError, match="`coefficient` must be one of"):
        config.replace(coefficient="gamma")  # a changed copy is checked again


def test_the_op_the_model_and_the_pipeline_share_one_config():
    config = MixingConfig(label_mode="soft", num_classes=3)
    model = keras_adamixup.AdaMixupModel(small_mlp(3, inputs=4), mixing=config,
                                         mix_in="none", schedule=0.3)
    assert model.mixing_config is config and model.label_mode == "soft"
    rebuilt = keras_adamixup.AdaMixupModel.from_config(model.get_config())
    assert rebuilt.mixing_config == config
    with pytest.raises(ValueError, match="not both"):
        keras_adamixup.AdaMixupModel(small_mlp(), mixing=config, jitter=0.1)
    x = np.random.default_rng(0).random((8, 4)).astype("float32")
    y = np.arange(8) % 3
    # the pipeline reads the model's config: soft targets of 3 classes
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    xm, ym = next(iter(ds.apply(keras_adamixup.adamixup(model, seed=0))))
    assert ym.shape == (8, 3)
    np.testing.assert_allclose(ym.numpy().sum(axis=1), 1.0, rtol=1e-6)
    # the op takes the same config (or its fields)
    _, by_config, _ = keras_adamixup.mix_batch(x, y, strength=0.3, config=config, seed=1)
    _, by_fields, _ = keras_adamixup.mix_batch(x, y, strength=0.3, label_mode="soft",
                                               num_classes=3, seed=1)
    np.testing.assert_allclose(by_config, by_fields)
    with pytest.raises(ValueError, match="`label_mode` must be one of"):
        keras_adamixup.adamixup(0.3, config=config, label_mode="mean")


def test_auto_features_are_for_the_model_only():
    with pytest.raises(ValueError, match="decided by AdaMixupModel"):
        keras_adamixup.mix_batch(np.zeros((4, 2), "float32"), np.arange(4) % 2,
                                 strength=0.2, features="auto")
