"""The `keras-adamixup` command line: arguments, help and error reporting.

A module of its own, outside the `keras_adamixup` package, so that
``keras-adamixup --help`` (and any usage error) answers at once: importing
the package imports Keras and TensorFlow (seconds, and TensorFlow's start-up
log lines), which only the commands need.

The imports go one way: this module imports `keras_adamixup.cli` (each
command: parsed options to library calls) when a command runs; nothing in
`keras_adamixup` imports this module.

Every user mistake ends in one line on stderr (``error: ...``) and exit
status 2; ``--traceback`` (before or after the command) shows the Python
traceback instead. The mistakes that need no TensorFlow to find (missing
files, an unwritable ``--out``, unknown attacks, ``--shadow-index`` without
shadows) are found by `validate` before TensorFlow is imported, so they
answer at once rather than after its start-up.
"""

import argparse
import json
import os
import re
import sys
import tempfile
import zipfile

DEMO_HELP = (
    "Train three models on scikit-learn digits (offline) and audit each: undefended, "
    "early stopping (the baseline) and the recommended setting (PlateauDecay mixing on "
    "SplitTeachers' out-of-fold targets, stopped by a PrivacyCheckpoint); with "
    "--paper-schedule also the paper's schedule alone (linear decay 0.4 to 0, dominant "
    "labels). Each audit runs TF "
    "Privacy's attacks, label-only attacks, LiRA and RMIA with shadow models; the "
    "comparison is written to --out (comparison.md, comparison_roc.png).")
TRACEBACK_HELP = "show the Python traceback of an error"
AUDIT_HELP = (
    "Audit a saved model: TF Privacy's membership-inference attacks, label-only "
    "attacks and, with --lira-shadows, LiRA and RMIA on members vs non-members; "
    "writes report.json, report.md and ROC plots to --out.")


def _version():
    """The package's version, read without importing it (and TensorFlow)."""
    try:
        from importlib import metadata

        return metadata.version("keras-adamixup")
    except Exception:  # not installed (a source tree on PYTHONPATH): read version.py
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "keras_adamixup",
                            "version.py")
        found = re.search(r'__version__ = "([^"]+)"', open(path, encoding="utf-8").read())
        return found.group(1) if found else "unknown"


def _positive(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _count(text):
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or a positive integer, got {text}")
    return value


def _indices(text):
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        values = None
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(
            f"must be shadow indices ≥ 0, comma-separated, got {text!r}")
    return values


def _shadows(text):
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0 or value % 2:
        raise argparse.ArgumentTypeError(f"must be 0 (no LiRA) or an even number ≥ 2, got {text}")
    return value


class _Help(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults in every option's help; descriptions kept as written.

    No "(default: ...)" for flags, options without a default, or help that
    already says its default.
    """

    def _get_help_string(self, action):
        text = action.help or ""
        if "(default" in text or action.default is None or isinstance(action.default, bool):
            return text
        return super()._get_help_string(action)


def _add_traceback(command):
    """``--traceback`` after the command too (``keras-adamixup audit ... --traceback``).

    Suppressed default: a command's parser must not reset the flag given
    before the command to False.
    """
    command.add_argument("--traceback", action="store_true", default=argparse.SUPPRESS,
                         help=TRACEBACK_HELP)


def build_parser():
    """The `argparse` parser of ``keras-adamixup`` (no TensorFlow imported).

    Example:

    ```python
    args = build_parser().parse_args(["demo", "--quick"])
    ```
    """
    parser = argparse.ArgumentParser(
        prog="keras-adamixup",
        description="Scheduled mixup against membership inference, and its audit.")
    parser.add_argument("--traceback", action="store_true", help=TRACEBACK_HELP)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_demo(sub)
    _add_audit(sub)
    return parser


def _add_demo(sub):
    demo = sub.add_parser("demo", help="train and audit three models on digits, compare them",
                          description=DEMO_HELP, formatter_class=_Help)
    _add_traceback(demo)
    demo.add_argument("--out", default="demo_out",
                      help="folder for the models, reports and the comparison")
    demo.add_argument("--epochs", type=_positive, default=60,
                      help="epochs planned for every model")
    demo.add_argument("--lira-shadows", type=_shadows, default=2,
                      help="LiRA/RMIA shadow models of each defence's own recipe (0: no LiRA)")
    demo.add_argument("--plain-shadows", type=_shadows, default=16,
                      help="shadow models of the undefended recipe (they train together)")
    demo.add_argument("--canaries", type=_count, default=20,
                      help="mislabelled and as many duplicated canaries, each in training "
                           "with probability 1/2 (0: none)")
    demo.add_argument("--seed", type=int, default=0,
                      help="seed of the member/non-member split, training and the audit")
    demo.add_argument("--thorough", action="store_true", help="every attack on every slice")
    demo.add_argument("--paper-schedule", action="store_true",
                      help="also train and audit the paper's schedule alone (about 30 s more)")
    demo.add_argument("--quick", action="store_true",
                      help="3 epochs, 2 shadows, no slow trained attacks (smoke test)")


def _add_audit(sub):
    aud = sub.add_parser("audit", help="audit a saved model on member/non-member data",
                         description=AUDIT_HELP, formatter_class=_Help)
    _add_traceback(aud)
    aud.add_argument("--model", required=True, help="a .keras file")
    aud.add_argument("--custom-objects", metavar="MODULE", action="append", default=None,
                     help="a Python file (path/to/layers.py) or module name (pkg.layers) "
                          "to import before loading --model: the one that registers its "
                          "custom layers (keras.saving.register_keras_serializable); "
                          "repeat for several")
    aud.add_argument("--data", required=True, help="digits | npz:PATH | tfds:NAME")
    aud.add_argument("--data-dir", default=None, help="tensorflow-datasets data_dir")
    aud.add_argument("--split", default=None,
                     help="split.json recorded at training time (default: a seeded split "
                          "of --data into members and non-members)")
    aud.add_argument("--out", required=True,
                     help="folder for report.json, report.md, the ROC plots and the LiRA "
                          "shadow cache (an interrupted audit resumes from it)")
    aud.add_argument("--attacks", default=None,
                     help="comma-separated subset of: threshold, threshold_entropy, "
                          "logistic_regression, mlp, random_forest, knn (default: all)")
    aud.add_argument("--outputs", choices=("auto", "logits", "probabilities"), default=None,
                     help="what the model outputs (default: decided from its last layer "
                          "and the values; the report records the evidence)")
    aud.add_argument("--thorough", action="store_true",
                     help="TF Privacy's grid search for every trained attack on every slice")
    aud.add_argument("--lira-shadows", type=_shadows, default=0,
                     help="LiRA/RMIA shadow models (even; 0: no LiRA); 16 or more for "
                          "trustworthy TPR at low FPR")
    aud.add_argument("--lira-epochs", type=_positive, default=20,
                     help="epochs of every shadow model")
    aud.add_argument("--lira-jobs", type=_positive, default=1,
                     help="train the shadow models in this many processes")
    aud.add_argument("--lira-batch-size", type=_positive, default=64,
                     help="batch size of the shadow models' training")
    aud.add_argument("--shadow-index", type=_indices, default=None,
                     help="only train these LiRA shadows (comma-separated) into --out's "
                          "cache and stop: one job of a job array")
    aud.add_argument("--lira-sequential", dest="lira_together", action="store_false",
                     help="train shadow models one after another, never together in "
                          "one compiled step")
    aud.add_argument("--seed", type=int, default=0,
                     help="seed of the split (without --split), the shadows' halves and "
                          "the label-only noise")


# keras_adamixup.audit.ALL_ATTACKS, written out so that --attacks is checked before
# TensorFlow is imported (tests/test_cli.py keeps the two equal)
ATTACKS = ("threshold", "threshold_entropy", "logistic_regression", "mlp", "random_forest",
           "knn")


def validate(args):
    """Refuses (`ValueError`) the mistakes in `args` that need no TensorFlow to find.

    Run by `main` before the command imports TensorFlow. Normalizes
    ``args.attacks`` to a tuple of names (`None`: all).

    Args:
        args: the parsed arguments (`build_parser`).
    """
    _check_writable(args.out)
    if args.command != "audit":
        return
    _check_shadow_index(args)
    _check_model_file(args.model)
    for source in args.custom_objects or []:
        if (source.endswith(".py") or os.sep in source) and not os.path.isfile(source):
            raise ValueError(f"Custom objects file {source!r} does not exist.")
    _check_data(args.data, args.split)
    if args.attacks is not None:
        names = tuple(name.strip() for name in args.attacks.split(",") if name.strip())
        unknown = [name for name in names if name not in ATTACKS]
        if unknown or not names:
            raise ValueError(f"Unknown attack {(unknown or [args.attacks])[0]!r} in --attacks; "
                             f"choose from {', '.join(ATTACKS)} (comma-separated).")
        args.attacks = names


def _check_writable(folder):
    """Fails now, not after the audit, when `--out` cannot be written.

    Args:
        folder: the `--out` folder (created if missing).
    """
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as error:
        raise ValueError(f"--out {folder!r} is not writable: {error.strerror or error}.") from None


def _check_shadow_index(args):
    """`--shadow-index` trains shadows: it needs `--lira-shadows`, and indices below it."""
    if args.shadow_index is None:
        return
    if not args.lira_shadows:
        raise ValueError("--shadow-index trains LiRA shadows: give --lira-shadows too.")
    bad = [i for i in args.shadow_index if i >= args.lira_shadows]
    if bad:
        raise ValueError(f"--shadow-index {bad[0]} is outside 0 … {args.lira_shadows - 1} "
                         f"(--lira-shadows {args.lira_shadows}).")


def _check_model_file(path):
    """`--model` must be a file, a zip when it ends in .keras (the messages of
    `keras_adamixup.audit.saved_model.load_model`)."""
    if not os.path.exists(path):
        raise ValueError(f"Model {path!r} does not exist.")
    if os.path.isdir(path):
        raise ValueError(f"Model {path!r} is a folder; give a .keras file.")
    if path.endswith(".keras") and not zipfile.is_zipfile(path):
        raise ValueError(f"Model {path!r} is not a readable .keras archive (truncated, or not "
                         "saved by `model.save(...keras)`).")
    if path.endswith((".h5", ".hdf5")) and zipfile.is_zipfile(path):
        raise ValueError(f"Model {path!r} is a .keras archive (a zip), not an HDF5 file: "
                         "rename it to end in .keras.")


def _check_data(spec, split):
    """`--data` (digits | npz:PATH | tfds:NAME) and `--split` (a JSON file) as far as
    files and syntax go (the messages of `keras_adamixup.audit.data`)."""
    if spec.startswith("npz:"):
        path = spec[4:]
        if not os.path.exists(path):
            raise ValueError(f"npz file {path!r} does not exist.")
        if not zipfile.is_zipfile(path):
            raise ValueError(f"{path!r} is not a readable .npz file (truncated or another "
                             "format).")
        if split:
            raise ValueError(f"A split file indexes a pool ('digits' or 'tfds:NAME'); "
                             f"{spec!r} already holds its members and non-members.")
    elif spec != "digits" and not (spec.startswith("tfds:") and len(spec) > 5):
        raise ValueError(f"Unknown data {spec!r}: use 'digits', 'npz:PATH' or 'tfds:NAME'.")
    if split:
        if not os.path.isfile(split):
            raise ValueError(f"Split file {split!r} does not exist.")
        try:
            with open(split, encoding="utf-8") as handle:
                json.load(handle)
        except (ValueError, UnicodeDecodeError) as error:
            raise ValueError(f"Split file {split!r} is not JSON ({error}).") from None


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_RAISED = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception): ")
_ERROR_ID = re.compile(r"^E\d\d: ")  # an error-table id (docs/guide/errors.md)


def _one_line(error):
    """The line of `error`'s message that says what went wrong.

    The first line, except for an error raised inside a traced TensorFlow
    function: its message starts with ``in user code:`` and a stack of
    frames, with the real cause (``ValueError: ...``) after the last frame;
    and for Keras' "Exception encountered when calling ..." the line after
    it, the cause. Terminal colour codes are removed.

    Args:
        error: the exception.
    """
    lines = [_ANSI.sub("", line).strip() for line in str(error).strip().splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        return ""
    if lines[0] == "in user code:":
        raised = [i for i, line in enumerate(lines) if _RAISED.match(line)]
        lines = lines[raised[-1]:] if raised else lines[-1:]
        if raised:
            lines[0] = _RAISED.sub("", lines[0])
    if lines[0].startswith("Exception encountered when calling") and len(lines) > 1:
        return lines[1]
    return lines[0]


def main(argv=None):
    """Parses `argv`, runs the command; returns the exit status.

    Args:
        argv: the arguments after the program's name (default: `sys.argv`).

    Example:

    ```python
    status = main(["audit", "--model", "m.keras", "--data", "digits", "--out", "o"])
    ```
    """
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        validate(args)  # before TensorFlow's start-up: a mistake answers at once
        from keras_adamixup import cli  # Keras and TensorFlow: only now (one-way import)

        cli.COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - one line for every mistake
        if args.traceback:
            raise
        known = (ValueError, ImportError, OSError, json.JSONDecodeError)
        message = _one_line(error)
        if not isinstance(error, known):
            message = (f"unexpected {type(error).__name__}: {message} (run with "
                       "--traceback for details)")
        elif isinstance(error, OSError) and error.filename and error.strerror:
            message = f"{error.filename}: {error.strerror}"
        if isinstance(error, known) and not _ERROR_ID.match(message):
            message = f"E31: {message}"  # the command line's own id, unless it has one
        print(f"error: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
