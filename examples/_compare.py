"""Shared by the examples: the undefended and defended recipes, trained and audited.

Each example provides the data (members, non-members, test), a model builder
and the fit arguments; `train_and_audit` makes two recipes

- ``undefended``: the base model with plain `fit`;
- ``recommended``: the same architecture with the package's recommended
  setting (`keras_adamixup.recommended.model`: split teachers on an MLP, the
  image setting on a CNN), its monitor on a hold-out; or another recipe of
  `keras_adamixup.recipes` (``defence="adamixup"``: the paper's linear decay);

and runs them through `keras_adamixup.experiment.train_and_audit` (the loop
the demo uses too): train, save, audit members vs non-members (LiRA/RMIA with
each recipe's own shadows, and the undefended recipe's for the defended
model), one comparison table.
"""

import keras

from keras_adamixup import audit
from keras_adamixup import recipes as recipes_table
from keras_adamixup.experiment import train_and_audit as run_recipes


def _compiled(model, loss):
    model.compile(keras.optimizers.Adam(1e-3), loss, metrics=["accuracy"])
    return model


def train_and_audit(build, members, nonmembers, test, *, loss, epochs, batch_size, out,
                    seed=0, quick=False, lira_shadows=0, defence="recommended", holdout=None):
    """Returns ``{name: AuditReport}`` and writes reports + comparison to `out`.

    `defence` is a key of `keras_adamixup.recipes.RECIPES` ("recommended",
    which needs `holdout`, rows used neither for training nor in the audit,
    for its monitor; "adamixup": the paper's schedule).
    """
    fit_kwargs = {"epochs": epochs, "batch_size": batch_size, "verbose": 0}
    # the package's table of recipes: no defence, and the defence compared
    setting = recipes_table.Setting(base=build, fit_kwargs=fit_kwargs, holdout=holdout,
                                    seed=seed, compile=lambda model: _compiled(model, loss))
    recipes = [recipes_table.undefended(setting), recipes_table.recipe(defence, setting)]
    options = audit.AuditOptions(
        attacks=audit.CHEAP_ATTACKS if quick else audit.ALL_ATTACKS,
        label_only_queries=2 if quick else 16, seed=seed, progress=not quick)
    reports, table = run_recipes(
        recipes, members, nonmembers, out, lira_shadows=lira_shadows, options=options,
        seed=seed, progress=not quick,
        metadata=lambda recipe, model: {"test_accuracy_on_held_out_test": float(
            model.evaluate(*test, verbose=0)[1])})
    print()
    print(table)
    print("(test acc: the non-members' accuracy; on the held-out test set: " + ", ".join(
        f"{r.name} {r.metadata['test_accuracy_on_held_out_test']:.4f}" for r in reports) + ")")
    print(f"\nReports and plots: {out}/")
    return {r.name: r for r in reports}


def members_and_nonmembers(x, y, members, seed, holdout=0):
    """Two disjoint seeded draws of `members` rows each (at most half of `x`), and
    with ``holdout > 0`` a third of at most `holdout` rows from those left."""
    import numpy as np

    order = np.random.default_rng(seed).permutation(len(x))
    n = min(members, len(x) // 2)
    parts = [order[:n], order[n:2 * n]] + ([order[2 * n:2 * n + holdout]] if holdout else [])
    return tuple((x[part], y[part]) for part in parts)


def subsample(data, n, seed):
    """`n` rows of `(x, y)` drawn without replacement (all when n is larger)."""
    import numpy as np

    x, y = data
    if n >= len(x):
        return x, y
    pick = np.random.default_rng(seed).choice(len(x), n, replace=False)
    return x[pick], y[pick]
