"""The `keras-adamixup` commands, `demo` and `audit`: parsed arguments to library calls.

The parser, `--help` and the one-line error reporting live in the top-level
module `keras_adamixup_cli` (the console script's entry point), which imports
this module, and with it Keras and TensorFlow, only when a command runs.
This module never imports it back (but for `python -m keras_adamixup.cli`, which
runs it): the library does not depend on its
command line. What a command does is in the library
(`keras_adamixup.audit.saved_model`, `keras_adamixup.demo`); here each
option only becomes an argument. The arguments arrive checked as far as
that needs no TensorFlow (`keras_adamixup_cli.validate`: files, `--out`,
attack names, `--shadow-index`).

Example:

```python
import keras_adamixup_cli

keras_adamixup_cli.main(["audit", "--model", "m.keras", "--data", "digits",
                         "--out", "audit_out"])
```
"""

import os


def _lira_recipes(args, model, population, holdout):
    """LiRA's shadow recipes from the `audit` options (`recipes_from_model`).

    Args:
        args: the parsed `audit` arguments.
        model: the audited model.
        population: `(x, y)` the shadows are drawn from.
        holdout: `(x, y)` rows outside it (the split's leftovers), or `None`.
    """
    from keras_adamixup.audit import saved_model

    return saved_model.recipes_from_model(
        model, args.lira_shadows, os.path.join(args.out, "lira_cache"),
        epochs=args.lira_epochs, batch_size=args.lira_batch_size, jobs=args.lira_jobs,
        together="auto" if args.lira_together else False, population=population,
        holdout=holdout, seed=args.seed)


def audit(args):
    """`keras-adamixup audit`: audits `--model`, or trains `--shadow-index` shadows.

    Args:
        args: the parsed `audit` arguments (`keras_adamixup_cli.build_parser`).
    """
    from keras_adamixup import audit as audit_lib
    from keras_adamixup.audit import saved_model

    model = saved_model.load_model(args.model, args.custom_objects)
    members, nonmembers, holdout = saved_model.load_members(
        args.data, args.split, data_dir=args.data_dir, seed=args.seed)
    lira = None
    if args.lira_shadows:
        population = saved_model.shadow_population(members, nonmembers)
        lira = _lira_recipes(args, model, population, holdout)
    if args.shadow_index is not None:
        count = audit_lib.train_shadows(members, nonmembers, lira, args.shadow_index,
                                        seed=args.seed)
        print(f"shadow(s) {','.join(map(str, args.shadow_index))}: {count} cached in "
              f"{args.out} (run the audit without --shadow-index once every job is done)")
        return
    attacks = args.attacks or audit_lib.ALL_ATTACKS  # a tuple (keras_adamixup_cli.validate)
    if isinstance(attacks, str):
        attacks = tuple(attacks.split(","))
    report = audit_lib.run_audit(model, members, nonmembers, attacks=attacks, lira=lira,
                                 thorough=args.thorough, seed=args.seed,
                                 outputs=args.outputs, progress=True,
                                 metadata={"data": args.data, "split_file": args.split})
    paths = report.save(args.out)
    print(report.summary())
    print("\nwritten: " + ", ".join(paths.values()))


def demo(args):
    """`keras-adamixup demo`: `keras_adamixup.demo.run_demo` with the options.

    Args:
        args: the parsed `demo` arguments (`keras_adamixup_cli.build_parser`).
    """
    from keras_adamixup.demo import run_demo

    if args.quick:
        from keras_adamixup.audit import CHEAP_ATTACKS

        print("demo --quick: 3 epochs, a smoke test of the whole flow. The teachers' "
              "warning E58 (still improving when their epochs ran out) is expected here; "
              "run `keras-adamixup demo` without --quick for the comparison that counts.")

        run_demo(args.out, epochs=3, lira_shadows=2, seed=args.seed, attacks=CHEAP_ATTACKS,
                 plain_shadows=2, canaries=10, paper_schedule=args.paper_schedule)
    else:
        run_demo(args.out, epochs=args.epochs, lira_shadows=args.lira_shadows, seed=args.seed,
                 thorough=args.thorough, plain_shadows=args.plain_shadows,
                 canaries=args.canaries, paper_schedule=args.paper_schedule)


COMMANDS = {"demo": demo, "audit": audit}


if __name__ == "__main__":  # python -m keras_adamixup.cli: the same as keras-adamixup
    import sys

    import keras_adamixup_cli

    sys.exit(keras_adamixup_cli.main())
