"""LiRA's shadows trained together in one compiled step.

The engine is `keras_adamixup._stacked` (shared with `SplitTeachers`' teachers);
see its docstring for what is exact and what differs from sequential `fit`.
"""

from keras_adamixup._stacked import (  # noqa: F401
    FIT_KEYS,
    batch_plan,
    stack_reason,
    train_together,
    vector_reason,
)
