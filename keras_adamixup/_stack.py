"""The stack level of the user's line, for `warnings.warn`.

A warning points at the line that caused it. The package's warnings fire deep
in its own code, in Keras' `fit` or in a callback, and the path there changes
with how the model was made (directly, by `recommended.model`, by
`keras.models.load_model`): a fixed ``stacklevel`` is right for one path only.
`user_level` finds the first frame outside this package and Keras instead.
"""

import inspect


def user_level():
    """The `warnings.warn` stack level of the first frame outside this package and
    Keras (1: the line that calls `warnings.warn`, when nothing else is found).

    Example:

    ```python
    warnings.warn("E66: ...", UserWarning, stacklevel=_stack.user_level())
    ```
    """
    level, frame = 1, inspect.currentframe().f_back
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if not (name in ("keras", "keras_adamixup")
                or name.startswith(("keras.", "keras_adamixup."))):
            return level
        frame, level = frame.f_back, level + 1
    return 1
