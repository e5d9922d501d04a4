"""Model outputs and labels as numbers: checks, probabilities, loss, AUC, row digests.

NumPy only (no TensorFlow, scikit-learn or TF Privacy): shared by the
in-training `PrivacyMonitor` and the audit, so that ``import keras_adamixup``
needs neither scikit-learn nor the audit.

Output kinds: ``"logits"`` or ``"probabilities"``. ``"auto"`` detects them
from the values (`output_kind`), which cannot tell one-column logits that
happen to lie in [0, 1] from probabilities: give the kind, or let
`model_output_kind` read it from the model's last activation.
"""

import hashlib

import numpy as np

OUTPUT_KINDS = ("auto", "logits", "probabilities")


def as_labels(labels, name, num_classes=None):
    """Class ids as a 1-D int64 array (one-hot rows become their argmax)."""
    labels = np.asarray(labels)
    if labels.dtype == np.bool_ and num_classes is not None and num_classes > 2:
        raise ValueError(
            f"`{name}` are booleans but the model has {num_classes} classes: "
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
                f"`{name}` has {int(bad.sum())} label(s) outside the model's "
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
            f"`{name}` contains {int(bad.sum())} NaN or inf value(s): the model's "
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


def cross_entropy(probs, labels):
    return -np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-45, None))


def check_kind(kind):
    """`kind` must be one of `OUTPUT_KINDS`."""
    if not isinstance(kind, str) or kind not in OUTPUT_KINDS:
        raise ValueError(f"`outputs` must be one of {OUTPUT_KINDS}, got {kind!r}.")
    return kind


def resolve_kind(outputs, kind):
    """`kind` itself, or for ``"auto"`` the kind detected from `outputs` (`output_kind`)."""
    return output_kind(outputs) if kind == "auto" else kind


def model_output_kind(model):
    """``"probabilities"``/``"logits"`` from a Keras model's last activation, or ``"auto"``.

    Softmax or sigmoid as the last layer's activation (or a `Softmax` /
    `Activation` layer last) means probabilities; a last layer with a linear
    activation means logits; anything else (a subclassed model, a custom
    layer) is ``"auto"`` (detected from the values). An `AdaMixupModel` is
    read through its ``base_model``.
    """
    model = getattr(model, "base_model", model)
    layers = getattr(model, "layers", None)
    if not layers:
        return "auto"
    last = layers[-1]
    if hasattr(last, "layers") and getattr(last, "layers", None):
        return model_output_kind(last)
    name = type(last).__name__
    if name == "Softmax":
        return "probabilities"
    activation = getattr(last, "activation", None)
    if activation is None:
        return "auto"
    activation = getattr(activation, "__name__", str(activation)).lower()
    return {"softmax": "probabilities", "sigmoid": "probabilities",
            "linear": "logits"}.get(activation, "auto")


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
                f"`outputs_{side}` has {len(o)} rows but `labels_{side}` has {len(y)}."
            )
    if kind == "auto":
        kind_m, kind_n = output_kind(om), output_kind(on)
        kind = "probabilities" if kind_m == kind_n == "probabilities" else "logits"
    elif kind == "probabilities":
        for side, o in (("members", om), ("nonmembers", on)):
            if np.any((o < 0.0) | (o > 1.0)):
                raise ValueError(
                    f"outputs='probabilities' but the {side}' outputs hold values "
                    "outside [0, 1]: they are logits."
                )
    return to_probabilities(om, kind), ym, to_probabilities(on, kind), yn, kind


def row_digests(x):
    """A 20-byte digest of every row of `x` (first axis), for overlap checks."""
    x = np.ascontiguousarray(np.asarray(x))
    return [hashlib.sha1(row.tobytes()).digest() for row in x.reshape(len(x), -1)]


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
