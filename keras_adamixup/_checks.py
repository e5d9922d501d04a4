"""Argument checks, in one place, with one rule.

The rule: a value of the wrong *type* (a string where a number is expected, a
bool or float where an int is expected) raises `TypeError`; a value of the
right type that is out of range, NaN or not among the choices raises
`ValueError`. Every message names the argument in backticks and shows what was
given. Every module of the package checks its arguments through these
functions (none calls another module's private checks).
"""

import math
import numbers


def _coded(code, message):
    """`message` led by its error-table id (``"E10: ..."``) when `code` is given."""
    return f"{code}: {message}" if code else message


def choice(name, value, choices, code=None):
    """`value` must be one of `choices` (strings); returns it. `code`: the
    error-table id (``"E10"``) the message starts with, if any."""
    if not isinstance(value, str):
        raise TypeError(_coded(code, f"`{name}` must be one of {tuple(choices)}, "
                                     f"got {value!r}."))
    if value not in choices:
        raise ValueError(_coded(code, f"`{name}` must be one of {tuple(choices)}, "
                                      f"got {value!r}."))
    return value


def word_or_positive(name, value, words, code=None):
    """One of `words` (a word or a tuple of them), or a finite number > 0 as a float
    (`LossFloor`'s floor, `LossTarget`'s target: ``"holdout"`` or a value). `code` as
    in `choice`."""
    words = (words,) if isinstance(words, str) else tuple(words)
    if isinstance(value, str):
        if value in words:
            return value
        named = " or ".join(repr(word) for word in words)
        try:
            given = float(value)
        except ValueError:
            raise ValueError(_coded(code, f"`{name}` must be {named} or a number > 0, "
                                          f"got {value!r}.")) from None
        raise TypeError(_coded(code, f"`{name}` must be {named} or a number > 0, got the "
                                     f"string {value!r}: give the number, {given:g}."))
    return number(name, value, low=0.0, low_open=True, code=code)


def real(name, value):
    """Any real number (NaN included) as a float; `TypeError` (E47) for anything else.

    Args:
        name: the argument's name, for the message.
        value: what was given.
    """
    if isinstance(value, (bool, str, bytes)):
        raise TypeError(_wrong_type(name, value, "a number"))
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(_wrong_type(name, value, "a number")) from None


def _wrong_type(name, value, kind):
    """E47: the message for a value of the wrong type, with what to pass instead.

    Args:
        name: the argument's name.
        value: what was given.
        kind: what it must be (``"a number"``, ``"an int"``, ...).
    """
    message = f"E47: `{name}` must be {kind}, got {value!r} (type {type(value).__name__})"
    hint = _hint(name, value, whole="int" in kind)
    return message + (f": pass {hint}." if hint else ".")


def _hint(name, value, whole):
    """What to pass instead of `value` when it reads as a number (``"10"``,
    ``32.0`` for an int), else `None`."""
    if isinstance(value, str):
        try:
            parsed = float(value.strip())
        except ValueError:
            return None
        if whole and not parsed.is_integer():
            return None
        return f"{name}={int(parsed) if whole else value.strip()} (a number, not a string)"
    if whole and isinstance(value, float) and value.is_integer():
        return f"{name}={int(value)} (an int)"
    return None


def number(name, value, low=None, high=None, *, low_open=False, high_open=False, code=None):
    """A finite real number in ``[low, high]`` (open ends with `low_open` / `high_open`); a float.
    `code`: the error-table id a wrong value's message starts with, if any (a
    wrong type is E47)."""
    result = real(name, value)
    if math.isnan(result) or math.isinf(result):
        raise ValueError(_coded(code, f"`{name}` must be finite, got {result}."))
    below = low is not None and (result <= low if low_open else result < low)
    above = high is not None and (result >= high if high_open else result > high)
    if below or above:
        if high is None:  # one-sided: "> 0", "≥ 1"
            bound = f"{'>' if low_open else '≥'} {low:g}"
        else:
            left, right = "(" if low_open else "[", ")" if high_open else "]"
            bound = f"in {left}{low}, {high}{right}"
        raise ValueError(_coded(code, f"`{name}` must be {bound}, got {result}."))
    return result


def integer(name, value, low=None, allow_none=False, code=None):
    """An int (a Python or NumPy integer, not a bool) ≥ `low`, as an `int`;
    `None` passes when `allow_none`.

    Args:
        name: the argument's name, for the message.
        value: what was given.
        low: the least value allowed, or `None`.
        allow_none: whether `None` is allowed.
        code: the error-table id a value below `low` starts its message with,
            if any (a wrong type is E47).
    """
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(_wrong_type(name, value, "an int or None" if allow_none else "an int"))
    value = int(value)
    if low is not None and value < low:
        raise ValueError(_coded(code, f"`{name}` must be ≥ {low}, got {value}."))
    return value


def positive_int(name, value, allow_none=False, code=None):
    """An int ≥ 1 (or `None` when `allow_none`); `code` as in `integer`."""
    return integer(name, value, low=1, allow_none=allow_none, code=code)


def boolean(name, value):
    """`True` or `False` (not 1, 0 or a string); returns it.

    Args:
        name: the argument's name, for the message.
        value: what was given.
    """
    if not isinstance(value, bool):
        raise TypeError(_wrong_type(name, value, "a bool (True or False)"))
    return value


def seed(value):
    """A seed: an int or `None`."""
    return integer("seed", value, allow_none=True)


def jitter(value, coefficient):
    """Relative jitter of the partner share: a number in [0, 1], share only."""
    value = number("jitter", value, 0.0, 1.0)
    if value > 0.0 and coefficient != "share":
        raise ValueError(
            "`jitter` only applies to coefficient='share'; Beta coefficients "
            f"are already random. Got jitter={value}, coefficient='{coefficient}'."
        )
    return value


def together(value):
    """How models train, for LiRA's shadows and `SplitTeachers`' teachers:
    ``"auto"``, `True` or `False` (a bool, not 1 or 0); returns it."""
    if not (value == "auto" or isinstance(value, bool)):
        raise ValueError(f"`together` must be 'auto', True or False, got {value!r}.")
    return value


FIT_VERBOSE = ("auto", 0, 1, 2)


def fit_arguments(epochs, batch_size=None, verbose="auto", kwargs=None):
    """Keras' own `fit` arguments, checked before Keras reads them.

    Keras answers a wrong type deep in its internals (``batch_size=32.0``: a
    TensorFlow op's dtype error; ``validation_data=x_val``: "None values not
    supported" at the first validation). Wrong types are E47, wrong values
    and `validation_data` without labels E46.

    Args:
        epochs: `fit`'s ``epochs`` (an int ≥ 1).
        batch_size: `fit`'s ``batch_size`` (an int ≥ 1 or `None`).
        verbose: ``"auto"``, 0, 1 or 2.
        kwargs: `fit`'s other keyword arguments (``validation_data``,
            ``validation_split``, ``initial_epoch``, ``steps_per_epoch``,
            ``validation_steps``, ``validation_freq``, ``shuffle``), or `None`.
    """
    positive_int("epochs", epochs, code="E39")
    positive_int("batch_size", batch_size, allow_none=True)
    if isinstance(verbose, bool) or verbose not in FIT_VERBOSE or (
            isinstance(verbose, str) and verbose != "auto"):
        raise ValueError(f"E46: `verbose` must be one of {FIT_VERBOSE}, got {verbose!r}.")
    kwargs = kwargs or {}
    if kwargs.get("validation_split") is not None:
        validation_split(kwargs["validation_split"])
    validation_data(kwargs.get("validation_data"))
    integer("initial_epoch", kwargs.get("initial_epoch", 0), low=0)
    for name in ("steps_per_epoch", "validation_steps"):
        positive_int(name, kwargs.get(name), allow_none=True)
    positive_int("validation_freq", kwargs.get("validation_freq", 1))
    shuffle = kwargs.get("shuffle", True)
    if not (isinstance(shuffle, bool) or shuffle == "batch"):
        raise TypeError(f"E47: `shuffle` must be True, False or 'batch', got {shuffle!r}.")


def validation_split(value):
    """E46: `fit`'s ``validation_split``, a number in [0, 1) (the share of rows
    kept for validation); returns it as a float.

    Args:
        value: what was given.
    """
    value = real("validation_split", value)
    if not 0.0 <= value < 1.0:
        raise ValueError(
            f"E46: `validation_split` must be in [0, 1), the share of the rows kept for "
            f"validation, got {value}: e.g. validation_split=0.2 for a fifth.")
    return value


def validation_data(value):
    """E46: `fit`'s ``validation_data``: `None`, ``(x_val, y_val)``,
    ``(x_val, y_val, sample_weight)``, or a dataset / generator of such batches.

    Inputs alone (an array, a dict of arrays, a one-element tuple) are
    refused: a validation loss needs the labels.

    Args:
        value: what was given.
    """
    if value is None:
        return
    if isinstance(value, (tuple, list)):
        if len(value) in (2, 3) and value[1] is not None:
            return
        given = (f"a {type(value).__name__} of {len(value)} element(s)"
                 if len(value) not in (2, 3) else "labels `None`")
    elif isinstance(value, dict) or hasattr(value, "shape"):
        given = f"inputs without labels ({type(value).__name__})"
    else:
        return  # a dataset, a PyDataset or a generator: Keras reads its batches
    raise ValueError(
        f"E46: `validation_data` must be (x_val, y_val) or (x_val, y_val, sample_weight), "
        f"or a dataset of such batches; got {given}. Pass "
        "validation_data=(x_val, y_val): the validation loss needs the labels.")


def image_shape(value):
    """`None`, or ``(H, W)`` / ``(H, W, C)`` of positive ints, as a tuple."""
    if value is None:
        return None
    shape = tuple(value) if isinstance(value, (tuple, list)) else None
    if not shape or len(shape) not in (2, 3) or not all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) and v > 0
            for v in shape):
        raise ValueError(f"`image_shape` must be (height, width) or (height, width, "
                         f"channels) of positive ints, got {value!r}.")
    return tuple(int(v) for v in shape)


def class_ids(y, width, code, who):
    """Labels that are class ids in ``[0, classes)`` (or rows as wide as the outputs)
    for a model of `width` outputs (one output: two classes); else a ValueError
    ``"{code}: {who}: ..."`` that names the bad labels and the remedy.

    Args:
        y: the labels.
        width: the model's outputs.
        code: the error table's id (E55 for the teachers, E03 for the model).
        who: what is checking, for the message.
    """
    import numpy as np

    y = np.asarray(y)
    classes = 2 if width == 1 else width
    if y.ndim == 2 and y.shape[1] > 1:
        if y.shape[1] != width:
            raise ValueError(f"{code}: {who}: the labels are rows of {y.shape[1]} "
                             f"columns but the model has {width} outputs.")
        return
    ids = y.reshape(-1)
    if not np.issubdtype(ids.dtype, np.number) or ids.dtype == bool:
        return  # strings and booleans: `fit`'s own checks (E39) say what to do
    bad = (ids < 0) | (ids >= classes) | (ids != np.floor(ids))
    if bad.any():
        raise ValueError(
            f"{code}: {who}: {int(bad.sum())} label(s) are not class ids in "
            f"[0, {classes}) for a model of {width} output(s) (e.g. "
            f"{np.unique(ids[bad])[:5].tolist()} at rows {np.flatnonzero(bad)[:5].tolist()}). "
            "Number the classes 0 to classes - 1 (np.unique(y, return_inverse=True) does), "
            "or give the model as many outputs as there are classes.")


# two sides whose rows' typical magnitudes differ more than this many times were
# not preprocessed alike (pixels in [0, 1] against raw 0..255: 255 times)
SCALE_RATIO = 20.0


def row_peaks(x):
    """Each row's largest magnitude, shape ``(rows, 1)`` (what `same_scale` compares,
    gathered batch by batch from a dataset), or `None` for what is not a numeric array.

    Args:
        x: the inputs (an array; a structure gives `None`).
    """
    import numpy as np

    x = np.asarray(x) if hasattr(x, "shape") else None
    if x is None or not len(x) or not np.issubdtype(x.dtype, np.number):
        return None
    return np.abs(x.reshape(len(x), -1)).max(axis=1, keepdims=True).astype("float64")


def joined_peaks(parts):
    """A dataset side's `row_peaks`, batch by batch, as one array (`None` when a batch
    had none: not a numeric array, or no batch at all).

    Args:
        parts: the batches' `row_peaks`.
    """
    import numpy as np

    if not parts or any(part is None for part in parts):
        return None
    return np.concatenate(parts)


def same_scale(first, second, names, code):
    """Two sides of a comparison (members and non-members) preprocessed alike: the
    median over rows of each row's largest magnitude within `SCALE_RATIO` of each
    other; else a ValueError ``"{code}: ..."``. Arrays only (structures pass); a
    dataset's side as its batches' `row_peaks`, concatenated.

    Args:
        first, second: the two sides' inputs.
        names: the two sides' names, for the message.
        code: the error table's id.
    """
    import numpy as np

    scales = []
    for x in (first, second):
        peaks = row_peaks(x)
        if peaks is None:
            return
        scales.append(float(np.median(peaks)))
    low, high = sorted(scales)
    if low > 0.0 and high / low > SCALE_RATIO:
        raise ValueError(
            f"{code}: the {names[0]} reach {scales[0]:.3g} and the {names[1]} "
            f"{scales[1]:.3g} (each row's largest magnitude, median over rows): "
            f"{high / low:.0f} times apart, not preprocessed alike (pixels in [0, 1] "
            "against raw 0..255?). Any model tells such sides apart, leak or not: scale "
            "both as the model's training data were.")
