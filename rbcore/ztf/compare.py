"""Notebook 06's comparison on the held-out alerts (issue items 4-5).

Every model is judged on the alerts that no model adapted on (`split_alerts`): AUC against
drb >= 0.5 with a bootstrap interval, Spearman with drb, recall on the asteroid matches at the
model's registration threshold (Tomo-e models: the talk's 0.8; ZTF-sim models: the one their
simulated validation data gave, `rbcore.ztf.simulated.registration_threshold`), and the same
AUC for ZTF's random forest `rb` on those alerts as a reference.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rbcore.inference import predict_logits
from rbcore.ztf.alerts import AlertSet, agreement_with_drb


def _summary(a: dict) -> dict:
    return {
        "auc_vs_drb": a["auc_vs_drb"],
        "auc_ci": a["auc_vs_drb_ci95"],
        "spearman": a["spearman_vs_drb"],
        "asteroid_recall": a["asteroid_recall"],
        "registration_threshold": a["registration_threshold"],
        "n_alerts": a["n_alerts"],
        "n_drb_real": a["n_drb_real"],
        "n_drb_bogus": a["n_drb_bogus"],
        "n_asteroids": a["n_asteroids"],
        "n_asteroids_registered": a["n_asteroids_registered"],
    }


def held_out_report(
    models: dict, alerts: AlertSet, eval_mask, *, n_boot: int = 1000, seed: int = 0
) -> tuple[dict, dict]:
    """Score the held-out alerts with every model and compare with drb.

    Args:
        models: name -> (RBCNN, registration threshold on the probability).
        alerts: all alerts; eval_mask: bool[N], True for the alerts that judge (never adapted on).
        n_boot, seed: bootstrap of the AUC intervals.

    Returns:
        (report, logits): report = {"models": {name: {auc_vs_drb, auc_ci, spearman,
        asteroid_recall, registration_threshold and counts}}, "rb_reference": the same AUC
        and Spearman for ZTF's `rb` (None without an `rb` column), "split": counts};
        logits[name] = float32[n_eval] on the held-out alerts.
    """
    ev = np.asarray(eval_mask, bool)
    if ev.shape != (len(alerts),) or not ev.any():
        raise ValueError(f"eval_mask must be bool[{len(alerts)}] with at least one True")
    images = alerts.images[ev]
    drb = alerts.meta["drb"].to_numpy(np.float64)[ev]
    weak = alerts.meta["weak_labels"].to_numpy()[ev]
    logits, out = {}, {}
    for name, (model, threshold) in models.items():
        logits[name] = predict_logits(model, images)
        a = agreement_with_drb(
            logits[name], drb, weak, threshold=threshold, n_boot=n_boot, seed=seed
        )
        out[name] = _summary(a)
    rb_ref = None
    if "rb" in alerts.meta:
        rb = alerts.meta["rb"].to_numpy(np.float64)[ev]
        ok = np.isfinite(rb)
        # rb is a probability in [0, 1]; its logit ranks the same (clipped off 0 and 1)
        z = np.log(np.clip(rb[ok], 1e-6, 1 - 1e-6) / np.clip(1 - rb[ok], 1e-6, 1))
        a = agreement_with_drb(z, drb[ok], weak[ok], threshold=0.5, n_boot=n_boot, seed=seed)
        rb_ref = _summary(a)
    report = {
        "models": out,
        "rb_reference": rb_ref,
        "split": {
            "by": "objectId",
            "n_eval": int(ev.sum()),
            "n_adapt": int((~ev).sum()),
            "n_eval_objects": int(alerts.meta["objectId"][ev].nunique())
            if "objectId" in alerts.meta
            else None,
        },
    }
    return report, logits


def tomoe_threshold() -> float:
    """The Tomo-e models' registration threshold: the talk's deployed 0.8."""
    return 0.8  # talk (Takahashi 2021): the deployed model registers at probability 0.800


def load_ztf_models(models_dir) -> dict:
    """name -> (RBCNN, threshold) of the ZTF-sim models saved by `train_ztf_models`."""
    from rbcore.checkpoint import load_model

    out = {}
    for name in ("ztf_sim", "ztf_vada"):
        model, meta = load_model(Path(models_dir) / name)
        out[name] = (model, float(meta["extra"]["registration_threshold"]))
    return out
