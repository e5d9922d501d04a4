"""`run_audit` (a Keras model) and `audit_predictions` (arrays of outputs)."""

import dataclasses
import platform
import time
import warnings
from typing import Any

import numpy as np

from keras_adamixup import _checks, _stack
from keras_adamixup.audit import attacks as attacks_lib
from keras_adamixup.audit import label_only
from keras_adamixup.audit import canaries as canaries_lib
from keras_adamixup.audit import lira as lira_lib
from keras_adamixup.audit import options as options_lib
from keras_adamixup.audit import registry
from keras_adamixup.audit import rmia as rmia_lib  # noqa: F401 - registers RMIA
from keras_adamixup.audit.options import AuditOptions
from keras_adamixup.audit._predict import predict_outputs
from keras_adamixup import _fit_data
from keras_adamixup import predictions as preds_lib
from keras_adamixup._progress import Bar
from keras_adamixup.audit.report import AuditReport


def _utility(probs_m, y_m, probs_n, y_n):
    acc_m = float(np.mean(np.argmax(probs_m, 1) == y_m))
    acc_n = float(np.mean(np.argmax(probs_n, 1) == y_n))
    return {
        "train_accuracy": acc_m,
        "test_accuracy": acc_n,
        "train_loss": float(np.mean(preds_lib.cross_entropy(probs_m, y_m))),
        "test_loss": float(np.mean(preds_lib.cross_entropy(probs_n, y_n))),
        "generalization_gap": acc_m - acc_n,
    }


def _versions():
    versions = {"python": platform.python_version()}
    for name in ("numpy", "sklearn", "tensorflow", "keras", "tensorflow_privacy"):
        try:
            module = __import__(name)
            versions[name] = getattr(module, "__version__", "?")
        except Exception:  # noqa: BLE001 - a version string is informational
            versions[name] = "not importable"
    from keras_adamixup.version import __version__

    versions["keras_adamixup"] = __version__
    return versions


def _attack_steps(opts):
    return attacks_lib.count_steps(opts.attacks, opts.slices, opts.thorough, opts.fast_attacks)


def audit_predictions(outputs_members, labels_members, outputs_nonmembers,
                      labels_nonmembers, *, name="model", options=None, metadata=None,
                      extra_rows=(), extra_histograms=None, tick=None, **option_overrides):
    """Audits arrays of model outputs (logits or probabilities) of members and non-members.

    Runs TF Privacy's attacks (see `keras_adamixup.audit.attacks`), the
    label-only gap attack (it needs only the predicted labels) and the hinge
    threshold attack (the true class' margin over the runner-up,
    `predictions.hinge`: it survives defences that flatten the confidences).

    Args:
        outputs_members: `(n, classes)` logits or probabilities on members
            (single-output models: `(n,)` or `(n, 1)`). Which one they are is
            given by `outputs` or detected and recorded in the report.
        labels_members: class ids (or one-hot rows) of the members.
        outputs_nonmembers: the same as `outputs_members`, for non-members.
        labels_nonmembers: the same as `labels_members`, for non-members.
        name: model name in the report.
        options: an `AuditOptions` (attacks, slices, thorough, min_per_slice,
            attack_backend, fast_attacks, seed, outputs; the label-only and
            prediction options do not apply to arrays).
        metadata: extra metadata for the report.
        extra_rows: rows of attacks run elsewhere (LiRA, RMIA, label-only
            noise), added to the report.
        extra_histograms: their score histograms, added likewise.
        tick: called with a label after each attack step (`run_audit`'s
            progress bar); by default `options.progress` makes a bar here.
        **option_overrides: any `AuditOptions` field by name (``attacks=``,
            ``thorough=``, ``outputs=``...). `outputs`: ``"logits"``,
            ``"probabilities"`` or ``"auto"`` (the default here: detected
            from the values; rows in [0, 1] that sum to 1, or one column in
            [0, 1], count as probabilities, which one-column logits can
            happen to look like: say which when you know).

    Returns:
        An `AuditReport`.

    Raises:
        ValueError: mismatched lengths, NaN/inf outputs, labels outside the
            model's classes, too few examples, labels as outputs (a model: TypeError), E50.
        ImportError: TF Privacy is missing (with the install command).

    Example:

    ```python
    report = audit.audit_predictions(model.predict(x_in), y_in, model.predict(x_out), y_out)
    print(report.summary())
    ```
    """
    start = time.perf_counter()
    _check_outputs_given(outputs_members, outputs_nonmembers)
    opts = AuditOptions.make(options, **option_overrides)
    outputs = opts.outputs or "auto"
    checked = preds_lib.check_pair(outputs_members, labels_members, outputs_nonmembers,
                                   labels_nonmembers, kind=outputs)
    rows, histograms, skipped = _prediction_attacks(checked, opts, name, tick, extra_rows,
                                                    extra_histograms)
    meta = _predictions_metadata(checked, opts, outputs, skipped, metadata, start)
    return AuditReport(name=name, utility=_checked_utility(checked),
                       attacks=rows, histograms=histograms, metadata=meta)


def _checked_utility(checked):
    """`_utility` of `check_pair`'s outputs, with E74's look at the members' loss."""
    utility = _utility(*checked[:4])
    _warn_if_members_unknown(utility, checked[0].shape[-1])
    return utility


def _warn_if_members_unknown(utility, classes):
    """E74: a model whose loss on its own members is far above a uniform guess's
    (``ln(classes)``) does not recognise them: another model, or inputs not
    preprocessed as in training (raw 0..255 pixels for a model trained on [0, 1])."""
    uniform = float(np.log(max(classes, 2)))
    if utility["train_loss"] > 3.0 * uniform:
        warnings.warn(
            f"E74: the model's mean loss on its members is {utility['train_loss']:.3g} nats, "
            f"more than three times a uniform guess's ({uniform:.3g}; accuracy "
            f"{utility['train_accuracy']:.3f}): it does not recognise the rows it trained "
            "on. Are they its training rows, preprocessed as in training (pixels scaled as "
            "the model was trained, e.g. /255)? Such an audit reads no leak whatever the "
            "model leaks.", stacklevel=_stack.user_level())


def _check_outputs_given(outputs_members, outputs_nonmembers):
    """E50: `audit_predictions` takes a model's outputs, not the model or its labels."""
    for side, values in (("outputs_members", outputs_members),
                         ("outputs_nonmembers", outputs_nonmembers)):
        _check_output_values(values, side)


def _check_output_values(values, side):
    if hasattr(values, "predict"):
        raise TypeError(f"E50: `{side}` must be the model's outputs (an array of logits or "
                        f"probabilities), got a {type(values).__name__}: audit a model "
                        "with run_audit(model, (x_in, y_in), (x_out, y_out)).")
    values = np.asarray(values)
    if values.ndim == 1 and values.dtype.kind in "iub" and values.size and values.max() > 1:
        raise ValueError(f"E50: `{side}` holds integers (e.g. {values[:5].tolist()}): "
                         "predicted labels, not outputs. Pass the logits or probabilities, "
                         "e.g. model.predict(x): the attacks read the confidence.")


def _prediction_attacks(checked, opts, name, tick, extra_rows, extra_histograms):
    """Runs the attacks on checked outputs: TF Privacy's, label-only gap and hinge.

    Returns:
        ``(rows, histograms, skipped)``: the attacks' rows and score
        histograms (the extra ones, run elsewhere, last) and the class slices
        too small to attack.
    """
    probs_m, y_m, probs_n, y_n, _ = checked
    skipped = attacks_lib.check_slice_sizes(y_m, y_n, opts.slices, opts.min_per_slice)
    with Bar(_attack_steps(opts), f"auditing {name}", "step",
             opts.progress and tick is None) as own:
        rows, histograms = attacks_lib.run_tfp_attacks(
            probs_m, y_m, probs_n, y_n, attacks=opts.attacks, slices=opts.slices,
            thorough=opts.thorough, min_per_slice=opts.min_per_slice,
            backend=opts.attack_backend, fast=opts.fast_attacks, seed=opts.seed,
            tick=tick or own.update)
    gap_row, gap_hist = attacks_lib.rows_from_scores(
        "label_only_gap", label_only.gap_scores(np.argmax(probs_m, 1), y_m),
        label_only.gap_scores(np.argmax(probs_n, 1), y_n), "label_only")
    rows.append(gap_row)
    histograms["label_only_gap"] = gap_hist
    hinge_row, hinge_hist = attacks_lib.rows_from_scores(
        "hinge", preds_lib.hinge(probs_m, y_m, "probabilities"),
        preds_lib.hinge(probs_n, y_n, "probabilities"), "score")
    rows.append(hinge_row)
    histograms["hinge"] = hinge_hist
    rows.extend(extra_rows)
    histograms.update(extra_histograms or {})
    return rows, histograms, skipped


def _predictions_metadata(checked, opts, outputs, skipped, metadata, start):
    """The report's metadata: the outputs audited, the attacks run, `metadata`, the time.

    ``"seconds"`` adds the time since `start` to any `metadata` gives.
    """
    probs_m, y_m, _, y_n, kind = checked
    meta = {
        "output_kind": kind,
        "output_kind_given": outputs,
        "n_members": int(len(y_m)),
        "n_nonmembers": int(len(y_n)),
        "num_classes": int(probs_m.shape[1]),
        "attacks": list(opts.attacks),
        "slices": list(opts.slices),
        "thorough": opts.thorough,
        "trained_attacks": (
            "TF Privacy, grid search on every slice" if opts.thorough else
            f"fixed hyperparameters on at most {attacks_lib.FAST_SAMPLE} members and as many "
            f"non-members: {attacks_lib.describe_fast_estimators()}" if opts.fast_attacks else
            "TF Privacy, grid search on the entire data set"),
        "skipped_slices": skipped,
        "versions": _versions(),
    }
    meta.update(metadata or {})
    meta["seconds"] = meta.get("seconds", 0.0) + time.perf_counter() - start
    return meta


def run_audit(model, members, nonmembers, *, options=None, lira=None, canaries=None,
              name=None, metadata=None, **option_overrides):
    """Audits a Keras model: TF Privacy attacks, label-only attacks and optional LiRA.

    Args:
        model: a Keras model (any model with `predict`; an `AdaMixupModel` or
            its `base_model`).
        members: `(x, y)` the model was trained on, or a batched
            `tf.data.Dataset` of `(x, y)` (streamed: sets larger than memory;
            only outputs, labels and 20-byte row digests are kept; LiRA needs
            arrays).
        nonmembers: the same for examples of that distribution never trained on.
        options: an `AuditOptions` (attacks, slices, thorough, fast
            attacks, label-only settings, batch size, seed, overlap check,
            output kind); see its docstring. Default: `AuditOptions()`.
        lira: `None` (skip), a `ShadowRecipe` (or a dict of its fields), or a
            list of them, all but the first with a ``name``. Every recipe's
            shadows give every LiRA variant and RMIA (``lira_online``,
            ``lira_offline``, their ``_pervar`` and ``_hinge`` forms,
            ``rmia_online``, ``rmia_offline``; suffixed ``_<name>``). Audit
            an adaptive or randomized defence (a `PrivacyTarget`, early
            stopping) with its own recipe *and* the undefended recipe: shadows
            that each adapt differently disagree with one another, which
            weakens LiRA without protecting the target; the attacker may
            choose either, and the report's best attack is the maximum.
        canaries: a `keras_adamixup.audit.canaries.CanarySet` from
            `canaries.plant`; `members` are then the ordinary members (the
            model trained on them *and* the canaries drawn "in":
            ``canaries.add_to(*members)``). Every shadow recipe trains on the
            canaries too (each unit in half of the shadows, a duplicate pair
            together). The report's metadata ``"canaries"`` gets, per kind,
            every single-example attack's AUC and TPR at low FPR among
            canaries (in vs out, exact intervals) and ε lower bounds
            (`keras_adamixup.audit.epsilon`), and report.md a "Canaries"
            section. Arrays only.
        name: the model's name in the report (default: ``model.name``).
        metadata: a dict merged into ``report.metadata``.
        **option_overrides: any `AuditOptions` field by name (``attacks=``,
            ``slices=``, ...), applied over `options`.

    Returns:
        An `AuditReport`.

    Example:

    ```python
    report = audit.run_audit(
        model, (x_in, y_in), (x_out, y_out),
        lira=audit.ShadowRecipe(make_model, num_shadows=16,
                                fit_kwargs={"epochs": 60, "batch_size": 64}))
    report.save("audit_out")
    ```
    """
    start = time.perf_counter()
    opts = AuditOptions.make(options, **option_overrides)
    recipes = options_lib.shadow_recipes(lira) if lira else []
    streamed = _is_dataset(members) or _is_dataset(nonmembers)
    audit_with = _audit_datasets if streamed else _audit_arrays
    return audit_with(model, members, nonmembers, opts, recipes, lira, canaries, start=start,
                      name=name, metadata=metadata)


def _audit_datasets(model, members, nonmembers, opts, recipes, lira, canaries, *, start,
                    name, metadata):
    """`run_audit` on datasets: streamed, without shadows or canaries (they need arrays)."""
    del lira  # the recipes say whether there is LiRA
    _check_pair(members, "members")
    _check_pair(nonmembers, "nonmembers")
    if canaries is not None:
        raise ValueError("`canaries` need the members as arrays (their indices), not "
                         "datasets.")
    if recipes:
        raise ValueError(
            "LiRA trains shadow models on members ∪ non-members and needs them as "
            "arrays; audit datasets without `lira` (or load the data into arrays)."
        )
    return _run_audit_streamed(model, members, nonmembers, opts, start=start,
                               name=name, metadata=metadata)


def _audit_arrays(model, members, nonmembers, opts, recipes, lira, canaries, *, start,
                  name, metadata):
    """`run_audit` on `(x, y)` arrays: checks them, then audits with a progress bar."""
    _check_pair(members, "members")
    _check_pair(nonmembers, "nonmembers")
    (x_m, y_m), (x_n, y_n) = members, nonmembers
    if len(x_m) != len(y_m) or len(x_n) != len(y_n):
        raise ValueError(
            f"Inputs and labels differ in length: members {len(x_m)} vs {len(y_m)}, "
            f"non-members {len(x_n)} vs {len(y_n)}."
        )
    if not (len(y_m) and len(y_n)):  # E19 now, not a shape error from the empty outputs
        attacks_lib.check_slice_sizes(y_m, y_n, (), max(opts.min_per_slice, 1))
    for x, side in ((x_m, "members"), (x_n, "nonmembers")):
        check_finite_inputs(x, side)
        _check_input_shape(model, x, side)
    _checks.same_scale(x_m, x_n, ("members", "non-members"), "E68")
    if opts.check_overlap:  # each side digested once, for both checks
        digests_m, digests_n = preds_lib.row_digests(x_m), preds_lib.row_digests(x_n)
        _check_disjoint(preds_lib.count_common(digests_m, digests_n))
        _check_own_holdout(model, digests_m, digests_n)
    if canaries is not None:
        _check_canaries(canaries, x_m)
    label = name or getattr(model, "name", "model")
    total = 1 + (opts.label_only_noise is not None) + len(recipes) + _attack_steps(opts)
    with Bar(total, f"auditing {label}", "step", opts.progress) as bar:
        return _run_audit_arrays(model, (x_m, y_m), (x_n, y_n), opts, recipes, lira,
                                 canaries, bar.update, start=start, name=name,
                                 metadata=metadata)


def _check_own_holdout(model, digests_m, digests_n):
    """E69: the rows the model's own `fit` held out (``validation_split`` or
    ``validation_data``, kept by an `AdaMixupModel`'s monitor, on it and its base model,
    and saved with it: `predictions.held_out_digests`) are not members (it
    never trained on them: refused), and not the non-members (its checkpoint chose
    its epoch on them, or its schedule followed them: a warning). `digests_m`,
    `digests_n`: the two sides' `row_digests`."""
    held = preds_lib.held_out_digests(model)  # also on its base model, and once loaded
    if held is None:
        return  # none kept, or structures of inputs: not compared
    inside = preds_lib.count_common(held, digests_m)
    if inside:
        raise ValueError(
            f"E69: {inside} of the members are rows the model's own fit held out "
            "(validation_split or validation_data, the rows of its PrivacyMonitor): it "
            "never trained on them. Audit with the rows it trained on as members: with "
            "validation_split=f those are the first (1 - f) of x_train.")
    outside = preds_lib.count_common(held, digests_n)
    if outside:
        warnings.warn(
            f"E69: {outside} of the non-members are rows the model's own fit held out "
            "(its PrivacyMonitor's): its training followed their loss (a checkpoint's "
            "epoch, a schedule's strength or a loss target set from it), so they are not "
            "unseen by its training, and the "
            "audit reads a little too little leakage. Audit on rows the fit never used "
            "(a test set apart from validation_data).", stacklevel=_stack.user_level())


def _check_pair(data, side):
    """E50: `members` / `nonmembers` must be `(x, y)` or a `tf.data.Dataset` of them."""
    if _is_dataset(data) or (isinstance(data, (tuple, list)) and len(data) == 2):
        return
    given = (f"an array of shape {data.shape}" if hasattr(data, "shape")
             else f"a {type(data).__name__}" + (f" of {len(data)}" if isinstance(
                 data, (tuple, list)) else ""))
    raise ValueError(
        f"E50: `{side}` must be a pair (x, y), inputs and labels, or a batched "
        f"tf.data.Dataset of (x, y); got {given}. E.g. run_audit(model, (x_train, "
        "y_train), (x_test, y_test)).")


def check_finite_inputs(x, side):
    """E44: refuses inputs with NaN or inf, naming the rows and (for a table) the columns.

    A model's outputs on such rows mean nothing (a ReLU reads NaN as 0, so the
    outputs often stay finite), and the audit would report leakage that is
    not there: a NaN column in the members alone gave AUC 1.0.

    Args:
        x: an array of inputs (rows first), or a dict / list / tuple of them.
        side: ``"members"``, ``"nonmembers"`` or another name, for the message.
    """
    if isinstance(x, dict):
        leaves = [(f"[{key!r}]", x[key]) for key in sorted(x, key=str)]
    elif isinstance(x, (list, tuple)) and not hasattr(x, "shape"):
        leaves = [(f"[{i}]", leaf) for i, leaf in enumerate(x)]
    else:
        leaves = [("", x)]
    for name, leaf in leaves:
        rows = _fit_data.non_finite_rows(leaf)
        if not len(rows):
            continue
        columns = ""
        if np.ndim(leaf) == 2:
            bad = np.flatnonzero(~np.isfinite(np.asarray(leaf)).all(axis=0))
            columns = f" and {len(bad)} column(s) (e.g. columns {bad[:10].tolist()})"
        raise ValueError(
            f"E44: the {side.replace('nonmembers', 'non-members')}' inputs{name} have NaN or inf in {len(rows)} row(s) (e.g. rows "
            f"{rows[:10].tolist()}){columns}: the model's outputs on them mean nothing, "
            "and the audit would report leakage that is not there. Remove or impute "
            "them before the audit (as before training), e.g. keep the rows where "
            "`np.isfinite(x).reshape(len(x), -1).all(axis=1)`.")


def _check_input_shape(model, x, side):
    """E51: the rows of `x` must have the shape the model takes (one input, known shape)."""
    inputs = getattr(getattr(model, "base_model", model), "inputs", None)
    if not inputs or len(inputs) != 1 or not hasattr(x, "shape"):
        return
    expected = tuple(inputs[0].shape[1:])
    given = tuple(np.shape(x)[1:])
    if len(expected) != len(given) or any(e is not None and e != g
                                          for e, g in zip(expected, given)):
        channel = given + (1,) == expected  # greyscale images without their channel axis
        raise ValueError(
            f"E51: the model takes rows of shape {expected}, but the "
            f"{side.replace('nonmembers', 'non-members')}' rows have shape {given}: "
            + ("give them the channel axis the model has, x[..., None] (Keras' fit "
               "adds it; the audit compares rows as given)." if channel else
               "audit it on data like the data it was trained on (the same features, "
               "the same preprocessing)."))


def _check_canaries(canaries, x_m):
    if not isinstance(canaries, canaries_lib.CanarySet):
        raise TypeError("E32: `canaries` must be a CanarySet from audit.canaries.plant(x, y, "
                        f"count, kinds=...), got {type(canaries).__name__}.")
    if np.shape(x_m)[1:] != canaries.x.shape[1:]:
        raise ValueError(f"E32: The canaries' inputs have shape {canaries.x.shape[1:]} per row, "
                         f"the members {np.shape(x_m)[1:]}: plant them in the data audited.")
    if len(x_m) and preds_lib.count_overlap(canaries.x, x_m):
        raise ValueError(
            "E32: Some canary rows are also among the members: pass the members without the "
            "canaries (the x_rest, y_rest that plant returned); the canaries are scored "
            "in vs out on their own.")


def _output_kind(model, out_m, out_n, opts):
    """`(kind, metadata)`: the output kind from the model's last layer and the
    values (`predictions.decide_kind`), or the one `options.outputs` gives."""
    kind, evidence = preds_lib.decide_kind(
        model, np.concatenate([preds_lib.as_outputs(out_m, "outputs_members"),
                               preds_lib.as_outputs(out_n, "outputs_nonmembers")]),
        opts.outputs)
    return kind, {"output_kind_evidence": evidence}


def _run_audit_arrays(model, members, nonmembers, opts, recipes, lira, canaries,
                      steps, *, start, name, metadata):
    """`run_audit` for arrays (after the checks), ticking `steps`."""
    (x_m, y_m), (x_n, y_n) = members, nonmembers
    out_m = predict_outputs(model, x_m, opts.batch_size)
    out_n = predict_outputs(model, x_n, opts.batch_size)
    outputs, kind_meta = _output_kind(model, out_m, out_n, opts)
    steps("outputs")
    classes, y_m, y_n = _labels(out_m, y_m, y_n)
    extra_rows, extra_hist = [], {}
    canary_scores = {}  # attack -> one score per canary row (higher ⇒ in)
    if canaries is not None:
        out_c = predict_outputs(model, canaries.x, opts.batch_size)
        y_c = preds_lib.as_labels(canaries.y, "canary labels", classes)
        canary_scores.update(_canary_output_scores(out_c, y_c, outputs))

    def predict_labels(x):
        return _predicted_labels(predict_outputs(model, x, opts.batch_size), outputs)

    noise_scores = None
    if opts.label_only_noise is not None:
        noise_scores = [label_only.noise_robustness_scores(
            predict_labels, x, y, noise=opts.label_only_noise,
            queries=opts.label_only_queries, seed=opts.seed,
            scale=np.std(np.concatenate([np.ravel(x_m), np.ravel(x_n)])))
            for x, y in ((x_m, y_m), (x_n, y_n))]
        if canaries is not None:
            canary_scores["label_only_noise"] = label_only.noise_robustness_scores(
                predict_labels, canaries.x, y_c, noise=opts.label_only_noise,
                queries=opts.label_only_queries, seed=opts.seed,
                scale=np.std(np.concatenate([np.ravel(x_m), np.ravel(x_n)])))
        steps("label-only noise")
    meta = {"seed": opts.seed, "label_only_noise": opts.label_only_noise,
            "label_only_queries": opts.label_only_queries, **kind_meta}
    if recipes:
        # members, then non-members, then the canaries: shared by every shadow recipe
        population = Population.of((x_m, y_m, out_m), (x_n, y_n, out_n), model,
                                   canaries, out_c if canaries is not None else None)
        metas = []
        for recipe in recipes:
            rows, hists, recipe_meta, scores = _lira_rows(recipe, population, opts, outputs)
            steps(f"shadows {recipe.name or 'own'}")
            for attack, values in scores.items():
                if canaries is not None:
                    canary_scores[attack] = values[population.n_ordinary:]
            extra_rows += rows
            extra_hist.update(hists)
            metas.append(recipe_meta)
        single = isinstance(lira, (dict, options_lib.ShadowRecipe))
        meta["lira"] = metas[0] if single else metas
    if canaries is not None:
        meta["canaries"] = {**canaries.to_dict(),
                            "kinds_measured": canaries_lib.unit_rows(canaries, canary_scores)}
    return _report(model, (out_m, y_m, out_n, y_n), noise_scores, extra_rows, extra_hist,
                   meta, opts, outputs, start=start, name=name, metadata=metadata, tick=steps)


def _canary_output_scores(out_c, y_c, outputs):
    """The canaries' scores of the attacks that need only the audited model's outputs."""
    out_c = preds_lib.as_outputs(out_c, "canary outputs")
    kind = preds_lib.resolve_kind(out_c, outputs)
    probs = preds_lib.to_probabilities(out_c.astype("float64"), kind)
    return {"threshold": -preds_lib.cross_entropy(probs, y_c),
            "hinge": preds_lib.hinge(out_c, y_c, kind),
            "label_only_gap": label_only.gap_scores(_predicted_labels(out_c, kind), y_c)}


@dataclasses.dataclass(frozen=True)
class Population:
    """What every shadow recipe trains and scores on: the ordinary members,
    the non-members, then the canaries (each unit one group of the shadows'
    in/out draw).

    Attributes:
        x, y, outputs: concatenated inputs, labels and the audited model's outputs.
        n_members, n_nonmembers: the ordinary rows' counts (members first).
        groups: `None` without canaries, else one draw group per row.
        model: the audited model (queried again for augmented views).
    """

    x: Any
    y: Any
    outputs: Any
    n_members: int
    n_nonmembers: int
    groups: Any
    model: Any

    @property
    def n_ordinary(self):
        return self.n_members + self.n_nonmembers

    @classmethod
    def of(cls, members, nonmembers, model, canaries=None, canary_outputs=None):
        (x_m, y_m, out_m), (x_n, y_n, out_n) = members, nonmembers
        parts_x, parts_y, parts_out = [x_m, x_n], [y_m, y_n], [out_m, out_n]
        groups = None
        if canaries is not None:
            parts_x.append(canaries.x.astype(np.asarray(x_m).dtype))
            parts_y.append(canaries.y.astype(np.asarray(y_m).dtype))
            parts_out.append(canary_outputs)
            ordinary = len(x_m) + len(x_n)
            groups = np.concatenate([np.arange(ordinary), ordinary + canaries.unit])
        return cls(np.concatenate(parts_x), np.concatenate(parts_y),
                   None if parts_out[0] is None else np.concatenate(parts_out),
                   len(x_m), len(x_n), groups, model)


def _check_disjoint(overlap):
    if overlap:
        raise ValueError(
            f"E20: {overlap} non-member example(s) also appear among the members: "
            "members and non-members must be disjoint (deduplicate the data or "
            "pass check_overlap=False if the duplicates are genuine)."
        )


def _labels(out_m, y_m, y_n):
    """`(classes, y_m, y_n)`: labels as class ids checked against the outputs' classes."""
    classes = max(out_m.shape[-1] if out_m.ndim == 2 else 1, 2)
    return (classes, preds_lib.as_labels(y_m, "members labels", classes),
            preds_lib.as_labels(y_n, "nonmembers labels", classes))


def _report(model, model_outputs, noise_scores, extra_rows, extra_hist, meta, opts, outputs,
            *, start, name, metadata, tick=None):
    """The shared end of both `run_audit` paths: extra rows, metadata, the attacks."""
    if noise_scores is not None:  # the noise row first, as it was computed first
        row, hist = attacks_lib.rows_from_scores("label_only_noise", *noise_scores,
                                                 "label_only")
        extra_rows = [row] + list(extra_rows)
        extra_hist = {"label_only_noise": hist, **extra_hist}
    meta.update(metadata or {})
    meta["seconds"] = time.perf_counter() - start
    return audit_predictions(*model_outputs, name=name or getattr(model, "name", "model"),
                             options=dataclasses.replace(opts, outputs=outputs),
                             metadata=meta, extra_rows=extra_rows,
                             extra_histograms=extra_hist, tick=tick)


def _layer_ids(model):
    """The ids of what two models must not share: `model`, its layers that train
    (nested models and an `AdaMixupModel`'s base model included; unbuilt ones too) and
    its trainable weights. A frozen layer (``trainable=False``: a pretrained backbone
    reused by every model) and a layer without weights may be shared."""
    seen, shared = set(), set()
    stack = [model]
    while stack:
        layer = stack.pop()
        if layer is None or id(layer) in seen:
            continue
        seen.add(id(layer))
        if getattr(layer, "trainable", True) and (
                not getattr(layer, "built", True) or getattr(layer, "weights", None)):
            shared.add(id(layer))
        stack.extend(getattr(layer, "layers", None) or [])
        stack.append(getattr(layer, "base_model", None))
    return shared | {id(weight) for weight in getattr(model, "trainable_weights", [])}


class _FreshModels:
    """E67: a recipe's factory, checked to build a new model at every call. One that
    shares layers with the audited model (or with the model it returned before) would
    train the audited model in the shadows' place, and each shadow from the last
    one's weights. The last model is kept alive, so that its ids are not reused."""

    def __init__(self, recipe, target):
        self.factory, self.name = recipe.model_factory, recipe.name
        self.target = set() if target is None else _layer_ids(target)
        self.last = None

    def __call__(self):
        model = self.factory()
        ids = _layer_ids(model)
        if ids & self.target:
            shared = ("the audited model: training the shadows would train it further "
                      "(its weights move) and start each shadow where the last stopped")
        elif self.last is not None and ids & _layer_ids(self.last):
            shared = ("the model it returned at the call before: each shadow would "
                      "start where the last stopped, and train the model the factory "
                      "closes over")
        else:
            self.last = model
            return model
        label = f" '{self.name}'" if self.name else ""
        raise ValueError(
            f"E67: the shadow recipe{label}'s factory returns a model that shares layers "
            f"with {shared}. The factory must build everything anew at each call: "
            "`lambda: make_model()` with the base model made inside it, not "
            "`lambda: model` or `lambda: AdaMixupModel(base)` around one `base`.")


def _recipe_shadows(recipe, x_pop, y_pop, seed, batch_size, indices=None, groups=None,
                    target=None):
    """`(masks, shadow outputs)` of one recipe: trained, or read from its cache
    (`target`: the audited model, which the shadows must not share layers with)."""
    masks = lira_lib.shadow_masks(recipe.num_shadows, len(x_pop), seed, groups=groups)
    fingerprint = lira_lib.fingerprint(x_pop, y_pop, recipe.num_shadows, seed,
                                       recipe.fit_kwargs, recipe.model_factory,
                                       augment=recipe.augment, groups=groups)
    try:
        outs = lira_lib.shadow_outputs(
            # in this process: each model checked (E67); jobs pickle the factory itself
            recipe.model_factory if (recipe.jobs or 1) > 1 else _FreshModels(recipe, target),
            x_pop, y_pop, masks, fit_kwargs=recipe.fit_kwargs,
            cache_dir=recipe.cache_dir, fingerprint=fingerprint,
            predict_batch_size=batch_size, seed=seed, progress=recipe.progress,
            jobs=recipe.jobs, together=recipe.together, indices=indices,
            augment=recipe.augment)
    except (ValueError, TypeError) as error:  # a user's error met in a shadow's fit
        if hasattr(error, "add_note"):  # Python 3.11+
            error.add_note(
                "(raised while training the shadows of the "
                + (f"recipe '{recipe.name}'" if recipe.name else "first (own) recipe")
                + ": its model_factory and fit_kwargs; each "
                "shadow trains on half the members and non-members, so fit_kwargs "
                "that name rows (validation_data) may be a function of the shadow's "
                "(x, y): docs/guide/audit.md)")
        raise
    return masks, outs


def _lira_rows(recipe, population, opts, outputs="auto"):
    """Every registered shadow attack with one recipe: `(rows, histograms, metadata, scores)`.

    `population` is a `Population` (members first); the rows and metadata
    are of the ordinary members and non-members, the scores of every row.
    """
    x_pop, y_pop, out_pop = population.x, population.y, population.outputs
    n_members, n_ordinary = population.n_members, population.n_ordinary
    if recipe.num_shadows < lira_lib.ENOUGH_SHADOWS:
        warnings.warn(lira_lib.FewShadowsWarning(
            f"{recipe.num_shadows} shadows{' (' + recipe.name + ')' if recipe.name else ''}: "
            f"LiRA and RMIA understate the TPR at low FPR with fewer than "
            f"{lira_lib.ENOUGH_SHADOWS} (3-4x at 4 shadows on the digits MLP); use "
            f"num_shadows={lira_lib.ENOUGH_SHADOWS} or more where they train together."),
            stacklevel=_stack.user_level())
    masks, shadow_outs = _recipe_shadows(recipe, x_pop, y_pop, opts.seed, opts.batch_size,
                                         groups=population.groups, target=population.model)
    if recipe.augment is not None:
        out_pop = lira_lib.predict_views(population.model, x_pop, recipe.augment,
                                         opts.batch_size)
    rows, hists, named = [], {}, {}
    for source, scorer in registry.SHADOW_ATTACKS.items():
        scores = scorer(out_pop, shadow_outs, y_pop, masks, recipe, outputs)
        for variant, s in scores.items():
            attack = f"{variant}_{recipe.name}" if recipe.name else variant
            named[attack] = s
            row, hist = attacks_lib.rows_from_scores(attack, s[:n_members],
                                                     s[n_members:n_ordinary], source)
            rows.append(row)
            hists[attack] = hist
    online = named[f"lira_online_{recipe.name}" if recipe.name else "lira_online"]
    meta = {"num_shadows": recipe.num_shadows, "fit_kwargs": _describe(recipe.fit_kwargs),
            "enough_shadows": recipe.num_shadows >= lira_lib.ENOUGH_SHADOWS,
            "augment": recipe.augment,
            "rmia": {"offline_a": recipe.rmia_offline_a, "gamma": recipe.rmia_gamma}}
    meta.update(exposure(online[:n_members], online[n_members:n_ordinary],
                         y_pop[:n_members]))
    if recipe.name:
        meta["name"] = recipe.name
    return rows, hists, meta, named


def train_shadows(members, nonmembers, lira, indices, *, seed=0, batch_size=512,
                  canaries=None):
    """Trains only the shadows `indices` of every recipe in `lira` into its cache.

    One job of a job array: run it once per shadow index (e.g. with
    ``SLURM_ARRAY_TASK_ID``), every job with the same data, seed and `lira`
    (each recipe needs a ``cache_dir`` on a shared file system), then run
    `run_audit` with the same arguments: it finds every shadow cached and
    trains none. Pass the same `canaries` as the audit will (their rows
    are part of every shadow's population). Returns the number of shadows
    trained or found.

    Args:
        members: `(x, y)` the audited model trained on (without canaries).
        nonmembers: `(x, y)` it never saw.
        lira: a `ShadowRecipe`, a dict of its fields, or a list of them; each
            with a ``cache_dir``.
        indices: the shadow indices to train, in ``[0, num_shadows)``.
        seed: the audit's seed (the shadows' halves depend on it).
        batch_size: the batch size of the shadows' predictions.
        canaries: the audit's `CanarySet`, or `None`.

    Example:

    ```python
    index = int(os.environ["SLURM_ARRAY_TASK_ID"])
    audit.train_shadows(members, nonmembers, recipe, indices=[index])
    ```
    """
    recipes = options_lib.shadow_recipes(lira)
    (x_m, y_m), (x_n, y_n) = members, nonmembers
    check_finite_inputs(x_m, "members")
    check_finite_inputs(x_n, "nonmembers")
    if canaries is not None:
        _check_canaries(canaries, x_m)
    population = Population.of((x_m, y_m, None), (x_n, y_n, None), None, canaries, None)
    done = 0
    for recipe in recipes:
        if not recipe.cache_dir:
            raise ValueError("Training shadows as separate jobs needs a `cache_dir` in every "
                             "LiRA recipe: that is where the audit finds them.")
        _, outs = _recipe_shadows(recipe, population.x, population.y, seed, batch_size,
                                  indices=indices, groups=population.groups)
        done += sum(o is not None for o in outs)
    return done


def exposure(member_scores, nonmember_scores, member_labels, top=10):
    """Per-example vulnerability: the members an attack singles out most.

    For each member, the number of non-members that score at least as high
    (0: the attack finds this member at zero false positives). Returns
    ``zero_fp_members`` (how many members are found at zero false positives)
    and ``most_exposed``: the `top` members by score, each with its index
    among the members, label, score and ``nonmembers_above``.
    """
    member_scores = np.asarray(member_scores, dtype="float64")
    ranked = np.sort(np.asarray(nonmember_scores, dtype="float64"))
    above = len(ranked) - np.searchsorted(ranked, member_scores, side="left")
    order = np.argsort(-member_scores, kind="stable")[:top]
    return {
        "zero_fp_members": int(np.sum(above == 0)),
        "most_exposed": [{"member": int(i), "label": int(member_labels[i]),
                          "score": float(member_scores[i]),
                          "nonmembers_above": int(above[i])} for i in order],
    }


def _describe(fit_kwargs):
    """JSON-able description of LiRA's fit arguments (a dict or a function)."""
    if callable(fit_kwargs):
        return {"function": getattr(fit_kwargs, "__qualname__", repr(fit_kwargs))}
    return {k: repr(v) for k, v in (fit_kwargs or {}).items()}


def _is_dataset(data):
    import tensorflow as tf

    return isinstance(data, tf.data.Dataset)


def _batches(data, name):
    """Yields `(x, y)` numpy batches from a batched dataset of `(x, y)` (or arrays)."""
    import tensorflow as tf

    if not _is_dataset(data):
        data = tf.data.Dataset.from_tensor_slices(tuple(data)).batch(512)
    spec = data.element_spec
    if not isinstance(spec, tuple) or len(spec) < 2 or spec[1].shape.rank == 0:
        raise ValueError(
            f"`{name}` must be a batched tf.data.Dataset of (x, y), got element_spec {spec}."
        )
    for element in data.as_numpy_iterator():
        yield element[0], element[1]


def _predicted_labels(out, outputs="auto"):
    out = preds_lib.as_outputs(out, "outputs")
    if out.shape[1] == 1:
        threshold = 0.5 if preds_lib.resolve_kind(out, outputs) == "probabilities" else 0.0
        return (out[:, 0] >= threshold).astype("int64")
    return np.argmax(out, axis=1)


def _run_audit_streamed(model, members, nonmembers, opts, *, start, name, metadata):
    """`run_audit` for datasets: one pass for outputs, one more for the noise attack."""
    sides, digests, moments = {}, {}, np.zeros(3)  # count, sum, sum of squares
    peaks = {}  # each row's largest magnitude: E68, as for arrays
    for side, data in (("members", members), ("nonmembers", nonmembers)):
        outs, labels, rows, peaks[side] = [], [], [], []
        for x, y in _batches(data, side):
            check_finite_inputs(x, side)
            _check_input_shape(model, x, side)
            outs.append(np.asarray(model.predict_on_batch(x)))
            labels.append(np.asarray(y))
            if opts.check_overlap:
                rows.extend(preds_lib.row_digests(x))
            peaks[side].append(_checks.row_peaks(x))
            xf = np.asarray(x, dtype="float64")
            moments += (xf.size, xf.sum(), np.square(xf).sum())
        if not outs:
            raise ValueError(f"`{side}` is an empty dataset.")
        sides[side] = (np.concatenate(outs), np.concatenate(labels))
        digests[side] = rows
    _checks.same_scale(_checks.joined_peaks(peaks["members"]),
                       _checks.joined_peaks(peaks["nonmembers"]), ("members", "non-members"),
                       "E68")
    if opts.check_overlap:
        _check_disjoint(preds_lib.count_common(digests["members"], digests["nonmembers"]))
        _check_own_holdout(model, digests["members"], digests["nonmembers"])
    (out_m, y_m), (out_n, y_n) = sides["members"], sides["nonmembers"]
    outputs, kind_meta = _output_kind(model, out_m, out_n, opts)
    classes, y_m, y_n = _labels(out_m, y_m, y_n)
    noise_scores = None
    if opts.label_only_noise is not None:
        count, total, squares = moments
        scale = float(np.sqrt(max(squares / count - (total / count) ** 2, 0.0)))
        noise_scores = []
        for side, data in (("members", members), ("nonmembers", nonmembers)):
            per_batch = [label_only.noise_robustness_scores(
                lambda a: _predicted_labels(model.predict_on_batch(a), outputs), x,
                preds_lib.as_labels(y, side + " labels", classes), noise=opts.label_only_noise,
                queries=opts.label_only_queries, seed=opts.seed + i, scale=scale)
                for i, (x, y) in enumerate(_batches(data, side))]
            noise_scores.append(np.concatenate(per_batch))
    meta = {"seed": opts.seed, "label_only_noise": opts.label_only_noise,
            "label_only_queries": opts.label_only_queries, "streamed": True, **kind_meta}
    return _report(model, (out_m, y_m, out_n, y_n), noise_scores, [], {}, meta, opts, outputs,
                   start=start, name=name, metadata=metadata)
