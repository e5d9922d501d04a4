"""Fit throughput with 1 vs 2 devices and with mixed precision, AdaMixup vs plain.

Each configuration runs in its own process (logical devices must be set up
before TensorFlow starts): a `MirroredStrategy` over N logical CPU devices
(or the GPUs when present), a dtype policy, and inside it the plain CNN and
the same CNN in `AdaMixupModel`, timed round-robin (`--rounds` rounds of
`--steps` steps each, after a warm-up), so the ratio AdaMixup / plain is
paired within the same strategy and policy.

    python -m benchmarks.distributed_throughput [--rounds 10 --steps 20]
    python -m benchmarks.distributed_throughput --quick

On a CPU-only machine two logical devices share the same cores: the
"2 devices" rows measure the cost of the replication machinery, not a
speed-up.
"""

import argparse
import json
import os
import statistics
import sys
import time

# neither imports TensorFlow: safe before the devices are set
from benchmarks import common, overhead
CONFIGS = (("1", "float32"), ("2", "float32"), ("1", "mixed_bfloat16"),
           ("1", "mixed_float16"))


def run_config(devices, policy, images, batch_size, rounds, steps):
    """One configuration in this process; returns its timings."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus and devices > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * devices)
    import keras

    keras.mixed_precision.set_global_policy(policy)
    kind = "GPU" if gpus else "CPU"
    names = [d.name for d in tf.config.list_logical_devices(kind)][:devices]
    strategy = tf.distribute.MirroredStrategy(names)
    x, y, source = overhead.load_images(images)
    built = {}
    with strategy.scope():
        for variant in ("plain", "adamixup_model"):
            model, ds, _ = overhead.build_variant(variant, x, y, batch_size, seed=0,
                                                  shuffle_buffer=2048)
            built[variant] = (model, ds.repeat())
    for model, ds in built.values():
        model.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0)  # trace, compile
    times = {v: [] for v in built}
    for r in range(rounds):
        for v in (list(built) if r % 2 == 0 else list(built)[::-1]):
            model, ds = built[v]
            start = time.perf_counter()
            model.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0)
            times[v].append(time.perf_counter() - start)
    return {"devices": devices, "policy": policy, "device_kind": kind,
            "replicas": strategy.num_replicas_in_sync, "times": times, "data": source,
            "images_per_round": steps * batch_size}


def summarize(results):
    """Per configuration: images/s of each variant and the paired AdaMixup/plain ratio."""
    rows = []
    for r in results:
        plain, ada = r["times"]["plain"], r["times"]["adamixup_model"]
        rows.append({
            "devices": r["devices"], "policy": r["policy"], "replicas": r["replicas"],
            "plain_images_s": r["images_per_round"] / statistics.median(plain),
            "adamixup_images_s": r["images_per_round"] / statistics.median(ada),
            "ratio": statistics.median([a / p for a, p in zip(ada, plain)]),
        })
    base = rows[0]["plain_images_s"] if rows else 1.0
    for row in rows:
        row["plain_vs_first"] = row["plain_images_s"] / base
    return rows


def main(argv=None):
    parser = common.parser(__doc__, "images", "batch_size", "steps", "out", rounds=10,
                           quick="2 rounds of 2 steps")
    parser.add_argument("--configs", default=",".join(f"{d}:{p}" for d, p in CONFIGS))
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.rounds, args.steps = 1024, 2, 2
    if args.child:
        devices, policy = args.child.split(":")
        result = run_config(int(devices), policy, args.images, args.batch_size, args.rounds,
                            args.steps)
        print("RESULT " + json.dumps(result))
        return 0
    results = []
    for config in args.configs.split(","):
        cmd = common.module_command("distributed_throughput", "--child", config, "--images",
                                    str(args.images), "--batch-size", str(args.batch_size),
                                    "--rounds", str(args.rounds), "--steps", str(args.steps))
        results.append(overhead.run_child(cmd, f"configuration {config}"))
        print(f"done: {config}", flush=True)
    rows = summarize(results)
    print(f"\n{args.images} images ({results[0]['data']}), global batch {args.batch_size}, "
          f"{args.rounds} rounds x {args.steps} steps, {results[0]['device_kind']}")
    print(f"{'devices':>7} {'policy':>15} {'plain img/s':>12} {'AdaMixup img/s':>15} "
          f"{'AdaMixup/plain':>15} {'plain vs row 1':>15}")
    for row in rows:
        print(f"{row['devices']:>7} {row['policy']:>15} {row['plain_images_s']:12.0f} "
              f"{row['adamixup_images_s']:15.0f} {row['ratio']:15.3f} "
              f"{row['plain_vs_first']:15.3f}")
    overhead._dump(args.out, {"rows": rows, "results": results, "args": vars(args)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
