"""The device check's measurements (run by benchmarks/device_check.sh).

Three measurements, each timed in one process, printed as one table:

1. **Training overhead**: AdaMixup (mixing in the compiled train step) and
   the `tf.data` op (mixing in the input pipeline, on the host) against plain
   `fit`, on a ResNet-style CNN with CIFAR-shaped synthetic data (32×32×3, 10
   classes), batch 256, in float32 and mixed_bfloat16. Variants run
   interleaved, a fixed number of steps per round, and the ratio is the
   median of per-round ratios (`benchmarks/overhead.py`'s method).
2. **Shadow training**: K = 8 LiRA shadows of a small CNN trained together
   in one compiled step vs one after another (`lira.shadow_outputs`), each
   against one model's training.
3. **The default audit** (fast trained attacks, label-only attacks, no LiRA)
   of a model on 10,000 + 10,000 examples: its wall time.
4. **The recommended setting's whole fit** (`recommended.model(budget=2.0)`:
   two teachers, then the model, with its monitor and checkpoint) against a
   plain `fit` of the same ResNet-style CNN and epochs, plain timed before
   and after (the ratio to their mean).

``--dry-run``: tiny sizes and a tiny CNN, every code path, on any machine
(the test suite runs it on the CPU). ``--out FILE`` writes the results as JSON.

    python -m benchmarks.device_check [--dry-run] [--out device_check.json]
"""

import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_adamixup  # noqa: E402

from benchmarks import common, overhead  # noqa: E402

FULL = {"images": 256 * 40, "batch_size": 256, "rounds": 5, "steps": 20, "width": 32,
        "shadows": 8, "shadow_population": 4000, "shadow_epochs": 5, "shadow_batch": 128,
        "audit_examples": 10000, "policies": ("float32", "mixed_bfloat16"),
        "recipe_images": 5000, "recipe_validation": 1000, "recipe_epochs": 15}
DRY = {"images": 64, "batch_size": 16, "rounds": 2, "steps": 2, "width": 4,
       "shadows": 2, "shadow_population": 64, "shadow_epochs": 1, "shadow_batch": 16,
       "audit_examples": 200, "policies": ("float32", "mixed_bfloat16"),
       "recipe_images": 128, "recipe_validation": 128, "recipe_epochs": 1}
VARIANTS = ("plain", "adamixup_model", "tf_data_op")


def synthetic_cifar(n, seed=0):
    """CIFAR-shaped images whose class shifts the mean of one colour block (learnable)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    x = rng.normal(0.0, 1.0, (n, 32, 32, 3)).astype("float32")
    rows = (y % 5) * 6
    for i in range(n):
        x[i, rows[i]:rows[i] + 6, :, y[i] // 5] += 1.0
    return x, y.astype("int64")


def resnet(width, seed=0):
    """A small ResNet: stem, three residual stages (batch norm), global pooling."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((32, 32, 3))
    h = keras.layers.Conv2D(width, 3, padding="same", use_bias=False)(inputs)
    h = keras.layers.Activation("relu")(keras.layers.BatchNormalization()(h))
    for stage, filters in enumerate((width, 2 * width, 4 * width)):
        strides = 1 if stage == 0 else 2
        shortcut = h
        h = keras.layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False)(h)
        h = keras.layers.Activation("relu")(keras.layers.BatchNormalization()(h))
        h = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(h)
        h = keras.layers.BatchNormalization()(h)
        if strides != 1 or shortcut.shape[-1] != filters:
            shortcut = keras.layers.Conv2D(filters, 1, strides=strides, use_bias=False)(shortcut)
        h = keras.layers.Activation("relu")(keras.layers.Add()([h, shortcut]))
    h = keras.layers.GlobalAveragePooling2D()(h)
    outputs = keras.layers.Dense(10, dtype="float32")(h)  # logits in float32
    return keras.Model(inputs, outputs, name="resnet_small")


def _compiled(model):
    model.compile(keras.optimizers.Adam(1e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def training_ratios(cfg, policy, seed=0):
    """Median per-round ratios to plain `fit`: ``{variant: ratio}`` and seconds per step."""
    keras.mixed_precision.set_global_policy(policy)
    try:
        x, y = synthetic_cifar(cfg["images"], seed)
        built = {}
        for variant in VARIANTS:
            ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(2048, seed=seed)
            ds = ds.batch(cfg["batch_size"], drop_remainder=True)
            model = resnet(cfg["width"], seed)
            if variant == "adamixup_model":
                model = keras_adamixup.AdaMixupModel(
                    model, schedule=keras_adamixup.schedules.LinearDecay(
                        0.4, 0.0, decay_steps=10**6), seed=seed)
            elif variant == "tf_data_op":
                ds = ds.apply(keras_adamixup.adamixup(0.3, seed=seed))
            built[variant] = (_compiled(model), ds.repeat().prefetch(tf.data.AUTOTUNE))
        for model, ds in built.values():  # trace and compile outside the timing
            model.fit(ds, epochs=1, steps_per_epoch=cfg["steps"], verbose=0)
        times = {v: [] for v in VARIANTS}
        for r in range(cfg["rounds"]):
            order = VARIANTS[r % len(VARIANTS):] + VARIANTS[:r % len(VARIANTS)]
            for v in order:
                model, ds = built[v]
                start = time.perf_counter()
                model.fit(ds, epochs=1, steps_per_epoch=cfg["steps"], verbose=0)
                times[v].append(time.perf_counter() - start)
        ratios = overhead.paired_ratios(times)
        return {v: {"ratio": ratios[v]["median_ratio"],
                    "step_ms": 1000 * ratios[v]["median_s"] / cfg["steps"]} for v in VARIANTS}
    finally:
        keras.mixed_precision.set_global_policy("float32")
        keras.backend.clear_session(free_memory=False)


class _ShadowFactory:
    def __init__(self, width):
        self.width = width

    def __call__(self):
        return _compiled(resnet(self.width))


def shadow_times(cfg, seed=0):
    """Seconds: one model's training, K shadows together, K shadows one after another."""
    from keras_adamixup.audit import lira

    x, y = synthetic_cifar(cfg["shadow_population"], seed)
    k = cfg["shadows"]
    masks = lira.shadow_masks(k, len(x), seed)
    factory = _ShadowFactory(cfg["width"])
    fit_kwargs = {"epochs": cfg["shadow_epochs"], "batch_size": cfg["shadow_batch"]}
    out = {}
    start = time.perf_counter()
    one = factory()
    one.fit(x[masks[0]], y[masks[0]], verbose=0, **fit_kwargs)
    out["one_s"] = time.perf_counter() - start
    keras.backend.clear_session(free_memory=False)
    for together in (True, False):
        start = time.perf_counter()
        lira.shadow_outputs(factory, x, y, masks, fit_kwargs=fit_kwargs, progress=False,
                            seed=seed, together=together)
        out["together_s" if together else "sequential_s"] = time.perf_counter() - start
    return out


def audit_time(cfg, seed=0):
    """Seconds of the default audit (no LiRA) of a small CNN on n + n examples."""
    from keras_adamixup import audit

    n = cfg["audit_examples"]
    x, y = synthetic_cifar(2 * n, seed)
    model = _compiled(resnet(cfg["width"], seed))
    model.fit(x[:n], y[:n], epochs=1, batch_size=cfg["shadow_batch"], verbose=0)
    start = time.perf_counter()
    report = audit.run_audit(model, (x[:n], y[:n]), (x[n:], y[n:]), seed=seed)
    return {"audit_s": time.perf_counter() - start, "best_auc": report.headline()["best_auc"]}


def recipe_ratio(cfg, seed=0):
    """The recommended setting's whole `fit` (budget 2) over a plain `fit`'s seconds."""
    n, epochs = cfg["recipe_images"], cfg["recipe_epochs"]
    x, y = synthetic_cifar(n + cfg["recipe_validation"], seed)
    fit = dict(epochs=epochs, batch_size=cfg["shadow_batch"], verbose=0)
    plain_s = []
    for _ in range(2):  # before and after the recommended fit
        model = _compiled(resnet(cfg["width"], seed))
        start = time.perf_counter()
        model.fit(x[:n], y[:n], **fit)
        plain_s.append(time.perf_counter() - start)
        if len(plain_s) == 1:
            defended = _compiled(keras_adamixup.recommended.model(resnet(cfg["width"], seed),
                                                                  seed=seed, budget=2.0))
            start = time.perf_counter()
            defended.fit(x[:n], y[:n], validation_data=(x[n:], y[n:]), **fit)
            defended_s = time.perf_counter() - start
    plain = float(np.mean(plain_s))
    return {"plain_s": plain, "recommended_s": defended_s, "ratio": defended_s / plain,
            "teachers": defended.targets.teachers,
            "teacher_epochs": [int(e) for e in defended.teacher_targets.epochs]}


def table(results):
    """The results as one markdown table."""
    lines = ["| check | setting | result |", "|---|---|---|"]
    for policy, ratios in results["training"].items():
        for v in VARIANTS[1:]:
            lines.append(f"| {v} / plain fit (ResNet-style CNN, batch "
                         f"{results['config']['batch_size']}) | {policy} | "
                         f"{ratios[v]['ratio']:.3f}× ({ratios[v]['step_ms']:.1f} vs "
                         f"{ratios['plain']['step_ms']:.1f} ms/step) |")
    s = results["shadows"]
    k = results["config"]["shadows"]
    lines.append(f"| {k} shadows together / one model | float32 | "
                 f"{s['together_s'] / s['one_s']:.2f}× ({s['together_s']:.1f} s vs "
                 f"{s['one_s']:.1f} s) |")
    lines.append(f"| {k} shadows one after another / one model | float32 | "
                 f"{s['sequential_s'] / s['one_s']:.2f}× ({s['sequential_s']:.1f} s) |")
    a = results["audit"]
    n = results["config"]["audit_examples"]
    lines.append(f"| default audit, {n} + {n} examples (no LiRA) | float32 | "
                 f"{a['audit_s']:.1f} s (best AUC {a['best_auc']:.3f}) |")
    r = results["recipe"]
    lines.append(f"| recommended.model (budget 2) whole fit / plain fit (ResNet-style CNN, "
                 f"{results['config']['recipe_images']} images, "
                 f"{results['config']['recipe_epochs']} epochs) | float32 | "
                 f"{r['ratio']:.2f}× ({r['recommended_s']:.1f} s vs {r['plain_s']:.1f} s; "
                 f"{r['teachers']} teachers, epochs {r['teacher_epochs']}) |")
    return "\n".join(lines)


def main(argv=None):
    parser = common.parser(__doc__, "out", dry_run="tiny sizes, every code path (any machine)")
    args = parser.parse_args(argv)
    cfg = DRY if args.dry_run else FULL
    devices = [d.name for d in tf.config.list_logical_devices() if d.device_type != "CPU"]
    print(f"devices: {devices or 'CPU only'}; TF {tf.__version__}, Keras {keras.__version__}"
          f"{'; DRY RUN (tiny sizes)' if args.dry_run else ''}", flush=True)
    results = {"config": {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()},
               "devices": devices, "dry_run": args.dry_run, "training": {}}
    for policy in cfg["policies"]:
        start = time.perf_counter()
        results["training"][policy] = training_ratios(cfg, policy)
        print(f"training ratios, {policy}: {time.perf_counter() - start:.0f} s", flush=True)
    start = time.perf_counter()
    results["shadows"] = shadow_times(cfg)
    print(f"shadow training: {time.perf_counter() - start:.0f} s", flush=True)
    results["audit"] = audit_time(cfg)
    print(f"audit: {results['audit']['audit_s']:.0f} s", flush=True)
    results["recipe"] = recipe_ratio(cfg)
    print(f"recommended setting: {results['recipe']['recommended_s']:.0f} s", flush=True)
    print()
    print(table(results))
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
