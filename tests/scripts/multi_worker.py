"""One worker of a two-worker MultiWorkerMirroredStrategy job on 127.0.0.1.

Usage: multi_worker.py PORT0 PORT1 INDEX MODEL (MODEL: plain | adamixup). Run by tests/test_distribute.py
(two processes); each prints "RESULT {...}" with its view of the state.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
port0, port1, index, kind = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
os.environ["TF_CONFIG"] = json.dumps({
    "cluster": {"worker": [f"127.0.0.1:{port0}", f"127.0.0.1:{port1}"]},
    "task": {"type": "worker", "index": index},
})

import tensorflow as tf  # noqa: E402

strategy = tf.distribute.MultiWorkerMirroredStrategy()

import keras  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

import keras_adamixup  # noqa: E402

x, y = load_digits(return_X_y=True)
x, y = (x / 16.0).astype("float32")[:512], y[:512]
GLOBAL_BATCH, EPOCHS = 64, 2
with strategy.scope():
    keras.utils.set_random_seed(0)
    base = keras.Sequential([keras.Input((64,)), keras.layers.Dense(32, activation="relu"),
                             keras.layers.Dense(10)])
    model = base if kind == "plain" else keras_adamixup.AdaMixupModel(
        base, schedule=keras_adamixup.schedules.LinearDecay(0.4, 0.0), seed=1)
    model.compile(keras.optimizers.Adam(1e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
options = tf.data.Options()
options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
data = tf.data.Dataset.from_tensor_slices((x, y)).batch(GLOBAL_BATCH).with_options(options)
history = model.fit(data, epochs=EPOCHS, verbose=0, validation_data=data)
evaluated = model.evaluate(data, verbose=0, return_dict=True)
print("RESULT " + json.dumps({
    "worker": index,
    "replicas": strategy.num_replicas_in_sync,
    "mixup_step": int(np.asarray(model.mixup_step.value)) if kind != "plain" else None,
    "mixup_strength_log": history.history.get("mixup_strength"),
    "loss": history.history["loss"],
    "val_loss": history.history["val_loss"],
    "evaluate_loss": float(evaluated["loss"]),
    "kernel_sum": float(np.asarray(model.base_model.weights[0].value).sum()),
}), flush=True)
