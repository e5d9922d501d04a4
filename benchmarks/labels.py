"""Readable names of the benchmark recipes (shared by the benchmarks and the results page).

Plain Python, no TensorFlow: `render_results.py` imports it to label rows.
"""

# the recommended setting, by its benchmark name (`keras_adamixup.recommended.TEACHERS`:
# eight teachers that stop 3 epochs after their best; 16 with patience 5 until 2026-12-06)
RECOMMENDED = "teachers_plateau_pat3_8_1_ckpt"
# the recommended setting of a convolutional base (`keras_adamixup.recommended.IMAGES`):
# static mixup at alpha 0.4 under LossTarget("plateau", 0.8), since 2026-12-07
RECOMMENDED_IMAGES = "mixup_relaxplateau0.8_a0.4"

LABELS = {
    "none": "none",
    "early_stopping": "early stopping",
    "teachers_plateau_pat3_16_2_ckpt": "16 teachers, patience 3 (recommended before)",
    "teachers_plateau_images_pat3_16_2_ckpt": "16 teachers, images grouped, patience 3",
    "teachers_plateau_images_pat3_8_1_ckpt": "recommended, images grouped",
    "teachers_plateau_pat3_8_1_ckpt": "recommended",
    "mixup_a0.2": "static mixup (α 0.2, soft labels)",
    "mixup_a0.2_ckpt": "static mixup (α 0.2) with the checkpoint",
    "mixup_a0.4": "static mixup (α 0.4, soft labels)",
    "mixup_relaxmix0.8_a0.4": "static mixup (α 0.4) + target 0.8 × mixed hold-out KL (prototype)",
    "relaxloss_1.2": "RelaxLoss (target loss 1.2)",
    "mixup_relaxat1.2_a0.2": "static mixup (α 0.2) + LossTarget(1.2)",
    "mixup_relaxat1.0_a0.4": "static mixup (α 0.4) + LossTarget(1.0)",
    "mixup_relaxplateau0.8_a0.4":
        "recommended for images: static mixup (α 0.4) + LossTarget('plateau', 0.8)",
    "adamixup_relax0.9_const0": "LossTarget: 0.9 x the hold-out loss, no mixing",
    "adamixup_relax0.9_const0_ckpt": "LossTarget: 0.9 x the hold-out loss, with the checkpoint",
    "teachers_plateau_16_2_ckpt": "16 teachers, patience 5 (recommended before)",
    "teachers_plateau_compute1_2_1_ckpt": "recommended, budget 2 (2 teachers)",
    "teachers_plateau_compute1_lw0.5_2_1_ckpt": "recommended, budget 2, half the label mixed in",
    "teachers_compute1_2_1_ckpt": "split teachers alone, budget 2 (no mixing on top)",
    "teachers_mix_16_2_ckpt": "paper's schedule on split teachers (recommended before)",
    "teachers_16_2_ckpt": "split teachers alone (16 teachers)",
    "teachers_16_2": "split teachers alone (16), student not stopped",
    "teachers_plateau_16_2": "16 teachers + PlateauDecay, student not stopped",
    "teachers_plateau_16_2_ckptacc":
        "16 teachers + PlateauDecay, student kept at its most accurate epoch",
    "teachers_plateau_16_2_ckpt_pub8000":
        "16 teachers + PlateauDecay + 8,000 public rows without labels",
    "teachers_plateau_16_2_pub8000":
        "16 teachers + PlateauDecay + 8,000 public rows, student not stopped",
    "teachers_plateau_16_2_ckpt_pubonly8000":
        "16 teachers + PlateauDecay, student on 8,000 public rows alone, every teacher",
    "teachers_plateau_16_2_ckpt_pubnear8000":
        "16 teachers + PlateauDecay + 8,000 public rows, nearest member's teachers",
    "teachers_plateau_16_2_ckpt_pubonlynear8000":
        "16 teachers + PlateauDecay, student on 8,000 public rows alone, nearest member's teachers",
    "teachers_plateau_16_2_ckpt_pubonlynear4000":
        "16 teachers + PlateauDecay, student on 4,000 public rows alone, nearest member's teachers",
    "teachers_plateau_8_1_ckpt_pubonlynear8000":
        "recommended (teachers' patience 5), student on 8,000 public rows alone, "
        "nearest member's teachers",
    "teachers_plateau_8_1_ckpt": "recommended, teachers' patience 5",
    "teachers_plateau_12_2_ckpt": "SplitTeachers(12, 2) + PlateauDecay",
    "teachers_plateau_unweighed_16_2_ckpt":
        "16 teachers + PlateauDecay, groups not weighed as one record",
    "dp_sgd_0.5": "DP-SGD σ 0.5",
    "dp_sgd_1.0": "DP-SGD σ 1.0",
    "memguard": "MemGuard",
    "teachers_mix_apart_full_16_2_ckpt": "paper's schedule on teachers, copies apart",
    "teachers_apart_full_16_2_ckpt": "split teachers alone, copies apart (before)",
    "teachers_mix_full_16_2_ckpt": "paper's schedule on teachers, together, no patience",
    "teachers_full_16_2_ckpt": "split teachers alone, copies together, no patience",
    "plain": "plain `fit`",
}


# the suffixes `benchmarks.names` reads after a recipe's name, last first
SUFFIXES = (("_ema", "weights averaged (EMA {})"), ("_gce", "generalized cross-entropy (q {})"))


def label(name):
    """The readable name of a recipe, or the name itself (``_emaM``: the weights'
    moving average; ``_gceQ``: generalized cross-entropy)."""
    for suffix, described in SUFFIXES:
        if name not in LABELS and suffix in name:
            base, number = name.rsplit(suffix, 1)
            return f"{label(base)}, {described.format(number)}"
    return LABELS.get(name, name)
