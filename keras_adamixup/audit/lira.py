"""LiRA (Carlini et al. 2022) with shadow models, scored by TF Privacy.

The population is the audited set itself (members ∪ non-members of the target
model). Each of `num_shadows` shadow models is trained, with the user's model
factory and fit arguments, on a random half of the population chosen so that
every example is "in" for exactly half of the shadows. For each example the
statistic is TF Privacy's `calculate_statistic(..., option="logit")` (the
logit-scaled confidence in the true class); `compute_score_lira` compares the
target model's statistic with the in/out shadow distributions:

- online: both distributions (``option="both"``);
- offline: only the "out" distribution (``option="out"``), so no shadow needs
  to train on the audited examples.

Shadow predictions are cached in `cache_dir` (one `.npz` per shadow, written
atomically), so an interrupted audit resumes with the shadows it has.
"""

import hashlib
import json
import os

import numpy as np

from keras_adamixup.audit import _io
from keras_adamixup.audit import _tfp
from keras_adamixup.audit import predictions as preds_lib


def shadow_masks(num_shadows, population, seed):
    """`(num_shadows, population)` bool: example j is in shadow i's training set.

    Every example is in exactly ``num_shadows // 2`` shadows.
    """
    if num_shadows < 2 or num_shadows % 2:
        raise ValueError(f"`num_shadows` must be an even number ≥ 2, got {num_shadows}.")
    rng = np.random.default_rng(seed)
    order = rng.random((num_shadows, population)).argsort(axis=0)
    return order < num_shadows // 2


def _fingerprint(x, y, num_shadows, seed, fit_kwargs):
    h = hashlib.sha256()
    for a in (np.ascontiguousarray(x), np.ascontiguousarray(y)):
        h.update(str(a.shape).encode() + str(a.dtype).encode())
        h.update(a.tobytes())
    if callable(fit_kwargs):
        fit_kwargs = {"fit_kwargs": getattr(fit_kwargs, "__qualname__", repr(fit_kwargs))}
    h.update(json.dumps([num_shadows, seed, sorted((fit_kwargs or {}).items())],
                        default=str).encode())
    return h.hexdigest()


def _progress(iterable, total, enabled):
    if not enabled:
        return iterable
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return iterable
    return tqdm(iterable, total=total, desc="LiRA shadow models", unit="model")


def shadow_outputs(model_factory, x, y, masks, *, fit_kwargs=None, cache_dir=None,
                   fingerprint=None, predict_batch_size=512, seed=0, progress=True):
    """Trains (or loads from the cache) every shadow; returns their outputs."""
    import keras

    def kwargs_for(x_train, y_train):
        kwargs = fit_kwargs(x_train, y_train) if callable(fit_kwargs) else fit_kwargs
        kwargs = dict(kwargs or {})
        kwargs.setdefault("verbose", 0)
        return kwargs

    if cache_dir is not None:
        os.makedirs(cache_dir, exist_ok=True)
        manifest = os.path.join(cache_dir, "manifest.json")
        if os.path.exists(manifest):
            with open(manifest, encoding="utf-8") as f:
                cached = json.load(f).get("fingerprint")
            if cached != fingerprint:
                raise ValueError(
                    f"The LiRA cache in {cache_dir!r} belongs to a different audit "
                    "(other data, seed, number of shadows or fit arguments). Use "
                    "another `cache_dir` or delete it."
                )
        else:
            _io.write_text(manifest, json.dumps({"fingerprint": fingerprint}))
    outputs = []
    for i in _progress(range(len(masks)), len(masks), progress):
        path = None if cache_dir is None else os.path.join(cache_dir, f"shadow_{i:03d}.npz")
        if path is not None and os.path.exists(path):
            outputs.append(np.load(path)["outputs"])
            continue
        keras.utils.set_random_seed(seed * 1000 + i)
        model = model_factory()
        x_train, y_train = x[masks[i]], y[masks[i]]
        model.fit(x_train, y_train, **kwargs_for(x_train, y_train))
        out = np.asarray(model.predict(x, batch_size=predict_batch_size, verbose=0))
        if path is not None:
            with _io.atomic_path(path) as tmp:
                with open(tmp, "wb") as f:
                    np.savez(f, outputs=out, mask=masks[i])
        outputs.append(out)
        keras.backend.clear_session(free_memory=False)
    return outputs


def lira_scores(target_outputs, shadow_outs, labels, masks, fix_variance=None):
    """Membership scores (higher ⇒ member) for the online and offline variants."""
    tfp = _tfp.load()
    labels = np.asarray(labels)

    def statistic(outputs):
        outputs = preds_lib.as_outputs(outputs, "outputs")
        kind = preds_lib.output_kind(outputs)
        probs = preds_lib.to_probabilities(outputs, kind)
        return tfp.calculate_statistic(probs, labels, is_logits=False, option="logit")

    stats = np.stack([statistic(o) for o in shadow_outs])  # (shadows, n)
    target = statistic(target_outputs)[:, None]
    stat_in = [stats[masks[:, j], j][:, None] for j in range(stats.shape[1])]
    stat_out = [stats[~masks[:, j], j][:, None] for j in range(stats.shape[1])]
    if fix_variance is None:
        # Carlini et al.: a global variance is better with few shadow models.
        fix_variance = len(shadow_outs) < 64
    online = -tfp.compute_score_lira(target, stat_in, stat_out, option="both",
                                     fix_variance=fix_variance)
    offline = -tfp.compute_score_lira(target, stat_in, stat_out, option="out",
                                      fix_variance=fix_variance)
    return {"lira_online": online, "lira_offline": offline}
