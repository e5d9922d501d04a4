"""Membership-inference audit built on TensorFlow Privacy.

Independent of the training code: it audits any Keras model (`run_audit`) or
any arrays of logits/probabilities (`audit_predictions`). TensorFlow Privacy
is imported only when an attack runs; without it you get an `ImportError`
with the exact install command (see `keras_adamixup.audit._tfp`).

- `run_audit(model, members, nonmembers, options=AuditOptions(...),
  lira=ShadowRecipe(...))` → `AuditReport` (every option also as a keyword)
- `train_shadows(members, nonmembers, lira, indices)`: some shadows into the
  cache (one job of a job array)
- `audit_predictions(outputs_m, labels_m, outputs_n, labels_n)` → `AuditReport`
- `AuditReport`: `summary()`, `to_json()`, `from_json()`, `to_markdown()`,
  `plot_roc()`, `plot_histograms()`, `save(folder)`
- `compare([reports], folder)`: one table and one ROC figure
- `data`: recorded member/non-member splits and loaders (digits, .npz, tfds)
- `canaries.plant(x, y, count, kinds, seed)`: canaries (mislabelled,
  duplicated, outliers), each in the training set with probability ½
- `epsilon`: empirical ε lower bounds (one-run from canaries; Clopper–Pearson
  from a ROC)
"""

from keras_adamixup.audit import canaries, data, epsilon
from keras_adamixup.audit.attacks import ALL_ATTACKS, CHEAP_ATTACKS, SLICES
from keras_adamixup.audit.options import AuditOptions, ShadowRecipe
from keras_adamixup.audit.registry import register_shadow_attack
from keras_adamixup.audit.report import AuditReport, compare
from keras_adamixup.audit.roc import tpr_at_fpr
from keras_adamixup.audit.run import audit_predictions, run_audit, train_shadows

__all__ = [
    "ALL_ATTACKS",
    "AuditOptions",
    "ShadowRecipe",
    "register_shadow_attack",
    "CHEAP_ATTACKS",
    "SLICES",
    "AuditReport",
    "audit_predictions",
    "canaries",
    "compare",
    "data",
    "epsilon",
    "run_audit",
    "tpr_at_fpr",
    "train_shadows",
]
