"""LiRA (Carlini et al. 2022) with shadow models, scored by TF Privacy.

The population is the audited set itself (members ∪ non-members of the target
model). Each of `num_shadows` shadow models is trained, with the user's model
factory and fit arguments, on a random half of the population chosen so that
every example is "in" for exactly half of the shadows. For each example the
statistic is the logit-scaled confidence in the true class, ``log p_y − log(1
− p_y)``: TF Privacy's `calculate_statistic(..., option="logit")`, computed
stably from logits (`logit_statistic`; TF Privacy's form turns infinite once a
probability rounds to 1) and on probabilities clipped into
[1e-15, 1 − 1e-15]; `compute_score_lira` compares the target model's
statistic with the in/out shadow distributions:

- online: both distributions (``option="both"``);
- offline: only the "out" distribution (``option="out"``), so no shadow needs
  to train on the audited examples.

Shadow predictions are cached in `cache_dir` (one `.npz` per shadow, written
atomically, with its checksum in the cache's manifest: `ShadowCache`), so an
interrupted audit resumes with the shadows it has, and a changed, truncated
or foreign file is refused by name.
"""

import concurrent.futures
import hashlib
import json
import multiprocessing
import os
import pickle

import numpy as np

from keras_adamixup import _cache, _checks
from keras_adamixup._progress import Bar
from keras_adamixup.audit import _tfp
from keras_adamixup.audit import registry
from keras_adamixup.audit._predict import predict_outputs
from keras_adamixup import predictions as preds_lib


# Below this many shadows LiRA's and RMIA's TPR at low FPR is understated: on
# an undefended digits MLP RMIA online's TPR at 0.1 % FPR was 0.014 with 4
# shadows, 0.047 with 16 and 0.054 with 64. Reports warn below it.
ENOUGH_SHADOWS = 16


class FewShadowsWarning(UserWarning):
    """A shadow recipe with fewer than `ENOUGH_SHADOWS` shadows: the low-FPR
    numbers of LiRA and RMIA are understated (the report says so too)."""


def check_num_shadows(num_shadows):
    """`num_shadows` must be even and ≥ 2 (every example in exactly half); returns it."""
    if num_shadows < 2 or num_shadows % 2:
        raise ValueError(f"`num_shadows` must be an even number ≥ 2, got {num_shadows}.")
    return num_shadows


def shadow_masks(num_shadows, population, seed, groups=None):
    """`(num_shadows, population)` bool: example j is in shadow i's training set.

    Every example is in exactly ``num_shadows // 2`` shadows. With `groups`
    (one id per example, ids ``0 … g − 1``), the draw is per group: the
    examples of a group are in the same shadows (a duplicated canary's two
    rows in or out together). Without it, the draw is the one every earlier
    version made (cached shadows stay valid).
    """
    check_num_shadows(num_shadows)
    rng = np.random.default_rng(seed)
    if groups is None:
        order = rng.random((num_shadows, population)).argsort(axis=0)
        return order < num_shadows // 2
    groups = np.asarray(groups, dtype="int64")
    if groups.shape != (population,):
        raise ValueError(f"`groups` needs one id per example ({population}), got "
                         f"{groups.shape}.")
    order = rng.random((num_shadows, int(groups.max()) + 1)).argsort(axis=0)
    return (order < num_shadows // 2)[:, groups]


def describe_recipe(model_factory, fit_kwargs):
    """What the shadows' meaning depends on, as JSON-able data.

    - the model the factory builds: architecture and compile configuration
      (an `AdaMixupModel`'s schedule, mixing mode and seed included), with
      auto-generated layer names normalised; a factory (or fit-arguments
      function) with a ``fingerprint()`` method describes itself instead;
    - the fit arguments (a dict, or a function's qualified name).
    """
    import keras

    if hasattr(model_factory, "fingerprint"):
        model = {"factory": model_factory.fingerprint()}
    else:
        built = model_factory()
        compile_config = built.get_compile_config() if getattr(built, "compiled", False) else None
        model = _cache.canonical({
            "model": keras.saving.serialize_keras_object(built),
            "compile": keras.saving.serialize_keras_object(compile_config),
        })
    if callable(fit_kwargs):
        if hasattr(fit_kwargs, "fingerprint"):
            fit = {"function": fit_kwargs.fingerprint()}
        else:
            kind = fit_kwargs if hasattr(fit_kwargs, "__qualname__") else type(fit_kwargs)
            fit = {"function": f"{kind.__module__}.{kind.__qualname__}"}
    else:
        fit = sorted((fit_kwargs or {}).items())
    return {"model": model, "fit_kwargs": fit}


AUGMENTS = (None, "flip")
TOGETHER = ("auto", True, False)


def check_augment(augment):
    """`augment` must be one of `AUGMENTS`; returns it."""
    if augment not in AUGMENTS:
        raise ValueError(f"`augment` must be one of {AUGMENTS}, got {augment!r}.")
    return augment


def check_together(together):
    """`together` must be one of `TOGETHER` (a bool, not 1 or 0); returns it."""
    return _checks.together(together)


def query_views(x, augment):
    """The inputs every model is queried on: ``[x]``, or with ``augment="flip"``
    also the horizontally flipped images (`x` of shape (n, height, width,
    channels)), as LiRA queries augmented copies (Carlini et al. 2022)."""
    if check_augment(augment) is None:
        return [x]
    if np.ndim(x) != 4:
        raise ValueError("augment='flip' flips images: `x` must have shape (n, height, "
                         f"width, channels), got {np.shape(x)}.")
    return [x, np.ascontiguousarray(np.asarray(x)[:, :, ::-1, :])]


def predict_views(model, x, augment, batch_size=512):
    """Outputs on every query view: `(n, classes)`, or `(views, n, classes)` with `augment`."""
    outs = [predict_outputs(model, view, batch_size) for view in query_views(x, augment)]
    return outs[0] if augment is None else np.stack(outs)


def fingerprint(x, y, num_shadows, seed, fit_kwargs, model_factory, augment=None,
                groups=None):
    """Hash of everything that makes cached shadows valid for an audit (see E23).

    The population (values, shapes, dtypes), the number of shadows, the
    seed and the groups (they fix which examples each shadow trains on), and
    `describe_recipe` (model, compile configuration, fit arguments).
    """
    h = hashlib.sha256()
    arrays = [np.ascontiguousarray(x), np.ascontiguousarray(y)]
    if groups is not None:
        arrays.append(np.ascontiguousarray(groups, dtype="int64"))
    for a in arrays:
        h.update(str(a.shape).encode() + str(a.dtype).encode())
        h.update(a.tobytes())
    recipe = describe_recipe(model_factory, fit_kwargs)
    described = [num_shadows, seed, recipe] + ([] if augment is None else [augment])
    h.update(json.dumps(described, default=str, sort_keys=True).encode())
    return h.hexdigest()


def _build_shadow(i, model_factory, seed):
    import keras

    keras.utils.set_random_seed(seed * 1000 + i)
    return model_factory()


def _train_shadow(i, model_factory, x, y, mask, fit_kwargs, seed, predict_batch_size,
                  path, augment=None):
    """Trains shadow `i` on `x[mask]`, predicts on all of `x`, caches, returns outputs."""
    import keras

    model = _build_shadow(i, model_factory, seed)
    model.fit(x[mask], y[mask], **fit_kwargs)
    out = _save_outputs(model, x, mask, predict_batch_size, path, augment)
    keras.backend.clear_session(free_memory=False)
    return out


def _save_outputs(model, x, mask, predict_batch_size, path, augment=None):
    out = predict_views(model, x, augment, predict_batch_size)
    if path is not None:
        ShadowCache.save(path, outputs=out, mask=mask)
    return out


class ShadowCache(_cache.CheckedFolder):
    """A LiRA cache folder: one ``shadow_NNN.npz`` per shadow and its manifest.

    The manifest is ``manifest.json`` (the fingerprint of the audit the
    shadows belong to, E23) and ``manifest.d/shadow_NNN.json``, one entry per
    shadow with the SHA-256 of its file, written beside the file (so jobs of
    a job array never write the same file). Loading verifies the entry, the
    file's arrays, their shapes and the shadow's training mask; any problem
    names the file and says to delete it (E37). The folder's mechanics are
    `keras_adamixup._cache.CheckedFolder`'s.

    Args:
        folder: the cache folder (created).
        fingerprint: `fingerprint(...)` of this audit.
    """

    stem = "shadow"
    label = "LiRA cache"
    items = "shadows"
    belongs_elsewhere = ("a different audit (other data, seed, number of shadows, shadow "
                         "model, compile settings or fit arguments)")
    needs = "this audit"
    hint = " (or `--out`)"
    redo = "the audit trains that shadow again"
    error_id = "E37"
    elsewhere_id = "E23"

    def load(self, i, mask, rows, augment=None):
        """Shadow `i`'s outputs, verified against its manifest entry, `mask` and `rows`."""
        data = self.read(i, ("outputs", "mask"))
        outputs, stored_mask = data["outputs"], data["mask"]
        views = outputs.ndim == 3
        if (outputs.ndim not in (2, 3) or outputs.shape[-2] != rows
                or views != (augment is not None) or outputs.dtype.kind != "f"):
            raise self.refuse(i, f"holds outputs of shape {outputs.shape} ({outputs.dtype}), "
                                 f"not {'(views, ' if augment else '('}{rows}, classes) floats")
        if stored_mask.shape != np.shape(mask) or not np.array_equal(stored_mask, mask):
            raise self.refuse(i, f"was trained on another half of the population than "
                                 f"shadow {i}")
        return outputs


def _train_stacked(tasks, model_factory, x, y, masks, seed, predict_batch_size, together,
                   progress):
    """Trains `tasks`' shadows together (`shadow_stack`); their outputs, or `None`
    when they cannot be stacked and `together` is ``"auto"``."""
    import keras

    from keras_adamixup.audit import shadow_stack

    kwargs = tasks[0][5]
    models = [_build_shadow(task[0], model_factory, seed) for task in tasks]
    reason = (shadow_stack.stack_reason(models, kwargs, x)
              if all(task[5] == kwargs for task in tasks)
              else "the fit arguments differ between shadows")
    if reason is not None:
        if together is True:
            raise ValueError(f"E33: LiRA shadows cannot train together (together=True): "
                             f"{reason}.")
        keras.backend.clear_session(free_memory=False)
        return None
    ids = [task[0] for task in tasks]
    epochs = kwargs.get("epochs", 1)
    with Bar(epochs, f"LiRA shadow models ({len(ids)} together)", "epoch", progress) as bar:
        shadow_stack.train_together(
            models, x, y, masks[ids], epochs=epochs, batch_size=kwargs.get("batch_size", 32),
            shuffle=kwargs.get("shuffle", True), seed=seed, shadow_ids=ids,
            progress=lambda epoch: bar.update())
    outputs = {task[0]: _save_outputs(model, x, masks[task[0]], predict_batch_size, task[8],
                                      task[9])
               for task, model in zip(tasks, models)}
    keras.backend.clear_session(free_memory=False)
    return outputs


def _check_picklable(model_factory, fit_kwargs):
    try:
        pickle.dumps((model_factory, fit_kwargs))
    except Exception as error:  # pickling raises many types
        raise ValueError(
            "LiRA with jobs > 1 trains shadows in separate processes, so "
            "`model_factory` and the fit arguments must be picklable (module-level "
            "functions or classes, not lambdas or closures); got "
            f"{type(error).__name__}: {error}. Use jobs=1 otherwise."
        ) from None


def shadow_outputs(model_factory, x, y, masks, *, fit_kwargs=None, cache_dir=None,
                   fingerprint=None, predict_batch_size=512, seed=0, progress=True, jobs=1,
                   together="auto", indices=None, augment=None):
    """Trains (or loads from the cache) every shadow; returns their outputs.

    ``augment``: ``None``, or ``"flip"``: every shadow is also queried on the
    flipped images (`query_views`); outputs then have shape `(2, n, classes)`.

    ``indices``: only these shadows (the others' entries are `None`): one
    job of a job array that trains shadows into a shared `cache_dir`.

    ``together``: ``"auto"`` (default) trains the missing shadows together in
    one compiled step (`keras_adamixup.audit.shadow_stack`, its docstring
    lists the documented differences) when the recipe allows it (a plain
    Keras model, fit arguments without callbacks or validation data), else
    one after another; ``True`` requires it (`ValueError` saying why not);
    ``False`` always trains one after another.

    With ``jobs > 1`` sequential shadows train in that many separate
    processes (spawned; each imports TensorFlow), with the same per-shadow
    seeds, so the results match ``jobs=1`` up to floating-point noise.
    """
    _checks.positive_int("jobs", jobs)
    query_views(x[:1], augment)  # checks `augment` (and the input rank) before any training
    check_together(together)
    cache = None if cache_dir is None else ShadowCache(cache_dir, fingerprint)
    wanted = range(len(masks)) if indices is None else sorted(set(indices))
    outputs, tasks = _cached_and_missing(model_factory, x, y, masks, wanted, cache, fit_kwargs,
                                         seed, predict_batch_size, augment)
    if together is not False and len(tasks) >= 2:
        stacked = _train_stacked(tasks, model_factory, x, y, np.asarray(masks), seed,
                                 predict_batch_size, together, progress)
        if stacked is not None:
            for i, out in stacked.items():
                outputs[i] = out
            return outputs
    if jobs == 1 or len(tasks) <= 1:
        with Bar(len(tasks), "LiRA shadow models", "model", progress) as bar:
            for task in tasks:
                outputs[task[0]] = _train_shadow(*task)
                bar.update()
        return outputs
    _check_picklable(model_factory, [t[5] for t in tasks])
    _train_in_processes(tasks, jobs, outputs, progress)
    return outputs


def _shadow_fit_kwargs(fit_kwargs, x_train, y_train):
    """A shadow's fit arguments (`fit_kwargs` may be a function of its data)."""
    kwargs = fit_kwargs(x_train, y_train) if callable(fit_kwargs) else fit_kwargs
    kwargs = dict(kwargs or {})
    kwargs.setdefault("verbose", 0)
    return kwargs


def _cached_and_missing(model_factory, x, y, masks, wanted, cache, fit_kwargs, seed,
                        predict_batch_size, augment):
    """Loads the `wanted` shadows found in `cache`; lists the others.

    Returns:
        ``(outputs, tasks)``: one entry per shadow (`None` unless loaded) and
        the `_train_shadow` arguments of every shadow still to train.
    """
    outputs, tasks = [None] * len(masks), []
    for i in wanted:
        if not 0 <= i < len(masks):
            raise ValueError(f"Shadow index {i} is outside 0 … {len(masks) - 1} "
                             f"({len(masks)} shadows).")
        path = None if cache is None else cache.path(i)
        if path is not None and os.path.exists(path):
            outputs[i] = cache.load(i, masks[i], len(x), augment)
            continue
        kwargs = _shadow_fit_kwargs(fit_kwargs, x[masks[i]], y[masks[i]])
        tasks.append((i, model_factory, x, y, masks[i], kwargs, seed, predict_batch_size, path,
                      augment))
    return outputs, tasks


def _train_in_processes(tasks, jobs, outputs, progress):
    """Trains the shadows of `tasks` in `jobs` spawned processes, into `outputs`."""
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool, \
            Bar(len(tasks), "LiRA shadow models", "model", progress) as bar:
        futures = {pool.submit(_train_shadow, *task): task[0] for task in tasks}
        for future in concurrent.futures.as_completed(futures):
            outputs[futures[future]] = future.result()
            bar.update()


# Probabilities are clipped into [PROB_FLOOR, 1 − PROB_FLOOR] before the logit
# statistic (float64: 1 − 1e-15 is still below 1).
PROB_FLOOR = 1e-15


# LiRA's logit-scaled confidence from logits, stably (shared with the monitor).
logit_statistic = preds_lib.log_odds_from_logits


def lira_scores(target_outputs, shadow_outs, labels, masks, fix_variance=None,
                outputs="auto", statistic="logit"):
    """Membership scores (higher ⇒ member) for every LiRA variant from one set of shadows.

    ``lira_online`` / ``lira_offline``: the in/out Gaussians with a global
    variance when there are fewer than 64 shadows (Carlini et al.: better
    with few shadows), else per-example variances (`fix_variance` forces
    either). The other variance choice is scored too, as
    ``lira_online_pervar`` / ``lira_offline_pervar`` (per-example variances,
    when the plain names use the global one) or ``lira_online_globalvar`` /
    ``lira_offline_globalvar``.

    Outputs of shape `(views, n, classes)` (augmented queries) give one
    statistic per view; TF Privacy fits the Gaussians per view.

    `outputs`: ``"logits"``, ``"probabilities"`` or ``"auto"`` (detected per model).

    `statistic`: ``"logit"`` (the log-odds of the true class, LiRA's) or
    ``"hinge"`` (`predictions.hinge`, the true class' margin over the
    runner-up); with ``"hinge"`` only the online and offline variants with
    the global variance are scored, as ``lira_online_hinge`` /
    ``lira_offline_hinge``.
    """
    tfp = _tfp.load()
    labels = np.asarray(labels)
    outputs_kind = preds_lib.check_kind(outputs)
    _checks.choice("statistic", statistic, ("logit", "hinge"))
    stats = np.stack([_statistics(o, labels, outputs_kind, statistic, tfp)
                      for o in shadow_outs])  # (shadows, n, views)
    target = _statistics(target_outputs, labels, outputs_kind, statistic, tfp)
    stat_in = [stats[masks[:, j], j] for j in range(stats.shape[1])]
    stat_out = [stats[~masks[:, j], j] for j in range(stats.shape[1])]
    if fix_variance is None:
        fix_variance = len(shadow_outs) < 64
    scores = {}
    for fixed, suffix in _variance_choices(fix_variance, statistic):
        for variant, option in (("online", "both"), ("offline", "out")):
            scores[f"lira_{variant}{suffix}"] = -tfp.compute_score_lira(
                target, stat_in, stat_out, option=option, fix_variance=fixed)
    return scores


def _variance_choices(fix_variance, statistic):
    """``(fix_variance, name suffix)`` of every variance choice scored."""
    if statistic == "hinge":
        return ((True, "_hinge"),)
    return ((fix_variance, ""),
            (not fix_variance, "_pervar" if fix_variance else "_globalvar"))


def _statistic(outputs, labels, outputs_kind, statistic, tfp):
    """One view's statistic per example, shape `(n,)`."""
    outputs = preds_lib.as_outputs(outputs, "outputs")
    kind = preds_lib.resolve_kind(outputs, outputs_kind)
    if statistic == "hinge":
        return preds_lib.hinge(outputs, labels, kind)
    if kind == "logits" and outputs.shape[1] > 1:
        return logit_statistic(outputs, labels)
    # probabilities of exactly 0 or 1 (saturated outputs, test-time
    # defences) would make log(p / (1 − p)) infinite
    probs = np.clip(preds_lib.to_probabilities(outputs, kind), PROB_FLOOR, 1.0 - PROB_FLOOR)
    return tfp.calculate_statistic(probs, labels, is_logits=False, option="logit")


def _statistics(outputs, labels, outputs_kind, statistic, tfp):
    """One model's statistics, shape `(n, views)` (one view without augmentation)."""
    outputs = np.asarray(outputs)
    views = outputs if outputs.ndim == 3 else outputs[None]
    return np.stack([_statistic(v, labels, outputs_kind, statistic, tfp) for v in views],
                    axis=-1)


@registry.register_shadow_attack("lira")
def _lira_attack(target_outputs, shadow_outs, labels, masks, recipe, outputs):
    return lira_scores(target_outputs, shadow_outs, labels, masks,
                       fix_variance=recipe.fix_variance, outputs=outputs)


@registry.register_shadow_attack("lira_hinge")
def _lira_hinge_attack(target_outputs, shadow_outs, labels, masks, recipe, outputs):
    return lira_scores(target_outputs, shadow_outs, labels, masks, outputs=outputs,
                       statistic="hinge")
