"""Model outputs and labels as numbers: checks, probabilities, loss, AUC, row digests.

NumPy only (no TensorFlow, scikit-learn or TF Privacy): shared by the
in-training `PrivacyMonitor` and the audit, so that ``import keras_adamixup``
needs neither scikit-learn nor the audit.

Output kinds: ``"logits"`` or ``"probabilities"``. ``"auto"`` detects them
from the values (`output_kind`), which cannot tell one-column logits that
happen to lie in [0, 1] from probabilities; the model's last layer
(`model_output_kind`) cannot see a softmax applied after it or inside a
subclassed model's ``call``. `decide_kind` uses both: the values decide
whenever they can, the last layer where they cannot, and a conflict warns
(`OutputKindWarning`).
"""

import hashlib
import warnings

import numpy as np

from keras_adamixup import _stack

OUTPUT_KINDS = ("auto", "logits", "probabilities")


def as_labels(labels, name, num_classes=None):
    """Class ids as a 1-D int64 array (one-hot rows become their argmax)."""
    labels = np.asarray(labels)
    if labels.dtype == np.bool_ and num_classes is not None and num_classes > 2:
        raise ValueError(
            f"E28: `{name}` are booleans but the model has {num_classes} classes: "
            "boolean labels only make sense for a binary model. Pass class ids."
        )
    if labels.ndim == 2 and labels.shape[1] > 1:
        labels = np.argmax(labels, axis=1)
    labels = labels.reshape(-1) if labels.ndim == 2 else labels
    if labels.ndim != 1:
        raise ValueError(f"`{name}` must be class ids of shape (n,), got shape {labels.shape}.")
    if not np.all(np.isfinite(labels.astype("float64"))):
        raise ValueError(f"`{name}` contains NaN or inf.")
    as_int = labels.astype("int64")
    if not np.array_equal(as_int, labels):
        raise ValueError(f"`{name}` must hold integer class ids.")
    if num_classes is not None:
        bad = (as_int < 0) | (as_int >= max(num_classes, 2))
        if bad.any():
            raise ValueError(
                f"E18: `{name}` has {int(bad.sum())} label(s) outside the model's "
                f"classes [0, {max(num_classes, 2)}): e.g. {as_int[bad][:5].tolist()}."
            )
    return as_int


def output_kind(outputs):
    """``"probabilities"`` if every row looks like a probability vector, else ``"logits"``.

    Rows of more than one column are probabilities when all values are in
    [0, 1] and every row sums to 1 (±1e-3); single-column outputs when all
    values are in [0, 1].
    """
    in_unit = np.all((outputs >= 0.0) & (outputs <= 1.0))
    if outputs.shape[1] == 1:
        return "probabilities" if in_unit else "logits"
    sums_to_one = np.allclose(outputs.sum(axis=1), 1.0, atol=1e-3)
    return "probabilities" if in_unit and sums_to_one else "logits"


def as_outputs(outputs, name):
    """Model outputs as a float64 `(n, classes)` array, checked finite."""
    outputs = np.asarray(outputs, dtype="float64")
    if outputs.ndim == 1:
        outputs = outputs[:, None]
    if outputs.ndim != 2 or outputs.shape[0] == 0:
        raise ValueError(
            f"`{name}` must be model outputs of shape (n, classes), got {outputs.shape}."
        )
    bad = ~np.isfinite(outputs)
    if bad.any():
        raise ValueError(
            f"E17: `{name}` contains {int(bad.sum())} NaN or inf value(s): the model's "
            "outputs are not usable for an audit."
        )
    return outputs


def to_probabilities(outputs, kind):
    """`(n, classes)` probabilities; single-output models become two columns."""
    if outputs.shape[1] == 1:
        p = outputs[:, 0] if kind == "probabilities" else 1.0 / (1.0 + np.exp(-outputs[:, 0]))
        return np.stack([1.0 - p, p], axis=1)
    if kind == "probabilities":
        return outputs
    shifted = outputs - outputs.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def log_odds_from_logits(logits, labels):
    """LiRA's logit-scaled confidence ``log p_y − log(1 − p_y)`` from logits, stably.

    Equal to ``z_y − logsumexp_{j≠y} z_j``: no probability is formed, so a
    confident model (a margin of 40 already gives ``p_y = 1`` in float64)
    keeps finite, distinct statistics.
    """
    logits = np.asarray(logits, dtype="float64")
    labels = np.asarray(labels)
    rows = np.arange(len(labels))
    own = logits[rows, labels]
    others = logits.copy()
    others[rows, labels] = -np.inf
    top = others.max(axis=1)
    return own - (top + np.log(np.exp(others - top[:, None]).sum(axis=1)))


def log_odds(outputs, labels, kind):
    """``log p_y − log(1 − p_y)`` per row: stably from multi-class logits, else
    from the probabilities (float64, clipped into [1e-15, 1 − 1e-15])."""
    outputs = np.asarray(outputs)
    if kind == "logits" and outputs.shape[1] > 1:
        return log_odds_from_logits(outputs, labels)
    probs = to_probabilities(outputs.astype("float64"), kind)
    p = np.clip(probs[np.arange(len(labels)), labels], 1e-15, 1 - 1e-15)
    return np.log(p) - np.log1p(-p)


def hinge(outputs, labels, kind):
    """The margin ``z_y − max_{j≠y} z_j`` of the true class (logits; from
    probabilities ``log p_y − log max_{j≠y} p_j``, the same number).

    The hinge score of Carlini et al. 2022: it reads only the order of the
    top classes and their gap, so it survives defences that flatten or
    perturb the confidence vector while keeping its arg-max (RelaxLoss,
    MemGuard). One-column outputs are the two-class case.
    """
    outputs = np.asarray(outputs, dtype="float64")
    labels = np.asarray(labels)
    rows = np.arange(len(labels))
    if kind == "logits" and outputs.shape[1] > 1:
        scores = outputs
    else:
        scores = np.log(np.clip(to_probabilities(outputs, kind), 1e-300, None))
        if kind == "logits":  # one logit column: log-probabilities of both classes
            scores = np.stack([np.zeros(len(outputs)), outputs[:, 0]], axis=1)
    own = scores[rows, labels]
    others = scores.copy()
    others[rows, labels] = -np.inf
    return own - others.max(axis=1)


def cross_entropy(probs, labels):
    return -np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-45, None))


def check_kind(kind):
    """`kind` must be one of `OUTPUT_KINDS`."""
    if not isinstance(kind, str) or kind not in OUTPUT_KINDS:
        raise ValueError(f"E29: `outputs` must be one of {OUTPUT_KINDS}, got {kind!r}.")
    return kind


def resolve_kind(outputs, kind):
    """`kind` itself, or for ``"auto"`` the kind detected from `outputs` (`output_kind`)."""
    return output_kind(outputs) if kind == "auto" else kind


class OutputKindWarning(UserWarning):
    """The model's last layer and its output values disagree on the output kind.

    The values decide (`decide_kind`); the warning names both pieces of evidence.
    """


def model_output_kind(model):
    """``"probabilities"``/``"logits"`` from a Keras model's last activation, or ``"auto"``.

    Softmax or sigmoid as the last layer's activation (or a `Softmax` /
    `Activation` layer last) means probabilities; a last layer with a linear
    activation means logits; anything else is ``"auto"`` (no evidence from
    the layers). Only a `keras.Sequential` or functional model's last layer
    is its output layer: a subclassed model's ``layers`` are its sublayers in
    the order they were created, so they say nothing about what ``call``
    returns (``"auto"``). An `AdaMixupModel` is read through its
    ``base_model``. The layer is evidence, not proof: a functional model
    that ends in ``keras.ops.softmax`` after a linear `Dense` reads as
    logits here; `decide_kind` checks the values as well.
    """
    model = getattr(model, "base_model", model)
    last = _output_layer(model)
    if last is None:
        return "auto"
    if getattr(last, "layers", None):
        return model_output_kind(last)
    if type(last).__name__ == "Softmax":
        return "probabilities"
    activation = getattr(last, "activation", None)
    if activation is None:
        return "auto"
    activation = getattr(activation, "__name__", str(activation)).lower()
    return {"softmax": "probabilities", "sigmoid": "probabilities",
            "linear": "logits"}.get(activation, "auto")


def _output_layer(model):
    """The layer whose output is `model`'s single output, or `None`.

    A Sequential or functional model's last layer when it makes the output
    (not when an op such as ``keras.ops.softmax`` follows it); `None` for a
    subclassed model (no ``outputs``: its ``layers`` are merely the sublayers
    in creation order) and for several outputs.
    """
    layers = getattr(model, "layers", None)
    try:
        outputs = model.outputs
    except (AttributeError, ValueError):
        return None
    if not layers or not outputs or len(outputs) != 1:
        return None
    try:
        made = layers[-1].output
    except (AttributeError, ValueError, RuntimeError):  # never called, or called twice
        return None
    return layers[-1] if made is outputs[0] else None


def value_kind(outputs):
    """What the values alone say: ``"probabilities"``, ``"logits"`` or ``"ambiguous"``.

    More than one column: probabilities when every value is in [0, 1] and
    every row sums to 1 (±1e-3), else logits. One column: logits when a
    value lies outside [0, 1], else ambiguous (a sigmoid's output or small
    logits).
    """
    outputs = np.asarray(outputs, dtype="float64")
    if outputs.ndim == 1:
        outputs = outputs[:, None]
    if outputs.shape[1] == 1:
        in_unit = np.all((outputs >= 0.0) & (outputs <= 1.0))
        return "ambiguous" if in_unit else "logits"
    return output_kind(outputs)


def decide_kind(model, outputs, given=None):
    """The output kind of `model` from its layers *and* its values: `(kind, evidence)`.

    Args:
        model: the Keras model (or `None`: values only).
        outputs: some of its outputs, `(n, classes)`.
        given: ``"logits"``/``"probabilities"`` (the caller knows: used as
            it is), ``"auto"`` (the values alone, as `output_kind`) or
            `None` (decide here).

    Returns:
        ``(kind, evidence)``: ``kind`` is ``"logits"`` or
        ``"probabilities"``; ``evidence`` says what decided (recorded in
        audit reports): ``"given"``, ``"values"``, ``"last layer"``,
        ``"values (the last layer says ...)"`` on a conflict (an
        `OutputKindWarning` is issued then), or ``"values (one column in
        [0, 1], no layer evidence: read as probabilities)"``.

    Multi-column values are decisive (a logit vector is practically never a
    probability vector for every row); the last layer decides only what
    values cannot: one column in [0, 1].
    """
    if given in ("logits", "probabilities"):
        return given, "given"
    if given == "auto":
        return output_kind(as_outputs(outputs, "outputs")), "values"
    layer = "auto" if model is None else model_output_kind(model)
    values = value_kind(outputs)
    if values == "ambiguous":
        if layer != "auto":
            return layer, "last layer"
        return "probabilities", ("values (one column in [0, 1], no layer evidence: read "
                                 "as probabilities)")
    if layer != "auto" and layer != values:
        why = ("every row is in [0, 1] and sums to 1: a softmax applied after the last "
               "layer, by an op or in `call`" if values == "probabilities"
               else "they are not probability vectors")
        warnings.warn(
            f"The model's last layer says its outputs are {layer}, but their values say "
            f"{values} ({why}); reading them as {values}. Pass the kind explicitly "
            "(`outputs=`) if that is wrong.", OutputKindWarning, stacklevel=_stack.user_level())
        return values, f"values (the last layer says {layer})"
    return values, "values"


def check_pair(outputs_members, labels_members, outputs_nonmembers, labels_nonmembers,
               kind="auto"):
    """Validates both sides; returns (probs_m, y_m, probs_n, y_n, kind).

    `kind`: ``"auto"`` (detect), ``"logits"`` or ``"probabilities"``.
    """
    check_kind(kind)
    om = as_outputs(outputs_members, "outputs_members")
    on = as_outputs(outputs_nonmembers, "outputs_nonmembers")
    if om.shape[1] != on.shape[1]:
        raise ValueError(
            f"Members' outputs have {om.shape[1]} columns, non-members' {on.shape[1]}."
        )
    classes = om.shape[1]
    ym = as_labels(labels_members, "labels_members", classes)
    yn = as_labels(labels_nonmembers, "labels_nonmembers", classes)
    for side, o, y in (("members", om, ym), ("nonmembers", on, yn)):
        if len(o) != len(y):
            raise ValueError(
                f"E16: `outputs_{side}` has {len(o)} rows but `labels_{side}` has {len(y)}."
            )
    if kind == "auto":
        kind_m, kind_n = output_kind(om), output_kind(on)
        kind = "probabilities" if kind_m == kind_n == "probabilities" else "logits"
    elif kind == "probabilities":
        for side, o in (("members", om), ("nonmembers", on)):
            if np.any((o < 0.0) | (o > 1.0)):
                raise ValueError(
                    f"E29: outputs='probabilities' but the {side}' outputs hold values "
                    "outside [0, 1]: they are logits."
                )
    return to_probabilities(om, kind), ym, to_probabilities(on, kind), yn, kind


def row_digests(x, chunk=4096):
    """A 20-byte digest of every row of `x` (first axis), for overlap checks.

    Numeric rows are digested as float64, so the same values match whatever
    their dtype (a float32 training set and its float64 copy).
    """
    x = np.asarray(x)
    numeric = x.dtype.kind in "biuf"
    digests = []
    for start in range(0, len(x), chunk):
        part = x[start:start + chunk]
        part = np.ascontiguousarray(part.astype("float64") if numeric else part)
        digests.extend(hashlib.sha1(row.tobytes()).digest()
                       for row in part.reshape(len(part), -1))
    return digests


# the attribute where a model (an `AdaMixupModel` and its base model) keeps the rows its
# last `fit` held out, for the audit's E69 check: `(x, y)` in the process that trained
# it, their `row_digests` as a `(rows, 20)` uint8 array once loaded from a file
HELD_OUT_ATTRIBUTE = "_adamixup_held_out"


def held_out_digests(model):
    """The `row_digests` of the rows `model`'s last `fit` held out (`HELD_OUT_ATTRIBUTE`),
    or `None` when it kept none (or they are not an array of inputs)."""
    held = getattr(model, HELD_OUT_ATTRIBUTE, None)
    if isinstance(held, np.ndarray):
        return [bytes(row) for row in held]
    if isinstance(held, tuple) and hasattr(held[0], "shape"):
        return row_digests(held[0])
    return None


def count_common(member_digests, nonmember_digests):
    """Number of non-member row digests that are also member row digests."""
    member_set = set(member_digests)
    return sum(row in member_set for row in nonmember_digests)


def count_overlap(x_members, x_nonmembers):
    """Number of non-member rows that also appear (exactly) among the members."""
    return count_common(row_digests(x_members), row_digests(x_nonmembers))


def roc_auc(scores_members, scores_nonmembers):
    """AUC of "higher score ⇒ member" (Mann–Whitney, ties count one half).

    Equal to scikit-learn's ``roc_auc_score`` on the same scores.
    """
    m = np.asarray(scores_members, dtype="float64").ravel()
    n = np.asarray(scores_nonmembers, dtype="float64").ravel()
    if len(m) == 0 or len(n) == 0:
        raise ValueError("The AUC needs at least one member and one non-member.")
    values = np.concatenate([m, n])
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values))
    sorted_values = values[order]
    # average ranks of ties (1-based)
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_values)) + 1]
    ends = np.r_[starts[1:], len(values)]
    average = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(average, ends - starts)
    u = ranks[:len(m)].sum() - len(m) * (len(m) + 1) / 2.0
    return float(u / (len(m) * len(n)))
