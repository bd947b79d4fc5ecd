"""Flagging wrong labels: the paper's disagreement rule, margins, cleanlab, detection metrics.

Takahashi et al. (2022, PASJ 74, 946) and their code flag every sample whose out-of-fold
prediction disagrees with its label at probability 0.5; the talk (Takahashi 2021) inspects
the disagreements worst first. This module holds that rule, the margin ranking a reviewer
reads worst-first, cleanlab's `find_label_issues` as the established reference, and the
detection metrics of a flag set against the simulator's truth (`label_is_wrong`).

Scores: probabilities are the sigmoid of the CNN's logit (the talk's "prediction: -2.19").
"""

from __future__ import annotations

import numpy as np

from rbcore.inference import sigmoid

__all__ = [
    "sigmoid",
    "flag_disagreements",
    "wrong_side_margin",
    "margin_rank",
    "cleanlab_flags",
    "detection_metrics",
]


# ----------------------------------------------------------------------------- flagging


def _check_pair(labels, probs) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels)
    probs = np.asarray(probs, dtype=np.float64)
    if labels.shape != probs.shape or labels.ndim != 1:
        raise ValueError(f"labels {labels.shape} and scores {probs.shape} must be equal-length 1-D")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("labels must be 0 (bogus) or 1 (real)")
    if np.isnan(probs).any():
        raise ValueError(f"scores contain {int(np.isnan(probs).sum())} NaN values")
    return labels.astype(np.int64), probs


def flag_disagreements(labels, probs, threshold: float = 0.5) -> np.ndarray:
    """The paper's rule: flag a sample whose prediction disagrees with its label.

    Args:
        labels: int[N] given labels.
        probs: float[N] probability of real.
        threshold: called real when `prob >= threshold` (the paper: 0.5).

    Returns:
        bool[N]: label 1 with prob < threshold, or label 0 with prob >= threshold.
    """
    labels, probs = _check_pair(labels, probs)
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be a probability in (0, 1), got {threshold}")
    pred = probs >= threshold
    return pred != (labels == 1)


def wrong_side_margin(labels, logits, threshold: float = 0.5) -> np.ndarray:
    """How far (in logit units) a score sits on the wrong side of the threshold.

    Returns:
        float[N]: logit(threshold) - logit for label 1, logit - logit(threshold) for label 0;
        positive on the wrong side (the sample disagrees with its label), larger = worse.
    """
    labels, logits = _check_pair(labels, logits)
    t = np.log(threshold / (1.0 - threshold))
    return np.where(labels == 1, t - logits, logits - t)


def margin_rank(margin) -> np.ndarray:
    """Rank 1 = the worst disagreement (largest margin); ties broken by sample order."""
    margin = np.asarray(margin, dtype=np.float64)
    order = np.argsort(-margin, kind="stable")
    rank = np.empty(margin.size, dtype=np.int64)
    rank[order] = np.arange(1, margin.size + 1)
    return rank


def cleanlab_flags(labels, probs, **kwargs) -> np.ndarray:
    """cleanlab's `find_label_issues` on probabilities of real (the reference method).

    Args:
        labels: int[N] given labels.
        probs: float[N] out-of-fold probability of real; cleanlab gets [1 - p, p].
        **kwargs: passed to `cleanlab.filter.find_label_issues` (default
            filter_by="prune_by_noise_rate", single process).

    Returns:
        bool[N] label issues.

    Notes:
        Northcutt, Jiang & Chuang (2021), confident learning.
    """
    from cleanlab.filter import find_label_issues

    labels, probs = _check_pair(labels, probs)
    pred_probs = np.column_stack([1.0 - probs, probs])
    kwargs.setdefault("n_jobs", 1)  # the CPU is shared; cleanlab forks per core otherwise
    return np.asarray(find_label_issues(labels, pred_probs, **kwargs), dtype=bool)


# ----------------------------------------------------------------------------- against the truth


def _nan_to_none(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def detection_metrics(flagged, is_wrong) -> dict:
    """Precision and recall of a flag set against the true mislabels.

    Args:
        flagged: bool[N] flagged samples.
        is_wrong: bool[N] truth (`label_is_wrong`).

    Returns:
        dict n_flagged, n_wrong, tp, fp, fn, precision (tp / n_flagged, None if nothing is
        flagged), recall (tp / n_wrong, None if nothing is wrong), f1.
    """
    flagged = np.asarray(flagged).astype(bool)
    is_wrong = np.asarray(is_wrong)
    if flagged.shape != is_wrong.shape:
        raise ValueError(f"flagged {flagged.shape} and label_is_wrong {is_wrong.shape} differ")
    if not np.isin(is_wrong, (0, 1)).all():
        raise ValueError("label_is_wrong must be 0/1")
    is_wrong = is_wrong.astype(bool)
    tp = int((flagged & is_wrong).sum())
    fp = int((flagged & ~is_wrong).sum())
    fn = int((~flagged & is_wrong).sum())
    p = tp / (tp + fp) if tp + fp else float("nan")
    r = tp / (tp + fn) if tp + fn else float("nan")
    f1 = 2 * p * r / (p + r) if np.isfinite(p) and np.isfinite(r) and p + r > 0 else float("nan")
    return {
        "n_flagged": tp + fp,
        "n_wrong": tp + fn,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": _nan_to_none(p),
        "recall": _nan_to_none(r),
        "f1": _nan_to_none(f1),
    }
