"""Test-set scores of the study's models: logits cached per model, AUC and FPR at TPR 0.9.

Every model of the study is scored on notebook 01's test set (clean labels), with the talk's
metrics and their stratified bootstrap 95 % intervals (`rbcore.evaluation.metrics_table`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rbcore.evaluation.table import cached_logits, metrics_table

__all__ = ["test_logits", "model_scores", "seed_spread"]


def test_logits(ckpt, images, *, cache_dir, fingerprint: dict) -> np.ndarray:
    """float32[N] logits of the checkpoint `ckpt` on the test images, cached per model.

    The cache (cache_dir/<checkpoint folder name>__<parent name>.npz) is keyed by the weights
    and `fingerprint` (the test files), so other weights or data are scored anew.
    """
    ckpt = Path(ckpt)
    cache = Path(cache_dir) / f"{ckpt.parent.parent.name}__{ckpt.name}.npz"
    return cached_logits(cache, {"model": ckpt}, images, fingerprint=fingerprint)["model"]


def model_scores(labels, logits, *, n_boot: int, seed: int) -> dict:
    """AUC and FPR at TPR 0.9 of one model on the test set, each {"value", "ci95"}.

    Also "n_bogus_above": the bogus scored above the TPR 0.9 threshold (what the FPR rests on).
    """
    table = metrics_table(labels, logits, n_boot=n_boot, seed=seed)
    return {
        "auc": table["auc"],
        "fpr_at_tpr90": table["fpr_at_tpr90"],
        "n_bogus_above": table["tpr90"]["n_bogus_above"],
    }


def seed_spread(values) -> dict:
    """Mean, min, max and range of one metric over training seeds."""
    v = np.asarray([float(x) for x in values], float)
    if v.size == 0:
        raise ValueError("seed_spread: no values")
    return {
        "n_seeds": int(v.size),
        "mean": float(v.mean()),
        "min": float(v.min()),
        "max": float(v.max()),
        "range": float(v.max() - v.min()),
    }
