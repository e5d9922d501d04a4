"""The demo: undefended vs AdaMixup on scikit-learn digits, audited and compared.

Runs offline. Half of the digits (drawn with a recorded seed) train the
models, the other half are the non-members. Both models go through the full
audit (TF Privacy attacks, label-only attacks, LiRA with shadow models
trained by the same recipe as the audited model) and the comparison is written
to the output folder:

    out/split.json                  the member/non-member split (indices, seed)
    out/undefended.keras, out/adamixup.keras
    out/<model>/report.{json,md}, roc.png, histograms.png
    out/comparison.{md,json}, comparison_roc.png
"""

import os
import time

import keras

import keras_adamixup
from keras_adamixup import schedules


def digits_mlp(seed=None):
    """A small MLP that overfits 900 digits, as real models overfit."""
    if seed is not None:
        keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(10),
        ],
        name="digits_mlp",
    )


def _compile(model):
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def undefended_factory():
    return _compile(digits_mlp())


def adamixup_factory(seed=0):
    model = keras_adamixup.AdaMixupModel(
        digits_mlp(), schedule=schedules.LinearDecay(start=0.4, end=0.0),
        label_mode="dominant", seed=seed, name="adamixup",
    )
    return _compile(model)


def run_demo(out="demo_out", epochs=60, batch_size=64, lira_shadows=4, seed=0,
             thorough=False, attacks=None, log=print):
    """Trains, audits and compares; returns `(reports, comparison_table)`.

    `attacks` defaults to all six TF Privacy attacks.
    """
    from keras_adamixup import audit

    os.makedirs(out, exist_ok=True)
    members_nonmembers, split = audit.data.load_digits(seed)
    (x_m, y_m), (x_n, y_n) = members_nonmembers
    split.to_json(os.path.join(out, "split.json"))
    log(f"digits: {len(x_m)} members / {len(x_n)} non-members (split seed {seed}), "
        f"{epochs} epochs, LiRA with {lira_shadows} shadow models per model")
    fit_kwargs = {"epochs": epochs, "batch_size": batch_size, "verbose": 0}
    recipes = {
        "undefended": undefended_factory,
        "adamixup": lambda: adamixup_factory(seed),
    }
    reports = []
    for name, factory in recipes.items():
        keras.utils.set_random_seed(seed)
        model = factory()
        start = time.perf_counter()
        model.fit(x_m, y_m, **fit_kwargs)
        log(f"[{name}] trained in {time.perf_counter() - start:.1f} s; auditing ...")
        model.save(os.path.join(out, f"{name}.keras"))
        lira = None
        if lira_shadows:
            lira = {"model_factory": factory, "num_shadows": lira_shadows,
                    "fit_kwargs": fit_kwargs, "cache_dir": os.path.join(out, name, "lira_cache"),
                    "progress": False}
        report = audit.run_audit(
            model, *members_nonmembers, name=name, lira=lira, thorough=thorough, seed=seed,
            attacks=attacks or audit.ALL_ATTACKS,
            metadata={"split": {"source": "digits", "seed": seed,
                                "file": os.path.join(out, "split.json")},
                      "recipe": {"epochs": epochs, "batch_size": batch_size}})
        report.save(os.path.join(out, name))
        h = report.headline()
        log(f"[{name}] test acc {h['test_accuracy']:.4f}, best AUC {h['best_auc']:.4f} "
            f"({h['best_auc_attack']}), TPR@1%FPR {h['best_tpr_at_0.01_fpr']:.4f}, "
            f"audit {report.metadata['seconds']:.1f} s")
        reports.append(report)
    table = audit.compare(reports, out)
    log("\n" + table)
    log(f"\nwritten to {out}/ (comparison.md, comparison_roc.png, <model>/report.md)")
    return reports, table
