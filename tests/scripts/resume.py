"""Training with keras.callbacks.BackupAndRestore that can be killed mid-way.

Usage: resume.py BACKUP_DIR EPOCHS [KILL_AFTER_EPOCH]. With KILL_AFTER_EPOCH
the process exits abruptly (os._exit) after that epoch's backup; run again
without it to resume. Prints "RESULT {...}" at the end of a complete run.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

import keras_adamixup  # noqa: E402

backup_dir, epochs = sys.argv[1], int(sys.argv[2])
kill_after = int(sys.argv[3]) if len(sys.argv) > 3 else None
x, y = load_digits(return_X_y=True)
x = (x / 16.0).astype("float32")
members, nonmembers = (x[:400], y[:400]), (x[1000:1200], y[1000:1200])
keras.utils.set_random_seed(0)
base = keras.Sequential([keras.Input((64,)), keras.layers.Dense(64, activation="relu"),
                         keras.layers.Dense(10)])
model = keras_adamixup.AdaMixupModel(
    base, schedule=keras_adamixup.PrivacyTarget(0.52, initial=0.1, deadband=0.0),
    jitter=0.5, seed=5)
model.compile(keras.optimizers.Adam(1e-3),
              keras.losses.SparseCategoricalCrossentropy(from_logits=True))


class Kill(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == kill_after:
            os._exit(17)


started = []
callbacks = [
    keras.callbacks.BackupAndRestore(backup_dir),
    keras.callbacks.LambdaCallback(on_epoch_begin=lambda e, l: started.append(e)),
    keras_adamixup.PrivacyMonitor((x[:200], y[:200]), nonmembers),
    Kill(),
]
history = model.fit(*members, epochs=epochs, batch_size=32, shuffle=False, verbose=0,
                    callbacks=callbacks)
print("RESULT " + json.dumps({
    "epochs_run_here": started,
    "mixup_step": int(np.asarray(model.mixup_step.value)),
    "controller": model.schedule.state(),
    "seed_state": np.asarray(model.seed_generator.state.value).tolist(),
    "weights": [float(np.asarray(w).sum()) for w in model.base_model.get_weights()],
}))
