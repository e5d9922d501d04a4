"""ROC summaries: AUC, attacker advantage, PPV and TPR at a low FPR."""

import numpy as np
from sklearn import metrics as sk_metrics

LOW_FPRS = (0.001, 0.01)


def tpr_at_fpr(fpr, tpr, target):
    """Largest TPR among ROC points whose FPR is at most `target`.

    This is the usual reading of "TPR at x % FPR" (Carlini et al. 2022): no
    interpolation, so a curve with no point at or below `target` other than
    the origin gives 0.
    """
    fpr = np.asarray(fpr, dtype="float64")
    tpr = np.asarray(tpr, dtype="float64")
    if fpr.shape != tpr.shape or fpr.ndim != 1 or fpr.size == 0:
        raise ValueError("`fpr` and `tpr` must be 1-D arrays of the same length.")
    ok = fpr <= target + 1e-12
    return float(tpr[ok].max()) if ok.any() else 0.0


def roc_from_scores(member_scores, nonmember_scores):
    """ROC of "higher score ⇒ member": (fpr, tpr, thresholds)."""
    scores = np.concatenate([member_scores, nonmember_scores])
    truth = np.concatenate([np.ones(len(member_scores)), np.zeros(len(nonmember_scores))])
    fpr, tpr, thresholds = sk_metrics.roc_curve(truth, scores)
    return fpr, tpr, thresholds


def summarize(fpr, tpr, n_members, n_nonmembers, ppv):
    """The metrics of one ROC curve as a dict."""
    row = {
        "auc": float(sk_metrics.auc(fpr, tpr)),
        "advantage": float(np.max(np.abs(np.asarray(tpr) - np.asarray(fpr)))),
        "ppv": float(ppv),
        "n_members": int(n_members),
        "n_nonmembers": int(n_nonmembers),
    }
    for target in LOW_FPRS:
        row[f"tpr_at_{target:g}_fpr"] = tpr_at_fpr(fpr, tpr, target)
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
