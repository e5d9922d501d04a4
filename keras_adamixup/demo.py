"""The demo: no defence, early stopping and the recommended setting on digits, audited.

Runs offline. The digits are split with a recorded seed into members (40 %,
the training data), as many non-members, and a monitor hold-out (the
remaining 20 %, never audited). Three models, the same MLP:

- ``undefended``: trained for all 60 epochs;
- ``early_stopping``: Keras' `EarlyStopping` on the hold-out's loss
  (patience 3, best weights restored), the baseline every defence must beat;
- ``recommended``, **the recommended setting** (`keras_adamixup.recommended`):
  out-of-fold targets (`SplitTeachers`: 8 teachers, each member left out
  of 1) with mixing that follows training on top (`PlateauDecay(0.4)`: cut
  when the hold-out loss stops falling), a `PrivacyMonitor` and a
  `PrivacyCheckpoint` (patience 5, accuracy budget 1 point) that restores
  the epoch with the lowest hold-out loss (docs/results.md);
- with ``paper_schedule=True`` (``--paper-schedule``), also ``adamixup``: the
  paper's schedule alone, strength decaying linearly 0.4 → 0, dominant
  labels, all 60 epochs.

Every model also trains on canaries (`audit.canaries`): 20 mislabelled
examples and 20 duplicated ones (a mislabelled example and a near-copy), each
in its training set with probability ½, drawn from the members.

Each goes through the full audit (TF Privacy attacks, label-only and hinge
attacks, LiRA and RMIA with 2 shadow models trained by the model's own
recipe, callbacks included (``--lira-shadows 8`` for more), and, for the
defended models, 16 more from the undefended recipe, trained together: ``lira_online_plain``,
``rmia_online_plain``, ...; the canaries scored in vs out per kind, with an
empirical ε lower bound) and the comparison is written to the output folder:

    out/split.json                  the member/non-member split (indices, seed)
    out/<model>.keras
    out/<model>/report.{json,md}, roc.png, histograms.png
    out/recommended/trajectory.png     strength and monitored AUC per epoch
    out/comparison.{md,json}, comparison_roc.png
"""

import dataclasses
import os

import keras
import numpy as np

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


TARGET_AUC = 0.55


def adamixup_target_factory(seed=0):
    model = keras_adamixup.AdaMixupModel(
        digits_mlp(), schedule=schedules.PrivacyTarget(target_auc=TARGET_AUC),
        label_mode="dominant", seed=seed, name="adamixup_target",
    )
    return _compile(model)


def split_digits(seed=0):
    """`(members, nonmembers, holdout, split)`: 40 % / 40 % / 20 % of the digits."""
    from keras_adamixup import audit

    x, y = audit.data.digits_pool()
    size = int(round(len(x) * 0.4))
    split = audit.data.MembershipSplit.draw(len(x), seed=seed, member_fraction=0.4,
                                            nonmember_size=size, source="digits")
    members, nonmembers = split.apply(x, y)
    rest = np.setdiff1d(np.arange(len(x)), np.concatenate([split.members, split.nonmembers]))
    return members, nonmembers, (x[rest], y[rest]), split


def run_demo(out="demo_out", epochs=60, batch_size=64, lira_shadows=2, seed=0,
             thorough=False, attacks=None, log=print, progress=True, canaries=20,
             plain_shadows=16, paper_schedule=False):
    """Trains, audits and compares; returns `(reports, comparison_table)`.

    `attacks` defaults to all six TF Privacy attacks. `canaries`: units of
    each of two kinds (mislabelled, duplicate) planted from the members,
    each in training with probability ½ (0: none). `plain_shadows`: the
    undefended recipe's shadows (they train together, so 16 cost little);
    `lira_shadows`: each defended recipe's own. `paper_schedule`: also the
    paper's linear schedule alone (`adamixup`; about 30 s more). The loop is
    `keras_adamixup.experiment.train_and_audit`, shared with the examples.
    """
    from keras_adamixup import audit
    from keras_adamixup import recipes as recipes_table
    from keras_adamixup.experiment import train_and_audit

    os.makedirs(out, exist_ok=True)
    (x_m, y_m), nonmembers, holdout, split = split_digits(seed)
    planted = None
    if canaries:
        x_m, y_m, planted = audit.canaries.plant(x_m, y_m, count=canaries,
                                                 kinds=("mislabelled", "duplicate"), seed=seed)
        # split.json: the ordinary members (the rows the canaries came from are canaries now)
        drawn = set(np.asarray(split.members)[planted.source[planted.source >= 0]].tolist())
        split = dataclasses.replace(split, members=[i for i in split.members if i not in drawn])
    split.to_json(os.path.join(out, "split.json"))
    log(f"digits: {len(x_m)} members / {len(nonmembers[0])} non-members / "
        f"{len(holdout[0])} monitor hold-out (split seed {seed}), {epochs} epochs, "
        f"LiRA and RMIA with {plain_shadows} undefended shadow models and {lira_shadows} "
        "of each defence's own recipe"
        + (f"; {canaries} mislabelled and {canaries} duplicated canaries, each in with "
           "probability 1/2" if canaries else ""))
    fit_kwargs = {"epochs": epochs, "batch_size": batch_size, "verbose": 0}
    # the package's table of recipes (keras_adamixup.recipes), on the digits MLP
    setting = recipes_table.Setting(base=digits_mlp, fit_kwargs=fit_kwargs, holdout=holdout,
                                    seed=seed)
    recipes = [recipes_table.undefended(setting), recipes_table.early_stopping(setting)]
    if paper_schedule:
        recipes.append(recipes_table.adamixup(setting))
    recipes.append(recipes_table.recommended(
        setting, trajectory=os.path.join(out, "recommended", "trajectory.png")))
    options = audit.AuditOptions(attacks=attacks or audit.ALL_ATTACKS, thorough=thorough,
                                 seed=seed, progress=progress)
    metadata = {"split": {"source": "digits", "seed": seed,
                          "file": os.path.join(out, "split.json"),
                          "monitor_holdout": "the pool indices in neither list"},
                "recipe": {"epochs": epochs, "batch_size": batch_size}}
    reports, table = train_and_audit(recipes, (x_m, y_m), nonmembers, out,
                                     lira_shadows=lira_shadows, options=options, seed=seed,
                                     progress=progress, log=log, metadata=metadata,
                                     baseline_shadows=plain_shadows, canaries=planted)
    log("\n" + table)
    log(f"\nwritten to {out}/ (comparison.md, comparison_roc.png, <model>/report.md)")
    return reports, table
