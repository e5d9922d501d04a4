"""AdaMixupModel under MirroredStrategy on two logical CPU devices.

Run by tests/test_distribute.py in a fresh process (logical devices must be
configured before TensorFlow starts). Prints one JSON line "RESULT {...}".
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

import keras_adamixup  # noqa: E402

mode = sys.argv[1]  # "train_step" | "tf_data_op" | "controller"
x, y = load_digits(return_X_y=True)
x = (x / 16.0).astype("float32")[:1024]
y = y[:1024]
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
GLOBAL_BATCH, EPOCHS = 64, 3
steps_per_epoch = len(x) // GLOBAL_BATCH

with strategy.scope():
    keras.utils.set_random_seed(0)
    base = keras.Sequential([keras.Input((64,)), keras.layers.Dense(64, activation="relu"),
                             keras.layers.Dense(10)])
    if mode == "controller":
        schedule = keras_adamixup.PrivacyTarget(0.55, initial=0.0, deadband=0.0)
    else:
        schedule = keras_adamixup.schedules.LinearDecay(0.4, 0.0)
    model = keras_adamixup.AdaMixupModel(
        base, schedule=schedule, seed=1,
        mix_in="none" if mode == "tf_data_op" else "train_step")
    model.compile(keras.optimizers.Adam(1e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])

callbacks = []
if mode == "tf_data_op":
    def dataset_fn(context):
        batch = context.get_per_replica_batch_size(GLOBAL_BATCH)
        ds = tf.data.Dataset.from_tensor_slices((x, y)).shard(
            context.num_input_pipelines, context.input_pipeline_id)
        ds = ds.repeat().batch(batch, drop_remainder=True)
        return ds.apply(keras_adamixup.adamixup(model, num_classes=10, seed=7)).prefetch(2)

    data = strategy.distribute_datasets_from_function(dataset_fn)
    history = model.fit(data, epochs=EPOCHS, steps_per_epoch=steps_per_epoch, verbose=0)
else:
    if mode == "controller":
        callbacks = [keras_adamixup.PrivacyMonitor((x[:200], y[:200]), (
            (load_digits().data[1200:1400] / 16.0).astype("float32"),
            load_digits().target[1200:1400]))]
    history = model.fit(x, y, batch_size=GLOBAL_BATCH, epochs=EPOCHS, verbose=0,
                        callbacks=callbacks, shuffle=False)


def per_replica(variable):
    inner = getattr(variable, "value", variable)
    values = strategy.experimental_local_results(getattr(variable, "_value", inner))
    return [float(np.asarray(v)) for v in values]


result = {
    "replicas": strategy.num_replicas_in_sync,
    "steps_per_epoch": steps_per_epoch,
    "epochs": EPOCHS,
    "strength": per_replica(model.strength),
    "mixup_step": per_replica(model.mixup_step),
    "loss": history.history["loss"],
    "mixup_strength_log": history.history.get("mixup_strength"),
    "accuracy": float(model.evaluate(x, y, verbose=0)[1]),
}
if mode == "train_step":  # the audit's batched prediction through the strategy
    from keras_adamixup.audit import run as audit_run

    through_strategy = audit_run.predict_outputs(model, x[:300], batch_size=64)
    direct = np.asarray(model.base_model(x[:300], training=False))
    result["audit_predict_max_diff"] = float(np.abs(through_strategy - direct).max())
    result["audit_predict_rows"] = int(len(through_strategy))
if mode == "controller":
    result["controller_strength"] = per_replica(model.schedule_state[0])
    result["controller_log"] = history.history["controller_strength"]
print("RESULT " + json.dumps(result))
