"""Stage 1 with the paper code's folds against grouped folds: fraction flagged, precision, recall.

Simulates a Tomo-e-like training set (the survey of notebook 01, `rbcore.simulation`) and
scores it out-of-fold twice with the same fold models' settings (a recipe's stage 1 under a
profile, `rbcore.recipes.stage1_settings`): folds stratified by detector id (the paper's code,
src/real_bogus.py:439-452) and folds that keep each detector whole (`detector_grouped`).
Prints, per fold mode, the fraction flagged by the 0.5 rule and the flags' precision and
recall against the simulator's truth, with the seconds it took.

    python benchmarks/stage1_folds.py --n 12000 --profile default

Timings on a shared CPU are disturbed by other jobs; the flag figures are not.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from rbcore import recipes
from rbcore.datasets import load_training
from rbcore.mislabel import assign_folds, cnn_trainer, detection_metrics, out_of_fold_logits
from rbcore.mislabel.flags import flag_disagreements, sigmoid
from rbcore.simulation import write_training_set


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=12_000, help="training samples")
    parser.add_argument("--detectors", type=int, default=84, help="Tomo-e has 84")
    parser.add_argument("--recipe", default="talk_current", help="whose stage 1")
    parser.add_argument("--profile", default="default", help="sizes the fold models")
    parser.add_argument("--epochs", type=int, default=None, help="None: the profile's")
    parser.add_argument("--seed", type=int, default=0, help="simulation and training seed")
    args = parser.parse_args(argv)

    s1 = recipes.stage1_settings(args.recipe, args.profile, epochs=args.epochs, seed=args.seed)
    cfg = s1["config"]
    print(f"recipe {args.recipe}, profile {args.profile}: {s1['n_folds']} folds, "
          f"{cfg.architecture}, {cfg.optimizer}, "
          f"up to {cfg.epochs} epochs, early stopping on {s1['validation']}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        write_training_set(Path(tmp) / "train", args.n, seed=args.seed,
                           n_detectors=args.detectors)  # fmt: skip
        ts = load_training(Path(tmp) / "train")
        labels = ts.params["label"].to_numpy()
        truth = ts.params["label_is_wrong"].to_numpy()
        det = ts.params["detector_id"].to_numpy()
        print(f"{len(labels):,} samples on {args.detectors} detectors; "
              f"{truth.mean():.2%} of the labels are wrong")  # fmt: skip
        print(f"{'folds':<22}{'flagged':>10}{'precision':>11}{'recall':>8}{'seconds':>9}")
        for by in ("detector_stratified", "detector_grouped"):
            t0 = time.perf_counter()
            folds = assign_folds(s1["n_folds"], groups=det, labels=labels, by=by,
                                 seed=s1["fold_seed"])  # fmt: skip
            trainer = cnn_trainer(ts.images, labels, cfg, validation=s1["validation"])
            z = out_of_fold_logits(folds, trainer)
            flags = flag_disagreements(labels, sigmoid(z), 0.5)
            m = detection_metrics(flags, truth)
            print(f"{by:<22}{np.mean(flags):>10.2%}{m['precision'] or float('nan'):>11.3f}"
                  f"{m['recall'] or float('nan'):>8.3f}{time.perf_counter() - t0:>9.0f}")  # fmt: skip


if __name__ == "__main__":
    main()
