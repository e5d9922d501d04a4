"""Typed audit configuration: `AuditOptions` and `ShadowRecipe`.

As TF Privacy types its inputs (`AttackInputData`, `SlicingSpec`), the audit
types its configuration: one options object instead of a dozen keyword
arguments passed down `run_audit`, and one recipe per set of shadow models
instead of a dict of eight keys. Both are frozen dataclasses checked when
they are made (`_checks`' rule: a wrong type raises `TypeError`, a wrong
value `ValueError`). `run_audit` still takes every option as a keyword, and
`lira=` still takes dicts: they are turned into these (an unknown key is a
`TypeError` naming the known ones).

Example:

```python
options = audit.AuditOptions(attacks=audit.CHEAP_ATTACKS, seed=1)
recipe = audit.ShadowRecipe(make_model, num_shadows=8, cache_dir="lira_cache",
                            fit_kwargs={"epochs": 30, "batch_size": 64})
report = audit.run_audit(model, members, nonmembers, options=options, lira=recipe)
```
"""

import dataclasses
from typing import Any, Callable, Optional

from keras_adamixup import _checks
from keras_adamixup import predictions as preds_lib
from keras_adamixup.audit import attacks as attacks_lib
from keras_adamixup.audit import lira as lira_lib


def _from_mapping(cls, values, what):
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise TypeError(f"Unknown {what} {unknown}; known: {known}.")
    return cls(**values)


@dataclasses.dataclass(frozen=True)
class AuditOptions:
    """How `run_audit` / `audit_predictions` attack a model.

    Args:
        attacks: TF Privacy attacks (`ALL_ATTACKS`, `CHEAP_ATTACKS`, or one name).
        slices: ``"entire"``, ``"class"``, ``"correctness"``.
        thorough: every attack on every slice, TF Privacy's grid search (slow).
        min_per_slice: minimum members and non-members for a slice.
        fast_attacks: trained attacks with fixed hyperparameters on a capped
            sample (default); ``False``: TF Privacy's grid search.
        attack_backend: joblib backend for TF Privacy's trained attacks.
        label_only_noise: σ of the noise-robustness attack relative to the
            inputs' standard deviation; `None` skips it.
        label_only_queries: noisy queries per example.
        batch_size: prediction batch size.
        seed: seed of the label-only noise, the fast attacks' sample and
            LiRA's shadow splits.
        check_overlap: refuse members that are also non-members.
        outputs: ``"logits"``, ``"probabilities"``, ``"auto"`` (the values
            alone), or `None` (the model's last layer and the values,
            `keras_adamixup.predictions.decide_kind`: the values decide when
            they can, a conflict warns; the report records the evidence).
        progress: a progress bar over the audit's steps (outputs, label-only
            attacks, each trained attack, each shadow recipe; tqdm, on
            stderr). The demo, the examples and the command line turn it on.

    Example:

    ```python
    options = audit.AuditOptions(attacks=audit.CHEAP_ATTACKS, slices=("entire",), seed=0,
                                 progress=True)
    report = audit.run_audit(model, members, nonmembers, options=options)
    ```
    """

    attacks: tuple = attacks_lib.ALL_ATTACKS
    slices: tuple = attacks_lib.SLICES
    thorough: bool = False
    min_per_slice: int = 10
    fast_attacks: bool = True
    attack_backend: Optional[str] = None
    label_only_noise: Optional[float] = 0.1
    label_only_queries: int = 16
    batch_size: int = 512
    seed: int = 0
    check_overlap: bool = True
    outputs: Optional[str] = None
    progress: bool = False

    def __post_init__(self):
        for name in ("attacks", "slices"):  # one name is a tuple of one, not of letters
            value = getattr(self, name)
            object.__setattr__(self, name, (value,) if isinstance(value, str) else tuple(value))
        attacks_lib.check_names(self.attacks, self.slices)
        for name in ("thorough", "fast_attacks", "check_overlap", "progress"):
            _checks.boolean(name, getattr(self, name))
        _checks.positive_int("min_per_slice", self.min_per_slice)
        _checks.positive_int("label_only_queries", self.label_only_queries)
        _checks.positive_int("batch_size", self.batch_size)
        _checks.seed(self.seed)
        if self.label_only_noise is not None:
            _checks.number("label_only_noise", self.label_only_noise, 0.0, low_open=True)
        if self.outputs is not None:
            preds_lib.check_kind(self.outputs)

    @classmethod
    def make(cls, options=None, **overrides):
        """`options` (or the defaults) with `overrides` applied; unknown names: `TypeError`."""
        if options is not None and not isinstance(options, cls):
            raise TypeError(f"`options` must be an AuditOptions, got {type(options).__name__}.")
        base = dataclasses.asdict(options) if options is not None else {}
        return _from_mapping(cls, {**base, **overrides}, "audit option(s)")


@dataclasses.dataclass(frozen=True)
class ShadowRecipe:
    """One set of shadow (reference) models for LiRA and RMIA.

    Args:
        model_factory: returns a fresh compiled model trained like the
            target (or like the attacker assumes).
        num_shadows: even, ≥ 2; every example is in exactly half of them.
        fit_kwargs: arguments of `fit` (a dict), or a function
            ``(x_train, y_train) -> dict`` called for every shadow (for
            callbacks that depend on its training data: monitors, early
            stopping).
        name: names the attacks (``lira_online_<name>``); required for all but
            the first of several recipes.
        cache_dir: one `.npz` per shadow (resume; job arrays).
        jobs: sequential shadows in this many processes.
        together: ``"auto"``/``True``/``False``: train the shadows in one
            compiled step (`shadow_stack`).
        augment: ``None`` or ``"flip"`` (also query flipped images).
        fix_variance: LiRA's variance choice; `None`: global under 64 shadows.
        rmia_offline_a: RMIA's offline ``a`` in [0, 1].
        rmia_gamma: RMIA's γ > 0.
        progress: progress bars while shadows train.

    Example:

    ```python
    plain = audit.ShadowRecipe(make_plain, num_shadows=16, name="plain",
                               fit_kwargs={"epochs": 60, "batch_size": 64},
                               cache_dir="shadows_plain")
    report = audit.run_audit(model, members, nonmembers, lira=plain)
    ```
    """

    model_factory: Callable
    num_shadows: int = 8
    fit_kwargs: Any = None
    name: str = ""
    cache_dir: Optional[str] = None
    jobs: int = 1
    together: Any = "auto"
    augment: Optional[str] = None
    fix_variance: Optional[bool] = None
    rmia_offline_a: float = 0.3
    rmia_gamma: float = 1.0
    progress: bool = True

    def __post_init__(self):
        if _is_model(self.model_factory):
            raise TypeError(
                "`model_factory` must be a function that returns a fresh compiled model "
                "(every shadow trains its own), got a model instance: pass "
                "`lambda: make_model()` (your function that builds and compiles it), or "
                "audit.saved_model.recipes_from_model(model, ...) to copy a model's "
                "architecture and compile settings.")
        if not callable(self.model_factory):
            raise TypeError(f"`model_factory` must be callable, got {self.model_factory!r}.")
        _checks.integer("num_shadows", self.num_shadows)
        lira_lib.check_num_shadows(self.num_shadows)
        if not (self.fit_kwargs is None or isinstance(self.fit_kwargs, dict)
                or callable(self.fit_kwargs)):
            raise TypeError("`fit_kwargs` must be a dict or a function (x_train, y_train) -> "
                            f"dict, got {type(self.fit_kwargs).__name__}.")
        if not isinstance(self.name, str):
            raise TypeError(f"`name` must be a string, got {self.name!r}.")
        _checks.positive_int("jobs", self.jobs)
        lira_lib.check_together(self.together)
        lira_lib.check_augment(self.augment)
        if self.fix_variance not in (None, True, False):
            raise TypeError(f"`fix_variance` must be None or a bool, got {self.fix_variance!r}.")
        _checks.number("rmia_offline_a", self.rmia_offline_a, 0.0, 1.0)
        _checks.number("rmia_gamma", self.rmia_gamma, 0.0, low_open=True)

    @classmethod
    def coerce(cls, value):
        """A `ShadowRecipe` from itself or a dict of its fields."""
        if isinstance(value, cls):
            return value
        if isinstance(value, dict):
            if "model_factory" not in value:
                raise ValueError("A LiRA recipe needs a `model_factory`.")
            return _from_mapping(cls, value, "LiRA recipe key(s)")
        raise TypeError(f"E50: a LiRA recipe must be a ShadowRecipe or a dict of its fields, "
                        f"got {type(value).__name__}.")


def shadow_recipes(lira):
    """`lira` (a recipe, a dict, or a list of them) as a list of `ShadowRecipe`s.

    Several recipes need distinct names, all but the first non-empty (they
    name the attacks: ``lira_online_<name>``).
    """
    if isinstance(lira, (dict, ShadowRecipe)):
        items = [lira]
    elif isinstance(lira, (list, tuple)):
        items = list(lira)
    else:
        raise TypeError(
            f"E50: `lira` must be a ShadowRecipe, a dict of its fields or a list of them, "
            f"got {lira!r} (type {type(lira).__name__}): e.g. lira=audit.ShadowRecipe("
            "make_model, num_shadows=16), where make_model() returns a fresh compiled "
            "model like the audited one.")
    recipes = [ShadowRecipe.coerce(item) for item in items]
    names = [r.name for r in recipes]
    if len(set(names)) != len(names) or (len(names) > 1 and not all(names[1:])):
        raise ValueError(
            f"E24: Several LiRA configurations need distinct names (all but the first "
            "non-empty), "
            f"got {names}: they name the attacks (lira_online_<name>).")
    return recipes


def _is_model(value):
    """Whether `value` is a Keras layer or model (callable, but not a factory)."""
    import keras

    return isinstance(value, keras.layers.Layer)
