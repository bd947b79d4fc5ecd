"""VAT where VAT is known to work: 1 % of the labels, the rest unlabeled (issue 21, item 7).

Miyato et al. (2018) show VAT's large gains with few labels and many unlabeled samples (e.g.
MNIST with 100 labels). This script builds that regime from the simulation: a training set of
simulated candidates (`rbcore.simulation`, kind "train") with their TRUE labels
(`is_real_true`, no label noise), of which a stratified 1 % keep their labels and the rest are
unlabeled; a labeled validation split (for the best epoch and any choice of eps, never the
test set); a held-out test set. On the same labels it trains the talk's CNN (`RBCNN`)

- `supervised`: the labeled 1 % only;
- `vat_normalized`: + VAT with r_adv on the min-max normalized inputs (Miyato's convention,
  rbcore's default eps 0.1, xi 1e-2);
- `vat_raw`: + VAT with r_adv on raw pixels (the paper's code: eps 0.1, xi 1.0);

for each seed (the seed draws the labeled subset, the initialization, the batch order and the
VAT noise), and reports the test AUC and FPR at TPR 0.9. With `--eps-scan` it also trains
`vat_normalized` at larger eps (the diagnosis: which eps makes VAT work, chosen by the
VALIDATION AUC; the test column of the other eps is printed but not used to choose).

    PYTHONPATH=$PWD .venv/bin/python benchmarks/vat_few_labels.py [--eps-scan]

Resumable: each finished run is written to the JSON (benchmarks/vat_few_labels.json) at once,
and a rerun skips the runs found there with the same settings. The simulated data are cached
in --cache-dir.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from rbcore.files import read_json, write_json_atomic, write_npz_atomic
from rbcore.inference import predict_logits
from rbcore.metrics import fpr_at_tpr
from rbcore.simulation import simulate_candidates
from rbcore.train import TrainConfig, fit
from rbcore.vat import PAPER_EPS_RAW, PAPER_XI_RAW, sky_sigma

ROOT = Path(__file__).resolve().parent
# Our choice: small enough for minutes on 2 cores, large enough that 1 % is 200 labels.
SIZES = {"train": 20_000, "val": 1_000, "test": 5_000}
DATA_SEEDS = {"train": 2101, "val": 2102, "test": 2103}  # our choice, fixed
# Miyato et al. (2018): Adam 1e-3, 32 labeled + 128 unlabeled per step (CIFAR-10 / SVHN),
# alpha = 1; we halve the unlabeled batch to 64 to fit 2 shared cores. Epochs (of the labeled
# set: 6 steps each): our choice, 300 steps in all.
BASE = dict(
    optimizer="adam",
    batch_size=32,
    unlabeled_batch_size=64,
    unlabeled_pool="all",
    epochs=50,
    patience=0,
    early_stopping_metric="auc",
    eval_batch_size=1000,
)
METHODS = {
    "supervised": dict(alpha=0.0),
    "vat_normalized": dict(alpha=1.0, vat_space="normalized"),  # eps 0.1, xi 1e-2 (defaults)
    # eps in units of each cutout's sky sigma (vat_space "sky"): per-pixel RMS 0.03 / 0.1 / 0.3 sigma
    # (eps = k sqrt(29 * 29 * 3)); our choice, for the diagnosis (benchmarks/README.md).
    "vat_sky0.03": dict(alpha=1.0, vat_space="sky", eps=0.03 * np.sqrt(2523)),
    "vat_sky0.1": dict(alpha=1.0, vat_space="sky", eps=0.1 * np.sqrt(2523)),
    "vat_sky0.3": dict(alpha=1.0, vat_space="sky", eps=0.3 * np.sqrt(2523)),
    "vat_raw": dict(alpha=1.0, vat_space="raw", eps=PAPER_EPS_RAW, xi=PAPER_XI_RAW),
}
SCAN_EPS = (1.0, 3.0, 10.0)  # normalized-space radii for the diagnosis (our choice)


def load_data(cache_dir: Path) -> dict:
    """Simulated train/val/test images with their true labels (cached as npz)."""
    data = {}
    for split, n in SIZES.items():
        path = cache_dir / f"{split}_{n}_{DATA_SEEDS[split]}.npz"
        if not path.exists():
            x, params = simulate_candidates(n, kind="train", seed=DATA_SEEDS[split], n_threads=2)
            write_npz_atomic(path, x=x, y=params["is_real_true"].to_numpy(np.int64))
        with np.load(path) as f:
            data[split] = (f["x"], f["y"])
    return data


def labeled_subset(y: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """bool mask: a stratified `fraction` of each class (at least one per class)."""
    rng = np.random.default_rng([seed, 21])
    mask = np.zeros(len(y), bool)
    for c in (0, 1):
        idx = np.flatnonzero(y == c)
        k = max(1, round(fraction * len(idx)))
        mask[rng.choice(idx, k, replace=False)] = True
    return mask


def run_one(data, method: str, overrides: dict, seed: int, fraction: float, epochs: int,
            batch_size: int, extra: dict | None = None):  # fmt: skip
    (x, y), (xv, yv), (xt, yt) = data["train"], data["val"], data["test"]
    mask = labeled_subset(y, fraction, seed)
    cfg = TrainConfig(**{**BASE, "epochs": epochs, "batch_size": batch_size, **(extra or {}),
                         **overrides}, seed=seed)  # fmt: skip
    t0 = time.perf_counter()
    model, history = fit(
        x, y, labeled_mask=mask, val_images=xv, val_labels=yv, config=cfg, progress=False
    )
    train_s = time.perf_counter() - t0
    z = predict_logits(model, xt)
    from sklearn.metrics import roc_auc_score

    best = max(history, key=lambda r: r["val_auc"])
    return {
        "method": method,
        "seed": seed,
        "n_labeled": int(mask.sum()),
        "config": cfg.to_dict(),
        "best_epoch": int(best["epoch"]),
        "val_auc": float(best["val_auc"]),
        "test_auc": float(roc_auc_score(yt, z)),
        "test_fpr_at_tpr90": fpr_at_tpr(yt, z, 0.9)[0],
        "last_lds": float(history[-1].get("lds", 0.0)),
        "train_s": round(train_s, 1),
    }


def summary(runs: dict) -> list[dict]:
    rows = []
    for method in dict.fromkeys(r["method"] for r in runs.values()):
        rs = [r for r in runs.values() if r["method"] == method]
        row = {"method": method, "n_seeds": len(rs)}
        for k in ("val_auc", "test_auc", "test_fpr_at_tpr90"):
            v = np.array([r[k] for r in rs])
            row[k] = float(v.mean())
            row[k + "_sd"] = float(v.std(ddof=1)) if len(v) > 1 else float("nan")
        row["last_lds"] = float(np.mean([r["last_lds"] for r in rs]))
        sup = {r["seed"]: r for r in runs.values() if r["method"] == "supervised"}
        diffs = [r["test_auc"] - sup[r["seed"]]["test_auc"] for r in rs if r["seed"] in sup]
        row["test_auc_minus_supervised"] = [round(d, 4) for d in diffs]
        rows.append(row)
    return rows


def print_table(rows):
    print(f"{'method':<26}{'seeds':>6}{'val AUC':>16}{'test AUC':>16}{'FPR@TPR0.9':>18}"
          f"{'last LDS':>10}  test AUC - supervised (per seed)")  # fmt: skip
    for r in rows:
        print(
            f"{r['method']:<26}{r['n_seeds']:>6}"
            f"{r['val_auc']:>9.4f} ±{r['val_auc_sd']:.4f}"
            f"{r['test_auc']:>9.4f} ±{r['test_auc_sd']:.4f}"
            f"{r['test_fpr_at_tpr90']:>11.4f} ±{r['test_fpr_at_tpr90_sd']:.4f}"
            f"{r['last_lds']:>10.2g}  {r['test_auc_minus_supervised']}"
        )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--label-fraction", type=float, default=0.01)
    parser.add_argument("--epochs", type=int, default=BASE["epochs"])
    parser.add_argument("--batch-size", type=int, default=BASE["batch_size"], help="labeled")
    parser.add_argument(
        "--unlabeled-batch-size",
        type=int,
        default=BASE["unlabeled_batch_size"],
        help="Miyato et al.: 128",
    )
    parser.add_argument("--alpha", type=float, help="LDS weight of the VAT methods (default 1)")
    parser.add_argument("--methods", nargs="+", default=["supervised", "vat_normalized",
                        "vat_raw"], choices=list(METHODS))  # fmt: skip
    parser.add_argument("--eps-scan", action="store_true", help=f"also eps {SCAN_EPS}")
    parser.add_argument("--out", default=str(ROOT / "vat_few_labels.json"))
    parser.add_argument("--cache-dir", default="build/vat/cache")
    parser.add_argument("--report", nargs="+", metavar="JSON", help="print the table of the "
                        "runs in these result files (same setup) and exit")  # fmt: skip
    parser.add_argument("--baseline", metavar="JSON", help="with --report: also show the "
                        "'supervised' runs of this file (same labels per seed)")  # fmt: skip
    parser.add_argument("--merged-out", help="with --report: write the union of the runs here")
    args = parser.parse_args(argv)
    if args.report:
        docs = [read_json(p, missing="run this script first") for p in args.report]
        if any(d["setup"] != docs[0]["setup"] for d in docs):
            raise ValueError(f"{args.report}: the result files have different setups")
        runs = {k: r for d in docs for k, r in d["runs"].items()}
        if args.baseline:  # supervised runs do not depend on the unlabeled batch or the VAT
            base = read_json(args.baseline, missing="run this script first")["runs"]
            runs = {**{k: r for k, r in base.items() if r["method"] == "supervised"}, **runs}
        print_table(summary(runs))
        if args.merged_out:  # one file of runs made in parallel processes
            merged = {"setup": docs[0]["setup"], "runs": runs, "summary": summary(runs)}
            write_json_atomic(args.merged_out, merged, indent=1)
        return
    cache = Path(args.cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    data = load_data(cache)
    methods = {m: METHODS[m] for m in args.methods if m in METHODS}
    if args.eps_scan:
        for e in SCAN_EPS:
            methods[f"vat_normalized_eps{e:g}"] = dict(alpha=1.0, vat_space="normalized", eps=e)
    extra = {}
    if args.unlabeled_batch_size != BASE["unlabeled_batch_size"]:
        extra["unlabeled_batch_size"] = args.unlabeled_batch_size
    if args.alpha is not None:
        methods = {m: {**o, "alpha": args.alpha} if o.get("alpha", 0) > 0 else o
                   for m, o in methods.items()}  # fmt: skip
    y = data["train"][1]
    setup = {
        **extra,
        **({"alpha": args.alpha} if args.alpha is not None else {}),
        "sizes": SIZES,
        "data_seeds": DATA_SEEDS,
        "real_fraction_train": float(y.mean()),
        "label_fraction": args.label_fraction,
        "epochs": args.epochs,
        **({"batch_size": args.batch_size} if args.batch_size != BASE["batch_size"] else {}),
        "base_config": BASE,
        # What eps = 0.1 raw means: the sky sigma per pixel in raw units (electrons).
        "sky_sigma_raw": {
            name: sky_sigma(data["train"][0], channel=c)
            for c, name in enumerate(("ref", "new", "sub"))
        },
    }
    out = Path(args.out)
    results = read_json(out, missing="none") if out.exists() else None
    if not results or results.get("setup") != setup:
        results = {"setup": setup, "runs": {}}
    print(f"sky sigma (raw, median of the border MAD): {setup['sky_sigma_raw']}")
    for seed in args.seeds:
        for method, overrides in methods.items():
            key = f"{method}/seed{seed}"
            if key in results["runs"]:
                continue
            r = run_one(data, method, overrides, seed, args.label_fraction, args.epochs,
                        args.batch_size, extra)  # fmt: skip
            results["runs"][key] = r
            results["summary"] = summary(results["runs"])
            write_json_atomic(out, results, indent=1)
            print(f"{key}: val AUC {r['val_auc']:.4f} test AUC {r['test_auc']:.4f} "
                  f"FPR@0.9 {r['test_fpr_at_tpr90']:.4f} ({r['train_s']:.0f} s)", flush=True)  # fmt: skip
    print_table(summary(results["runs"]))


if __name__ == "__main__":
    main()
