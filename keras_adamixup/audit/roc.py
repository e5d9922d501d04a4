"""ROC summaries: AUC, attacker advantage, PPV and TPR at a low FPR, with intervals.

Honest numbers:

- every AUC comes with a 95 % confidence interval (Hanley & McNeil 1982:
  the standard error of the Mann–Whitney statistic for `n` members and `m`
  non-members; no resampling, so it costs nothing per row);
- every TPR at a fixed FPR with an exact 95 % binomial interval over the
  members (Clopper–Pearson);
- a TPR at an FPR below ``1/m`` cannot be measured with `m` non-members: the
  only ROC point at or below it is zero false positives. Such values are
  marked (``tpr_at_<fpr>_fpr_measurable: False``) and the report says "at 0
  false positives" instead of the FPR.
"""

import math

import numpy as np

from keras_adamixup import _checks

# The low false-positive rates every report gives a TPR at: the metric keys
# (`tpr_key`), table columns and headline fields all derive from this tuple.
LOW_FPRS = (0.001, 0.01)
Z95 = 1.959963984540054


def tpr_key(fpr):
    """The metric key of the TPR at `fpr`: ``tpr_at_0.001_fpr``."""
    return f"tpr_at_{fpr:g}_fpr"


def fpr_label(fpr):
    """`fpr` as a column label: ``0.1%``."""
    return f"{fpr * 100:g}%"


def auc_interval(auc, n_members, n_nonmembers):
    """95 % interval of an AUC (Hanley–McNeil standard error), clipped to [0, 1]."""
    a, n1, n2 = float(auc), int(n_members), int(n_nonmembers)
    q1, q2 = a / (2.0 - a), 2.0 * a * a / (1.0 + a)
    var = (a * (1 - a) + (n1 - 1) * (q1 - a * a) + (n2 - 1) * (q2 - a * a)) / (n1 * n2)
    half = Z95 * math.sqrt(max(var, 0.0))
    return [max(0.0, a - half), min(1.0, a + half)]


def auc_null_z(auc, n_members, n_nonmembers):
    """Standard score of an AUC against chance (0.5) for these sample sizes."""
    n1, n2 = int(n_members), int(n_nonmembers)
    se0 = math.sqrt((n1 + n2 + 1) / (12.0 * n1 * n2))
    return (float(auc) - 0.5) / se0


def binomial_interval(successes, trials):
    """Exact (Clopper–Pearson) 95 % interval of a proportion."""
    from scipy import stats

    k, n = int(successes), int(trials)
    if n == 0:
        return [0.0, 1.0]
    low = 0.0 if k == 0 else float(stats.beta.ppf(0.025, k, n - k + 1))
    high = 1.0 if k == n else float(stats.beta.ppf(0.975, k + 1, n - k))
    return [low, high]


def tpr_at_fpr(fpr, tpr, target):
    """Largest TPR among ROC points whose FPR is at most `target`.

    This is the usual reading of "TPR at x % FPR" (Carlini et al. 2022): no
    interpolation, so a curve with no point at or below `target` other than
    the origin gives 0.

    Args:
        fpr: the ROC's false-positive rates, increasing, 1-D.
        tpr: its true-positive rates, same length.
        target: the largest false-positive rate allowed (e.g. 0.001).

    Example:

    ```python
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(is_member, scores)
    audit.tpr_at_fpr(fpr, tpr, 0.001)
    ```
    """
    fpr = np.asarray(fpr, dtype="float64")
    tpr = np.asarray(tpr, dtype="float64")
    _checks.number("target", target, 0.0, 1.0)  # a rate: 0.01 for 1 %, not 1
    if fpr.shape != tpr.shape or fpr.ndim != 1 or fpr.size == 0:
        raise ValueError("`fpr` and `tpr` must be 1-D arrays of the same length.")
    ok = fpr <= target + 1e-12
    return float(tpr[ok].max()) if ok.any() else 0.0


def roc_from_scores(member_scores, nonmember_scores):
    """ROC of "higher score ⇒ member": (fpr, tpr, thresholds)."""
    scores = np.concatenate([member_scores, nonmember_scores])
    truth = np.concatenate([np.ones(len(member_scores)), np.zeros(len(nonmember_scores))])
    from sklearn import metrics as sk_metrics  # the audit's dependency: imported when used

    fpr, tpr, thresholds = sk_metrics.roc_curve(truth, scores)
    return fpr, tpr, thresholds


def _auc(fpr, tpr):
    from sklearn import metrics as sk_metrics  # the audit's dependency: imported when used

    return float(sk_metrics.auc(fpr, tpr))


def summarize(fpr, tpr, n_members, n_nonmembers, ppv):
    """The metrics of one ROC curve as a dict."""
    row = {
        "auc": _auc(fpr, tpr),
        "advantage": float(np.max(np.abs(np.asarray(tpr) - np.asarray(fpr)))),
        "ppv": float(ppv),
        "n_members": int(n_members),
        "n_nonmembers": int(n_nonmembers),
    }
    row["auc_ci"] = auc_interval(row["auc"], n_members, n_nonmembers)
    for target in LOW_FPRS:
        value = tpr_at_fpr(fpr, tpr, target)
        key = tpr_key(target)
        row[key] = value
        row[key + "_ci"] = binomial_interval(round(value * n_members), n_members)
        row[key + "_measurable"] = bool(n_nonmembers * target >= 1.0)
    return row


def downsample(fpr, tpr, points=400):
    """A plot-sized ROC that keeps the low-FPR region (log grid + linear grid)."""
    fpr = np.asarray(fpr, dtype="float64")
    tpr = np.asarray(tpr, dtype="float64")
    if len(fpr) <= points:
        return fpr.tolist(), tpr.tolist()
    grid = np.unique(np.concatenate([
        np.logspace(-5, 0, points // 2), np.linspace(0, 1, points // 2)]))
    keep = np.unique(np.clip(np.searchsorted(fpr, grid, side="right") - 1, 0, len(fpr) - 1))
    keep = np.unique(np.concatenate([[0, len(fpr) - 1], keep]))
    return fpr[keep].tolist(), tpr[keep].tolist()


def histogram(member_scores, nonmember_scores, bins=40):
    """Shared-bin histograms of member and non-member scores (JSON-able)."""
    both = np.concatenate([member_scores, nonmember_scores])
    finite = both[np.isfinite(both)]
    low, high = (np.percentile(finite, 0.5), np.percentile(finite, 99.5)) if finite.size else (0, 1)
    if high <= low:
        high = low + 1.0
    edges = np.linspace(low, high, bins + 1)
    clip = lambda s: np.clip(s[np.isfinite(s)], low, high)
    return {
        "edges": edges.tolist(),
        "members": np.histogram(clip(member_scores), edges)[0].tolist(),
        "nonmembers": np.histogram(clip(nonmember_scores), edges)[0].tolist(),
    }
