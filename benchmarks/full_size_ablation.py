"""Which part of the two-stage method costs the FPR, at notebook 03's full training size.

Notebook 07's ablation trains its rows on a subset (15,000 samples in `default`), where the
spread over training seeds is as large as the differences between rows. This script asks the
one question the default run leaves open, at full size and one seed: the VAT model of notebook
03 ("two_stage": flagged samples unlabeled + VAT) is worse than "current"; is that the flags or
VAT? It trains the two rows that separate them on notebook 03's whole split, with its config,
seed and eps/alpha:

- `drop_flagged`: the flags without VAT (supervised, flagged samples removed);
- `vat_only`: VAT without the flags (every noisy label kept);

reuses notebook 03's `current`, `vat` (= two_stage) and `oracle`, and scores all five on the
test set: FPR at TPR 0.9 with its bootstrap interval, and the test bogus above each model's
TPR-0.9 threshold by category. Run after `make run` (it needs build/default/run):

    nice .venv/bin/python benchmarks/full_size_ablation.py [--run-dir build/default/run]

It writes run_dir/study/full_size/full_size_ablation.json and resumes (finished models are
reused). About 25 min on two idle cores (one VAT model on 107,000 samples for 6 epochs).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from rbcore import study as st
from rbcore.datasets import load_test
from rbcore.evaluation import file_fingerprint, fpr_by_category
from rbcore.files import write_json_atomic
from rbcore.metrics import fpr_at_tpr
from rbcore.study.ablation import row_config, train_row
from rbcore.study.scores import model_scores, test_logits

ROWS = ("current", "drop_flagged", "vat_only", "two_stage", "oracle")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", default="build/default/run")
    parser.add_argument("--n-boot", type=int, default=1000)
    args = parser.parse_args(argv)
    run_dir = Path(args.run_dir)
    out = run_dir / "study" / "full_size"
    nb03 = st.notebook03_settings(run_dir)
    seed = nb03["seed"]
    data = st.load_study_data(run_dir)
    test = load_test(run_dir / "data" / "test")
    labels = np.asarray(test.labels)
    fingerprint = file_fingerprint(
        [run_dir / "data" / "test" / "test_real.npy", run_dir / "data" / "test" / "test_bogus.npy"]
    )
    print(f"{len(data.train_idx):,} training rows (notebook 03's split), seed {seed}, "
          f"eps/alpha {nb03['chosen']}")  # fmt: skip
    results = {"run_dir": str(run_dir), "seed": seed, "eps_alpha": nb03["chosen"], "rows": {}}
    for row in ROWS:
        t0 = time.time()
        config = row_config(nb03["base"], row, seed, nb03["chosen"])
        ckpt, info = train_row(data, row, config, run_dir=run_dir, study_dir=out, progress=True)
        z = test_logits(ckpt, test.images, cache_dir=out / "scores", fingerprint=fingerprint)
        scores = model_scores(labels, z, n_boot=args.n_boot, seed=seed)
        thr = fpr_at_tpr(labels, z, 0.9)[1]
        by_cat = fpr_by_category(test.params, labels, z, threshold=thr)
        results["rows"][row] = {
            **scores,
            "n_labeled": info["n_labeled"],
            "source": info["source"],
            "model": str(ckpt),
            "fp_by_category_tpr90": {
                c: int(k) for c, k in zip(by_cat["category"], by_cat["n_fp"], strict=True)
            },
        }
        f = scores["fpr_at_tpr90"]
        print(f"{row}: {info['source']}, {info['n_labeled']:,} labels; FPR at TPR 0.9 "
              f"{f['value']:.3g} [{f['ci95'][0]:.3g}, {f['ci95'][1]:.3g}] "
              f"({time.time() - t0:.0f} s)", flush=True)  # fmt: skip
        write_json_atomic(out / "full_size_ablation.json", results, indent=2)
    print(f"wrote {out / 'full_size_ablation.json'}")


if __name__ == "__main__":
    main()
