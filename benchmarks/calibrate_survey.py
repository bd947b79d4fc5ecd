"""Calibrate the simulated survey: the Current model (noisy labels) and a clean-label oracle.

Protocol v2 (issue 12, benchmarks/CALIBRATION.md): the survey's settings are tuned only with
the baseline CNN trained on the noisy labels (model "current") and the same CNN trained on the
true labels `is_real_true` (model "oracle": same data, split and configuration), never with
VAT, on calibration seeds (never notebook 01's). Targets (the talk): current AUC 0.9956, FPR at
TPR 0.9 0.00916 (within a factor 1.5), precision 0.050 and recall 0.981 at 0.5 with ~1 real
per 700 bogus; oracle FPR at TPR 0.9 <= 6.5e-4 and at most a tenth of the current model's.

One run simulates a training set (label noise from injection matching) and a calibration test
set once, then trains each model for each training seed, prints a JSON line per model and seed
and appends it to benchmarks/calibration_runs.jsonl (with `model`, `seed`, the measured label
noise rates and the false positives per category).

    .venv/bin/python benchmarks/calibrate_survey.py --name v2-default --n-train 40000 \
        --epochs 3 --train-seeds 0,1,2 --set match_radius=2.0
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
from rbcore.summary import label_noise_summary

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
    if "neighbour_scale" in kw:  # multiply every neighbour share (a scan of structured noise)
        f = kw.pop("neighbour_scale")
        kw["neighbour_share"] = {k: v * f for k, v in cfg.neighbour_share.items()}
    for key in [k for k in kw if k.startswith("neighbour_share.")]:
        kw.setdefault("neighbour_share", dict(cfg.neighbour_share))[key.split(".", 1)[1]] = kw.pop(
            key
        )
    cfg = cfg.replace(bogus_mix=mix, **kw)
    cfg.validate()
    return cfg


def _evaluate(model, predict_logits, xr, pr, xb, pb) -> dict:
    """Test-set metrics of one model (the talk's table and the false positives per class)."""
    scores = 1 / (1 + np.exp(-predict_logits(model, np.concatenate([xr, xb]))))
    labels = np.r_[np.ones(len(xr), int), np.zeros(len(xb), int)]
    summ = classification_summary(labels, scores, 0.5)
    fpr90, thr90 = fpr_at_tpr(labels, scores, 0.9)
    # precision at the talk's prevalence (1 real per 700 bogus), from the measured TPR and FPR
    tpr, fpr, prev = summ["recall"], summ["fp"] / len(xb), 1 / 701
    prec_700 = tpr * prev / (tpr * prev + fpr * (1 - prev)) if tpr + fpr > 0 else float("nan")
    real_scores, bogus_scores = scores[: len(xr)], scores[len(xr) :]
    snr_bins = {"<8": pr["snr"] < 8, "8-15": pr["snr"].between(8, 15), ">15": pr["snr"] > 15}
    recall_by_snr = {
        k: round(float((real_scores[m.to_numpy()] >= 0.5).mean()), 3) for k, m in snr_bins.items()
    }
    return {
        "auc": round(summ["auc"], 5),
        "fpr_at_tpr90": round(fpr90, 6),
        "fpr_at_0.5": round(fpr, 6),
        "recall_at_0.5": round(tpr, 4),
        "precision_at_0.5_1to700": round(prec_700, 4),
        "recall_by_snr": recall_by_snr,
        "fp_categories": pb.loc[bogus_scores >= 0.5, "category"].value_counts().to_dict(),
        "fp_categories_at_tpr90": pb.loc[bogus_scores >= thr90, "category"]
        .value_counts()
        .to_dict(),
    }


def report(log: Path) -> str:
    """Markdown table of the protocol-v2 rows of the log (those with `model` and `name`)."""
    head = (
        "| setting | seed | model | n_train / epochs | AUC | FPR@TPR0.9 | FPR@0.5 | recall@0.5 "
        "| precision@0.5 (1:700) | noise real / bogus | largest FP classes at TPR 0.9 |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for line in Path(log).read_text().splitlines():
        r = json.loads(line)
        if "name" not in r:
            continue
        seed = f"{r['seed']}" + (
            f" (data {r['data_seed']})" if r.get("data_seed", TRAIN_SEED) != TRAIN_SEED else ""
        )
        top = ", ".join(f"{k} {v}" for k, v in list(r["fp_categories_at_tpr90"].items())[:3])
        lines.append(
            f"| {r['name']} | {seed} | {r['model']} | {r['n_train'] // 1000}k / "
            f"{r['epochs_run']} | {r['auc']:.4f} | {r['fpr_at_tpr90']:.5f} | "
            f"{r['fpr_at_0.5']:.5f} | {r['recall_at_0.5']:.3f} | "
            f"{r['precision_at_0.5_1to700']:.3f} | {100 * r['label_noise_rate_real']:.2f} % / "
            f"{100 * r['label_noise_rate_bogus']:.2f} % | {top} |"
        )
    return head + "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--name", default="", help="name of the setting (a label in the log)")
    ap.add_argument("--set", action="append", default=[], help="SurveyConfig override key=value")
    ap.add_argument("--n-train", type=int, default=60_000)
    ap.add_argument("--n-test-real", type=int, default=300)
    ap.add_argument("--n-test-bogus", type=int, default=100_000)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--models", default="current,oracle", help="comma list: current, oracle")
    ap.add_argument("--train-seeds", default="0", help="comma list of TrainConfig seeds")
    ap.add_argument(
        "--data-seed", type=int, default=TRAIN_SEED, help="seed of the simulated training set"
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--log", default=str(Path(__file__).with_name("calibration_runs.jsonl")))
    ap.add_argument("--report", action="store_true", help="print the v2 rows of --log, no run")
    ap.add_argument(
        "--noise-only", action="store_true", help="print the training set's label noise, no run"
    )
    args = ap.parse_args()
    if args.report:
        print(report(Path(args.log)))
        return
    models = args.models.split(",")
    if set(models) - {"current", "oracle"}:
        raise SystemExit(f"--models: expected current and/or oracle, got {args.models!r}")

    from rbcore.inference import predict_logits
    from rbcore.train import TrainConfig, fit

    cfg = _config(args.set)
    t0 = time.time()
    x, p = simulate_candidates(
        args.n_train, kind="train", seed=args.data_seed, config=cfg, n_threads=args.threads
    )
    noise = label_noise_summary(p)
    if args.noise_only:
        print(json.dumps({"name": args.name, "overrides": args.set, **noise}))
        return
    targets = {
        "current": (p["object_type"] != "artifact").to_numpy(np.int64),  # the noisy labels
        "oracle": p["is_real_true"].to_numpy(np.int64),  # the true labels
    }
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
    print(json.dumps({"name": args.name, "sim_s": round(t_sim, 1), **noise}))
    for seed in [int(v) for v in args.train_seeds.split(",")]:
        for name in models:
            t1 = time.time()
            y = targets[name]
            model, hist = fit(
                x[~val],
                y[~val],
                val_images=x[val],
                val_labels=y[val],
                config=TrainConfig(epochs=args.epochs, seed=seed),
                progress=False,
            )
            rec = {
                "name": args.name,
                "model": name,
                "seed": seed,
                "data_seed": args.data_seed,
                "overrides": args.set,
                "n_train": args.n_train,
                "n_test_bogus": args.n_test_bogus,
                "epochs_run": len(hist),
                **_evaluate(model, predict_logits, xr, pr, xb, pb),
                "label_noise_rate_real": round(noise["label_noise_rate_real"], 5),
                "label_noise_rate_bogus": round(noise["label_noise_rate_bogus"], 5),
                "wrong_by_cause_real": noise["wrong_by_cause_real"],
                "wrong_by_cause_bogus": noise["wrong_by_cause_bogus"],
                "sim_s": round(t_sim, 1),
                "train_s": round(time.time() - t1, 1),
            }
            print(json.dumps(rec), flush=True)
            with open(args.log, "a") as f:
                f.write(json.dumps(rec) + "\n")
    print(f"talk 'Current model': {TALK}")


if __name__ == "__main__":
    main()
