"""Calibrate the simulated survey against the talk's "Current model" (baseline CNN).

DEVELOPERS.md: the survey's difficulty (artifact mix, depth, subtraction quality) is set so
that the *baseline* CNN trained on the noisy labels lands near the talk's "Current model" on
the test set: AUC ~ 0.996, FPR at TPR 0.9 ~ 0.009, precision ~ 0.05 at threshold 0.5 with
~1 real per 700 bogus. VAT is never run here: the simulator is not tuned by the VAT result.

One run: simulate a default-like training set (noisy labels) and a calibration test set with
its own seeds (not those of notebook 01), train the baseline (`rbcore.train.fit`, alpha = 0,
validation = held-out detectors), print the metrics and append a JSON line to
benchmarks/calibration_runs.jsonl.

    .venv/bin/python benchmarks/calibrate_survey.py --set flux_scale_error=0.03 \
        --set bogus_mix.noise=0.2 --n-train 60000 --epochs 4
"""

from __future__ import annotations

import argparse
import ast
import json
import time
from pathlib import Path

import numpy as np

import rbcore  # noqa: F401  (sets the XLA flags before jax starts)
from rbcore.metrics import classification_summary, fpr_at_tpr
from rbcore.simulation import SurveyConfig, simulate_candidates

TRAIN_SEED = 91_000  # calibration-only seeds: never the seeds notebook 01 uses (0, 1, ...)
TEST_SEED = 92_000
TALK = {"auc": 0.9956, "fpr_at_tpr90": 0.00916, "precision": 0.050, "recall": 0.981}  # talk


def _config(sets: list[str]) -> SurveyConfig:
    """SurveyConfig with `key=value` overrides (`bogus_mix.<cat>=x` edits one fraction)."""
    cfg = SurveyConfig()
    mix = dict(cfg.bogus_mix)
    kw = {}
    for s in sets:
        key, _, val = s.partition("=")
        value = ast.literal_eval(val)
        if key.startswith("bogus_mix."):
            mix[key.split(".", 1)[1]] = value
        else:
            kw[key] = value
    cfg = cfg.replace(bogus_mix=mix, **kw)
    cfg.validate()
    return cfg


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--set", action="append", default=[], help="SurveyConfig override key=value")
    ap.add_argument("--n-train", type=int, default=60_000)
    ap.add_argument("--n-test-real", type=int, default=300)
    ap.add_argument("--n-test-bogus", type=int, default=100_000)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--log", default=str(Path(__file__).with_name("calibration_runs.jsonl")))
    args = ap.parse_args()

    from rbcore.inference import predict_logits
    from rbcore.train import TrainConfig, fit

    cfg = _config(args.set)
    t0 = time.time()
    x, p = simulate_candidates(
        args.n_train, kind="train", seed=TRAIN_SEED, config=cfg, n_threads=args.threads
    )
    y = (p["object_type"] != "artifact").to_numpy(np.int64)
    val = p["detector_id"].to_numpy() < 8  # held-out detectors, as the notebooks' folds
    xr, pr = simulate_candidates(
        args.n_test_real, kind="test", seed=TEST_SEED, config=cfg, real_fraction=1.0
    )
    xb, pb = simulate_candidates(
        args.n_test_bogus,
        kind="test",
        seed=TEST_SEED + 1,
        config=cfg,
        real_fraction=0.0,
        n_threads=args.threads,
    )
    t_sim = time.time() - t0
    model, hist = fit(
        x[~val],
        y[~val],
        val_images=x[val],
        val_labels=y[val],
        config=TrainConfig(epochs=args.epochs, seed=0),
        progress=False,
    )
    scores = 1 / (1 + np.exp(-predict_logits(model, np.concatenate([xr, xb]))))
    labels = np.r_[np.ones(len(xr), int), np.zeros(len(xb), int)]
    summ = classification_summary(labels, scores, 0.5)
    fpr90, _ = fpr_at_tpr(labels, scores, 0.9)
    # precision at the talk's prevalence (1 real per 700 bogus), from the measured TPR and FPR
    tpr, fpr, prev = summ["recall"], summ["fp"] / len(xb), 1 / 701
    prec_700 = tpr * prev / (tpr * prev + fpr * (1 - prev)) if tpr + fpr > 0 else float("nan")
    real_scores = scores[: len(xr)]
    snr_bins = {"<8": pr["snr"] < 8, "8-15": pr["snr"].between(8, 15), ">15": pr["snr"] > 15}
    recall_by_snr = {
        k: round(float((real_scores[m.to_numpy()] >= 0.5).mean()), 3) for k, m in snr_bins.items()
    }
    fp_cats = pb.loc[scores[len(xr) :] >= 0.5, "category"].value_counts().to_dict()
    rec = {
        "overrides": args.set,
        "n_train": args.n_train,
        "epochs_run": len(hist),
        "auc": round(summ["auc"], 5),
        "fpr_at_tpr90": round(fpr90, 5),
        "fpr_at_0.5": round(fpr, 5),
        "recall_at_0.5": round(tpr, 4),
        "precision_at_0.5_1to700": round(prec_700, 4),
        "recall_by_snr": recall_by_snr,
        "fp_categories": fp_cats,
        "sim_s": round(t_sim, 1),
        "total_s": round(time.time() - t0, 1),
    }
    print(json.dumps(rec))
    print(f"talk 'Current model': {TALK}")
    with open(args.log, "a") as f:
        f.write(json.dumps(rec) + "\n")


if __name__ == "__main__":
    main()
