"""Checks and normalises model outputs and labels for the audit."""

import numpy as np


def as_labels(labels, name, num_classes=None):
    """Class ids as a 1-D int64 array (one-hot rows become their argmax)."""
    labels = np.asarray(labels)
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


def cross_entropy(probs, labels):
    return -np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-45, None))


def check_pair(outputs_members, labels_members, outputs_nonmembers, labels_nonmembers):
    """Validates both sides; returns (probs_m, y_m, probs_n, y_n, kind)."""
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
    kind_m, kind_n = output_kind(om), output_kind(on)
    kind = "probabilities" if kind_m == kind_n == "probabilities" else "logits"
    return to_probabilities(om, kind), ym, to_probabilities(on, kind), yn, kind


def count_overlap(x_members, x_nonmembers):
    """Number of non-member rows that also appear (exactly) among the members."""
    def digests(x):
        x = np.ascontiguousarray(np.asarray(x))
        rows = x.reshape(len(x), -1)
        return {r.tobytes() for r in rows}, [r.tobytes() for r in rows]

    member_set, _ = digests(x_members)
    _, nonmember_rows = digests(x_nonmembers)
    return sum(row in member_set for row in nonmember_rows)
