"""Attacks scored from shadow (reference) models: one registration each.

Every attack that needs shadow models reads the same cached shadows (one set
per `ShadowRecipe`), so adding one is a single registration: a function

    scorer(target_outputs, shadow_outputs, labels, masks, recipe, outputs)
        -> {attack_name: scores over the population (members first)}

decorated with `register_shadow_attack(source)`. `run_audit` calls every
registered scorer for every recipe and turns each score array into a report
row (``source`` = the registered name), a histogram and, with canaries, a
canary row. LiRA (`lira.py`) and RMIA (`rmia.py`) register themselves this
way; a new scorer must live in a module that is imported before the audit
runs.

Example:

```python
@register_shadow_attack("mean_confidence")
def mean_confidence(target, shadows, labels, masks, recipe, outputs):
    ...
    return {"mean_confidence": scores}
```
"""

SHADOW_ATTACKS = {}


def register_shadow_attack(source):
    """Decorator: registers `scorer` under `source` (the rows' ``source``).

    Args:
        source: the name the attack's report rows carry as ``source`` (a
            non-empty string, not already registered to another scorer).

    The scorer is called as ``scorer(target_outputs, shadow_outputs, labels,
    masks, recipe, outputs)`` for every shadow recipe and returns
    ``{attack_name: scores}``, one score per example of the population
    (members first; higher: more likely a member), which the audit turns into
    report rows (this module's docstring).

    Example:

    ```python
    @audit.register_shadow_attack("my_attack")
    def my_attack(target_outputs, shadow_outputs, labels, masks, recipe, outputs):
        ...
        return {"my_attack": scores}
    ```
    """
    if not isinstance(source, str):
        raise TypeError(f"`source` must be a string, got {source!r}.")
    if not source:
        raise ValueError("`source` must be a non-empty string.")

    def register(scorer):
        if source in SHADOW_ATTACKS and SHADOW_ATTACKS[source] is not scorer:
            raise ValueError(f"A shadow attack is already registered as {source!r}.")
        SHADOW_ATTACKS[source] = scorer
        return scorer

    return register
