"""Shared by the examples: train undefended and defended models, audit both, compare.

Each example provides the data (members, non-members, test), a model builder
and the fit arguments; `train_and_audit` trains

- ``undefended``: the base model with plain `fit`;
- ``adamixup``: the same architecture in `AdaMixupModel` with the paper's
  linear decay (partner share 0.4 → 0, dominant labels);

audits each with `keras_adamixup.audit.run_audit` (members vs non-members)
and prints one comparison table (`keras_adamixup.audit.compare`).
"""

import os
import time

import keras

import keras_adamixup
from keras_adamixup import audit


def _compiled(model, loss):
    model.compile(keras.optimizers.Adam(1e-3), loss, metrics=["accuracy"])
    return model


def train_and_audit(build, members, nonmembers, test, *, loss, epochs, batch_size, out,
                    seed=0, quick=False, lira_shadows=0):
    """Returns ``{name: AuditReport}`` and writes reports + comparison to `out`."""
    factories = {
        "undefended": lambda: _compiled(build(), loss),
        "adamixup": lambda: _compiled(keras_adamixup.AdaMixupModel(
            build(), schedule=keras_adamixup.schedules.LinearDecay(0.4, 0.0),
            label_mode="dominant", seed=seed, name="adamixup"), loss),
    }
    fit_kwargs = {"epochs": epochs, "batch_size": batch_size, "verbose": 0}
    reports = {}
    for name, factory in factories.items():
        keras.utils.set_random_seed(seed)
        model = factory()
        start = time.perf_counter()
        model.fit(*members, validation_data=test, **fit_kwargs)
        print(f"{name}: trained in {time.perf_counter() - start:.0f} s; auditing ...",
              flush=True)
        lira = None
        if lira_shadows:
            lira = {"model_factory": factory, "num_shadows": lira_shadows,
                    "fit_kwargs": fit_kwargs, "progress": not quick}
        report = audit.run_audit(
            model, members, nonmembers, name=name, seed=seed, lira=lira,
            attacks=audit.CHEAP_ATTACKS if quick else audit.ALL_ATTACKS,
            label_only_queries=2 if quick else 16,
            metadata={"test_accuracy_on_held_out_test": float(
                model.evaluate(*test, verbose=0)[1])})
        report.save(os.path.join(out, name))
        reports[name] = report
    print()
    print(audit.compare(list(reports.values()), out))
    print(f"\nReports and plots: {out}/")
    return reports


def members_and_nonmembers(x, y, members, seed):
    """Two disjoint seeded draws of `members` rows each (at most half of `x`)."""
    import numpy as np

    order = np.random.default_rng(seed).permutation(len(x))
    n = min(members, len(x) // 2)
    return (x[order[:n]], y[order[:n]]), (x[order[n:2 * n]], y[order[n:2 * n]])


def subsample(data, n, seed):
    """`n` rows of `(x, y)` drawn without replacement (all when n is larger)."""
    import numpy as np

    x, y = data
    if n >= len(x):
        return x, y
    pick = np.random.default_rng(seed).choice(len(x), n, replace=False)
    return x[pick], y[pick]
