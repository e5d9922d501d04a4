"""Argument checks, in one place, with one rule.

The rule: a value of the wrong *type* (a string where a number is expected, a
bool or float where an int is expected) raises `TypeError`; a value of the
right type that is out of range, NaN or not among the choices raises
`ValueError`. Every message names the argument in backticks and shows what was
given. Every module of the package checks its arguments through these
functions (none calls another module's private checks).
"""

import math


def choice(name, value, choices):
    """`value` must be one of `choices` (strings); returns it."""
    if not isinstance(value, str):
        raise TypeError(f"`{name}` must be one of {tuple(choices)}, got {value!r}.")
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {tuple(choices)}, got {value!r}.")
    return value


def real(name, value):
    """Any real number (NaN included) as a float; `TypeError` for anything else."""
    if isinstance(value, (bool, str)):
        raise TypeError(f"`{name}` must be a number, got {value!r}.")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(
            f"`{name}` must be a number, got {value!r} (type {type(value).__name__})."
        ) from None


def number(name, value, low=None, high=None, *, low_open=False, high_open=False):
    """A finite real number in ``[low, high]`` (open ends with `low_open` / `high_open`); a float."""
    result = real(name, value)
    if math.isnan(result) or math.isinf(result):
        raise ValueError(f"`{name}` must be finite, got {result}.")
    below = low is not None and (result <= low if low_open else result < low)
    above = high is not None and (result >= high if high_open else result > high)
    if below or above:
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        raise ValueError(f"`{name}` must be in {left}{low}, {high}{right}, got {result}.")
    return result


def integer(name, value, low=None, allow_none=False):
    """An int (not a bool) ≥ `low`; `None` passes when `allow_none`."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        kind = "an int or None" if allow_none else "an int"
        raise TypeError(f"`{name}` must be {kind}, got {value!r}.")
    if low is not None and value < low:
        raise ValueError(f"`{name}` must be ≥ {low}, got {value}.")
    return value


def positive_int(name, value, allow_none=False):
    """An int ≥ 1 (or `None` when `allow_none`)."""
    return integer(name, value, low=1, allow_none=allow_none)


def boolean(name, value):
    if not isinstance(value, bool):
        raise TypeError(f"`{name}` must be a bool, got {value!r}.")
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
