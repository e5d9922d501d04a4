"""Lazy, guarded import of TensorFlow Privacy's membership-inference module.

TensorFlow Privacy 0.8.12 is installed with ``--no-deps`` (its pins clash with
current TensorFlow and numpy). Importing ``tensorflow_privacy`` normally pulls
in its DP optimizers and their dependencies (tf-models-official, ...); setting
``sys.skip_tf_privacy_import = True`` first makes the package skip that, so
only the membership-inference module is loaded.
"""

import sys
import types

INSTALL_COMMAND = (
    'pip install "scikit-learn>=1.2,<1.6" pandas scipy matplotlib statsmodels '
    "immutabledict && pip install --no-deps tensorflow-privacy==0.8.12"
)

_MODULE = None


def load():
    """Returns a namespace with TF Privacy's MIA entry points.

    Raises:
        ImportError: TF Privacy (or one of the packages its membership-inference
            module needs) is missing or too new, with the exact install command.
    """
    global _MODULE
    if _MODULE is not None:
        return _MODULE
    if not getattr(sys, "skip_tf_privacy_import", False):
        sys.skip_tf_privacy_import = True
    try:
        from tensorflow_privacy.privacy.privacy_tests.membership_inference_attack import (  # noqa: E501
            advanced_mia,
            data_structures,
            membership_inference_attack,
        )
    except ImportError as error:
        raise ImportError(
            "E22: keras_adamixup.audit needs TensorFlow Privacy's membership-inference "
            f"module, which could not be imported ({error}). Install it with:\n\n"
            f"    {INSTALL_COMMAND}\n\n"
            "(tensorflow-privacy>=0.8 pins numpy<2 and tensorflow<=2.15, hence "
            "--no-deps; its attack models need scikit-learn<1.6.)"
        ) from error
    _MODULE = types.SimpleNamespace(
        run_attacks=membership_inference_attack.run_attacks,
        AttackInputData=data_structures.AttackInputData,
        SlicingSpec=data_structures.SlicingSpec,
        AttackType=data_structures.AttackType,
        SlicingFeature=data_structures.SlicingFeature,
        RocCurve=data_structures.RocCurve,
        compute_score_lira=advanced_mia.compute_score_lira,
        calculate_statistic=advanced_mia.calculate_statistic,
    )
    return _MODULE
