"""Training-time overhead of mixing: per-epoch wall time and peak memory.

Variants, all with the same model, data pipeline, batch size and epochs:

- ``plain``: `model.fit` on the batched tf.data pipeline (the baseline);
- ``adamixup_model``: `AdaMixupModel.fit`, mixing inside the compiled train
  step (the default);
- ``tf_data_op``: the plain model on the pipeline with
  `keras_adamixup.adamixup` applied after batching;
- ``keras_mixup``: `keras.layers.MixUp` in a tf.data map (the outside
  reference; needs one-hot labels and a categorical loss);
- ``adamixup_monitored``: `AdaMixupModel` driven by `PrivacyTarget`, with a
  `PrivacyMonitor` (1,000 training images vs 1,000 held-out images) measuring
  at the end of every epoch. In ``--interleaved`` mode a round is one
  "epoch" for the monitor, so use ``--steps`` = steps per real epoch (100 for
  12,800 images in batches of 128) to charge it at its real frequency;
- ``adamixup_focus``: ``adamixup_model`` with a per-example strength
  (`LossFloor(0.5)`: a fixed floor, so no monitor), which predicts every
  clean batch once more (inference mode) before mixing it.

Each (variant, repeat) runs in a fresh subprocess (so peak RSS is per
variant); repeats are interleaved (a b c d a b c d ...) so machine drift hits
every variant alike. Times are measured inside the process by a callback; the
first epoch (tracing, XLA compilation) is dropped. Two estimates per variant,
each with its ratio to ``plain``:

- median epoch time (wall time of whole epochs);
- median step time × steps per epoch. On the shared 2-core machine this
  benchmark was written on, the process sometimes stalls for seconds with the
  CPU idle (host-side), which turns some epochs from 5.5 s into 10 s at random;
  the median over hundreds of steps is not moved by such stalls, the median
  over a handful of epochs is.

    python -m benchmarks.overhead [--images 12800] [--epochs 4] [--repeats 3] [--quick]
    python -m benchmarks.overhead --interleaved 30 --steps 20   # paired, one process

Data: MNIST from ../shared/data when present, else scikit-learn digits
upscaled to 28×28 (offline), so the script runs anywhere.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

from benchmarks import common

MNIST = os.path.join(common.SHARED, "mnist.npz")
VARIANTS = ("plain", "adamixup_model", "tf_data_op", "keras_mixup", "adamixup_monitored",
            "adamixup_focus")


def summarize(epoch_times, baseline="plain", step_times=None, steps_per_epoch=None):
    """Median epoch time per variant and its ratio to `baseline`.

    Args:
        epoch_times: ``{variant: [seconds per epoch, ...]}`` (all repeats
            pooled, warm-up epochs already dropped).
        step_times: optional ``{variant: [seconds per step, ...]}``.
        steps_per_epoch: steps in one epoch (to scale the step median).

    Returns:
        ``{variant: {"median_s", "min_s", "max_s", "epochs", "ratio"}}``, plus
        ``"step_epoch_s"`` (median step × steps per epoch) and ``"step_ratio"``
        when step times are given.

    Raises:
        ValueError: the baseline is missing or a variant has no timings.
    """
    if baseline not in epoch_times:
        raise ValueError(f"No timings for the baseline {baseline!r}.")
    out = {}
    for name, times in epoch_times.items():
        if not times:
            raise ValueError(f"No timings for {name!r}.")
        out[name] = {"median_s": statistics.median(times), "min_s": min(times),
                     "max_s": max(times), "epochs": len(times)}
    base = out[baseline]["median_s"]
    for row in out.values():
        row["ratio"] = row["median_s"] / base
    if step_times:
        for name, times in step_times.items():
            out[name]["step_epoch_s"] = statistics.median(times) * steps_per_epoch
        for row in out.values():
            row["step_ratio"] = row["step_epoch_s"] / out[baseline]["step_epoch_s"]
    return out


def load_images(n, seed=0):
    import numpy as np

    if os.path.exists(MNIST):
        data = np.load(MNIST)
        x, y, source = data["x_train"][:n], data["y_train"][:n], "MNIST"
    else:
        from sklearn.datasets import load_digits

        digits = load_digits()
        x = np.kron(digits.images, np.ones((4, 4)))[:, 2:30, 2:30] * 16  # 8×8 → 28×28
        reps = -(-n // len(x))
        x, y = np.tile(x, (reps, 1, 1))[:n], np.tile(digits.target, reps)[:n]
        source = "digits upscaled to 28x28 (MNIST not found)"
    x = (x.astype("float32") / 255.0)[..., None]
    return x, y.astype("int64"), source


def _images_and_held_out(images, seed):
    """The training images and 1,000 more (never trained on) for the monitor."""
    import numpy as np

    x, y, source = load_images(images + 1000, seed)
    held_x = x[images:]
    if source != "MNIST":  # the digits fallback repeats images: make them distinct
        held_x = held_x + np.random.default_rng(seed).normal(0, 1e-3, held_x.shape).astype(
            held_x.dtype)
    return x[:images], y[:images], source, (held_x, y[images:])


def build_variant(variant, x, y, batch_size, seed, shuffle_buffer=None, held_out=None):
    """`(model, dataset, callbacks)` for one variant, compiled, same model and pipeline."""
    import keras
    import tensorflow as tf

    import keras_adamixup

    keras.utils.set_random_seed(seed)
    base = keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(32, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(64, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Flatten(),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.Dense(10),
    ])
    ds = (tf.data.Dataset.from_tensor_slices((x, y))
          .shuffle(shuffle_buffer or len(x), seed=seed).batch(batch_size))
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model, callbacks = base, []
    if variant == "adamixup_monitored":
        model = keras_adamixup.AdaMixupModel(
            base, schedule=keras_adamixup.schedules.PrivacyTarget(0.55), seed=seed)
        callbacks = [keras_adamixup.PrivacyMonitor((x[:1000], y[:1000]), held_out)]
    elif variant == "adamixup_model":
        model = keras_adamixup.AdaMixupModel(
            base, schedule=keras_adamixup.schedules.LinearDecay(0.4, 0.0, decay_steps=10**6),
            seed=seed)
    elif variant == "adamixup_focus":  # per-example strength: one more forward pass
        model = keras_adamixup.AdaMixupModel(
            base, schedule=keras_adamixup.schedules.LinearDecay(0.4, 0.0, decay_steps=10**6),
            focus=keras_adamixup.LossFloor(0.5), seed=seed)
    elif variant == "tf_data_op":
        ds = ds.apply(keras_adamixup.adamixup(0.3, seed=seed))
    elif variant == "keras_mixup":
        mixup = keras.layers.MixUp(alpha=0.2, seed=seed)
        ds = ds.map(lambda a, b: mixup({"images": a, "labels": tf.one_hot(b, 10)}))
        ds = ds.map(lambda d: (d["images"], d["labels"]))
        loss = keras.losses.CategoricalCrossentropy(from_logits=True)
    elif variant != "plain":
        raise ValueError(f"Unknown variant {variant!r}; choose from {VARIANTS}.")
    model.compile(keras.optimizers.Adam(1e-3), loss)
    return model, ds.prefetch(tf.data.AUTOTUNE), callbacks


def run_variant(variant, images, epochs, batch_size, seed):
    """Runs one variant in this process; returns its per-epoch times and peak RSS."""
    import resource
    import time

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import tensorflow as tf

    x, y, source, held_out = _images_and_held_out(images, seed)
    model, ds, callbacks = build_variant(variant, x, y, batch_size, seed, held_out=held_out)
    times, steps = [], []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = self.last = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            now = time.perf_counter()
            if epoch_index[0] > 0:  # the first epoch traces and compiles
                steps.append(now - self.last)
            self.last = now

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.start)
            epoch_index[0] += 1

    epoch_index = [0]
    model.fit(ds, epochs=epochs, verbose=0, callbacks=[Timer()] + callbacks)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"variant": variant, "epoch_s": times, "step_s": steps,
            "steps_per_epoch": -(-len(x) // batch_size), "peak_rss_mib": peak_mib,
            "data": source, "devices": [d.device_type for d in tf.config.list_logical_devices()]}


def paired_ratios(round_times, baseline="plain"):
    """Per-round ratios to the baseline's time in the same round, and their median.

    Args:
        round_times: ``{variant: [seconds in round 0, round 1, ...]}``.

    Returns:
        ``{variant: {"median_ratio", "ratios", "median_s"}}``.
    """
    base = round_times[baseline]
    out = {}
    for name, times in round_times.items():
        if len(times) != len(base):
            raise ValueError(f"{name!r} has {len(times)} rounds, the baseline {len(base)}.")
        ratios = [t / b for t, b in zip(times, base)]
        out[name] = {"median_ratio": statistics.median(ratios), "ratios": ratios,
                     "median_s": statistics.median(times)}
    return out


def run_interleaved(variants, images, batch_size, rounds, steps, seed):
    """All variants in one process, `steps` training steps each per round, round-robin."""
    import time

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    x, y, source, held_out = _images_and_held_out(images, seed)
    built = {v: build_variant(v, x, y, batch_size, seed, shuffle_buffer=2048,
                              held_out=held_out) for v in variants}
    built = {v: (m, ds.repeat(), cb) for v, (m, ds, cb) in built.items()}
    for model, ds, callbacks in built.values():  # trace and compile outside the timing
        model.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=callbacks)
    times = {v: [] for v in variants}
    for r in range(rounds):
        order = variants[r % len(variants):] + variants[:r % len(variants)]
        for v in order:
            model, ds, callbacks = built[v]
            start = time.perf_counter()
            model.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=callbacks)
            times[v].append(time.perf_counter() - start)
    return times, source


def run_child(cmd, what):
    """Runs a benchmark child process (`common.module_command`, from the repository
    root); returns the JSON of its "RESULT " line."""
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=common.ROOT)
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not line:
        print(proc.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"{what} failed (exit {proc.returncode})")
    return json.loads(line[-1][len("RESULT "):])


def _dump(path, payload):
    """Writes the results as JSON when a path was given."""
    if path:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(payload, f, indent=1)


def _interleaved(args, variants):
    """`--interleaved`: every variant in one process, paired per-round ratios."""
    times, source = run_interleaved(variants, args.images, args.batch_size,
                                    args.interleaved, args.steps, seed=0)
    table = paired_ratios(times)
    print(f"{args.images} images ({source}), batch {args.batch_size}, {args.interleaved} "
          f"rounds x {args.steps} steps per variant, round-robin in one process")
    print(f"{'variant':>15} {'median s/round':>15} {'median paired ratio':>20} "
          f"{'ratio range':>16}")
    for name in variants:
        r = table[name]
        print(f"{name:>15} {r['median_s']:15.3f} {r['median_ratio']:20.3f} "
              f"{min(r['ratios']):7.3f}-{max(r['ratios']):.3f}")
    _dump(args.out, {"interleaved": table, "round_s": times, "args": vars(args),
                     "data": source})


def main(argv=None):
    parser = common.parser(__doc__, "images", "repeats", "batch_size", "out", "steps",
                           epochs=4, quick="1,024 images, 2 epochs, 1 repeat")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--interleaved", type=int, default=0, metavar="ROUNDS",
                        help="instead: one process, ROUNDS round-robin rounds of --steps "
                             "steps per variant, paired per-round ratios")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.epochs, args.repeats = 1024, 2, 1
    if args.child:
        result = run_variant(args.child, args.images, args.epochs, args.batch_size, seed=0)
        print("RESULT " + json.dumps(result))
        return 0
    variants = args.variants.split(",")
    if args.interleaved:
        _interleaved(args, variants)
        return 0
    pooled = {v: [] for v in variants}
    step_pool = {v: [] for v in variants}
    peaks = {v: [] for v in variants}
    source = None
    for repeat in range(args.repeats):
        for variant in variants:
            cmd = common.module_command("overhead", "--child", variant,
                                        "--images", str(args.images), "--epochs",
                                        str(args.epochs), "--batch-size", str(args.batch_size))
            result = run_child(cmd, f"variant {variant}")
            source = result["data"]
            pooled[variant].extend(result["epoch_s"][1:])  # drop the warm-up epoch
            step_pool[variant].extend(result["step_s"])
            steps_per_epoch = result["steps_per_epoch"]
            peaks[variant].append(result["peak_rss_mib"])
            print(f"repeat {repeat + 1}/{args.repeats} {variant:>15}: epochs "
                  + " ".join(f"{t:.2f}" for t in result["epoch_s"]) + " s", flush=True)
    table = summarize(pooled, step_times=step_pool, steps_per_epoch=steps_per_epoch)
    print(f"\n{args.images} images ({source}), batch {args.batch_size}, {args.epochs} epochs "
          f"(first dropped) x {args.repeats} repeats, one subprocess each")
    print(f"{'variant':>15} {'median s/epoch':>15} {'min':>7} {'max':>7} {'ratio':>7} "
          f"{'step-based s/epoch':>19} {'step ratio':>10} {'peak RSS MiB':>13}")
    for name in variants:
        r = table[name]
        print(f"{name:>15} {r['median_s']:15.3f} {r['min_s']:7.3f} {r['max_s']:7.3f} "
              f"{r['ratio']:7.3f} {r['step_epoch_s']:19.3f} {r['step_ratio']:10.3f} "
              f"{statistics.median(peaks[name]):13.0f}")
    _dump(args.out, {"summary": table, "epoch_s": pooled, "step_s": step_pool,
                     "peak_rss_mib": peaks, "args": vars(args), "data": source})
    return 0


if __name__ == "__main__":
    sys.exit(main())
