"""Extra label errors drawn by stage-1 score bin: the paper code's `make_label_error`.

The paper's code tests "works better at a high fraction of label errors" by flipping more
labels (src/real_bogus.py:368-427, option `label_noise`, rb:103): in each bin [r1, r2) of the
stage-1 out-of-fold score (logit of real minus logit of bogus, rb:380), it counts the samples
whose label disagrees with the score's side (label 0 where r1 >= 0, label 1 where r1 < 0),
multiplies by the bin's fraction p of true label errors among them and by (factor - 1), and
flips that many of the samples that agree (label 1 where r1 >= 0, label 0 below), drawn with
`np.random.default_rng(label_noise_seed)` (rb:385-401). So the new errors sit where the
existing ones do, and the total grows about `factor` times. The code reads p from an
inspected table for the bins inside [-4, 4) and sets p = 1 on unit bins out to +-15
(`make_target_ratio`, rb:408-427); here p inside comes from the simulator's truth
(`error_table_from_truth`), the outer bins as coded.
"""

from __future__ import annotations

import numpy as np

__all__ = ["error_table_from_truth", "target_ratio", "make_label_error", "apply_flips"]


def error_table_from_truth(logits, labels, label_is_wrong, *, limit: int = 4) -> dict:
    """The code's label_error table (r1, r2, p) on unit bins in [-limit, limit) from the truth.

    p of a bin = the fraction of true label errors among its samples whose label disagrees
    with the bin's side (label 0 for r1 >= 0, label 1 for r1 < 0); 0 where there are none.

    Returns:
        dict r1, r2, p (float arrays, one entry per bin).
    """
    z, y = np.asarray(logits, np.float64), np.asarray(labels)
    wrong = np.asarray(label_is_wrong).astype(bool)
    if not (z.shape == y.shape == wrong.shape) or z.ndim != 1:
        raise ValueError(f"logits {z.shape}, labels {y.shape}, truth {wrong.shape} must be [N]")
    r1 = np.arange(-int(limit), int(limit), dtype=np.float64)
    p = np.zeros(r1.size)
    for i, lo in enumerate(r1):
        disagree = (z >= lo) & (z < lo + 1) & (y == (0 if lo >= 0 else 1))
        p[i] = wrong[disagree].mean() if disagree.any() else 0.0
    return {"r1": r1, "r2": r1 + 1.0, "p": p}


def target_ratio(table: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The code's `make_target_ratio` (rb:408-427): the table plus p = 1 on unit bins
    [-15, -4) and [4, 15)."""
    outer_lo, outer_hi = np.arange(-15, -4.0), np.arange(4, 15.0)
    r1 = np.concatenate([outer_lo, table["r1"], outer_hi])
    r2 = np.concatenate([outer_lo + 1, table["r2"], outer_hi + 1])
    p = np.concatenate([np.ones(outer_lo.size), table["p"], np.ones(outer_hi.size)])
    return r1, r2, p


def make_label_error(logits, labels, table: dict, *, factor: float, seed: int = 42) -> np.ndarray:
    """bool[N]: the samples whose label is flipped to make `factor` times the label errors.

    Args:
        logits: float[N] stage-1 out-of-fold scores (the code's prediction1 - prediction0).
        labels: int[N] given labels.
        table: `error_table_from_truth` (or an inspected table with the same keys).
        factor: the code's `label_noise` (> 1; rb:103, ratio = factor - 1 at rb:385).
        seed: the code's `label_noise_seed` (rb:104).
    """
    if not factor > 1.0:
        raise ValueError(f"label_noise factor must be > 1, got {factor}")
    z, y = np.asarray(logits, np.float64), np.asarray(labels)
    if z.shape != y.shape or z.ndim != 1 or not np.isin(y, (0, 1)).all():
        raise ValueError(f"logits {z.shape} and 0/1 labels {y.shape} must be equal-length [N]")
    ratio = float(factor) - 1.0
    rng = np.random.default_rng(int(seed))
    flip = np.zeros(y.size, bool)
    for r1, r2, p in zip(*target_ratio(table), strict=True):
        in_bin = (z >= r1) & (z < r2)
        if r1 >= 0:
            n_error, pool = np.sum(in_bin & (y == 0)) * p * ratio, np.flatnonzero(in_bin & (y == 1))
        else:
            n_error, pool = np.sum(in_bin & (y == 1)) * p * ratio, np.flatnonzero(in_bin & (y == 0))
        picked = rng.choice(pool, size=min(int(n_error), pool.size), replace=False)
        flip[picked] = True
    return flip


def apply_flips(labels, flip) -> np.ndarray:
    """int64[N] labels with the flagged ones flipped (1 - label), as rb:544-546 does."""
    y, f = np.asarray(labels).astype(np.int64), np.asarray(flip).astype(bool)
    if y.shape != f.shape:
        raise ValueError(f"labels {y.shape} and flips {f.shape} differ")
    return np.where(f, 1 - y, y)
