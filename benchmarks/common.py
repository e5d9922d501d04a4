"""The command-line arguments the benchmark scripts share, and where they run.

Plain Python, no TensorFlow: the timing scripts parse their arguments before
they choose devices, and `render_results` imports no TensorFlow at all.

Every script builds its parser with `parser`, naming the shared arguments it
takes (and its own defaults), then adds its own:

```python
parser = common.parser(__doc__, "data", "seed", members=4000, quick="3 epochs")
parser.add_argument("--canaries", type=int, default=50)
args = parser.parse_args(argv)
```
"""

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# the data sets that are not shipped (MNIST, Adult) live beside the checkout
SHARED = os.path.join(ROOT, "..", "shared", "data")

_DATA_HELP = ("digits (offline), mnist, adult or cifar10 (from ../shared/data), npz:PATH "
              "or tfds:NAME")
# name: (default, type, help); a `bool` type is a flag whose default is its help text
SHARED_ARGUMENTS = {
    "data": ("digits", str, _DATA_HELP),
    "members": (800, int, "members (as many non-members; a quarter as many validation rows)"),
    "epochs": (60, int, "planned training epochs"),
    "width": (256, int, "hidden units per layer of the benchmarks' MLP (images: the CNN's "
                        "channels, 32 when left at 256)"),
    "seed": (0, int, "the seed of the split, the models and the recipes"),
    "seeds": ("0", str, "comma-separated seeds, one run each"),
    "defences": (None, str, "comma-separated recipe names (benchmarks.names)"),
    "recipes": (None, str, "comma-separated recipe names (benchmarks.names)"),
    "repeats": (3, int, "timed repeats"),
    "rounds": (3, int, "interleaved timing rounds"),
    "images": (12800, int, "training images"),
    "batch_size": (128, int, "batch size"),
    "steps": (20, int, "steps per timed round"),
    "out": (None, str, "where the results are written"),
    "merge": (None, str, "instead of running: one summary of the runs.json of earlier "
                         "outputs (DIR,DIR; a (defence, seed) found again in a later folder "
                         "replaces the earlier)"),
    "quick": ("a smoke test at tiny sizes", bool, None),
    "dry_run": ("tiny sizes, every code path", bool, None),
}


def parser(doc, *names, **defaults):
    """An argument parser with some of the shared arguments, described by `doc`.

    Args:
        doc: the script's docstring; its first line describes the parser.
        *names: shared arguments (keys of `SHARED_ARGUMENTS`) with their
            usual defaults.
        **defaults: shared arguments with this script's default instead (for
            a flag such as ``quick``: its help text, what the flag does here).

    Returns:
        An `argparse.ArgumentParser`, to which the script adds its own
        arguments.

    Example:

    ```python
    parser = common.parser(__doc__, "data", "width", members=4000, quick="5 epochs")
    ```
    """
    made = argparse.ArgumentParser(description=doc.splitlines()[0])
    for name in list(names) + list(defaults):
        if name not in SHARED_ARGUMENTS:
            raise ValueError(f"{name!r} is not a shared argument; shared: "
                             f"{', '.join(SHARED_ARGUMENTS)}.")
        default, kind, help_text = SHARED_ARGUMENTS[name]
        default = defaults.get(name, default)
        flag = "--" + name.replace("_", "-")
        if kind is bool:
            made.add_argument(flag, action="store_true", help=default)
        else:
            made.add_argument(flag, type=kind, default=default, help=help_text)
    return made


def integers(text):
    """The comma-separated integers of `text` (``--seeds 0,1,2``).

    Args:
        text: e.g. ``"0,1,2"``.

    Example:

    ```python
    assert common.integers("0,1,2") == [0, 1, 2]
    ```
    """
    return [int(part) for part in str(text).split(",")]


def module_command(name, *arguments):
    """The command line that runs the benchmark `name` as a module in a child process.

    Run it with ``cwd=common.ROOT`` (the package `benchmarks` is found there).

    Args:
        name: a module of `benchmarks` (e.g. ``"overhead"``).
        *arguments: its command-line arguments (strings).

    Example:

    ```python
    subprocess.run(common.module_command("overhead", "--child", "plain"), cwd=common.ROOT)
    ```
    """
    return [sys.executable, "-m", f"benchmarks.{name}", *arguments]
